//! The one public error type, with a stable machine-readable kind per variant.

use crate::model::{CallState, EndReason, Platform};

/// Why a push token was refused, naming exactly what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is empty (or only whitespace).
    #[error("the {platform} token is empty")]
    Empty {
        /// Platform the token was given for.
        platform: Platform,
    },
    /// The token is longer than any real token of its platform.
    #[error("the {platform} token is {len} bytes, longer than the {max}-byte maximum")]
    TooLong {
        /// Platform the token was given for.
        platform: Platform,
        /// Length of the token given.
        len: usize,
        /// Longest token accepted.
        max: usize,
    },
    /// The token is shorter than any real token of its platform.
    #[error("the {platform} token is {len} bytes, shorter than the {min}-byte minimum")]
    TooShort {
        /// Platform the token was given for.
        platform: Platform,
        /// Length of the token given.
        len: usize,
        /// Shortest token accepted.
        min: usize,
    },
    /// The token holds a character its platform never uses.
    #[error("the {platform} token has {found:?} at byte {index}; {expected}")]
    BadCharacter {
        /// Platform the token was given for.
        platform: Platform,
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
        /// What the platform's tokens are made of.
        expected: &'static str,
    },
    /// An APNs token with an odd number of hex digits.
    #[error("the APNs token has {len} hex digits; a token is whole bytes, so the count must be even")]
    OddLength {
        /// Number of hex digits given.
        len: usize,
    },
    /// An APNs token passed as `NSData.description` (`<abcd 1234>`) instead of hex.
    #[error("the APNs token looks like NSData.description output; pass the token bytes hex-encoded, without `<`, `>` or spaces")]
    DataDescription,
    /// A WNS channel URI that is not `https`.
    #[error("the WNS channel URI must use https, not `{scheme}`")]
    NotHttps {
        /// The scheme given (empty when there was none).
        scheme: String,
    },
    /// A WNS channel URI on a host other than `notify.windows.com` or one of its subdomains.
    #[error("the WNS channel URI host `{host}` is not notify.windows.com or a subdomain of it")]
    HostNotAllowed {
        /// The host given.
        host: String,
    },
    /// A WNS channel URI with credentials, an unusual port or another oddity in its authority.
    #[error("the WNS channel URI has an invalid authority: {detail}")]
    BadAuthority {
        /// What is wrong.
        detail: &'static str,
    },
    /// An APNs token registered without saying whether it is for sandbox or production.
    #[error("an APNs token needs its environment (sandbox or production)")]
    MissingApnsEnvironment,
    /// The APNs alert token (`apns_alert_token`, `alert_token` on the wire) breaks the APNs
    /// token rules; the inner error says how.
    #[error("apns_alert_token: {0}")]
    BadAlertToken(Box<TokenError>),
    /// An alert token given for a platform other than APNs: only iOS needs a second token.
    #[error("apns_alert_token is for APNs only; {platform} uses its one token for every push")]
    AlertTokenNotApns {
        /// Platform the registration is for.
        platform: Platform,
    },
    /// The alert token equals the VoIP token: the app passed PushKit's token twice instead of
    /// the one from `registerForRemoteNotifications`.
    #[error(
        "apns_alert_token equals the VoIP token; pass the token of registerForRemoteNotifications \
         (didRegisterForRemoteNotificationsWithDeviceToken), not PushKit's"
    )]
    AlertTokenIsVoipToken,
}

/// Every error callpush returns. `kind()` is stable across releases and bindings, where each
/// variant is its own exception type (`CallpushException.InvalidToken`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
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
