//! What a call push carries: the claims of a ring or cancel push of a call to one callee. The
//! orchestrator sizes pushes with them before storing a call; the workers sign them to send.
//!
//! A callee's devices get the same claims (the same call, audience, event and second): the
//! workers sign them once per callee and second ([`SignedPushes`]) and send that one JWS to each
//! of the callee's devices, so a fan-out costs one Ed25519 signature per callee, not per device.
//! Its `jti` is the id of the delivery that signed it: unique per signed message.
//!
//! A device on wire v2 (it registered a device key) gets the same claims signed padded for its
//! provider ([`SignedPushes::sealed_payload`], also once per callee, provider and second) and
//! encrypted to its own key with fresh randomness: the only per-device cost is the encryption.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use callpush_proto::error::WireError;
use callpush_proto::model::{Caller, CancelReason, Invite, Jwk, Platform, PushEvent};
use callpush_proto::wire::{
    encode_push, seal_for, sign, sign_for_sealing, wrap, CallSigner, DeviceKey, ProviderPayload,
    SealRandomness, CRV_X25519,
};

use crate::domain::{CallRecord, Delivery, DeliveryStatus, PushKind};
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

impl Signed {
    /// Whether the entries are those of `now_s`, moving on to it when it is later than the
    /// second held.
    fn holds(&mut self, now_s: i64) -> bool {
        if now_s > self.second {
            self.second = now_s;
            if self.by_call.capacity() > 1024 {
                self.by_call = HashMap::new();
            } else {
                self.by_call.clear();
            }
        }
        now_s == self.second
    }
}

/// One signed push: what makes its claims (besides the call), the JWS wrapped for each
/// provider it fits (wire v1), and the padded JWS signed for sealing to each provider's devices
/// (wire v2).
struct SignedPush {
    /// When its call was created: two calls given one id never share an entry.
    call_created_at: i64,
    user: String,
    evt: PushEvent,
    reason: Option<CancelReason>,
    signer: Arc<CallSigner>,
    jws: Option<String>,
    wrapped: [Option<ProviderPayload>; 4],
    for_sealing: [Option<String>; 4],
}

impl SignedPush {
    /// An entry for `id` with nothing signed yet.
    fn new(id: &PushId<'_>) -> Self {
        SignedPush {
            call_created_at: id.call.created_at,
            user: id.user.to_owned(),
            evt: id.evt,
            reason: id.reason,
            signer: id.signer.clone(),
            jws: None,
            wrapped: [None, None, None, None],
            for_sealing: [None, None, None, None],
        }
    }

    /// Fills in from `other` (the same push) what this entry lacks.
    fn merge(&mut self, other: SignedPush) {
        self.jws = self.jws.take().or(other.jws);
        for (mine, theirs) in self.wrapped.iter_mut().zip(other.wrapped) {
            *mine = mine.take().or(theirs);
        }
        for (mine, theirs) in self.for_sealing.iter_mut().zip(other.for_sealing) {
            *mine = mine.take().or(theirs);
        }
    }

    /// What tells this push from the call's others.
    fn key(&self) -> PushKey<'_> {
        (self.call_created_at, self.user.as_str(), self.evt, self.reason, Arc::as_ptr(&self.signer))
    }

    fn is(&self, id: &PushId<'_>) -> bool {
        self.key() == (id.call.created_at, id.user, id.evt, id.reason, Arc::as_ptr(id.signer))
    }
}

/// A push's call creation time, callee, event, reason and key.
type PushKey<'a> = (i64, &'a str, PushEvent, Option<CancelReason>, *const CallSigner);

/// Entries a call's list holds at most: a call rings at most 32 callees, each with a ring and
/// perhaps a cancel in the same second.
const MAX_PER_CALL: usize = 128;

/// Which push of a call an entry of [`SignedPushes`] is: its callee, event, reason and key.
struct PushId<'a> {
    call: &'a CallRecord,
    user: &'a str,
    evt: PushEvent,
    reason: Option<CancelReason>,
    now_s: i64,
    signer: &'a Arc<CallSigner>,
}

impl SignedPushes {
    /// What `read` finds in the entry of `id` signed this second, if any. Moves on to `id`'s
    /// second when it is later than the one held.
    fn cached<T>(&self, id: &PushId<'_>, read: impl FnOnce(&SignedPush) -> Option<T>) -> Option<T> {
        let mut signed = unpoisoned(self.signed.lock());
        if !signed.holds(id.now_s) {
            return None;
        }
        signed.by_call.get(&id.call.call_id).and_then(|list| list.iter().find(|s| s.is(id))).and_then(read)
    }

