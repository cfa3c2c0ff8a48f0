//! The FCM HTTP v1 sender against the FCM emulator: every documented answer classified, the
//! OAuth token made, cached, shared, refreshed and refused, the emulator's own checks, the whole
//! server ringing a simulated Android device, and an independent client (the Firebase Admin
//! Python SDK) accepted by the emulator.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callpush_client::model::{Outcome, Platform};
use callpush_client::wire::ProviderPayload;
use callpush_emulators::credentials::{FCM_PRIVATE_KEY, FCM_PUBLIC_KEY, HARMONY_PRIVATE_KEY};
use callpush_emulators::device::{token_for, Seen};
use callpush_emulators::faults::{Fault, Received};
use callpush_emulators::fcm::{error_body, FcmEmulator, GOOGLE_TOKEN_AUDIENCE, SENDER_ID};
use callpush_emulators::hub::DevicePush;
use callpush_server::config::FcmConfig;
use callpush_server::domain::PushKind;
use callpush_server::senders::fcm::{FcmSender, FCM_SCOPE, INVALID_TOKEN_MESSAGE, JWT_BEARER_GRANT};
use callpush_server::senders::http::HttpSettings;
use callpush_server::senders::{OutgoingPush, SendOutcome, Sender};
use callpush_server::time::{now_ms, now_secs};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use support::rig::{EmulatorRig, ProviderServer, ServerOptions};

/// An emulator, its device hub, and the service-account file pointing at it.
type Fixture = EmulatorRig<FcmEmulator>;

impl Fixture {
    /// A sender whose service-account file has `change` applied.
    fn sender_with(&self, change: impl FnOnce(&mut Value)) -> FcmSender {
        let config = self.config_with(change);
        FcmSender::new(&config, &HttpSettings::default()).unwrap()
    }

