//! `handle` of one ring push per platform, beside the bare cost it cannot avoid: one Ed25519
//! verification and parsing the same JSON (DESIGN §9: handle ≤ 1.5 × bare).
//!
//! Run: `cargo bench -p callpush --bench handle`. Ratios are recorded in docs/performance.md.

use std::collections::BTreeMap;
use std::hint::black_box;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush::adapter::{adapter_for, HandleContext};
use callpush::model::{Caller, Invite, Platform, PushEvent, RawPush};
use callpush::wire::{encode_push, harmony_delivery, CallSigner, KeySet, ProviderPayload};
use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signature, VerifyingKey};

const NOW: i64 = 1_767_225_600;

fn invite() -> Invite {
    Invite {
        iss: "callpush-bench".into(),
        aud: "user-bob".into(),
        jti: "msg-0001".into(),
        iat: NOW - 1,
        exp: NOW + 29,
        v: 1,
        evt: PushEvent::Ring,
        cid: "call-7d3f9a2c-5b1e-4f7a-9c3d-0e8b6a4f2d19".into(),
        from: Caller { id: "user-alice".into(), name: Some("Alice Ødegård".into()) },
        video: true,
        reason: None,
        data: BTreeMap::from([("room".into(), "r-42".into())]),
    }
}

fn raw_push(payload: ProviderPayload) -> String {
    match payload {
        ProviderPayload::Harmony { extra_data } => {
            harmony_delivery("sys-call-9", &extra_data, "MAMzLg0123456789aZW")
        }
        ProviderPayload::Fcm { mut data } => {
            data.insert("google.message_id".into(), "0:1767225600000000%31bd1c96".into());
            data.insert("google.sent_time".into(), "1767225598000".into());
            serde_json::to_string(&data).unwrap()
        }
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    }
}

fn bench(c: &mut Criterion) {
    let signer = CallSigner::from_seed(&[0x11; 32]);
    let keys = KeySet::from_jwks(&[signer.public_jwk()]).unwrap();
    let verifying = VerifyingKey::from_bytes(
        &URL_SAFE_NO_PAD.decode(&signer.public_jwk().x).unwrap().try_into().unwrap(),
    )
    .unwrap();
    for platform in Platform::ALL {
        let raw = raw_push(encode_push(platform, &invite(), &signer).unwrap());
        let push = RawPush::from(raw.as_str());
        let adapter = adapter_for(platform);
        let ctx = HandleContext { keys: &keys, now: NOW, audience: Some("user-bob") };
        c.bench_function(&format!("handle/{platform}"), |b| {
            b.iter(|| black_box(adapter.handle(black_box(&push), &ctx)))
        });

        // The floor: verify the same signature over the same bytes and parse the same JSON.
        let jws = callpush::wire::sign(&invite(), &signer);
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let signature =
            Signature::from_bytes(&URL_SAFE_NO_PAD.decode(signature).unwrap().try_into().unwrap());
        let claims = URL_SAFE_NO_PAD.decode(input.split_once('.').unwrap().1).unwrap();
        c.bench_function(&format!("bare/{platform}"), |b| {
            b.iter(|| {
                let envelope: serde_json::Value = serde_json::from_str(black_box(&raw)).unwrap();
                let claims: serde_json::Value = serde_json::from_slice(black_box(&claims)).unwrap();
                verifying.verify_strict(black_box(input.as_bytes()), &signature).unwrap();
                black_box((envelope, claims))
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(200).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
