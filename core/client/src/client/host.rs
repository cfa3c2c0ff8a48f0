//! What the host app provides: its HTTP stack, its access tokens, the system call UI, and a
//! listener for events. Each binding implements these (Kotlin `HttpURLConnection`, Swift
//! `URLSession`, ArkTS `@kit.NetworkKit`, CallKit, Telecom, `voipCall`), or the app does.

use std::collections::HashMap;

use crate::model::{Call, CancelReason, IncomingCall, Registration};

/// One HTTP request the client needs sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HttpRequest {
    /// `GET`, `PUT`, `POST` or `DELETE`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Request headers (`Authorization`, `Content-Type`, …).
    pub headers: HashMap<String, String>,
    /// Request body, if any.
    pub body: Option<Vec<u8>>,
    /// Give up after this long, milliseconds (long-polls set it above their wait).
    pub timeout_ms: u32,
}

/// The answer to an [`HttpRequest`]. Any status is an answer; only transport failures are errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers; names in any case.
    pub headers: HashMap<String, String>,
    /// Response body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum HttpError {
    /// Connection refused, reset, DNS, TLS: worth retrying.
    #[error("network: {detail}")]
    Network {
        /// What happened.
        detail: String,
    },
    /// No answer within the request's timeout: worth retrying.
    #[error("timeout: {detail}")]
    Timeout {
        /// What happened.
        detail: String,
    },
}

#[cfg(feature = "uniffi")]
impl From<uniffi::UnexpectedUniFFICallbackError> for HttpError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HttpError::Network { detail: e.reason }
    }
}

/// Sends HTTP requests with the platform's own network stack (proxies, VPNs, certificate
/// policy), so the mobile library carries no HTTP or TLS code.
#[cfg_attr(feature = "uniffi", uniffi::export(with_foreign))]
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends one request and returns whatever the server answered.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// The app could not produce an access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum AccessTokenError {
    /// No token now (signed out, offline identity provider, …).
    #[error("{detail}")]
    Unavailable {
        /// Why.
        detail: String,
    },
}

#[cfg(feature = "uniffi")]
impl From<uniffi::UnexpectedUniFFICallbackError> for AccessTokenError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        AccessTokenError::Unavailable { detail: e.reason }
    }
}

/// Gives the app user's bearer token for the registrar; its `sub` is the user's identity.
#[cfg_attr(feature = "uniffi", uniffi::export(with_foreign))]
#[async_trait::async_trait]
pub trait AccessTokenProvider: Send + Sync {
    /// The current token. `force_refresh` is set after the registrar refused the last one.
    async fn access_token(&self, force_refresh: bool) -> Result<String, AccessTokenError>;
}

/// Why the system call UI is told an incoming call failed (HarmonyOS `reportIncomingCallError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum IncomingCallError {
    /// The call is already shown (it came by another path first): the line is busy.
    LineBusy,
    /// The call stopped ringing before it could be shown (cancelled or past its deadline).
    CallEnded,
    /// The push was refused (forged, malformed, for someone else).
    InvalidPush,
}

/// The system call UI refused a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum CallUiError {
    /// The platform refused; the message says what it said.
    #[error("{detail}")]
    Refused {
        /// What the platform said.
        detail: String,
    },
}

#[cfg(feature = "uniffi")]
impl From<uniffi::UnexpectedUniFFICallbackError> for CallUiError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallUiError::Refused { detail: e.reason }
    }
}

/// The platform's system call UI: CallKit, Android Telecom, HarmonyOS `voipCall`, a Windows
/// toast. Called synchronously from `handle_push` (iOS requires the report before the PushKit
/// callback returns) and from the call actions, never while the client holds a lock.
#[cfg_attr(feature = "uniffi", uniffi::export(with_foreign))]
pub trait SystemCallUi: Send + Sync {
    /// Show a new incoming call (`reportNewIncomingCall`, `addNewIncomingCall`,
    /// `voipCall.reportIncomingCall` with `call.system_call_id`).
    fn report_incoming_call(&self, call: Call) -> Result<(), CallUiError>;

    /// iOS: a VoIP push that must not ring. Report a call and end it at once, as iOS requires.
    /// `call` is `None` when the push described no readable call.
    fn report_and_end_call(&self, call: Option<Call>, reason: IncomingCallError) -> Result<(), CallUiError>;

