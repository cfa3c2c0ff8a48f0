//! How pushes leave the server: the [`Sender`] trait every provider implements, the outcome
//! classes the dispatcher acts on, and the file sender for development.

pub mod apns;
pub mod credential;
pub mod fcm;
mod file;
pub mod harmony;
pub mod http;
pub mod wns;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callpush_proto::model::{ApnsEnvironment, Platform};
use callpush_proto::wire::{is_jwe, ProviderPayload};

pub use file::FileSender;

use crate::domain::PushKind;

/// One push, ready for its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPush {
    /// The delivery it fulfils (and the `jti` of its JWS).
    pub delivery_id: String,
    /// The call.
    pub call_id: String,
    /// The device.
    pub installation_id: String,
    /// The provider.
    pub platform: Platform,
    /// The device's push token (WNS: channel URI).
    pub token: String,
    /// APNs: which environment the token is for.
    pub apns_environment: Option<ApnsEnvironment>,
    /// Ring, cancel or missed-call notification.
    pub kind: PushKind,
    /// Ring and cancel: the signed call push wrapped for the provider.
    pub payload: Option<ProviderPayload>,
    /// Missed-call notification content.
    pub missed: Option<MissedCall>,
    /// How long the provider should keep trying, seconds (Push Kit `ttl`, FCM `android.ttl`,
    /// WNS `X-WNS-TTL`).
    pub ttl_seconds: u32,
    /// When the push becomes pointless, unix seconds (APNs `apns-expiration`).
    pub expires_at: i64,
}

/// What a missed-call notification says.
///
/// A missed-call notification is shown by the system as the provider delivers it, so its text
/// travels readable. To an installation on wire v2 (it registered a device key, and its call
/// pushes are encrypted) it names nobody: `caller` is `None`, and it says only
/// [`GENERIC_MISSED_CALL_TITLE`] and [`GENERIC_MISSED_CALL_BODY`], whatever the call was
/// (video or not), with no caller id, name or call id anywhere in the request. The app learns
/// who called from the encrypted ring it already got, or over its own connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedCall {
    /// Who called, for the notification's text; `None` for an installation on wire v2.
    pub caller: Option<MissedCaller>,
    /// Notification id shared with the device (`missed_call_message_id`, a hash of the call
    /// id), so the system collapses the server's and the device's notifications into one.
    pub app_message_id: String,
}

/// Who a missed call was from, as a wire v1 installation's notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedCaller {
    /// Who called.
    pub id: String,
    /// Their display name.
    pub name: Option<String>,
    /// Whether it was a video call.
    pub video: bool,
}

/// The title of a missed-call notification to a wire v2 installation.
pub const GENERIC_MISSED_CALL_TITLE: &str = "Missed call";
/// The body of a missed-call notification to a wire v2 installation.
pub const GENERIC_MISSED_CALL_BODY: &str = "You missed a call";

impl OutgoingPush {
    /// Whether this push goes to an installation on wire v2: its call push is encrypted (a JWE),
    /// or its missed-call notification names nobody. Nothing a sender puts in the request may
    /// then carry the call id or anything of the caller readably: tags and collapse keys come
    /// from [`opaque_call_tag`] or the delivery id instead.
    pub fn is_sealed(&self) -> bool {
        match (&self.payload, &self.missed) {
            (Some(payload), _) => payload_is_sealed(payload),
            (None, Some(missed)) => missed.caller.is_none(),
            (None, None) => false,
        }
    }
}

/// Whether `payload` carries an encrypted call push (wire v2) rather than a signed one.
fn payload_is_sealed(payload: &ProviderPayload) -> bool {
    let body = match payload {
        ProviderPayload::Fcm { data } => {
            return data.get(callpush_proto::wire::PUSH_KEY).is_some_and(|v| is_jwe(v));
        }
        ProviderPayload::Harmony { extra_data: body }
        | ProviderPayload::Apns { body }
        | ProviderPayload::Wns { body } => body,
    };
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        callpush: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Envelope<'_>>(body).ok().and_then(|e| e.callpush).is_some_and(|v| is_jwe(&v))
}

/// A collapse key for the pushes of call `call_id` to a wire v2 installation (FCM
/// `collapse_key`): the same for every push of the call, as the call id would be, but a hash
/// (SHA-256, 128 bits, hex) the provider cannot read the call id from.
pub fn opaque_call_tag(call_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::new().chain_update(b"callpush collapse key\0").chain_update(call_id.as_bytes()).finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("c-{hex}")
}

