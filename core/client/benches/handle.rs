//! `handle` of one ring push per platform, beside the bare cost it cannot avoid: one Ed25519
//! verification and parsing the same JSON (the budget in docs/performance.md: handle ≤ 1.5 × bare). `client/*` is the
//! whole `Client::handle_push` of a new call: decode, verify, dedupe (with the append to the
//! seen-calls log), state machine, system call UI and listener callbacks.
//!
//! `handle_v2/*` is the same push sealed to the device key (wire v2), beside its floor
//! `bare_v2/*`: the above plus one X25519 agreement and one AES-256-GCM open of the same bytes.
//!
//! Run: `cargo bench -p callpush-client --bench handle`. Ratios are recorded in docs/performance.md.

use std::collections::BTreeMap;
use std::hint::black_box;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::client::{
    AccessTokenError, AccessTokenProvider, CallEvent, CallListener, CallUiError, Client, ClientConfig,
    HttpClient, HttpError, HttpRequest, HttpResponse, IncomingCallError, SystemCallUi,
};
use callpush_client::model::Call;
use callpush_client::model::{Caller, Invite, Platform, PushEvent, RawPush};
use callpush_client::wire::{
    encode_push, encode_sealed_push, harmony_delivery, sign_for_sealing, CallSigner, DeviceSecret, KeySet,
    ProviderPayload, SealRandomness,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::{Signature, VerifyingKey};
use std::sync::Arc;

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
        let ctx = HandleContext::v1(&keys, NOW, Some("user-bob"));
        case(c, &format!("handle/{platform}"), || {
            black_box(adapter.handle(black_box(&push), &ctx));
        });
        // What bindings call for the shared vectors: the key set parsed on every call.
        let jwk = serde_json::to_string(&signer.public_jwk()).unwrap();
        case(c, &format!("inspect_push/{platform}"), || {
            black_box(callpush_client::inspect_push(platform, raw.clone(), jwk.clone(), NOW, None)).unwrap();
        });

        // The floor: verify the same signature over the same bytes and parse the same JSON.
        let jws = callpush_client::wire::sign(&invite(), &signer);
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let signature =
            Signature::from_bytes(&URL_SAFE_NO_PAD.decode(signature).unwrap().try_into().unwrap());
        let claims = URL_SAFE_NO_PAD.decode(input.split_once('.').unwrap().1).unwrap();
        case(c, &format!("bare/{platform}"), || {
            let envelope: serde_json::Value = serde_json::from_str(black_box(&raw)).unwrap();
            let claims: serde_json::Value = serde_json::from_slice(black_box(&claims)).unwrap();
            verifying.verify_strict(black_box(input.as_bytes()), &signature).unwrap();
            black_box((envelope, claims));
        });

        // Wire v2: the same push sealed to the device's key, and its floor.
        let device = DeviceSecret::from_bytes([0x22; 32]);
        let randomness = SealRandomness { ephemeral: [0x33; 32], iv: [0x44; 12] };
        let sealed =
            raw_push(encode_sealed_push(platform, &invite(), &signer, device.public(), &randomness).unwrap());
        let push = RawPush::from(sealed.as_str());
        let devices = [device.clone()];
        let ctx = HandleContext {
            device_keys: &devices,
            accepts_v1: false,
            ..HandleContext::v1(&keys, NOW, Some("user-bob"))
        };
        assert_eq!(adapter.handle(&push, &ctx).outcome, callpush_client::model::Outcome::Ring);
        case(c, &format!("handle_v2/{platform}"), || {
            black_box(adapter.handle(black_box(&push), &ctx));
        });
        let jws = sign_for_sealing(platform, &invite(), &signer).unwrap();
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let signature =
            Signature::from_bytes(&URL_SAFE_NO_PAD.decode(signature).unwrap().try_into().unwrap());
        let claims = URL_SAFE_NO_PAD.decode(input.split_once('.').unwrap().1).unwrap();
        let floor_secret = x25519_dalek::StaticSecret::from([0x22; 32]);
        let ephemeral = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([0x33; 32]));
        let cipher = {
            use aes_gcm::aead::{Aead, KeyInit};
            let cek = [0x55; 32];
            let sealed = aes_gcm::Aes256Gcm::new(&cek.into())
                .encrypt(aes_gcm::Nonce::from_slice(&[0x44; 12]), jws.as_bytes())
                .unwrap();
            (cek, sealed)
        };
        case(c, &format!("bare_v2/{platform}"), || {
            use aes_gcm::aead::{Aead, KeyInit};
            let envelope: serde_json::Value = serde_json::from_str(black_box(&sealed)).unwrap();
            let shared = floor_secret.diffie_hellman(black_box(&ephemeral));
            let opened = aes_gcm::Aes256Gcm::new(&cipher.0.into())
                .decrypt(aes_gcm::Nonce::from_slice(&[0x44; 12]), black_box(cipher.1.as_slice()))
                .unwrap();
            let claims: serde_json::Value = serde_json::from_slice(black_box(&claims)).unwrap();
            verifying.verify_strict(black_box(input.as_bytes()), &signature).unwrap();
            black_box((envelope, shared, opened, claims));
        });
    }
}