    /// Lets `write` fill in the entry of `id`, made if there is none yet and the call's list
    /// has room; nothing when the second has moved on since.
    fn remember(&self, id: &PushId<'_>, write: impl FnOnce(&mut SignedPush)) {
        let mut signed = unpoisoned(self.signed.lock());
        if signed.second != id.now_s {
            return;
        }
        let list = signed.by_call.entry(id.call.call_id.clone()).or_default();
        if let Some(entry) = list.iter_mut().find(|s| s.is(id)) {
            write(entry);
        } else if list.len() < MAX_PER_CALL {
            let mut entry = SignedPush::new(id);
            write(&mut entry);
            list.push(entry);
        }
    }

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
        let id = PushId { call, user, evt, reason, now_s, signer };
        let known = self.cached(&id, |entry| match &entry.wrapped[p] {
            Some(payload) => Some(Ok(payload.clone())),
            None => entry.jws.clone().map(Err),
        });
        let jws = match known {
            Some(Ok(payload)) => return Ok(payload),
            Some(Err(jws)) => jws,
            None => sign(&invite(server_id, call, user, jti, evt, reason, now_s), signer),
        };
        let payload = wrap(platform, jws.clone());
        let fits = payload.size() <= platform.payload_limit();
        self.remember(&id, |entry| {
            if fits {
                entry.wrapped[p] = Some(payload.clone());
            }
            entry.jws.get_or_insert(jws);
        });
        if fits {
            Ok(payload)
        } else {
            // Too large as it is: shortened for this provider, signed for this device alone.
            encode_push(platform, &invite(server_id, call, user, jti, evt, reason, now_s), signer)
        }
    }

    /// The same push for a device on wire v2: the padded JWS signed for sealing to `platform`
    /// (shared, as [`SignedPushes::payload`] shares its JWS, by every device of `user` on
    /// `platform` this second), encrypted to `to` with fresh randomness from the OS and
    /// wrapped for `platform`. Only the encryption is per device: one X25519 agreement and one
    /// AES-GCM pass.
    #[allow(clippy::too_many_arguments)]
    pub fn sealed_payload(
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
        to: &DeviceKey,
    ) -> Result<ProviderPayload, WireError> {
        let id = PushId { call, user, evt, reason, now_s, signer };
        let jws = self.for_sealing(platform, server_id, &id, jti)?;
        Ok(seal_for(platform, &jws, to, &fresh_randomness()))
    }

    /// The padded JWS of `id` signed for sealing to `platform`'s devices: the one signed this
    /// second if there is one, else one signed now with `jti`.
    fn for_sealing(
        &self,
        platform: Platform,
        server_id: &str,
        id: &PushId<'_>,
        jti: &str,
    ) -> Result<String, WireError> {
        let p = platform.index();
        if let Some(jws) = self.cached(id, |entry| entry.for_sealing[p].clone()) {
            return Ok(jws);
        }
        let claims = invite(server_id, id.call, id.user, jti, id.evt, id.reason, id.now_s);
        let jws = sign_for_sealing(platform, &claims, id.signer)?;
        self.remember(id, |entry| entry.for_sealing[p] = Some(jws.clone()));
        Ok(jws)
    }

    /// Puts the pushes signed ahead where the workers look, once their call is stored; nothing
    /// when the second they were signed in has passed.
    pub fn publish(&self, ahead: SignedAhead) {
        let ahead = unpoisoned(ahead.signed.signed.into_inner());
        let Some((call_id, entries)) = ahead.by_call.into_iter().next() else { return };
        let mut signed = unpoisoned(self.signed.lock());
        if !signed.holds(ahead.second) {
            return;
        }
        let list = signed.by_call.entry(call_id).or_default();
        for entry in entries {
            if let Some(known) = list.iter_mut().find(|s| s.key() == entry.key()) {
                known.merge(entry);
            } else if list.len() < MAX_PER_CALL {
                list.push(entry);
            }
        }
    }
}

/// The pushes of one call its workers will send first, signed by the orchestrator while the
/// call's commit is under way, into a cache of their own. They stay out of the shared
/// [`SignedPushes`] until the call is stored ([`SignedPushes::publish`]): a request refused
/// because its call id is taken, or whose commit failed, never leaves its claims where another
/// call's devices could be sent them.
pub struct SignedAhead {
    signed: SignedPushes,
}

