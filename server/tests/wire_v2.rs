//! Wire v2: an installation that registers a device key (a public X25519 JWK) gets every push
//! encrypted to it — rings, cancels, the verify push — and missed-call notifications that name
//! nobody, so its push provider learns neither who calls nor which call it is. On both databases.
//!
//! - Registering: the lease answers the key's id; bad keys are `400 invalid_device_key`;
//!   registering without a key clears it (back to wire v1).
//! - End to end through the four provider emulators: the sealed push opens with the device's
//!   secret into a JWS that verifies, the device-side decision is `ring`, every sealed push of a
//!   platform has one size whatever the caller's name, and the emulators' request logs name
//!   neither the caller nor the call. A wire v1 installation on the same server still gets a
//!   readable push.
//! - A verify push to a waiting registration with a device key is sealed too, and the client
//!   answers it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{HandleOutcome, Outcome, Platform, RawPush, RejectionKind};
use callpush_client::wire::{
    harmony_delivery, is_jwe, open_envelope, open_sealed, DeviceSecret, Jws, KeySet, ProviderPayload,
};
use callpush_emulators::device::{alert_token_for, token_for};
use callpush_emulators::faults::Received;
use callpush_emulators::hub::DevicePush;
use callpush_server::domain::PushKind;
use callpush_server::senders::OutgoingPush;
use callpush_server::time::now_secs;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::rig::{ProviderServer, ServerOptions};
use support::*;
use tokio::sync::mpsc::UnboundedReceiver;

const FCM: &str = "fcm-token-of-bobs-phone-0123456789";

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {body}"))
}

/// A device's key pair, made from `n`.
fn secret(n: u8) -> DeviceSecret {
    DeviceSecret::from_bytes([n; 32])
}

/// The public JWK a device registers for `secret`, as the SDK sends it.
fn device_key(secret: &DeviceSecret) -> Value {
    serde_json::to_value(secret.public().jwk()).unwrap()
}

/// The key set a lease names.
fn keys_of(lease: &Value) -> KeySet {
    KeySet::from_json(&lease["signing_keys"].to_string()).unwrap()
}

/// What a device holding `secrets` that the server switched to wire v2 decides about `raw`.
fn decide_v2(
    platform: Platform,
    raw: &str,
    keys: &KeySet,
    user: &str,
    secrets: &[DeviceSecret],
) -> HandleOutcome {
    let ctx = HandleContext {
        keys,
        now: now_secs(),
        audience: Some(user),
        device_keys: secrets,
        accepts_v1: false,
    };
    adapter_for(platform).handle(&RawPush::from(raw.to_owned()), &ctx)
}

/// The push exactly as the platform hands it to the app.
fn raw(push: &OutgoingPush) -> String {
    match push.payload.clone().expect("a push with a payload") {
        ProviderPayload::Harmony { extra_data } => harmony_delivery("sys-1", &extra_data, "t"),
        ProviderPayload::Fcm { data } => serde_json::to_string(&data).unwrap(),
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    }
}

/// The `callpush` string of a raw push: a JWS (wire v1) or a JWE (wire v2).
fn carried(platform: Platform, raw: &str) -> String {
    open_envelope(platform, &RawPush::from(raw.to_owned())).unwrap().expect("a callpush push").jws
}

/// `PUT /v1/installations/{id}` for `user` with `body`.
async fn put(s: &TestServer, user: &str, id: &str, body: Value) -> (StatusCode, Value) {
    s.call(Method::PUT, &format!("/v1/installations/{id}"), Some(&TestServer::token(user)), Some(body)).await
}

/// The registration body of `token` on `platform`, with `device_key` if given.
fn registration(platform: Platform, token: &str, device_key: Option<Value>) -> Value {
    let mut body = json!({"platform": platform.as_str(), "token": token});
    if platform == Platform::Apns {
        body["apns_environment"] = json!("sandbox");
    }
    if let Some(key) = device_key {
        body["device_key"] = key;
    }
    body
}

