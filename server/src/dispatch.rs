//! The delivery workers: claim due deliveries, build each push (signed with the current key),
//! hand it to its platform's sender, and act on the outcome (DESIGN §6): prune dead tokens,
//! honour `Retry-After`, back off with jitter, never retry past the moment the push stops
//! mattering, and alert on configuration errors. Results are written back in batches.
//!
//! Claims are leases: a delivery claimed by an instance that then dies is claimed again once
//! the lease lapses, so a crash in the middle of a fan-out loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callpush::model::PushEvent;
use callpush::wire::{encode_push, missed_call_message_id};
use tokio::sync::{mpsc, Notify, Semaphore};

use crate::metrics::{DeliveryLabels, Metrics, PlatformLabels};
use crate::rings::{Claimed, Rings};
use crate::senders::{MissedCall, OutgoingPush, SendOutcome, Senders};
use crate::store::{CallPhase, CallRecord, Delivery, DeliveryResult, DeliveryStatus, PushKind, Store};

/// How long a claim lasts before another worker may take the delivery over, ms.
pub const CLAIM_LEASE: i64 = 30_000;
/// How long a cancel push matters after the call ended, ms.
const CANCEL_WINDOW: i64 = 60_000;
/// How long a missed-call notification is worth retrying, ms.
const MISSED_WINDOW: i64 = 3_600_000;
/// First retry delay; doubles per attempt up to [`MAX_BACKOFF`].
const BASE_BACKOFF: i64 = 500;
const MAX_BACKOFF: i64 = 10_000;

/// Unix ms now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs the delivery workers of one server instance.
pub struct Dispatcher {
    store: Store,
    rings: Arc<Rings>,
    senders: Senders,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    claim_batch: i64,
}

impl Dispatcher {
    /// Workers sending at most `concurrency` pushes at once.
    pub fn new(
        store: Store,
        rings: Arc<Rings>,
        senders: Senders,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
        concurrency: usize,
        claim_batch: u32,
    ) -> Self {
        Dispatcher {
            store,
            rings,
            senders,
            metrics,
            wake,
            permits: Arc::new(Semaphore::new(concurrency)),
            claim_batch: i64::from(claim_batch),
        }
    }

