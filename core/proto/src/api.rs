//! The device side of the HTTP API — installations, verify answers, call status, answer and
//! decline — as one definition the server serves, the device client sends and reads, and the
//! test fakes answer with. With the `openapi` feature each type also describes its OpenAPI
//! schema (the server's `/openapi.json`).

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
pub struct InstallationResponse {
    /// The installation.
    pub installation_id: String,
    /// The identity the installation belongs to.
    pub user_id: String,
    /// Lease end, unix seconds.
    pub expires_at: i64,
    /// The server's clock, unix seconds.
    pub server_time: i64,
    /// The keys call pushes are signed with (JWK, Ed25519).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub signing_keys: Vec<Jwk>,
    /// APNs: the alert token registered for the missed-call alert, normalised; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_token: Option<String>,
    /// `pending` (with status 202): the installation does not ring until the device answers
    /// the verify push. Absent: the installation rings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationState>,
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

/// A call's state (`GET /v1/calls/{id}` for devices; answer, decline and cancel answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallStatus {
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
    /// Ring deadline, unix seconds.
    pub expires_at: i64,
    /// The server's clock, unix seconds.
    pub server_time: i64,
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
            call_id: "c".into(),
            state,
            reason,
            answered_by: answered_by.map(Into::into),
            expires_at: 0,
            server_time: 0,
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
}