on_both_databases! {
    async fn a_registered_device_key_is_answered_used_and_cleared_by_registering_without_it(db: Db) {
        let s = TestServer::start(db).await;
        let store = &s.running.as_ref().unwrap().store;
        let phone = secret(1);
        let kid = phone.public().kid().to_owned();
        let (status, lease) = put(&s, "bob", "phone", registration(Platform::Fcm, FCM, Some(device_key(&phone)))).await;
        assert_eq!(status, StatusCode::OK, "{lease}");
        assert_eq!(lease["device_key_id"], kid.as_str(), "{lease}");
        let stored = store.installation("bob", "phone").await.unwrap().unwrap();
        assert_eq!(stored.device_key.as_deref(), Some(phone.public().jwk().x.as_str()));
        assert_eq!(stored.device_key_id.as_deref(), Some(kid.as_str()));

        // A kid the device names is ignored: a key's id is its thumbprint. Renewing keeps it.
        let mut named = device_key(&phone);
        named["kid"] = json!("my-own-name");
        let (status, lease) = put(&s, "bob", "phone", registration(Platform::Fcm, FCM, Some(named))).await;
        assert_eq!((status, lease["device_key_id"].as_str()), (StatusCode::OK, Some(kid.as_str())));

        // Its call push is sealed: opaque to the v1 decoder, a ring to the device holding the key.
        let call = s.ring(&["bob"], json!({})).await;
        let push = s.pushes(call["call_id"].as_str().unwrap(), 1).await.remove(0);
        assert!(push.is_sealed());
        assert!(is_jwe(&carried(Platform::Fcm, &raw(&push))));
        let keys = keys_of(&lease);
        assert_eq!(decide_v2(Platform::Fcm, &raw(&push), &keys, "bob", std::slice::from_ref(&phone)).outcome, Outcome::Ring);
        let v1 = decide(&push, &lease["signing_keys"], "bob");
        assert_eq!(v1.outcome, Outcome::Rejected, "a device without the key cannot open it: {v1:?}");

        // Padding leaves a sealed push less room: app data that fits a readable push but not a
        // sealed one is refused for a callee with a wire v2 installation.
        let large = json!({"from": {"id": "alice"}, "to": ["bob"], "data": {"blob": "x".repeat(2000)}});
        let (status, body) = s.call(Method::POST, "/v1/calls", Some(API_KEY), Some(large.clone())).await;
        assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"), "{body}");

        // Registering without a key clears it: the installation is back on wire v1.
        let (status, lease) = put(&s, "bob", "phone", registration(Platform::Fcm, FCM, None)).await;
        assert_eq!(status, StatusCode::OK, "{lease}");
        assert!(lease.get("device_key_id").is_none(), "{lease}");
        let stored = store.installation("bob", "phone").await.unwrap().unwrap();
        assert_eq!((stored.device_key, stored.device_key_id), (None, None));
        let call = s.ring(&["bob"], json!({})).await;
        let push = s.pushes(call["call_id"].as_str().unwrap(), 1).await.remove(0);
        assert!(!push.is_sealed());
        assert_eq!(decide(&push, &lease["signing_keys"], "bob").outcome, Outcome::Ring);
        let (status, body) = s.call(Method::POST, "/v1/calls", Some(API_KEY), Some(large)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "a readable push has the room: {body}");
    }

    async fn bad_device_keys_are_refused_with_a_typed_error_that_repeats_nothing_of_them(db: Db) {
        let s = TestServer::start(db).await;
        let store = &s.running.as_ref().unwrap().store;
        let good = device_key(&secret(2));
        let x = good["x"].as_str().unwrap().to_owned();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut one = [0u8; 32];
        one[0] = 1;
        let cases = [
            ("wrong curve", json!({"kty": "OKP", "crv": "Ed25519", "x": x})),
            ("wrong key type", json!({"kty": "EC", "crv": "P-256", "x": x, "y": x})),
            ("31 bytes", json!({"kty": "OKP", "crv": "X25519", "x": b64(&[7; 31])})),
            ("33 bytes", json!({"kty": "OKP", "crv": "X25519", "x": b64(&[7; 33])})),
            ("small order: all zeros", json!({"kty": "OKP", "crv": "X25519", "x": b64(&[0; 32])})),
            ("small order: one", json!({"kty": "OKP", "crv": "X25519", "x": b64(&one)})),
            ("garbage base64", json!({"kty": "OKP", "crv": "X25519", "x": "!!not*base64url~~"})),
            ("padded base64", json!({"kty": "OKP", "crv": "X25519", "x": format!("{x}=")})),
            ("a signing alg", json!({"kty": "OKP", "crv": "X25519", "x": x, "alg": "EdDSA"})),
            ("not a JWK", json!(x)),
            ("no x", json!({"kty": "OKP", "crv": "X25519"})),
            ("x not a string", json!({"kty": "OKP", "crv": "X25519", "x": [1, 2, 3]})),
        ];
        for (why, key) in cases {
            let (status, body) = put(&s, "bob", "phone", registration(Platform::Fcm, FCM, Some(key.clone()))).await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_device_key"), "{why}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.starts_with("device_key: "), "{why}: {message}");
            if let Some(x) = key["x"].as_str().or(key.as_str()) {
                assert!(!message.contains(x), "{why}: the message repeats the key: {message}");
            }
            assert!(store.installation("bob", "phone").await.unwrap().is_none(), "{why}: nothing stored");
        }

        // A bad key does not touch a registration that has a good one.
        let (status, lease) = put(&s, "bob", "phone", registration(Platform::Fcm, FCM, Some(good.clone()))).await;
        assert_eq!(status, StatusCode::OK, "{lease}");
        let zeros = json!({"kty": "OKP", "crv": "X25519", "x": b64(&[0; 32])});
        let (status, body) = put(&s, "bob", "phone", registration(Platform::Fcm, FCM, Some(zeros))).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_device_key"));
        let stored = store.installation("bob", "phone").await.unwrap().unwrap();
        assert_eq!(stored.device_key_id.as_deref(), lease["device_key_id"].as_str());

        // The OpenAPI document describes both fields.
        let (_, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["InstallationBody"]["properties"]["device_key"].is_object(), "{}", schemas["InstallationBody"]);
        assert!(schemas["DeviceKeyJwk"]["properties"]["x"].is_object(), "{}", schemas["DeviceKeyJwk"]);
        assert!(schemas["InstallationResponse"]["properties"]["device_key_id"].is_object());
    }

    async fn a_verify_push_to_a_waiting_registration_with_a_device_key_is_sealed_and_answered(db: Db) {
        let s = TestServer::start(db).await;
        for (n, platform) in Platform::ALL.into_iter().enumerate() {
            let token = token_for(platform, 40 + n as u32);
            let id = format!("bob-{platform}");
            // Carol's installation holds the token; Bob's registration of it waits for proof.
            s.register("carol", &format!("carol-{platform}"), platform.as_str(), &token).await;
            let phone = secret(10 + n as u8);
            let (status, lease) = put(&s, "bob", &id, registration(platform, &token, Some(device_key(&phone)))).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{platform}: {lease}");
            assert_eq!(lease["verification"], "pending");
            assert_eq!(lease["device_key_id"], phone.public().kid(), "{platform}: {lease}");

            let verify = wait_for_push(&s, |p| p.call_id.starts_with("verify-") && p.token == token).await;
            assert!(verify.is_sealed(), "{platform}: the verify push is sealed");
            let raw_verify = raw(&verify);
            assert!(is_jwe(&carried(platform, &raw_verify)), "{platform}");
            assert!(!raw_verify.contains(&id), "{platform}: {raw_verify}");
            // A device without the key cannot read it; the one holding it answers it.
            let keys = keys_of(&lease);
            let v1 = adapter_for(platform)
                .decide(&RawPush::from(raw_verify.clone()), &HandleContext::v1(&keys, now_secs(), None));
            assert_eq!(v1.outcome.outcome, Outcome::Rejected, "{platform}: {v1:?}");
            let ctx = HandleContext {
                keys: &keys,
                now: now_secs(),
                audience: None,
                device_keys: std::slice::from_ref(&phone),
                accepts_v1: false,
            };
            let decided = adapter_for(platform).decide(&RawPush::from(raw_verify), &ctx);
            assert_eq!(decided.outcome.outcome, Outcome::Verify, "{platform}: {decided:?}");
            let v = decided.verify.expect("a verify request").verification;
            assert_eq!((v.aud.as_str(), v.installation_id.as_str()), ("bob", id.as_str()));
            let path = format!("/v1/installations/{id}/verify");
            let (status, lease) =
                s.call(Method::POST, &path, Some(&TestServer::token("bob")), Some(json!({"nonce": v.nonce}))).await;
            assert_eq!(status, StatusCode::OK, "{platform}: {lease}");
            assert_eq!(lease["device_key_id"], phone.public().kid());
            assert!(lease.get("verification").is_none());

            // Bob's calls reach it now, sealed, as long as a verify push: the provider cannot
            // tell the two apart by their size.
            let call = s.ring(&["bob"], json!({})).await;
            let call_id = call["call_id"].as_str().unwrap().to_owned();
            let ring = wait_for_push(&s, |p| p.call_id == call_id && p.token == token).await;
            assert!(ring.is_sealed());
            let size = |p: &OutgoingPush| p.payload.as_ref().unwrap().size();
            assert_eq!(size(&ring), size(&verify), "{platform}");
            let outcome = decide_v2(platform, &raw(&ring), &keys, "bob", std::slice::from_ref(&phone));
            assert_eq!(outcome.outcome, Outcome::Ring, "{platform}: {outcome:?}");
        }
    }

    async fn a_call_accepted_for_a_sealed_installation_can_always_be_cancelled(db: Db) {
        // App data just under what a sealed push has room for: the call's cancel carries a
        // `reason` its ring does not, and it must fit as well, or the device rings on.
        let s = TestServer::start(db).await;
        // The providers whose devices stop ringing by a cancel push (APNs and Push Kit get a
        // missed-call notification instead, which carries no claims).
        for (n, platform) in [Platform::Fcm, Platform::Wns].into_iter().enumerate() {
            let phone = secret(60 + n as u8);
            let token = token_for(platform, 60 + n as u32);
            let (status, lease) =
                put(&s, "bob", &format!("edge-{n}"), registration(platform, &token, Some(device_key(&phone)))).await;
            assert!(status.is_success(), "{lease}");
            let keys = keys_of(&lease);
            // The largest app data value POST /v1/calls accepts for this installation.
            let (mut fits, mut refused) = (0usize, 4096usize);
            while refused - fits > 1 {
                let len = (fits + refused) / 2;
                let body = json!({"from": {"id": "alice"}, "to": ["bob"], "call_id": format!("probe-{n}-{len}"),
                                  "data": {"k": "d".repeat(len)}, "ring_seconds": 30});
                let (status, _) = s.call(Method::POST, "/v1/calls", Some(API_KEY), Some(body)).await;
                if status == StatusCode::ACCEPTED {
                    fits = len;
                    let path = format!("/v1/calls/probe-{n}-{len}/cancel");
                    s.call(Method::POST, &path, Some(API_KEY), Some(json!({}))).await;
                } else {
                    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{platform}, {len} bytes");
                    refused = len;
                }
            }
            assert!(fits > 1000, "{platform}: only {fits} bytes of app data fit");
            let call_id = format!("probe-{n}-{fits}");
            let cancel = wait_for_push(&s, |p| p.call_id == call_id && p.kind == PushKind::Cancel).await;
            assert!(cancel.payload.as_ref().unwrap().size() <= platform.payload_limit());
            let outcome = decide_v2(platform, &raw(&cancel), &keys, "bob", std::slice::from_ref(&phone));
            assert_eq!(outcome.outcome, Outcome::Cancel, "{platform}: {outcome:?}");
            s.call(Method::DELETE, &format!("/v1/installations/edge-{n}"), Some(&TestServer::token("bob")), None).await;
        }
    }

    async fn sealed_pushes_ring_every_platform_and_tell_the_providers_nothing(db: Db) {
        let server = ProviderServer::start_on(ServerOptions::all(), Some(db)).await;
        let mut bobs = Vec::new();
        let mut carols = Vec::new();
        for (n, platform) in Platform::ALL.into_iter().enumerate() {
            bobs.push(Device::register(&server, "bob", platform, 70 + n as u32, Some(secret(20 + n as u8))).await);
            carols.push(Device::register(&server, "carol", platform, 80 + n as u32, None).await);
        }
        let keys = keys_of(&bobs[0].lease);

        // Two calls to Bob's four devices: a short caller name and a long one.
        const CALLER: &str = "caller-7f3a9c5e";
        let long = format!("Bartholomew Zanzibar {}", "Featherstonehaugh ".repeat(10));
        let names = ["Qx Vy".to_owned(), long.trim_end().to_owned()];
        let call_ids = ["call-secret-0-b51d2e", "call-secret-1-b51d2e"];
        let mut sizes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (name, call_id) in names.iter().zip(call_ids) {
            let body = json!({"call_id": call_id, "from": {"id": CALLER, "name": name}, "ring_seconds": 30});
            server.ring(&["bob"], body).await;
            for device in &mut bobs {
                let raw = device.next_app_push().await;
                let outcome = decide_v2(device.platform, &raw, &keys, "bob", std::slice::from_ref(&device.secret));
                assert_eq!(outcome.outcome, Outcome::Ring, "{}: {outcome:?}", device.platform);
                let call = outcome.call.expect("the call");
                assert_eq!((call.call_id.as_str(), call.caller_id.as_str()), (call_id, CALLER));
                assert_eq!(call.caller_name.as_deref(), Some(name.as_str()));
                // The push opens with the device's secret into a JWS that verifies.
                let jwe = carried(device.platform, &raw);
                assert!(is_jwe(&jwe), "{}", device.platform);
                let jws = open_sealed(&jwe, std::slice::from_ref(&device.secret)).expect("it opens");
                let decoded = Jws::decode(&jws).unwrap();
                decoded.verify(&keys).expect("the server's signature");
                assert_eq!(decoded.claims().unwrap().cid, call_id);
                // A device without the key (or one that accepts v1 only) cannot read it.
                let v1 = adapter_for(device.platform)
                    .handle(&RawPush::from(raw.clone()), &HandleContext::v1(&keys, now_secs(), Some("bob")));
                assert_eq!(v1.outcome, Outcome::Rejected, "{}: {v1:?}", device.platform);
                assert_eq!(v1.error.map(|e| e.kind), Some(RejectionKind::Undecryptable));
                sizes.entry(device.platform.as_str()).or_default().push(jwe.len());
            }
            server.settled(call_id, Some("ring"), Duration::from_secs(10)).await;

            // The caller hangs up: FCM and WNS get a sealed cancel, APNs and Push Kit a missed-call
            // notification that names nobody.
            server.post(&format!("/v1/calls/{call_id}/cancel"), json!({})).await;
            for device in &mut bobs {
                match device.next_push().await {
                    DevicePush::App { raw } => {
                        assert!(matches!(device.platform, Platform::Fcm | Platform::Wns), "{}", device.platform);
                        let outcome =
                            decide_v2(device.platform, &raw, &keys, "bob", std::slice::from_ref(&device.secret));
                        assert_eq!(outcome.outcome, Outcome::Cancel, "{}: {outcome:?}", device.platform);
                        sizes.entry(device.platform.as_str()).or_default().push(carried(device.platform, &raw).len());
                    }
                    DevicePush::Notification { title, body, id, .. } => {
                        assert!(matches!(device.platform, Platform::Apns | Platform::Harmony));
                        assert_eq!((title.as_str(), body.as_str()), ("Missed call", "You missed a call"));
                        assert_eq!(id, Some(callpush_client::wire::missed_call_message_id(call_id)));
                    }
                }
            }
            server.settled(call_id, None, Duration::from_secs(10)).await;
        }

        // Every sealed push of a platform has one size, whoever called and whatever it says.
        for (platform, sizes) in &sizes {
            assert!(sizes.len() >= 2 && sizes.iter().all(|s| *s == sizes[0]), "{platform}: {sizes:?}");
        }

        // Nothing any provider was sent for Bob's devices names the caller or the call: not the
        // body, not a header, not the path.
        let secrets = [CALLER, names[0].as_str(), "Bartholomew", "Featherstonehaugh", call_ids[0], call_ids[1]];
        for device in &bobs {
            let requests = device.requests(&server);
            assert!(requests.len() >= 4, "{}: two rings and two follow-ups: {requests:?}", device.platform);
            for r in &requests {
                let logged = format!("{} {} {:?} {}", r.method, r.path, r.headers, r.body);
                for secret in secrets {
                    assert!(!logged.contains(secret), "{}: `{secret}` in {logged}", device.platform);
                }
            }
        }

        // Carol registered no key: her devices still get readable wire v1 pushes.
        let call_id = "call-plain-v1-0001";
        server.ring(&["carol"], json!({"call_id": call_id, "from": {"id": CALLER, "name": "Qx Vy"}})).await;
        for device in &mut carols {
            let raw = device.next_app_push().await;
            let jws = carried(device.platform, &raw);
            assert!(!is_jwe(&jws), "{}", device.platform);
            let claims = Jws::decode(&jws).unwrap().claims().unwrap();
            assert_eq!((claims.cid.as_str(), claims.from.id.as_str()), (call_id, CALLER));
            let outcome = adapter_for(device.platform)
                .handle(&RawPush::from(raw), &HandleContext::v1(&keys, now_secs(), Some("carol")));
            assert_eq!(outcome.outcome, Outcome::Ring, "{}: {outcome:?}", device.platform);
        }
        server.stop().await;
    }
}

