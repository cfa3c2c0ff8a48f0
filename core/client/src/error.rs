//! The one public error type, with a stable machine-readable kind per variant.

pub use callpush_proto::error::{TokenError, WireError};
use callpush_proto::registration::RegistrationError;

use crate::model::{CallState, EndReason, Platform};

/// Every error callpush returns. `kind()` is stable across releases and bindings, where each
/// variant is its own exception type (`CallpushException.InvalidToken`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
#[cfg_attr(feature = "uniffi", uniffi(flat_error))]
pub enum CallpushError {
    /// The push token (or WNS channel URI) is not valid for its platform.
    #[error("invalid push token: {0}")]
    InvalidToken(#[from] TokenError),
    /// An argument is out of range or badly formed; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A push would exceed its provider's payload limit even with the caller name removed.
    #[error("the {platform} push would be {size} bytes, over the provider's {limit}-byte limit")]
    PayloadTooLarge {
        /// Platform the push was built for.
        platform: Platform,
        /// Size of the smallest push that could be built.
        size: usize,
        /// The provider's limit.
        limit: usize,
    },
    /// A key (JWK or signing key) is unusable; the message says why, never the key itself.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The registrar does not know this installation, or the device has not registered.
    #[error("installation `{0}` is not registered")]
    NotRegistered(String),
    /// The registrar refused the app's access token, even after asking for a fresh one.
    #[error("the registrar refused the access token: {0}")]
    Unauthorized(String),
    /// The app's `AccessTokenProvider` could not give a token.
    #[error("no access token: {0}")]
    AccessToken(String),
    /// The registrar answered with a permanent error.
    #[error("the registrar answered {status} {code}: {message}")]
    Registrar {
        /// HTTP status.
        status: u16,
        /// The error code of the body, `{"error": {"code": …}}`.
        code: String,
        /// The error message of the body.
        message: String,
    },
    /// The registrar could not be reached, or kept failing, within the retry budget.
    #[error("the registrar could not be reached: {0}")]
    Network(String),
    /// No call with this id is known on this device.
    #[error("no call `{0}` on this device")]
    CallNotFound(String),
    /// The call is not in a state that allows the action.
    #[error("call `{call_id}` is {state:?}; it cannot be {action}")]
    InvalidCallState {
        /// The call.
        call_id: String,
        /// Its state.
        state: CallState,
        /// What was asked: `answered`, `declined`, …
        action: &'static str,
    },
    /// The call ended elsewhere before the action reached the server.
    #[error("call `{call_id}` already ended: {reason:?}")]
    CallEnded {
        /// The call.
        call_id: String,
        /// Why it ended.
        reason: EndReason,
    },
    /// The data directory could not be read or written.
    #[error("storage: {0}")]
    Storage(String),
}

/// The error of every fallible callpush call (`CallpushException` in Kotlin, `CallpushError`
/// in Swift and ArkTS).
pub type Error = CallpushError;

impl From<WireError> for CallpushError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::InvalidKey(detail) => Error::InvalidKey(detail),
            WireError::PayloadTooLarge { platform, size, limit } => {
                Error::PayloadTooLarge { platform, size, limit }
            }
        }
    }
}

impl From<RegistrationError> for CallpushError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::InvalidToken(token) => Error::InvalidToken(token),
            RegistrationError::InvalidArgument(detail) => Error::InvalidArgument(detail),
        }
    }
}

impl CallpushError {
    /// A stable, machine-readable name for the kind of error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidToken(_) => "invalid_token",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::InvalidKey(_) => "invalid_key",
            Error::NotRegistered(_) => "not_registered",
            Error::Unauthorized(_) => "unauthorized",
            Error::AccessToken(_) => "access_token",
            Error::Registrar { .. } => "registrar",
            Error::Network(_) => "network",
            Error::CallNotFound(_) => "call_not_found",
            Error::InvalidCallState { .. } => "invalid_call_state",
            Error::CallEnded { .. } => "call_ended",
            Error::Storage(_) => "storage",
        }
    }
}
