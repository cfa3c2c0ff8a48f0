//! The delivery workers: claim due deliveries, build each push (signed with the current key),
//! hand it to its platform's sender, and act on the outcome: prune dead tokens, honour
//! `Retry-After`, back off with jitter, never retry past the moment the push stops mattering,
//! and alert on configuration errors. Results are written back in batches.
//!
//! Claims follow the worker: an instance claims only what it can send now, under a short lease
//! its heartbeat renews while it lives. A dead instance's claims lapse within one lease and any
//! instance takes them over (as pushes whose result is unknown); an instance that loses touch
//! with the database stops sending what it holds before its lease could lapse; a draining one
//! hands back what it has not sent. Every ring passes the [`RingGate`] right before it is sent,
//! so nothing rings after its call ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callpush_proto::model::PushEvent;
use callpush_proto::wire::missed_call_message_id;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::call_push::{DeviceKeys, SignedPushes};
use crate::delivery_policy::{self, deadline, DeadToken, Finish, Step};
use crate::domain::{
    CallRecord, Delivery, DeliveryResult, DeliveryStatus, PushKind, RELEASED, RESULT_UNKNOWN,
};
use crate::keyring::Keyring;
use crate::metrics::{Metrics, PlatformLabels};
use crate::ring_gate::RingGate;
use crate::senders::{MissedCall, MissedCaller, OutgoingPush, SendOutcome, Senders};
use crate::store::{Backend, Store};
use crate::time::now_ms;

/// Until when this instance may act on the claims it holds: one lease after the start of its
/// last heartbeat that reached the database, less a third of a lease for a push to reach its
/// provider before another instance may take the delivery over. With SQLite there is no other
/// instance, so claims never expire while the process runs.
#[derive(Debug)]
pub struct LeaseClock {
    lease_ms: i64,
    valid_until: AtomicI64,
}

impl LeaseClock {
    /// A clock for claims of `lease_ms`, made at `now`, that other instances may take over.
    pub fn new(lease_ms: i64, now: i64) -> Self {
        LeaseClock { lease_ms, valid_until: AtomicI64::new(valid_until(lease_ms, now)) }
    }

    /// A clock for claims no other instance can take over.
    pub fn unbounded(lease_ms: i64) -> Self {
        LeaseClock { lease_ms, valid_until: AtomicI64::new(i64::MAX) }
    }

    /// A heartbeat that started at `started` renewed every claim.
    fn renewed(&self, started: i64) {
        self.valid_until.fetch_max(valid_until(self.lease_ms, started), Ordering::Relaxed);
    }

    /// Whether claims are still this instance's at `now`.
    fn holds(&self, now: i64) -> bool {
        now < self.valid_until.load(Ordering::Relaxed)
    }
}

/// Until when claims renewed at `renewed_at` may be acted on.
fn valid_until(lease_ms: i64, renewed_at: i64) -> i64 {
    renewed_at + lease_ms - lease_ms / 3
}

/// A delivery this instance just stored, handed straight to the workers with its call: the fast
/// path that skips reading it back. One claimed when it was stored (`Sending`) is sent as soon
/// as a worker is free; if the process dies first, the claim lapses and another instance sends
/// it. One stored unclaimed (`Pending`: the rest of a fan-out larger than the workers) is claimed
/// by its id when a worker frees up, several in one statement, unless another instance claimed
/// it first; if the process dies first it is still pending, for whichever instance claims it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery, as stored: `Sending` (claimed by this instance) or `Pending`.
    pub delivery: Delivery,
    /// Its call as it was when the delivery was made.
    pub call: Arc<CallRecord>,
}

/// Where the orchestrator hands the deliveries it stored to this instance's workers.
#[derive(Clone)]
pub struct HandOver {
    claimed: mpsc::UnboundedSender<Claimed>,
    stored: mpsc::UnboundedSender<Claimed>,
    backlog: Arc<Backlog>,
}

/// What the workers take handed-over deliveries from.
pub struct HandedOver {
    claimed: mpsc::UnboundedReceiver<Claimed>,
    stored: mpsc::UnboundedReceiver<Claimed>,
    backlog: Arc<Backlog>,
}

