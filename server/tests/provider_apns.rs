//! The APNs sender against the APNs emulator: every documented APNs answer and its outcome
//! class, the emulator's own checks, the provider token's life (made, reused, refreshed at 50
//! minutes, replaced once when refused), one HTTP/2 connection per environment and GOAWAY,
//! and whole-server runs with a simulated iPhone running the real client.

mod support;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callpush_client::model::{ApnsEnvironment, Outcome, Platform};
use callpush_client::wire::{missed_call_message_id, ProviderPayload};
use callpush_emulators::apns::ApnsEmulator;
use callpush_emulators::credentials::APNS_PRIVATE_KEY;
use callpush_emulators::device::{token_for, Entry, Seen, SimulatedDevice};
use callpush_emulators::faults::{Fault, Received};
use callpush_emulators::hub::{ApnsTokenKind, DevicePush};
use callpush_server::config::ApnsConfig;
use callpush_server::domain::PushKind;
use callpush_server::senders::apns::ApnsSender;
use callpush_server::senders::http::HttpSettings;
use callpush_server::senders::{MissedCall, MissedCaller, OutgoingPush, SendOutcome, Sender};
use callpush_server::time::{now_ms, now_secs};
use serde_json::{json, Value};
use support::rig::{EmulatorRig, ProviderServer, ServerOptions};

/// An emulator, its hub, and an APNs configuration pointing at it.
type Apns = EmulatorRig<ApnsEmulator>;

impl Apns {
    fn sender_with(&self, change: impl FnOnce(&mut ApnsConfig)) -> ApnsSender {
        let mut config = self.config.clone();
        change(&mut config);
        ApnsSender::new(&config, &self.http).unwrap()
    }

    /// The requests the emulator received for `token`.
    fn requests(&self, token: &str) -> Vec<Received> {
        requests(&self.emulator, token)
    }

    fn connections(&self) -> usize {
        self.emulator.connections(ApnsEnvironment::Production)
            + self.emulator.connections(ApnsEnvironment::Sandbox)
    }
}

/// The requests `emulator` received for `token`.
fn requests(emulator: &ApnsEmulator, token: &str) -> Vec<Received> {
    let path = format!("/3/device/{token}");
    emulator.faults().received().into_iter().filter(|r| r.path == path).collect()
}

fn token(n: u32) -> String {
    token_for(Platform::Apns, n)
}

/// A ring for `token` in production with `body` as the VoIP payload.
fn ring_with(token: &str, body: String) -> OutgoingPush {
    OutgoingPush {
        delivery_id: uuid::Uuid::new_v4().simple().to_string(),
        call_id: "call-1".into(),
        installation_id: "inst-1".into(),
        platform: Platform::Apns,
        token: token.into(),
        apns_environment: Some(ApnsEnvironment::Production),
        kind: PushKind::Ring,
        payload: Some(ProviderPayload::Apns { body }),
        missed: None,
        ttl_seconds: 30,
        expires_at: now_secs() + 30,
    }
}

fn ring(token: &str) -> OutgoingPush {
    ring_with(token, json!({"callpush": "eyJhbGciOiJFZERTQSJ9.e30.c2ln"}).to_string())
}

fn missed(token: &str) -> OutgoingPush {
    OutgoingPush {
        kind: PushKind::Missed,
        payload: None,
        missed: Some(MissedCall {
            caller: Some(MissedCaller { id: "alice".into(), name: Some("Alice".into()), video: true }),
            app_message_id: missed_call_message_id("call-1"),
        }),
        ..ring(token)
    }
}

fn reason(status: u16, reason: &str) -> Fault {
    Fault::json(status, json!({"reason": reason}))
}

// ---------------------------------------------------------------------------------------------
// Every documented answer, scripted, and its outcome class.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_documented_apns_answer_is_classified() {
    let apns = Apns::start().await;
    let sender = apns.sender();
    let matrix: Vec<(Fault, &str)> = vec![
        (reason(400, "BadCollapseId"), "bad_request"),
        (reason(400, "BadDeviceToken"), "invalid_token"),
        (reason(400, "BadExpirationDate"), "bad_request"),
        (reason(400, "BadMessageId"), "bad_request"),
        (reason(400, "BadPriority"), "bad_request"),
        (reason(400, "BadTopic"), "config_error"),
        (reason(400, "DeviceTokenNotForTopic"), "invalid_token"),
        (reason(400, "DuplicateHeaders"), "bad_request"),
        (reason(400, "IdleTimeout"), "transient"),
        (reason(400, "InvalidPushType"), "config_error"),
        (reason(400, "MissingDeviceToken"), "bad_request"),
        (reason(400, "MissingTopic"), "config_error"),
        (reason(400, "PayloadEmpty"), "bad_request"),
        (reason(400, "TopicDisallowed"), "config_error"),
        (reason(400, "SomethingNew"), "bad_request"),
        (reason(403, "BadCertificate"), "config_error"),
        (reason(403, "BadCertificateEnvironment"), "config_error"),
        (reason(403, "Forbidden"), "config_error"),
        (reason(403, "InvalidProviderToken"), "config_error"),
        (reason(403, "MissingProviderToken"), "config_error"),
        (reason(403, "UnrelatedKeyIdInToken"), "config_error"),
        (reason(403, "BadEnvironmentKeyIdInToken"), "config_error"),
        (reason(404, "BadPath"), "bad_request"),
        (reason(405, "MethodNotAllowed"), "bad_request"),
        (reason(410, "ExpiredToken"), "invalid_token"),
        (reason(413, "PayloadTooLarge"), "bad_request"),
        (reason(429, "TooManyRequests"), "rate_limited"),
        (reason(429, "TooManyProviderTokenUpdates"), "rate_limited"),
        (reason(500, "InternalServerError"), "transient"),
        (reason(503, "ServiceUnavailable"), "transient"),
        (reason(503, "Shutdown"), "transient"),
        (Fault { status: 502, body: Some(json!("Bad Gateway")), ..Fault::default() }, "transient"),
    ];
    for (n, (fault, class)) in matrix.into_iter().enumerate() {
        let token = token(100 + n as u32);
        let what = format!("{:?}", fault.body);
        apns.emulator.faults().push(fault.for_token(&token));
        let outcome = sender.send(&ring(&token)).await;
        assert_eq!(outcome.class(), class, "{what}: {outcome:?}");
        match outcome {
            SendOutcome::InvalidToken { invalid_since, .. } => assert_eq!(invalid_since, None, "{what}"),
            SendOutcome::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, None, "APNs sends no Retry-After: {what}")
            }
            _ => {}
        }
        assert_eq!(apns.requests(&token).len(), 1, "sent once, never retried inside the sender: {what}");
    }
}