/// The variable that runs one case outside criterion: `<case>:<n>` runs case `<case>` (say
/// `handle_v2/fcm`) `n` times and nothing else, so `valgrind --tool=callgrind` can count its
/// instructions (`core/client/bench-instructions.sh` does, for a stable ratio on a noisy machine).
const COUNT_VAR: &str = "CALLPUSH_BENCH_COUNT";

/// Benchmarks `run` under criterion, or runs it as [`COUNT_VAR`] asks.
fn case(c: &mut Criterion, name: &str, mut run: impl FnMut()) {
    match std::env::var(COUNT_VAR) {
        Ok(spec) => {
            let (wanted, n) = spec.rsplit_once(':').expect("CALLPUSH_BENCH_COUNT is <case>:<n>");
            if wanted == name {
                for _ in 0..n.parse::<u32>().expect("a count") {
                    run();
                }
            }
        }
        Err(_) => {
            c.bench_function(name, |b| b.iter(&mut run));
        }
    }
}

/// The host side doing nothing: what remains is the client's own cost.
struct Quiet;

#[async_trait::async_trait]
impl HttpClient for Quiet {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Ok(HttpResponse {
            status: 404,
            headers: Default::default(),
            body: br#"{"error":{"code":"not_found","message":""}}"#.to_vec(),
        })
    }
}

#[async_trait::async_trait]
impl AccessTokenProvider for Quiet {
    async fn access_token(&self, _: bool) -> Result<String, AccessTokenError> {
        Ok("token".into())
    }
}

impl SystemCallUi for Quiet {
    fn report_incoming_call(&self, _: Call) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_and_end_call(&self, _: Option<Call>, _: IncomingCallError) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_incoming_call_error(&self, _: Option<String>, _: IncomingCallError) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_outgoing_call(&self, _: Call) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_call_state(&self, _: Call) -> Result<(), CallUiError> {
        Ok(())
    }
}

impl CallListener for Quiet {
    fn on_event(&self, event: CallEvent) {
        black_box(event);
    }
}

fn bench_client(c: &mut Criterion) {
    if std::env::var_os(COUNT_VAR).is_some() {
        return;
    }
    let signer = CallSigner::from_seed(&[0x11; 32]);
    let dir = tempfile::tempdir().unwrap();
    for platform in Platform::ALL {
        let mut config = ClientConfig::new(
            "http://127.0.0.1:9",
            dir.path().join(platform.as_str()).to_str().unwrap(),
            platform,
        );
        config.pinned_keys_json = Some(serde_json::to_string(&signer.public_jwk()).unwrap());
        config.user_id = Some("user-bob".into());
        config.apns_environment = Some(callpush_client::model::ApnsEnvironment::Sandbox);
        let quiet = Arc::new(Quiet);
        let client = Client::new(config, quiet.clone(), quiet.clone(), quiet.clone(), quiet).unwrap();
        let mut n = 0u64;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        c.bench_function(&format!("client/{platform}"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let mut invite = invite();
                    invite.cid = format!("call-{n}");
                    (invite.iat, invite.exp) = (now, now + 3600);
                    raw_push(encode_push(platform, &invite, &signer).unwrap())
                },
                |raw| black_box(client.handle_push(raw)),
                BatchSize::SmallInput,
            )
        });
    }
}

/// `Client::new` over a data directory holding a lease and 500 remembered call ids (the budget in docs/performance.md:
/// ≤ 5 ms).
fn bench_create(c: &mut Criterion) {
    if std::env::var_os(COUNT_VAR).is_some() {
        return;
    }
    let signer = CallSigner::from_seed(&[0x11; 32]);
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let lease = serde_json::json!({
        "version": 1, "clock_offset": 0, "renew_at": now + 60_000, "app_token": "fcm-token-1234567890",
        "apns_environment": null,
        "registration": {"installation_id": "inst-1", "platform": "fcm", "token": "fcm-token-1234567890",
            "ttl_seconds": 86400, "apns_environment": null, "app_id": null, "expires_at": now + 80_000,
            "server_time": now, "signing_keys": [signer.public_jwk()], "user_id": "user-bob"}
    });
    std::fs::write(dir.path().join("lease.json"), lease.to_string()).unwrap();
    std::fs::write(dir.path().join("installation-id"), "inst-1").unwrap();
    let seen: String = (0..500).map(|i| format!("{} call-{i}\n", now + 600)).collect();
    std::fs::write(dir.path().join("seen-calls.log"), seen).unwrap();
    let config = ClientConfig::new("http://127.0.0.1:9", dir.path().to_str().unwrap(), Platform::Fcm);
    let quiet = Arc::new(Quiet);
    c.bench_function("client_new/persisted", |b| {
        b.iter(|| {
            let client =
                Client::new(config.clone(), quiet.clone(), quiet.clone(), quiet.clone(), quiet.clone())
                    .unwrap();
            assert!(client.registration().is_some());
            black_box(client)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(200).measurement_time(std::time::Duration::from_secs(3));
    targets = bench, bench_client, bench_create
}
criterion_main!(benches);