/// Unclaimed deliveries handed over and not yet claimed or given up: while there are any, the
/// claim loop leaves the database alone (they are due, and the fast path claims them more
/// cheaply, by id).
#[derive(Default)]
struct Backlog {
    len: std::sync::atomic::AtomicUsize,
    emptied: Notify,
}

impl Backlog {
    fn taken(&self, n: usize) {
        if n > 0 && self.len.fetch_sub(n, Ordering::AcqRel) == n {
            self.emptied.notify_waiters();
        }
    }
}

/// A hand-over channel: the orchestrator's end and the workers' end.
pub fn hand_over() -> (HandOver, HandedOver) {
    let (claimed, claimed_rx) = mpsc::unbounded_channel();
    let (stored, stored_rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    (
        HandOver { claimed, stored, backlog: backlog.clone() },
        HandedOver { claimed: claimed_rx, stored: stored_rx, backlog },
    )
}

impl HandOver {
    /// Hands `delivery` of `call` to the workers; `false` if they are gone.
    pub fn send(&self, delivery: Delivery, call: Arc<CallRecord>) -> bool {
        if delivery.status == DeliveryStatus::Sending {
            return self.claimed.send(Claimed { delivery, call }).is_ok();
        }
        self.backlog.len.fetch_add(1, Ordering::AcqRel);
        let sent = self.stored.send(Claimed { delivery, call }).is_ok();
        if !sent {
            self.backlog.taken(1);
        }
        sent
    }
}

/// Runs the delivery workers of one server instance.
pub struct Dispatcher {
    store: Store,
    keyring: Arc<Keyring>,
    server_id: String,
    senders: Senders,
    metrics: Arc<Metrics>,
    gate: Arc<RingGate>,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    concurrency: u32,
    claim_batch: usize,
    instance: String,
    lease: LeaseClock,
    draining: watch::Sender<bool>,
    /// Ring and cancel pushes signed this second, shared by each callee's devices (and signed
    /// ahead by the orchestrator for new calls).
    signed: Arc<SignedPushes>,
    /// The wire v2 device keys of recent deliveries, decoded.
    device_keys: DeviceKeys,
}

/// How the workers are set up.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This instance, as claims name it.
    pub instance: String,
    /// How long a claim holds without a heartbeat, ms.
    pub lease_ms: i64,
    /// Pushes sent at once.
    pub concurrency: usize,
    /// Most deliveries claimed per round trip.
    pub claim_batch: u32,
}