impl SignedAhead {
    /// Signs at `now_s` the claimed ring and cancel pushes of `deliveries` of `call`, exactly
    /// as [`SignedPushes::payload`] and [`SignedPushes::sealed_payload`] do for the workers. A
    /// push that cannot be signed is left to the worker, which reports why.
    pub fn sign(
        server_id: &str,
        call: &CallRecord,
        deliveries: &[Delivery],
        now_s: i64,
        signer: &Arc<CallSigner>,
    ) -> Self {
        let signed = SignedPushes::default();
        for d in deliveries.iter().filter(|d| d.status == DeliveryStatus::Sending) {
            let evt = match d.kind {
                PushKind::Ring => PushEvent::Ring,
                PushKind::Cancel => PushEvent::Cancel,
                PushKind::Missed => continue,
            };
            let (user, jti, reason) = (d.user_id.as_str(), d.delivery_id.as_str(), d.reason);
            let _ = match d.device_key {
                None => signed
                    .payload(d.platform, server_id, call, user, jti, evt, reason, now_s, signer)
                    .map(drop),
                Some(_) => {
                    let id = PushId { call, user, evt, reason, now_s, signer };
                    signed.for_sealing(d.platform, server_id, &id, jti).map(drop)
                }
            };
        }
        SignedAhead { signed }
    }
}

/// The randomness of one sealed push, fresh from the OS: a new ephemeral key and nonce for
/// every push, never reused.
pub fn fresh_randomness() -> SealRandomness {
    let mut bytes = [0u8; 44];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let mut randomness = SealRandomness { ephemeral: [0; 32], iv: [0; 12] };
    randomness.ephemeral.copy_from_slice(&bytes[..32]);
    randomness.iv.copy_from_slice(&bytes[32..]);
    randomness
}

/// The device key stored as `x` (its JWK `x`, checked when it was registered).
pub fn device_key(x: &str) -> Result<DeviceKey, WireError> {
    DeviceKey::from_jwk(&Jwk {
        kty: "OKP".into(),
        crv: CRV_X25519.into(),
        x: x.to_owned(),
        kid: None,
        alg: None,
        use_: None,
    })
}

/// Device keys read back from deliveries, each decoded (and checked, an X25519 operation) once
/// rather than for every push to its installation.
#[derive(Default)]
pub struct DeviceKeys {
    decoded: Mutex<HashMap<String, DeviceKey>>,
}

/// Keys [`DeviceKeys`] holds at most; past it, it starts afresh.
const MAX_DEVICE_KEYS: usize = 16_384;