    /// HarmonyOS: `voipCall.reportIncomingCallError` for the system call id of a push that will
    /// not ring.
    fn report_incoming_call_error(
        &self,
        system_call_id: Option<String>,
        reason: IncomingCallError,
    ) -> Result<(), CallUiError>;

    /// Show an outgoing call (`reportOutgoingCall`, CallKit start-call).
    fn report_outgoing_call(&self, call: Call) -> Result<(), CallUiError>;

    /// The call changed state: answered, active, or ended (with `call.end_reason`).
    fn report_call_state(&self, call: Call) -> Result<(), CallUiError>;
}

/// What the client tells the app.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum CallEvent {
    /// A new incoming call is ringing.
    Incoming {
        /// The call, as the push described it.
        call: Call,
    },
    /// A ringing call stopped ringing, and why.
    Cancelled {
        /// The call, now ended.
        call: Call,
        /// Why it stopped.
        reason: CancelReason,
    },
    /// A call changed state (answered, active, ended).
    StateChanged {
        /// The call in its new state.
        call: Call,
    },
    /// A call was missed: show a missed-call notification. Comes for a call that rang out and
    /// for a push that arrived after its deadline.
    Missed {
        /// The call that was missed.
        call: IncomingCall,
        /// The notification id of this missed call, the same on every path and on the server:
        /// use it as the local notification's id (and HarmonyOS `appMessageId`, iOS request
        /// identifier) so the system shows one notification, not two.
        app_message_id: String,
    },
    /// The registration was made or renewed.
    RegistrationChanged {
        /// The new lease.
        registration: Registration,
    },
    /// The registration expired before it was renewed; pushes no longer reach this device.
    RegistrationLapsed {
        /// The installation that lapsed.
        installation_id: String,
        /// When it expired, server clock, unix seconds.
        expired_at: i64,
    },
    /// Something went wrong that the app should know about.
    Error {
        /// What went wrong.
        error: ErrorEvent,
    },
}

/// Kinds of [`ErrorEvent`]; stable names for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ErrorKind {
    /// A push's signature did not verify, or it was not EdDSA.
    BadSignature,
    /// A push named a key the device does not trust.
    UnknownKey,
    /// A push was not well-formed.
    Malformed,
    /// A push spoke a wire version this library does not know.
    UnsupportedVersion,
    /// A push was addressed to another user.
    WrongAudience,
    /// An encrypted push this installation could not decrypt.
    Undecryptable,
    /// An unencrypted push after the server switched this installation to encrypted pushes.
    Downgraded,
    /// The system call UI was told about a call later than the platform allows
    /// (HarmonyOS: 10 s).
    ReportTooSlow,
    /// The system call UI refused a report.
    ReportFailed,
    /// A background call to the registrar failed.
    Registrar,
    /// The data directory could not be read or written.
    Storage,
}

impl From<crate::model::RejectionKind> for ErrorKind {
    fn from(kind: crate::model::RejectionKind) -> Self {
        use crate::model::RejectionKind as R;
        match kind {
            R::BadSignature => ErrorKind::BadSignature,
            R::UnknownKey => ErrorKind::UnknownKey,
            R::Malformed => ErrorKind::Malformed,
            R::UnsupportedVersion => ErrorKind::UnsupportedVersion,
            R::WrongAudience => ErrorKind::WrongAudience,
            R::Undecryptable => ErrorKind::Undecryptable,
            R::Downgraded => ErrorKind::Downgraded,
        }
    }
}

/// An error the app is told about as an event, because no call of its own returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ErrorEvent {
    /// What kind of error.
    pub kind: ErrorKind,
    /// For the developer reading the log; never holds tokens or keys.
    pub message: String,
    /// The call concerned, if any.
    pub call_id: Option<String>,
}

/// Receives the client's events, on whichever thread produced them (often a Rust thread).
#[cfg_attr(feature = "uniffi", uniffi::export(with_foreign))]
pub trait CallListener: Send + Sync {
    /// One event. Must not block for long; hand work to the app's own threads.
    fn on_event(&self, event: CallEvent);
}