impl Dispatcher {
    /// Workers over `store`, signing with `keyring` as `server_id`, sending through `senders`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        server_id: String,
        senders: Senders,
        metrics: Arc<Metrics>,
        gate: Arc<RingGate>,
        wake: Arc<Notify>,
        settings: WorkerSettings,
        signed: Arc<SignedPushes>,
    ) -> Self {
        let concurrency = settings.concurrency.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Dispatcher {
            keyring,
            server_id,
            senders,
            metrics,
            gate,
            wake,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency: concurrency as u32,
            claim_batch: settings.claim_batch.max(1) as usize,
            instance: settings.instance,
            lease: match store.backend() {
                Backend::Postgres => LeaseClock::new(settings.lease_ms, now_ms()),
                Backend::Sqlite => LeaseClock::unbounded(settings.lease_ms),
            },
            draining: watch::channel(false).0,
            signed,
            device_keys: DeviceKeys::default(),
            store,
        }
    }

    /// Sends what `claimed` hands over (new deliveries, the fast path) and claims what is due
    /// (the rest of a fan-out, retries, lapsed claims) while permits are free, until
    /// [`Dispatcher::drain`] is called; then finishes as the drain says.
    pub async fn run(self: Arc<Self>, claimed: HandedOver, grace: Duration) {
        let (results, finished) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_results(self.store.clone(), self.instance.clone(), finished));
        // With SQLite no other instance can take claims over: nothing to renew.
        let _heartbeat = (self.store.backend() == Backend::Postgres)
            .then(|| AbortOnDrop(tokio::spawn(self.clone().heartbeat())));
        let backlog = claimed.backlog.clone();
        let fast = tokio::spawn(self.clone().send_handed_over(claimed, results.clone()));
        self.claim_and_send(&results, &backlog).await;

        // Draining: nothing new is claimed; what was handed over and not started goes back.
        let started = Instant::now();
        let _ = fast.await;
        let in_flight = self.concurrency - self.permits.available_permits() as u32;
        tracing::info!(in_flight, "draining: waiting for pushes in flight");
        let all_done =
            tokio::time::timeout(grace, self.permits.clone().acquire_many_owned(self.concurrency)).await;
        drop(results);
        let left = grace.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
        let written = all_done.is_ok() && tokio::time::timeout(left, writer).await.is_ok();
        // Whatever is still claimed here (sends that outlived the grace, results not written) is
        // handed to the other instances now rather than when its lease runs out.
        match self.store.lapse_claims(&self.instance, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(deliveries = n, "handed over claims whose results are unknown"),
            Err(e) => tracing::error!(error = %e, "handing over claims failed; they lapse with their lease"),
        }
        tracing::info!(all_written = written, ms = started.elapsed().as_millis() as u64, "drained");
    }

    /// Stops claiming, hands back what was not started, lets sends in flight finish; `run`
    /// returns when that is done.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// The fast path: deliveries this instance stored, claimed ones first.
    async fn send_handed_over(
        self: Arc<Self>,
        mut handed: HandedOver,
        results: mpsc::UnboundedSender<DeliveryResult>,
    ) {
        let mut draining = self.draining.subscribe();
        // Unclaimed deliveries taken from their channel and not yet claimed, in order.
        let mut held = std::collections::VecDeque::new();
        loop {
            let next = match handed.claimed.try_recv() {
                Ok(next) => Some(next),
                Err(_) => match held.pop_front() {
                    Some(next) => Some(next),
                    None => tokio::select! {
                        biased;
                        _ = draining.wait_for(|d| *d) => None,
                        Some(next) = handed.claimed.recv() => Some(next),
                        Some(next) = handed.stored.recv() => Some(next),
                        else => None,
                    },
                },
            };
            let Some(next) = next else { break };
            let permit = tokio::select! {
                biased;
                _ = draining.wait_for(|d| *d) => None,
                permit = self.permits.clone().acquire_owned() => permit.ok(),
            };
            let Some(permit) = permit else {
                self.give_back(next, &results, &handed.backlog);
                break;
            };
            if next.delivery.status != DeliveryStatus::Pending {
                self.spawn_delivery(next.delivery, Some(next.call), permit, &results);
                continue;
            }
            // A claimed delivery that came meanwhile goes first.
            if let Ok(claimed) = handed.claimed.try_recv() {
                held.push_front(next);
                self.spawn_delivery(claimed.delivery, Some(claimed.call), permit, &results);
                continue;
            }
            // As many unclaimed ones as there are free workers, claimed in one statement.
            let mut batch = vec![(next, permit)];
            while batch.len() < self.claim_batch {
                let Ok(permit) = self.permits.clone().try_acquire_owned() else { break };
                match held.pop_front().or_else(|| handed.stored.try_recv().ok()) {
                    Some(next) => batch.push((next, permit)),
                    None => break,
                }
            }
            self.claim_stored(batch, &results, &handed.backlog).await;
        }
        for next in held {
            self.give_back(next, &results, &handed.backlog);
        }
        while let Ok(next) = handed.claimed.try_recv() {
            self.give_back(next, &results, &handed.backlog);
        }
        handed.stored.close();
        while let Ok(next) = handed.stored.try_recv() {
            self.give_back(next, &results, &handed.backlog);
        }
    }

    /// Leaves a handed-over delivery unsent: a claimed one is handed back (released), an
    /// unclaimed one stays pending in the database for whichever instance claims it.
    fn give_back(&self, next: Claimed, results: &mpsc::UnboundedSender<DeliveryResult>, backlog: &Backlog) {
        if next.delivery.status == DeliveryStatus::Pending {
            backlog.taken(1);
        } else {
            let _ = results.send(released(&next.delivery));
        }
    }

    /// Claims `batch` (stored unclaimed, each with a permit) by id and sends what this instance
    /// got; what another instance claimed first is its own. If the claim fails they stay
    /// pending, for the claim loop.
    async fn claim_stored(
        self: &Arc<Self>,
        batch: Vec<(Claimed, OwnedSemaphorePermit)>,
        results: &mpsc::UnboundedSender<DeliveryResult>,
        backlog: &Backlog,
    ) {
        let now = now_ms();
        let ids: Vec<&str> = batch.iter().map(|(c, _)| c.delivery.delivery_id.as_str()).collect();
        let claimed = self.store.claim_stored(&self.instance, &ids, now, self.lease.lease_ms).await;
        let n = batch.len();
        match claimed {
            Ok(claimed) => {
                let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
                if claimed.len() < n {
                    // Whatever is still pending (another instance may have claimed the rest) is
                    // for the claim loop now, which may be idling.
                    self.wake.notify_one();
                }
                for (Claimed { mut delivery, call }, permit) in batch {
                    if !claimed.contains(&delivery.delivery_id) {
                        continue;
                    }
                    delivery.status = DeliveryStatus::Sending;
                    delivery.attempts = 1;
                    delivery.claimed_by = Some(self.instance.clone());
                    delivery.claimed_until = Some(now + self.lease.lease_ms);
                    self.spawn_delivery(delivery, Some(call), permit, results);
                }
                backlog.taken(n);
            }
            Err(e) => {
                tracing::error!(error = %e, deliveries = n, "claiming stored deliveries failed; the claim loop retries");
                drop(batch);
                backlog.taken(n);
                self.wake.notify_one();
            }
        }
    }

    /// Claims due deliveries, as many as there are free permits, until draining.
    async fn claim_and_send(
        self: &Arc<Self>,
        results: &mpsc::UnboundedSender<DeliveryResult>,
        backlog: &Backlog,
    ) {
        let mut draining = self.draining.subscribe();
        loop {
            // Deliveries handed over unclaimed are due: the fast path claims them, by id.
            if backlog.len.load(Ordering::Acquire) > 0 {
                let emptied = backlog.emptied.notified();
                if backlog.len.load(Ordering::Acquire) > 0 {
                    tokio::select! {
                        _ = draining.wait_for(|d| *d) => return,
                        _ = emptied => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                continue;
            }
            let first = tokio::select! {
                biased;
                _ = draining.wait_for(|d| *d) => return,
                permit = self.permits.clone().acquire_owned() => permit,
            };
            let Ok(first) = first else { return };
            let mut permits = vec![first];
            while permits.len() < self.claim_batch {
                match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let now = now_ms();
            let claimed = match self
                .store
                .claim_due(&self.instance, now, self.lease.lease_ms, permits.len() as i64)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; retrying");
                    drop(permits);
                    tokio::select! {
                        _ = draining.wait_for(|d| *d) => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                drop(permits);
                tokio::select! {
                    _ = draining.wait_for(|d| *d) => return,
                    _ = self.idle() => {}
                }
                continue;
            }
            let calls = self.calls(&claimed).await;
            self.record_takeovers(&claimed, &calls, now).await;
            for (delivery, permit) in claimed.into_iter().zip(permits) {
                let call = calls.get(&delivery.call_id).cloned();
                self.spawn_delivery(delivery, call, permit, results);
            }
        }
    }

    fn spawn_delivery(
        self: &Arc<Self>,
        delivery: Delivery,
        call: Option<Arc<CallRecord>>,
        permit: OwnedSemaphorePermit,
        results: &mpsc::UnboundedSender<DeliveryResult>,
    ) {
        let (this, results) = (self.clone(), results.clone());
        tokio::spawn(async move {
            let result = this.deliver(&delivery, call).await;
            log_result(&delivery, &result);
            let _ = results.send(result);
            drop(permit);
        });
    }

    /// Renews this instance's claims three times per lease, for as long as it runs.
    async fn heartbeat(self: Arc<Self>) {
        let every = Duration::from_millis((self.lease.lease_ms / 3).max(100) as u64);
        loop {
            let started = now_ms();
            match self.store.renew_claims(&self.instance, started + self.lease.lease_ms).await {
                Ok(_) => self.lease.renewed(started),
                Err(e) => {
                    tracing::error!(error = %e, "renewing claims failed; they lapse unless the next renewal works")
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Sleeps until woken, until the next delivery is due, or for a second at most.
    async fn idle(&self) {
        let wait = match self.store.next_due().await {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(1, 1000) as u64),
            _ => Duration::from_secs(1),
        };
        let _ = tokio::time::timeout(wait, self.wake.notified()).await;
    }

    /// The calls of a batch, one read per distinct call.
    async fn calls(&self, deliveries: &[Delivery]) -> HashMap<String, Arc<CallRecord>> {
        let mut calls = HashMap::new();
        for d in deliveries {
            if !calls.contains_key(&d.call_id) {
                if let Ok(Some(call)) = self.store.call(&d.call_id).await {
                    calls.insert(d.call_id.clone(), Arc::new(call));
                }
            }
        }
        calls
    }

    /// Puts on the timeline each taken-over delivery that will be sent again (one whose time is
    /// up says so in its own result).
    async fn record_takeovers(
        &self,
        claimed: &[Delivery],
        calls: &HashMap<String, Arc<CallRecord>>,
        now: i64,
    ) {
        let events: Vec<_> = claimed
            .iter()
            .filter(|d| d.outcome.as_deref() == Some(RESULT_UNKNOWN))
            .filter(|d| calls.get(&d.call_id).is_some_and(|call| now < deadline(d, call, now)))
            .map(|d| {
                (
                    d.call_id.clone(),
                    Some(d.delivery_id.clone()),
                    "delivery_taken_over",
                    Some(
                        "the instance sending it stopped before recording a result (it may have been sent); \
                         sending again"
                            .to_owned(),
                    ),
                )
            })
            .collect();
        if !events.is_empty() {
            tracing::warn!(deliveries = events.len(), "took over deliveries from a stopped instance");
            if let Err(e) = self.store.add_events(now, &events).await {
                tracing::warn!(error = %e, "recording taken-over deliveries failed");
            }
        }
    }

    /// Sends one delivery and does what [`delivery_policy`] says follows. One whose claim this
    /// instance may have lost (no heartbeat reached the database for most of a lease) is handed
    /// back unsent; if another instance took it meanwhile, that instance's result stands.
    async fn deliver(&self, delivery: &Delivery, call: Option<Arc<CallRecord>>) -> DeliveryResult {
        let now = now_ms();
        let finish = |end| finished(delivery, end, now);
        let Some(call) = call else { return finish(delivery_policy::call_missing()) };
        let deadline = match delivery_policy::before_send(delivery, &call, now) {
            Ok(deadline) => deadline,
            Err(end) => return finish(end),
        };
        let push = match self.push(delivery, &call, now, deadline) {
            Ok(push) => push,
            Err(detail) => return finish(delivery_policy::unbuildable(detail)),
        };
        let is_ring = delivery.kind == PushKind::Ring;
        if is_ring {
            match self.gate.may_ring(&self.store, &delivery.call_id, &delivery.user_id).await {
                Ok(true) => {}
                Ok(false) => return finish(delivery_policy::gate_closed()),
                Err(e) => {
                    let detail = format!("could not confirm the call still rings: {e}");
                    let backoff = jittered_backoff(delivery.attempts);
                    let step = delivery_policy::gate_unsure(detail, deadline, now_ms(), backoff);
                    return self.follow(delivery, step, now).await;
                }
            }
        }
        if !self.lease.holds(now_ms()) {
            tracing::warn!(
                call_id = %delivery.call_id,
                delivery_id = %delivery.delivery_id,
                "not sending: this instance's claims may have lapsed"
            );
            return released(delivery);
        }
        let sender = self.senders.for_platform(delivery.platform).clone();
        let started = Instant::now();
        if is_ring && delivery.attempts == 1 {
            self.metrics.ring_to_send.observe((now - call.created_at).max(0) as f64 / 1000.0);
        }
        let outcome = send_within_quota(&self.store, &self.metrics, sender.as_ref(), &push, now).await;
        let platform = delivery.platform;
        self.metrics.provider_latency(platform).observe(started.elapsed().as_secs_f64());
        self.metrics.delivery(platform, delivery.kind, &outcome).inc();
        // A refused request is logged with the delivery's result (`log_result`).
        if let SendOutcome::ConfigError { detail } = &outcome {
            self.metrics.config_errors(platform).inc();
            tracing::error!(
                platform = %platform.as_str(),
                call_id = %delivery.call_id,
                delivery_id = %delivery.delivery_id,
                %detail,
                "provider configuration error: pushes to this platform fail until it is fixed"
            );
        }
        let step = delivery_policy::next_step(
            delivery,
            outcome,
            deadline,
            now_ms(),
            jittered_backoff(delivery.attempts),
        );
        self.follow(delivery, step, now).await
    }

    /// Does what `step` says for `delivery`, whose attempt started at `now`, and gives its result.
    async fn follow(&self, delivery: &Delivery, step: Step, now: i64) -> DeliveryResult {
        let finish = |end| finished(delivery, end, now);
        match step {
            Step::Finish(end) => finish(end),
            Step::Retry { at, outcome, detail } => {
                result(delivery, DeliveryStatus::Pending, outcome, Some(detail), at)
            }
            Step::Delivered { provider_id, ring } => {
                let ended_in_flight = ring && self.gate.known_ended(&delivery.call_id).await;
                finish(delivery_policy::delivered(provider_id, ended_in_flight))
            }
            Step::ForgetToken { token: DeadToken::AlertToken, detail, invalid_since } => {
                let cleared = self.clear_alert_token(delivery, invalid_since).await;
                finish(delivery_policy::forgotten(detail, cleared))
            }
            Step::ForgetToken { token: DeadToken::Installation, detail, invalid_since } => {
                self.prune(delivery, invalid_since).await;
                finish(delivery_policy::forgotten(detail, false))
            }
        }
    }

    /// Clears the dead APNs alert token of `d`'s installation, which still rings on its VoIP
    /// token; whether it was cleared.
    async fn clear_alert_token(&self, d: &Delivery, invalid_since: Option<i64>) -> bool {
        let cleared =
            match self.store.clear_alert_token(&d.user_id, &d.installation_id, &d.token, invalid_since).await
            {
                Ok(cleared) => cleared,
                Err(e) => {
                    tracing::warn!(error = %e, "clearing a dead alert token failed");
                    false
                }
            };
        if cleared {
            tracing::info!(
                call_id = %d.call_id,
                delivery_id = %d.delivery_id,
                installation_id = %d.installation_id,
                token = %crate::auth::redact(&d.token),
                "cleared a dead APNs alert token; the installation still rings"
            );
        }
        cleared
    }

    /// Prunes `d`'s installation, whose token is dead.
    async fn prune(&self, d: &Delivery, invalid_since: Option<i64>) {
        prune_dead_token(
            &self.store,
            &self.metrics,
            &d.user_id,
            &d.installation_id,
            d.platform,
            &d.token,
            invalid_since,
        )
        .await;
    }

    /// The push a delivery sends, signed now with the current key; for an installation on
    /// wire v2 sealed to its device key (a missed-call notification: naming nobody). A key that
    /// cannot be used fails the delivery: it is never sent readable instead.
    fn push(&self, d: &Delivery, call: &CallRecord, now: i64, deadline: i64) -> Result<OutgoingPush, String> {
        let now_s = now / 1000;
        let (payload, missed) = match d.kind {
            PushKind::Ring | PushKind::Cancel => {
                let evt = if d.kind == PushKind::Ring { PushEvent::Ring } else { PushEvent::Cancel };
                let (platform, server_id, user, jti) =
                    (d.platform, &self.server_id, &d.user_id, &d.delivery_id);
                let signer = self.keyring.signer();
                let payload = match &d.device_key {
                    None => self
                        .signed
                        .payload(platform, server_id, call, user, jti, evt, d.reason, now_s, &signer),
                    // Wire v2: sealed to the installation's key, never sent readable.
                    Some(x) => {
                        let key = self
                            .device_keys
                            .get(x)
                            .map_err(|e| format!("the installation's device key is not usable: {e}"))?;
                        let (reason, signed) = (d.reason, &self.signed);
                        signed.sealed_payload(
                            platform, server_id, call, user, jti, evt, reason, now_s, &signer, &key,
                        )
                    }
                }
                .map_err(|e| e.to_string())?;
                (Some(payload), None)
            }
            PushKind::Missed => (
                None,
                Some(MissedCall {
                    // A wire v2 installation's notification names nobody (see `MissedCall`).
                    caller: d.device_key.is_none().then(|| MissedCaller {
                        id: call.caller_id.clone(),
                        name: call.caller_name.clone(),
                        video: call.video,
                    }),
                    app_message_id: missed_call_message_id(&call.call_id),
                }),
            ),
        };
        let ttl_seconds = match d.kind {
            // A missed-call notification may wait for the device longer than a ring.
            PushKind::Missed => 86_400,
            _ => u32::try_from((deadline - now).max(1000) / 1000).unwrap_or(u32::MAX),
        };
        Ok(OutgoingPush {
            delivery_id: d.delivery_id.clone(),
            call_id: d.call_id.clone(),
            installation_id: d.installation_id.clone(),
            platform: d.platform,
            token: d.token.clone(),
            apns_environment: d.apns_environment,
            kind: d.kind,
            payload,
            missed,
            ttl_seconds,
            expires_at: deadline / 1000,
        })
    }
}

/// Prunes `user`'s installation `installation` whose `token` the provider declared dead, unless
/// it was re-registered with another token meanwhile (or, with `invalid_since`, registered
/// after the provider saw the token die); counts and logs it. Whether it was pruned. The one
/// path for every dead token: a send outcome or a delivery receipt.
pub(crate) async fn prune_dead_token(
    store: &Store,
    metrics: &Metrics,
    user: &str,
    installation: &str,
    platform: callpush_proto::model::Platform,
    token: &str,
    invalid_since: Option<i64>,
) -> bool {
    match store.prune_installation(user, installation, token, invalid_since).await {
        Ok(true) => {
            metrics.pruned.inc();
            tracing::info!(
                installation_id = %installation,
                %user,
                platform = %platform.as_str(),
                token = %crate::auth::redact(token),
                "pruned an installation whose token is dead"
            );
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(error = %e, "pruning an installation failed");
            false
        }
    }
}

/// Sends `push` through `sender` at `now`, first taking one from the sender's daily quota if it
/// has one (in the database, so the quota holds across instances) and giving it back when the
/// push was not accepted. A used-up quota is [`SendOutcome::QuotaExhausted`], counted in
/// `callpush_provider_quota_refusals_total`; a database that cannot say is a passing failure.
pub(crate) async fn send_within_quota(
    store: &Store,
    metrics: &Metrics,
    sender: &dyn crate::senders::Sender,
    push: &OutgoingPush,
    now: i64,
) -> SendOutcome {
    let Some(quota) = sender.daily_quota() else { return sender.send(push).await };
    let day = crate::time::utc_day(now);
    match store.take_daily(&quota.counter, day, 1, quota.limit).await {
        Ok(true) => {}
        Ok(false) => {
            metrics
                .quota_refusals
                .get_or_create(&PlatformLabels { platform: push.platform.as_str().into() })
                .inc();
            tracing::warn!(platform = %push.platform, counter = %quota.counter, "not sent: {}", quota.describe);
            return SendOutcome::QuotaExhausted { detail: quota.describe };
        }
        Err(e) => {
            return SendOutcome::Transient { detail: format!("counting against the daily quota failed: {e}") }
        }
    }
    let outcome = sender.send(push).await;
    if !matches!(outcome, SendOutcome::Delivered { .. }) {
        if let Err(e) = store.give_back_daily(&quota.counter, day, 1).await {
            tracing::warn!(error = %e, "giving back a daily quota slot failed");
        }
    }
    outcome
}

/// Logs what became of one attempt at `d`, with the ids that find it (`GET /v1/calls/{call_id}`
/// shows its timeline) and the token shortened: a failure or a retry at warn (a dead token, the
/// app uninstalled, at info: it is routine), the rest at debug.
fn log_result(d: &Delivery, r: &DeliveryResult) {
    let (platform, kind, attempt) = (d.platform.as_str(), d.kind.as_str(), d.attempts);
    let (call_id, delivery_id, installation_id) = (&d.call_id, &d.delivery_id, &d.installation_id);
    let (outcome, detail) = (r.outcome.as_str(), r.detail.as_deref());
    macro_rules! log {
        ($level:ident, $($extra:tt)*) => {
            tracing::$level!(
                %call_id, %delivery_id, %installation_id, %platform, %kind, %outcome, attempt,
                token = %crate::auth::redact(&d.token), detail,
                $($extra)*
            )
        };
    }
    match r.status {
        DeliveryStatus::Pending if outcome == RELEASED => log!(debug, "delivery handed back unsent"),
        DeliveryStatus::Pending => {
            log!(warn, retry_in_ms = (r.next_attempt_at - r.at).max(0), "delivery failed; retrying")
        }
        DeliveryStatus::Failed if outcome == "invalid_token" => {
            log!(info, "delivery failed: the token is dead")
        }
        DeliveryStatus::Failed => log!(warn, "delivery failed"),
        DeliveryStatus::Unknown => log!(warn, "delivery result unknown: it may have been sent"),
        DeliveryStatus::Delivered => log!(debug, "delivered"),
        DeliveryStatus::Skipped => log!(debug, "delivery skipped: the call stopped ringing"),
        DeliveryStatus::Sending => log!(debug, "delivery still sending"),
    }
}

/// A claimed delivery handed back unattempted, due at once.
fn released(d: &Delivery) -> DeliveryResult {
    result(d, DeliveryStatus::Pending, RELEASED, Some("handed back by a draining instance".into()), now_ms())
}

/// The result of `d` finished as `end`, its attempt started at `now`.
fn finished(d: &Delivery, end: Finish, now: i64) -> DeliveryResult {
    result(d, end.status, end.outcome, end.detail, now)
}

/// The result of `d` known now: `status`, `outcome` and `detail`, next due at `next`.
fn result(
    d: &Delivery,
    status: DeliveryStatus,
    outcome: &str,
    detail: Option<String>,
    next: i64,
) -> DeliveryResult {
    DeliveryResult {
        delivery_id: d.delivery_id.clone(),
        call_id: d.call_id.clone(),
        status,
        outcome: outcome.to_owned(),
        detail,
        next_attempt_at: next,
        at: now_ms(),
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Most results written per transaction: enough to amortise a commit, few enough that a new
/// call waiting for the same (SQLite) writer is not held up long.
const RESULT_BATCH: usize = 128;

/// Writes send results back in batches: one transaction per burst instead of one per push.
async fn write_results(
    store: Store,
    instance: String,
    mut finished: mpsc::UnboundedReceiver<DeliveryResult>,
) {
    let mut batch = Vec::with_capacity(RESULT_BATCH);
    while let Some(first) = finished.recv().await {
        batch.push(first);
        while batch.len() < RESULT_BATCH {
            match finished.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // A failed write is retried; the claims' leases keep the deliveries safe meanwhile.
        let mut delay = Duration::from_millis(100);
        while let Err(e) = store.finish_deliveries(&instance, &batch).await {
            tracing::error!(error = %e, n = batch.len(), "writing delivery results failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        batch.clear();
    }
}

/// Exponential backoff with full jitter, ms: drawn from 1 to the policy's ceiling. Jitter only
/// spreads retries apart, so it needs no cryptographic randomness: std's randomly keyed hasher
/// (keys drawn from the OS once per thread, then stepped per use) gives it without a system call.
fn jittered_backoff(attempts: i64) -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = delivery_policy::backoff_ceiling(attempts).max(1);
    let draw = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (draw % ceiling as u64) as i64 + 1
}
