//! What a push means to the app, and the calls it tracks; with the shared vocabulary of
//! [`callpush_proto::model`] re-exported, so one path names every model type.
//!
//! Plain data: nothing here does I/O or cryptography.

pub use callpush_proto::model::*;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize, Serializer};

/// A call as a push describes it, in the form apps and the `inspect` command show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct IncomingCall {
    /// The call id (claim `cid`).
    pub call_id: String,
    /// The caller's user id.
    pub caller_id: String,
    /// The caller's display name, if given.
    pub caller_name: Option<String>,
    /// Whether video is offered.
    pub video: bool,
    /// The callee's user id (claim `aud`).
    pub callee: String,
    /// Server time at send, unix seconds.
    pub issued_at: i64,
    /// Ring deadline, unix seconds.
    pub expires_at: i64,
    /// For a cancel, why the call stopped ringing.
    pub reason: Option<CancelReason>,
    /// HarmonyOS only: the system call id from `receiveMessage('VoIP')`, which
    /// `voipCall.reportIncomingCall` must use. Distinct from `call_id`.
    pub system_call_id: Option<String>,
    /// App data from the invite.
    #[serde(serialize_with = "sorted_map")]
    pub data: HashMap<String, String>,
}

impl IncomingCall {
    /// The call an invite describes, with the HarmonyOS system call id when there is one.
    pub fn from_invite(invite: Invite, system_call_id: Option<String>) -> Self {
        IncomingCall {
            call_id: invite.cid,
            caller_id: invite.from.id,
            caller_name: invite.from.name,
            video: invite.video,
            callee: invite.aud,
            issued_at: invite.iat,
            expires_at: invite.exp,
            reason: match invite.evt {
                PushEvent::Cancel => invite.reason,
                PushEvent::Ring => None,
            },
            system_call_id,
            data: invite.data.into_iter().collect(),
        }
    }
}

fn sorted_map<S: Serializer>(map: &HashMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().collect::<BTreeMap<_, _>>())
}

/// What one push means for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A live incoming call: ring now.
    Ring,
    /// A call stopped ringing; [`IncomingCall::reason`] says why.
    Cancel,
    /// A call push whose deadline has passed: never ring it; show a missed call.
    Stale,
    /// Not a callpush push at all; some other part of the app owns it.
    Ignore,
    /// A callpush push that failed verification; never ring it.
    Rejected,
    /// A call this device already knows about (the client's dedupe; adapters never say this).
    Duplicate,
    /// Not a call: the server asks this device to prove it holds its push token before the
    /// token moves to this installation from another user's. The client answers it; never rung.
    Verify,
}

impl Outcome {
    /// The snake_case name printed by `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ring => "ring",
            Outcome::Cancel => "cancel",
            Outcome::Stale => "stale",
            Outcome::Ignore => "ignore",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Verify => "verify",
        }
    }
}

/// What the app must do with the system call UI right now, inside the push callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum SystemReport {
    /// Report a new incoming call (CallKit, Telecom, `voipCall.reportIncomingCall`, toast).
    Ring,
    /// iOS: report a new incoming call and end it at once; iOS terminates apps that
    /// receive a VoIP push and do not report it to CallKit.
    ReportAndEnd,
    /// HarmonyOS: call `voipCall.reportIncomingCallError` with the system call id.
    ReportError,
    /// Nothing to report.
    None,
}

/// The decision about one push: what it means, what to report now, and the call it describes.
///
/// Serialises to exactly the JSON object `callpush inspect` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HandleOutcome {
    /// What the push means.
    pub outcome: Outcome,
    /// What the app must do with the system call UI before the push callback returns.
    pub report: SystemReport,
    /// The call the push describes, whenever its claims could be read (even if rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<IncomingCall>,
    /// Why the push was rejected; set only when `outcome` is `Rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Rejection>,
}

/// Where a call stands on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Incoming and ringing: the system call UI shows it.
    Ringing,
    /// Outgoing, reported to the system, not yet connected.
    Dialing,
    /// The user answered; media is connecting.
    Answered,
    /// Media is connected.
    Active,
    /// Over; the call's `end_reason` says why.
    Ended,
}

/// Why a call ended on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The user declined it here.
    Declined,
    /// The user hung up here (or ended an outgoing call).
    HungUp,
    /// The caller hung up before it was answered.
    CallerCancelled,
    /// Another device of the user answered it.
    AnsweredElsewhere,
    /// Another device of the user declined it.
    DeclinedElsewhere,
    /// Nobody answered before the ring deadline.
    Missed,
    /// It could not be set up (the system call UI refused it, or the server lost it).
    Failed,
}

impl From<CancelReason> for EndReason {
    fn from(reason: CancelReason) -> Self {
        match reason {
            CancelReason::CallerCancelled => EndReason::CallerCancelled,
            CancelReason::AnsweredElsewhere => EndReason::AnsweredElsewhere,
            CancelReason::DeclinedElsewhere => EndReason::DeclinedElsewhere,
            CancelReason::Timeout => EndReason::Missed,
        }
    }
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// Someone calls this user.
    Incoming,
    /// This user calls someone.
    Outgoing,
}

/// A call as the client tracks it, handed to the system call UI and the app's listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Call {
    /// The call id.
    pub call_id: String,
    /// Incoming or outgoing.
    pub direction: CallDirection,
    /// Where it stands.
    pub state: CallState,
    /// Why it ended, once `state` is `Ended`.
    pub end_reason: Option<EndReason>,
    /// The other party's user id (the caller of an incoming call, the callee of an outgoing one).
    pub peer_id: String,
    /// The other party's display name, if known.
    pub peer_name: Option<String>,
    /// Whether video is offered.
    pub video: bool,
    /// HarmonyOS: the system call id `voipCall` knows the call by.
    pub system_call_id: Option<String>,
    /// Incoming: the ring deadline on the server clock, unix seconds.
    pub expires_at: Option<i64>,
    /// App data from the invite.
    pub data: HashMap<String, String>,
}