/// What a provider's answer means for the delivery (docs/providers/README.md#outcome-classes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider accepted the push.
    Delivered {
        /// The provider's message id, for support requests.
        provider_id: Option<String>,
    },
    /// The token is dead: prune the installation.
    InvalidToken {
        /// What the provider said.
        detail: String,
        /// APNs 410: when the provider saw the token stop working, unix ms. The installation
        /// is pruned only if it was registered before that.
        invalid_since: Option<i64>,
    },
    /// Slow down; try again after the given delay (or a backoff).
    RateLimited {
        /// The provider's `Retry-After`.
        retry_after: Option<Duration>,
        /// What the provider said.
        detail: String,
    },
    /// A passing failure: back off with jitter and retry while the push still matters.
    Transient {
        /// What happened.
        detail: String,
    },
    /// The request itself is wrong: never retried.
    BadRequest {
        /// What the provider said.
        detail: String,
    },
    /// The server's provider credentials or settings are wrong: alert, never retried.
    ConfigError {
        /// What the provider said.
        detail: String,
    },
    /// Not sent: the provider's daily quota for these pushes is used up (Push Kit test
    /// messages: 1000 a day per project). Never retried: the quota returns the next day.
    QuotaExhausted {
        /// Which quota, and when it returns.
        detail: String,
    },
}

impl SendOutcome {
    /// The outcome class, a stable name for metrics and the call timeline.
    pub fn class(&self) -> &'static str {
        match self {
            SendOutcome::Delivered { .. } => "delivered",
            SendOutcome::InvalidToken { .. } => "invalid_token",
            SendOutcome::RateLimited { .. } => "rate_limited",
            SendOutcome::Transient { .. } => "transient",
            SendOutcome::BadRequest { .. } => "bad_request",
            SendOutcome::ConfigError { .. } => "config_error",
            SendOutcome::QuotaExhausted { .. } => "quota_exhausted",
        }
    }
}

/// A daily quota a provider puts on some pushes, counted in the database so it holds across
/// instances (docs/providers/harmony.md: Push Kit test messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyQuota {
    /// What is counted, e.g. `harmony-test-messages:<project id>`.
    pub counter: String,
    /// Most pushes per UTC day.
    pub limit: i64,
    /// What the quota is, for people (the detail of a refused push).
    pub describe: String,
}

/// Sends pushes through one provider.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Sends one push and classifies the provider's answer. Never panics; a transport failure
    /// is `Transient`.
    async fn send(&self, push: &OutgoingPush) -> SendOutcome;

    /// The daily quota each push this sender sends counts against, if any. Whoever sends takes
    /// one from it (in the database) before [`Sender::send`] and gives it back when the push
    /// was not accepted.
    fn daily_quota(&self) -> Option<DailyQuota> {
        None
    }
}

/// The sender for each platform.
#[derive(Clone)]
pub struct Senders {
    harmony: Arc<dyn Sender>,
    fcm: Arc<dyn Sender>,
    apns: Arc<dyn Sender>,
    wns: Arc<dyn Sender>,
}

impl Senders {
    /// One sender per platform.
    pub fn new(
        harmony: Arc<dyn Sender>,
        fcm: Arc<dyn Sender>,
        apns: Arc<dyn Sender>,
        wns: Arc<dyn Sender>,
    ) -> Self {
        Senders { harmony, fcm, apns, wns }
    }

    /// The same sender for every platform.
    pub fn all(sender: Arc<dyn Sender>) -> Self {
        Senders::new(sender.clone(), sender.clone(), sender.clone(), sender)
    }

    /// The sender for `platform`.
    pub fn for_platform(&self, platform: Platform) -> &Arc<dyn Sender> {
        match platform {
            Platform::Harmony => &self.harmony,
            Platform::Fcm => &self.fcm,
            Platform::Apns => &self.apns,
            Platform::Wns => &self.wns,
        }
    }
}

/// Accepts every push and sends nothing: for measuring the server itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopSender;

#[async_trait]
impl Sender for NoopSender {
    async fn send(&self, _push: &OutgoingPush) -> SendOutcome {
        SendOutcome::Delivered { provider_id: None }
    }
}
