//! What a call push carries: the claims of a ring or cancel push of a call to one callee. The
//! orchestrator sizes pushes with them before storing a call; the workers sign them to send.
//!
//! A callee's devices get the same claims (the same call, audience, event and second): the
//! workers sign them once per callee and second ([`SignedPushes`]) and send that one JWS to each
//! of the callee's devices, so a fan-out costs one Ed25519 signature per callee, not per device.
//! Its `jti` is the id of the delivery that signed it: unique per signed message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use callpush_proto::error::WireError;
use callpush_proto::model::{Caller, CancelReason, Invite, Platform, PushEvent};
use callpush_proto::wire::{encode_push, sign, wrap, CallSigner, ProviderPayload};

use crate::domain::CallRecord;
use crate::sync::unpoisoned;

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

/// The pushes signed in the latest second, by call: a callee's other devices reuse them.
#[derive(Default)]
pub struct SignedPushes {
    signed: Mutex<Signed>,
}

#[derive(Default)]
struct Signed {
    /// The unix second every entry was issued in.
    second: i64,
    by_call: HashMap<String, Vec<SignedPush>>,
}

/// One signed push: what makes its claims (besides the call), and the JWS wrapped for each
/// provider it fits.
struct SignedPush {
    user: String,
    evt: PushEvent,
    reason: Option<CancelReason>,
    signer: Arc<CallSigner>,
    jws: String,
    wrapped: [Option<ProviderPayload>; 4],
}

impl SignedPush {
    fn is(&self, user: &str, evt: PushEvent, reason: Option<CancelReason>, signer: &Arc<CallSigner>) -> bool {
        self.evt == evt && self.reason == reason && self.user == user && Arc::ptr_eq(&self.signer, signer)
    }
}

/// Entries a call's list holds at most: a call rings at most 32 callees, each with a ring and
/// perhaps a cancel in the same second.
const MAX_PER_CALL: usize = 128;

impl SignedPushes {
    /// The push of `evt` (with `reason`) of `call` to `user`, issued by `server_id` at `now_s`
    /// and signed by `signer`, wrapped for `platform` within its size limit: the JWS signed for
    /// another of `user`'s devices in the same second if there is one, else one signed now with
    /// `jti`. A push too large for `platform` is shortened as [`encode_push`] does.
    #[allow(clippy::too_many_arguments)]
    pub fn payload(
        &self,
        platform: Platform,
        server_id: &str,
        call: &CallRecord,
        user: &str,
        jti: &str,
        evt: PushEvent,
        reason: Option<CancelReason>,
        now_s: i64,
        signer: &Arc<CallSigner>,
    ) -> Result<ProviderPayload, WireError> {
        let p = platform.index();
        let known = {
            let mut signed = unpoisoned(self.signed.lock());
            if now_s > signed.second {
                signed.second = now_s;
                if signed.by_call.capacity() > 1024 {
                    signed.by_call = HashMap::new();
                } else {
                    signed.by_call.clear();
                }
            }
            if now_s == signed.second {
                let entry = signed
                    .by_call
                    .get_mut(&call.call_id)
                    .and_then(|list| list.iter_mut().find(|s| s.is(user, evt, reason, signer)));
                match entry {
                    Some(entry) => match &entry.wrapped[p] {
                        Some(payload) => return Ok(payload.clone()),
                        None => Some(entry.jws.clone()),
                    },
                    None => None,
                }
            } else {
                None
            }
        };
        let claims = || invite(server_id, call, user, jti, evt, reason, now_s);
        let jws = match known {
            Some(jws) => jws,
            None => sign(&claims(), signer),
        };
        let payload = wrap(platform, jws.clone());
        let fits = payload.size() <= platform.payload_limit();
        let mut signed = unpoisoned(self.signed.lock());
        if signed.second == now_s {
            let list = signed.by_call.entry(call.call_id.clone()).or_default();
            let full = list.len() >= MAX_PER_CALL;
            match list.iter_mut().find(|s| s.is(user, evt, reason, signer)) {
                Some(entry) if fits => entry.wrapped[p] = Some(payload.clone()),
                Some(_) => {}
                None if !full => {
                    let mut wrapped = [None, None, None, None];
                    if fits {
                        wrapped[p] = Some(payload.clone());
                    }
                    list.push(SignedPush {
                        user: user.to_owned(),
                        evt,
                        reason,
                        signer: signer.clone(),
                        jws,
                        wrapped,
                    });
                }
                None => {}
            }
        }
        drop(signed);
        if fits {
            Ok(payload)
        } else {
            // Too large as it is: shortened for this provider, signed for this device alone.
            encode_push(platform, &claims(), signer)
        }
    }
}

