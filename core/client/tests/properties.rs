//! Property tests: no decoder panics on any input, and encode → decode round-trips.

use std::collections::BTreeMap;

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{Caller, Invite, Outcome, Platform, PushEvent, RawPush};
use callpush_client::wire::{
    encode_push, harmony_delivery, open_envelope, CallSigner, Jws, KeySet, ProviderPayload,
};
use proptest::prelude::*;

fn platform() -> impl Strategy<Value = Platform> {
    prop::sample::select(Platform::ALL.to_vec())
}

fn invite() -> impl Strategy<Value = Invite> {
    (
        "[a-zA-Z0-9_.:-]{1,64}",
        "\\PC{1,40}",
        prop::option::of("\\PC{0,80}"),
        any::<bool>(),
        prop::collection::btree_map("\\PC{1,12}", "\\PC{0,40}", 0..4),
        1i64..4_000_000_000,
        0i64..120,
        any::<bool>(),
    )
        .prop_map(|(cid, caller, name, video, data, iat, ring, cancel)| Invite {
            iss: "srv".into(),
            aud: "user".into(),
            jti: format!("j-{cid}"),
            iat,
            exp: iat + ring,
            v: 1,
            evt: if cancel { PushEvent::Cancel } else { PushEvent::Ring },
            cid,
            from: Caller { id: caller, name },
            video,
            reason: cancel.then_some(callpush_client::model::CancelReason::Timeout),
            data,
        })
}

fn delivered(payload: ProviderPayload) -> RawPush {
    match payload {
        ProviderPayload::Harmony { extra_data } => RawPush::from(harmony_delivery("sys", &extra_data, "tok")),
        ProviderPayload::Fcm { data } => RawPush::from(serde_json::to_string(&data).unwrap()),
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => RawPush::from(body),
    }
}

fn signer() -> (CallSigner, KeySet) {
    let signer = CallSigner::from_seed(&[5; 32]);
    let keys = KeySet::from_jwks(&[signer.public_jwk()]).unwrap();
    (signer, keys)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_text(platform in platform(), text in "\\PC{0,600}") {
        let (_, keys) = signer();
        let _ = open_envelope(platform, &RawPush::from(text.as_str()));
        if let Ok(jws) = Jws::decode(&text) {
            let _ = jws.verify(&keys);
            let _ = jws.claims();
        }
        let ctx = HandleContext::v1(&keys, 0, None);
        let _ = adapter_for(platform).handle(&RawPush::from(text), &ctx);
    }

    #[test]
    fn decoders_never_panic_on_json_shaped_input(
        platform in platform(),
        key in prop::sample::select(vec!["callpush", "data", "callId", "aps", "google.x"]),
        value in prop_oneof![
            "\\PC{0,200}".prop_map(serde_json::Value::String),
            any::<i64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            "[a-zA-Z0-9_-]{0,40}\\.[a-zA-Z0-9_-]{0,40}\\.[a-zA-Z0-9_-]{0,90}".prop_map(serde_json::Value::String),
        ],
    ) {
        let (_, keys) = signer();
        let raw = serde_json::json!({ key: value }).to_string();
        let ctx = HandleContext::v1(&keys, 0, None);
        let out = adapter_for(platform).handle(&RawPush::from(raw), &ctx);
        prop_assert!(out.outcome == Outcome::Ignore || out.outcome == Outcome::Rejected);
    }

    #[test]
    fn encode_then_decode_round_trips(platform in platform(), invite in invite()) {
        let (signer, keys) = signer();
        let payload = encode_push(platform, &invite, &signer).unwrap();
        prop_assert!(payload.size() <= platform.payload_limit());
        let now = invite.iat;
        let out = adapter_for(platform).handle(&delivered(payload), &HandleContext::v1(&keys, now, Some("user")));
        let expected = match invite.evt {
            _ if now >= invite.exp => Outcome::Stale,
            PushEvent::Ring => Outcome::Ring,
            PushEvent::Cancel => Outcome::Cancel,
        };
        prop_assert_eq!(out.outcome, expected);
        let call = out.call.unwrap();
        prop_assert_eq!(&call.call_id, &invite.cid);
        prop_assert_eq!(&call.caller_id, &invite.from.id);
        prop_assert_eq!(&call.caller_name, &invite.from.name);
        prop_assert_eq!(call.video, invite.video);
        prop_assert_eq!(call.data.into_iter().collect::<BTreeMap<_, _>>(), invite.data);
    }

    #[test]
    fn any_change_to_a_signed_push_is_rejected(platform in platform(), invite in invite(), at in any::<prop::sample::Index>(), with in "[a-zA-Z0-9_.-]") {
        let (signer, keys) = signer();
        let jws = callpush_client::wire::sign(&invite, &signer);
        let i = at.index(jws.len());
        prop_assume!(jws[i..i + 1] != with);
        let mutated = format!("{}{}{}", &jws[..i], with, &jws[i + 1..]);
        let raw = delivered(callpush_client::wire::wrap(platform, mutated));
        let out = adapter_for(platform).handle(&raw, &HandleContext::v1(&keys, invite.iat, None));
        prop_assert_eq!(out.outcome, Outcome::Rejected);
    }
}

