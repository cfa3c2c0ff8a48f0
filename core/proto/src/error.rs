//! The errors of the shared vocabulary: a refused push token, a bad key, an oversized push.

use crate::model::Platform;

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

/// What the wire codec refuses to build or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A key (JWK or signing key) is unusable; the message says why, never the key itself.
    #[error("invalid key: {0}")]
    InvalidKey(String),
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
}