    fn config_with(&self, change: impl FnOnce(&mut Value)) -> FcmConfig {
        let mut file: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config.service_account_file).unwrap())
                .unwrap();
        change(&mut file);
        let path = self.dir.path().join(format!("sa-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, file.to_string()).unwrap();
        FcmConfig { service_account_file: path, ..self.config.clone() }
    }

    fn requests(&self, path_ends: &str) -> Vec<Received> {
        requests(&self.emulator, path_ends)
    }

    fn token_requests(&self) -> usize {
        self.requests("/token").len()
    }

    fn sends(&self) -> Vec<Received> {
        self.requests("/messages:send")
    }

    /// An access token from the emulator for an assertion with these claims (defaults filled).
    async fn access_token(&self) -> String {
        let answer = self.post_assertion(&self.assertion(json!({}), None)).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        answer.1["access_token"].as_str().unwrap().to_owned()
    }

    /// An RS256 assertion signed with the test key: the right claims, overridden by `changes`.
    fn assertion(&self, changes: Value, header: Option<Header>) -> String {
        let now = now_secs();
        let mut claims = json!({
            "iss": self.credentials.fcm_client_email, "scope": FCM_SCOPE,
            "aud": self.emulator.token_url(), "iat": now, "exp": now + 3600,
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        let header = header.unwrap_or_else(|| {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(self.credentials.fcm_private_key_id.clone());
            h
        });
        let key = EncodingKey::from_rsa_pem(FCM_PRIVATE_KEY.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    async fn post_assertion(&self, assertion: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.emulator.token_url())
            .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts a raw send request with `bearer`.
    async fn post_send(&self, project: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/projects/{project}/messages:send", self.emulator.base_url()))
            .json(body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The requests `emulator` received at paths ending in `path_ends`.
fn requests(emulator: &FcmEmulator, path_ends: &str) -> Vec<Received> {
    emulator.faults().received().into_iter().filter(|r| r.path.ends_with(path_ends)).collect()
}

/// A change to a service-account file.
type Change = Box<dyn FnOnce(&mut Value)>;

fn data(jws: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("callpush".to_owned(), jws.to_owned())])
}

fn push(kind: PushKind, token: &str) -> OutgoingPush {
    push_with(kind, token, data("eyJhbGciOiJFZERTQSJ9.eyJ0ZXN0Ijp0cnVlfQ.c2ln"))
}

fn push_with(kind: PushKind, token: &str, data: BTreeMap<String, String>) -> OutgoingPush {
    OutgoingPush {
        delivery_id: "delivery-1".into(),
        call_id: "call-1".into(),
        installation_id: "installation-1".into(),
        platform: Platform::Fcm,
        token: token.to_owned(),
        apns_environment: None,
        kind,
        payload: Some(ProviderPayload::Fcm { data }),
        missed: None,
        ttl_seconds: 30,
        expires_at: now_secs() + 30,
    }
}

fn token(n: u32) -> String {
    token_for(Platform::Fcm, n)
}

/// The claims of the assertion a logged token request carried, verified with the public key.
fn logged_assertion(request: &Received, aud: &str) -> (Header, Value) {
    let assertion =
        request.body.split('&').find_map(|p| p.strip_prefix("assertion=")).expect("an assertion parameter");
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    let key = DecodingKey::from_rsa_pem(FCM_PUBLIC_KEY.as_bytes()).unwrap();
    (header, jsonwebtoken::decode::<Value>(assertion, &key, &validation).unwrap().claims)
}

// ---- sending ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_reaches_the_device_as_android_hands_it_over() {
    let f = Fixture::start().await;
    let device_token = token(1);
    let mut device = f.hub.subscribe(Platform::Fcm, &device_token);
    let sender = f.sender();

    let outcome = sender.send(&push(PushKind::Ring, &device_token)).await;
    let SendOutcome::Delivered { provider_id: Some(name) } = outcome else { panic!("{outcome:?}") };
    let message_id = name.strip_prefix("projects/callpush-test/messages/").expect("a message name");

    let Some(DevicePush::App { raw }) = device.recv().await else { panic!("an app push") };
    let seen: BTreeMap<String, String> = serde_json::from_str(&raw).unwrap();
    assert_eq!(seen["callpush"], "eyJhbGciOiJFZERTQSJ9.eyJ0ZXN0Ijp0cnVlfQ.c2ln");
    assert_eq!(seen["google.message_id"], message_id);
    assert_eq!(seen["from"], SENDER_ID);
    assert_eq!(seen["google.ttl"], "30");
    assert_eq!(seen["collapse_key"], "call-1");
    assert_eq!(seen["google.delivered_priority"], "high");
    assert!(seen["google.sent_time"].parse::<i64>().unwrap() > 0);

    // The request as FCM documents it.
    let sends = f.sends();
    assert_eq!(sends.len(), 1);
    let request = &sends[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/projects/callpush-test/messages:send");
    assert!(request.headers["content-type"].starts_with("application/json"));
    assert!(request.headers["authorization"].starts_with("Bearer ya29."));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"message": {"token": device_token, "data": {"callpush": seen["callpush"]},
            "android": {"priority": "HIGH", "ttl": "30s", "collapse_key": "call-1"}}})
    );

    // A cancel is the same kind of message; a missed-call notification is never sent to FCM.
    assert!(matches!(
        sender.send(&push(PushKind::Cancel, &device_token)).await,
        SendOutcome::Delivered { .. }
    ));
    assert!(matches!(device.recv().await, Some(DevicePush::App { .. })));
    let mut missed = push(PushKind::Missed, &device_token);
    missed.payload = None;
    assert!(matches!(sender.send(&missed).await, SendOutcome::BadRequest { .. }));
    let mut wrong = push(PushKind::Ring, &device_token);
    wrong.payload = Some(ProviderPayload::Apns { body: "{}".into() });
    assert!(matches!(sender.send(&wrong).await, SendOutcome::BadRequest { .. }));
    assert_eq!(f.sends().len(), 2, "neither the missed call nor the APNs payload reached FCM");

    // An offline device: FCM still accepts the message.
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(99))).await, SendOutcome::Delivered { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_are_capped_at_four_weeks() {
    let f = Fixture::start().await;
    let mut long = push(PushKind::Ring, &token(1));
    long.ttl_seconds = u32::MAX;
    assert!(matches!(f.sender().send(&long).await, SendOutcome::Delivered { .. }));
    let body: Value = serde_json::from_str(&f.sends()[0].body).unwrap();
    assert_eq!(body["message"]["android"]["ttl"], "2419200s");
}

// ---- the fault matrix ----

/// What a case expects.
enum Expect {
    Delivered,
    InvalidToken,
    RateLimited(Duration),
    Transient,
    BadRequest,
    ConfigError,
}

fn check(case: &str, outcome: &SendOutcome, expect: &Expect) {
    let ok = match (expect, outcome) {
        (Expect::Delivered, SendOutcome::Delivered { .. }) => true,
        (Expect::InvalidToken, SendOutcome::InvalidToken { invalid_since, .. }) => invalid_since.is_none(),
        (Expect::RateLimited(after), SendOutcome::RateLimited { retry_after, .. }) => {
            retry_after.is_some_and(|r| r.abs_diff(*after) <= Duration::from_secs(2))
        }
        (Expect::Transient, SendOutcome::Transient { .. }) => true,
        (Expect::BadRequest, SendOutcome::BadRequest { .. }) => true,
        (Expect::ConfigError, SendOutcome::ConfigError { .. }) => true,
        _ => false,
    };
    assert!(ok, "{case}: got {outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_fcm_error_is_classified() {
    let f = Fixture::start().await;
    let sender = f.sender();
    let device_token = token(1);
    let http_date = |secs: u64| {
        // An HTTP date `secs` from now, formatted by hand (IMF-fixdate).
        let at = now_secs() as u64 + secs;
        let days = at / 86_400;
        let (h, m, s) = ((at % 86_400) / 3600, (at % 3600) / 60, at % 60);
        // Civil date from days (Howard Hinnant).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let mo = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(mo <= 2);
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
        let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            [(mo - 1) as usize];
        format!("{weekday}, {d:02} {month} {y} {h:02}:{m:02}:{s:02} GMT")
    };
    let fcm = |code: u16, status: &str, message: &str, error_code: &str| {
        Fault::json(code, error_body(code, status, message, Some(error_code)))
    };
    let plain =
        |code: u16, status: &str, message: &str| Fault::json(code, error_body(code, status, message, None));
    let cases: Vec<(&str, Fault, Expect)> = vec![
        (
            "404 UNREGISTERED",
            fcm(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
            Expect::InvalidToken,
        ),
        (
            "400 UNREGISTERED (the error code wins over the status)",
            fcm(400, "INVALID_ARGUMENT", "Requested entity was not found.", "UNREGISTERED"),
            Expect::InvalidToken,
        ),
        (
            "400 INVALID_ARGUMENT, invalid token",
            fcm(400, "INVALID_ARGUMENT", INVALID_TOKEN_MESSAGE, "INVALID_ARGUMENT"),
            Expect::InvalidToken,
        ),
        (
            "400 INVALID_ARGUMENT, other",
            fcm(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'", "INVALID_ARGUMENT"),
            Expect::BadRequest,
        ),
        (
            "400 without details",
            plain(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
            Expect::BadRequest,
        ),
        (
            "403 SENDER_ID_MISMATCH",
            fcm(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
            Expect::InvalidToken,
        ),
        (
            "429 QUOTA_EXCEEDED without Retry-After",
            fcm(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED"),
            Expect::RateLimited(Duration::from_secs(60)),
        ),
        (
            "429 QUOTA_EXCEEDED with Retry-After",
            fcm(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED").header("Retry-After", "120"),
            Expect::RateLimited(Duration::from_secs(120)),
        ),
        (
            "429 without details",
            plain(429, "RESOURCE_EXHAUSTED", "Too many requests."),
            Expect::RateLimited(Duration::from_secs(60)),
        ),
        (
            "503 UNAVAILABLE",
            fcm(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
            Expect::Transient,
        ),
        (
            "503 UNAVAILABLE with Retry-After",
            fcm(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
                .header("Retry-After", "7"),
            Expect::RateLimited(Duration::from_secs(7)),
        ),
        ("500 INTERNAL", fcm(500, "INTERNAL", "Internal error encountered.", "INTERNAL"), Expect::Transient),
        (
            "500 INTERNAL with an HTTP-date Retry-After",
            fcm(500, "INTERNAL", "Internal error encountered.", "INTERNAL")
                .header("Retry-After", &http_date(30)),
            Expect::RateLimited(Duration::from_secs(30)),
        ),
        (
            "500 UNSPECIFIED_ERROR",
            fcm(500, "INTERNAL", "Unknown error.", "UNSPECIFIED_ERROR"),
            Expect::Transient,
        ),
        (
            "401 THIRD_PARTY_AUTH_ERROR",
            fcm(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR"),
            Expect::ConfigError,
        ),
        (
            "401 APNS_AUTH_ERROR",
            fcm(401, "UNAUTHENTICATED", "Auth error from APNS", "APNS_AUTH_ERROR"),
            Expect::ConfigError,
        ),
        (
            "403 PERMISSION_DENIED",
            plain(403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied."),
            Expect::ConfigError,
        ),
        (
            "404 without FcmError (no such project)",
            plain(404, "NOT_FOUND", "Requested entity was not found."),
            Expect::ConfigError,
        ),
        ("413", Fault { status: 413, ..Fault::default() }, Expect::BadRequest),
        (
            "502 from a proxy, not JSON",
            Fault { status: 502, body: Some(json!("<html>Bad Gateway</html>")), ..Fault::default() },
            Expect::Transient,
        ),
        ("connection dropped", Fault { drop_connection: true, ..Fault::default() }, Expect::Transient),
        (
            "200 after a delay",
            Fault::json(200, json!({"name": "projects/callpush-test/messages/1"})).times(1),
            Expect::Delivered,
        ),
    ];
    for (case, fault, expect) in cases {
        let tokens_before = f.token_requests();
        f.emulator.faults().push(Fault { delay_ms: 20, ..fault }.for_token(&device_token));
        let outcome = sender.send(&push(PushKind::Ring, &device_token)).await;
        check(case, &outcome, &expect);
        assert!(
            f.token_requests() <= tokens_before.max(1),
            "{case}: only 401 without FcmError refreshes the token"
        );
    }
    assert_eq!(f.token_requests(), 1, "one access token served the whole matrix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulators_own_checks_are_classified() {
    let f = Fixture::start().await;
    let sender = f.sender();
    let good = token(1);

    // Malformed tokens: not a valid FCM registration token → the installation is pruned.
    for bad in ["short-token".to_owned(), format!("{good}!"), "a".repeat(5000), good.replace(':', "/")] {
        let outcome = sender.send(&push(PushKind::Ring, &bad)).await;
        let SendOutcome::InvalidToken { detail, invalid_since: None } = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(detail.contains(INVALID_TOKEN_MESSAGE), "{detail}");
    }
    // An uninstalled app, a token of another project.
    f.emulator.unregister_token(&token(2));
    check("unregistered", &sender.send(&push(PushKind::Ring, &token(2))).await, &Expect::InvalidToken);
    f.emulator.move_token_to_other_project(&token(3));
    let outcome = sender.send(&push(PushKind::Ring, &token(3))).await;
    check("sender id mismatch", &outcome, &Expect::InvalidToken);
    assert!(format!("{outcome:?}").contains("SENDER_ID_MISMATCH"));

    // Data over 4096 bytes, reserved keys, and the limit exactly.
    let big = push_with(PushKind::Ring, &good, data(&"x".repeat(4096 - "callpush".len() + 1)));
    check("oversize data", &sender.send(&big).await, &Expect::BadRequest);
    let exact = push_with(PushKind::Ring, &good, data(&"x".repeat(4096 - "callpush".len())));
    check("data at the limit", &sender.send(&exact).await, &Expect::Delivered);
    for key in ["from", "gcm", "google.c.a.e", "message_type"] {
        let mut reserved = data("x");
        reserved.insert(key.into(), "v".into());
        check(key, &sender.send(&push_with(PushKind::Ring, &good, reserved)).await, &Expect::BadRequest);
    }

    // A service account of another project: PERMISSION_DENIED → configuration error.
    let other = f.sender_with(|sa| sa["project_id"] = json!("someone-elses-project"));
    let outcome = other.send(&push(PushKind::Ring, &good)).await;
    check("wrong project", &outcome, &Expect::ConfigError);
    assert!(format!("{outcome:?}").contains("PERMISSION_DENIED"));
}

// ---- auth ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_is_made_as_google_requires_and_reused() {
    let f = Fixture::start().await;
    let sender = f.sender();
    for n in 0..3 {
        assert!(matches!(sender.send(&push(PushKind::Ring, &token(n))).await, SendOutcome::Delivered { .. }));
    }
    let tokens = f.requests("/token");
    assert_eq!(tokens.len(), 1, "the token is cached");
    let request = &tokens[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
    assert!(request.body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&"));
    let (header, claims) = logged_assertion(request, &f.emulator.token_url());
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(f.credentials.fcm_private_key_id.as_str()));
    assert_eq!(claims["iss"], f.credentials.fcm_client_email);
    assert_eq!(claims["scope"], FCM_SCOPE);
    assert_eq!(claims["aud"], f.emulator.token_url());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert!((claims["iat"].as_i64().unwrap() - now_secs()).abs() < 10);
    let bearers: Vec<_> = f.sends().iter().map(|r| r.headers["authorization"].clone()).collect();
    assert!(bearers.windows(2).all(|w| w[0] == w[1]), "one token for every send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_wait_for_one_token_fetch() {
    let f = Fixture::start().await;
    // The token endpoint is slow: every send arrives while the first fetch is under way.
    f.emulator
        .token_faults()
        .push(Fault { delay_ms: 500, ..Fault::json(503, json!({"error": "backend_error"})) });
    let sender = Arc::new(f.sender());
    let sends = (0..8).map(|n| {
        let sender = sender.clone();
        tokio::spawn(async move { sender.send(&push(PushKind::Ring, &token(n))).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(sends).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(f.token_requests(), 1, "one fetch, its failure shared: {outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, SendOutcome::Transient { .. })), "{outcomes:?}");

    let sends = (0..8).map(|n| {
        let sender = sender.clone();
        tokio::spawn(async move { sender.send(&push(PushKind::Ring, &token(n))).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(sends).await.into_iter().map(Result::unwrap).collect();
    assert!(outcomes.iter().all(|o| matches!(o, SendOutcome::Delivered { .. })), "{outcomes:?}");
    assert_eq!(f.token_requests(), 2, "one more fetch for all eight sends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_replaced_before_it_expires() {
    let f = Fixture::start().await;
    f.emulator.set_token_lifetime(Duration::from_secs(2));
    let sender = f.sender();
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(1))).await, SendOutcome::Delivered { .. }));
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(1))).await, SendOutcome::Delivered { .. }));
    assert_eq!(f.token_requests(), 1);
    let first = f.sends()[0].headers["authorization"].clone();

    // Half its life is the margin for such a short-lived token: after 1 s a new one is fetched,
    // before FCM would refuse the old one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(1))).await, SendOutcome::Delivered { .. }));
    assert_eq!(f.token_requests(), 2);
    assert!(f.sends().iter().all(|r| r.status == 200), "no send was refused");

    // The emulator refuses the expired one.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let bearer = first.strip_prefix("Bearer ").unwrap();
    let body = json!({"message": {"token": token(1), "data": {"a": "b"}}});
    let (status, answer) = f.post_send("callpush-test", Some(bearer), &body).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(answer["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_once() {
    let f = Fixture::start().await;
    let sender = f.sender();
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(1))).await, SendOutcome::Delivered { .. }));

    // Google revoked the token: the send is refused, a new token fetched, the send retried.
    f.emulator.revoke_access_tokens();
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(1))).await, SendOutcome::Delivered { .. }));
    assert_eq!(f.token_requests(), 2);
    let statuses: Vec<u16> = f.sends().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200]);

    // A refusal that persists after the refresh is a configuration error, with one refresh only.
    let unauthenticated =
        error_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", None);
    f.emulator.faults().push(Fault::json(401, unauthenticated).times(2));
    let outcome = sender.send(&push(PushKind::Ring, &token(1))).await;
    check("401 twice", &outcome, &Expect::ConfigError);
    assert_eq!(f.token_requests(), 3, "refreshed once");
    assert_eq!(f.sends().len(), 5, "retried once");

    // Once the fault is gone the new token works.
    assert!(matches!(sender.send(&push(PushKind::Ring, &token(1))).await, SendOutcome::Delivered { .. }));
    assert_eq!(f.token_requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_failures_are_classified() {
    let f = Fixture::start().await;
    let good = token(1);

    // Credentials the token endpoint refuses (invalid_grant) are configuration errors.
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "a key that is not the account's",
            Box::new(|sa| sa["private_key"] = json!(HARMONY_PRIVATE_KEY)),
            "Invalid JWT Signature.",
        ),
        (
            "an unknown account",
            Box::new(|sa| sa["client_email"] = json!("nobody@elsewhere.iam.gserviceaccount.com")),
            "account not found",
        ),
        ("an unknown key id", Box::new(|sa| sa["private_key_id"] = json!("ffff")), "Invalid JWT Signature."),
    ];
    for (case, change, description) in cases {
        let sender = f.sender_with(change);
        let outcome = sender.send(&push(PushKind::Ring, &good)).await;
        let SendOutcome::ConfigError { detail } = &outcome else { panic!("{case}: {outcome:?}") };
        assert!(detail.contains("invalid_grant") && detail.contains(description), "{case}: {detail}");
    }
    assert!(f.sends().is_empty(), "no message went out without a token");

    // The token endpoint overloaded or throttling: retry later.
    let sender = f.sender();
    f.emulator.token_faults().push(Fault::json(503, json!({"error": "backend_error"})));
    check("token 503", &sender.send(&push(PushKind::Ring, &good)).await, &Expect::Transient);
    f.emulator
        .token_faults()
        .push(Fault::json(503, json!({"error": "backend_error"})).header("Retry-After", "9"));
    check(
        "token 503 + Retry-After",
        &sender.send(&push(PushKind::Ring, &good)).await,
        &Expect::RateLimited(Duration::from_secs(9)),
    );
    f.emulator
        .token_faults()
        .push(Fault::json(429, json!({"error": "rate_limit_exceeded"})).header("Retry-After", "3"));
    check(
        "token 429",
        &sender.send(&push(PushKind::Ring, &good)).await,
        &Expect::RateLimited(Duration::from_secs(3)),
    );
    f.emulator.token_faults().push(Fault { drop_connection: true, ..Fault::default() });
    check("token connection dropped", &sender.send(&push(PushKind::Ring, &good)).await, &Expect::Transient);
    f.emulator.token_faults().push(Fault::json(200, json!({"token_type": "Bearer"})));
    check(
        "token answer without a token",
        &sender.send(&push(PushKind::Ring, &good)).await,
        &Expect::Transient,
    );
    check("then it works", &sender.send(&push(PushKind::Ring, &good)).await, &Expect::Delivered);

    // An unreachable token endpoint is transient; `token_url` overrides the file's token_uri.
    let unreachable = f.sender_with(|sa| sa["token_uri"] = json!("http://127.0.0.1:9/token"));
    check("unreachable", &unreachable.send(&push(PushKind::Ring, &good)).await, &Expect::Transient);
    let mut config = f.config_with(|sa| sa["token_uri"] = json!("http://127.0.0.1:9/token"));
    config.token_url = Some(f.emulator.token_url());
    let overridden = FcmSender::new(&config, &HttpSettings::default()).unwrap();
    check("token_url override", &overridden.send(&push(PushKind::Ring, &good)).await, &Expect::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_service_account_files_are_named_at_startup() {
    let f = Fixture::start().await;
    let error = |change: Change| match FcmSender::new(&f.config_with(change), &HttpSettings::default()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(error(Box::new(|sa| sa["private_key"] = json!("not a key")))
        .contains("`private_key` is not an RSA private key"));
    assert!(error(Box::new(|sa| {
        sa.as_object_mut().unwrap().remove("client_email");
    }))
    .contains("`client_email` is missing"));
    assert!(error(Box::new(|sa| sa["project_id"] = json!(""))).contains("`project_id` is missing"));
    assert!(error(Box::new(|sa| sa["project_id"] = json!("a/b"))).contains("not a Google Cloud project id"));
    assert!(error(Box::new(|sa| sa["type"] = json!("authorized_user"))).contains("not \"service_account\""));
    assert!(error(Box::new(|sa| sa["token_uri"] = json!("ftp://x"))).contains("not an http(s) URL"));
    let missing =
        FcmConfig { service_account_file: PathBuf::from("/nonexistent/sa.json"), ..f.config.clone() };
    let Err(e) = FcmSender::new(&missing, &HttpSettings::default()) else { panic!("accepted") };
    assert!(e.to_string().contains("/nonexistent/sa.json"), "{e}");
    let bad_url = FcmConfig { base_url: "fcm.googleapis.com".into(), ..f.config.clone() };
    assert!(FcmSender::new(&bad_url, &HttpSettings::default()).is_err());
}

// ---- the emulator's checks, request by request ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_checks_the_assertion() {
    let f = Fixture::start().await;
    let now = now_secs();
    let expect_error = |answer: (u16, Value), error: &str, case: &str| {
        assert_eq!(answer.0, 400, "{case}: {}", answer.1);
        assert_eq!(answer.1["error"], error, "{case}: {}", answer.1);
    };
    let (status, answer) = f.post_assertion(&f.assertion(json!({}), None)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["expires_in"], 3599);
    assert_eq!(answer["token_type"], "Bearer");
    // Google's own audience is accepted whatever the token URL (its client libraries send it).
    let (status, answer) = f.post_assertion(&f.assertion(json!({"aud": GOOGLE_TOKEN_AUDIENCE}), None)).await;
    assert_eq!(status, 200, "{answer}");

    let claims_cases = [
        ("expired", json!({"iat": now - 7200, "exp": now - 3600})),
        ("too long-lived", json!({"exp": now + 7200})),
        ("issued in the future", json!({"iat": now + 600, "exp": now + 1200})),
        ("no exp", json!({"exp": null})),
        ("wrong audience", json!({"aud": "https://oauth2.example.com/token"})),
        ("unknown issuer", json!({"iss": "someone@example.com"})),
    ];
    for (case, changes) in claims_cases {
        expect_error(f.post_assertion(&f.assertion(changes, None)).await, "invalid_grant", case);
    }
    expect_error(
        f.post_assertion(&f.assertion(json!({"scope": null}), None)).await,
        "invalid_scope",
        "no scope",
    );
    let (status, answer) =
        f.post_assertion(&f.assertion(json!({}), Some(Header::new(Algorithm::RS256)))).await;
    assert_eq!(status, 200, "an assertion without kid is checked against the account's key: {answer}");
    let mut wrong_kid = Header::new(Algorithm::RS256);
    wrong_kid.kid = Some("another-key".into());
    expect_error(
        f.post_assertion(&f.assertion(json!({}), Some(wrong_kid))).await,
        "invalid_grant",
        "unknown kid",
    );
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"iss": f.credentials.fcm_client_email, "aud": f.emulator.token_url(),
            "iat": now, "exp": now + 60}),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    expect_error(f.post_assertion(&hs256).await, "invalid_grant", "HS256");
    expect_error(f.post_assertion("not.a.jwt").await, "invalid_grant", "garbage");
    // One signature character changed (not the last, whose low bits are padding).
    let mut tampered = f.assertion(json!({}), None).into_bytes();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    expect_error(f.post_assertion(&tampered).await, "invalid_grant", "tampered signature");

    let client = reqwest::Client::new();
    let wrong_grant = client
        .post(f.emulator.token_url())
        .form(&[("grant_type", "client_credentials"), ("assertion", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_grant.status(), 400);
    assert_eq!(wrong_grant.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    let json_body = client
        .post(f.emulator.token_url())
        .json(&json!({"grant_type": JWT_BEARER_GRANT, "assertion": f.assertion(json!({}), None)}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
    assert_eq!(json_body.json::<Value>().await.unwrap()["error"], "invalid_request");
    let get = client.get(f.emulator.token_url()).send().await.unwrap();
    assert_eq!(get.status(), 405);

    // A token whose scopes do not cover FCM is issued, but may not send.
    let (status, answer) = f
        .post_assertion(
            &f.assertion(json!({"scope": "https://www.googleapis.com/auth/userinfo.email"}), None),
        )
        .await;
    assert_eq!(status, 200);
    let narrow = answer["access_token"].as_str().unwrap();
    let (status, answer) =
        f.post_send("callpush-test", Some(narrow), &json!({"message": {"token": token(1)}})).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["status"], "PERMISSION_DENIED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_endpoint_checks_auth_schema_and_limits() {
    let f = Fixture::start().await;
    let bearer = f.access_token().await;
    let good = token(1);
    let mut device = f.hub.subscribe(Platform::Fcm, &good);

    // Authentication and project.
    let body = json!({"message": {"token": good, "data": {"a": "b"}}});
    let (status, answer) = f.post_send("callpush-test", None, &body).await;
    assert_eq!((status, answer["error"]["status"].as_str()), (401, Some("UNAUTHENTICATED")));
    assert!(!answer.to_string().contains("FcmError"), "401 carries no FcmError: {answer}");
    let (status, _) = f.post_send("callpush-test", Some("ya29.made-up"), &body).await;
    assert_eq!(status, 401);
    let (status, answer) = f.post_send("other-project", Some(&bearer), &body).await;
    assert_eq!((status, answer["error"]["status"].as_str()), (403, Some("PERMISSION_DENIED")));

    // Schema: each refused with 400 INVALID_ARGUMENT, nothing delivered.
    let refused = [
        ("a number in data", json!({"message": {"token": good, "data": {"a": 1}}}), "message.data[0].value"),
        ("no target", json!({"message": {"data": {"a": "b"}}}), "Recipient of the message is not set."),
        ("two targets", json!({"message": {"token": good, "topic": "news"}}), "Oneof field 'target'"),
        ("no message", json!({"validate_only": false}), "invalid argument"),
        (
            "an unknown field",
            json!({"message": {"token": good, "priority": "high"}}),
            "Unknown name \\\"priority\\\"",
        ),
        (
            "an unknown android field",
            json!({"message": {"token": good, "android": {"urgency": "HIGH"}}}),
            "Unknown name",
        ),
        (
            "a bad priority",
            json!({"message": {"token": good, "android": {"priority": "URGENT"}}}),
            "AndroidMessagePriority",
        ),
        (
            "a ttl without unit",
            json!({"message": {"token": good, "android": {"ttl": "30"}}}),
            "google.protobuf.Duration",
        ),
        (
            "a numeric ttl",
            json!({"message": {"token": good, "android": {"ttl": 30}}}),
            "google.protobuf.Duration",
        ),
        (
            "a ttl over 4 weeks",
            json!({"message": {"token": good, "android": {"ttl": "2419201s"}}}),
            "2419200",
        ),
        ("a negative ttl", json!({"message": {"token": good, "android": {"ttl": "-1s"}}}), "2419200"),
        (
            "a reserved key",
            json!({"message": {"token": good, "data": {"google.sent_time": "1"}}}),
            "google.sent_time",
        ),
        (
            "a reserved android.data key",
            json!({"message": {"token": good, "android": {"data": {"from": "x"}}}}),
            "from",
        ),
        ("a bad token", json!({"message": {"token": "abc"}}), INVALID_TOKEN_MESSAGE),
        ("an array", json!([1, 2]), "Expected an object"),
    ];
    for (case, body, says) in refused {
        let (status, answer) = f.post_send("callpush-test", Some(&bearer), &body).await;
        assert_eq!(status, 400, "{case}: {answer}");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{case}");
        assert!(answer.to_string().contains(says), "{case}: {answer}");
    }
    let (status, answer) = f
        .post_send("callpush-test", Some(&bearer), &json!({"message": {"token": good, "data": {"a": 1}}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["details"][0],
        json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{
            "field": "message.data[0].value",
            "description": "Invalid value at 'message.data[0].value' (TYPE_STRING), 1"}]})
    );
    assert!(device.try_recv().is_err(), "nothing refused was delivered");

    // Accepted: lowercase priority, fractional ttl, camelCase keys, android.data overriding data.
    let (status, answer) = f
        .post_send(
            "callpush-test",
            Some(&bearer),
            &json!({"message": {"token": good, "data": {"a": "message"},
                "android": {"priority": "high", "ttl": "3.5s", "collapseKey": "c", "data": {"a": "android"},
                    "directBootOk": true}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let Ok(DevicePush::App { raw }) = device.try_recv() else { panic!("delivered") };
    let seen: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        (seen["a"].as_str(), seen["collapse_key"].as_str(), seen["google.ttl"].as_str()),
        (Some("android"), Some("c"), Some("3"))
    );

    // validate_only: the fake id, nothing delivered. Topics: accepted, no device.
    let (status, answer) = f
        .post_send(
            "callpush-test",
            Some(&bearer),
            &json!({"validate_only": true, "message": {"token": good}}),
        )
        .await;
    assert_eq!(
        (status, answer["name"].as_str()),
        (200, Some("projects/callpush-test/messages/fake_message_id"))
    );
    let (status, _) =
        f.post_send("callpush-test", Some(&bearer), &json!({"message": {"topic": "news"}})).await;
    assert_eq!(status, 200);
    assert!(device.try_recv().is_err());

    // Not JSON, wrong content type, wrong method, unknown path: answered, never a panic.
    let client = reqwest::Client::new();
    let send_url = format!("{}/v1/projects/callpush-test/messages:send", f.emulator.base_url());
    for (content_type, body) in [
        ("application/json", b"{not json".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00]),
        ("text/plain", serde_json::to_vec(&json!({"message": {"token": good}})).unwrap()),
        ("application/json", b"null".to_vec()),
        ("application/json", serde_json::to_vec(&json!({"message": "x"})).unwrap()),
        ("application/json", serde_json::to_vec(&json!({"message": {"token": 5}})).unwrap()),
        (
            "application/json",
            serde_json::to_vec(&json!({"message": {"token": good, "android": []}})).unwrap(),
        ),
        ("application/json", serde_json::to_vec(&json!({"message": {"token": good, "data": "x"}})).unwrap()),
        (
            "application/json",
            serde_json::to_vec(&json!({"validate_only": "yes", "message": {"token": good}})).unwrap(),
        ),
    ] {
        let response = client
            .post(&send_url)
            .bearer_auth(&bearer)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{answer}");
    }
    assert_eq!(client.get(&send_url).bearer_auth(&bearer).send().await.unwrap().status(), 404);
    let unknown =
        client.post(format!("{}/v1/projects/x/messages:frobnicate", f.emulator.base_url())).send().await;
    assert_eq!(unknown.unwrap().status(), 404);
    let garbage_auth =
        client.post(&send_url).header("authorization", "Basic Zm9vOmJhcg==").json(&body).send().await;
    assert_eq!(garbage_auth.unwrap().status(), 401);

    // Everything was logged with the status it got.
    let log = f.emulator.faults().received();
    assert!(log.iter().any(|r| r.path.ends_with("messages:frobnicate") && r.status == 404));
    assert!(log.iter().all(|r| r.status != 0), "nothing was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_survives_garbage() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::start().await;
    let bearer = f.access_token().await;
    let client = reqwest::Client::new();
    let send_url = format!("{}/v1/projects/callpush-test/messages:send", f.emulator.base_url());
    // Pseudo-random bodies (a fixed LCG): every one is answered with a 4xx.
    let mut state: u64 = 0x5eed;
    for n in 0..200usize {
        let body: Vec<u8> = (0..(n * 7) % 600)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                // Mostly JSON-ish bytes, so some bodies get past the first checks.
                b"{}[]\":,0123456789abcdefmessagetokendataandroidttlpriority \x00\xff"
                    [(state >> 33) as usize % 60]
            })
            .collect();
        for (url, content_type) in
            [(&send_url, "application/json"), (&f.emulator.token_url(), "application/x-www-form-urlencoded")]
        {
            let response = client
                .post(url.as_str())
                .bearer_auth(&bearer)
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_client_error(), "{n}: {}", response.status());
        }
    }
    // Not HTTP at all: the connection is closed, the emulator goes on.
    let mut raw =
        tokio::net::TcpStream::connect(f.emulator.base_url().trim_start_matches("http://")).await.unwrap();
    raw.write_all(b"\x16\x03\x01 not http\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    let body = json!({"message": {"token": token(1), "data": {"a": "b"}}});
    assert_eq!(f.post_send("callpush-test", Some(&bearer), &body).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_scripted_over_http_and_slow_answers_respect_the_deadline() {
    let f = Fixture::start().await;
    let client = reqwest::Client::new();
    let faults_url = format!("{}/_emulator/faults", f.emulator.base_url());
    let fault = json!({"status": 503, "body": error_body(503, "UNAVAILABLE", "down", Some("UNAVAILABLE")),
        "headers": {"Retry-After": "5"}, "token": token(1)});
    assert_eq!(client.post(&faults_url).json(&fault).send().await.unwrap().status(), 204);
    let sender = f.sender();
    check("other token", &sender.send(&push(PushKind::Ring, &token(2))).await, &Expect::Delivered);
    check(
        "scripted",
        &sender.send(&push(PushKind::Ring, &token(1))).await,
        &Expect::RateLimited(Duration::from_secs(5)),
    );
    check("used up", &sender.send(&push(PushKind::Ring, &token(1))).await, &Expect::Delivered);
    assert_eq!(client.post(&faults_url).json(&fault).send().await.unwrap().status(), 204);
    assert_eq!(client.delete(&faults_url).send().await.unwrap().status(), 204);
    check("cleared", &sender.send(&push(PushKind::Ring, &token(1))).await, &Expect::Delivered);
    let log: Vec<Value> = client
        .get(format!("{}/_emulator/requests", f.emulator.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.iter().filter(|r| r["path"].as_str().unwrap().ends_with(":send")).count(), 4);

    // FCM hanging past the push's deadline: the send gives up by then.
    f.emulator.faults().push(Fault { delay_ms: 5000, ..Fault::json(200, json!({"name": "late"})) });
    let mut soon = push(PushKind::Ring, &token(1));
    soon.expires_at = now_secs() + 1;
    let started = Instant::now();
    check("hung", &sender.send(&soon).await, &Expect::Transient);
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
}

// ---- the whole server ----

async fn start() -> ProviderServer {
    ProviderServer::start(ServerOptions::only(Platform::Fcm)).await
}

/// The call's details once no delivery of `kind` is pending or sending.
async fn settled(s: &ProviderServer, call_id: &str, kind: &str) -> Value {
    s.settled(call_id, Some(kind), Duration::from_secs(15)).await
}

fn pushed(outcome: Outcome) -> impl Fn(&Seen) -> bool {
    move |seen| matches!(seen, Seen::Push(o) if o.outcome == outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_rings_an_android_device_and_cancels_it() {
    let s = start().await;
    let bob = s.device("bob-pixel", "bob", &token(1)).await;

    let call = s.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap();
    let ring = bob.wait_for(0, Duration::from_secs(10), pushed(Outcome::Ring)).await;
    let Some(ring) = ring else { panic!("no ring: {:?}", bob.journal()) };
    let Seen::Push(outcome) = ring.seen else { unreachable!() };
    assert_eq!(outcome.call.as_ref().map(|c| c.call_id.as_str()), Some(call_id));
    let detail = settled(&s, call_id, "ring").await;
    let ring_delivery = &detail["deliveries"][0];
    assert_eq!(
        (ring_delivery["status"].as_str(), ring_delivery["outcome"].as_str()),
        (Some("delivered"), Some("delivered"))
    );

    // The caller hangs up: FCM devices get a cancel push (never a missed-call notification).
    s.post(&format!("/v1/calls/{call_id}/cancel"), json!({})).await;
    let cancel = bob.wait_for(0, Duration::from_secs(10), pushed(Outcome::Cancel)).await;
    assert!(cancel.is_some(), "no cancel: {:?}", bob.journal());
    assert!(!bob.journal().iter().any(|e| matches!(e.seen, Seen::Notification { .. })));
    let bodies: Vec<Value> = requests(&s.emulators.fcm, "/messages:send")
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    // The real client registers a device key (wire v2): the collapse key is a hash of the call
    // id, the same for the ring and the cancel.
    let collapse_key = callpush_server::senders::opaque_call_tag(call_id);
    assert!(bodies.iter().all(|b| b["message"]["android"]["priority"] == "HIGH"
        && b["message"]["android"]["collapse_key"] == collapse_key.as_str()));
    assert_eq!(requests(&s.emulators.fcm, "/token").len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_on_one_device_cancels_the_others() {
    let s = start().await;
    let pixel = s.device("bob-pixel", "bob", &token(1)).await;
    let tablet = s.device("bob-tablet", "bob", &token(2)).await;
    let call = s.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    for device in [&pixel, &tablet] {
        let ring = device.wait_for(0, Duration::from_secs(10), pushed(Outcome::Ring)).await;
        assert!(ring.is_some(), "{}: {:?}", device.name, device.journal());
    }
    pixel.client.answer(call_id.clone()).await.unwrap();
    let cancel = tablet.wait_for(0, Duration::from_secs(10), pushed(Outcome::Cancel)).await;
    assert!(cancel.is_some(), "the tablet stops ringing: {:?}", tablet.journal());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_outage_is_not_retried_past_the_ring_deadline() {
    let s = start().await;
    let bob = s.device("bob-pixel", "bob", &token(1)).await;
    let unavailable =
        error_body(503, "UNAVAILABLE", "The service is currently unavailable.", Some("UNAVAILABLE"));
    s.emulators.fcm.faults().push(Fault::json(503, unavailable).times(10_000).for_token(&bob.token));

    let call = s.ring(&["bob"], json!({"ring_seconds": 5})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    // The exact deadline: created + ring time.
    let created_ms = s.detail(&call_id).await["created_at_ms"].as_i64().unwrap();
    let deadline_ms = created_ms + 5000;
    assert_eq!(call["expires_at_ms"].as_i64().unwrap(), deadline_ms);
    // Watch the sends as they arrive, noting when each came.
    let mut seen_at = Vec::new();
    while now_ms() < deadline_ms + 3000 {
        let n = requests(&s.emulators.fcm, "/messages:send").len();
        while seen_at.len() < n {
            seen_at.push(now_ms());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let detail = settled(&s, &call_id, "ring").await;
    let ring = detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "ring").unwrap().clone();
    let attempts = ring["attempts"].as_i64().unwrap() as usize;
    assert!(attempts >= 2, "a transient failure is retried: {ring}");
    assert!(ring["status"] == "failed" || ring["status"] == "skipped", "{ring}");
    // An attempt that found no time left before the deadline is counted but makes no request.
    let unsent = usize::from(ring["detail"].as_str().is_some_and(|d| d.contains("not sent")));
    let sent = attempts - unsent;
    assert!(seen_at.len() >= sent, "{} requests for {sent} sent attempts: {ring}", seen_at.len());
    // The ring's requests come first (the cancel push follows the timeout); the last one was
    // made before the deadline.
    assert!(
        seen_at[sent - 1] <= deadline_ms + 400,
        "last ring request {} ms after the deadline",
        seen_at[sent - 1] - deadline_ms
    );
    assert_eq!(detail["state"], "missed");
    assert!(!bob.journal().iter().any(|e| matches!(&e.seen, Seen::Push(o) if o.outcome == Outcome::Ring)));
    s.emulators.fcm.faults().clear();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_prunes_the_installation() {
    let s = start().await;
    let bob = s.device("bob-pixel", "bob", &token(1)).await;
    let installation = bob.client.installation_id();
    assert!(s.running.store.installation("bob", &installation).await.unwrap().is_some());

    s.emulators.fcm.unregister_token(&bob.token);
    let call = s.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap();
    let detail = settled(&s, call_id, "ring").await;
    let ring = &detail["deliveries"][0];
    assert_eq!(
        (ring["status"].as_str(), ring["outcome"].as_str()),
        (Some("failed"), Some("invalid_token")),
        "{ring}"
    );
    assert!(ring["detail"].as_str().unwrap().contains("UNREGISTERED"));
    assert!(s.running.store.installation("bob", &installation).await.unwrap().is_none(), "pruned");
    s.stop().await;
}

// ---- an independent client ----

/// The Firebase Admin Python SDK (PyPI `firebase-admin`) sends through the emulator: the
/// emulator accepts what Google's own client sends, and the SDK reads the emulator's errors as
/// it reads FCM's. Runs when `CALLPUSH_TEST_PYTHON` (default `python3`) can import
/// `firebase_admin`; `CALLPUSH_REQUIRE_INDEPENDENT_CLIENT` makes its absence a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firebase_admin_sdk_sends_through_the_emulator() {
    let python = std::env::var("CALLPUSH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = std::process::Command::new(&python)
        .args(["-c", "import firebase_admin"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        assert!(
            std::env::var_os("CALLPUSH_REQUIRE_INDEPENDENT_CLIENT").is_none(),
            "{python} cannot import firebase_admin (pip install firebase-admin)"
        );
        eprintln!("skipping: {python} cannot import firebase_admin (pip install firebase-admin)");
        return;
    }
    let f = Fixture::start().await;
    let good = token(1);
    let dead = token(2);
    f.emulator.unregister_token(&dead);
    let mut device = f.hub.subscribe(Platform::Fcm, &good);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider_fcm/firebase_admin_send.py");
    let args = [
        script.display().to_string(),
        f.config.service_account_file.display().to_string(),
        f.emulator.base_url(),
        good.clone(),
        dead,
    ];
    let output = tokio::task::spawn_blocking(move || std::process::Command::new(python).args(args).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert!(result["name"].as_str().unwrap().starts_with("projects/callpush-test/messages/0:"), "{result}");
    assert_eq!(result["dry_run"], "projects/callpush-test/messages/fake_message_id");
    assert_eq!(result["unregistered"], "UnregisteredError");
    assert_eq!(result["invalid_argument"], "InvalidArgumentError");

    let Ok(DevicePush::App { raw }) = device.try_recv() else {
        panic!("the SDK's message reached the device")
    };
    let seen: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        (seen["callpush"].as_str(), seen["collapse_key"].as_str()),
        (Some("sdk-jws"), Some("call-sdk"))
    );
    assert!(device.try_recv().is_err(), "the dry run was not delivered");
    // The SDK authenticated through the emulator's token endpoint with its own assertion.
    let tokens = f.requests("/token");
    assert_eq!(tokens.len(), 1);
    let (header, claims) = logged_assertion(&tokens[0], GOOGLE_TOKEN_AUDIENCE);
    assert_eq!(header.kid.as_deref(), Some(f.credentials.fcm_private_key_id.as_str()));
    assert!(claims["scope"].as_str().unwrap().contains("https://www.googleapis.com/auth/cloud-platform"));
}