#[tokio::test]
async fn answers_carry_their_details() {
    let apns = Apns::start().await;
    let sender = apns.sender();

    let t = token(1);
    let outcome = sender.send(&ring(&t)).await;
    let SendOutcome::Delivered { provider_id: Some(id) } = outcome else { panic!("{outcome:?}") };
    assert_eq!(apns.requests(&t)[0].headers["apns-id"], id, "the apns-id APNs echoes");

    let t = token(2);
    let at = now_ms() - 60_000;
    apns.emulator
        .faults()
        .push(Fault::json(410, json!({"reason": "Unregistered", "timestamp": at})).for_token(&t));
    let outcome = sender.send(&ring(&t)).await;
    assert!(
        matches!(&outcome, SendOutcome::InvalidToken { invalid_since: Some(since), detail } if *since == at && detail.contains("Unregistered")),
        "{outcome:?}"
    );

    let t = token(3);
    apns.emulator.faults().push(reason(429, "TooManyRequests").header("Retry-After", "7").for_token(&t));
    let outcome = sender.send(&ring(&t)).await;
    assert!(
        matches!(&outcome, SendOutcome::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        "{outcome:?}"
    );

    let t = token(4);
    apns.emulator.faults().push(reason(400, "BadDeviceToken").for_token(&t));
    let outcome = sender.send(&ring(&t)).await;
    let SendOutcome::InvalidToken { detail, .. } = outcome else { panic!("{outcome:?}") };
    assert!(detail.contains("production") && detail.contains("environment"), "{detail}");
}

#[tokio::test]
async fn connection_faults_are_transient_and_the_connection_is_replaced() {
    let apns = Apns::start().await;
    let sender = apns.sender();
    let t = token(1);
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    assert_eq!(apns.connections(), 1);

    // Dropped without an answer: it may have been processed, so it is not resent.
    apns.emulator.faults().push(Fault { drop_connection: true, times: 1, ..Fault::default() }.for_token(&t));
    let outcome = sender.send(&ring(&t)).await;
    assert!(
        matches!(&outcome, SendOutcome::Transient { detail } if detail.contains("connection") && !detail.contains(&t)),
        "the detail never names the device token: {outcome:?}"
    );
    assert_eq!(apns.requests(&t).len(), 2);
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    assert_eq!(apns.connections(), 2, "a new connection after the drop");

    // Shutdown: the connection is going away; the next push opens another.
    apns.emulator.faults().push(reason(503, "Shutdown").for_token(&t));
    assert_eq!(sender.send(&ring(&t)).await.class(), "transient");
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    assert_eq!(apns.connections(), 3);

    // A slow answer is still an answer.
    apns.emulator.faults().push(Fault { delay_ms: 300, times: 1, ..Fault::default() }.for_token(&t));
    let started = Instant::now();
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(apns.connections(), 3);
}

// ---------------------------------------------------------------------------------------------
// The emulator's real checks, through the sender.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_emulator_checks_what_apns_checks_through_the_sender() {
    let apns = Apns::start().await;
    let refused = |outcome: &SendOutcome, class: &str, reason: &str| {
        let detail = match outcome {
            SendOutcome::InvalidToken { detail, .. }
            | SendOutcome::BadRequest { detail }
            | SendOutcome::ConfigError { detail }
            | SendOutcome::RateLimited { detail, .. }
            | SendOutcome::Transient { detail }
            | SendOutcome::QuotaExhausted { detail } => detail.clone(),
            SendOutcome::Delivered { .. } => String::new(),
        };
        assert_eq!(outcome.class(), class, "{outcome:?}");
        assert!(detail.contains(reason), "{reason}: {outcome:?}");
    };

    // A key the emulator does not know: the signature does not verify.
    let other_key = apns.dir.path().join("AuthKey_OTHER.p8");
    std::fs::write(&other_key, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let sender = apns.sender_with(|c| c.key_file = other_key.clone());
    refused(&sender.send(&ring(&token(1))).await, "config_error", "InvalidProviderToken");

    let sender = apns.sender_with(|c| c.key_id = "ZZZ999ZZZZ".into());
    refused(&sender.send(&ring(&token(1))).await, "config_error", "InvalidProviderToken");
    let sender = apns.sender_with(|c| c.team_id = "OTHERTEAM1".into());
    refused(&sender.send(&ring(&token(1))).await, "config_error", "InvalidProviderToken");
    let sender = apns.sender_with(|c| c.bundle_id = "com.example.other".into());
    refused(&sender.send(&ring(&token(1))).await, "config_error", "TopicDisallowed");

    let sender = apns.sender();
    // The VoIP limit is 5120 bytes.
    let fits = json!({"callpush": "x".repeat(5120 - 15)}).to_string();
    assert_eq!(fits.len(), 5120);
    assert_eq!(sender.send(&ring_with(&token(2), fits)).await.class(), "delivered");
    let oversize = json!({"callpush": "x".repeat(5121 - 15)}).to_string();
    refused(&sender.send(&ring_with(&token(2), oversize)).await, "bad_request", "PayloadTooLarge");
    refused(&sender.send(&ring_with(&token(2), String::new())).await, "bad_request", "PayloadEmpty");
    refused(&sender.send(&ring_with(&token(2), "[1]".into())).await, "bad_request", "PayloadEmpty");

    // Malformed tokens: not hex is refused before sending; hex APNs cannot use, by APNs.
    let outcome = sender.send(&ring("zz0123")).await;
    refused(&outcome, "invalid_token", "BadDeviceToken");
    assert!(apns.requests("zz0123").is_empty());
    refused(&sender.send(&ring("abc")).await, "invalid_token", "BadDeviceToken");

    // A sandbox token sent to production is a bad token there.
    let sandbox_token = token(3);
    apns.emulator.set_environment(&sandbox_token, ApnsEnvironment::Sandbox);
    refused(&sender.send(&ring(&sandbox_token)).await, "invalid_token", "BadDeviceToken");
    let in_sandbox =
        OutgoingPush { apns_environment: Some(ApnsEnvironment::Sandbox), ..ring(&sandbox_token) };
    assert_eq!(sender.send(&in_sandbox).await.class(), "delivered");
    // No environment means production.
    let unknown = OutgoingPush { apns_environment: None, ..ring(&token(4)) };
    assert_eq!(sender.send(&unknown).await.class(), "delivered");
    assert_eq!(apns.emulator.connections(ApnsEnvironment::Sandbox), 1);

    // A token that stopped working.
    let dead = token(5);
    let since = now_ms() - 5_000;
    apns.emulator.unregister(&dead, since);
    let outcome = sender.send(&ring(&dead)).await;
    assert!(
        matches!(outcome, SendOutcome::InvalidToken { invalid_since: Some(s), .. } if s == since),
        "{outcome:?}"
    );

    // APNs never gets a cancel.
    let cancel = OutgoingPush { kind: PushKind::Cancel, ..ring(&token(6)) };
    refused(&sender.send(&cancel).await, "bad_request", "never gets a cancel");
    assert!(apns.requests(&token(6)).is_empty());
}

#[tokio::test]
async fn rings_and_missed_calls_are_sent_as_apns_wants_them() {
    let apns = Apns::start().await;
    let sender = apns.sender();
    let t = token(1);
    let mut device = apns.hub.subscribe(Platform::Apns, &t);

    let push = ring(&t);
    assert_eq!(sender.send(&push).await.class(), "delivered");
    let voip = &apns.requests(&t)[0];
    assert_eq!(voip.method, "POST");
    assert_eq!(voip.headers["apns-push-type"], "voip");
    assert_eq!(voip.headers["apns-topic"], "com.example.callpush.voip");
    assert_eq!(voip.headers["apns-priority"], "10");
    assert_eq!(voip.headers["apns-expiration"], push.expires_at.to_string());
    let id = uuid::Uuid::parse_str(&push.delivery_id).unwrap().hyphenated().to_string();
    assert_eq!(voip.headers["apns-id"], id);
    assert!(voip.headers["authorization"].starts_with("bearer "));
    assert!(!voip.headers.contains_key("apns-collapse-id"));
    let Some(ProviderPayload::Apns { body }) = &push.payload else { unreachable!() };
    assert_eq!(&voip.body, body);
    assert_eq!(device.recv().await, Some(DevicePush::App { raw: body.clone() }));

    let push = missed(&t);
    assert_eq!(sender.send(&push).await.class(), "delivered");
    let alert = &apns.requests(&t)[1];
    assert_eq!(alert.headers["apns-push-type"], "alert");
    assert_eq!(alert.headers["apns-topic"], "com.example.callpush");
    assert_eq!(alert.headers["apns-priority"], "10");
    assert_eq!(alert.headers["apns-collapse-id"], missed_call_message_id("call-1"));
    let expiration: i64 = alert.headers["apns-expiration"].parse().unwrap();
    assert!((expiration - (now_secs() + 86_400)).abs() <= 5, "{expiration}");
    let body: Value = serde_json::from_str(&alert.body).unwrap();
    assert_eq!(
        body,
        json!({
            "aps": {"alert": {"title": "Missed call", "body": "Alice called"}, "sound": "default",
                    "thread-id": "missed-calls", "category": "MISSED_CALL"},
            "callpush_missed": {"caller_id": "alice", "video": true},
        })
    );
    assert_eq!(
        device.recv().await,
        Some(DevicePush::Notification {
            title: "Missed call".into(),
            body: "Alice called".into(),
            id: Some(missed_call_message_id("call-1")),
            category: Some("MISSED_CALL".into()),
        })
    );
}

// ---------------------------------------------------------------------------------------------
// The emulator's checks, with a hand-made client.
// ---------------------------------------------------------------------------------------------

fn provider_token(kid: &str, iss: &str, iat: i64) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(APNS_PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &json!({"iss": iss, "iat": iat}), &key).unwrap()
}

