//! Plain data device and server share: platforms, the signed invite, registrations, keys.
//!
//! Nothing here does I/O or cryptography; [`crate::wire`] builds on these types.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The push providers callpush delivers through, one per device platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Huawei Push Kit (HarmonyOS NEXT), push-type 10 in-app call messages.
    Harmony,
    /// Firebase Cloud Messaging HTTP v1, high-priority data messages (Android).
    Fcm,
    /// Apple Push Notification service, PushKit VoIP pushes (iOS).
    Apns,
    /// Windows Push Notification Services, raw notifications.
    Wns,
}

impl Platform {
    /// Every platform, in a fixed order (used by tests, vectors and the demo).
    pub const ALL: [Platform; 4] = [Platform::Harmony, Platform::Fcm, Platform::Apns, Platform::Wns];

    /// Its place in [`Platform::ALL`]: the index of its slot in a per-platform array.
    pub fn index(self) -> usize {
        match self {
            Platform::Harmony => 0,
            Platform::Fcm => 1,
            Platform::Apns => 2,
            Platform::Wns => 3,
        }
    }

    /// The lowercase name used on the wire, in the HTTP API and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Harmony => "harmony",
            Platform::Fcm => "fcm",
            Platform::Apns => "apns",
            Platform::Wns => "wns",
        }
    }

    /// Largest payload the provider accepts for a call push, in bytes (docs/wire-contract.md).
    pub fn payload_limit(self) -> usize {
        match self {
            Platform::Harmony => 4096,
            Platform::Fcm => 4096,
            Platform::Apns => 5120,
            Platform::Wns => 5000,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a platform name that is not one of `harmony`, `fcm`, `apns`, `wns`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform `{0}` (expected harmony, fcm, apns or wns)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

/// Which APNs environment a VoIP token belongs to; tokens of one never work in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ApnsEnvironment {
    /// `api.sandbox.push.apple.com`: development builds.
    Sandbox,
    /// `api.push.apple.com`: TestFlight and App Store builds.
    #[default]
    Production,
}

impl ApnsEnvironment {
    /// The lowercase name used in the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            ApnsEnvironment::Sandbox => "sandbox",
            ApnsEnvironment::Production => "production",
        }
    }
}

/// Why a call stopped ringing, as carried by a cancel push and reported to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The caller hung up before anyone answered.
    CallerCancelled,
    /// Another device of the callee answered.
    AnsweredElsewhere,
    /// Another device of the callee declined.
    DeclinedElsewhere,
    /// Nobody answered before the ring deadline.
    Timeout,
}

impl CancelReason {
    /// Every reason, in a fixed order.
    pub const ALL: [CancelReason; 4] = [
        CancelReason::CallerCancelled,
        CancelReason::AnsweredElsewhere,
        CancelReason::DeclinedElsewhere,
        CancelReason::Timeout,
    ];

    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::CallerCancelled => "caller_cancelled",
            CancelReason::AnsweredElsewhere => "answered_elsewhere",
            CancelReason::DeclinedElsewhere => "declined_elsewhere",
            CancelReason::Timeout => "timeout",
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call push asks of the device: start ringing, or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushEvent {
    /// A new incoming call.
    Ring,
    /// A call that rang stopped ringing.
    Cancel,
}

/// The caller as the invite names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Stable id of the calling user in the app's own namespace.
    pub id: String,
    /// Display name, if the app backend gave one; the encoder may truncate it to fit a provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Version of the wire contract this crate speaks.
pub const WIRE_VERSION: u32 = 1;

/// The signed claims of one call push (docs/wire-contract.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Server id.
    pub iss: String,
    /// Callee user id: the identity the device registered under.
    pub aud: String,
    /// Unique id of this push message.
    pub jti: String,
    /// Server time at send, unix seconds.
    pub iat: i64,
    /// Ring deadline, unix seconds; after it the push is stale.
    pub exp: i64,
    /// Wire contract version, [`WIRE_VERSION`].
    pub v: u32,
    /// Ring or cancel.
    pub evt: PushEvent,
    /// Call id, following [`crate::ids::CALL_ID`].
    pub cid: String,
    /// The caller.
    pub from: Caller,
    /// Whether video is offered.
    pub video: bool,
    /// Why a cancel was sent; absent on a ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CancelReason>,
    /// App data, copied through untouched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// The signed claims of a verify push (`evt` `verify`): the server asks the device holding a
/// push token to send `nonce` back for installation `installation_id`, which proves it holds
/// the token before the token moves there from another user's installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Server id.
    pub iss: String,
    /// The user the new registration belongs to.
    pub aud: String,
    /// Unique id of this push message.
    pub jti: String,
    /// Server time at send, unix seconds.
    pub iat: i64,
    /// When the nonce expires, unix seconds.
    pub exp: i64,
    /// The installation waiting for the proof (claim `iid`).
    pub installation_id: String,
    /// What the device sends back (`POST /v1/installations/{iid}/verify`).
    pub nonce: String,
}

