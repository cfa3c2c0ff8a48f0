//! The device side of the HTTP API — installations, verify answers, call status, answer and
//! decline — as one definition the server serves, the device client sends and reads, and the
//! test fakes answer with. With the `openapi` feature each type also describes its OpenAPI
//! schema (the server's `/openapi.json`).
//!
//! One time unit across the API: every instant is unix milliseconds in a field whose name ends
//! in `_ms` (`expires_at_ms`, `server_time_ms`); durations name their unit (`ttl_seconds`).
//! Answers of servers from before that rule (`expires_at` and `server_time`, unix seconds) are
//! still read, so a device client of this version works with an older server.

use serde::{Deserialize, Serialize};

use crate::model::{ApnsEnvironment, CancelReason, Jwk, Platform};

/// `PUT /v1/installations/{installation_id}`: register (or renew) a device's push token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InstallationBody {
    /// Must equal the path's, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub installation_id: Option<String>,
    /// The provider.
    pub platform: Platform,
    /// The push token; for WNS the channel URI.
    pub token: String,
    /// Lease length, seconds: 300 to 15552000 (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 300, maximum = 15552000))]
    pub ttl_seconds: Option<u32>,
    /// APNs: the token's environment (required for APNs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns_environment: Option<ApnsEnvironment>,
    /// Optional app id: 1 to 255 bytes without spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[^\\s\\u0000-\\u001F\\u007F-\\u009F]+$")
    )]
    pub app_id: Option<String>,
    /// APNs only: the app's regular device token (from `registerForRemoteNotifications`), hex,
    /// for the missed-call alert; `token` is the PushKit VoIP token, which cannot carry alerts.
    /// Must differ from `token`. Absent: no missed-call push for this installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 32, max_length = 512, pattern = "^([0-9A-Fa-f]{2})+$")
    )]
    pub alert_token: Option<String>,
    /// Wire v2: the installation's public X25519 key (a JWK: `kty` `OKP`, `crv` `X25519`, `x`),
    /// made on the device. With it the server encrypts every push to this installation and
    /// answers with its `device_key_id`; without it pushes go signed but readable (wire v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DeviceKeyJwk>))]
    pub device_key: Option<Jwk>,
}

/// A device's public X25519 key (RFC 8037), for the OpenAPI document.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DeviceKeyJwk {
    /// `OKP`.
    kty: String,
    /// `X25519`.
    crv: String,
    /// The public key: 32 bytes, base64url without padding.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    x: String,
    /// Ignored: the key id is always the key's RFC 7638 thumbprint.
    kid: Option<String>,
    /// `ECDH-ES`, if given.
    alg: Option<String>,
    /// `enc`, if given.
    #[schema(rename = "use")]
    use_: Option<String>,
}

/// Whether an installation rings yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    /// Another user's installation holds this token, so this one does not ring until the
    /// device answers the verify push sent to the token (the SDK does that by itself).
    Pending,
}

/// The registration lease (`PUT` and `POST …/verify` answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "legacy::InstallationResponseWire")]
pub struct InstallationResponse {
    /// The installation.
    pub installation_id: String,
    /// The identity the installation belongs to.
    pub user_id: String,
    /// Lease end, unix milliseconds.
    pub expires_at_ms: i64,
    /// The server's clock when it answered, unix milliseconds.
    pub server_time_ms: i64,
    /// The keys call pushes are signed with (JWK, Ed25519).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<SigningKey>))]
    pub signing_keys: Vec<Jwk>,
    /// APNs: the alert token registered for the missed-call alert, normalised; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_token: Option<String>,
    /// `pending` (with status 202): the installation does not ring until the device answers
    /// the verify push. Absent: the installation rings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationState>,
    /// Wire v2: the id (RFC 7638 thumbprint) of the device key every push to this installation
    /// is encrypted to. Absent: pushes are wire v1, signed but readable by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key_id: Option<String>,
}

/// `PUT /v1/installations/{installation_id}/notifications`: whether the app may show
/// notifications on the device (HarmonyOS' switch is off until the user allows it). With them
/// off, missed-call notifications cannot show; the server records it so operators see why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotificationsBody {
    /// Whether the app's notifications are enabled on the device.
    pub enabled: bool,
}

