//! One running server instance: storage, keys, the ring orchestrator, the delivery workers,
//! the deadline sweeper, purging, webhooks and the HTTP API, started and stopped together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::api::{router, AppState, Draining};
use crate::auth::DeviceAuth;
use crate::config::{Config, SenderConfig};
use crate::dispatch::{Dispatcher, WorkerSettings};
use crate::domain::new_id;
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::ring_gate::RingGate;
use crate::rings::{Claimer, Rings};
use crate::senders::apns::ApnsSender;
use crate::senders::fcm::FcmSender;
use crate::senders::harmony::HarmonySender;
use crate::senders::http::{HttpSettings, SenderError};
use crate::senders::wns::WnsSender;
use crate::senders::{FileSender, NoopSender, Sender, Senders};
use crate::store::{redact_url, Store};
use crate::time::now_ms;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Device token keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] crate::auth::KeyError),
    /// The listen address could not be bound.
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The configuration is not usable (receipt secrets).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// A running server; dropping it does not stop it, [`Running::stop`] does.
pub struct Running {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// Its database.
    pub store: Store,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Set by [`Running::stop`] first thing: `/readyz` fails from then on.
    pub draining: Arc<Draining>,
    rings: Arc<Rings>,
    dispatcher: Arc<Dispatcher>,
    workers: JoinHandle<()>,
    grace: Duration,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Drains and stops, as on SIGTERM: stops accepting requests and finishes those in flight
    /// (long-polls answer at once), stops claiming work, hands back the pushes it holds but has
    /// not started, lets those in flight finish within the drain time, records their results,
    /// and hands over anything still unsettled to the other instances.
    pub async fn stop(self) {
        let started = std::time::Instant::now();
        self.draining.set_draining();
        self.rings.stop_waiting();
        let _ = self.stop.send(());
        if tokio::time::timeout(self.grace, self.serving).await.is_err() {
            tracing::warn!("requests still in flight at the end of the drain time");
        }
        self.dispatcher.drain();
        let _ = self.workers.await;
        for task in self.background {
            task.abort();
        }
        tracing::info!(ms = started.elapsed().as_millis() as u64, "stopped");
    }

    /// Waits until the HTTP server ends (it does when stopped, or on a fatal error).
    pub async fn wait(&mut self) {
        let _ = (&mut self.serving).await;
    }
}

/// The senders a configuration names: each configured provider, else the fallback sender.
pub fn senders_from_config(config: &Config) -> Result<Senders, SenderError> {
    let fallback: Arc<dyn Sender> = match &config.sender {
        SenderConfig::File { path, delay_ms } => {
            Arc::new(FileSender::new(path.clone(), Duration::from_millis(*delay_ms)))
        }
        SenderConfig::Noop => Arc::new(NoopSender),
    };
    let providers = &config.providers;
    let http = HttpSettings::new(providers.ca_file.as_deref())?;
    let harmony: Arc<dyn Sender> = match &providers.harmony {
        Some(c) => Arc::new(HarmonySender::new(c, &http)?),
        None => fallback.clone(),
    };
    let fcm: Arc<dyn Sender> = match &providers.fcm {
        Some(c) => Arc::new(FcmSender::new(c, &http)?),
        None => fallback.clone(),
    };
    let apns: Arc<dyn Sender> = match &providers.apns {
        Some(c) => Arc::new(ApnsSender::new(c, &http)?),
        None => fallback.clone(),
    };
    let wns: Arc<dyn Sender> = match &providers.wns {
        Some(c) => Arc::new(WnsSender::new(c, &http)?),
        None => fallback,
    };
    Ok(Senders::new(harmony, fcm, apns, wns))
}

