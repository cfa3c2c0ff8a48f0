//! WNS through the real sender and the emulator (docs/providers/wns.md): every documented answer and
//! its outcome class, the emulator's own checks, both token flows (made, cached and shared,
//! refreshed before expiry and once on refusal), the whole server end to end with simulated
//! Windows devices running the real client, and an independent WNS client from PyPI.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callpush_client::model::{CancelReason, Outcome, Platform};
use callpush_client::wire::ProviderPayload;
use callpush_emulators::device::{token_for, Seen, SimulatedDevice};
use callpush_emulators::faults::{Fault, Received};
use callpush_emulators::hub::DevicePush;
use callpush_emulators::wns::WnsEmulator;
use callpush_server::config::{WnsConfig, WnsFlow};
use callpush_server::domain::PushKind;
use callpush_server::senders::http::HttpSettings;
use callpush_server::senders::wns::{channel_path_and_query, WnsSender};
use callpush_server::senders::{OutgoingPush, SendOutcome, Sender};
use callpush_server::time::{now_ms, now_secs};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::rig::{wns_config, EmulatorRig, ProviderServer, ServerOptions};

const BODY: &str = r#"{"callpush":"eyJhbGciOiJFZERTQSJ9.e30.c2ln"}"#;

/// The emulator, its hub and credentials.
type Rig = EmulatorRig<WnsEmulator>;

impl Rig {
    /// The providers settings that send through this emulator with `flow`.
    fn flow_config(&self, flow: WnsFlow) -> WnsConfig {
        wns_config(&self.emulator, &self.credentials, flow)
    }

    fn flow_sender(&self, flow: WnsFlow) -> WnsSender {
        sender_for(&self.flow_config(flow))
    }

    /// Requests to the token endpoints.
    fn token_requests(&self) -> Vec<Received> {
        token_requests(&self.emulator)
    }

    /// Notification requests.
    fn notifications(&self) -> Vec<Received> {
        self.emulator.faults().received().into_iter().filter(|r| !is_token_request(r)).collect()
    }

