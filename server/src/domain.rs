//! The server's domain: installations, calls, deliveries and their outcomes, the call timeline
//! and the webhook outbox, as every part of the server sees them. Storage, orchestration, the
//! workers, the senders and the API all speak these types; this module depends on none of them.
//!
//! Times are unix milliseconds.

use std::collections::BTreeMap;
use std::str::FromStr;

use callpush_proto::model::{ApnsEnvironment, CancelReason, Platform};

/// A name that is none of a type's names (as the API and the database spell them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

/// The one of `all` whose name is `s`.
fn by_name<T: Copy, const N: usize>(
    all: [T; N],
    s: &str,
    name: fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.into_iter().find(|v| name(*v) == s).ok_or_else(|| UnknownName(s.to_owned()))
}

/// A device's push registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// The device's installation id.
    pub installation_id: String,
    /// Its owner: the `sub` of the device token that registered it.
    pub user_id: String,
    /// The provider.
    pub platform: Platform,
    /// The push token (WNS: channel URI).
    pub token: String,
    /// APNs: sandbox or production.
    pub apns_environment: Option<ApnsEnvironment>,
    /// Optional app id.
    pub app_id: Option<String>,
    /// APNs: the regular device token that carries the missed-call alert (`token` is the
    /// PushKit VoIP token, which APNs refuses alerts for). `None`: no missed-call push.
    pub alert_token: Option<String>,
    /// Lease length, seconds.
    pub ttl_seconds: i64,
    /// When this token was registered (APNs 410 pruning compares with it), ms.
    pub registered_at: i64,
    /// When the lease ends, ms.
    pub expires_at: i64,
    /// Whether the app's notifications are enabled on the device, as last reported; `None`
    /// until anyone said.
    pub notifications: Option<Notifications>,
    /// Wire v2: the public X25519 key every push to this installation is encrypted to, as its
    /// JWK `x` (32 bytes, base64url), checked when it was registered. `None`: wire v1.
    pub device_key: Option<String>,
    /// The id of [`Installation::device_key`] (its RFC 7638 thumbprint), as the lease answers it.
    pub device_key_id: Option<String>,
}

/// Whether an app's notifications are enabled on a device, who said so and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notifications {
    /// Enabled or not.
    pub enabled: bool,
    /// Who said so.
    pub source: NotificationsSource,
    /// When it was true, ms: a report older than the one stored changes nothing.
    pub at: i64,
}

/// Who reported an installation's notification permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationsSource {
    /// The device itself (`PUT /v1/installations/{id}/notifications`).
    Device,
    /// A Push Kit delivery receipt with result 6 (the message was not shown: notifications off).
    PushKitReceipt,
}

impl NotificationsSource {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationsSource::Device => "device",
            NotificationsSource::PushKitReceipt => "push_kit_receipt",
        }
    }
}

impl FromStr for NotificationsSource {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        by_name(
            [NotificationsSource::Device, NotificationsSource::PushKitReceipt],
            s,
            NotificationsSource::as_str,
        )
    }
}

/// A push token that moved between users' installations after its device proved it holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMove {
    /// When, ms.
    pub moved_at: i64,
    /// The provider.
    pub platform: Platform,
    /// The token, redacted.
    pub token: String,
    /// The user it moved from.
    pub from_user_id: String,
    /// Their installation, now removed.
    pub from_installation: String,
    /// The user it moved to.
    pub to_user_id: String,
    /// Their installation, now live.
    pub to_installation: String,
}

/// The server-side state of a call: the phase the API reports, stored by its name.
pub use callpush_proto::api::CallPhase;

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call id.
    pub call_id: String,
    /// Caller user id.
    pub caller_id: String,
    /// Caller display name.
    pub caller_name: Option<String>,
    /// Video offered.
    pub video: bool,
    /// App data.
    pub data: BTreeMap<String, String>,
    /// Where it stands.
    pub state: CallPhase,
    /// For a cancelled call, why.
    pub reason: Option<CancelReason>,
    /// For an answered call, the installation that answered.
    pub answered_by: Option<String>,
    /// Creation time, ms.
    pub created_at: i64,
    /// Ring deadline, ms.
    pub expires_at: i64,
    /// When it stopped ringing, ms.
    pub ended_at: Option<i64>,
    /// Grows on every change.
    pub version: i64,
}

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushKind {
    /// The call push: ring.
    Ring,
    /// A call push that stops the ring (FCM, WNS).
    Cancel,
    /// A missed-call notification (APNs alert, Push Kit MISS_CALL).
    Missed,
}

impl PushKind {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Ring => "ring",
            PushKind::Cancel => "cancel",
            PushKind::Missed => "missed",
        }
    }
}