/// The first push the recording sender sent that `matches`, waiting a few seconds for it.
async fn wait_for_push(s: &TestServer, matches: impl Fn(&OutgoingPush) -> bool) -> OutgoingPush {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(push) = s.sender.sent().into_iter().find(&matches) {
            return push;
        }
        assert!(tokio::time::Instant::now() < deadline, "no such push: {:?}", s.sender.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A device registered over the API, online at the emulators' hub.
struct Device {
    platform: Platform,
    token: String,
    alert_token: Option<String>,
    secret: DeviceSecret,
    lease: Value,
    pushes: UnboundedReceiver<DevicePush>,
}

impl Device {
    /// `user`'s device on `platform` with token `n`, registered with `secret`'s key (wire v2)
    /// or without a key (wire v1); an iPhone with its alert token too.
    async fn register(
        server: &ProviderServer,
        user: &str,
        platform: Platform,
        n: u32,
        secret: Option<DeviceSecret>,
    ) -> Device {
        let token = token_for(platform, n);
        let alert_token = (platform == Platform::Apns).then(|| alert_token_for(&token));
        let pushes = match &alert_token {
            Some(alert) => server.emulators.hub.subscribe_all(platform, &[&token, alert]),
            None => server.emulators.hub.subscribe(platform, &token),
        };
        let mut body = registration(platform, &token, secret.as_ref().map(device_key));
        if let Some(alert) = &alert_token {
            body["alert_token"] = json!(alert);
        }
        let response = server
            .http
            .put(format!("{}/v1/installations/{user}-{platform}", server.base))
            .bearer_auth(ProviderServer::device_token(user))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let lease: Value = response.json().await.unwrap();
        let kid = secret.as_ref().map(|s| s.public().kid().to_owned());
        assert_eq!(lease["device_key_id"].as_str(), kid.as_deref(), "{platform}: {lease}");
        Device {
            platform,
            token,
            alert_token,
            secret: secret.unwrap_or_else(|| self::secret(0)),
            lease,
            pushes,
        }
    }

    /// The next push that reached the device.
    async fn next_push(&mut self) -> DevicePush {
        match tokio::time::timeout(Duration::from_secs(10), self.pushes.recv()).await {
            Ok(Some(push)) => push,
            _ => panic!("{}: no push reached the device", self.platform),
        }
    }

    /// The next push handed to the app, as the platform hands it over.
    async fn next_app_push(&mut self) -> String {
        match self.next_push().await {
            DevicePush::App { raw } => raw,
            other => panic!("{}: not an app push: {other:?}", self.platform),
        }
    }

    /// Every request the provider's emulator received for this device (either of an iPhone's
    /// tokens; a WNS channel's token is in the path).
    fn requests(&self, server: &ProviderServer) -> Vec<Received> {
        let marks: Vec<&str> = match self.platform {
            Platform::Wns => vec![self.token.split("token=").nth(1).expect("a channel token")],
            _ => std::iter::once(self.token.as_str()).chain(self.alert_token.as_deref()).collect(),
        };
        server
            .faults(self.platform)
            .received()
            .into_iter()
            .filter(|r| marks.iter().any(|m| r.path.contains(m) || r.body.contains(m)))
            .collect()
    }
}