impl DeviceKeys {
    /// The device key stored as `x`.
    pub fn get(&self, x: &str) -> Result<DeviceKey, WireError> {
        if let Some(key) = unpoisoned(self.decoded.lock()).get(x) {
            return Ok(key.clone());
        }
        let key = device_key(x)?;
        let mut decoded = unpoisoned(self.decoded.lock());
        if decoded.len() >= MAX_DEVICE_KEYS {
            decoded.clear();
        }
        decoded.insert(x.to_owned(), key.clone());
        Ok(key)
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
    fn sealed_pushes_share_the_signature_and_encrypt_to_each_device_afresh() {
        use callpush_proto::wire::{open_sealed, DeviceSecret};
        let signer = Arc::new(CallSigner::from_seed(&[7; 32]));
        let keys = KeySet::from_jwks(&[signer.public_jwk()]).unwrap();
        let signed = SignedPushes::default();
        let (phone, tablet) = (DeviceSecret::from_bytes([1; 32]), DeviceSecret::from_bytes([2; 32]));
        let mut named = call();
        let push = |call: &CallRecord, platform, jti, to: &DeviceSecret| {
            let key = device_key(&to.public().jwk().x).unwrap();
            let payload = signed
                .sealed_payload(
                    platform,
                    "srv",
                    call,
                    "bob",
                    jti,
                    PushEvent::Ring,
                    None,
                    1_000,
                    &signer,
                    &key,
                )
                .unwrap();
            (payload.size(), jws_of(&payload))
        };
        let (size, to_phone) = push(&named, Platform::Fcm, "d-1", &phone);
        let (_, to_tablet) = push(&named, Platform::Fcm, "d-2", &tablet);
        assert_ne!(to_phone, to_tablet, "each device gets its own encryption");
        let opened = open_sealed(&to_phone, std::slice::from_ref(&phone)).unwrap();
        assert_eq!(opened, open_sealed(&to_tablet, std::slice::from_ref(&tablet)).unwrap(), "one signature");
        assert!(open_sealed(&to_phone, std::slice::from_ref(&tablet)).is_err());
        let decoded = Jws::decode(&opened).unwrap();
        decoded.verify(&keys).unwrap();
        assert_eq!(decoded.claims().unwrap().jti, "d-1");
        // The same device again: the same JWS, encrypted afresh.
        let (_, again) = push(&named, Platform::Fcm, "d-3", &phone);
        assert_ne!(again, to_phone);
        // Every sealed push of a provider has one size, whoever calls.
        named.call_id = "c-2".into();
        named.caller_name = Some("A much longer caller name than Alice's".into());
        assert_eq!(push(&named, Platform::Fcm, "d-4", &phone).0, size);
        assert!(size <= Platform::Fcm.payload_limit());
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

    #[test]
    fn pushes_signed_ahead_are_the_ones_the_workers_send() {
        use callpush_proto::wire::{open_sealed, DeviceSecret};
        let signer = Arc::new(CallSigner::from_seed(&[7; 32]));
        let signed = SignedPushes::default();
        let (call, ring) = (call(), PushEvent::Ring);
        let carol_secret = DeviceSecret::from_bytes([3; 32]);
        let carol_key = carol_secret.public().jwk().x;
        let delivery = |id: &str, user: &str, platform, status, device_key: Option<&str>| Delivery {
            delivery_id: id.into(),
            user_id: user.into(),
            status,
            device_key: device_key.map(str::to_owned),
            ..Delivery::example(platform)
        };
        let deliveries = [
            delivery("d-bob", "bob", Platform::Fcm, DeliveryStatus::Sending, None),
            delivery("d-carol", "carol", Platform::Apns, DeliveryStatus::Sending, Some(&carol_key)),
            delivery("d-dave", "dave", Platform::Fcm, DeliveryStatus::Pending, None),
        ];
        signed.publish(SignedAhead::sign("srv", &call, &deliveries, 1_000, &signer));
        let jti = |jws: &str| Jws::decode(jws).unwrap().claims().unwrap().jti;
        let v1_at = |user, id, now_s| {
            jws_of(
                &signed.payload(Platform::Fcm, "srv", &call, user, id, ring, None, now_s, &signer).unwrap(),
            )
        };
        let v1 = |user, id| v1_at(user, id, 1_000);
        // Signed ahead: the worker, asking with another id, gets the JWS signed with the first's.
        assert_eq!(jti(&v1("bob", "d-bob-2")), "d-bob");
        // Not claimed, so not signed ahead: signed when asked.
        assert_eq!(jti(&v1("dave", "d-dave")), "d-dave");
        let sealed = signed
            .sealed_payload(
                Platform::Apns,
                "srv",
                &call,
                "carol",
                "d-carol-2",
                ring,
                None,
                1_000,
                &signer,
                &device_key(&carol_key).unwrap(),
            )
            .unwrap();
        let opened = open_sealed(&jws_of(&sealed), std::slice::from_ref(&carol_secret)).unwrap();
        assert_eq!(jti(&opened), "d-carol");
        // Published after the second they were signed in: dropped, the second's own kept.
        let _ = signed.payload(Platform::Fcm, "srv", &call, "erin", "d-erin", ring, None, 1_001, &signer);
        signed.publish(SignedAhead::sign("srv", &call, &deliveries[..1], 1_000, &signer));
        assert_eq!(jti(&v1_at("erin", "d-erin-2", 1_001)), "d-erin");
    }

    #[test]
    fn pushes_signed_ahead_for_a_call_that_was_not_stored_never_stand_in() {
        let signer = Arc::new(CallSigner::from_seed(&[7; 32]));
        let signed = SignedPushes::default();
        let stored = call();
        let bob = Delivery { delivery_id: "d-bob".into(), ..Delivery::example(Platform::Fcm) };
        // A second request with the stored call's id, in the same millisecond, with other
        // claims: refused when its commit finds the id taken, so never published.
        let mut refused = stored.clone();
        refused.caller_name = Some("Mallory".into());
        let _ = SignedAhead::sign("srv", &refused, std::slice::from_ref(&bob), 1_000, &signer);
        signed.publish(SignedAhead::sign("srv", &stored, std::slice::from_ref(&bob), 1_000, &signer));
        let push = signed.payload(
            Platform::Fcm,
            "srv",
            &stored,
            "bob",
            "d-2",
            PushEvent::Ring,
            None,
            1_000,
            &signer,
        );
        let claims = Jws::decode(&jws_of(&push.unwrap())).unwrap().claims().unwrap();
        assert_eq!((claims.jti.as_str(), claims.from.name.as_deref()), ("d-bob", Some("Alice")));
    }
}