impl FromStr for PushKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        by_name([PushKind::Ring, PushKind::Cancel, PushKind::Missed], s, PushKind::as_str)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting to be sent (first time or retry).
    Pending,
    /// Claimed by a worker until `claimed_until`; reclaimed after a crash.
    Sending,
    /// The provider accepted it.
    Delivered,
    /// It will not be sent: the provider refused it for good, or the deadline passed.
    Failed,
    /// Not needed any more: the call stopped ringing before it was sent.
    Skipped,
    /// The instance that claimed it stopped before recording a result, and it was too late to
    /// send again: it may or may not have reached the provider.
    Unknown,
}

impl DeliveryStatus {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
            DeliveryStatus::Unknown => "unknown",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        by_name(
            [
                DeliveryStatus::Pending,
                DeliveryStatus::Sending,
                DeliveryStatus::Delivered,
                DeliveryStatus::Failed,
                DeliveryStatus::Skipped,
                DeliveryStatus::Unknown,
            ],
            s,
            DeliveryStatus::as_str,
        )
    }
}

/// One push to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Unique id; also the `jti` of the push it sends.
    pub delivery_id: String,
    /// The call.
    pub call_id: String,
    /// The device.
    pub installation_id: String,
    /// The device's owner.
    pub user_id: String,
    /// The provider.
    pub platform: Platform,
    /// The push token when the delivery was made: for an APNs missed-call alert the
    /// installation's alert token, else its (VoIP) token.
    pub token: String,
    /// APNs environment.
    pub apns_environment: Option<ApnsEnvironment>,
    /// When the token was registered, ms.
    pub registered_at: i64,
    /// Wire v2: the installation's device key when the delivery was made (its JWK `x`), to
    /// which a ring or cancel is sealed; a missed-call notification to such an installation
    /// names nobody. `None`: wire v1.
    pub device_key: Option<String>,
    /// Ring, cancel or missed-call notification.
    pub kind: PushKind,
    /// For a cancel, why.
    pub reason: Option<CancelReason>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// When it may next be tried, ms.
    pub next_attempt_at: i64,
    /// While `Sending`: until when the claim holds, ms.
    pub claimed_until: Option<i64>,
    /// While `Sending`: the instance holding the claim.
    pub claimed_by: Option<String>,
    /// The last outcome class (`delivered`, `invalid_token`, …).
    pub outcome: Option<String>,
    /// The last outcome's detail.
    pub detail: Option<String>,
    /// Created, ms.
    pub created_at: i64,
    /// Last changed, ms.
    pub updated_at: i64,
}

impl Delivery {
    /// A ring of call `c1` to `bob`'s installation `i1` on `platform`, claimed, on its first
    /// attempt, all times 0: for tests to adjust.
    #[cfg(test)]
    pub fn example(platform: Platform) -> Delivery {
        Delivery {
            delivery_id: "d1".into(),
            call_id: "c1".into(),
            installation_id: "i1".into(),
            user_id: "bob".into(),
            platform,
            token: "t".into(),
            apns_environment: None,
            registered_at: 0,
            device_key: None,
            kind: PushKind::Ring,
            reason: None,
            status: DeliveryStatus::Sending,
            attempts: 1,
            next_attempt_at: 0,
            claimed_until: None,
            claimed_by: None,
            outcome: None,
            detail: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Whether this delivery goes to its installation's APNs alert token rather than the token
    /// it rang: an APNs missed-call alert does, as APNs refuses alerts for a VoIP token
    /// (`DeviceTokenNotForTopic`).
    pub fn goes_to_alert_token(&self) -> bool {
        self.platform == Platform::Apns && self.kind == PushKind::Missed
    }
}

/// One entry of a call's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    /// When, ms.
    pub at: i64,
    /// The delivery concerned, if any.
    pub delivery_id: Option<String>,
    /// What happened: `ringing`, `sent`, `answered`, …
    pub event: String,
    /// Detail.
    pub detail: Option<String>,
}

/// The result of sending one delivery, written back in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    /// The delivery.
    pub delivery_id: String,
    /// Its call, for the timeline.
    pub call_id: String,
    /// The new status.
    pub status: DeliveryStatus,
    /// The outcome class.
    pub outcome: String,
    /// Detail for the timeline; never a token.
    pub detail: Option<String>,
    /// For a retry, when.
    pub next_attempt_at: i64,
    /// When the result was known, ms.
    pub at: i64,
}

/// A webhook waiting to go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Unique id; sent as the `Callpush-Webhook-Id` header so receivers can dedupe.
    pub webhook_id: String,
    /// The call it reports.
    pub call_id: String,
    /// The JSON body.
    pub body: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// The outcome of a delivery taken over from a claim that lapsed: it may have been sent.
pub const RESULT_UNKNOWN: &str = "result_unknown";
/// The outcome of a delivery handed back unattempted (a draining instance).
pub const RELEASED: &str = "released";

/// A new unique id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// How a call stops ringing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// The new state.
    pub state: CallPhase,
    /// Cancel reason, if any.
    pub reason: Option<CancelReason>,
    /// The installation that answered, if any.
    pub answered_by: Option<String>,
    /// When, ms.
    pub at: i64,
    /// Timeline detail.
    pub detail: Option<String>,
}