    /// Sends what `claimed` hands over (new deliveries, the fast path) and claims what is due
    /// (retries, other instances' lapsed claims), until the process stops.
    pub async fn run(self: Arc<Self>, mut claimed: mpsc::UnboundedReceiver<Claimed>) {
        let (results, finished) = mpsc::unbounded_channel();
        tokio::spawn(write_results(self.store.clone(), finished));
        let fast = {
            let this = self.clone();
            let results = results.clone();
            tokio::spawn(async move {
                while let Some(Claimed { delivery, call }) = claimed.recv().await {
                    let Ok(permit) = this.permits.clone().acquire_owned().await else { return };
                    let (this, results) = (this.clone(), results.clone());
                    tokio::spawn(async move {
                        let _ = results.send(this.deliver(delivery, Some((*call).clone())).await);
                        drop(permit);
                    });
                }
            })
        };
        let _fast = AbortOnDrop(fast);
        loop {
            let claimed = match self.store.claim_due(now_ms(), CLAIM_LEASE, self.claim_batch).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                self.idle().await;
                continue;
            }
            let calls = self.calls(&claimed).await;
            for delivery in claimed {
                let Ok(permit) = self.permits.clone().acquire_owned().await else { return };
                let this = self.clone();
                let call = calls.get(&delivery.call_id).cloned();
                let results = results.clone();
                tokio::spawn(async move {
                    let result = this.deliver(delivery, call).await;
                    let _ = results.send(result);
                    drop(permit);
                });
            }
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
    async fn calls(&self, deliveries: &[Delivery]) -> HashMap<String, CallRecord> {
        let mut calls = HashMap::new();
        for d in deliveries {
            if !calls.contains_key(&d.call_id) {
                if let Ok(Some(call)) = self.store.call(&d.call_id).await {
                    calls.insert(d.call_id.clone(), call);
                }
            }
        }
        calls
    }

    /// Sends one delivery and decides what happens to it next.
    async fn deliver(&self, delivery: Delivery, call: Option<CallRecord>) -> DeliveryResult {
        let now = now_ms();
        let finish = |status, outcome: &str, detail: Option<String>, next| DeliveryResult {
            delivery_id: delivery.delivery_id.clone(),
            call_id: delivery.call_id.clone(),
            status,
            outcome: outcome.to_owned(),
            detail,
            next_attempt_at: next,
            at: now_ms(),
        };
        let Some(call) = call else {
            return finish(DeliveryStatus::Failed, "call_missing", None, now);
        };
        let deadline = match delivery.kind {
            PushKind::Ring => call.expires_at,
            PushKind::Cancel => call.ended_at.unwrap_or(now) + CANCEL_WINDOW,
            PushKind::Missed => call.ended_at.unwrap_or(now) + MISSED_WINDOW,
        };
        if delivery.kind == PushKind::Ring && call.state != CallPhase::Ringing {
            return finish(
                DeliveryStatus::Skipped,
                "call_ended",
                Some("the call stopped ringing".into()),
                now,
            );
        }
        if now >= deadline {
            return finish(DeliveryStatus::Failed, "expired", Some("the push no longer matters".into()), now);
        }
        let push = match self.push(&delivery, &call, now, deadline) {
            Ok(push) => push,
            Err(detail) => return finish(DeliveryStatus::Failed, "bad_request", Some(detail), now),
        };
        let sender = self.senders.for_platform(delivery.platform).clone();
        let started = Instant::now();
        if delivery.kind == PushKind::Ring && delivery.attempts == 1 {
            self.metrics.ring_to_send.observe((now - call.created_at).max(0) as f64 / 1000.0);
        }
        let outcome = sender.send(&push).await;
        let platform = delivery.platform.as_str().to_owned();
        self.metrics
            .provider_latency
            .get_or_create(&PlatformLabels { platform: platform.clone() })
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .deliveries
            .get_or_create(&DeliveryLabels {
                platform: platform.clone(),
                kind: delivery.kind.as_str().to_owned(),
                outcome: outcome.class().to_owned(),
            })
            .inc();
        let retry = |after: Option<Duration>| {
            let backoff = jittered_backoff(delivery.attempts);
            let wait =
                after.map_or(backoff, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(backoff));
            let at = now_ms().saturating_add(wait);
            (at < deadline).then_some(at)
        };
        match outcome {
            SendOutcome::Delivered { provider_id } => {
                finish(DeliveryStatus::Delivered, "delivered", provider_id, now)
            }
            SendOutcome::InvalidToken { detail, invalid_since } if is_alert_token(&delivery) => {
                // Only the alert token is dead: the VoIP token still rings, so keep the
                // installation and stop sending it missed-call alerts.
                let cleared = match self
                    .store
                    .clear_alert_token(
                        &delivery.user_id,
                        &delivery.installation_id,
                        &delivery.token,
                        invalid_since,
                    )
                    .await
                {
                    Ok(cleared) => cleared,
                    Err(e) => {
                        tracing::warn!(error = %e, "clearing a dead alert token failed");
                        false
                    }
                };
                if cleared {
                    tracing::info!(
                        installation = %delivery.installation_id,
                        token = %crate::auth::redact(&delivery.token),
                        "cleared a dead APNs alert token; the installation still rings"
                    );
                }
                let detail = if cleared { format!("{detail}; the alert token was cleared") } else { detail };
                finish(DeliveryStatus::Failed, "invalid_token", Some(detail), now)
            }
            SendOutcome::InvalidToken { detail, invalid_since } => {
                match self
                    .store
                    .prune_installation(
                        &delivery.user_id,
                        &delivery.installation_id,
                        &delivery.token,
                        invalid_since,
                    )
                    .await
                {
                    Ok(true) => {
                        self.metrics.pruned.inc();
                        tracing::info!(installation = %delivery.installation_id, %platform, "pruned an installation whose token is dead");
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning an installation failed"),
                }
                finish(DeliveryStatus::Failed, "invalid_token", Some(detail), now)
            }
            SendOutcome::RateLimited { retry_after, detail } => match retry(retry_after) {
                Some(at) => finish(DeliveryStatus::Pending, "rate_limited", Some(detail), at),
                None => finish(
                    DeliveryStatus::Failed,
                    "rate_limited",
                    Some(format!("{detail}; no time left to retry")),
                    now,
                ),
            },
            SendOutcome::Transient { detail } => match retry(None) {
                Some(at) => finish(DeliveryStatus::Pending, "transient", Some(detail), at),
                None => finish(
                    DeliveryStatus::Failed,
                    "transient",
                    Some(format!("{detail}; no time left to retry")),
                    now,
                ),
            },
            SendOutcome::BadRequest { detail } => {
                tracing::warn!(%platform, call = %delivery.call_id, %detail, "provider refused the request");
                finish(DeliveryStatus::Failed, "bad_request", Some(detail), now)
            }
            SendOutcome::ConfigError { detail } => {
                self.metrics
                    .config_errors
                    .get_or_create(&PlatformLabels { platform: platform.clone() })
                    .inc();
                tracing::error!(%platform, %detail, "provider configuration error: pushes to this platform fail until it is fixed");
                finish(DeliveryStatus::Failed, "config_error", Some(detail), now)
            }
        }
    }

    /// The push a delivery sends, signed now with the current key.
    fn push(&self, d: &Delivery, call: &CallRecord, now: i64, deadline: i64) -> Result<OutgoingPush, String> {
        let now_s = now / 1000;
        let (payload, missed) = match d.kind {
            PushKind::Ring | PushKind::Cancel => {
                let evt = if d.kind == PushKind::Ring { PushEvent::Ring } else { PushEvent::Cancel };
                let invite = self.rings.invite(call, &d.user_id, &d.delivery_id, evt, d.reason, now_s);
                let payload =
                    encode_push(d.platform, &invite, &self.rings.signer()).map_err(|e| e.to_string())?;
                (Some(payload), None)
            }
            PushKind::Missed => (
                None,
                Some(MissedCall {
                    caller_id: call.caller_id.clone(),
                    caller_name: call.caller_name.clone(),
                    video: call.video,
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

/// Whether `d` goes to an installation's APNs alert token rather than its VoIP token: the
/// missed-call alert does (rings.rs points it there).
fn is_alert_token(d: &Delivery) -> bool {
    d.platform == callpush::model::Platform::Apns && d.kind == PushKind::Missed
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
async fn write_results(store: Store, mut finished: mpsc::UnboundedReceiver<DeliveryResult>) {
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
        while let Err(e) = store.finish_deliveries(&batch).await {
            tracing::error!(error = %e, n = batch.len(), "writing delivery results failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        batch.clear();
    }
}

/// Exponential backoff with full jitter, ms.
fn jittered_backoff(attempts: i64) -> i64 {
    let ceiling = (BASE_BACKOFF << attempts.clamp(1, 8).saturating_sub(1)).min(MAX_BACKOFF);
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    (u64::from_le_bytes(bytes) % ceiling as u64) as i64 + 1
}
