//! Push Kit v3 (HarmonyOS NEXT): the real sender against the emulator. Every documented error
//! and its outcome class, the emulator's own checks, the JWT's life, batching, what devices
//! receive, and the whole server end to end.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_client::model::{Outcome, Platform};
use callpush_client::wire::{missed_call_message_id, ProviderPayload};
use callpush_emulators::credentials::{TestCredentials, FCM_PRIVATE_KEY, HARMONY_PRIVATE_KEY};
use callpush_emulators::device::{token_for, Seen, SimulatedDevice};
use callpush_emulators::faults::{Fault, Received};
use callpush_emulators::harmony::HarmonyEmulator;
use callpush_emulators::hub::DevicePush;
use callpush_server::config::HarmonyConfig;
use callpush_server::domain::PushKind;
use callpush_server::senders::harmony::{HarmonyOptions, HarmonySender, JWT_AUDIENCE};
use callpush_server::senders::http::HttpSettings;
use callpush_server::senders::{MissedCall, MissedCaller, OutgoingPush, SendOutcome, Sender};
use callpush_server::time::now_secs;
use futures::future::join_all;
use serde_json::{json, Value};
use support::rig::{EmulatorRig, ProviderServer, ServerOptions};

// ---------------------------------------------------------------------------------------------
// The rig: an emulator, its credential files, and senders pointed at it.

type Rig = EmulatorRig<HarmonyEmulator>;

impl Rig {
    fn sender_with(&self, config: &HarmonyConfig, options: HarmonyOptions) -> HarmonySender {
        HarmonySender::with_options(config, &HttpSettings::default(), options).expect("sender")
    }

    /// The configuration with a service-account file edited by `edit`.
    fn config_with_account(&self, name: &str, edit: impl FnOnce(&mut Value)) -> HarmonyConfig {
        let mut account: Value =
            serde_json::from_slice(&std::fs::read(&self.config.service_account_file).unwrap()).unwrap();
        edit(&mut account);
        let path = self.dir.path().join(name);
        std::fs::write(&path, account.to_string()).unwrap();
        HarmonyConfig { service_account_file: path, ..self.config.clone() }
    }

    fn send_url(&self) -> String {
        format!("{}/v3/{}/messages:send", self.emulator.base_url(), self.credentials.harmony_project_id)
    }

    /// The send requests received so far.
    fn sends(&self) -> Vec<Received> {
        sends(&self.emulator)
    }
}

/// The send requests `emulator` received so far.
fn sends(emulator: &HarmonyEmulator) -> Vec<Received> {
    emulator.faults().received().into_iter().filter(|r| r.path.ends_with("/messages:send")).collect()
}

fn ring(token: &str, n: u32) -> OutgoingPush {
    OutgoingPush {
        delivery_id: format!("delivery-{n}"),
        call_id: "call-1".into(),
        installation_id: format!("installation-{n}"),
        platform: Platform::Harmony,
        token: token.into(),
        apns_environment: None,
        kind: PushKind::Ring,
        payload: Some(ProviderPayload::Harmony {
            extra_data:
                json!({ "callpush": format!("eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJkZWxpdmVyeS0{n}In0.c2ln") })
                    .to_string(),
        }),
        missed: None,
        ttl_seconds: 30,
        expires_at: now_secs() + 30,
    }
}

fn missed(token: &str, n: u32) -> OutgoingPush {
    OutgoingPush {
        kind: PushKind::Missed,
        payload: None,
        missed: Some(MissedCall {
            caller: Some(MissedCaller { id: "alice".into(), name: Some("Alice".into()), video: false }),
            app_message_id: missed_call_message_id("call-1"),
        }),
        ttl_seconds: 86_400,
        expires_at: now_secs() + 3600,
        ..ring(token, n)
    }
}

/// Batching with a window that no test machine misses.
fn wide_window() -> HarmonyOptions {
    HarmonyOptions { batch_window: Duration::from_millis(500), ..HarmonyOptions::default() }
}

fn body_of(received: &Received) -> Value {
    serde_json::from_str(&received.body).expect("a JSON body")
}

fn jwt_parts(authorization: &str) -> (Value, Value) {
    let jwt = authorization.strip_prefix("Bearer ").expect("a bearer token");
    let mut parts = jwt.split('.');
    let mut decode =
        || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (decode(), decode())
}

fn harmony_fault(status: u16, code: &str, msg: impl Into<Value>) -> Fault {
    Fault::json(status, json!({ "code": code, "msg": msg.into(), "requestId": "fault-request" }))
}

fn illegal(reason: &str, token: &str) -> String {
    json!({ "illegalTokens": { reason: [token] } }).to_string()
}

// ---------------------------------------------------------------------------------------------
// The fault matrix: every documented answer, scripted, through the real sender.

struct Case {
    name: &'static str,
    faults: Vec<Fault>,
    expect: fn(&SendOutcome) -> bool,
    /// Send requests the push takes (2 when the JWT is refused and made afresh).
    requests: usize,
}

fn case(name: &'static str, fault: Fault, expect: fn(&SendOutcome) -> bool) -> Case {
    Case { name, faults: vec![fault], expect, requests: 1 }
}