/// Starts everything `config` describes, sending pushes through `senders`.
pub async fn start(config: &Config, senders: Senders) -> Result<Running, StartError> {
    let store = Store::connect(&config.database_url, config.database_connections).await?;
    tracing::info!(database = %redact_url(&config.database_url), backend = ?store.backend(), "storage ready");
    let released = store.release_orphaned_claims(now_ms()).await?;
    if released > 0 {
        tracing::warn!(deliveries = released, "resuming deliveries a previous run left unfinished");
    }
    let keyring = Arc::new(Keyring::load(store.clone(), now_ms()).await?);
    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let gate = Arc::new(RingGate::default());
    let instance = new_id();
    let lease_ms = i64::from(config.ring.claim_lease_ms);
    tracing::info!(%instance, lease_ms, "claiming work as this instance");
    let (claimed, handed_over) = crate::dispatch::hand_over();
    // Pushes signed this second: the orchestrator signs a new call's first ones into it while the
    // call is stored, the workers sign the rest and find those.
    let signed = Arc::new(crate::call_push::SignedPushes::default());
    let rings = Arc::new(Rings::new(
        store.clone(),
        keyring.clone(),
        metrics.clone(),
        gate.clone(),
        Claimer { instance: instance.clone(), lease_ms, fast_claims: config.ring.concurrency },
        wake.clone(),
        claimed,
        config.server_id.clone(),
        config.ring.default_ring_seconds,
        config.ring.max_ring_seconds,
        config.webhook.is_some(),
        signed.clone(),
    ));
    let verifier = Arc::new(crate::verification::Verifier::new(
        senders.clone(),
        keyring.clone(),
        config.server_id.clone(),
        store.clone(),
        metrics.clone(),
    ));
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        keyring.clone(),
        config.server_id.clone(),
        senders,
        metrics.clone(),
        gate,
        wake,
        WorkerSettings {
            instance,
            lease_ms,
            concurrency: config.ring.concurrency,
            claim_batch: config.ring.claim_batch,
        },
        signed,
    ));
    let grace = Duration::from_secs(u64::from(config.ring.drain_seconds));
    let workers = tokio::spawn(dispatcher.clone().run(handed_over, grace));
    let mut background = vec![tokio::spawn(sweep_deadlines(rings.clone()))];
    background.push(tokio::spawn(purge_expired(store.clone(), metrics.clone())));
    background.push(tokio::spawn(reload_keys(keyring)));
    background.push(tokio::spawn(checkpoint(store.clone())));
    if let Some(webhook) = &config.webhook {
        background.push(tokio::spawn(crate::webhooks::run(store.clone(), webhook.clone(), metrics.clone())));
    }
    let draining = Arc::new(Draining::default());
    let receipts = match config.providers.harmony.as_ref().and_then(|h| h.receipts.as_ref()) {
        Some(receipts) => Some(Arc::new(crate::receipts::Receipts::new(
            crate::receipts::ReceiptVerifier::from_config(receipts)?,
            store.clone(),
            metrics.clone(),
        ))),
        None => None,
    };
    let state = Arc::new(AppState {
        store: store.clone(),
        rings: rings.clone(),
        device_auth: DeviceAuth::from_config(&config.auth)?,
        api_keys: config.api_keys.clone(),
        metrics: metrics.clone(),
        waits: crate::http_server::WaitLimiter::new(
            config.http.max_waits_per_user,
            metrics.long_polls.clone(),
        ),
        verifier,
        max_installations_per_user: config.registrar.max_installations_per_user,
        draining: draining.clone(),
        receipts,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen(config.listen, e))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state);
    let limits = crate::http_server::Limits::from_config(config);
    let stopped = async move {
        let _ = stopped.await;
    };
    let serving = tokio::spawn(crate::http_server::serve(listener, app, limits, metrics.clone(), stopped));
    tracing::info!(%addr, max_connections = limits.max_connections, "listening");
    Ok(Running {
        addr,
        store,
        metrics,
        draining,
        rings,
        dispatcher,
        workers,
        grace,
        stop,
        serving,
        background,
    })
}

/// Ends calls at their deadline (as missed), four times a second.
async fn sweep_deadlines(rings: Arc<Rings>) {
    loop {
        if let Err(e) = rings.expire_overdue(now_ms()).await {
            tracing::error!(error = %e, "ending overdue calls failed");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Deletes expired installations every minute, so they are never rung and never kept, and the
/// receipt nonces and daily counts no longer needed.
async fn purge_expired(store: Store, metrics: Arc<Metrics>) {
    loop {
        match store.purge_expired(now_ms()).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "purged expired installations"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "purging expired installations failed"),
        }
        if let Err(e) = store.purge_receipt_nonces(now_ms()).await {
            tracing::error!(error = %e, "purging receipt nonces failed");
        }
        // A week of daily counts is kept, for operators to look at.
        if let Err(e) = store.purge_daily_counts(crate::time::utc_day(now_ms()) - 7).await {
            tracing::error!(error = %e, "purging daily counts failed");
        }
        if let Ok(n) = store.count_installations(now_ms()).await {
            metrics.installations.set(n);
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

/// Picks up key rotations made by another instance or the `rotate-key` command.
async fn reload_keys(keyring: Arc<Keyring>) {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        if let Err(e) = keyring.reload(now_ms()).await {
            tracing::error!(error = %e, "reloading signing keys failed");
        }
    }
}

/// Keeps SQLite's write-ahead log short, off the request path.
async fn checkpoint(store: Store) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "checkpointing the write-ahead log failed");
        }
    }
}