    /// A fresh access token from the classic endpoint.
    async fn live_token(&self) -> String {
        let c = &self.credentials;
        let answer: Value = reqwest::Client::new()
            .post(self.emulator.live_token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.wns_package_sid),
                ("client_secret", &c.wns_client_secret),
                ("scope", "notify.windows.com"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    }
}

/// Requests to `emulator`'s token endpoints.
fn token_requests(emulator: &WnsEmulator) -> Vec<Received> {
    emulator.faults().received().into_iter().filter(is_token_request).collect()
}

fn is_token_request(r: &Received) -> bool {
    r.path.ends_with("/accesstoken.srf") || r.path.ends_with("/oauth2/v2.0/token")
}

fn sender_for(config: &WnsConfig) -> WnsSender {
    match WnsSender::new(config, &HttpSettings::default()) {
        Ok(sender) => sender,
        Err(e) => panic!("WNS sender: {e}"),
    }
}

/// A push of `kind` to `channel` carrying `body`.
fn push(channel: &str, kind: PushKind, body: &str) -> OutgoingPush {
    let now = now_secs();
    OutgoingPush {
        delivery_id: "d-1".into(),
        call_id: "c-1".into(),
        installation_id: "i-1".into(),
        platform: Platform::Wns,
        token: channel.into(),
        apns_environment: None,
        kind,
        payload: (kind != PushKind::Missed).then(|| ProviderPayload::Wns { body: body.into() }),
        missed: None,
        ttl_seconds: 30,
        expires_at: now + 30,
    }
}

fn ring(channel: &str) -> OutgoingPush {
    push(channel, PushKind::Ring, BODY)
}

fn channel(n: u32) -> String {
    token_for(Platform::Wns, n)
}

fn fault(status: u16) -> Fault {
    Fault { status, times: 1, ..Fault::default() }
}

// ---------------------------------------------------------------------------------------------
// The fault matrix

#[tokio::test]
async fn every_documented_answer_has_its_outcome_class() {
    let rig = Rig::start().await;
    let sender = rig.flow_sender(WnsFlow::Live);
    let channel = channel(1);
    let secs = |s| Some(Duration::from_secs(s));
    let cases: Vec<(&str, Fault, SendOutcome)> = vec![
        (
            "200 received",
            fault(200).header("X-WNS-Status", "received").header("X-WNS-Msg-ID", "1A2B3C4D5E6F7081"),
            SendOutcome::Delivered { provider_id: Some("1A2B3C4D5E6F7081".into()) },
        ),
        (
            "200 received, legacy header",
            fault(200).header("X-WNS-NotificationStatus", "received"),
            SendOutcome::Delivered { provider_id: None },
        ),
        ("200 dropped", fault(200).header("X-WNS-Status", "dropped"), transient()),
        (
            "200 channelthrottled",
            fault(200).header("X-WNS-Status", "channelthrottled").header("Retry-After", "7"),
            SendOutcome::RateLimited { retry_after: secs(7), detail: String::new() },
        ),
        ("400 wrong headers", fault(400), bad_request()),
        ("403 not allowed for this channel", fault(403), config_error()),
        ("404 channel not recognised", fault(404), invalid_token()),
        ("405 method", fault(405), bad_request()),
        (
            "406 throttled",
            fault(406).header("Retry-After", "30"),
            SendOutcome::RateLimited { retry_after: secs(30), detail: String::new() },
        ),
        (
            "406 throttled, no Retry-After",
            fault(406),
            SendOutcome::RateLimited { retry_after: None, detail: String::new() },
        ),
        ("410 channel expired", fault(410), invalid_token()),
        (
            "410 domain blocked",
            fault(410).header("X-WNS-Error-Description", "Domain Blocked"),
            config_error(),
        ),
        ("413 too large", fault(413), bad_request()),
        ("500 internal", fault(500), transient()),
        ("503 unavailable", fault(503), transient()),
        (
            "503 with Retry-After",
            fault(503).header("Retry-After", "5"),
            SendOutcome::RateLimited { retry_after: secs(5), detail: String::new() },
        ),
        ("401 twice", fault(401).times(2), config_error()),
        ("connection dropped", Fault { drop_connection: true, ..fault(0) }, transient()),
        (
            "slow but fine",
            Fault { delay_ms: 300, ..fault(200).header("X-WNS-Status", "received") },
            SendOutcome::Delivered { provider_id: None },
        ),
    ];
    for (name, fault, expected) in cases {
        rig.emulator.faults().push(fault.for_token(&channel_path_and_query(&channel)));
        let outcome = sender.send(&ring(&channel)).await;
        assert_eq!(outcome.class(), expected.class(), "{name}: {outcome:?}");
        match (&outcome, &expected) {
            (
                SendOutcome::RateLimited { retry_after, .. },
                SendOutcome::RateLimited { retry_after: want, .. },
            ) => {
                assert_eq!(retry_after, want, "{name}")
            }
            (SendOutcome::InvalidToken { invalid_since, .. }, _) => {
                assert_eq!(*invalid_since, None, "{name}")
            }
            (SendOutcome::Delivered { provider_id }, SendOutcome::Delivered { provider_id: want }) => {
                assert_eq!(provider_id, want, "{name}")
            }
            _ => {}
        }
        assert!(rig.emulator.faults().take(None).is_none(), "{name}: every scripted answer was used");
    }

    // Details carry what support needs, never the channel's token.
    let token_part = channel.split("token=").nth(1).unwrap();
    rig.emulator.faults().push(
        fault(404)
            .header("X-WNS-Debug-Trace", "DB5SCH101110624")
            .header("MS-CV", "B7gKzwjj0kmyd5OUoSHxSw.0")
            .header("X-WNS-Error-Description", "Channel not found"),
    );
    let SendOutcome::InvalidToken { detail, .. } = sender.send(&ring(&channel)).await else { panic!() };
    for expected in ["HTTP 404", "DB5SCH101110624", "B7gKzwjj0kmyd5OUoSHxSw.0", "Channel not found"] {
        assert!(detail.contains(expected), "{expected} in {detail}");
    }
    assert!(!detail.contains(token_part), "the channel's token leaked: {detail}");
}

fn transient() -> SendOutcome {
    SendOutcome::Transient { detail: String::new() }
}
fn bad_request() -> SendOutcome {
    SendOutcome::BadRequest { detail: String::new() }
}
fn config_error() -> SendOutcome {
    SendOutcome::ConfigError { detail: String::new() }
}
fn invalid_token() -> SendOutcome {
    SendOutcome::InvalidToken { detail: String::new(), invalid_since: None }
}

#[tokio::test]
async fn the_emulator_real_checks_classify_through_the_sender() {
    let rig = Rig::start().await;
    let sender = rig.flow_sender(WnsFlow::Live);
    let online = channel(2);
    let mut device = rig.hub.subscribe(Platform::Wns, &online);

    // Accepted and handed to the device exactly as sent.
    let outcome = sender.send(&ring(&online)).await;
    let SendOutcome::Delivered { provider_id: Some(id) } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(id.len(), 16);
    assert_eq!(device.try_recv().unwrap(), DevicePush::App { raw: BODY.into() });
    let sent = rig.notifications().pop().unwrap();
    assert_eq!(sent.path, channel_path_and_query(&online));
    assert_eq!(sent.status, 200);
    for (name, value) in [
        ("content-type", "application/octet-stream"),
        ("x-wns-type", "wns/raw"),
        ("x-wns-ttl", "30"),
        ("x-wns-requestforstatus", "true"),
    ] {
        assert_eq!(sent.headers.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert!(sent.headers["authorization"].starts_with("Bearer "));
    assert!(sent.headers["ms-cv"].ends_with(".0"));
    assert_eq!(sent.body, BODY);

    // A cancel goes the same way.
    let cancel = push(&online, PushKind::Cancel, r#"{"callpush":"cancel"}"#);
    assert!(matches!(sender.send(&cancel).await, SendOutcome::Delivered { .. }));
    assert_eq!(device.try_recv().unwrap(), DevicePush::App { raw: r#"{"callpush":"cancel"}"#.into() });

    // No device online: WNS keeps no raw notification.
    let SendOutcome::Transient { detail } = sender.send(&ring(&channel(3))).await else { panic!() };
    assert!(detail.contains("dropped") && detail.contains("disconnected"), "{detail}");

    // Payload limits: 5000 bytes pass, 5001 are refused (413), empty is refused (400).
    let limit = format!(r#"{{"callpush":"{}"}}"#, "a".repeat(5000 - 15));
    assert_eq!(limit.len(), 5000);
    assert!(matches!(
        sender.send(&push(&online, PushKind::Ring, &limit)).await,
        SendOutcome::Delivered { .. }
    ));
    let over = format!("{limit} ");
    let SendOutcome::BadRequest { detail } = sender.send(&push(&online, PushKind::Ring, &over)).await else {
        panic!()
    };
    assert!(detail.contains("HTTP 413"), "{detail}");
    let SendOutcome::BadRequest { detail } = sender.send(&push(&online, PushKind::Ring, "")).await else {
        panic!()
    };
    assert!(detail.contains("HTTP 400") && detail.contains("must not be empty"), "{detail}");

    // A channel on notify.windows.com WNS does not recognise: dead.
    let malformed = "https://wns2-by3p.notify.windows.com/w/?channel=AwYAAAB";
    let SendOutcome::InvalidToken { detail, invalid_since: None } = sender.send(&ring(malformed)).await
    else {
        panic!()
    };
    assert!(detail.contains("HTTP 404"), "{detail}");

    // Anything not on notify.windows.com over https is never sent (SSRF guard); nor is a missed
    // call, which WNS gets as the cancel push.
    let before = rig.emulator.faults().received().len();
    for channel in [
        "https://evil.example/?token=AwYAAAB",
        "http://wns2-by3p.notify.windows.com/?token=AwYAAAB",
        "https://notify.windows.com.evil.example/?token=AwYAAAB",
        "https://wns2-by3p.notify.windows.com:8443/?token=AwYAAAB",
    ] {
        let outcome = sender.send(&ring(channel)).await;
        assert!(matches!(outcome, SendOutcome::BadRequest { .. }), "{channel}: {outcome:?}");
    }
    let outcome = sender.send(&push(&online, PushKind::Missed, "")).await;
    assert!(matches!(outcome, SendOutcome::BadRequest { .. }), "{outcome:?}");
    let outcome = sender
        .send(&OutgoingPush { payload: Some(ProviderPayload::Apns { body: BODY.into() }), ..ring(&online) })
        .await;
    assert!(matches!(outcome, SendOutcome::BadRequest { .. }), "{outcome:?}");
    assert_eq!(rig.emulator.faults().received().len(), before, "nothing was sent");
}

#[tokio::test]
async fn a_device_in_another_process_connects_over_http_and_stays_online_until_it_disconnects() {
    let rig = Rig::start().await;
    let sender = rig.flow_sender(WnsFlow::Live);
    let online = channel(7);
    let http = reqwest::Client::new();
    let base = rig.emulator.endpoint();
    let connected: serde_json::Value = http
        .post(format!("{base}/_emulator/devices"))
        .json(&serde_json::json!({ "token": online }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = connected["device"].as_u64().unwrap();
    let pushes = format!("{base}/_emulator/devices/{device}/pushes");

    // Online between polls: WNS answers received, and the push waits for the next poll.
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    let taken: serde_json::Value = http.get(&pushes).send().await.unwrap().json().await.unwrap();
    assert_eq!(taken, serde_json::json!([{ "kind": "app", "raw": BODY }]));
    let empty: serde_json::Value =
        http.get(format!("{pushes}?wait_ms=50")).send().await.unwrap().json().await.unwrap();
    assert_eq!(empty, serde_json::json!([]));

    // Offline after it disconnects: the raw notification is dropped, and the id is gone.
    let gone = http.delete(format!("{base}/_emulator/devices/{device}")).send().await.unwrap();
    assert_eq!(gone.status(), 204);
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Transient { .. }));
    assert_eq!(http.get(&pushes).send().await.unwrap().status(), 404);
    let empty_token =
        http.post(format!("{base}/_emulator/devices")).json(&serde_json::json!({ "token": "" }));
    assert_eq!(empty_token.send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn wrong_credentials_are_config_errors_and_nothing_is_sent() {
    let rig = Rig::start().await;
    let c = &rig.credentials;
    let cases = [
        (
            "secret",
            WnsConfig { client_secret: "wrong".into(), ..rig.flow_config(WnsFlow::Live) },
            "invalid_client",
        ),
        (
            "package SID",
            WnsConfig { client_id: "ms-app://S-1-15-2-0".into(), ..rig.flow_config(WnsFlow::Live) },
            "invalid_client",
        ),
        (
            "entra secret",
            WnsConfig { client_secret: "wrong".into(), ..rig.flow_config(WnsFlow::Entra) },
            "AADSTS7000215",
        ),
        (
            "entra app id",
            WnsConfig {
                client_id: "00000000-0000-0000-0000-000000000bad".into(),
                ..rig.flow_config(WnsFlow::Entra)
            },
            "AADSTS700016",
        ),
        (
            "entra tenant",
            WnsConfig {
                token_url: Some(rig.emulator.entra_token_url("22222222-2222-2222-2222-222222222222")),
                ..rig.flow_config(WnsFlow::Entra)
            },
            "AADSTS90002",
        ),
        (
            "token URL",
            WnsConfig {
                token_url: Some(format!("{}/nowhere", rig.emulator.endpoint())),
                ..rig.flow_config(WnsFlow::Live)
            },
            "answered 401",
        ),
    ];
    for (name, config, expected) in cases {
        let outcome = sender_for(&config).send(&ring(&channel(4))).await;
        let SendOutcome::ConfigError { detail } = &outcome else { panic!("{name}: {outcome:?}") };
        assert!(detail.contains(expected), "{name}: {detail}");
        assert!(!detail.contains(&c.wns_client_secret), "{name}: the secret leaked: {detail}");
    }
    assert!(rig.notifications().iter().all(|r| r.path.contains("nowhere")), "no notification was sent");
}

// ---------------------------------------------------------------------------------------------
// The emulator's checks, request by request

/// A request check: name, headers changed (an empty value removes one), body, expected status
/// and what `X-WNS-Error-Description` says.
type Check<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16, &'a str);

#[tokio::test]
async fn the_emulator_checks_notifications_like_wns() {
    let rig = Rig::start().await;
    let token = rig.live_token().await;
    let online = channel(5);
    let mut device = rig.hub.subscribe(Platform::Wns, &online);
    let url = format!("{}{}", rig.emulator.endpoint(), channel_path_and_query(&online));
    let http = reqwest::Client::new();
    let request = |headers: &[(&str, &str)], body: &str| {
        let mut request = http.post(&url).body(body.to_owned());
        let mut all = vec![
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/octet-stream".to_owned()),
            ("x-wns-type", "wns/raw".to_owned()),
        ];
        for &(name, value) in headers {
            all.retain(|(n, _)| *n != name);
            if !value.is_empty() {
                all.push((name, (*value).to_owned()));
            }
        }
        for (name, value) in all {
            request = request.header(name, value);
        }
        request
    };
    let cases: Vec<Check> = vec![
        ("no Authorization", vec![("authorization", "")], BODY.into(), 401, "Missing"),
        (
            "unknown token",
            vec![("authorization", "Bearer EgAcAQMAAAAALYAAY")],
            BODY.into(),
            401,
            "Invalid token",
        ),
        ("basic auth", vec![("authorization", "Basic dXNlcjpwYXNz")], BODY.into(), 401, "Bearer"),
        ("no X-WNS-Type", vec![("x-wns-type", "")], BODY.into(), 400, "X-WNS-Type"),
        ("bad X-WNS-Type", vec![("x-wns-type", "wns/voip")], BODY.into(), 400, "X-WNS-Type"),
        ("raw as text/xml", vec![("content-type", "text/xml")], BODY.into(), 400, "application/octet-stream"),
        ("toast as octet-stream", vec![("x-wns-type", "wns/toast")], BODY.into(), 400, "text/xml"),
        ("no Content-Type", vec![("content-type", "")], BODY.into(), 400, "Content-Type"),
        ("SuppressPopup", vec![("x-wns-suppresspopup", "true")], BODY.into(), 400, "Windows Phone"),
        ("Group", vec![("x-wns-group", "calls")], BODY.into(), 400, "Windows Phone"),
        ("Tag on raw", vec![("x-wns-tag", "call")], BODY.into(), 400, "X-WNS-Tag"),
        ("TTL not a number", vec![("x-wns-ttl", "30s")], BODY.into(), 400, "X-WNS-TTL"),
        ("bad cache policy", vec![("x-wns-cache-policy", "always")], BODY.into(), 400, "Cache-Policy"),
        (
            "bad RequestForStatus",
            vec![("x-wns-requestforstatus", "yes")],
            BODY.into(),
            400,
            "RequestForStatus",
        ),
        ("Expect 100-continue", vec![("expect", "100-continue")], BODY.into(), 400, "Expect"),
        ("empty body", vec![], String::new(), 400, "empty"),
        ("5001 bytes", vec![], "x".repeat(5001), 413, "5000"),
    ];
    for (name, headers, body, status, description) in cases {
        let response = request(&headers, &body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let said = response.headers()["x-wns-error-description"].to_str().unwrap().to_owned();
        assert!(said.contains(description), "{name}: {said}");
        assert!(response.headers().contains_key("ms-cv"), "{name}");
    }
    assert!(device.try_recv().is_err(), "nothing refused was delivered");

    // Other methods, and channels WNS would not recognise.
    let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let unknown = format!("{}/w/?foo=bar", rig.emulator.endpoint());
    let response = request(&[], BODY).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    device.try_recv().unwrap();
    let response = http
        .post(&unknown)
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .header("x-wns-type", "wns/raw")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Success: status headers, the MS-CV echoed, exactly 5000 bytes accepted.
    let response =
        request(&[("x-wns-requestforstatus", "true"), ("ms-cv", "abc.1"), ("x-wns-ttl", "60")], BODY)
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-wns-status"), "received");
    assert_eq!(header("x-wns-deviceconnectionstatus"), "connected");
    assert_eq!(header("ms-cv"), "abc.1");
    assert_eq!(header("x-wns-msg-id").len(), 16);
    assert_eq!(device.try_recv().unwrap(), DevicePush::App { raw: BODY.into() });
    let response = request(&[], &"x".repeat(5000)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("x-wns-deviceconnectionstatus"), "only when asked for");

    // Offline: raw is dropped unless cached.
    let offline = format!("{}{}", rig.emulator.endpoint(), channel_path_and_query(&channel(6)));
    let offline_request = |cache: Option<&str>| {
        let mut request = http
            .post(&offline)
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .header("x-wns-type", "wns/raw")
            .header("x-wns-requestforstatus", "true")
            .body(BODY);
        if let Some(cache) = cache {
            request = request.header("x-wns-cache-policy", cache);
        }
        request
    };
    for (cache, status) in [(None, "dropped"), (Some("no-cache"), "dropped"), (Some("cache"), "received")] {
        let response = offline_request(cache).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-wns-status"], status, "{cache:?}");
        assert_eq!(response.headers()["x-wns-deviceconnectionstatus"], "disconnected");
    }

    // An expired token is refused.
    rig.emulator.set_token_lifetime(Some(1));
    let short = rig.live_token().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = http
        .post(&url)
        .bearer_auth(&short)
        .header("content-type", "application/octet-stream")
        .header("x-wns-type", "wns/raw")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["x-wns-error-description"], "Token expired.");

    // Every request is in the log, with the status it got.
    let log = rig.emulator.faults().received();
    assert!(log.iter().any(|r| r.status == 413) && log.iter().any(|r| r.status == 405));
}

#[tokio::test]
async fn the_token_endpoints_check_each_flow() {
    let rig = Rig::start().await;
    let c = rig.credentials.clone();
    let http = reqwest::Client::new();
    let live = rig.emulator.live_token_url();
    let entra = rig.emulator.entra_token_url(&c.wns_tenant_id);
    let form = |client_id: &str, secret: &str, scope: &str, grant: &str| {
        vec![
            ("grant_type".to_owned(), grant.to_owned()),
            ("client_id".to_owned(), client_id.to_owned()),
            ("client_secret".to_owned(), secret.to_owned()),
            ("scope".to_owned(), scope.to_owned()),
        ]
    };
    let post = |url: String, form: Vec<(String, String)>| {
        let http = http.clone();
        async move {
            let response = http.post(url).form(&form).send().await.unwrap();
            let status = response.status().as_u16();
            let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
            (status, cache, response.json::<Value>().await.unwrap())
        }
    };
    let (sid, app, secret) =
        (c.wns_package_sid.as_str(), c.wns_app_id.as_str(), c.wns_client_secret.as_str());

    // Classic: numbers are numbers.
    let (status, cache, body) =
        post(live.clone(), form(sid, secret, "notify.windows.com", "client_credentials")).await;
    assert_eq!((status, cache.as_deref()), (200, Some("no-store")));
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_u64()), (Some("bearer"), Some(86_400)));
    assert!(body["access_token"].as_str().unwrap().len() > 40);

    // Entra ID: numbers are strings; the scope with or without its trailing slash.
    for scope in ["https://wns.windows.com/.default", "https://wns.windows.com/.default/"] {
        let (status, _, body) = post(entra.clone(), form(app, secret, scope, "client_credentials")).await;
        assert_eq!(status, 200, "{scope}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], "86399");
        assert_eq!(body["ext_expires_in"], "86399");
        let (on, before) = (body["expires_on"].as_str().unwrap(), body["not_before"].as_str().unwrap());
        assert_eq!(on.parse::<u64>().unwrap() - before.parse::<u64>().unwrap(), 86_399);
        assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3, "JWT-shaped");
    }

    let refusals = [
        (live.clone(), form(sid, "wrong", "notify.windows.com", "client_credentials"), "invalid_client"),
        (live.clone(), form(app, secret, "notify.windows.com", "client_credentials"), "invalid_client"),
        (
            live.clone(),
            form(sid, secret, "https://wns.windows.com/.default", "client_credentials"),
            "invalid_scope",
        ),
        (live.clone(), form(sid, secret, "notify.windows.com", "password"), "unsupported_grant_type"),
        (
            entra.clone(),
            form(app, "wrong", "https://wns.windows.com/.default", "client_credentials"),
            "invalid_client",
        ),
        (
            entra.clone(),
            form(sid, secret, "https://wns.windows.com/.default", "client_credentials"),
            "unauthorized_client",
        ),
        (entra.clone(), form(app, secret, "notify.windows.com", "client_credentials"), "invalid_scope"),
        (
            rig.emulator.entra_token_url("contoso.onmicrosoft.com"),
            form(app, secret, "https://wns.windows.com/.default", "client_credentials"),
            "invalid_request",
        ),
    ];
    for (url, form, error) in refusals {
        let (status, _, body) = post(url.clone(), form.clone()).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(error)), "{url} {form:?}: {body}");
        assert!(body["error_description"].is_string());
        if url.contains("oauth2") {
            assert!(body["error_codes"].is_array() && body["trace_id"].is_string(), "Entra's shape: {body}");
        }
    }

    // Not a form, a repeated field, another method.
    let response = http.post(&live).json(&json!({"grant_type": "client_credentials"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = http
        .post(&live)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(http.get(&live).send().await.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(rig.token_requests().len() >= 13, "every token request is logged");
}

// ---------------------------------------------------------------------------------------------
// Access tokens

#[tokio::test]
async fn tokens_are_fetched_once_cached_and_shared_in_both_flows() {
    for flow in [WnsFlow::Live, WnsFlow::Entra] {
        let rig = Rig::start().await;
        let sender = Arc::new(rig.flow_sender(flow));
        let online = channel(7);
        let _device = rig.hub.subscribe(Platform::Wns, &online);
        // Ten sends at once on a cold cache: one token fetch, the rest wait for it.
        let sends = (0..10).map(|_| {
            let (sender, online) = (sender.clone(), online.clone());
            tokio::spawn(async move { sender.send(&ring(&online)).await })
        });
        for outcome in futures::future::join_all(sends).await {
            assert!(matches!(outcome.unwrap(), SendOutcome::Delivered { .. }), "{flow:?}");
        }
        for _ in 0..3 {
            assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
        }
        let tokens = rig.token_requests();
        assert_eq!(tokens.len(), 1, "{flow:?}: one token for thirteen sends");
        let form = &tokens[0].body;
        assert!(form.contains("grant_type=client_credentials"), "{form}");
        let scope = match flow {
            WnsFlow::Live => "scope=notify.windows.com",
            WnsFlow::Entra => "scope=https%3A%2F%2Fwns.windows.com%2F.default",
        };
        assert!(form.contains(scope), "{form}");
        assert_eq!(tokens[0].headers["content-type"], "application/x-www-form-urlencoded");
        let bearers: std::collections::BTreeSet<_> =
            rig.notifications().iter().map(|r| r.headers["authorization"].clone()).collect();
        assert_eq!(bearers.len(), 1, "{flow:?}: the same token on every send");
    }
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let rig = Rig::start().await;
    rig.emulator.set_token_lifetime(Some(2));
    let sender = rig.flow_sender(WnsFlow::Entra);
    let online = channel(8);
    let _device = rig.hub.subscribe(Platform::Wns, &online);
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    assert_eq!(rig.token_requests().len(), 1);
    tokio::time::sleep(Duration::from_millis(1900)).await;
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    assert_eq!(rig.token_requests().len(), 2, "fetched again shortly before it expired");
    assert!(rig.notifications().iter().all(|r| r.status == 200), "never sent with an expired token");
}

#[tokio::test]
async fn a_refused_token_is_refreshed_and_the_push_resent_once() {
    let rig = Rig::start().await;
    let sender = rig.flow_sender(WnsFlow::Live);
    let online = channel(9);
    let mut device = rig.hub.subscribe(Platform::Wns, &online);
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    device.try_recv().unwrap();

    // WNS stops honouring the token: refresh, resend, delivered once.
    rig.emulator.revoke_tokens();
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    assert_eq!(rig.token_requests().len(), 2);
    let statuses: Vec<u16> = rig.notifications().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200]);
    device.try_recv().unwrap();
    assert!(device.try_recv().is_err(), "delivered once");

    // A refusal that persists is a configuration error after exactly one refresh; the next send
    // uses the token that refresh fetched.
    rig.emulator.faults().push(fault(401).header("X-WNS-Error-Description", "Invalid token").times(2));
    let outcome = sender.send(&ring(&online)).await;
    let SendOutcome::ConfigError { detail } = &outcome else { panic!("{outcome:?}") };
    assert!(detail.contains("freshly issued") && detail.contains("Invalid token"), "{detail}");
    assert_eq!(rig.token_requests().len(), 3);
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }));
    assert_eq!(rig.token_requests().len(), 3);

    // A refresh that fails says why.
    rig.emulator.revoke_tokens();
    rig.emulator.token_faults().push(fault(503));
    let outcome = sender.send(&ring(&online)).await;
    assert!(matches!(outcome, SendOutcome::Transient { .. }), "{outcome:?}");
}

#[tokio::test]
async fn token_endpoint_failures_have_their_classes() {
    let rig = Rig::start().await;
    let sender = rig.flow_sender(WnsFlow::Entra);
    let online = channel(10);
    let _device = rig.hub.subscribe(Platform::Wns, &online);
    let cases: Vec<(Fault, &str, Option<Duration>)> = vec![
        (fault(500), "transient", None),
        (fault(503), "transient", None),
        (fault(503).header("Retry-After", "4"), "rate_limited", Some(Duration::from_secs(4))),
        (fault(429).header("Retry-After", "9"), "rate_limited", Some(Duration::from_secs(9))),
        (Fault { drop_connection: true, ..fault(0) }, "transient", None),
        (Fault { body: Some(json!("<html>proxy</html>")), ..fault(200) }, "config_error", None),
        (Fault::json(200, json!({"access_token": "x", "token_type": "mac"})), "config_error", None),
        (Fault::json(401, json!({"error": "invalid_client"})), "config_error", None),
    ];
    for (fault, class, retry) in cases {
        rig.emulator.token_faults().push(fault.clone());
        let outcome = sender.send(&ring(&online)).await;
        assert_eq!(outcome.class(), class, "{fault:?}: {outcome:?}");
        if let SendOutcome::RateLimited { retry_after, .. } = outcome {
            assert_eq!(retry_after, retry);
        }
    }
    assert!(rig.notifications().is_empty(), "nothing is sent without a token");
    assert!(matches!(sender.send(&ring(&online)).await, SendOutcome::Delivered { .. }), "and then it works");
}

// ---------------------------------------------------------------------------------------------
// End to end: the whole server, simulated Windows devices running the real client

async fn start(flow: WnsFlow) -> ProviderServer {
    ProviderServer::start(ServerOptions::only(Platform::Wns).wns_flow(flow)).await
}

/// A Windows device of `user`, online and registered.
async fn windows_device(stack: &ProviderServer, user: &str, n: u32) -> SimulatedDevice {
    stack.device(&format!("{user}'s PC {n}"), user, &channel(n)).await
}

/// Waits for a push the device decided as `outcome`, from journal entry `from` on.
async fn decided(
    device: &SimulatedDevice,
    from: usize,
    outcome: Outcome,
) -> callpush_client::model::HandleOutcome {
    let entry = device
        .wait_for(from, Duration::from_secs(10), |seen| matches!(seen, Seen::Push(h) if h.outcome == outcome))
        .await
        .unwrap_or_else(|| panic!("{} never saw a {outcome:?} push: {:?}", device.name, device.journal()));
    match entry.seen {
        Seen::Push(handled) => handled,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rings_windows_devices_and_cancels_the_one_that_did_not_answer() {
    let stack = start(WnsFlow::Live).await;
    let pc = windows_device(&stack, "bob", 11).await;
    let laptop = windows_device(&stack, "bob", 12).await;
    let call = stack.ring(&["bob"], json!({})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();

    for device in [&pc, &laptop] {
        let rang = decided(device, 0, Outcome::Ring).await;
        let incoming = rang.call.expect("the call");
        assert_eq!((incoming.call_id.as_str(), incoming.caller_id.as_str()), (call_id.as_str(), "alice"));
    }
    let from = pc.journal().len();
    laptop.client.answer(call_id.clone()).await.expect("answer on the laptop");

    // The PC gets a cancel push saying the call was answered elsewhere.
    let cancel = decided(&pc, from, Outcome::Cancel).await;
    assert_eq!(cancel.call.and_then(|c| c.reason), Some(CancelReason::AnsweredElsewhere));
    let detail = stack.settled(&call_id, None, Duration::from_secs(10)).await;
    let deliveries = detail["deliveries"].as_array().unwrap();
    let delivered =
        |kind: &str| deliveries.iter().filter(|d| d["kind"] == kind && d["status"] == "delivered").count();
    assert_eq!((delivered("ring"), delivered("cancel")), (2, 1), "{detail}");
    assert!(deliveries.iter().all(|d| d["kind"] != "missed"), "WNS gets no missed-call notification");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_unanswered_calls_reach_the_device_as_cancel_pushes() {
    let stack = start(WnsFlow::Entra).await;
    let pc = windows_device(&stack, "carol", 13).await;

    // The caller hangs up.
    let call = stack.ring(&["carol"], json!({})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    decided(&pc, 0, Outcome::Ring).await;
    let from = pc.journal().len();
    stack.post(&format!("/v1/calls/{call_id}/cancel"), json!({})).await;
    let cancel = decided(&pc, from, Outcome::Cancel).await;
    assert_eq!(cancel.call.and_then(|c| c.reason), Some(CancelReason::CallerCancelled));

    // Nobody answers: at the deadline the cancel push (reason timeout) is the missed call.
    let from = pc.journal().len();
    let call = stack.ring(&["carol"], json!({"ring_seconds": 5})).await;
    decided(&pc, from, Outcome::Ring).await;
    let from = pc.journal().len();
    let cancel = pc
        .wait_for(
            from,
            Duration::from_secs(15),
            |seen| matches!(seen, Seen::Push(h) if h.outcome == Outcome::Cancel),
        )
        .await
        .expect("a timeout cancel");
    let Seen::Push(cancel) = cancel.seen else { unreachable!() };
    assert_eq!(cancel.call.and_then(|c| c.reason), Some(CancelReason::Timeout));
    let detail = stack.settled(call["call_id"].as_str().unwrap(), None, Duration::from_secs(10)).await;
    assert_eq!(detail["state"], "missed");
    assert!(!pc.journal().iter().any(|e| matches!(e.seen, Seen::Notification { .. })), "no notification");
    assert_eq!(token_requests(&stack.emulators.wns).len(), 1, "one Entra token for every push");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_failure_is_not_retried_past_the_ring_deadline() {
    let stack = start(WnsFlow::Live).await;
    let pc = windows_device(&stack, "dave", 14).await;
    let pq = channel_path_and_query(&pc.token);
    stack.emulators.wns.faults().push(fault(500).for_token(&pq).times(100_000));
    let call = stack.ring(&["dave"], json!({"ring_seconds": 5})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let deadline_ms = call["expires_at_ms"].as_i64().unwrap();
    let ring_id = call["deliveries"][0]["delivery_id"].as_str().unwrap().to_owned();
    let ring = |detail: &Value| {
        detail["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["delivery_id"] == ring_id)
            .cloned()
            .unwrap()
    };

    // Past the deadline, the ring delivery has given up (failed, or skipped once the call
    // stopped ringing) after retrying while the call rang.
    let until_deadline = deadline_ms - now_ms() + 500;
    tokio::time::sleep(Duration::from_millis(until_deadline.max(0) as u64)).await;
    let settled = stack.settled(&call_id, None, Duration::from_secs(10)).await;
    let gave_up = ring(&settled);
    assert!(gave_up["status"] == "failed" || gave_up["status"] == "skipped", "{gave_up}");
    assert!(gave_up["attempts"].as_i64().unwrap() > 1, "retried while the call rang: {gave_up}");
    let outcome = gave_up["outcome"].as_str().unwrap_or_default();
    assert!(["transient", "expired", "call_ended"].contains(&outcome), "{gave_up}");

    // And it stays given up while the fault persists.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = stack.detail(&call_id).await;
    assert_eq!(ring(&later)["attempts"], gave_up["attempts"], "no attempt after the deadline");
    // Attempts are logged when they finish: each started before the deadline, so each ended
    // within moments of it.
    let attempts: Vec<i64> = later["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["delivery_id"] == ring_id.as_str() && e["event"] == "delivery_transient")
        .map(|e| e["at_ms"].as_i64().unwrap())
        .collect();
    assert!(!attempts.is_empty());
    assert!(attempts.iter().all(|at| *at < deadline_ms + 1000), "{attempts:?} vs deadline {deadline_ms}");
    assert!(pc.journal().iter().all(|e| !matches!(&e.seen, Seen::Push(h) if h.outcome == Outcome::Ring)));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_channel_prunes_the_installation() {
    let stack = start(WnsFlow::Live).await;
    let pc = windows_device(&stack, "erin", 15).await;
    let installation = pc.client.installation_id();
    let store = stack.running.store.clone();
    assert!(store.installation("erin", &installation).await.unwrap().is_some());
    stack.emulators.wns.faults().push(fault(410).for_token(&channel_path_and_query(&pc.token)));
    let call = stack.ring(&["erin"], json!({})).await;
    let detail = stack.settled(call["call_id"].as_str().unwrap(), None, Duration::from_secs(10)).await;
    let delivery = &detail["deliveries"][0];
    assert_eq!(
        (delivery["status"].as_str(), delivery["outcome"].as_str()),
        (Some("failed"), Some("invalid_token"))
    );
    assert!(store.installation("erin", &installation).await.unwrap().is_none(), "pruned");
    let next = stack.ring(&["erin"], json!({})).await;
    assert!(next["deliveries"].as_array().unwrap().is_empty(), "never rung again");
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// An independent client

/// The Python with django-push-notifications: `CALLPUSH_TEST_PYTHON`, else `python3`.
fn python_with_the_client() -> Option<String> {
    let python = std::env::var("CALLPUSH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = std::process::Command::new(&python)
        .args(["-c", "import django, push_notifications"])
        .output()
        .is_ok_and(|o| o.status.success());
    found.then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_push_notifications_sends_through_the_emulator() {
    let Some(python) = python_with_the_client() else {
        assert!(
            std::env::var_os("CALLPUSH_REQUIRE_INDEPENDENT_CLIENT").is_none(),
            "no Python with django-push-notifications (set CALLPUSH_TEST_PYTHON)"
        );
        eprintln!(
            "skipping: no Python with django-push-notifications (pip install django-push-notifications, \
             or set CALLPUSH_TEST_PYTHON)"
        );
        return;
    };
    let rig = Rig::start().await;
    let online = channel(16);
    let mut device = rig.hub.subscribe(Platform::Wns, &online);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/provider_wns/django_wns_client.py");
    let uri = format!("{}{}", rig.emulator.endpoint(), channel_path_and_query(&online));
    let run = |secret: String| {
        let (python, script, access, uri, sid) = (
            python.clone(),
            script.clone(),
            rig.emulator.live_token_url(),
            uri.clone(),
            rig.credentials.wns_package_sid.clone(),
        );
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(script)
                .args([access, uri, sid, secret, BODY.into()])
                .output()
        })
    };

    let output = run(rig.credentials.wns_client_secret.clone()).await.unwrap().unwrap();
    let said =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert_eq!(said.trim(), "ok");
    assert_eq!(device.try_recv().unwrap(), DevicePush::App { raw: BODY.into() });
    let token = rig.token_requests().pop().unwrap();
    assert_eq!(token.status, 200, "the library's token request passed the emulator's checks");
    let sent = rig.notifications().pop().unwrap();
    assert_eq!((sent.status, sent.headers["x-wns-type"].as_str()), (200, "wns/raw"));

    // Its error path sees the emulator's refusal.
    let output = run("wrong".into()).await.unwrap().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success());
    assert!(said.contains("WNSAuthenticationError"), "{said}");
}
