//! How the app sets up its client, what it may pass when registering, and what the client runs
//! under (clock, platform limits) that only simulations change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{ApnsEnvironment, Platform, Registration};

/// How the app sets up its client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ClientConfig {
    /// Base URL of callpush-server, e.g. `https://calls.example.com`.
    pub server_url: String,
    /// A directory only this client writes: the lease, the installation id and the seen calls.
    pub data_dir: String,
    /// The platform the app runs on, which picks the adapter.
    pub platform: Platform,
    /// APNs: the environment of the app's VoIP token (debug builds: sandbox).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub apns_environment: Option<ApnsEnvironment>,
    /// Server keys to trust instead of those the registrar hands out: a JWK or a JWK Set.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub pinned_keys_json: Option<String>,
    /// The user this device belongs to; pushes for anyone else are refused. Learned from the
    /// registrar when not set.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub user_id: Option<String>,
    /// Longest single long-poll of a ringing call's status, seconds (default 25, at most 120).
    /// `0` turns the long-poll off, for apps that learn of cancels over their own connection
    /// (Azure's `disableInternalPushForIncomingCall`): cancels then arrive by push, or through
    /// `end_call`, and a ringing call still ends at its deadline.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub long_poll_seconds: Option<u32>,
}

impl ClientConfig {
    /// A configuration with defaults for everything but the essentials.
    pub fn new(server_url: impl Into<String>, data_dir: impl Into<String>, platform: Platform) -> Self {
        ClientConfig {
            server_url: server_url.into(),
            data_dir: data_dir.into(),
            platform,
            apns_environment: None,
            pinned_keys_json: None,
            user_id: None,
            long_poll_seconds: None,
        }
    }
}

/// What the app may choose when registering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RegisterPushOptions {
    /// Lease length, seconds (300 to 15 552 000; default 86 400).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub ttl_seconds: Option<u32>,
    /// APNs: the token's environment, if not the configured one.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub apns_environment: Option<ApnsEnvironment>,
    /// App id (bundle id, package name) for servers hosting several apps.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub app_id: Option<String>,
    /// APNs only: the regular device token from `registerForRemoteNotifications`
    /// (`application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`), hex, used only
    /// for the missed-call alert: the VoIP token cannot carry alerts. Without it iOS gets no
    /// missed-call push and the app shows missed calls when it next runs. Kept for renewals;
    /// every `register_push` replaces it, so pass it each time.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub apns_alert_token: Option<String>,
}

/// What `refresh` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RefreshOutcome {
    /// Nothing to refresh: the device never registered or unregistered.
    NotRegistered,
    /// The lease is fresh; it will be renewed from `renew_at` (device clock, unix seconds).
    NotDue {
        /// When renewal becomes due.
        renew_at: i64,
    },
    /// The lease was renewed (or re-registered with a new token).
    Renewed {
        /// The new lease.
        registration: Registration,
    },
}

/// An incoming call the app learned about over its own connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SignalledCall {
    /// The call id, as in the push.
    pub call_id: String,
    /// The caller's user id.
    pub caller_id: String,
    /// The caller's display name.
    pub caller_name: Option<String>,
    /// Whether video is offered.
    pub video: bool,
    /// Ring deadline on the server clock, unix seconds; default: 30 s from now.
    pub expires_at: Option<i64>,
    /// HarmonyOS: the id to report to `voipCall`; default: the call id.
    pub system_call_id: Option<String>,
    /// App data.
    pub data: HashMap<String, String>,
}

/// Unix time for the client; replaceable in tests.
pub trait Clock: Send + Sync {
    /// Now on the device clock, unix milliseconds.
    fn now_millis(&self) -> i64;
}

/// What the client runs under that an app never changes: the clock, and how long the platform
/// allows from a push to its report to the system call UI. Simulations and tests replace them;
/// apps get [`Environment::device`] through [`Client::new`].
#[derive(Clone)]
pub struct Environment {
    /// Where the client reads the time.
    pub clock: Arc<dyn Clock>,
    /// The longest a push may take to reach the system call UI before the app is told
    /// ([`ErrorKind::ReportTooSlow`]); `None`: no limit.
    pub report_limit: Option<Duration>,
}

impl Environment {
    /// The system clock and the platform's own limit (HarmonyOS: 10 s; none elsewhere).
    pub fn device(platform: Platform) -> Self {
        Environment {
            clock: Arc::new(SystemClock),
            report_limit: (platform == Platform::Harmony).then_some(Duration::from_secs(10)),
        }
    }
}

/// The device's system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}