/// `POST /v1/installations/{installation_id}/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The nonce of the verify push.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]{1,128}$")
    )]
    pub nonce: String,
}

/// `POST /v1/calls/{id}/answer` and `/decline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallActionBody {
    /// The installation acting.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub installation_id: String,
}

/// Where a call is in its ringing phase, on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// Ringing the callees' devices.
    Ringing,
    /// A device answered.
    Answered,
    /// Every callee declined.
    Declined,
    /// The caller (or the app backend) cancelled it.
    Cancelled,
    /// Nobody answered before the deadline.
    Missed,
}

impl CallPhase {
    /// Every phase, in the order a call can reach them.
    pub const ALL: [CallPhase; 5] = [
        CallPhase::Ringing,
        CallPhase::Answered,
        CallPhase::Declined,
        CallPhase::Cancelled,
        CallPhase::Missed,
    ];

    /// The phase's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CallPhase::Ringing => "ringing",
            CallPhase::Answered => "answered",
            CallPhase::Declined => "declined",
            CallPhase::Cancelled => "cancelled",
            CallPhase::Missed => "missed",
        }
    }
}

/// A name that is no [`CallPhase`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no call phase is named `{0}`")]
pub struct UnknownCallPhase(pub String);

impl std::str::FromStr for CallPhase {
    type Err = UnknownCallPhase;

    fn from_str(name: &str) -> Result<Self, UnknownCallPhase> {
        CallPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| UnknownCallPhase(name.to_owned()))
    }
}

/// The one value of [`CallStatus::view`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    /// A [`CallStatus`].
    #[default]
    Status,
}

/// The schema of a discriminator field that holds one `value`: a string enum of one value, so
/// that even a generated client that ignores the discriminator refuses the other shape.
#[cfg(feature = "openapi")]
pub fn view_schema(value: &str, description: &str) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([value]))
        .description(Some(description))
        .build()
}

#[cfg(feature = "openapi")]
fn status_view_schema() -> utoipa::openapi::schema::Object {
    view_schema("status", "Always `status`: tells a device's `CallStatus` from an API key's `CallDetail`.")
}

/// A call's state: `GET /v1/calls/{id}` for a callee's device (`view: status`), and the answer
/// to answer, decline and cancel. (An API key reading `GET /v1/calls/{id}` gets the call's
/// details instead, `view: detail`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "legacy::CallStatusWire")]
pub struct CallStatus {
    /// Always `status`: what `GET /v1/calls/{id}` answers is told apart by this field (the
    /// OpenAPI discriminator), `status` here and `detail` in the app backend's details.
    #[cfg_attr(feature = "openapi", schema(schema_with = status_view_schema, required = true))]
    pub view: StatusView,
    /// The call.
    pub call_id: String,
    /// Where the call is.
    pub state: CallPhase,
    /// For `cancelled` and `missed`: why.
    #[serde(default)]
    pub reason: Option<CancelReason>,
    /// For `answered`: the installation that answered.
    #[serde(default)]
    pub answered_by: Option<String>,
    /// Ring deadline, unix milliseconds.
    pub expires_at_ms: i64,
    /// The server's clock when it answered, unix milliseconds.
    pub server_time_ms: i64,
}

impl CallStatus {
    /// Why the call stopped ringing for installation `me`; `None` while it still rings, or when
    /// `me` answered it.
    pub fn ended_for(&self, me: &str) -> Option<CancelReason> {
        match self.state {
            CallPhase::Ringing => None,
            CallPhase::Answered if self.answered_by.as_deref() == Some(me) => None,
            CallPhase::Answered => Some(CancelReason::AnsweredElsewhere),
            CallPhase::Declined => Some(CancelReason::DeclinedElsewhere),
            CallPhase::Missed => Some(CancelReason::Timeout),
            CallPhase::Cancelled => Some(self.reason.unwrap_or(CancelReason::CallerCancelled)),
        }
    }
}

