//! Ring orchestration: a call is stored with one delivery per live device before anything is
//! sent; answers, declines, cancels and the deadline move it on, each with the follow-up pushes
//! its devices need (server/README.md, "How a ring runs"), all in one transaction so a crash loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use callpush_proto::ids::CALL_ID;
use callpush_proto::model::{Caller, CancelReason, Platform, PushEvent};
use callpush_proto::wire::{encode_push, sign_for_sealing};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, Notify};

use crate::auth::check_user_id;
use crate::call_push::{invite, SignedAhead, SignedPushes};
use crate::dispatch::HandOver;
use crate::domain::{
    new_id, CallEnd, CallPhase, CallRecord, Delivery, DeliveryStatus, Installation, NotificationsSource,
    PushKind, Webhook,
};
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::ring_gate::RingGate;
use crate::store::{NewCallRows, Store, StoreError};

/// Most callees one call may ring.
pub const MAX_CALLEES: usize = 32;
/// Most app data entries, and their bytes in all: the push must fit every provider.
pub const MAX_DATA_ENTRIES: usize = 32;
/// Most bytes of app data (keys and values).
pub const MAX_DATA_BYTES: usize = 2048;
/// Longest caller display name, characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Why a ring request or call action was refused.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// Bad input; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such call (or not one this identity may see).
    #[error("no such call")]
    NotFound,
    /// The call id is taken.
    #[error("a call with this id already exists")]
    Exists,
    /// The call no longer rings.
    #[error("the call is {}", .0.state.as_str())]
    NotRinging(Box<CallRecord>),
    /// The installation is not the caller's own.
    #[error("the installation does not belong to this user")]
    Forbidden,
    /// The push would not fit a provider.
    #[error("{0}")]
    TooLarge(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A ring request (`POST /v1/calls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// The call id, or `None` to make one.
    pub call_id: Option<String>,
    /// The caller.
    pub from: Caller,
    /// The callees' user ids.
    pub to: Vec<String>,
    /// Video offered.
    pub video: bool,
    /// Ring time, seconds; `None`: the configured default.
    pub ring_seconds: Option<u32>,
    /// App data.
    pub data: BTreeMap<String, String>,
}

/// How a call stopped ringing, seen from a device that did not end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Elsewhere(CancelReason),
    Unanswered(CancelReason),
}

/// What a device that rang needs when the call stops: FCM and WNS get a cancel
/// push; APNs never gets a VoIP cancel and Push Kit's VoIP message only wakes, so both learn of
/// an answer elsewhere over their own connection and get a missed-call notification when
/// nobody answered.
fn followup(platform: Platform, ending: Ending) -> Option<(PushKind, Option<CancelReason>)> {
    match (platform, ending) {
        (Platform::Fcm | Platform::Wns, Ending::Elsewhere(reason) | Ending::Unanswered(reason)) => {
            Some((PushKind::Cancel, Some(reason)))
        }
        (Platform::Apns | Platform::Harmony, Ending::Unanswered(_)) => Some((PushKind::Missed, None)),
        (Platform::Apns | Platform::Harmony, Ending::Elsewhere(_)) => None,
    }
}

/// How this instance claims the deliveries it stores.
#[derive(Debug, Clone)]
pub struct Claimer {
    /// This instance, as claims name it.
    pub instance: String,
    /// How long a claim holds without a heartbeat, ms.
    pub lease_ms: i64,
    /// Most deliveries of one change claimed at once by the instance that stores them: what its
    /// workers can send right away. The rest wait unclaimed, for whichever instance is free.
    pub fast_claims: usize,
}

impl Claimer {
    /// Claims the first [`Claimer::fast_claims`] of `deliveries` (all new, pending) for this
    /// instance at `now`.
    fn claim_first(&self, mut deliveries: Vec<Delivery>, now: i64) -> Vec<Delivery> {
        for d in deliveries.iter_mut().take(self.fast_claims) {
            d.status = DeliveryStatus::Sending;
            d.attempts = 1;
            d.claimed_by = Some(self.instance.clone());
            d.claimed_until = Some(now + self.lease_ms);
        }
        deliveries
    }
}

/// Of `deliveries` from [`Claimer::claim_first`], the claimed ones the workers sign: the first
/// of each callee on each provider and wire (the rest reuse its signature).
fn sent_first(deliveries: &[Delivery]) -> Vec<Delivery> {
    let mut seen = BTreeSet::new();
    deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Sending)
        .filter(|d| seen.insert((d.user_id.as_str(), d.platform.index(), d.device_key.is_some())))
        .cloned()
        .collect()
}

/// Stores new calls with group commit: calls arriving while a commit is under way are stored
/// together in the next one, so the database commits once per burst instead of once per call.
/// A call arriving alone is stored at once.
#[derive(Clone)]
struct CallCreator {
    queue: mpsc::UnboundedSender<(NewCallRows, Reply)>,
}

/// Whether a call was created, with its rows given back.
type Reply = tokio::sync::oneshot::Sender<(Result<bool, StoreError>, NewCallRows)>;

/// Most calls stored in one commit.
const MAX_GROUP: usize = 128;

impl CallCreator {
    fn start(store: Store) -> Self {
        let (queue, mut waiting) = mpsc::unbounded_channel::<(NewCallRows, Reply)>();
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match waiting.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (rows, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
                match store.create_calls(&rows).await {
                    Ok(created) => {
                        for ((reply, created), rows) in replies.into_iter().zip(created).zip(rows) {
                            let _ = reply.send((Ok(created), rows));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for (reply, rows) in replies.into_iter().zip(rows) {
                            let _ = reply.send((Err(StoreError::Unavailable(message.clone())), rows));
                        }
                    }
                }
            }
        });
        CallCreator { queue }
    }

    /// Queues `rows` to be stored; [`Storing::done`] says whether the call was created.
    fn submit(&self, rows: NewCallRows) -> Result<Storing, StoreError> {
        let (reply, created) = tokio::sync::oneshot::channel();
        self.queue
            .send((rows, reply))
            .map_err(|_| StoreError::Unavailable("the server is shutting down".into()))?;
        Ok(Storing(created))
    }
}

/// A call queued to be stored.
struct Storing(tokio::sync::oneshot::Receiver<(Result<bool, StoreError>, NewCallRows)>);

impl Storing {
    /// Whether the call was created, and its rows back.
    async fn done(self) -> Result<(bool, NewCallRows), StoreError> {
        let (created, rows) =
            self.0.await.map_err(|_| StoreError::Unavailable("the server is shutting down".into()))?;
        Ok((created?, rows))
    }
}

/// Wakes long-polls when a call changes in this instance, or when it shuts down.
#[derive(Clone)]
pub struct CallWatch {
    changed: broadcast::Sender<String>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Default for CallWatch {
    fn default() -> Self {
        CallWatch { changed: broadcast::channel(4096).0, stopping: tokio::sync::watch::channel(false).0 }
    }
}

impl CallWatch {
    fn notify(&self, call_id: &str) {
        let _ = self.changed.send(call_id.to_owned());
    }
}

/// The ring orchestrator.
pub struct Rings {
    store: Store,
    keyring: Arc<Keyring>,
    metrics: Arc<Metrics>,
    watch: CallWatch,
    gate: Arc<RingGate>,
    claimer: Claimer,
    dispatch: Arc<Notify>,
    claimed: HandOver,
    creator: CallCreator,
    server_id: String,
    default_ring_seconds: u32,
    max_ring_seconds: u32,
    webhooks: bool,
    /// The workers' signed pushes, which a new call's first are signed into while it is stored.
    signed: Arc<SignedPushes>,
    /// [`Rings::sealed_room`] by provider and signing key.
    sealed_rooms: std::sync::Mutex<std::collections::HashMap<(usize, String), usize>>,
}

/// More than the bytes the pad claim adds to the claims of a push signed for sealing.
const SEALED_PAD_MARGIN: usize = 16;

impl Rings {
    /// An orchestrator over `store`. Deliveries it claims go to the workers through `claimed`;
    /// `dispatch` wakes them for anything else; `gate` learns of every end at once.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        metrics: Arc<Metrics>,
        gate: Arc<RingGate>,
        claimer: Claimer,
        dispatch: Arc<Notify>,
        claimed: HandOver,
        server_id: String,
        default_ring_seconds: u32,
        max_ring_seconds: u32,
        webhooks: bool,
        signed: Arc<SignedPushes>,
    ) -> Self {
        let creator = CallCreator::start(store.clone());
        Rings {
            store,
            keyring,
            metrics,
            watch: CallWatch::default(),
            gate,
            claimer,
            dispatch,
            claimed,
            creator,
            server_id,
            default_ring_seconds,
            max_ring_seconds,
            webhooks,
            signed,
            sealed_rooms: Default::default(),
        }
    }

    /// The keys devices must trust.
    pub fn published_keys(&self) -> Vec<callpush_proto::model::Jwk> {
        self.keyring.published()
    }

    /// Stores a call and its ring deliveries, then wakes the dispatcher.
    pub async fn create(&self, request: NewCall, now: i64) -> Result<(CallRecord, Vec<Delivery>), RingError> {
        let (callees, ring_seconds) = self.check(&request)?;
        let call_id = request.call_id.clone().unwrap_or_else(new_id);
        let call = CallRecord {
            call_id: call_id.clone(),
            caller_id: request.from.id.clone(),
            caller_name: request.from.name.clone(),
            video: request.video,
            data: request.data.clone(),
            state: CallPhase::Ringing,
            reason: None,
            answered_by: None,
            created_at: now,
            expires_at: now + i64::from(ring_seconds) * 1000,
            ended_at: None,
            version: 1,
        };
        self.check_size(&call, &callees)?;
        let installations = self.store.live_installations(&callees, now).await?;
        self.check_sealed_size(&call, &callees, &installations)?;
        let deliveries = self.claimer.claim_first(
            installations.iter().map(|i| delivery(&call_id, i, PushKind::Ring, None, now)).collect(),
            now,
        );
        let webhook = self.webhook(&call, "call.ringing", now);
        let notes = installations
            .iter()
            .zip(&deliveries)
            .filter_map(|(inst, d)| {
                Some((d.delivery_id.clone(), "notifications_off", notifications_off(inst)?))
            })
            .collect();
        // What the workers send first, signed below while the call is committed.
        let (ahead_call, ahead) = (call.clone(), sent_first(&deliveries));
        let rows = NewCallRows { call, callees, deliveries, webhook, notes };
        let storing = std::time::Instant::now();
        let stored = self.creator.submit(rows)?;
        // The group commit starts when this task yields: sign meanwhile, on this thread, while
        // the database's thread writes and syncs.
        tokio::task::yield_now().await;
        let ahead =
            SignedAhead::sign(&self.server_id, &ahead_call, &ahead, now / 1000, &self.keyring.signer());
        let (created, NewCallRows { call, deliveries, .. }) = stored.done().await?;
        if !created {
            return Err(RingError::Exists);
        }
        self.signed.publish(ahead);
        self.gate.stored(&call_id, storing).await;
        self.metrics.rings.inc();
        self.hand_over(&deliveries, &call);
        // The workers just woken run on this thread before it comes back here: the first pushes
        // go on the wire before the log line and the answer are written.
        tokio::task::yield_now().await;
        tracing::info!(
            call_id = %call.call_id,
            caller = %call.caller_id,
            deliveries = deliveries.len(),
            platforms = %platform_counts(&deliveries),
            ring_seconds,
            "call created: ringing"
        );
        Ok((call, deliveries))
    }

    fn check(&self, request: &NewCall) -> Result<(Vec<String>, u32), RingError> {
        if let Some(id) = &request.call_id {
            if !CALL_ID.accepts(id) {
                return Err(RingError::Invalid(CALL_ID.refusal()));
            }
        }
        check_user_id(&request.from.id)
            .map_err(|_| RingError::Invalid("from.id must be a user id".into()))?;
        if let Some(name) = &request.from.name {
            if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
                return Err(RingError::Invalid(format!(
                    "from.name must be at most {MAX_NAME_CHARS} characters without control characters"
                )));
            }
        }
        if request.to.is_empty() || request.to.len() > MAX_CALLEES {
            return Err(RingError::Invalid(format!("to must name 1 to {MAX_CALLEES} users")));
        }
        let callees: BTreeSet<String> = request.to.iter().cloned().collect();
        for user in &callees {
            check_user_id(user).map_err(|_| RingError::Invalid(format!("to: `{user}` is not a user id")))?;
        }
        let ring_seconds = request.ring_seconds.unwrap_or(self.default_ring_seconds);
        if !(5..=self.max_ring_seconds).contains(&ring_seconds) {
            return Err(RingError::Invalid(format!(
                "ring_seconds must be from 5 to {}",
                self.max_ring_seconds
            )));
        }
        if request.data.keys().any(|k| k.is_empty() || k.len() > 64) {
            return Err(RingError::Invalid("data keys must be 1 to 64 bytes".into()));
        }
        let data_bytes: usize = request.data.iter().map(|(k, v)| k.len() + v.len()).sum();
        if request.data.len() > MAX_DATA_ENTRIES || data_bytes > MAX_DATA_BYTES {
            return Err(RingError::TooLarge(format!(
                "data allows {MAX_DATA_ENTRIES} entries and {MAX_DATA_BYTES} bytes in all"
            )));
        }
        Ok((callees.into_iter().collect(), ring_seconds))
    }

    /// Every push of this call must fit every provider, if need be with the caller name
    /// shortened; only app data that is too large is refused.
    fn check_size(&self, call: &CallRecord, callees: &[String]) -> Result<(), RingError> {
        let invite = largest_push(&self.server_id, call, callees);
        let signer = self.keyring.signer();
        // A JWS as long as the signed one tells for all four providers in the usual case, the
        // push fitting as it is, without signing anything: the workers sign when they send.
        let jws = callpush_proto::wire::sign_blank(&invite, signer.kid());
        let fits = |p: Platform| callpush_proto::wire::wrap(p, jws.clone()).size() <= p.payload_limit();
        for platform in Platform::ALL.into_iter().filter(|p| !fits(*p)) {
            encode_push(platform, &invite, &signer).map_err(|e| RingError::TooLarge(e.to_string()))?;
        }
        Ok(())
    }

    /// Pushes to wire v2 installations are signed padded to one size per provider, which
    /// leaves the claims less room than a readable push has: app data that fits every provider
    /// readable may not fit sealed. Checked for the providers of the callees' v2 installations
    /// only; usually without signing anything (the room is known per provider and key).
    fn check_sealed_size(
        &self,
        call: &CallRecord,
        callees: &[String],
        installations: &[Installation],
    ) -> Result<(), RingError> {
        let platforms: Vec<Platform> = Platform::ALL
            .into_iter()
            .filter(|p| installations.iter().any(|i| i.platform == *p && i.device_key.is_some()))
            .collect();
        if platforms.is_empty() {
            return Ok(());
        }
        let invite = largest_push(&self.server_id, call, callees);
        let signer = self.keyring.signer();
        let claims = serde_json::to_vec(&invite).map_or(usize::MAX, |c| c.len());
        for platform in platforms {
            // The pad claim takes a dozen bytes: with room to spare it fits as it is.
            if claims.saturating_add(SEALED_PAD_MARGIN) <= self.sealed_room(platform, &signer) {
                continue;
            }
            sign_for_sealing(platform, &invite, &signer).map_err(|e| RingError::TooLarge(e.to_string()))?;
        }
        Ok(())
    }

    /// Bytes of claims a push sealed for `platform` and signed by `signer` holds, pad included:
    /// the same for every such push, learnt once from one signed for sealing.
    fn sealed_room(&self, platform: Platform, signer: &callpush_proto::wire::CallSigner) -> usize {
        let key = (platform.index(), signer.kid().to_owned());
        if let Some(room) = crate::sync::unpoisoned(self.sealed_rooms.lock()).get(&key) {
            return *room;
        }
        let empty = CallRecord {
            call_id: "c".into(),
            caller_id: "a".into(),
            caller_name: None,
            video: false,
            data: BTreeMap::new(),
            state: CallPhase::Ringing,
            reason: None,
            answered_by: None,
            created_at: 0,
            expires_at: 0,
            ended_at: None,
            version: 0,
        };
        let claims = invite(&self.server_id, &empty, "b", "j", PushEvent::Ring, None, 0);
        let room = sign_for_sealing(platform, &claims, signer)
            .ok()
            .and_then(|jws| jws.split('.').nth(1).map(|claims| claims.len() * 3 / 4))
            .unwrap_or(0);
        crate::sync::unpoisoned(self.sealed_rooms.lock()).insert(key, room);
        room
    }

    /// The call `call_id` as `user` may see it: only its callees do.
    pub async fn call_for_callee(&self, call_id: &str, user: &str) -> Result<CallRecord, RingError> {
        if !self.store.is_callee(call_id, user).await? {
            return Err(RingError::NotFound);
        }
        self.store.call(call_id).await?.ok_or(RingError::NotFound)
    }

    /// `installation_id` of `user` answers: the call is answered and every other device that
    /// rang gets what it needs to stop.
    pub async fn answer(
        &self,
        call_id: &str,
        user: &str,
        installation_id: &str,
        now: i64,
    ) -> Result<CallRecord, RingError> {
        let call = self.actionable(call_id, user, installation_id, now).await?;
        let end = CallEnd {
            state: CallPhase::Answered,
            reason: None,
            answered_by: Some(installation_id.to_owned()),
            at: now,
            detail: Some(format!("answered by {user}")),
        };
        let rang = self.rang(call_id).await?;
        let followups =
            followups(&rang, call_id, now, Ending::Elsewhere(CancelReason::AnsweredElsewhere), |d| {
                !(d.user_id == user && d.installation_id == installation_id)
            });
        self.end(&call, end, &followups, "call.answered").await
    }

    /// `user` declines on `installation_id`: their other devices stop ringing; once every callee
    /// declined, the call is declined.
    pub async fn decline(
        &self,
        call_id: &str,
        user: &str,
        installation_id: &str,
        now: i64,
    ) -> Result<CallRecord, RingError> {
        let call = self.actionable(call_id, user, installation_id, now).await?;
        let rang = self.rang(call_id).await?;
        let followups =
            followups(&rang, call_id, now, Ending::Elsewhere(CancelReason::DeclinedElsewhere), |d| {
                d.user_id == user && d.installation_id != installation_id
            });
        let followups = self.claimer.claim_first(followups, now);
        let everyone_declined = self.store.decline(call_id, user, now, &followups).await?;
        tracing::info!(
            %call_id,
            %user,
            %installation_id,
            everyone_declined,
            stopping = followups.len(),
            "callee declined"
        );
        self.gate.declined(call_id, user).await;
        self.watch.notify(call_id);
        self.hand_over(&followups, &call);
        if everyone_declined {
            let end = CallEnd {
                state: CallPhase::Declined,
                reason: None,
                answered_by: None,
                at: now,
                detail: Some("every callee declined".into()),
            };
            return self.end(&call, end, &[], "call.declined").await;
        }
        self.store.call(call_id).await?.ok_or(RingError::NotFound)
    }

    /// The app backend cancels the call.
    pub async fn cancel(
        &self,
        call_id: &str,
        reason: CancelReason,
        now: i64,
    ) -> Result<CallRecord, RingError> {
        let call = self.store.call(call_id).await?.ok_or(RingError::NotFound)?;
        if call.state != CallPhase::Ringing {
            return Err(RingError::NotRinging(Box::new(call)));
        }
        let (state, ending) = match reason {
            CancelReason::Timeout => (CallPhase::Missed, Ending::Unanswered(reason)),
            CancelReason::CallerCancelled => (CallPhase::Cancelled, Ending::Unanswered(reason)),
            CancelReason::AnsweredElsewhere | CancelReason::DeclinedElsewhere => {
                (CallPhase::Cancelled, Ending::Elsewhere(reason))
            }
        };
        let declined = self.declined_users(call_id).await?;
        let rang = self.rang(call_id).await?;
        let followups = followups(&rang, call_id, now, ending, |d| !declined.contains(&d.user_id));
        let (followups, no_alert_token) = self.to_alert_tokens(followups).await?;
        let end = CallEnd {
            state,
            reason: Some(reason),
            answered_by: None,
            at: now,
            detail: Some(reason.to_string()),
        };
        let ended = self
            .end(
                &call,
                end,
                &followups,
                if state == CallPhase::Missed { "call.missed" } else { "call.cancelled" },
            )
            .await?;
        for installation_id in no_alert_token {
            tracing::info!(
                %call_id,
                %installation_id,
                platform = %Platform::Apns.as_str(),
                outcome = %"missed_call_not_sent",
                "no missed-call notification: the installation registered no APNs alert token"
            );
            let detail = format!(
                "installation {installation_id} registered no APNs alert token, so it gets no missed-call \
                 notification; the app shows the missed call when it next runs"
            );
            if let Err(e) =
                self.store.add_event(call_id, None, now, "missed_call_not_sent", Some(&detail)).await
            {
                tracing::warn!(error = %e, call = %call_id, "recording a missed call that was not sent failed");
            }
        }
        Ok(ended)
    }

    /// Points APNs missed-call deliveries at their installation's alert token: the VoIP token
    /// they rang cannot carry an alert (APNs answers `DeviceTokenNotForTopic`). Installations
    /// without one (unregistered since, or never given one) get none; their ids are returned.
    async fn to_alert_tokens(
        &self,
        followups: Vec<Delivery>,
    ) -> Result<(Vec<Delivery>, Vec<String>), RingError> {
        let mut sent = Vec::with_capacity(followups.len());
        let mut not_sent = Vec::new();
        for mut d in followups {
            if !d.goes_to_alert_token() {
                sent.push(d);
                continue;
            }
            let inst = self.store.installation(&d.user_id, &d.installation_id).await?;
            match inst.and_then(|i| i.alert_token.map(|t| (t, i.registered_at))) {
                Some((alert_token, registered_at)) => {
                    d.token = alert_token;
                    d.registered_at = registered_at;
                    sent.push(d);
                }
                None => not_sent.push(d.installation_id),
            }
        }
        Ok((sent, not_sent))
    }

    /// Ends every call whose deadline passed as missed; returns how many.
    pub async fn expire_overdue(&self, now: i64) -> Result<usize, RingError> {
        let mut ended = 0;
        for call in self.store.overdue_calls(now, 256).await? {
            match self.cancel(&call.call_id, CancelReason::Timeout, now).await {
                Ok(_) => ended += 1,
                // Answered or cancelled meanwhile, maybe by another instance.
                Err(RingError::NotRinging(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// Ends every long-poll at once with the call as it is (clients poll again), so a shutdown
    /// does not wait for them.
    pub fn stop_waiting(&self) {
        self.watch.stopping.send_replace(true);
    }

    /// Waits until the call changes from `version`, or `wait` passes, or the server stops;
    /// returns the call as it is.
    pub async fn wait_for_change(
        &self,
        call_id: &str,
        version: i64,
        wait: Duration,
    ) -> Result<CallRecord, RingError> {
        let mut changes = self.watch.changed.subscribe();
        let mut stopping = self.watch.stopping.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let call = self.store.call(call_id).await?.ok_or(RingError::NotFound)?;
            if call.version != version || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
                return Ok(call);
            }
            // Changes made here arrive at once; other instances' changes within a second.
            let poll = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            loop {
                tokio::select! {
                    changed = tokio::time::timeout_at(poll, changes.recv()) => match changed {
                        Ok(Ok(changed)) if changed != call_id => continue,
                        _ => break,
                    },
                    _ = stopping.changed() => break,
                }
            }
        }
    }

    async fn actionable(
        &self,
        call_id: &str,
        user: &str,
        installation_id: &str,
        now: i64,
    ) -> Result<CallRecord, RingError> {
        let call = self.call_for_callee(call_id, user).await?;
        if self.store.installation(user, installation_id).await?.is_none() {
            return Err(RingError::Forbidden);
        }
        if call.state != CallPhase::Ringing || call.expires_at <= now {
            return Err(RingError::NotRinging(Box::new(call)));
        }
        Ok(call)
    }

    async fn end(
        &self,
        call: &CallRecord,
        end: CallEnd,
        followups: &[Delivery],
        event: &str,
    ) -> Result<CallRecord, RingError> {
        let mut ended = call.clone();
        ended.state = end.state;
        ended.reason = end.reason;
        ended.answered_by = end.answered_by.clone();
        ended.ended_at = Some(end.at);
        let webhook = self.webhook(&ended, event, end.at);
        let followups = self.claimer.claim_first(followups.to_vec(), end.at);
        let done = self.store.end_call(&call.call_id, &end, &followups, webhook.as_ref()).await?;
        if done {
            self.gate.call_ended(&call.call_id).await;
        }
        let now = self.store.call(&call.call_id).await?.ok_or(RingError::NotFound)?;
        if !done {
            tracing::debug!(call_id = %call.call_id, state = %now.state.as_str(), "the call had ended already");
            return Err(RingError::NotRinging(Box::new(now)));
        }
        tracing::info!(
            call_id = %call.call_id,
            state = %ended.state.as_str(),
            reason = ended.reason.map(|r| tracing::field::display(r.as_str())),
            answered_by = ended.answered_by.as_deref().map(tracing::field::display),
            detail = end.detail.as_deref(),
            followups = %platform_counts(&followups),
            rang_ms = end.at - call.created_at,
            "call {}",
            ended.state.as_str()
        );
        self.watch.notify(&call.call_id);
        self.hand_over(&followups, &now);
        Ok(now)
    }

    /// Gives the deliveries this instance just stored to its workers: those it claimed are sent
    /// as workers free up, the rest claimed by id as they do (unless another instance was first).
    fn hand_over(&self, deliveries: &[Delivery], call: &CallRecord) {
        if deliveries.is_empty() {
            return;
        }
        let call = Arc::new(call.clone());
        for delivery in deliveries {
            if !self.claimed.send(delivery.clone(), call.clone()) {
                // The workers are gone (shutting down): a claim lapses and a restart sends it.
                self.dispatch.notify_one();
                return;
            }
        }
    }

    /// Ring deliveries that reached (or may have reached) their device.
    async fn rang(&self, call_id: &str) -> Result<Vec<Delivery>, RingError> {
        Ok(self
            .store
            .deliveries(call_id)
            .await?
            .into_iter()
            .filter(|d| {
                d.kind == PushKind::Ring
                    && matches!(
                        d.status,
                        DeliveryStatus::Delivered | DeliveryStatus::Sending | DeliveryStatus::Unknown
                    )
            })
            .collect())
    }

    async fn declined_users(&self, call_id: &str) -> Result<BTreeSet<String>, RingError> {
        Ok(self
            .store
            .callees(call_id)
            .await?
            .into_iter()
            .filter(|(_, declined)| *declined)
            .map(|(u, _)| u)
            .collect())
    }

    fn webhook(&self, call: &CallRecord, event: &str, now: i64) -> Option<Webhook> {
        self.webhooks.then(|| {
            let webhook_id = new_id();
            let body = json!({
                "webhook_id": webhook_id,
                "event": event,
                "at": now,
                "call": {
                    "call_id": call.call_id,
                    "state": call.state.as_str(),
                    "reason": call.reason.map(|r| r.as_str()),
                    "answered_by": call.answered_by,
                    "caller_id": call.caller_id,
                    "video": call.video,
                    "created_at": call.created_at,
                    "expires_at": call.expires_at,
                },
            });
            Webhook { webhook_id, call_id: call.call_id.clone(), body: body.to_string(), attempts: 0 }
        })
    }
}

/// How many of `deliveries` go to each platform, for logs: `apns:1,fcm:2`, or `none`.
fn platform_counts(deliveries: &[Delivery]) -> String {
    let mut counts = BTreeMap::<&str, usize>::new();
    for d in deliveries {
        *counts.entry(d.platform.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(platform, n)| format!("{platform}:{n}")).collect::<Vec<_>>().join(",")
}

/// The timeline detail for ringing `inst` when its notifications are known to be off: the ring
/// may still show (in-app call messages and VoIP pushes do not need them), but a missed-call
/// notification cannot.
fn notifications_off(inst: &Installation) -> Option<String> {
    let n = inst.notifications.filter(|n| !n.enabled)?;
    let who = match n.source {
        NotificationsSource::Device => "the device reported",
        NotificationsSource::PushKitReceipt => "a Push Kit receipt (result 6) said",
    };
    Some(format!(
        "{}: {who} its notifications are off (at {} ms): missed calls cannot show",
        inst.installation_id, n.at
    ))
}

/// One new delivery of `kind` to an installation, pending and unclaimed.
fn delivery(
    call_id: &str,
    inst: &Installation,
    kind: PushKind,
    reason: Option<CancelReason>,
    now: i64,
) -> Delivery {
    Delivery {
        delivery_id: new_id(),
        call_id: call_id.to_owned(),
        installation_id: inst.installation_id.clone(),
        user_id: inst.user_id.clone(),
        platform: inst.platform,
        token: inst.token.clone(),
        apns_environment: inst.apns_environment,
        registered_at: inst.registered_at,
        device_key: inst.device_key.clone(),
        kind,
        reason,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        claimed_until: None,
        claimed_by: None,
        outcome: None,
        detail: None,
        created_at: now,
        updated_at: now,
    }
}

/// The follow-up pushes for devices that rang and `include` selects.
fn followups(
    rang: &[Delivery],
    call_id: &str,
    now: i64,
    ending: Ending,
    include: impl Fn(&Delivery) -> bool,
) -> Vec<Delivery> {
    let mut seen = BTreeSet::new();
    rang.iter()
        .filter(|d| include(d) && seen.insert((d.user_id.clone(), d.installation_id.clone())))
        .filter_map(|d| {
            let (kind, reason) = followup(d.platform, ending)?;
            let inst = Installation {
                installation_id: d.installation_id.clone(),
                user_id: d.user_id.clone(),
                platform: d.platform,
                token: d.token.clone(),
                apns_environment: d.apns_environment,
                app_id: None,
                alert_token: None,
                ttl_seconds: 0,
                registered_at: d.registered_at,
                expires_at: 0,
                notifications: None,
                // What the ring was sealed to, its follow-up is too.
                device_key: d.device_key.clone(),
                device_key_id: None,
            };
            Some(delivery(call_id, &inst, kind, reason, now))
        })
        .collect()
}

/// The largest push `call` can make, to check sizes against before it rings: the cancel with the
/// longest reason to the callee with the longest id (a ring has no `reason`, so it is smaller),
/// under a `jti` as long as a delivery id.
fn largest_push(server_id: &str, call: &CallRecord, callees: &[String]) -> callpush_proto::model::Invite {
    let longest = callees.iter().max_by_key(|c| c.len()).cloned().unwrap_or_default();
    let reason = CancelReason::ALL.into_iter().max_by_key(|r| r.as_str().len());
    invite(server_id, call, &longest, &"x".repeat(32), PushEvent::Cancel, reason, call.created_at / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_gets_the_follow_up_its_rules_allow() {
        let answered = Ending::Elsewhere(CancelReason::AnsweredElsewhere);
        let missed = Ending::Unanswered(CancelReason::Timeout);
        assert_eq!(
            followup(Platform::Fcm, answered),
            Some((PushKind::Cancel, Some(CancelReason::AnsweredElsewhere)))
        );
        assert_eq!(followup(Platform::Wns, missed), Some((PushKind::Cancel, Some(CancelReason::Timeout))));
        // Never a VoIP cancel on APNs; Push Kit VoIP messages only wake.
        assert_eq!(followup(Platform::Apns, answered), None);
        assert_eq!(followup(Platform::Harmony, answered), None);
        assert_eq!(followup(Platform::Apns, missed), Some((PushKind::Missed, None)));
        assert_eq!(followup(Platform::Harmony, missed), Some((PushKind::Missed, None)));
    }

    #[test]
    fn the_pushes_signed_ahead_are_the_first_claimed_of_each_callee_provider_and_wire() {
        let delivery = |id: &str, user: &str, platform: Platform, v2: bool, claimed: bool| Delivery {
            delivery_id: id.into(),
            user_id: user.into(),
            device_key: v2.then(|| "key".into()),
            status: if claimed { DeliveryStatus::Sending } else { DeliveryStatus::Pending },
            ..Delivery::example(platform)
        };
        let deliveries = [
            delivery("1", "bob", Platform::Fcm, false, true),
            delivery("2", "bob", Platform::Fcm, false, true), // the same push as 1
            delivery("3", "bob", Platform::Fcm, true, true),  // the other wire
            delivery("4", "bob", Platform::Apns, false, true),
            delivery("5", "carol", Platform::Fcm, false, true),
            delivery("6", "dave", Platform::Wns, false, false), // not claimed: not sent first
        ];
        let ids: Vec<_> = sent_first(&deliveries).into_iter().map(|d| d.delivery_id).collect();
        assert_eq!(ids, ["1", "3", "4", "5"]);
    }
}