/// One push exactly as the platform hands it to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPush {
    /// Text: HarmonyOS `receiveMessage('VoIP')` `data`, the APNs `dictionaryPayload` as JSON,
    /// the WNS raw content, or the FCM data map as a JSON object.
    Text(String),
    /// A string map: FCM `RemoteMessage.data` passed as it is, without serialising it.
    Map(HashMap<String, String>),
}

impl From<String> for RawPush {
    fn from(text: String) -> Self {
        RawPush::Text(text)
    }
}

impl From<&str> for RawPush {
    fn from(text: &str) -> Self {
        RawPush::Text(text.to_owned())
    }
}

/// Why a callpush push was refused. The kinds are stable, machine-readable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// The signature does not verify, or the push is not signed with EdDSA.
    BadSignature,
    /// The push names a key id the device does not trust (or no key id at all).
    UnknownKey,
    /// The push is not well-formed: framing, header, claims, envelope or size.
    Malformed,
    /// The push speaks a wire version this library does not know.
    UnsupportedVersion,
    /// The push is signed correctly but addressed to another user than this device's.
    WrongAudience,
    /// The push is encrypted (wire v2) and this device cannot open it: another algorithm, a
    /// key it does not hold, or a ciphertext tampered with or cut short.
    Undecryptable,
    /// The push is not encrypted, but the server has switched this installation to wire v2.
    Downgraded,
}

impl RejectionKind {
    /// The snake_case name printed by `inspect` and carried in error events.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::BadSignature => "bad_signature",
            RejectionKind::UnknownKey => "unknown_key",
            RejectionKind::Malformed => "malformed",
            RejectionKind::UnsupportedVersion => "unsupported_version",
            RejectionKind::WrongAudience => "wrong_audience",
            RejectionKind::Undecryptable => "undecryptable",
            RejectionKind::Downgraded => "downgraded",
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused push: the kind, and a message for the developer reading the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Rejection {
    /// Machine-readable kind.
    pub kind: RejectionKind,
    /// Human-readable detail; never contains key material.
    pub message: String,
}

impl Rejection {
    /// A rejection of `kind` with `message`.
    pub fn new(kind: RejectionKind, message: impl Into<String>) -> Self {
        Rejection { kind, message: message.into() }
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Rejection::new(RejectionKind::Malformed, message)
    }
}

/// Shortest registration lease, seconds (5 minutes).
pub const MIN_TTL_SECONDS: u32 = 300;
/// Longest registration lease, seconds (180 days).
pub const MAX_TTL_SECONDS: u32 = 15_552_000;
/// Registration lease used when the app does not choose one, seconds (24 hours).
pub const DEFAULT_TTL_SECONDS: u32 = 86_400;

/// A public key in JWK form (RFC 7517 / RFC 8037): the server's Ed25519 signing keys, and the
/// X25519 device keys installations register for wire v2.
///
/// Plain data; `wire::KeySet` turns JWKs into keys that can verify.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type; `OKP`.
    pub kty: String,
    /// Curve; `Ed25519` (signing keys) or `X25519` (device keys).
    #[serde(default)]
    pub crv: String,
    /// The public key, base64url without padding.
    #[serde(default)]
    pub x: String,
    /// Key id that pushes name in their `kid` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm the key is for, if stated; `EdDSA` or `ECDH-ES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use, if stated; `sig` or `enc`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// What the app asks for when it registers a device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterOptions {
    /// The device's installation id: created once by the client and kept, so a new token
    /// replaces the old one instead of adding a second registration.
    pub installation_id: String,
    /// Lease length in seconds, from [`MIN_TTL_SECONDS`] to [`MAX_TTL_SECONDS`].
    pub ttl_seconds: u32,
    /// APNs only: which environment the VoIP token is for.
    pub apns_environment: Option<ApnsEnvironment>,
    /// Optional app id (bundle id, package name) for servers that host several apps.
    pub app_id: Option<String>,
    /// APNs only: the regular device token (from `registerForRemoteNotifications`), used for
    /// the missed-call alert. The VoIP token cannot carry alerts.
    pub apns_alert_token: Option<String>,
}