struct Raw {
    client: reqwest::Client,
    url: String,
    jwt: String,
}

impl Raw {
    fn new(apns: &Apns) -> Raw {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(apns.emulator.ca_pem().as_bytes()).unwrap())
            .http2_prior_knowledge()
            .build()
            .unwrap();
        let c = &apns.credentials;
        let jwt = provider_token(&c.apns_key_id, &c.apns_team_id, now_secs());
        Raw { client, url: apns.emulator.production_url(), jwt }
    }

    /// A VoIP push to `path` with `headers` replacing or adding to the usual ones (an empty
    /// value removes one).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let authorization = format!("bearer {}", self.jwt);
        let mut all: Vec<(&str, &str)> = vec![
            ("authorization", &authorization),
            ("apns-push-type", "voip"),
            ("apns-topic", "com.example.callpush.voip"),
            ("apns-priority", "10"),
            ("apns-expiration", "0"),
        ];
        for (name, value) in headers {
            all.retain(|(n, _)| n != name);
            all.push((name, value));
        }
        let mut request = self.client.request(method, format!("{}{path}", self.url)).body(body.to_owned());
        for (name, value) in all.into_iter().filter(|(_, v)| !v.is_empty()) {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, &format!("/3/device/{}", token(1)), headers, body).await
    }
}

fn refusal(status: u16, reason: &str) -> (u16, Value) {
    (status, json!({"reason": reason}))
}

