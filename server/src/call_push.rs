//! What a call push carries: the claims of a ring or cancel push of a call to one callee. The
//! orchestrator sizes pushes with them before storing a call; the workers sign them to send.

use callpush_proto::model::{Caller, CancelReason, Invite, PushEvent};

use crate::domain::CallRecord;

/// The claims of a push of `call` to `user`, issued by `server_id` at `now_s` (unix seconds).
pub fn invite(
    server_id: &str,
    call: &CallRecord,
    user: &str,
    jti: &str,
    evt: PushEvent,
    reason: Option<CancelReason>,
    now_s: i64,
) -> Invite {
    let exp = match evt {
        PushEvent::Ring => call.expires_at / 1000,
        // A cancel means something for a minute, even after the ring deadline.
        PushEvent::Cancel => now_s.max(call.expires_at / 1000) + 60,
    };
    Invite {
        iss: server_id.to_owned(),
        aud: user.to_owned(),
        jti: jti.to_owned(),
        iat: now_s,
        exp,
        v: callpush_proto::model::WIRE_VERSION,
        evt,
        cid: call.call_id.clone(),
        from: Caller { id: call.caller_id.clone(), name: call.caller_name.clone() },
        video: call.video,
        reason,
        data: call.data.clone(),
    }
}
