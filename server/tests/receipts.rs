//! Push Kit delivery receipts (`POST /v1/receipts/harmony`) on both databases: the signature
//! (good, wrong secret, legacy secret, skew, replay — across two instances of one database),
//! what each result does, bounded bodies, and the metrics.

mod support;

use std::sync::Arc;

use base64::Engine;
use callpush_server::app;
use callpush_server::config::{Config, HarmonyConfig, HarmonyReceiptsConfig};
use callpush_server::receipts::{callback_id, MAX_BODY, MAX_SKEW_MS};
use callpush_server::senders::Senders;
use callpush_server::time::now_ms;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;

const USER_NAME: &str = "callpush-receipts";
const SECRET: &[u8] = b"receipt secret from AppGallery 01";
const LEGACY: &str = "an old text secret";
const TOKEN: &str = "MAMzLg0123456789aZWbcd";

/// `[providers.harmony.receipts]` with the base64 secret, the legacy one, or both.
fn with_receipts(secret: bool, legacy: bool) -> impl FnOnce(&mut Config) {
    move |config| {
        config.providers.harmony = Some(HarmonyConfig {
            // The tests send through a recording sender: the key file is never read.
            service_account_file: "unused.json".into(),
            base_url: "http://127.0.0.1:9".into(),
            test_message: false,
            receipts: Some(HarmonyReceiptsConfig {
                user_name: USER_NAME.into(),
                secret: secret.then(|| base64::engine::general_purpose::STANDARD.encode(SECRET)),
                legacy_secret: legacy.then(|| LEGACY.into()),
            }),
        });
    }
}

fn signed(key: &[u8], at: i64) -> String {
    callback_id(key, USER_NAME, at, &uuid::Uuid::new_v4().hyphenated().to_string())
}

fn status(bi_tag: &str, token: &str, push_type: i64, result: i64) -> Value {
    json!({"biTag": bi_tag, "pushType": push_type, "token": token, "requestId": "169802171701",
           "appPackageName": "com.example.callpush",
           "deliveryStatus": {"result": result, "timestamp": now_ms()}})
}

async fn post(base: &str, header: Option<&str>, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/v1/receipts/harmony"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(header) = header {
        request = request.header("X-HUAWEI-CALLBACK-ID", header);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn receipt(s: &TestServer, statuses: Vec<Value>) -> (StatusCode, Value) {
    post(&s.base, Some(&signed(SECRET, now_ms())), json!({ "statuses": statuses }).to_string()).await
}

fn events<'a>(detail: &'a Value, event: &str) -> Vec<&'a Value> {
    detail["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == event).collect()
}