#[tokio::test]
async fn the_emulator_refuses_what_apns_refuses() {
    let apns = Apns::start().await;
    let raw = Raw::new(&apns);
    let voip = r#"{"callpush":"x"}"#;
    let c = &apns.credentials;
    let now = now_secs();
    use reqwest::Method;

    assert_eq!(raw.post(&[], voip).await, (200, Value::Null));
    assert_eq!(
        raw.send(Method::GET, &format!("/3/device/{}", token(1)), &[], voip).await,
        refusal(405, "MethodNotAllowed")
    );
    assert_eq!(raw.send(Method::POST, "/3/push/abcd", &[], voip).await, refusal(404, "BadPath"));
    assert_eq!(raw.send(Method::POST, "/3/device/", &[], voip).await, refusal(400, "MissingDeviceToken"));
    assert_eq!(raw.send(Method::POST, "/3/device/abcz", &[], voip).await, refusal(400, "BadDeviceToken"));

    let bearer = |jwt: String| format!("bearer {jwt}");
    assert_eq!(raw.post(&[("authorization", "")], voip).await, refusal(403, "MissingProviderToken"));
    assert_eq!(
        raw.post(&[("authorization", "bearer not.a.jwt")], voip).await,
        refusal(403, "InvalidProviderToken")
    );
    let wrong_kid = bearer(provider_token("ZZZ999ZZZZ", &c.apns_team_id, now));
    assert_eq!(raw.post(&[("authorization", &wrong_kid)], voip).await, refusal(403, "InvalidProviderToken"));
    let wrong_iss = bearer(provider_token(&c.apns_key_id, "OTHERTEAM1", now));
    assert_eq!(raw.post(&[("authorization", &wrong_iss)], voip).await, refusal(403, "InvalidProviderToken"));
    let mut tampered = raw.jwt.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(
        raw.post(&[("authorization", &bearer(tampered))], voip).await,
        refusal(403, "InvalidProviderToken")
    );
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header { kid: Some(c.apns_key_id.clone()), ..Default::default() },
        &json!({"iss": c.apns_team_id, "iat": now}),
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_eq!(
        raw.post(&[("authorization", &bearer(hs256))], voip).await,
        refusal(403, "InvalidProviderToken")
    );
    let from_the_future = bearer(provider_token(&c.apns_key_id, &c.apns_team_id, now * 1000));
    assert_eq!(
        raw.post(&[("authorization", &from_the_future)], voip).await,
        refusal(403, "InvalidProviderToken")
    );
    let old = bearer(provider_token(&c.apns_key_id, &c.apns_team_id, now - 3601));
    assert_eq!(raw.post(&[("authorization", &old)], voip).await, refusal(403, "ExpiredProviderToken"));

    assert_eq!(raw.post(&[("apns-topic", "")], voip).await, refusal(400, "MissingTopic"));
    assert_eq!(raw.post(&[("apns-topic", "com.example.callpush")], voip).await, refusal(400, "BadTopic"));
    assert_eq!(
        raw.post(&[("apns-topic", "org.other.app.voip")], voip).await,
        refusal(400, "TopicDisallowed")
    );
    assert_eq!(
        raw.post(&[("apns-push-type", "alert")], r#"{"aps":{"alert":"hi"}}"#).await,
        refusal(400, "BadTopic")
    );
    assert_eq!(raw.post(&[("apns-push-type", "ring")], voip).await, refusal(400, "InvalidPushType"));
    // Without a push type the topic says which.
    assert_eq!(raw.post(&[("apns-push-type", "")], voip).await, (200, Value::Null));
    assert_eq!(raw.post(&[("apns-priority", "7")], voip).await, refusal(400, "BadPriority"));
    assert_eq!(raw.post(&[("apns-priority", "")], voip).await, (200, Value::Null));
    assert_eq!(raw.post(&[("apns-expiration", "soon")], voip).await, refusal(400, "BadExpirationDate"));
    assert_eq!(raw.post(&[("apns-id", "123")], voip).await, refusal(400, "BadMessageId"));
    assert_eq!(raw.post(&[("apns-collapse-id", &"c".repeat(65))], voip).await, refusal(400, "BadCollapseId"));
    assert_eq!(raw.post(&[("apns-collapse-id", &"c".repeat(64))], voip).await, (200, Value::Null));
    assert_eq!(raw.post(&[], "").await, refusal(400, "PayloadEmpty"));
    assert_eq!(raw.post(&[], "not json").await, refusal(400, "PayloadEmpty"));

    // 4096 bytes for alerts, 5120 for VoIP.
    let sized = |n: usize| json!({"aps": {"alert": "x".repeat(n - 20)}}).to_string();
    assert_eq!(sized(4096).len(), 4096);
    let alert = [("apns-push-type", "alert"), ("apns-topic", "com.example.callpush")];
    assert_eq!(raw.post(&alert, &sized(4096)).await, (200, Value::Null));
    assert_eq!(raw.post(&alert, &sized(4097)).await, refusal(413, "PayloadTooLarge"));
    assert_eq!(raw.post(&[], &sized(5120)).await, (200, Value::Null));
    assert_eq!(raw.post(&[], &sized(5121)).await, refusal(413, "PayloadTooLarge"));
    assert_eq!(raw.post(&[], &"x".repeat(100_000)).await, refusal(413, "PayloadTooLarge"));

    // Repeated APNs headers.
    let request = raw
        .client
        .post(format!("{}/3/device/{}", raw.url, token(1)))
        .header("authorization", format!("bearer {}", raw.jwt))
        .header("apns-topic", "com.example.callpush.voip")
        .header("apns-push-type", "voip")
        .header("apns-push-type", "voip")
        .body(voip);
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"reason": "DuplicateHeaders"}));

    // Every request is logged with its answer.
    let log = apns.emulator.faults().received();
    assert!(log.iter().any(|r| r.status == 413));
    assert!(log.iter().all(|r| r.status != 0));
}

#[tokio::test]
async fn the_emulator_speaks_only_http2_and_counts_token_changes_per_connection() {
    let apns = Apns::start().await;
    let c = &apns.credentials;
    let voip = r#"{"callpush":"x"}"#;

    // An HTTP/1.1-only client cannot even finish the TLS handshake.
    let http1 = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(apns.emulator.ca_pem().as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let refused =
        http1.post(format!("{}/3/device/{}", apns.emulator.production_url(), token(1))).send().await;
    assert!(refused.is_err(), "{refused:?}");

    // One connection: the first token, one change, then a second change within 20 minutes.
    let mut raw = Raw::new(&apns);
    let now = now_secs();
    assert_eq!(raw.post(&[], voip).await, (200, Value::Null));
    raw.jwt = provider_token(&c.apns_key_id, &c.apns_team_id, now - 10);
    assert_eq!(raw.post(&[], voip).await, (200, Value::Null));
    let accepted = raw.jwt.clone();
    raw.jwt = provider_token(&c.apns_key_id, &c.apns_team_id, now - 20);
    assert_eq!(raw.post(&[], voip).await, refusal(429, "TooManyProviderTokenUpdates"));
    raw.jwt = accepted;
    assert_eq!(raw.post(&[], voip).await, (200, Value::Null));
    // A refused (expired) token is not a change: a fresh one after it is the connection's first.
    let fresh = Raw::new(&apns);
    let expired = format!("bearer {}", provider_token(&c.apns_key_id, &c.apns_team_id, now - 4000));
    assert_eq!(fresh.post(&[("authorization", &expired)], voip).await, refusal(403, "ExpiredProviderToken"));
    assert_eq!(fresh.post(&[], voip).await, (200, Value::Null));
    assert_eq!(apns.emulator.connections(ApnsEnvironment::Production), 3);
    assert_ne!(apns.emulator.production_url(), apns.emulator.sandbox_url());

    // The control routes are served on the same HTTP/2 endpoint.
    let control = Raw::new(&apns);
    let fault = json!({"status": 500, "body": {"reason": "InternalServerError"}, "token": token(9)});
    let added =
        control.client.post(format!("{}/_emulator/faults", control.url)).json(&fault).send().await.unwrap();
    assert_eq!(added.status().as_u16(), 204);
    let sent = control.send(reqwest::Method::POST, &format!("/3/device/{}", token(9)), &[], voip).await;
    assert_eq!(sent, refusal(500, "InternalServerError"));
    let log: Value = control
        .client
        .get(format!("{}/_emulator/requests", control.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(log.as_array().unwrap().iter().any(|r| r["status"] == 500));
}

// ---------------------------------------------------------------------------------------------
// The provider token and the connection.
// ---------------------------------------------------------------------------------------------

fn authorizations(apns: &Apns, token: &str) -> Vec<String> {
    apns.requests(token).into_iter().map(|r| r.headers["authorization"].clone()).collect()
}

fn claims(authorization: &str) -> Value {
    let jwt = authorization.strip_prefix("bearer ").unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("ABC123DEFG"));
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

#[tokio::test]
async fn the_provider_token_is_made_once_and_reused() {
    let apns = Apns::start().await;
    let sender = apns.sender();
    let t = token(1);
    for _ in 0..3 {
        assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    }
    assert_eq!(sender.send(&missed(&t)).await.class(), "delivered");
    let auth = authorizations(&apns, &t);
    assert_eq!(auth.len(), 4);
    assert!(auth.iter().all(|a| *a == auth[0]), "one token for every push");
    let claims = claims(&auth[0]);
    assert_eq!(claims["iss"], "TEAM123456");
    assert!((claims["iat"].as_i64().unwrap() - now_secs()).abs() <= 5, "{claims}");
    assert_eq!(claims.as_object().unwrap().len(), 2, "only iss and iat: {claims}");
}

#[tokio::test]
async fn the_provider_token_is_replaced_after_fifty_minutes_not_before() {
    let apns = Apns::start().await;
    let offset = Arc::new(AtomicI64::new(-30 * 60));
    let clock = offset.clone();
    let sender = apns.sender().with_clock(move || now_secs() + clock.load(Ordering::SeqCst));
    let t = token(1);
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    offset.store(0, Ordering::SeqCst);
    // 30 minutes old: kept.
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    let auth = authorizations(&apns, &t);
    assert_eq!(auth[0], auth[1]);

    let sender = apns.sender().with_clock({
        let clock = offset.clone();
        move || now_secs() + clock.load(Ordering::SeqCst)
    });
    offset.store(-55 * 60, Ordering::SeqCst);
    let t = token(2);
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    offset.store(0, Ordering::SeqCst);
    // 55 minutes old: replaced, and the new one kept.
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    let auth = authorizations(&apns, &t);
    assert_ne!(auth[0], auth[1]);
    assert_eq!(auth[1], auth[2]);
    assert!(claims(&auth[1])["iat"].as_i64().unwrap() - claims(&auth[0])["iat"].as_i64().unwrap() >= 55 * 60);
}

#[tokio::test]
async fn a_refused_provider_token_is_replaced_once() {
    let apns = Apns::start().await;
    // The first token is dated two hours ago: APNs refuses it, the sender makes a new one.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let sender = apns.sender().with_clock(move || {
        let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        now_secs() - if first { 7200 } else { 0 }
    });
    let t = token(1);
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    let statuses: Vec<u16> = apns.requests(&t).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 200]);
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    let auth = authorizations(&apns, &t);
    assert_ne!(auth[0], auth[1]);
    assert_eq!(auth[1], auth[2], "the replacement is kept");

    // A refusal that persists (the server's clock is wrong) is a configuration error.
    let sender = apns.sender().with_clock(|| now_secs() - 7200);
    let t = token(2);
    let outcome = sender.send(&ring(&t)).await;
    assert!(
        matches!(&outcome, SendOutcome::ConfigError { detail } if detail.contains("clock")),
        "{outcome:?}"
    );
    assert_eq!(apns.requests(&t).len(), 2, "refreshed once, not more");

    // Scripted: refused once, then accepted.
    let sender = apns.sender();
    let t = token(3);
    apns.emulator.faults().push(reason(403, "ExpiredProviderToken").for_token(&t));
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    // (Made in the same second, the replacement may be the same token: a refusal of a token
    // this fresh is the clock's fault, which the next refusal reports.)
    assert_eq!(apns.requests(&t).iter().map(|r| r.status).collect::<Vec<_>>(), [403, 200]);
    apns.emulator.faults().push(reason(403, "ExpiredProviderToken").times(2).for_token(&t));
    assert_eq!(sender.send(&ring(&t)).await.class(), "config_error");
}