/// A call-push signing key as `signing_keys` lists it: a public JWK (RFC 7517, RFC 8037), the
/// shape of [`Jwk`]. (Its OpenAPI description only.)
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
pub struct SigningKey {
    /// Key type: `OKP`.
    kty: String,
    /// Curve: `Ed25519`.
    crv: String,
    /// The public key, base64url without padding.
    x: String,
    /// Key id, which pushes name in their `kid` header.
    #[schema(nullable = false)]
    kid: Option<String>,
    /// Algorithm: `EdDSA`.
    #[schema(nullable = false)]
    alg: Option<String>,
    /// Use: `sig`.
    #[serde(rename = "use")]
    #[schema(nullable = false)]
    use_: Option<String>,
}

/// Reading answers: the shapes above, and those of servers from before instants were unix
/// milliseconds (`expires_at` and `server_time` in unix seconds, no `view`).
mod legacy {
    use super::{CallPhase, CallStatus, InstallationResponse, Jwk, StatusView, VerificationState};
    use crate::model::CancelReason;
    use serde::Deserialize;

    /// An instant an answer lacks, or gives in seconds beyond what milliseconds can hold.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub(super) enum InstantError {
        #[error("missing field `{0}_ms`")]
        Missing(&'static str),
        #[error("`{0}` (unix seconds) is out of range")]
        OutOfRange(&'static str),
    }

    /// An instant as an answer gives it: `<name>_ms`, or an older server's `<name>` in seconds.
    fn millis(ms: Option<i64>, seconds: Option<i64>, name: &'static str) -> Result<i64, InstantError> {
        match (ms, seconds) {
            (Some(ms), _) => Ok(ms),
            (None, Some(seconds)) => seconds.checked_mul(1000).ok_or(InstantError::OutOfRange(name)),
            (None, None) => Err(InstantError::Missing(name)),
        }
    }

    #[derive(Deserialize)]
    pub(super) struct InstallationResponseWire {
        installation_id: String,
        user_id: String,
        #[serde(default)]
        expires_at_ms: Option<i64>,
        #[serde(default)]
        expires_at: Option<i64>,
        #[serde(default)]
        server_time_ms: Option<i64>,
        #[serde(default)]
        server_time: Option<i64>,
        signing_keys: Vec<Jwk>,
        #[serde(default)]
        alert_token: Option<String>,
        #[serde(default)]
        verification: Option<VerificationState>,
        #[serde(default)]
        device_key_id: Option<String>,
    }

    impl TryFrom<InstallationResponseWire> for InstallationResponse {
        type Error = InstantError;

        fn try_from(w: InstallationResponseWire) -> Result<Self, InstantError> {
            Ok(InstallationResponse {
                expires_at_ms: millis(w.expires_at_ms, w.expires_at, "expires_at")?,
                server_time_ms: millis(w.server_time_ms, w.server_time, "server_time")?,
                installation_id: w.installation_id,
                user_id: w.user_id,
                signing_keys: w.signing_keys,
                alert_token: w.alert_token,
                verification: w.verification,
                device_key_id: w.device_key_id,
            })
        }
    }

    #[derive(Deserialize)]
    pub(super) struct CallStatusWire {
        #[serde(default)]
        view: StatusView,
        call_id: String,
        state: CallPhase,
        #[serde(default)]
        reason: Option<CancelReason>,
        #[serde(default)]
        answered_by: Option<String>,
        #[serde(default)]
        expires_at_ms: Option<i64>,
        #[serde(default)]
        expires_at: Option<i64>,
        #[serde(default)]
        server_time_ms: Option<i64>,
        #[serde(default)]
        server_time: Option<i64>,
    }

    impl TryFrom<CallStatusWire> for CallStatus {
        type Error = InstantError;

        fn try_from(w: CallStatusWire) -> Result<Self, InstantError> {
            Ok(CallStatus {
                view: w.view,
                expires_at_ms: millis(w.expires_at_ms, w.expires_at, "expires_at")?,
                server_time_ms: millis(w.server_time_ms, w.server_time, "server_time")?,
                call_id: w.call_id,
                state: w.state,
                reason: w.reason,
                answered_by: w.answered_by,
            })
        }
    }
}

/// Every error answer: `{"error": {"code", "message"}}`, and for `call_not_ringing` the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
    /// For `call_not_ringing`: the call as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallStatus>,
}

