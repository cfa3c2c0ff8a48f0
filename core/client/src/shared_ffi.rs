//! The uniffi descriptions of the shared types `callpush-proto` defines, which knows nothing of
//! FFI. Each mirrors its type field for field and variant for variant (the compiler checks it);
//! the doc comments here are the ones the bindings show.

use callpush_proto::model::{
    ApnsEnvironment, CancelReason, Jwk, Platform, Registration, Rejection, RejectionKind,
};

/// The push providers callpush delivers through, one per device platform.
#[uniffi::remote(Enum)]
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

/// Which APNs environment a VoIP token belongs to; tokens of one never work in the other.
#[uniffi::remote(Enum)]
pub enum ApnsEnvironment {
    /// `api.sandbox.push.apple.com`: development builds.
    Sandbox,
    /// `api.push.apple.com`: TestFlight and App Store builds.
    Production,
}

/// Why a call stopped ringing, as carried by a cancel push and reported to the app.
#[uniffi::remote(Enum)]
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

/// Why a callpush push was refused. The kinds are stable, machine-readable names.
#[uniffi::remote(Enum)]
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

/// A refused push: the kind, and a message for the developer reading the log.
#[uniffi::remote(Record)]
pub struct Rejection {
    /// Machine-readable kind.
    pub kind: RejectionKind,
    /// Human-readable detail; never contains key material.
    pub message: String,
}

/// A public key in JWK form (RFC 7517 / RFC 8037): the server's Ed25519 signing keys, and the
/// X25519 device keys installations register for wire v2.
///
/// Plain data; `wire::KeySet` turns JWKs into keys that can verify.
#[uniffi::remote(Record)]
pub struct Jwk {
    /// Key type; `OKP`.
    pub kty: String,
    /// Curve; `Ed25519` (signing keys) or `X25519` (device keys).
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Key id that pushes name in their `kid` header.
    pub kid: Option<String>,
    /// Algorithm the key is for, if stated; `EdDSA` or `ECDH-ES`.
    pub alg: Option<String>,
    /// Intended use, if stated; `sig` or `enc`.
    pub use_: Option<String>,
}

/// A live registration lease: what was registered and what the registrar answered.
#[uniffi::remote(Record)]
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
    pub apns_alert_token: Option<String>,
    /// When the lease ends, server clock, unix seconds.
    pub expires_at: i64,
    /// The server's clock when it answered, unix seconds; the client derives its offset from it.
    pub server_time: i64,
    /// The keys the server signs call pushes with.
    pub signing_keys: Vec<Jwk>,
    /// The user id the registrar registered the device under (the bearer token's `sub`).
    pub user_id: Option<String>,
    /// Another user's installation holds this push token, so this registration does not ring
    /// until the device answers the server's verify push (the client does that by itself).
    pub verification_pending: bool,
    /// Wire v2: the id of the device key the server encrypts this installation's pushes to.
    /// From then on a push that is not encrypted is refused (`downgraded`). `None`: wire v1.
    pub device_key_id: Option<String>,
}