#[tokio::test]
async fn too_many_token_updates_does_not_change_the_token_again() {
    let apns = Apns::start().await;
    let sender = apns.sender();
    let t = token(1);
    apns.emulator.faults().push(reason(429, "TooManyProviderTokenUpdates").for_token(&t));
    assert_eq!(sender.send(&ring(&t)).await.class(), "rate_limited");
    assert_eq!(sender.send(&ring(&t)).await.class(), "delivered");
    let auth = authorizations(&apns, &t);
    assert_eq!(auth.len(), 2);
    assert_eq!(auth[0], auth[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_share_one_connection_per_environment() {
    let apns = Apns::start().await;
    let sender = Arc::new(apns.sender());
    let mut sends = Vec::new();
    for n in 0..60 {
        let sender = sender.clone();
        let env = if n % 3 == 0 { ApnsEnvironment::Sandbox } else { ApnsEnvironment::Production };
        sends.push(tokio::spawn(async move {
            sender.send(&OutgoingPush { apns_environment: Some(env), ..ring(&token(n)) }).await
        }));
    }
    for send in sends {
        assert_eq!(send.await.unwrap().class(), "delivered");
    }
    assert_eq!(apns.emulator.connections(ApnsEnvironment::Production), 1);
    assert_eq!(apns.emulator.connections(ApnsEnvironment::Sandbox), 1);
    let tokens: std::collections::BTreeSet<_> =
        apns.emulator.faults().received().into_iter().map(|r| r.headers["authorization"].clone()).collect();
    assert_eq!(tokens.len(), 1, "one provider token for both environments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_goaway_pushes_go_on_a_new_connection() {
    let apns = Apns::start().await;
    let sender = Arc::new(apns.sender());
    assert_eq!(sender.send(&ring(&token(0))).await.class(), "delivered");
    // The next push is answered slowly, then the connection is closed with GOAWAY; pushes
    // sent meanwhile and after must all arrive.
    apns.emulator
        .faults()
        .push(Fault { delay_ms: 300, goaway: true, times: 1, ..Fault::default() }.for_token(&token(1)));
    let mut sends = Vec::new();
    for n in 1..=40u32 {
        let sender = sender.clone();
        sends.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(n) * 15)).await;
            sender.send(&ring(&token(n))).await
        }));
    }
    for send in sends {
        let outcome = send.await.unwrap();
        assert_eq!(outcome.class(), "delivered", "{outcome:?}");
    }
    assert_eq!(apns.emulator.connections(ApnsEnvironment::Production), 2);
    // A scripted answer with GOAWAY: answered, then a new connection for the next.
    apns.emulator
        .faults()
        .push(Fault { goaway: true, ..reason(500, "InternalServerError") }.for_token(&token(50)));
    assert_eq!(sender.send(&ring(&token(50))).await.class(), "transient");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sender.send(&ring(&token(51))).await.class(), "delivered");
    assert_eq!(apns.emulator.connections(ApnsEnvironment::Production), 3);
}

/// How a bare HTTP/2 server (the `h2` crate, for what hyper's server cannot do) treats the first
/// connection; later ones answer 200.
#[derive(Clone, Copy, PartialEq)]
enum FirstConnection {
    /// Resets every stream with `REFUSED_STREAM`.
    RefusesStreams,
    /// Sends GOAWAY at once, naming no stream as processed.
    GoesAwayAtOnce,
}