impl RegisterOptions {
    /// Options for `installation_id` with the default lease and nothing else set.
    pub fn new(installation_id: impl Into<String>) -> Self {
        RegisterOptions {
            installation_id: installation_id.into(),
            ttl_seconds: DEFAULT_TTL_SECONDS,
            apns_environment: None,
            app_id: None,
            apns_alert_token: None,
        }
    }
}

/// One validated installation, as sent to the registrar (`PUT /v1/installations/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRequest {
    /// The device's installation id.
    pub installation_id: String,
    /// The provider the token belongs to.
    pub platform: Platform,
    /// The normalised push token (channel URI for WNS).
    pub token: String,
    /// Lease length in seconds.
    pub ttl_seconds: u32,
    /// APNs only: the token's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns_environment: Option<ApnsEnvironment>,
    /// Optional app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// APNs only: the normalised alert token for the missed-call notification.
    #[serde(default, rename = "alert_token", skip_serializing_if = "Option::is_none")]
    pub apns_alert_token: Option<String>,
    /// Wire v2: the installation's public X25519 key, which the client adds; pushes are then
    /// encrypted to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<Jwk>,
}

/// A live registration lease: what was registered and what the registrar answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The device's installation id.
    pub installation_id: String,
    /// The provider the token belongs to.
    pub platform: Platform,
    /// The normalised token that was registered.
    pub token: String,
    /// Lease length asked for, seconds.
    pub ttl_seconds: u32,
    /// APNs only: the token's environment.
    pub apns_environment: Option<ApnsEnvironment>,
    /// Optional app id.
    pub app_id: Option<String>,
    /// APNs only: the normalised alert token registered for missed-call notifications.
    #[serde(default)]
    pub apns_alert_token: Option<String>,
    /// When the lease ends, server clock, unix seconds.
    pub expires_at: i64,
    /// The server's clock when it answered, unix seconds; the client derives its offset from it.
    pub server_time: i64,
    /// The keys the server signs call pushes with.
    pub signing_keys: Vec<Jwk>,
    /// The user id the registrar registered the device under (the bearer token's `sub`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Another user's installation holds this push token, so this registration does not ring
    /// until the device answers the server's verify push (the client does that by itself).
    #[serde(default)]
    pub verification_pending: bool,
    /// Wire v2: the id of the device key the server encrypts this installation's pushes to.
    /// From then on a push that is not encrypted is refused (`downgraded`). `None`: wire v1.
    #[serde(default)]
    pub device_key_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Platform;

    #[test]
    fn a_platforms_index_is_its_place_in_all() {
        for (i, platform) in Platform::ALL.into_iter().enumerate() {
            assert_eq!(platform.index(), i, "{}", platform.as_str());
        }
    }
}