/// The test device's key pair (wire v2).
fn device() -> callpush_client::wire::DeviceSecret {
    callpush_client::wire::DeviceSecret::from_bytes([6; 32])
}

fn randomness(seed: u8) -> callpush_client::wire::SealRandomness {
    callpush_client::wire::SealRandomness { ephemeral: [seed | 1; 32], iv: [seed; 12] }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sealed_pushes_round_trip_at_one_size_per_platform(platform in platform(), invite in invite(), seed in any::<u8>()) {
        let (signer, keys) = signer();
        let device = device();
        let payload = callpush_client::wire::encode_sealed_push(platform, &invite, &signer, device.public(), &randomness(seed)).unwrap();
        // The same size as a sealed push with no name and no data: the size says nothing.
        let mut bare = invite.clone();
        bare.from.name = None;
        bare.data.clear();
        let reference = callpush_client::wire::encode_sealed_push(platform, &bare, &signer, device.public(), &randomness(0)).unwrap();
        prop_assert_eq!(payload.size(), reference.size());
        prop_assert!(payload.size() <= platform.payload_limit());
        let devices = [device];
        let ctx = HandleContext { device_keys: &devices, accepts_v1: false, ..HandleContext::v1(&keys, invite.iat, Some("user")) };
        let out = adapter_for(platform).handle(&delivered(payload), &ctx);
        let expected = match invite.evt {
            _ if invite.iat >= invite.exp => Outcome::Stale,
            PushEvent::Ring => Outcome::Ring,
            PushEvent::Cancel => Outcome::Cancel,
        };
        prop_assert_eq!(out.outcome, expected);
        prop_assert_eq!(&out.call.unwrap().caller_id, &invite.from.id);
    }

    #[test]
    fn any_change_to_a_sealed_push_is_rejected(platform in platform(), invite in invite(), at in any::<prop::sample::Index>(), with in "[a-zA-Z0-9_.-]") {
        let (signer, keys) = signer();
        let device = device();
        let jws = callpush_client::wire::sign_for_sealing(platform, &invite, &signer).unwrap();
        let jwe = callpush_client::wire::seal(&jws, device.public(), &randomness(3));
        let i = at.index(jwe.len());
        prop_assume!(jwe[i..i + 1] != with);
        let mutated = format!("{}{}{}", &jwe[..i], with, &jwe[i + 1..]);
        let devices = [device];
        let ctx = HandleContext { device_keys: &devices, accepts_v1: false, ..HandleContext::v1(&keys, invite.iat, None) };
        let out = adapter_for(platform).handle(&delivered(callpush_client::wire::wrap(platform, mutated)), &ctx);
        prop_assert_eq!(out.outcome, Outcome::Rejected);
        prop_assert!(out.call.is_none());
    }

    #[test]
    fn decoders_never_panic_on_jwe_shaped_input(
        platform in platform(),
        parts in prop::collection::vec("[a-zA-Z0-9_-]{0,60}", 5),
    ) {
        let (_, keys) = signer();
        let devices = [device()];
        let ctx = HandleContext { device_keys: &devices, accepts_v1: false, ..HandleContext::v1(&keys, 0, None) };
        let raw = delivered(callpush_client::wire::wrap(platform, parts.join(".")));
        let out = adapter_for(platform).handle(&raw, &ctx);
        prop_assert_eq!(out.outcome, Outcome::Rejected);
    }
}