/// A bare HTTP/2 server on loopback: its URL and CA, and how many connections and requests it saw.
async fn bare_h2(first: FirstConnection) -> (String, String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let ca = callpush_emulators::tls::TestCa::new().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (accepted, answered) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = accepted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, answered) = (acceptor.clone(), answered.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut conn) = h2::server::handshake(tls).await else { return };
                if n == 0 && first == FirstConnection::GoesAwayAtOnce {
                    conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                    while let Some(Ok(_)) = conn.accept().await {}
                    return;
                }
                while let Some(Ok((_request, mut respond))) = conn.accept().await {
                    answered.fetch_add(1, Ordering::SeqCst);
                    if n == 0 {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    let response = axum::http::Response::builder().status(200).body(()).unwrap();
                    let _ = respond.send_response(response, true);
                }
            });
        }
    });
    (url, ca.ca_pem, connections, requests)
}

#[tokio::test]
async fn a_push_apns_did_not_process_is_resent_once_on_a_new_connection() {
    let apns = Apns::start().await;
    for first in [FirstConnection::RefusesStreams, FirstConnection::GoesAwayAtOnce] {
        let (url, ca, connections, requests) = bare_h2(first).await;
        let config = ApnsConfig { production_url: url, ..apns.config.clone() };
        let sender = ApnsSender::new(&config, &HttpSettings::with_ca_pem(&ca).unwrap()).unwrap();
        let outcome = sender.send(&ring(&token(1))).await;
        assert_eq!(outcome.class(), "delivered", "{outcome:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 2, "resent on a new connection");
        if first == FirstConnection::RefusesStreams {
            // hyper retries a refused stream on its connection a few times before giving up.
            assert!(requests.load(Ordering::SeqCst) >= 2);
        }
    }
}

#[tokio::test]
async fn bad_configuration_is_refused_at_start_with_what_is_wrong() {
    let apns = Apns::start().await;
    let fails = |change: &dyn Fn(&mut ApnsConfig), expected: &str| {
        let mut config = apns.config.clone();
        change(&mut config);
        let error = ApnsSender::new(&config, &apns.http).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(expected), "{expected}: {error:?}");
    };
    let dir = apns.dir.path();
    fails(&|c| c.key_file = dir.join("missing.p8"), "missing.p8");
    std::fs::write(dir.join("garbage.p8"), "not a key").unwrap();
    fails(&|c| c.key_file = dir.join("garbage.p8"), "not a PKCS#8 EC private key");
    std::fs::write(dir.join("rsa.p8"), callpush_emulators::credentials::FCM_PRIVATE_KEY).unwrap();
    fails(&|c| c.key_file = dir.join("rsa.p8"), "rsa.p8");
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap().serialize_pem();
    std::fs::write(dir.join("p384.p8"), p384).unwrap();
    fails(&|c| c.key_file = dir.join("p384.p8"), "p384.p8");
    fails(&|c| c.key_id = "short".into(), "apns.key_id");
    fails(&|c| c.team_id = "TEAM-12345".into(), "apns.team_id");
    fails(&|c| c.bundle_id = "com.example.callpush.voip".into(), "without .voip");
    fails(&|c| c.bundle_id = "com example".into(), "apns.bundle_id");
    fails(&|c| c.production_url = "http://127.0.0.1:1".into(), "apns.production_url");
    fails(&|c| c.sandbox_url = "https://127.0.0.1:1/3/device".into(), "apns.sandbox_url");
}

// ---------------------------------------------------------------------------------------------
// The whole server, with a simulated iPhone.
// ---------------------------------------------------------------------------------------------

async fn start() -> ProviderServer {
    ProviderServer::start(ServerOptions::only(Platform::Apns)).await
}

/// `user`'s iPhone with VoIP token `n`, registered through the real client.
async fn iphone(server: &ProviderServer, user: &str, n: u32) -> SimulatedDevice {
    server.device(&format!("{user}'s iPhone"), user, &token(n)).await
}

/// Rings Bob as call `call_id`.
async fn ring_bob(server: &ProviderServer, call_id: &str, ring_seconds: u32) -> Value {
    server.ring(&["bob"], json!({"call_id": call_id, "ring_seconds": ring_seconds})).await
}

fn is_ring(seen: &Seen) -> bool {
    matches!(seen, Seen::Push(outcome) if outcome.outcome == Outcome::Ring)
}