/// Error detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// For people.
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_ended_for_another_installation_says_why() {
        let status = |state, reason, answered_by: Option<&str>| CallStatus {
            view: StatusView::Status,
            call_id: "c".into(),
            state,
            reason,
            answered_by: answered_by.map(Into::into),
            expires_at_ms: 0,
            server_time_ms: 0,
        };
        // (status, me) → why it stopped ringing for me
        let table = [
            (status(CallPhase::Ringing, None, None), None),
            (status(CallPhase::Answered, None, Some("me")), None),
            (status(CallPhase::Answered, None, Some("other")), Some(CancelReason::AnsweredElsewhere)),
            (status(CallPhase::Declined, None, None), Some(CancelReason::DeclinedElsewhere)),
            (status(CallPhase::Missed, Some(CancelReason::Timeout), None), Some(CancelReason::Timeout)),
            (status(CallPhase::Cancelled, None, None), Some(CancelReason::CallerCancelled)),
            (
                status(CallPhase::Cancelled, Some(CancelReason::AnsweredElsewhere), None),
                Some(CancelReason::AnsweredElsewhere),
            ),
        ];
        for (status, expected) in table {
            assert_eq!(status.ended_for("me"), expected, "{status:?}");
        }
    }

    #[test]
    fn phases_round_trip_through_their_names() {
        for phase in CallPhase::ALL {
            assert_eq!(phase.as_str().parse(), Ok(phase));
            assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
        }
        assert_eq!("ended".parse::<CallPhase>(), Err(UnknownCallPhase("ended".into())));
    }

    #[test]
    fn a_call_status_says_its_view_and_gives_instants_in_milliseconds() {
        let status = CallStatus {
            view: StatusView::Status,
            call_id: "c".into(),
            state: CallPhase::Missed,
            reason: Some(CancelReason::Timeout),
            answered_by: None,
            expires_at_ms: 1_767_225_630_250,
            server_time_ms: 1_767_225_600_125,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"view": "status", "call_id": "c", "state": "missed", "reason": "timeout",
                               "answered_by": null, "expires_at_ms": 1_767_225_630_250_i64,
                               "server_time_ms": 1_767_225_600_125_i64})
        );
        assert_eq!(serde_json::from_value::<CallStatus>(json).unwrap(), status);
    }

    #[test]
    fn answers_of_older_servers_in_seconds_are_read_as_milliseconds() {
        // (answer, expires_at_ms, server_time_ms); `None`: refused
        let table = [
            (
                serde_json::json!({"expires_at": 1_767_225_630, "server_time": 1_767_225_600}),
                Some((1_767_225_630_000, 1_767_225_600_000)),
            ),
            (serde_json::json!({"expires_at_ms": 5_250, "server_time_ms": 1_125}), Some((5_250, 1_125))),
            // Both: the milliseconds win.
            (
                serde_json::json!({"expires_at_ms": 5_250, "expires_at": 9, "server_time_ms": 1_125, "server_time": 9}),
                Some((5_250, 1_125)),
            ),
            (serde_json::json!({"server_time_ms": 1_125}), None),
            (serde_json::json!({"expires_at": i64::MAX, "server_time": 1}), None),
        ];
        for (times, expected) in table {
            let mut call = serde_json::json!({"call_id": "c", "state": "ringing"});
            let mut lease = serde_json::json!({"installation_id": "i", "user_id": "u", "signing_keys": []});
            for body in [&mut call, &mut lease] {
                body.as_object_mut().unwrap().extend(times.as_object().unwrap().clone());
            }
            let status = serde_json::from_value::<CallStatus>(call)
                .map(|s| (s.view, s.expires_at_ms, s.server_time_ms));
            let lease = serde_json::from_value::<InstallationResponse>(lease)
                .map(|l| (l.expires_at_ms, l.server_time_ms));
            match expected {
                Some((expires, now)) => {
                    assert_eq!(status.unwrap(), (StatusView::Status, expires, now), "{times}");
                    assert_eq!(lease.unwrap(), (expires, now), "{times}");
                }
                None => assert!(status.is_err() && lease.is_err(), "{times}"),
            }
        }
        // A call's details are no status.
        let detail = serde_json::json!({"view": "detail", "call_id": "c", "state": "ringing", "expires_at_ms": 1, "server_time_ms": 1});
        assert!(serde_json::from_value::<CallStatus>(detail).is_err());
    }
}
