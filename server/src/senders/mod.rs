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
use callpush_proto::wire::ProviderPayload;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedCall {
    /// Who called.
    pub caller_id: String,
    /// Their display name.
    pub caller_name: Option<String>,
    /// Whether it was a video call.
    pub video: bool,
    /// Notification id shared with the device (`missed_call_message_id`), so the system
    /// collapses the server's and the device's notifications into one.
    pub app_message_id: String,
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