async fn metric(s: &TestServer, line: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(line).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

/// Bob's HarmonyOS phone, rung once: the call id.
async fn rung(s: &TestServer, id: &str, token: &str) -> String {
    s.register("bob", id, "harmony", token).await;
    let call = s.ring(&["bob"], json!({})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    s.settled(&call_id).await;
    call_id
}

on_both_databases! {
    async fn only_signed_fresh_unreplayed_receipts_change_anything(db: Db) {
        let s = TestServer::start_with(db, with_receipts(true, false)).await;
        let call_id = rung(&s, "phone", TOKEN).await;
        let dead = json!({"statuses": [status(&call_id, TOKEN, 10, 2)]}).to_string();
        let now = now_ms();
        // Every refusal is 401 with the error shape, and the dead-token receipt prunes nothing.
        let refusals: Vec<(&str, Option<String>)> = vec![
            ("no header", None),
            ("the wrong secret", Some(signed(b"another secret", now))),
            ("the legacy secret, not configured", Some(signed(LEGACY.as_bytes(), now))),
            ("another user name", Some(callback_id(SECRET, "someone", now, "a07bfa17-6d82-4b53-a9a2-07c0123eef1a"))),
            ("six minutes old", Some(signed(SECRET, now - MAX_SKEW_MS - 60_000))),
            ("six minutes ahead", Some(signed(SECRET, now + MAX_SKEW_MS + 60_000))),
            ("seconds, not milliseconds", Some(signed(SECRET, now / 1000))),
            ("garbled", Some("timestamp=1;nonce=x".into())),
        ];
        for (name, header) in refusals {
            let (code, body) = post(&s.base, header.as_deref(), dead.clone()).await;
            assert_eq!((code, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{name}: {body}");
        }
        assert!(s.running.as_ref().unwrap().store.installation("bob", "phone").await.unwrap().is_some());
        assert_eq!(metric(&s, "callpush_harmony_receipt_requests_total{result=\"unauthorized\"}").await, 8.0);

        // Signed as configured: accepted, answered as Push Kit expects.
        let header = signed(SECRET, now_ms());
        let delivered = json!({"statuses": [status(&call_id, TOKEN, 10, 0)]}).to_string();
        let (code, body) = post(&s.base, Some(&header), delivered.clone()).await;
        assert_eq!((code, body), (StatusCode::OK, json!({"code": "0", "message": "success"})));

        // The same request again is a replay, on this instance and on another one of the database.
        let (code, body) = post(&s.base, Some(&header), delivered.clone()).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("replayed"), "{body}");
        let other = app::start(&s.config, Senders::all(Arc::new(s.sender.clone()))).await.unwrap();
        let (code, body) = post(&format!("http://{}", other.addr), Some(&header), delivered.clone()).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "another instance: {body}");
        // A fresh request is taken by either.
        let (code, _) = post(&format!("http://{}", other.addr), Some(&signed(SECRET, now_ms())), delivered).await;
        assert_eq!(code, StatusCode::OK);
        other.stop().await;
        assert_eq!(metric(&s, "callpush_harmony_receipt_requests_total{result=\"replayed\"}").await, 1.0);
        assert_eq!(events(&s.detail(&call_id).await, "delivered_to_device").len(), 2);
    }

    async fn the_legacy_secret_is_its_text_and_both_may_be_configured(db: Db) {
        let s = TestServer::start_with(db, with_receipts(false, true)).await;
        let body = json!({"statuses": [status("no-such-call", TOKEN, 10, 0)]}).to_string();
        assert_eq!(post(&s.base, Some(&signed(LEGACY.as_bytes(), now_ms())), body.clone()).await.0, StatusCode::OK);
        assert_eq!(post(&s.base, Some(&signed(SECRET, now_ms())), body.clone()).await.0, StatusCode::UNAUTHORIZED);
        drop(s);
        let both = TestServer::start_with(db, with_receipts(true, true)).await;
        assert_eq!(post(&both.base, Some(&signed(LEGACY.as_bytes(), now_ms())), body.clone()).await.0, StatusCode::OK);
        assert_eq!(post(&both.base, Some(&signed(SECRET, now_ms())), body).await.0, StatusCode::OK);
    }

    async fn each_result_does_what_push_kit_asks(db: Db) {
        let s = TestServer::start_with(db, with_receipts(true, false)).await;
        let store = &s.running.as_ref().unwrap().store;
        let tokens: Vec<String> = (0..6).map(|n| format!("MAMzLg{n:04}0123456789aZWbcd")).collect();
        for (n, token) in tokens.iter().enumerate() {
            s.register("bob", &format!("phone-{n}"), "harmony", token).await;
        }
        let call = s.ring(&["bob"], json!({})).await;
        let call_id = call["call_id"].as_str().unwrap().to_owned();
        s.settled(&call_id).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;

        // 0 delivered, 2 uninstalled, 5 token mismatch, 6 notifications off, 10 inactive, 14 other.
        let results = [0, 2, 5, 6, 10, 14];
        let statuses = tokens.iter().zip(results).map(|(token, result)| status(&call_id, token, 10, result)).collect();
        let (code, body) = receipt(&s, statuses).await;
        assert_eq!(code, StatusCode::OK, "{body}");

        let detail = s.detail(&call_id).await;
        let delivery_of = |n: usize| {
            detail["deliveries"].as_array().unwrap().iter()
                .find(|d| d["installation_id"] == format!("phone-{n}")).unwrap()["delivery_id"].clone()
        };
        let delivered = events(&detail, "delivered_to_device");
        assert_eq!(delivered.len(), 1, "{detail}");
        assert_eq!(delivered[0]["delivery_id"], delivery_of(0));
        let dead = events(&detail, "token_dead");
        assert_eq!(dead.len(), 3, "{detail}");
        let mut dead_deliveries: Vec<String> = dead.iter().map(|e| e["delivery_id"].as_str().unwrap().to_owned()).collect();
        let mut expected: Vec<String> = [1, 2, 4].map(|n| delivery_of(n).as_str().unwrap().to_owned()).to_vec();
        dead_deliveries.sort();
        expected.sort();
        assert_eq!(dead_deliveries, expected);
        assert!(dead.iter().all(|e| e["detail"].as_str().unwrap().contains("pruned")), "{dead:?}");
        let off = events(&detail, "notifications_off");
        assert_eq!((off.len(), &off[0]["delivery_id"]), (1, &delivery_of(3)), "{detail}");
        let other = events(&detail, "device_receipt");
        assert_eq!(other.len(), 1);
        assert!(other[0]["detail"].as_str().unwrap().starts_with("Push Kit receipt 14"), "{other:?}");

        // 2, 5 and 10 pruned their installations; 0, 6 and 14 kept theirs, 6 marked "off".
        for (n, kept) in [(0, true), (1, false), (2, false), (3, true), (4, false), (5, true)] {
            let inst = store.installation("bob", &format!("phone-{n}")).await.unwrap();
            assert_eq!(inst.is_some(), kept, "phone-{n}");
        }
        let off = store.installation("bob", "phone-3").await.unwrap().unwrap().notifications.unwrap();
        assert_eq!((off.enabled, off.source.as_str()), (false, "push_kit_receipt"));
        assert_eq!(metric(&s, "callpush_pruned_installations_total").await, 3.0);
        for (result, n) in [("0", 1.0), ("2", 1.0), ("6", 1.0), ("14", 1.0)] {
            assert_eq!(metric(&s, &format!("callpush_harmony_receipts_total{{result=\"{result}\"}}")).await, n, "{result}");
        }

        // The next ring rings only what is left, and says whose notifications are off.
        let next = s.ring(&["bob"], json!({})).await;
        assert_eq!(next["deliveries"].as_array().unwrap().len(), 3);
        let next_id = next["call_id"].as_str().unwrap();
        let notes = events(&s.detail(next_id).await, "notifications_off").into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0]["detail"].as_str().unwrap().contains("missed calls cannot show"), "{notes:?}");

        // Receipts for unknown calls, verify pushes and tokens nobody holds change nothing else.
        let (code, _) = receipt(&s, vec![
            status("verify-0123456789abcdef0123456789abcdef", "MAMzLgUnknownToken0001", 10, 2),
            status("not a call id!", tokens[0].as_str(), 10, 0),
            json!({"token": tokens[0], "pushType": 1, "formStatus": {"formId": 1, "result": 0}}),
        ]).await;
        assert_eq!(code, StatusCode::OK);
        assert!(store.installation("bob", "phone-0").await.unwrap().is_some());
        assert_eq!(metric(&s, "callpush_harmony_receipts_total{result=\"not_delivery\"}").await, 1.0);
    }

    async fn a_token_registered_after_the_receipt_is_not_pruned(db: Db) {
        let s = TestServer::start_with(db, with_receipts(true, false)).await;
        let call_id = rung(&s, "phone", TOKEN).await;
        // A receipt saying the token died a minute ago arrives after the app registered it again.
        let mut old = status(&call_id, TOKEN, 10, 5);
        old["deliveryStatus"]["timestamp"] = json!(now_ms() - 60_000);
        s.register("bob", "phone", "harmony", TOKEN).await;
        assert_eq!(receipt(&s, vec![old]).await.0, StatusCode::OK);
        assert!(s.running.as_ref().unwrap().store.installation("bob", "phone").await.unwrap().is_some());
    }

    async fn receipt_bodies_are_bounded_and_checked(db: Db) {
        let s = TestServer::start_with(db, with_receipts(true, false)).await;
        let now = now_ms();
        // Over the body cap: refused before anything is read.
        let huge = format!("{{\"statuses\": [{}]}}", "\"x\",".repeat(MAX_BODY / 4));
        let (code, body) = post(&s.base, Some(&signed(SECRET, now)), huge).await;
        assert_eq!((code, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{body}");
        // Too many statuses, malformed statuses: 400 with what is wrong.
        let many = json!({"statuses": vec![status("c", TOKEN, 10, 0); 1001]}).to_string();
        assert!(many.len() < MAX_BODY);
        for (name, body, says) in [
            ("1001 statuses", many, "1001 statuses"),
            ("no statuses", "{}".to_owned(), "statuses"),
            ("not JSON", "{".to_owned(), "not a receipt"),
            ("no token", json!({"statuses": [{"deliveryStatus": {"result": 0}}]}).to_string(), "token"),
            ("long biTag", json!({"statuses": [status(&"b".repeat(65), TOKEN, 10, 0)]}).to_string(), "biTag"),
        ] {
            let (code, answer) = post(&s.base, Some(&signed(SECRET, now_ms())), body).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{name}: {answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains(says), "{name}: {answer}");
        }
        // A signature is checked before the body: unsigned garbage is 401, not 400.
        assert_eq!(post(&s.base, None, "{").await.0, StatusCode::UNAUTHORIZED);
        // A body refused as invalid does not use up its nonce.
        let header = signed(SECRET, now_ms());
        assert_eq!(post(&s.base, Some(&header), "{").await.0, StatusCode::BAD_REQUEST);
        let good = json!({"statuses": [status("c", TOKEN, 10, 0)]}).to_string();
        assert_eq!(post(&s.base, Some(&header), good).await.0, StatusCode::OK);
    }

    async fn without_receipt_settings_the_route_is_not_there(db: Db) {
        let s = TestServer::start(db).await;
        let (code, body) = post(&s.base, Some(&signed(SECRET, now_ms())), "{\"statuses\": []}").await;
        assert_eq!((code, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
        let (code, _) = s.call(Method::GET, "/v1/receipts/harmony", None, None).await;
        assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[test]
fn receipt_settings_need_a_secret_and_a_base64_one() {
    let config = |secret: Option<&str>, legacy: Option<&str>| HarmonyReceiptsConfig {
        user_name: USER_NAME.into(),
        secret: secret.map(Into::into),
        legacy_secret: legacy.map(Into::into),
    };
    assert!(config(None, None).keys().is_err(), "unsigned receipts are never accepted");
    assert!(config(Some("not base64!"), None).keys().is_err());
    assert!(config(Some(""), None).keys().is_err());
    assert!(config(None, Some("")).keys().is_err());
    assert_eq!(
        config(Some("c2VjcmV0"), Some("old")).keys().unwrap(),
        vec![b"secret".to_vec(), b"old".to_vec()]
    );
}

on_both_databases! {
    async fn a_full_batch_of_receipts_is_handled_in_seconds(db: Db) {
        let s = TestServer::start_with(db, with_receipts(true, false)).await;
        let tokens: Vec<String> = (0..10).map(|n| format!("MAMzLg{n:04}0123456789aZWbcd")).collect();
        for (n, token) in tokens.iter().enumerate() {
            s.register("bob", &format!("phone-{n}"), "harmony", token).await;
        }
        let mut calls = Vec::new();
        for _ in 0..10 {
            let call = s.ring(&["bob"], json!({})).await;
            calls.push(call["call_id"].as_str().unwrap().to_owned());
        }
        for call in &calls {
            s.settled(call).await;
        }
        // 1000 statuses, the most one request may carry: 10 calls × 10 devices, each reported 10 times.
        let statuses: Vec<Value> = (0..1000)
            .map(|i| status(&calls[i % 10], &tokens[(i / 10) % 10], 10, [0, 14][(i / 10) % 2]))
            .collect();
        let started = std::time::Instant::now();
        let (code, body) = receipt(&s, statuses).await;
        let took = started.elapsed();
        assert_eq!(code, StatusCode::OK, "{body}");
        eprintln!("{db:?}: 1000 receipt statuses handled in {} ms", took.as_millis());
        assert!(took < std::time::Duration::from_secs(20), "{took:?}");
        assert_eq!(events(&s.detail(&calls[0]).await, "delivered_to_device").len(), 50);
    }
}