#[cfg(test)]
mod tests {
    use callpush_proto::model::RawPush;
    use callpush_proto::wire::{open_envelope, Jws, KeySet};

    use super::*;
    use crate::domain::CallPhase;

    fn call() -> CallRecord {
        CallRecord {
            call_id: "c-1".into(),
            caller_id: "alice".into(),
            caller_name: Some("Alice".into()),
            video: false,
            data: Default::default(),
            state: CallPhase::Ringing,
            reason: None,
            answered_by: None,
            created_at: 1_000_000,
            expires_at: 1_030_000,
            ended_at: None,
            version: 1,
        }
    }

    fn jws_of(payload: &ProviderPayload) -> String {
        let raw = match payload {
            ProviderPayload::Fcm { data } => RawPush::Map(data.clone().into_iter().collect()),
            ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => RawPush::Text(body.clone()),
            ProviderPayload::Harmony { .. } => unreachable!(),
        };
        open_envelope(payload.platform(), &raw).unwrap().unwrap().jws
    }

    #[test]
    fn a_callee_s_devices_share_one_signature_per_second_and_nobody_else_does() {
        let signer = Arc::new(CallSigner::from_seed(&[7; 32]));
        let keys = KeySet::from_jwks(&[signer.public_jwk()]).unwrap();
        let signed = SignedPushes::default();
        let (call, ring) = (call(), PushEvent::Ring);
        let push = |platform, user, jti, now_s| {
            jws_of(&signed.payload(platform, "srv", &call, user, jti, ring, None, now_s, &signer).unwrap())
        };
        let first = push(Platform::Fcm, "bob", "d-1", 1_000);
        assert_eq!(push(Platform::Apns, "bob", "d-2", 1_000), first, "bob's iPhone: the same JWS");
        assert_eq!(push(Platform::Fcm, "bob", "d-3", 1_000), first);
        let carol = push(Platform::Fcm, "carol", "d-4", 1_000);
        let later = push(Platform::Fcm, "bob", "d-5", 1_001);
        assert!(carol != first && later != first);
        for (jws, aud, jti, iat) in
            [(&first, "bob", "d-1", 1_000), (&carol, "carol", "d-4", 1_000), (&later, "bob", "d-5", 1_001)]
        {
            let decoded = Jws::decode(jws).unwrap();
            decoded.verify(&keys).unwrap();
            let claims = decoded.claims().unwrap();
            assert_eq!((claims.aud.as_str(), claims.jti.as_str(), claims.iat), (aud, jti, iat));
        }
        // A cancel is not a ring; another key is not this one.
        let cancel = signed
            .payload(
                Platform::Fcm,
                "srv",
                &call,
                "bob",
                "d-6",
                PushEvent::Cancel,
                Some(CancelReason::Timeout),
                1_001,
                &signer,
            )
            .unwrap();
        assert_ne!(jws_of(&cancel), later);
        let other = Arc::new(CallSigner::from_seed(&[8; 32]));
        let rotated =
            signed.payload(Platform::Fcm, "srv", &call, "bob", "d-7", ring, None, 1_001, &other).unwrap();
        assert_ne!(jws_of(&rotated), later);
    }
}