fn is_class(outcome: &SendOutcome, class: &str) -> bool {
    outcome.class() == class
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_answer_is_classified() {
    let rig = Rig::start().await;
    let sender = rig.sender();
    let token = token_for(Platform::Harmony, 1);
    let t = token.as_str();
    let date_in_two_minutes = {
        let at = std::time::SystemTime::now() + Duration::from_secs(120);
        httpdate(at)
    };
    let cases = vec![
        case("80000000 success", harmony_fault(200, "80000000", "Success"), |o| {
            *o == SendOutcome::Delivered { provider_id: Some("fault-request".into()) }
        }),
        case(
            "80100000 tokenFormatError",
            harmony_fault(200, "80100000", illegal("tokenFormatError", t)),
            |o| matches!(o, SendOutcome::InvalidToken { invalid_since: None, detail } if detail.contains("tokenFormatError")),
        ),
        case(
            "80100000 tokenPlatformNotSupport",
            harmony_fault(200, "80100000", illegal("tokenPlatformNotSupport", t)),
            |o| is_class(o, "invalid_token"),
        ),
        case(
            "80100000 noPushTypeRight",
            harmony_fault(200, "80100000", illegal("noPushTypeRight", t)),
            |o| is_class(o, "config_error"),
        ),
        case("80100000 noRight", harmony_fault(200, "80100000", illegal("noRight", t)), |o| {
            is_class(o, "config_error")
        }),
        case("80100000 appinfoError", harmony_fault(200, "80100000", illegal("appinfoError", t)), |o| {
            is_class(o, "config_error")
        }),
        case(
            "80100000 penalty",
            harmony_fault(200, "80100000", illegal("disableSendHuaweiMsgBecauseOfPenalty", t)),
            |o| is_class(o, "config_error"),
        ),
        case(
            "80100000 countryNotSupport",
            harmony_fault(200, "80100000", illegal("countryNotSupport", t)),
            |o| is_class(o, "bad_request"),
        ),
        case(
            "80100000 legacy illegal_tokens",
            harmony_fault(
                200,
                "80100000",
                json!({"success": 0, "failure": 1, "illegal_tokens": [t]}).to_string(),
            ),
            |o| is_class(o, "invalid_token"),
        ),
        case(
            "80100000 for another token",
            harmony_fault(200, "80100000", illegal("tokenFormatError", "someoneElsesToken")),
            |o| *o == SendOutcome::Delivered { provider_id: Some("fault-request".into()) },
        ),
        case(
            "80100000 unreadable detail",
            harmony_fault(200, "80100000", "Check Parameter Partial Success."),
            |o| is_class(o, "delivered"),
        ),
        case("80100001", harmony_fault(400, "80100001", "Check Parameter Error."), |o| {
            is_class(o, "bad_request")
        }),
        case(
            "80100003",
            harmony_fault(400, "80100003", "Illegal payload, badge addNum value ranges from 1 to 99"),
            |o| matches!(o, SendOutcome::BadRequest { detail } if detail.contains("80100003") && detail.contains("Illegal payload")),
        ),
        case("80100004", harmony_fault(400, "80100004", "Illegal expire time."), |o| {
            is_class(o, "bad_request")
        }),
        case("80100022", harmony_fault(400, "80100022", "Anti-Spam: image not verify."), |o| {
            is_class(o, "bad_request")
        }),
        case("80300008", harmony_fault(400, "80300008", "Push message size is too long."), |o| {
            is_class(o, "bad_request")
        }),
        case("80300010", harmony_fault(400, "80300010", "token count should within 1 and 1000."), |o| {
            is_class(o, "bad_request")
        }),
        case(
            "80300030",
            harmony_fault(400, "80300030", "When send test message, token count exceed limit."),
            |o| is_class(o, "bad_request"),
        ),
        Case {
            requests: 2,
            ..case("80200001 once", harmony_fault(401, "80200001", "Authentication Error."), |o| {
                is_class(o, "delivered")
            })
        },
        Case {
            requests: 2,
            ..case("80200005 once", harmony_fault(401, "80200005", "Jwt token expired."), |o| {
                is_class(o, "delivered")
            })
        },
        Case {
            requests: 2,
            ..case("80200005 on HTTP 200 once", harmony_fault(200, "80200005", "Jwt token expired."), |o| {
                is_class(o, "delivered")
            })
        },
        Case {
            requests: 2,
            ..case("HTTP 401 without a body once", Fault { status: 401, ..Fault::default() }, |o| {
                is_class(o, "delivered")
            })
        },
        Case {
            requests: 2,
            ..case(
                "80200001 twice",
                harmony_fault(401, "80200001", "Authentication Error.").times(2),
                |o| matches!(o, SendOutcome::ConfigError { detail } if detail.contains("80200001")),
            )
        },
        Case {
            requests: 2,
            ..case("80200005 twice", harmony_fault(401, "80200005", "Jwt token expired.").times(2), |o| {
                is_class(o, "config_error")
            })
        },
        Case {
            requests: 2,
            ..case("HTTP 401 twice", Fault { status: 401, times: 2, ..Fault::default() }, |o| {
                is_class(o, "config_error")
            })
        },
        case(
            "80300002",
            harmony_fault(400, "80300002", "No permission to send message to these tmIDs."),
            |o| is_class(o, "config_error"),
        ),
        case("80300036", harmony_fault(400, "80300036", "JWT expire period over threshold."), |o| {
            is_class(o, "config_error")
        }),
        case(
            "80300037",
            harmony_fault(400, "80300037", "Disable send huawei msg because of penalty."),
            |o| is_class(o, "config_error"),
        ),
        case(
            "80300007 tokenFormatError",
            harmony_fault(400, "80300007", illegal("tokenFormatError", t)),
            |o| is_class(o, "invalid_token"),
        ),
        case(
            "80300007 tokenPlatformNotSupport",
            harmony_fault(400, "80300007", illegal("tokenPlatformNotSupport", t)),
            |o| is_class(o, "invalid_token"),
        ),
        case(
            "80300007 noPushTypeRight",
            harmony_fault(400, "80300007", illegal("noPushTypeRight", t)),
            |o| is_class(o, "config_error"),
        ),
        case(
            "80300007 notSupportPlayVoice",
            harmony_fault(400, "80300007", illegal("notSupportPlayVoice", t)),
            |o| is_class(o, "bad_request"),
        ),
        case(
            "80300007 without a reason",
            harmony_fault(400, "80300007", "All the tokens are invalid."),
            |o| is_class(o, "config_error"),
        ),
        case(
            "80300029 with Retry-After",
            harmony_fault(400, "80300029", "When send test message, the api request exceed limit.")
                .header("Retry-After", "30"),
            |o| matches!(o, SendOutcome::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(30)),
        ),
        case("80300029", harmony_fault(400, "80300029", "exceed limit"), |o| {
            matches!(o, SendOutcome::RateLimited { retry_after: None, .. })
        }),
        case(
            "HTTP 503 with Retry-After seconds",
            Fault::json(503, json!({})).header("Retry-After", "7"),
            |o| matches!(o, SendOutcome::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        ),
        case(
            "HTTP 503 with Retry-After date",
            Fault { status: 503, ..Fault::default() }.header("Retry-After", &date_in_two_minutes),
            |o| {
                matches!(o, SendOutcome::RateLimited { retry_after: Some(d), .. }
                    if *d <= Duration::from_secs(120) && *d >= Duration::from_secs(100))
            },
        ),
        case("HTTP 503", Fault { status: 503, ..Fault::default() }, |o| {
            matches!(o, SendOutcome::RateLimited { retry_after: None, .. })
        }),
        case("HTTP 500", Fault { status: 500, ..Fault::default() }, |o| is_class(o, "transient")),
        case(
            "HTTP 502 text",
            Fault { status: 502, body: Some(json!("Bad Gateway")), ..Fault::default() },
            |o| is_class(o, "transient"),
        ),
        case("81000001", harmony_fault(500, "81000001", "Inner Error."), |o| is_class(o, "transient")),
        case("81000001 on HTTP 200", harmony_fault(200, "81000001", "Inner Error."), |o| {
            is_class(o, "transient")
        }),
        case(
            "HTTP 404",
            Fault { status: 404, body: Some(json!("Not Found")), ..Fault::default() },
            |o| matches!(o, SendOutcome::ConfigError { detail } if detail.contains("base_url")),
        ),
        case("connection dropped", Fault { drop_connection: true, ..Fault::default() }, |o| {
            is_class(o, "transient")
        }),
        case("slow success", Fault { delay_ms: 300, ..harmony_fault(200, "80000000", "Success") }, |o| {
            is_class(o, "delivered")
        }),
    ];
    for case in cases {
        rig.emulator.faults().clear();
        for fault in &case.faults {
            rig.emulator.faults().push(fault.clone().for_token(t));
        }
        let before = rig.sends().len();
        let outcome = sender.send(&ring(t, 1)).await;
        assert!((case.expect)(&outcome), "{}: got {outcome:?}", case.name);
        assert_eq!(rig.sends().len() - before, case.requests, "{}: requests sent", case.name);
    }
}

/// An IMF-fixdate, for `Retry-After`.
fn httpdate(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

// ---------------------------------------------------------------------------------------------
// The emulator's real checks, through the sender.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_checks_through_the_sender() {
    let rig = Rig::start().await;
    let sender = rig.sender();

    // A token Push Kit cannot have issued: every token bad → 80300007 tokenFormatError.
    let outcome = sender.send(&ring("MAMzLg.dead~token.0001", 1)).await;
    assert!(
        matches!(&outcome, SendOutcome::InvalidToken { invalid_since: None, detail } if detail.contains("tokenFormatError")),
        "{outcome:?}"
    );
    assert_eq!(body_of(&rig.sends()[0])["target"]["token"][0], "MAMzLg.dead~token.0001");

    // Over 4096 bytes without the tokens → 80300008.
    let mut big = ring(&token_for(Platform::Harmony, 1), 1);
    big.payload =
        Some(ProviderPayload::Harmony { extra_data: json!({ "callpush": "x".repeat(4100) }).to_string() });
    let outcome = sender.send(&big).await;
    assert!(
        matches!(&outcome, SendOutcome::BadRequest { detail } if detail.contains("80300008")),
        "{outcome:?}"
    );

    // A key file of another project → 80300002, not an auth refusal: one request.
    let before = rig.sends().len();
    let other_project =
        rig.config_with_account("other-project.json", |a| a["project_id"] = json!("999999999"));
    let outcome =
        rig.sender_with(&other_project, HarmonyOptions::default()).send(&ring("MAMzLg00000001AAAA", 1)).await;
    assert!(
        matches!(&outcome, SendOutcome::ConfigError { detail } if detail.contains("80300002")),
        "{outcome:?}"
    );
    assert_eq!(rig.sends().len() - before, 1);

    // Credentials Push Kit does not accept: refused, made afresh, refused again → ConfigError.
    let wrong_key = rig.config_with_account("wrong-key.json", |a| a["private_key"] = json!(FCM_PRIVATE_KEY));
    let wrong_kid = rig.config_with_account("wrong-kid.json", |a| a["key_id"] = json!("another-key"));
    let wrong_iss = rig.config_with_account("wrong-iss.json", |a| a["sub_account"] = json!("100000002"));
    for (name, config) in
        [("bad signature", &wrong_key), ("unknown kid", &wrong_kid), ("wrong iss", &wrong_iss)]
    {
        let before = rig.sends().len();
        let outcome =
            rig.sender_with(config, HarmonyOptions::default()).send(&ring("MAMzLg00000001AAAA", 1)).await;
        assert!(
            matches!(&outcome, SendOutcome::ConfigError { detail } if detail.contains("80200001")),
            "{name}: {outcome:?}"
        );
        let sends = rig.sends();
        assert_eq!(sends.len() - before, 2, "{name}: one retry with a fresh JWT");
        assert!(sends[before..].iter().all(|r| r.status == 401), "{name}");
    }

    // A clock two hours slow makes JWTs that expired an hour ago → 80200005, twice → ConfigError.
    let slow = HarmonyOptions { clock: Arc::new(|| now_secs() - 7200), ..HarmonyOptions::default() };
    let outcome = rig.sender_with(&rig.config, slow).send(&ring("MAMzLg00000001AAAA", 1)).await;
    assert!(
        matches!(&outcome, SendOutcome::ConfigError { detail } if detail.contains("80200005")),
        "{outcome:?}"
    );

    // A base URL that is not Push Kit's → 404 → ConfigError.
    let wrong_url =
        HarmonyConfig { base_url: format!("{}/push", rig.emulator.base_url()), ..rig.config.clone() };
    let outcome =
        rig.sender_with(&wrong_url, HarmonyOptions::default()).send(&ring("MAMzLg00000001AAAA", 1)).await;
    assert!(is_class(&outcome, "config_error"), "{outcome:?}");

    // Nobody listening → Transient.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nowhere = HarmonyConfig { base_url: format!("http://{closed}"), ..rig.config.clone() };
    let outcome =
        rig.sender_with(&nowhere, HarmonyOptions::default()).send(&ring("MAMzLg00000001AAAA", 1)).await;
    assert!(is_class(&outcome, "transient"), "{outcome:?}");
}

#[tokio::test]
async fn key_files_are_checked_when_the_sender_is_made() {
    let rig = Rig::start().await;
    let http = HttpSettings::default();
    let error = |config: &HarmonyConfig| match HarmonySender::new(config, &http) {
        Ok(_) => panic!("{config:?} was accepted"),
        Err(e) => e.to_string(),
    };
    let missing =
        HarmonyConfig { service_account_file: rig.dir.path().join("nope.json"), ..rig.config.clone() };
    assert!(error(&missing).contains("nope.json"));
    let not_json = rig.dir.path().join("not-json.json");
    std::fs::write(&not_json, "-----BEGIN PRIVATE KEY-----").unwrap();
    assert!(error(&HarmonyConfig { service_account_file: not_json, ..rig.config.clone() }).contains("JSON"));
    let no_kid = rig.config_with_account("no-kid.json", |a| a["key_id"] = json!(""));
    assert!(error(&no_kid).contains("key_id"));
    let no_sub = rig.config_with_account("no-sub.json", |a| {
        a.as_object_mut().unwrap().remove("sub_account");
    });
    assert!(error(&no_sub).contains("sub_account"));
    let bad_key = rig.config_with_account("bad-key.json", |a| a["private_key"] = json!("not a key"));
    assert!(error(&bad_key).contains("private_key"));
    let ec_key = rig.config_with_account("ec-key.json", |a| {
        a["private_key"] = json!(callpush_emulators::credentials::APNS_PRIVATE_KEY)
    });
    assert!(error(&ec_key).contains("private_key"));
    let bad_project = rig.config_with_account("bad-project.json", |a| a["project_id"] = json!("../x"));
    assert!(error(&bad_project).contains("project_id"));
    assert!(error(&HarmonyConfig { base_url: "push-api.cloud.huawei.com".into(), ..rig.config.clone() })
        .contains("base_url"));
    assert!(HarmonySender::new(&rig.config, &http).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The emulator's real checks, with hand-made requests.

fn sign(header: Value, claims: Value) -> String {
    let mut head = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    head.typ = header["typ"].as_str().map(str::to_owned);
    head.kid = header["kid"].as_str().map(str::to_owned);
    if let Some(alg) = header["alg"].as_str() {
        head.alg = alg.parse().unwrap();
    }
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(HARMONY_PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&head, &claims, &key).unwrap()
}

fn good_jwt(c: &TestCredentials) -> String {
    sign(
        json!({"kid": c.harmony_key_id, "typ": "JWT"}),
        json!({"iss": c.harmony_sub_account, "aud": JWT_AUDIENCE, "iat": now_secs(), "exp": now_secs() + 3600}),
    )
}

async fn post(
    url: &str,
    jwt: Option<&str>,
    push_type: Option<&str>,
    content_type: &str,
    body: impl Into<String>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).header("content-type", content_type).body(body.into());
    if let Some(jwt) = jwt {
        request = request.header("authorization", format!("Bearer {jwt}"));
    }
    if let Some(push_type) = push_type {
        request = request.header("push-type", push_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn call_body(tokens: &[&str]) -> Value {
    json!({
        "payload": {"extraData": "{\"callpush\":\"a.b.c\"}"},
        "target": {"token": tokens},
        "pushOptions": {"ttl": 30, "biTag": "call-1", "testMessage": false},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_checks_what_push_kit_checks() {
    let rig = Rig::start().await;
    let c = &rig.credentials;
    let url = rig.send_url();
    let jwt = good_jwt(c);
    let token = token_for(Platform::Harmony, 1);
    let ok_body = call_body(&[&token]).to_string();
    let json_type = "application/json";
    let send = |jwt: Option<String>, push_type: Option<&'static str>, body: String| {
        let url = url.clone();
        async move { post(&url, jwt.as_deref(), push_type, "application/json", body).await }
    };
    let code = |answer: &(u16, Value)| (answer.0, answer.1["code"].as_str().unwrap_or_default().to_owned());

    // The request as documented is accepted.
    let answer = send(Some(jwt.clone()), Some("10"), ok_body.clone()).await;
    assert_eq!(code(&answer), (200, "80000000".into()), "{answer:?}");
    assert_eq!(answer.1["msg"], "Success");
    assert!(answer.1["requestId"].as_str().is_some_and(|id| !id.is_empty()));

    // Authentication.
    let iat = now_secs();
    let claims = |iat: i64, exp: i64| json!({"iss": c.harmony_sub_account, "aud": JWT_AUDIENCE, "iat": iat, "exp": exp});
    let header = json!({"kid": c.harmony_key_id, "typ": "JWT"});
    let cases: Vec<(&str, Option<String>, (u16, &str))> = vec![
        ("no Authorization", None, (401, "80200001")),
        ("garbled", Some("not-a-jwt".into()), (401, "80200001")),
        ("expired", Some(sign(header.clone(), claims(iat - 7200, iat - 3600))), (401, "80200005")),
        ("valid for two days", Some(sign(header.clone(), claims(iat, iat + 2 * 86_400))), (400, "80300036")),
        // The guide: exp is 3600 s after iat; a second more is over.
        (
            "valid for an hour and a second",
            Some(sign(header.clone(), claims(iat, iat + 3601))),
            (400, "80300036"),
        ),
        (
            "valid for an hour from a minute ago",
            Some(sign(header.clone(), claims(iat - 60, iat + 3540))),
            (200, "80000000"),
        ),
        (
            "RS256",
            Some(sign(
                json!({"kid": c.harmony_key_id, "typ": "JWT", "alg": "RS256"}),
                claims(iat, iat + 3600),
            )),
            (401, "80200001"),
        ),
        (
            "unknown kid",
            Some(sign(json!({"kid": "nope", "typ": "JWT"}), claims(iat, iat + 3600))),
            (401, "80200001"),
        ),
        ("no kid", Some(sign(json!({"typ": "JWT"}), claims(iat, iat + 3600))), (401, "80200001")),
        (
            "wrong iss",
            Some(sign(
                header.clone(),
                json!({"iss": "someone", "aud": JWT_AUDIENCE, "iat": iat, "exp": iat + 3600}),
            )),
            (401, "80200001"),
        ),
        (
            "wrong aud",
            Some(sign(
                header.clone(),
                json!({"iss": c.harmony_sub_account, "aud": "https://example.com", "iat": iat, "exp": iat + 3600}),
            )),
            (401, "80200001"),
        ),
        (
            "no iat",
            Some(sign(
                header.clone(),
                json!({"iss": c.harmony_sub_account, "aud": JWT_AUDIENCE, "exp": iat + 3600}),
            )),
            (401, "80200001"),
        ),
        (
            "signed with another key",
            Some({
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(FCM_PRIVATE_KEY.as_bytes()).unwrap();
                let mut head = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
                head.kid = Some(c.harmony_key_id.clone());
                head.typ = Some("JWT".into());
                jsonwebtoken::encode(&head, &claims(iat, iat + 3600), &key).unwrap()
            }),
            (401, "80200001"),
        ),
    ];
    for (name, jwt, expected) in cases {
        let answer = send(jwt, Some("10"), ok_body.clone()).await;
        assert_eq!(code(&answer), (expected.0, expected.1.to_owned()), "{name}: {answer:?}");
    }

    // The project in the URL.
    let other = format!("{}/v3/999/messages:send", rig.emulator.base_url());
    let answer = post(&other, Some(&jwt), Some("10"), json_type, ok_body.clone()).await;
    assert_eq!(code(&answer), (400, "80300002".into()));

    // Headers.
    for (name, push_type, content_type) in [
        ("no push-type", None, json_type),
        ("unknown push-type", Some("99"), json_type),
        ("push-type outside the table", Some("8"), json_type),
        ("push-type not a number", Some("ten"), json_type),
        ("push-type with a sign", Some("+10"), json_type),
        ("not JSON", Some("10"), "text/plain"),
    ] {
        let answer = post(&url, Some(&jwt), push_type, content_type, ok_body.clone()).await;
        assert_eq!(code(&answer), (400, "80100001".into()), "{name}");
    }

    // Body schema.
    let bodies: Vec<(&str, &str, Value, &str)> = vec![
        ("not JSON", "10", json!("{"), "80100001"),
        ("no payload", "10", json!({"target": {"token": [token]}}), "80100001"),
        ("no target", "10", json!({"payload": {"extraData": "x"}}), "80100001"),
        (
            "tokens not strings",
            "10",
            json!({"payload": {"extraData": "x"}, "target": {"token": [1]}}),
            "80100001",
        ),
        ("no extraData", "10", json!({"payload": {}, "target": {"token": [token]}}), "80100003"),
        (
            "empty extraData",
            "10",
            json!({"payload": {"extraData": ""}, "target": {"token": [token]}}),
            "80100003",
        ),
        (
            "no notification",
            "0",
            json!({"payload": {"extraData": "x"}, "target": {"token": [token]}}),
            "80100003",
        ),
        (
            "unknown category",
            "0",
            json!({"payload": {"notification": {"category": "CALLS", "title": "t", "body": "b", "clickAction": {"actionType": 0}}}, "target": {"token": [token]}}),
            "80100003",
        ),
        (
            "no title",
            "0",
            json!({"payload": {"notification": {"category": "MISS_CALL", "body": "b", "clickAction": {"actionType": 0}}}, "target": {"token": [token]}}),
            "80100003",
        ),
        (
            "no clickAction",
            "0",
            json!({"payload": {"notification": {"category": "MISS_CALL", "title": "t", "body": "b"}}, "target": {"token": [token]}}),
            "80100003",
        ),
        (
            "ttl 0",
            "10",
            json!({"payload": {"extraData": "x"}, "target": {"token": [token]}, "pushOptions": {"ttl": 0}}),
            "80100004",
        ),
        (
            "ttl over 15 days",
            "10",
            json!({"payload": {"extraData": "x"}, "target": {"token": [token]}, "pushOptions": {"ttl": 1_296_001}}),
            "80100004",
        ),
        (
            "biTag too long",
            "10",
            json!({"payload": {"extraData": "x"}, "target": {"token": [token]}, "pushOptions": {"biTag": "b".repeat(65)}}),
            "80100001",
        ),
        (
            "testMessage not a boolean",
            "10",
            json!({"payload": {"extraData": "x"}, "target": {"token": [token]}, "pushOptions": {"testMessage": "yes"}}),
            "80100001",
        ),
        ("no tokens", "10", call_body(&[]), "80300010"),
        ("1001 tokens", "10", call_body(&vec![token.as_str(); 1001]), "80300010"),
        (
            "11 tokens in a test message",
            "10",
            json!({"payload": {"extraData": "x"}, "target": {"token": vec![token.as_str(); 11]}, "pushOptions": {"testMessage": true}}),
            "80300030",
        ),
        (
            "4097 bytes",
            "10",
            json!({"payload": {"extraData": "x".repeat(4096)}, "target": {"token": [token]}}),
            "80300008",
        ),
    ];
    for (name, push_type, body, expected) in bodies {
        let body = match body {
            Value::String(raw) => raw,
            other => other.to_string(),
        };
        let answer = post(&url, Some(&jwt), Some(push_type), json_type, body).await;
        assert_eq!(answer.1["code"], expected, "{name}: {answer:?}");
        assert_eq!(answer.0, 400, "{name}");
    }

    // Every push-type of the guide's table is accepted, each with its own checks.
    let notification =
        json!({"category": "MISS_CALL", "title": "t", "body": "b", "clickAction": {"actionType": 0}});
    let form = json!({"moduleName": "entry", "abilityName": "EntryFormAbility", "formName": "widget",
                      "formId": 423_434_262, "version": 123_456, "formData": {"text_key": "text"}});
    let with = |payload: Value, options: Value| {
        json!({"payload": payload, "target": {"token": [token]}, "pushOptions": options}).to_string()
    };
    let ttl = json!({"ttl": 30});
    let accepted: Vec<(&str, &str, String)> = vec![
        ("alert", "0", with(json!({"notification": notification}), json!({}))),
        ("card refresh", "1", with(form.clone(), json!({}))),
        ("card refresh, one token as a test message", "1", with(form.clone(), json!({"testMessage": true}))),
        (
            "notification extension",
            "2",
            with(json!({"notification": notification, "extraData": "x"}), json!({})),
        ),
        ("background", "6", with(json!({"extraData": "x", "proxyData": "ENABLE"}), json!({}))),
        ("background without proxy", "6", with(json!({"extraData": "x"}), json!({}))),
        ("Live View", "7", with(json!({"activityId": 1, "operation": 0}), json!({}))),
        ("location", "9", with(json!({"extraData": "x"}), json!({}))),
        ("in-app call, ttl 30", "10", with(json!({"extraData": "x"}), ttl.clone())),
        ("in-app call, ttl 60", "10", with(json!({"extraData": "x"}), json!({"ttl": 60}))),
    ];
    for (name, push_type, body) in accepted {
        let answer = post(&url, Some(&jwt), Some(push_type), json_type, body).await;
        assert_eq!(code(&answer), (200, "80000000".into()), "{name}: {answer:?}");
    }
    let refused: Vec<(&str, &str, String, &str)> = vec![
        ("card refresh without formId", "1", with(json!({"formData": {}}), json!({})), "80100003"),
        ("card refresh, formId over 2^31 - 1", "1", with(json!({"formId": 2_147_483_648_i64}), json!({})), "80100003"),
        ("card refresh, formId negative", "1", with(json!({"formId": -1}), json!({})), "80100003"),
        ("card refresh, formData not an object", "1", with(json!({"formId": 1, "formData": "x"}), json!({})), "80100003"),
        ("card refresh, version not a number", "1", with(json!({"formId": 1, "version": "2"}), json!({})), "80100003"),
        (
            "card refresh, two tokens as a test message",
            "1",
            json!({"payload": form, "target": {"token": [token, token]}, "pushOptions": {"testMessage": true}}).to_string(),
            "80300030",
        ),
        ("extension without notification", "2", with(json!({"extraData": "x"}), json!({})), "80100003"),
        ("extension, extraData not a string", "2", with(json!({"notification": notification, "extraData": 1}), json!({})), "80100003"),
        ("background without extraData", "6", with(json!({"proxyData": "ENABLE"}), json!({})), "80100003"),
        ("background, proxyData lower case", "6", with(json!({"extraData": "x", "proxyData": "enable"}), json!({})), "80100003"),
        ("Live View, empty payload", "7", with(json!({}), json!({})), "80100003"),
        ("location, empty payload", "9", with(json!({}), json!({})), "80100003"),
        // In-app call messages live 30 to 60 s.
        ("in-app call, ttl 29", "10", with(json!({"extraData": "x"}), json!({"ttl": 29})), "80100004"),
        ("in-app call, ttl 61", "10", with(json!({"extraData": "x"}), json!({"ttl": 61})), "80100004"),
        ("in-app call, a day", "10", with(json!({"extraData": "x"}), json!({"ttl": 86_400})), "80100004"),
        ("in-app call, no ttl (a day by default)", "10", with(json!({"extraData": "x"}), json!({})), "80100004"),
    ];
    for (name, push_type, body, expected) in refused {
        let answer = post(&url, Some(&jwt), Some(push_type), json_type, body).await;
        assert_eq!(code(&answer), (400, expected.into()), "{name}: {answer:?}");
    }

    // The size limit excludes tokens: a 4000-byte payload to 1000 long tokens passes.
    let tokens: Vec<String> = (0..1000).map(|n| token_for(Platform::Harmony, n)).collect();
    let body =
        json!({"payload": {"extraData": "x".repeat(4000)}, "target": {"token": tokens}, "pushOptions": ttl});
    assert!(body.to_string().len() > 60_000);
    let answer = post(&url, Some(&jwt), Some("10"), json_type, body.to_string()).await;
    assert_eq!(code(&answer), (200, "80000000".into()), "{answer:?}");

    // Token format: some bad → 80100000 with the bad ones; all bad → 80300007.
    let mut device = rig.hub.subscribe(Platform::Harmony, &token);
    let answer = send(
        Some(jwt.clone()),
        Some("10"),
        call_body(&[&token, "short", "has space 0123456789"]).to_string(),
    )
    .await;
    assert_eq!(code(&answer), (200, "80100000".into()), "{answer:?}");
    let detail: Value = serde_json::from_str(answer.1["msg"].as_str().unwrap()).unwrap();
    assert_eq!(detail["illegalTokens"]["tokenFormatError"], json!(["short", "has space 0123456789"]));
    assert_eq!(detail["success"], 1);
    assert!(matches!(device.try_recv(), Ok(DevicePush::App { .. })), "the good token got its push");
    let answer = send(Some(jwt.clone()), Some("10"), call_body(&["MAMzLg:colon:0001"]).to_string()).await;
    assert_eq!(code(&answer), (400, "80300007".into()), "{answer:?}");

    // Not the send API.
    for path in ["/v1/123/messages:send", "/v3/messages:send", "/v3/1/2/messages:send"] {
        let answer = post(
            &format!("{}{path}", rig.emulator.base_url()),
            Some(&jwt),
            Some("10"),
            json_type,
            ok_body.clone(),
        )
        .await;
        assert_eq!(answer.0, 404, "{path}");
    }
    let get = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);

    // Every request is logged, control routes work over HTTP too.
    let log: Vec<Value> = reqwest::get(format!("{}/_emulator/requests", rig.emulator.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), rig.emulator.faults().received().len());
    assert!(log.iter().any(|r| r["status"] == 405));
    let added = reqwest::Client::new()
        .post(format!("{}/_emulator/faults", rig.emulator.base_url()))
        .json(&json!({"status": 503, "headers": {"Retry-After": "3"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 204);
    let response = reqwest::Client::new()
        .post(&url)
        .header("authorization", format!("Bearer {jwt}"))
        .header("push-type", "10")
        .header("content-type", json_type)
        .body(ok_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "3");
    // Garbage never brings it down.
    let answer = post(
        &url,
        Some(&jwt),
        Some("10"),
        json_type,
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00]).into_owned(),
    )
    .await;
    assert_eq!(code(&answer), (400, "80100001".into()));
}

// ---------------------------------------------------------------------------------------------
// An independent client: Huawei's documented recipe in Python (PyJWT, cryptography, requests).
// No Push Kit v3 server SDK that can target another endpoint is published in a registry.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_is_accepted() {
    let python = std::env::var("CALLPUSH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe =
        std::process::Command::new(&python).args(["-c", "import jwt, cryptography, requests"]).output();
    if !matches!(&probe, Ok(output) if output.status.success()) {
        assert!(
            std::env::var_os("CALLPUSH_REQUIRE_INDEPENDENT_CLIENT").is_none(),
            "{python} cannot import jwt, cryptography and requests (set CALLPUSH_TEST_PYTHON)"
        );
        eprintln!(
            "skipping the independent-client test: it needs python3 with PyJWT, cryptography and requests \
             (pip install pyjwt cryptography requests)"
        );
        return;
    }
    let rig = Rig::start().await;
    let token = token_for(Platform::Harmony, 5);
    let mut device = rig.hub.subscribe(Platform::Harmony, &token);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/provider_harmony/independent_client.py");
    let args = [
        script.display().to_string(),
        rig.emulator.base_url(),
        rig.config.service_account_file.display().to_string(),
        token.clone(),
    ];
    let output = tokio::task::spawn_blocking(move || std::process::Command::new(python).args(args).output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    for answer in &answers {
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["answer"]["code"], "80000000", "{answer}");
    }
    let Ok(DevicePush::App { raw }) = device.try_recv() else { panic!("no call push") };
    let delivered: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(delivered["data"].as_str().unwrap()).unwrap()["callpush"],
        "a.b.c"
    );
    assert!(
        matches!(device.try_recv(), Ok(DevicePush::Notification { id: Some(id), .. }) if id == "missed-independent")
    );
    // PyJWT's PS256 (its own PSS encoding) verified; the header is the documented one.
    let (header, _) = jwt_parts(&rig.sends()[0].headers["authorization"]);
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("PS256"), Some("JWT")));
}

// ---------------------------------------------------------------------------------------------
// What is sent, and what devices receive.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_what_push_kit_documents_and_devices_get_what_harmonyos_hands_over() {
    let rig = Rig::start().await;
    let sender = rig.sender();
    let token = token_for(Platform::Harmony, 7);
    let mut device = rig.hub.subscribe(Platform::Harmony, &token);

    // A ring: push-type 10, extraData as given, ttl, biTag, testMessage.
    let push = ring(&token, 7);
    let outcome = sender.send(&push).await;
    let SendOutcome::Delivered { provider_id: Some(request_id) } = &outcome else { panic!("{outcome:?}") };
    assert!(!request_id.is_empty());
    let request = rig.sends().pop().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v3/{}/messages:send", rig.credentials.harmony_project_id));
    assert_eq!(request.headers["push-type"], "10");
    assert_eq!(request.headers["content-type"], "application/json");
    let body = body_of(&request);
    let Some(ProviderPayload::Harmony { extra_data }) = &push.payload else { unreachable!() };
    assert_eq!(
        body,
        json!({
            "payload": {"extraData": extra_data},
            "target": {"token": [token]},
            "pushOptions": {"ttl": 30, "biTag": "call-1", "testMessage": false},
        })
    );
    let Ok(DevicePush::App { raw }) = device.try_recv() else { panic!("the device got no call push") };
    let delivered: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(delivered["data"], *extra_data);
    // `header` is a string, as the receiveMessage interface declares it.
    let header: Value =
        serde_json::from_str(delivered["header"].as_str().expect("header is a string")).unwrap();
    assert_eq!(header["token"], token);
    let first_call_id = delivered["callId"].as_str().unwrap().to_owned();
    assert!(!first_call_id.is_empty());

    // Each push gets its own system call id.
    sender.send(&ring(&token, 8)).await;
    let Ok(DevicePush::App { raw }) = device.try_recv() else { panic!("no second push") };
    assert_ne!(serde_json::from_str::<Value>(&raw).unwrap()["callId"], first_call_id.as_str());

    // A ring with a second left, or with two minutes, still lives 30 to 60 s in Push Kit: the
    // device refuses it past its deadline by itself.
    for (left, ttl) in [(0, 30), (1, 30), (45, 45), (120, 60)] {
        let short = OutgoingPush { ttl_seconds: left, ..ring(&token, 9) };
        assert!(is_class(&sender.send(&short).await, "delivered"), "{left}");
        let request = rig.sends().pop().unwrap();
        assert_eq!(
            (request.headers["push-type"].as_str(), body_of(&request)["pushOptions"]["ttl"].clone()),
            ("10", json!(ttl))
        );
        device.try_recv().unwrap();
    }

    // A cancel never goes out as an in-app call message (never hang up through one): it is
    // refused before any request, whatever it carries.
    let before = rig.sends().len();
    for ttl_seconds in [0, 30, 86_400] {
        let cancel = OutgoingPush { kind: PushKind::Cancel, ttl_seconds, ..ring(&token, 9) };
        let outcome = sender.send(&cancel).await;
        assert!(is_class(&outcome, "bad_request"), "{outcome:?}");
    }
    assert_eq!(rig.sends().len(), before, "no cancel reached Push Kit");
    assert!(device.try_recv().is_err());

    // A missed call: push-type 0, a MISS_CALL notification with the shared appMessageId.
    assert!(is_class(&sender.send(&missed(&token, 7)).await, "delivered"));
    let request = rig.sends().pop().unwrap();
    assert_eq!(request.headers["push-type"], "0");
    assert_eq!(
        body_of(&request),
        json!({
            "payload": {"notification": {
                "category": "MISS_CALL",
                "title": "Missed call",
                "body": "Alice called",
                "clickAction": {"actionType": 0},
                "appMessageId": missed_call_message_id("call-1"),
            }},
            "target": {"token": [token]},
            "pushOptions": {"ttl": 86_400, "biTag": "call-1", "testMessage": false},
        })
    );
    assert_eq!(
        device.try_recv().unwrap(),
        DevicePush::Notification {
            title: "Missed call".into(),
            body: "Alice called".into(),
            id: Some(missed_call_message_id("call-1")),
            category: Some("MISS_CALL".into()),
        }
    );

    // A video call from someone without a name.
    let mut video = missed(&token, 7);
    if let Some(caller) = video.missed.as_mut().and_then(|m| m.caller.as_mut()) {
        caller.video = true;
        caller.name = None;
    }
    video.call_id = format!("call-{}", "é".repeat(40));
    sender.send(&video).await;
    let body = body_of(&rig.sends().pop().unwrap());
    assert_eq!(body["payload"]["notification"]["title"], "Missed video call");
    assert_eq!(body["payload"]["notification"]["body"], "alice called");
    assert!(body["pushOptions"]["biTag"].as_str().unwrap().len() <= 64);

    // A push for a device that is offline is accepted all the same.
    assert!(is_class(&sender.send(&ring(&token_for(Platform::Harmony, 99), 1)).await, "delivered"));

    // A push without what it needs is refused before anything is sent.
    let before = rig.sends().len();
    assert!(is_class(&sender.send(&OutgoingPush { payload: None, ..ring(&token, 1) }).await, "bad_request"));
    let fcm =
        OutgoingPush { payload: Some(ProviderPayload::Fcm { data: Default::default() }), ..ring(&token, 1) };
    assert!(is_class(&sender.send(&fcm).await, "bad_request"));
    assert!(is_class(&sender.send(&OutgoingPush { missed: None, ..missed(&token, 1) }).await, "bad_request"));
    assert_eq!(rig.sends().len(), before);
}

// ---------------------------------------------------------------------------------------------
// The JWT: made, cached, reused, renewed, refreshed once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_is_made_once_reused_and_renewed_near_expiry() {
    let rig = Rig::start().await;
    let offset = Arc::new(AtomicI64::new(0));
    let clock = {
        let offset = offset.clone();
        Arc::new(move || now_secs() + offset.load(Ordering::SeqCst))
    };
    let sender = rig.sender_with(&rig.config, HarmonyOptions { clock, ..HarmonyOptions::default() });
    let token = token_for(Platform::Harmony, 1);

    // Twenty concurrent first sends share one JWT.
    let pushes: Vec<OutgoingPush> = (0..20).map(|n| ring(&token, n)).collect();
    let outcomes = join_all(pushes.iter().map(|p| sender.send(p))).await;
    assert!(outcomes.iter().all(|o| is_class(o, "delivered")), "{outcomes:?}");
    for n in 20..23 {
        assert!(is_class(&sender.send(&ring(&token, n)).await, "delivered"));
    }
    let sends = rig.sends();
    assert_eq!(sends.len(), 23, "ring pushes with different payloads are sent one by one");
    let first = sends[0].headers["authorization"].clone();
    assert!(sends.iter().all(|r| r.headers["authorization"] == first), "one JWT for all");

    // It is the documented JWT.
    let (header, claims) = jwt_parts(&first);
    assert_eq!(header, json!({"typ": "JWT", "alg": "PS256", "kid": rig.credentials.harmony_key_id}));
    assert_eq!(claims["iss"], rig.credentials.harmony_sub_account.as_str());
    assert_eq!(claims["aud"], JWT_AUDIENCE);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert!((iat - now_secs()).abs() <= 5);

    // Still reused with more than five minutes left…
    offset.store(3200, Ordering::SeqCst);
    sender.send(&ring(&token, 30)).await;
    assert_eq!(rig.sends().pop().unwrap().headers["authorization"], first);
    // …renewed with less.
    offset.store(3310, Ordering::SeqCst);
    assert!(is_class(&sender.send(&ring(&token, 31)).await, "delivered"));
    let renewed = rig.sends().pop().unwrap().headers["authorization"].clone();
    assert_ne!(renewed, first);
    let (_, claims) = jwt_parts(&renewed);
    assert!(claims["iat"].as_i64().unwrap() >= iat + 3310);
    sender.send(&ring(&token, 32)).await;
    assert_eq!(rig.sends().pop().unwrap().headers["authorization"], renewed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_jwt_is_replaced_once_and_a_lasting_refusal_is_a_config_error() {
    let rig = Rig::start().await;
    let sender = rig.sender_with(&rig.config, wide_window());
    let token = token_for(Platform::Harmony, 1);
    assert!(is_class(&sender.send(&ring(&token, 1)).await, "delivered"));
    let first = rig.sends()[0].headers["authorization"].clone();

    // Refused once: a fresh JWT, the push goes through, and the fresh JWT is kept.
    rig.emulator.faults().push(harmony_fault(401, "80200005", "Jwt token expired."));
    assert!(is_class(&sender.send(&ring(&token, 2)).await, "delivered"));
    let sends = rig.sends();
    assert_eq!(sends.len(), 3);
    assert_eq!(sends[1].headers["authorization"], first);
    assert_eq!(sends[1].status, 401);
    let fresh = sends[2].headers["authorization"].clone();
    assert_ne!(fresh, first);
    assert_eq!(sends[2].status, 200);
    assert!(is_class(&sender.send(&ring(&token, 3)).await, "delivered"));
    assert_eq!(rig.sends()[3].headers["authorization"], fresh);

    // Refused twice: ConfigError after exactly one retry.
    rig.emulator.faults().push(harmony_fault(401, "80200001", "Authentication Error.").times(5));
    let outcome = sender.send(&ring(&token, 4)).await;
    assert!(
        matches!(&outcome, SendOutcome::ConfigError { detail } if detail.contains("80200001")),
        "{outcome:?}"
    );
    assert_eq!(rig.sends().len(), 6);
    rig.emulator.faults().clear();

    // A refusal in a batch refreshes once for the whole batch.
    rig.emulator.faults().push(harmony_fault(401, "80200005", "Jwt token expired."));
    let tokens: Vec<String> = (10..15).map(|n| token_for(Platform::Harmony, n)).collect();
    let pushes: Vec<OutgoingPush> = tokens.iter().map(|t| missed(t, 1)).collect();
    let outcomes = join_all(pushes.iter().map(|p| sender.send(p))).await;
    assert!(outcomes.iter().all(|o| is_class(o, "delivered")), "{outcomes:?}");
    assert_eq!(rig.sends().len(), 8, "one refused request and its retry");
}

// ---------------------------------------------------------------------------------------------
// Batching: concurrent pushes of the same message share requests, each with its own outcome.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_pushes_share_a_request_and_get_their_own_outcomes() {
    let rig = Rig::start().await;
    // A window wide enough for a debug build on a busy machine to queue 1005 pushes.
    let sender = rig.sender_with(&rig.config, wide_window());
    let tokens: Vec<String> = (1..=4).map(|n| token_for(Platform::Harmony, n)).collect();
    let mut phones: Vec<_> = tokens.iter().take(2).map(|t| rig.hub.subscribe(Platform::Harmony, t)).collect();

    // A user's four devices and a dead token, one missed call: one request.
    let mut all_tokens = tokens.clone();
    all_tokens.push("MAMzLg.dead.0001".into());
    all_tokens.push(tokens[0].clone());
    let pushes: Vec<OutgoingPush> = all_tokens.iter().enumerate().map(|(n, t)| missed(t, n as u32)).collect();
    let outcomes = join_all(pushes.iter().map(|p| sender.send(p))).await;
    let sends = rig.sends();
    assert_eq!(sends.len(), 1, "one request for all");
    let sent_tokens = body_of(&sends[0])["target"]["token"].as_array().unwrap().clone();
    assert_eq!(sent_tokens.len(), 5, "each token once");
    let request_id = match &outcomes[0] {
        SendOutcome::Delivered { provider_id: Some(id) } => id.clone(),
        other => panic!("{other:?}"),
    };
    for (n, outcome) in outcomes.iter().enumerate() {
        if n == 4 {
            assert!(
                matches!(outcome, SendOutcome::InvalidToken { detail, .. } if detail.contains("tokenFormatError")),
                "{outcome:?}"
            );
        } else {
            assert_eq!(
                *outcome,
                SendOutcome::Delivered { provider_id: Some(request_id.clone()) },
                "push {n}"
            );
        }
    }
    for phone in &mut phones {
        assert!(
            matches!(phone.try_recv(), Ok(DevicePush::Notification { category: Some(c), .. }) if c == "MISS_CALL")
        );
        assert!(phone.try_recv().is_err(), "one notification per device");
    }

    // A fault for one token of a batch answers the whole request.
    rig.emulator.faults().push(Fault { status: 503, ..Fault::default() }.for_token(&tokens[2]));
    let outcomes = join_all(pushes[..4].iter().map(|p| sender.send(p))).await;
    assert!(outcomes.iter().all(|o| is_class(o, "rate_limited")), "{outcomes:?}");

    // Ring pushes carry a JWS per device: one request each.
    let before = rig.sends().len();
    let rings: Vec<OutgoingPush> = tokens.iter().enumerate().map(|(n, t)| ring(t, n as u32)).collect();
    join_all(rings.iter().map(|p| sender.send(p))).await;
    assert_eq!(rig.sends().len() - before, 4);

    // 1005 pushes of one message: 1000 tokens, then 5.
    let before = rig.sends().len();
    let many: Vec<OutgoingPush> =
        (0..1005).map(|n| missed(&token_for(Platform::Harmony, 1000 + n), n)).collect();
    let outcomes = join_all(many.iter().map(|p| sender.send(p))).await;
    assert!(outcomes.iter().all(|o| is_class(o, "delivered")));
    let mut sizes: Vec<usize> = rig.sends()[before..]
        .iter()
        .map(|r| body_of(r)["target"]["token"].as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 1000]);

    // Without a window every push goes alone.
    let solo = rig.sender_with(
        &rig.config,
        HarmonyOptions { batch_window: Duration::ZERO, ..HarmonyOptions::default() },
    );
    let before = rig.sends().len();
    join_all(pushes[..4].iter().map(|p| solo.send(p))).await;
    assert_eq!(rig.sends().len() - before, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_messages_go_ten_tokens_at_a_time() {
    let rig = Rig::start().await;
    let config = HarmonyConfig { test_message: true, ..rig.config.clone() };
    let sender = rig.sender_with(&config, wide_window());
    let pushes: Vec<OutgoingPush> = (0..11).map(|n| missed(&token_for(Platform::Harmony, n), n)).collect();
    let outcomes = join_all(pushes.iter().map(|p| sender.send(p))).await;
    assert!(outcomes.iter().all(|o| is_class(o, "delivered")), "{outcomes:?}");
    let sends = rig.sends();
    let mut sizes: Vec<usize> =
        sends.iter().map(|r| body_of(r)["target"]["token"].as_array().unwrap().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 10]);
    assert!(sends.iter().all(|r| body_of(r)["pushOptions"]["testMessage"] == true));
}

// ---------------------------------------------------------------------------------------------
// End to end: the whole server, the real client on a simulated HarmonyOS device.

async fn start() -> ProviderServer {
    ProviderServer::start(ServerOptions::only(Platform::Harmony)).await
}

/// `user`'s HarmonyOS phone with push `token`, registered through the real client.
async fn phone(world: &ProviderServer, user: &str, token: &str) -> SimulatedDevice {
    world.device(&format!("{user}'s phone"), user, token).await
}

/// How many requests of Push Kit `push-type` the emulator received.
fn sends_of_type(world: &ProviderServer, push_type: &str) -> usize {
    sends(&world.emulators.harmony)
        .iter()
        .filter(|r| r.headers.get("push-type").map(String::as_str) == Some(push_type))
        .count()
}

fn rang(seen: &Seen) -> bool {
    matches!(seen, Seen::Push(outcome) if outcome.outcome == Outcome::Ring)
}

/// The missed-call notification of `call_id`, as a device of the real client gets it: the
/// client registers a device key (wire v2), so the text names nobody.
fn missed_notification(call_id: &str) -> impl Fn(&Seen) -> bool + '_ {
    move |seen| {
        matches!(seen, Seen::Notification { id: Some(id), title, body }
        if *id == missed_call_message_id(call_id) && title == "Missed call" && body == "You missed a call")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_ring_then_missed_call_notification_on_cancel() {
    let world = start().await;
    let bob = phone(&world, "bob", &token_for(Platform::Harmony, 1)).await;
    let call = world.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();

    let ring = bob.wait_for(0, Duration::from_secs(10), rang).await;
    assert!(ring.is_some(), "the device never rang: {:?}", bob.journal());
    let delivery =
        world.delivery(&call_id, "ring", Duration::from_secs(5), |d| d["status"] == "delivered").await;
    assert_eq!(delivery["outcome"], "delivered", "{delivery}");
    assert_eq!(sends_of_type(&world, "10"), 1);

    // The caller gives up: HarmonyOS gets no VoIP cancel but a missed-call notification.
    let (status, ended) =
        world.api(reqwest::Method::POST, &format!("/v1/calls/{call_id}/cancel"), Some(json!({}))).await;
    assert_eq!(status, 200, "{ended}");
    let from = bob.journal().len().saturating_sub(1);
    let notified = bob.wait_for(0, Duration::from_secs(10), missed_notification(&call_id)).await;
    assert!(notified.is_some(), "no missed-call notification: {:?}", &bob.journal()[from..]);
    let delivery =
        world.delivery(&call_id, "missed", Duration::from_secs(5), |d| d["status"] == "delivered").await;
    assert_eq!(delivery["outcome"], "delivered", "{delivery}");
    assert_eq!(sends_of_type(&world, "10"), 1, "no second call push");
    assert_eq!(sends_of_type(&world, "0"), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_missed_call_notification_after_the_ring_times_out() {
    let world = start().await;
    let bob = phone(&world, "bob", &token_for(Platform::Harmony, 2)).await;
    let call = world.ring(&["bob"], json!({"ring_seconds": 5})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert!(bob.wait_for(0, Duration::from_secs(10), rang).await.is_some(), "{:?}", bob.journal());
    let notified = bob.wait_for(0, Duration::from_secs(15), missed_notification(&call_id)).await;
    assert!(notified.is_some(), "no missed-call notification: {:?}", bob.journal());
    assert_eq!(world.detail(&call_id).await["state"], "missed");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_retries_stop_at_the_ring_deadline() {
    let world = start().await;
    let token = token_for(Platform::Harmony, 3);
    let bob = phone(&world, "bob", &token).await;
    world
        .emulators
        .harmony
        .faults()
        .push(Fault { status: 500, times: 10_000, ..Fault::default() }.for_token(&token));
    let call = world.ring(&["bob"], json!({"ring_seconds": 5})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let expires_at_ms = call["expires_at_ms"].as_i64().unwrap();

    let delivery = world
        .delivery(&call_id, "ring", Duration::from_secs(15), |d| {
            d["status"] == "failed" || d["status"] == "skipped"
        })
        .await;
    let failed_at = now_secs() * 1000;
    // The last attempt failed with no time left to retry, a retry came due after the ring
    // ended, or the call ended while a retry waited (skipped): which one depends on where the
    // deadline falls between two backoffs.
    let detail = delivery["detail"].as_str().unwrap();
    assert!(
        (delivery["status"] == "failed"
            && delivery["outcome"] == "transient"
            && detail.contains("no time left"))
            || (delivery["status"] == "failed"
                && delivery["outcome"] == "expired"
                && detail.contains("no longer matters"))
            || (delivery["status"] == "skipped" && detail.contains("stopped ringing")),
        "{delivery}"
    );
    assert!(delivery["attempts"].as_i64().unwrap() >= 2, "retried while it mattered: {delivery}");
    assert!(failed_at <= expires_at_ms + 2000, "gave up by the deadline");
    let calls_pushed = sends_of_type(&world, "10");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sends_of_type(&world, "10"), calls_pushed, "no call push after the deadline");
    assert!(!bob.journal().iter().any(|e| rang(&e.seen)), "the device never rang");
    world.emulators.harmony.faults().clear();
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_dead_token_prunes_the_installation() {
    let world = start().await;
    // A token the server takes but Push Kit refuses as malformed (80300007 tokenFormatError).
    let _bob = phone(&world, "bob", "MAMzLg.dead~token.00000001").await;
    let call = world.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert_eq!(call["deliveries"].as_array().unwrap().len(), 1);
    let delivery =
        world.delivery(&call_id, "ring", Duration::from_secs(10), |d| d["status"] == "failed").await;
    assert_eq!(delivery["outcome"], "invalid_token", "{delivery}");
    assert!(delivery["detail"].as_str().unwrap().contains("tokenFormatError"), "{delivery}");
    assert!(sends(&world.emulators.harmony).iter().all(|r| !r.body.is_empty()));
    let again = world.ring(&["bob"], json!({"ring_seconds": 30})).await;
    assert!(again["deliveries"].as_array().unwrap().is_empty(), "pruned: {again}");
    world.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Delivery receipts, end to end: the emulator posts them signed, after delivery, to the server.

fn timeline_has(detail: &Value, event: &str) -> bool {
    detail["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["event"] == event))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_delivery_receipt_puts_delivered_on_the_timeline() {
    let world = start().await;
    world.emulators.send_receipts_to(&world.base);
    let token = token_for(Platform::Harmony, 11);
    let bob = phone(&world, "bob", &token).await;
    let call = world.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert!(bob.wait_for(0, Duration::from_secs(10), rang).await.is_some(), "{:?}", bob.journal());

    // Push Kit reports the delivery: one signed request, result 0, biTag = the ring's delivery
    // id (the real client registers a device key: wire v2 pushes never carry the call id).
    let receipts = world.emulators.harmony.receipts();
    let sent = receipts.wait_for(Duration::from_secs(5), |sent| !sent.is_empty()).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].status, sent[0].answer.as_str()), (200, r#"{"code":"0","message":"success"}"#));
    assert!(sent[0].callback_id.starts_with("timestamp="), "{}", sent[0].callback_id);
    let status = &sent[0].body["statuses"][0];
    let ring_id = call["deliveries"][0]["delivery_id"].as_str().unwrap();
    assert_eq!((status["biTag"].as_str(), status["pushType"].as_i64()), (Some(ring_id), Some(10)));
    assert_eq!(
        (status["token"].as_str(), status["deliveryStatus"]["result"].as_i64()),
        (Some(token.as_str()), Some(0))
    );
    // The receipt names the send request it is about.
    let send = sends(&world.emulators.harmony).into_iter().find(|r| r.headers["push-type"] == "10").unwrap();
    assert_eq!(send.status, 200);
    assert!(status["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{status}");

    let detail =
        world.wait_for(&call_id, Duration::from_secs(5), |d| timeline_has(d, "delivered_to_device")).await;
    let ring = detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "ring").unwrap().clone();
    let entry =
        detail["timeline"].as_array().unwrap().iter().find(|e| e["event"] == "delivered_to_device").unwrap();
    assert_eq!(entry["delivery_id"], ring["delivery_id"], "{detail}");

    // The missed-call notification after a cancel is reported too, as push-type 0.
    world.api(reqwest::Method::POST, &format!("/v1/calls/{call_id}/cancel"), Some(json!({}))).await;
    let sent = receipts.wait_for(Duration::from_secs(5), |sent| sent.len() >= 2).await;
    assert_eq!(sent[1].body["statuses"][0]["pushType"], 0, "{sent:?}");
    let detail = world
        .wait_for(&call_id, Duration::from_secs(5), |d| {
            d["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == "delivered_to_device").count()
                == 2
        })
        .await;
    let missed =
        detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "missed").unwrap().clone();
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "delivered_to_device" && e["delivery_id"] == missed["delivery_id"]),
        "{detail}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_receipts_prune_uninstalled_apps_and_mark_notifications_off() {
    let world = start().await;
    world.emulators.send_receipts_to(&world.base);
    let receipts = world.emulators.harmony.receipts();
    let (gone, muted, fine) = (
        token_for(Platform::Harmony, 21),
        token_for(Platform::Harmony, 22),
        token_for(Platform::Harmony, 23),
    );
    let _gone = phone(&world, "bob", &gone).await;
    let muted_phone = phone(&world, "bob", &muted).await;
    let fine_phone = phone(&world, "bob", &fine).await;
    // Push Kit reaches the first device to find the app uninstalled, the second with its
    // notifications off (over the emulator's control route, as a test in another process would).
    receipts.script(&gone, callpush_emulators::harmony_receipts::result::APP_UNINSTALLED);
    let scripted = reqwest::Client::new()
        .post(format!("{}/_emulator/receipts/results", world.emulators.harmony.base_url()))
        .json(&json!({"token": muted, "result": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(scripted.status().as_u16(), 204);

    let call = world.ring(&["bob"], json!({"ring_seconds": 30})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert_eq!(call["deliveries"].as_array().unwrap().len(), 3);
    assert!(fine_phone.wait_for(0, Duration::from_secs(10), rang).await.is_some());
    let detail = world
        .wait_for(&call_id, Duration::from_secs(5), |d| {
            ["delivered_to_device", "token_dead", "notifications_off"].iter().all(|e| timeline_has(d, e))
        })
        .await;
    for event in ["delivered_to_device", "token_dead", "notifications_off"] {
        assert!(timeline_has(&detail, event), "{event}: {detail}");
    }
    assert!(!muted_phone.journal().iter().any(|e| rang(&e.seen)), "scripted results never reach the app");

    // The uninstalled app's installation is gone; the muted one stays, and says so.
    let store = &world.running.store;
    let installations: Vec<_> =
        store.live_installations(&["bob".into()], callpush_server::time::now_ms()).await.unwrap();
    let tokens: Vec<&str> = installations.iter().map(|i| i.token.as_str()).collect();
    assert!(!tokens.contains(&gone.as_str()) && tokens.contains(&muted.as_str()), "{tokens:?}");
    let muted_installation = installations.iter().find(|i| i.token == muted).unwrap();
    let off = muted_installation.notifications.unwrap();
    assert_eq!((off.enabled, off.source.as_str()), (false, "push_kit_receipt"));
    let again = world.ring(&["bob"], json!({"ring_seconds": 30})).await;
    assert_eq!(again["deliveries"].as_array().unwrap().len(), 2, "pruned: {again}");
    let again_id = again["call_id"].as_str().unwrap();
    assert!(timeline_has(&world.detail(again_id).await, "notifications_off"));

    // The device itself says they are back on: that is newer, and the lease shows it.
    receipts.clear_scripts();
    muted_phone.client.report_notifications(true).await.expect("reported");
    let on = store.installation("bob", &muted_installation.installation_id).await.unwrap().unwrap();
    assert_eq!(on.notifications.map(|n| (n.enabled, n.source.as_str())), Some((true, "device")));
    world.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Test messages: 1000 a day per project, counted in the database across instances.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_messages_stop_at_the_daily_quota_with_a_clear_outcome() {
    use callpush_server::senders::harmony::TEST_MESSAGES_PER_DAY;
    let rig = Rig::start().await;
    let sender =
        HarmonySender::new(&HarmonyConfig { test_message: true, ..rig.config.clone() }, &rig.http).unwrap();
    let quota = sender.daily_quota().expect("test messages have a daily quota");
    assert_eq!(quota.limit, TEST_MESSAGES_PER_DAY);
    assert_eq!(quota.counter, format!("harmony-test-messages:{}", rig.credentials.harmony_project_id));
    assert!(rig.sender().daily_quota().is_none(), "no quota on production messages");

    // The whole server on this sender: the day's count stands at 999.
    let dir = tempfile::tempdir().unwrap();
    let mut config = callpush_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("callpush.db").display()),
        data_dir: dir.path().to_owned(),
        api_keys: vec![support::API_KEY.into()],
        ..Default::default()
    };
    config.auth.hs256_secret = Some(support::SECRET.into());
    let senders = callpush_server::senders::Senders::all(Arc::new(sender));
    let server = callpush_server::app::start(&config, senders).await.unwrap();
    let store = server.store.clone();
    let today = callpush_server::time::utc_day(callpush_server::time::now_ms());
    assert!(store
        .take_daily(&quota.counter, today, TEST_MESSAGES_PER_DAY - 1, TEST_MESSAGES_PER_DAY)
        .await
        .unwrap());
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let register = |id: &'static str, token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let response = http
                .put(format!("{base}/v1/installations/{id}"))
                .bearer_auth(ProviderServer::device_token("bob"))
                .json(&json!({"platform": "harmony", "token": token}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
    };
    register("phone", token_for(Platform::Harmony, 31)).await;
    let ring = || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let response = http
                .post(format!("{base}/v1/calls"))
                .bearer_auth(support::API_KEY)
                .json(&json!({"from": {"id": "alice"}, "to": ["bob"]}))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()["call_id"].as_str().unwrap().to_owned()
        }
    };
    let settled = |call_id: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            for _ in 0..250 {
                let detail: Value = http
                    .get(format!("{base}/v1/calls/{call_id}"))
                    .bearer_auth(support::API_KEY)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let ring = detail["deliveries"][0].clone();
                if ring["status"] != "pending" && ring["status"] != "sending" {
                    return ring;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("never settled");
        }
    };
    // A push Push Kit refuses gives its slot back.
    rig.emulator
        .faults()
        .push(harmony_fault(400, "80100003", "Illegal payload").for_token(&token_for(Platform::Harmony, 31)));
    let refused = settled(ring().await).await;
    assert_eq!(refused["outcome"], "bad_request", "{refused}");
    assert_eq!(store.daily_count(&quota.counter, today).await.unwrap(), TEST_MESSAGES_PER_DAY - 1);

    // The 1000th goes out; the 1001st is refused before Push Kit is asked, with a clear outcome.
    let first = settled(ring().await).await;
    assert_eq!(first["outcome"], "delivered", "{first}");
    let sent = rig.sends().len();
    let second_id = ring().await;
    let second = settled(second_id.clone()).await;
    assert_eq!(
        (second["status"].as_str(), second["outcome"].as_str()),
        (Some("failed"), Some("quota_exhausted")),
        "{second}"
    );
    assert!(second["detail"].as_str().unwrap().contains("1000 a day"), "{second}");
    assert_eq!(rig.sends().len(), sent, "nothing sent past the quota");
    let detail: Value = http
        .get(format!("{base}/v1/calls/{second_id}"))
        .bearer_auth(support::API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        detail["timeline"].as_array().unwrap().iter().any(|e| e["event"] == "delivery_quota_exhausted"),
        "{detail}"
    );
    assert_eq!(store.daily_count(&quota.counter, today).await.unwrap(), TEST_MESSAGES_PER_DAY);
    let metrics = server.metrics.encode();
    assert!(metrics.contains("callpush_provider_quota_refusals_total{platform=\"harmony\"} 1"), "{metrics}");
    assert!(metrics.contains("outcome=\"quota_exhausted\""), "{metrics}");

    // Another day has its own count.
    assert!(store.take_daily(&quota.counter, today + 1, 1, TEST_MESSAGES_PER_DAY).await.unwrap());
    assert_eq!(store.daily_count(&quota.counter, today + 1).await.unwrap(), 1);
    server.stop().await;
}