fn push_types(apns: &ApnsEmulator, token: &str) -> Vec<String> {
    requests(apns, token).into_iter().map(|r| r.headers["apns-push-type"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_reaches_the_iphone_and_a_cancel_becomes_a_missed_call_alert() {
    let server = start().await;
    let device = iphone(&server, "bob", 1).await;
    server.emulators.apns.set_environment(&device.token, ApnsEnvironment::Sandbox);

    ring_bob(&server, "call-e2e-1", 30).await;
    let rang = device.wait_for(0, Duration::from_secs(10), is_ring).await;
    let Some(entry) = rang else { panic!("the device never rang: {:?}", device.journal()) };
    let Seen::Push(outcome) = entry.seen else { unreachable!() };
    assert_eq!(outcome.call.as_ref().map(|c| c.call_id.as_str()), Some("call-e2e-1"));
    assert_eq!(server.emulators.apns.connections(ApnsEnvironment::Sandbox), 1, "the device's environment");
    assert_eq!(server.emulators.apns.connections(ApnsEnvironment::Production), 0);

    let (status, _) = server.api(reqwest::Method::POST, "/v1/calls/call-e2e-1/cancel", Some(json!({}))).await;
    assert_eq!(status, 200);
    let id = missed_call_message_id("call-e2e-1");
    let note = device
        .wait_for(
            0,
            Duration::from_secs(10),
            |seen| matches!(seen, Seen::Notification { id: Some(i), .. } if *i == id),
        )
        .await;
    let Some(Entry { seen: Seen::Notification { title, body, .. }, .. }) = note else {
        panic!("no missed-call alert: {:?}", device.journal())
    };
    // The real client registers a device key (wire v2): the alert, which the provider reads,
    // names nobody.
    assert_eq!((title.as_str(), body.as_str()), ("Missed call", "You missed a call"));
    // Never a VoIP push for the cancel: one VoIP ring to the VoIP token, one alert to the
    // alert token (APNs would refuse it on the VoIP token).
    let alert_token = device.alert_token.clone().expect("an iPhone has an alert token");
    assert_eq!(push_types(&server.emulators.apns, &device.token), ["voip"]);
    assert_eq!(push_types(&server.emulators.apns, &alert_token), ["alert"]);
    assert_eq!(requests(&server.emulators.apns, &alert_token)[0].status, 200);
    server.stop().await;
}

#[tokio::test]
async fn apns_refuses_alerts_to_voip_tokens_and_voip_pushes_to_alert_tokens() {
    let apns = Apns::start().await;
    let sender = apns.sender();
    let (voip, alert, unknown) = (token(1), token(2), token(3));
    apns.emulator.register_token(&voip, ApnsTokenKind::Voip);
    apns.emulator.register_token(&alert, ApnsTokenKind::Alert);
    let not_for_topic = |outcome: SendOutcome| match outcome {
        SendOutcome::InvalidToken { detail, invalid_since: None } => {
            detail.contains("DeviceTokenNotForTopic")
        }
        _ => false,
    };
    assert!(not_for_topic(sender.send(&missed(&voip)).await), "an alert to a VoIP token");
    assert!(not_for_topic(sender.send(&ring(&alert)).await), "a VoIP push to an alert token");
    assert_eq!(apns.requests(&voip)[0].status, 400);
    assert_eq!(sender.send(&ring(&voip)).await.class(), "delivered");
    assert_eq!(sender.send(&missed(&alert)).await.class(), "delivered");
    // Tokens nobody described take both, as before.
    assert_eq!(sender.send(&ring(&unknown)).await.class(), "delivered");
    assert_eq!(sender.send(&missed(&unknown)).await.class(), "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iphone_without_an_alert_token_gets_no_alert_and_is_not_pruned() {
    let server = start().await;
    let device = iphone(&server, "bob", 1).await;
    // An app that never passed its alert token: only the VoIP token is registered.
    device.client.register_push(device.token.clone(), Default::default()).await.unwrap();
    ring_bob(&server, "call-e2e-na", 30).await;
    assert!(device.wait_for(0, Duration::from_secs(10), is_ring).await.is_some(), "{:?}", device.journal());
    server.api(reqwest::Method::POST, "/v1/calls/call-e2e-na/cancel", Some(json!({}))).await;
    let detail = server
        .wait_for("call-e2e-na", Duration::from_secs(5), |d| {
            d["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["event"] == "missed_call_not_sent"))
        })
        .await;
    let kinds: Vec<_> = detail["deliveries"].as_array().unwrap().iter().map(|d| d["kind"].clone()).collect();
    assert_eq!(kinds, [json!("ring")], "{detail}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        push_types(&server.emulators.apns, &device.token),
        ["voip"],
        "never an alert to the VoIP token"
    );
    assert!(requests(&server.emulators.apns, device.alert_token.as_ref().unwrap()).is_empty());
    let again = ring_bob(&server, "call-e2e-na2", 30).await;
    assert_eq!(again["deliveries"].as_array().map(Vec::len), Some(1), "not pruned: {again}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_token_not_for_topic_on_the_alert_token_clears_it_and_the_iphone_still_rings() {
    let server = start().await;
    let device = iphone(&server, "bob", 1).await;
    let alert_token = device.alert_token.clone().unwrap();
    // APNs no longer takes alerts on that token (say, the app re-registered it as something else).
    server.emulators.apns.register_token(&alert_token, ApnsTokenKind::Voip);
    ring_bob(&server, "call-e2e-nft", 30).await;
    assert!(device.wait_for(0, Duration::from_secs(10), is_ring).await.is_some(), "{:?}", device.journal());
    server.api(reqwest::Method::POST, "/v1/calls/call-e2e-nft/cancel", Some(json!({}))).await;
    let detail = server
        .wait_for("call-e2e-nft", Duration::from_secs(10), |d| {
            d["deliveries"]
                .as_array()
                .is_some_and(|ds| ds.iter().any(|x| x["kind"] == "missed" && x["status"] == "failed"))
        })
        .await;
    let missed =
        detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "missed").cloned().unwrap();
    assert_eq!(missed["outcome"], "invalid_token", "{detail}");
    assert_eq!(requests(&server.emulators.apns, &alert_token)[0].status, 400);

    // The installation is kept and rings on its VoIP token; no alert is tried again.
    let from = device.journal().len();
    let again = ring_bob(&server, "call-e2e-nft2", 30).await;
    assert_eq!(again["deliveries"].as_array().map(Vec::len), Some(1), "kept: {again}");
    assert!(
        device.wait_for(from, Duration::from_secs(10), is_ring).await.is_some(),
        "{:?}",
        device.journal()
    );
    server.api(reqwest::Method::POST, "/v1/calls/call-e2e-nft2/cancel", Some(json!({}))).await;
    let detail = server
        .wait_for("call-e2e-nft2", Duration::from_secs(5), |d| {
            d["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["event"] == "missed_call_not_sent"))
        })
        .await;
    assert!(detail["deliveries"].as_array().unwrap().iter().all(|d| d["kind"] == "ring"), "{detail}");
    assert_eq!(
        requests(&server.emulators.apns, &alert_token).len(),
        1,
        "the cleared token is not tried again"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_only_until_the_ring_deadline() {
    let server = start().await;
    let device = iphone(&server, "bob", 1).await;
    let faults = server.emulators.apns.faults();
    faults.push(reason(503, "ServiceUnavailable").times(1000).for_token(&device.token));

    let call = ring_bob(&server, "call-e2e-2", 5).await;
    let deadline_ms = call["expires_at_ms"].as_i64();
    let detail = server
        .wait_for("call-e2e-2", Duration::from_secs(15), |d| {
            d["state"] == "missed"
                && d["deliveries"].as_array().is_some_and(|ds| {
                    ds.iter()
                        .any(|x| x["kind"] == "ring" && x["status"] != "pending" && x["status"] != "sending")
                })
        })
        .await;
    assert_eq!(detail["state"], "missed", "{detail}");
    let ring = detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "ring").unwrap().clone();
    // The last attempt failed (`transient`), a retry came due after the ring ended (`expired`),
    // or the call ended while a retry waited, which skips it (`skipped` after a `transient`):
    // which one depends on where the deadline falls between two backoffs.
    assert!(
        matches!(
            (ring["status"].as_str(), ring["outcome"].as_str()),
            (Some("failed"), Some("transient" | "expired")) | (Some("skipped"), Some("transient"))
        ),
        "{ring}"
    );
    let attempts = ring["attempts"].as_i64().unwrap();
    assert!(attempts >= 2, "retried while the call rang: {ring}");

    // Every attempt reached APNs, but one that found no time left before the deadline (it is
    // counted and sends nothing); nothing more is tried for the ring once the deadline passed.
    let unsent = i64::from(ring["detail"].as_str().is_some_and(|d| d.contains("not sent")));
    let voip_before =
        push_types(&server.emulators.apns, &device.token).iter().filter(|t| *t == "voip").count();
    assert_eq!(voip_before as i64, attempts - unsent, "{ring}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let voip_after =
        push_types(&server.emulators.apns, &device.token).iter().filter(|t| *t == "voip").count();
    assert_eq!(voip_before, voip_after);
    if let Some(deadline_ms) = deadline_ms {
        let attempted: Vec<i64> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["delivery_id"] == ring["delivery_id"])
            .filter_map(|e| e["at_ms"].as_i64())
            .collect();
        assert!(!attempted.is_empty());
        assert!(attempted.iter().all(|at| *at <= deadline_ms + 1000), "{attempted:?} vs {deadline_ms}");
    }
    assert!(device.journal().iter().all(|e| !is_ring(&e.seen)), "the device never rang");

    // APNs recovers. A call that rang and timed out gets its missed-call alert, retried past
    // passing failures (it matters for an hour, not just the ring).
    faults.clear();
    ring_bob(&server, "call-e2e-2b", 5).await;
    let from = device.journal().len();
    assert!(
        device.wait_for(from, Duration::from_secs(10), is_ring).await.is_some(),
        "{:?}",
        device.journal()
    );
    let alert_token = device.alert_token.clone().unwrap();
    faults.push(reason(503, "ServiceUnavailable").times(2).for_token(&alert_token));
    let id = missed_call_message_id("call-e2e-2b");
    let note = device
        .wait_for(
            from,
            Duration::from_secs(20),
            |seen| matches!(seen, Seen::Notification { id: Some(i), .. } if *i == id),
        )
        .await;
    assert!(note.is_some(), "{:?}\n{}", device.journal(), server.detail("call-e2e-2b").await);
    let detail = server
        .wait_for("call-e2e-2b", Duration::from_secs(5), |d| {
            d["deliveries"]
                .as_array()
                .is_some_and(|ds| ds.iter().any(|x| x["kind"] == "missed" && x["status"] == "delivered"))
        })
        .await;
    let missed = detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "missed").cloned();
    assert_eq!(
        missed.as_ref().map(|m| (m["status"].clone(), m["attempts"].clone())),
        Some((json!("delivered"), json!(3))),
        "{detail}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_prunes_the_installation_only_if_it_died_after_registering() {
    let server = start().await;
    // Died before it was registered (a stale timestamp): kept.
    let device = iphone(&server, "bob", 1).await;
    server.emulators.apns.unregister(&device.token, now_ms() - 3_600_000);
    ring_bob(&server, "call-e2e-3", 30).await;
    let detail = server
        .wait_for("call-e2e-3", Duration::from_secs(10), |d| d["deliveries"][0]["status"] == "failed")
        .await;
    assert_eq!(detail["deliveries"][0]["outcome"], "invalid_token", "{detail}");
    let (_, call) = server.api(reqwest::Method::POST, "/v1/calls/call-e2e-3/cancel", Some(json!({}))).await;
    assert_eq!(call["state"], "cancelled");
    let again = ring_bob(&server, "call-e2e-4", 30).await;
    assert_eq!(again["deliveries"].as_array().map(Vec::len), Some(1), "kept: {again}");

    server
        .wait_for("call-e2e-4", Duration::from_secs(10), |d| d["deliveries"][0]["status"] == "failed")
        .await;
    server.api(reqwest::Method::POST, "/v1/calls/call-e2e-4/cancel", Some(json!({}))).await;

    // Died after it was registered (the app was uninstalled): pruned.
    server.emulators.apns.unregister(&device.token, now_ms());
    ring_bob(&server, "call-e2e-5", 30).await;
    let detail = server
        .wait_for("call-e2e-5", Duration::from_secs(10), |d| d["deliveries"][0]["status"] == "failed")
        .await;
    assert_eq!(detail["deliveries"][0]["outcome"], "invalid_token", "{detail}");
    let after = ring_bob(&server, "call-e2e-6", 30).await;
    assert_eq!(after["deliveries"].as_array().map(Vec::len), Some(0), "pruned: {after}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// An APNs client written by others.
// ---------------------------------------------------------------------------------------------

/// `@parse/node-apn` (npm), pointed at the emulator with its `address` and `ca` options, sends a
/// VoIP push, an alert and a push to a sandbox token: the emulator accepts what a real sender
/// sends and the client understands the emulator's answers. Needs Node.js and `npm install` in
/// `server/tests/provider_apns` (or `CALLPUSH_NODE_APN_MODULES` naming a `node_modules`);
/// skipped without them unless `CALLPUSH_REQUIRE_INDEPENDENT_CLIENT` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_apns_client_is_understood() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/provider_apns");
    let modules = std::env::var_os("CALLPUSH_NODE_APN_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| fixtures.join("node_modules"));
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node || !modules.join("@parse/node-apn").is_dir() {
        assert!(
            std::env::var_os("CALLPUSH_REQUIRE_INDEPENDENT_CLIENT").is_none(),
            "Node.js and @parse/node-apn are required: run `npm install` in {}",
            fixtures.display()
        );
        eprintln!("skipping: no Node.js or no @parse/node-apn (npm install in {})", fixtures.display());
        return;
    }
    let apns = Apns::start().await;
    let (t, sandbox_token) = (token(1), token(2));
    apns.emulator.set_environment(&sandbox_token, ApnsEnvironment::Sandbox);
    let mut device = apns.hub.subscribe(Platform::Apns, &t);
    let ca_file = apns.dir.path().join("ca.pem");
    std::fs::write(&ca_file, apns.emulator.ca_pem()).unwrap();
    let url = reqwest::Url::parse(&apns.emulator.production_url()).unwrap();
    let (address, port) = (url.host_str().unwrap().to_owned(), url.port().unwrap().to_string());
    let c = &apns.credentials;
    let mut command = std::process::Command::new("node");
    command
        .arg(fixtures.join("node-apn-client.js"))
        .env("NODE_PATH", &modules)
        .env("APNS_ADDRESS", address)
        .env("APNS_PORT", port)
        .env("APNS_CA_FILE", &ca_file)
        .env("APNS_KEY_FILE", &apns.config.key_file)
        .env("APNS_KEY_ID", &c.apns_key_id)
        .env("APNS_TEAM_ID", &c.apns_team_id)
        .env("APNS_BUNDLE_ID", &c.apns_bundle_id)
        .env("APNS_TOKEN", &t)
        .env("APNS_SANDBOX_TOKEN", &sandbox_token);
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let results: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        results,
        json!({
            "voip": {"sent": 1, "failed": []},
            "alert": {"sent": 1, "failed": []},
            "sandbox_token_in_production": {"sent": 0, "failed": [{"status": 400, "reason": "BadDeviceToken"}]},
        })
    );
    assert_eq!(
        device.recv().await,
        Some(DevicePush::App { raw: json!({"callpush": "eyJhbGciOiJFZERTQSJ9.e30.c2ln"}).to_string() })
    );
    assert_eq!(
        device.recv().await,
        Some(DevicePush::Notification {
            title: "Missed call".into(),
            body: "Alice called".into(),
            id: Some("missed-node-apn".into()),
            category: Some("MISSED_CALL".into()),
        })
    );
    let voip = &apns.requests(&t)[0];
    assert_eq!((voip.headers["apns-push-type"].as_str(), voip.status), ("voip", 200));
    assert_eq!(
        apns.emulator.connections(ApnsEnvironment::Production),
        1,
        "node-apn keeps one connection too"
    );
}
