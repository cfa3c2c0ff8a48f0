//! The HTTP API on both databases: contract, auth and identity isolation, TTL
//! bounds, ring orchestration (answer, decline, cancel, timeout with each platform's follow-up),
//! delivery outcomes, long-polls, webhooks, key rotation and concurrency.

mod support;

use std::time::Duration;

use callpush_client::model::{CancelReason, Outcome, Platform};
use callpush_server::domain::PushKind;
use callpush_server::senders::SendOutcome;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;

const FCM: &str = "fcm-token-0123456789abcdef";
const HARMONY: &str = "MAMzLg0123456789aZWbcd";
const WNS: &str = "https://wns2-by3p.notify.windows.com/?token=AwYAAABa";

fn apns() -> String {
    "ab".repeat(32)
}

/// The iPhone's regular device token, for missed-call alerts.
fn apns_alert() -> String {
    "cd".repeat(32)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {body}"))
}

on_both_databases! {
    async fn installations_register_renew_and_withdraw(db: Db) {
        let s = TestServer::start(db).await;
        let lease = s.register("bob", "inst-1", "fcm", FCM).await;
        assert_eq!(lease["installation_id"], "inst-1");
        assert_eq!(lease["user_id"], "bob");
        let server_time = lease["server_time_ms"].as_i64().unwrap();
        assert_eq!(lease["expires_at_ms"].as_i64().unwrap(), server_time + 86_400_000);
        let key = &lease["signing_keys"][0];
        assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
        assert!(key.get("d").is_none(), "never publish the private key");

        // Idempotent, and a new token replaces the old under the same id.
        s.register("bob", "inst-1", "fcm", FCM).await;
        s.register("bob", "inst-1", "fcm", "fcm-token-rotated-0123").await;
        let call = s.ring(&["bob"], json!({})).await;
        assert_eq!(call["deliveries"].as_array().unwrap().len(), 1);
        assert_eq!(s.pushes(call["call_id"].as_str().unwrap(), 1).await[0].token, "fcm-token-rotated-0123");

        let bob = TestServer::token("bob");
        let (status, body) = s.call(Method::DELETE, "/v1/installations/inst-1", Some(&bob), None).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, body) = s.call(Method::DELETE, "/v1/installations/inst-1", Some(&bob), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
        assert!(s.ring(&["bob"], json!({})).await["deliveries"].as_array().unwrap().is_empty());
    }

    async fn one_token_rings_one_installation(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "old-install", "fcm", FCM).await;
        // The same token under a new installation of the same user (the app's data was wiped)
        // replaces the old one. (Another user's: see tests/token_ownership.rs.)
        s.register("bob", "new-install", "fcm", FCM).await;
        let call = s.ring(&["bob"], json!({})).await;
        let deliveries = call["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 1, "{call}");
        assert_eq!(deliveries[0]["installation_id"], "new-install");
    }

    async fn installation_input_is_validated_strictly(db: Db) {
        let s = TestServer::start(db).await;
        let bob = TestServer::token("bob");
        let put = |id: &str, body: Value| {
            let path = format!("/v1/installations/{id}");
            let bob = bob.clone();
            let s = &s;
            async move { s.call(Method::PUT, &path, Some(&bob), Some(body)).await }
        };
        for ttl in [299, 15_552_001] {
            let (status, body) = put("inst-1", json!({"platform": "fcm", "token": FCM, "ttl_seconds": ttl})).await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{ttl}");
        }
        for ttl in [300, 15_552_000] {
            let (status, _) = put("inst-1", json!({"platform": "fcm", "token": FCM, "ttl_seconds": ttl})).await;
            assert_eq!(status, StatusCode::OK, "{ttl}");
        }
        let cases = [
            ("inst-1", json!({"platform": "wns", "token": "https://evil.example.com/?t=1"}), "invalid_token"),
            ("inst-1", json!({"platform": "apns", "token": "zz"}), "invalid_token"),
            ("inst-1", json!({"platform": "apns", "token": apns()}), "invalid_token"),
            ("inst-1", json!({"platform": "sms", "token": FCM}), "invalid_request"),
            ("inst-1", json!({"platform": "fcm", "token": FCM, "extra": 1}), "invalid_request"),
            ("inst-1", json!({"platform": "fcm"}), "invalid_request"),
            ("inst-1", json!({"installation_id": "other", "platform": "fcm", "token": FCM}), "invalid_request"),
            ("bad$id", json!({"platform": "fcm", "token": FCM}), "invalid_request"),
        ];
        for (id, body, code) in cases {
            let (status, answer) = put(id, body.clone()).await;
            assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, code), "{body}");
        }
        // The alert token: APNs only, an APNs token, and not the VoIP token again.
        let iphone = |alert: Value| json!({"platform": "apns", "token": apns(), "apns_environment": "sandbox", "alert_token": alert});
        let alert_cases = [
            (json!({"platform": "fcm", "token": FCM, "alert_token": apns_alert()}), "alert_token is for APNs only"),
            (iphone(json!("zz".repeat(32))), "alert_token: "),
            (iphone(json!("abc")), "alert_token: "),
            (iphone(json!("<abcd 1234>")), "alert_token: "),
            (iphone(json!(apns().to_uppercase())), "alert_token equals token"),
        ];
        for (body, message) in alert_cases {
            let (status, answer) = put("inst-1", body.clone()).await;
            assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "invalid_token"), "{body}");
            assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{answer}");
        }
        let (status, answer) = put("inst-1", iphone(json!(123))).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "invalid_request"), "{answer}");
        let (status, lease) = put("inst-1", iphone(json!(apns_alert().to_uppercase()))).await;
        assert_eq!((status, lease["alert_token"].as_str()), (StatusCode::OK, Some(&*apns_alert())), "normalised");
        let (status, lease) = put("inst-1", json!({"platform": "fcm", "token": FCM})).await;
        assert_eq!((status, lease.get("alert_token")), (StatusCode::OK, None), "{lease}");
        let response = s.http.put(format!("{}/v1/installations/inst-1", s.base)).bearer_auth(&bob).body("{}").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let huge = json!({"platform": "fcm", "token": "x".repeat(100_000)});
        assert_eq!(put("inst-1", huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    async fn identities_only_touch_their_own_data(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-phone", "fcm", FCM).await;
        s.register("carol", "carol-phone", "wns", WNS).await;
        let carol = TestServer::token("carol");
        // Carol cannot take over, delete, or see Bob's installation: the same id is her own.
        let (status, body) = s.call(Method::PUT, "/v1/installations/bob-phone", Some(&carol),
            Some(json!({"platform": "fcm", "token": "carol-token-0123456"}))).await;
        assert_eq!((status, body["user_id"].as_str()), (StatusCode::OK, Some("carol")), "{body}");
        assert_eq!(s.call(Method::DELETE, "/v1/installations/bob-phone", Some(&carol), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(s.call(Method::DELETE, "/v1/installations/bob-phone", Some(&carol), None).await.0, StatusCode::NOT_FOUND);
        let call = s.ring(&["bob"], json!({})).await;
        let id = call["call_id"].as_str().unwrap();
        // A call is visible only to its callees, and only with their own installations.
        assert_eq!(s.call(Method::GET, &format!("/v1/calls/{id}"), Some(&carol), None).await.0, StatusCode::NOT_FOUND);
        let answer = json!({"installation_id": "carol-phone"});
        assert_eq!(s.call(Method::POST, &format!("/v1/calls/{id}/answer"), Some(&carol), Some(answer.clone())).await.0, StatusCode::NOT_FOUND);
        let bob = TestServer::token("bob");
        let (status, body) = s.call(Method::POST, &format!("/v1/calls/{id}/answer"), Some(&bob), Some(answer)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        assert_eq!(s.call(Method::GET, &format!("/v1/calls/{id}"), Some(&bob), None).await.1["state"], "ringing");
    }

    async fn device_tokens_and_api_keys_are_not_interchangeable(db: Db) {
        let s = TestServer::start(db).await;
        let bob = TestServer::token("bob");
        let body = json!({"from": {"id": "alice"}, "to": ["bob"]});
        let (status, answer) = s.call(Method::POST, "/v1/calls", Some(&bob), Some(body.clone())).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::UNAUTHORIZED, "unauthorized"));
        let install = json!({"platform": "fcm", "token": FCM});
        assert_eq!(s.call(Method::PUT, "/v1/installations/i1", Some(API_KEY), Some(install.clone())).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(s.call(Method::PUT, "/v1/installations/i1", None, Some(install.clone())).await.0, StatusCode::UNAUTHORIZED);
        let forged = callpush_server::auth::mint_device_token(&"y".repeat(40), "bob", 60);
        assert_eq!(s.call(Method::PUT, "/v1/installations/i1", Some(&forged), Some(install)).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(s.call(Method::POST, "/v1/calls", Some("wrong-api-key-000000"), Some(body)).await.0, StatusCode::UNAUTHORIZED);
        let (status, _) = s.call(Method::GET, "/v1/nowhere", None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = s.call(Method::PATCH, "/v1/calls", Some(API_KEY), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    }

    async fn a_ring_reaches_every_live_device_with_a_verifiable_push(db: Db) {
        let s = TestServer::start(db).await;
        let lease = s.register("bob", "bob-android", "fcm", FCM).await;
        s.register("bob", "bob-iphone", "apns", &apns()).await;
        s.register("bob", "bob-mate", "harmony", HARMONY).await;
        s.register("bob", "bob-pc", "wns", WNS).await;
        s.register("dave", "dave-phone", "fcm", "fcm-token-dave-0123456").await;
        let call = s.ring(&["bob"], json!({"call_id": "call-1", "video": true, "data": {"room": "r-7"}})).await;
        assert_eq!(call["call_id"], "call-1");
        assert_eq!(call["deliveries"].as_array().unwrap().len(), 4);
        let pushes = s.pushes("call-1", 4).await;
        assert_eq!(pushes.len(), 4);
        for push in &pushes {
            assert_eq!(push.kind, PushKind::Ring);
            assert!(push.ttl_seconds <= 30 && push.ttl_seconds >= 25, "{}", push.ttl_seconds);
            let decision = decide(push, &lease["signing_keys"], "bob");
            assert_eq!(decision.outcome, Outcome::Ring, "{:?}", push.platform);
            let incoming = decision.call.unwrap();
            assert_eq!((incoming.call_id.as_str(), incoming.caller_name.as_deref(), incoming.video), ("call-1", Some("Alice"), true));
            assert_eq!(incoming.data["room"], "r-7");
        }
        let detail = s.settled("call-1").await;
        assert!(detail["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "delivered"));
        let events: Vec<&str> = detail["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(events.iter().filter(|e| **e == "delivery_delivered").count(), 4);
        assert_eq!(events[0], "ringing");
        let (status, body) = s.call(Method::POST, "/v1/calls", Some(API_KEY),
            Some(json!({"call_id": "call-1", "from": {"id": "alice"}, "to": ["bob"]}))).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "call_exists"));
        // The refused call changed nothing, and the next one is stored.
        assert_eq!(s.settled("call-1").await["deliveries"].as_array().unwrap().len(), 4);
        let (status, _) = s.call(Method::POST, "/v1/calls", Some(API_KEY),
            Some(json!({"call_id": "call-2", "from": {"id": "alice"}, "to": ["bob"]}))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    async fn ring_requests_are_validated(db: Db) {
        let s = TestServer::start(db).await;
        let post = |body: Value| s.call(Method::POST, "/v1/calls", Some(API_KEY), Some(body));
        for (body, status) in [
            (json!({"from": {"id": "alice"}, "to": []}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": "alice"}, "to": ["bob"], "ring_seconds": 121}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": "alice"}, "to": ["bob"], "ring_seconds": 4}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": ""}, "to": ["bob"]}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": "alice"}, "to": ["has space"]}), StatusCode::BAD_REQUEST),
            (json!({"call_id": "a/b", "from": {"id": "alice"}, "to": ["bob"]}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": "alice", "name": "x\u{0}y"}, "to": ["bob"]}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": "alice"}, "to": ["bob"], "data": {"blob": "x".repeat(3000)}}), StatusCode::PAYLOAD_TOO_LARGE),
            (json!({"from": {"id": "alice"}, "to": (0..33).map(|i| format!("u{i}")).collect::<Vec<_>>()}), StatusCode::BAD_REQUEST),
            (json!({"from": {"id": "alice"}, "to": ["bob"], "surprise": true}), StatusCode::BAD_REQUEST),
        ] {
            let (got, answer) = post(body.clone()).await;
            assert_eq!(got, status, "{body} → {answer}");
            assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        // A long caller name is shortened to fit, never refused.
        let (status, _) = post(json!({"from": {"id": "alice", "name": "名".repeat(256)}, "to": ["bob"]})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    async fn answering_stops_every_other_device_the_way_its_platform_requires(db: Db) {
        let s = TestServer::start(db).await;
        let lease = s.register("bob", "bob-android", "fcm", FCM).await;
        s.register("bob", "bob-iphone", "apns", &apns()).await;
        s.register("bob", "bob-mate", "harmony", HARMONY).await;
        s.register("bob", "bob-pc", "wns", WNS).await;
        s.ring(&["bob"], json!({"call_id": "call-2"})).await;
        s.pushes("call-2", 4).await;
        s.settled("call-2").await;
        let bob = TestServer::token("bob");
        let (status, answered) = s.call(Method::POST, "/v1/calls/call-2/answer", Some(&bob), Some(json!({"installation_id": "bob-iphone"}))).await;
        assert_eq!(status, StatusCode::OK, "{answered}");
        assert_eq!((answered["state"].as_str(), answered["answered_by"].as_str()), (Some("answered"), Some("bob-iphone")));
        // FCM and WNS get a cancel push; APNs never a VoIP cancel, Push Kit VoIP only wakes.
        let pushes = s.pushes("call-2", 6).await;
        let cancels: Vec<_> = pushes.iter().filter(|p| p.kind == PushKind::Cancel).collect();
        let mut platforms: Vec<_> = cancels.iter().map(|p| p.platform).collect();
        platforms.sort_by_key(|p| p.as_str());
        assert_eq!(platforms, vec![Platform::Fcm, Platform::Wns]);
        for cancel in cancels {
            let decision = decide(cancel, &lease["signing_keys"], "bob");
            assert_eq!(decision.outcome, Outcome::Cancel);
            assert_eq!(decision.call.unwrap().reason, Some(CancelReason::AnsweredElsewhere));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.pushes("call-2", 0).await.len(), 6, "nothing else is sent");
        let (status, body) = s.call(Method::POST, "/v1/calls/call-2/answer", Some(&bob), Some(json!({"installation_id": "bob-pc"}))).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "call_not_ringing"));
        assert_eq!(body["call"]["state"], "answered");
    }

    async fn a_decline_ends_the_call_once_every_callee_declined(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-android", "fcm", FCM).await;
        s.register("bob", "bob-pc", "wns", WNS).await;
        s.register("carol", "carol-phone", "fcm", "fcm-token-carol-01234").await;
        s.ring(&["bob", "carol"], json!({"call_id": "call-3"})).await;
        s.pushes("call-3", 3).await;
        s.settled("call-3").await;
        let (status, after_bob) = s.call(Method::POST, "/v1/calls/call-3/decline", Some(&TestServer::token("bob")),
            Some(json!({"installation_id": "bob-android"}))).await;
        assert_eq!((status, after_bob["state"].as_str()), (StatusCode::OK, Some("ringing")), "carol still rings");
        // Bob's other device stops ringing.
        let pushes = s.pushes("call-3", 4).await;
        let cancel = pushes.iter().find(|p| p.kind == PushKind::Cancel).expect("a cancel");
        assert_eq!((cancel.installation_id.as_str(), cancel.platform), ("bob-pc", Platform::Wns));
        let (_, after_carol) = s.call(Method::POST, "/v1/calls/call-3/decline", Some(&TestServer::token("carol")),
            Some(json!({"installation_id": "carol-phone"}))).await;
        assert_eq!(after_carol["state"], "declined");
        let detail = s.detail("call-3").await;
        assert_eq!(detail["callees"], json!([{"user_id": "bob", "declined": true}, {"user_id": "carol", "declined": true}]));
    }

    async fn a_cancel_sends_cancels_and_missed_call_notifications(db: Db) {
        let s = TestServer::start(db).await;
        let lease = s.register("bob", "bob-android", "fcm", FCM).await;
        s.register_iphone("bob", "bob-iphone", &apns(), &apns_alert()).await;
        s.register("bob", "bob-mate", "harmony", HARMONY).await;
        s.ring(&["bob"], json!({"call_id": "call-4"})).await;
        s.pushes("call-4", 3).await;
        s.settled("call-4").await;
        let (status, cancelled) = s.call(Method::POST, "/v1/calls/call-4/cancel", Some(API_KEY), Some(json!({}))).await;
        assert_eq!((status, cancelled["state"].as_str(), cancelled["reason"].as_str()), (StatusCode::OK, Some("cancelled"), Some("caller_cancelled")));
        let pushes = s.pushes("call-4", 6).await;
        let fcm = pushes.iter().find(|p| p.kind == PushKind::Cancel).unwrap();
        assert_eq!(decide(fcm, &lease["signing_keys"], "bob").call.unwrap().reason, Some(CancelReason::CallerCancelled));
        let missed: Vec<_> = pushes.iter().filter(|p| p.kind == PushKind::Missed).collect();
        assert_eq!(missed.len(), 2, "APNs and Push Kit get a missed-call notification");
        // The APNs alert goes to the alert token: APNs refuses alerts to the VoIP token.
        let rings: Vec<_> = pushes.iter().filter(|p| p.kind == PushKind::Ring && p.platform == Platform::Apns).collect();
        assert_eq!(rings.iter().map(|p| p.token.clone()).collect::<Vec<_>>(), [apns()]);
        let alerts: Vec<_> = missed.iter().filter(|p| p.platform == Platform::Apns).collect();
        assert_eq!(alerts.iter().map(|p| p.token.clone()).collect::<Vec<_>>(), [apns_alert()]);
        let note = missed[0].missed.as_ref().unwrap();
        assert_eq!(note.app_message_id, callpush_client::wire::missed_call_message_id("call-4"));
        assert_eq!(note.caller.as_ref().and_then(|c| c.name.as_deref()), Some("Alice"));
        let (status, body) = s.call(Method::POST, "/v1/calls/call-4/cancel", Some(API_KEY), Some(json!({}))).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "call_not_ringing"));
        assert_eq!(s.call(Method::POST, "/v1/calls/nope/cancel", Some(API_KEY), Some(json!({}))).await.0, StatusCode::NOT_FOUND);
    }

    async fn nobody_answering_ends_as_missed_at_the_deadline(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-pc", "wns", WNS).await;
        s.register_iphone("bob", "bob-iphone", &apns(), &apns_alert()).await;
        s.ring(&["bob"], json!({"call_id": "call-5", "ring_seconds": 5})).await;
        let bob = TestServer::token("bob");
        // The long-poll returns when the call changes: here, at its deadline.
        let started = std::time::Instant::now();
        let (status, state) = s.call(Method::GET, "/v1/calls/call-5?wait=30", Some(&bob), None).await;
        assert_eq!((status, state["state"].as_str(), state["reason"].as_str()), (StatusCode::OK, Some("missed"), Some("timeout")));
        assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());
        let pushes = s.pushes("call-5", 4).await;
        assert!(pushes.iter().any(|p| p.kind == PushKind::Cancel && p.platform == Platform::Wns));
        assert!(pushes.iter().any(|p| p.kind == PushKind::Missed && p.platform == Platform::Apns));
    }

    async fn an_iphone_without_an_alert_token_gets_no_missed_call_alert_and_is_kept(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-iphone", "apns", &apns()).await;
        s.ring(&["bob"], json!({"call_id": "call-na"})).await;
        s.pushes("call-na", 1).await;
        s.settled("call-na").await;
        let (status, _) = s.call(Method::POST, "/v1/calls/call-na/cancel", Some(API_KEY), Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        let detail = s.settled("call-na").await;
        let kinds: Vec<_> = detail["deliveries"].as_array().unwrap().iter().map(|d| d["kind"].clone()).collect();
        assert_eq!(kinds, [json!("ring")], "no alert to the VoIP token: {detail}");
        let note = detail["timeline"].as_array().unwrap().iter().find(|e| e["event"] == "missed_call_not_sent").cloned();
        let note = note.unwrap_or_else(|| panic!("the timeline says why: {detail}"));
        assert!(note["detail"].as_str().unwrap().contains("bob-iphone"), "{note}");
        assert!(!note["detail"].as_str().unwrap().contains(&apns()), "never a token on the timeline");
        // Nothing was pruned: the next call rings it.
        let again = s.ring(&["bob"], json!({})).await;
        assert_eq!(again["deliveries"].as_array().unwrap().len(), 1, "{again}");
    }

    async fn a_dead_alert_token_is_cleared_and_the_iphone_still_rings(db: Db) {
        let s = TestServer::start(db).await;
        s.register_iphone("bob", "bob-iphone", &apns(), &apns_alert()).await;
        s.ring(&["bob"], json!({"call_id": "call-dead-alert"})).await;
        s.pushes("call-dead-alert", 1).await;
        s.settled("call-dead-alert").await;
        // APNs refuses the alert: the next send, the missed-call alert, is answered so.
        s.sender.script([SendOutcome::InvalidToken { detail: "DeviceTokenNotForTopic".into(), invalid_since: None }]);
        s.call(Method::POST, "/v1/calls/call-dead-alert/cancel", Some(API_KEY), Some(json!({}))).await;
        let detail = s.settled("call-dead-alert").await;
        let missed = detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "missed").cloned().unwrap();
        assert_eq!((missed["status"].as_str(), missed["outcome"].as_str()), (Some("failed"), Some("invalid_token")), "{detail}");
        let store = &s.running.as_ref().unwrap().store;
        let kept = store.installation("bob", "bob-iphone").await.unwrap().expect("the installation is kept");
        assert_eq!((kept.token.as_str(), kept.alert_token.as_deref()), (&*apns(), None));

        // The VoIP token still rings; with no alert token left, no alert follows.
        s.ring(&["bob"], json!({"call_id": "call-after"})).await;
        let rings = s.pushes("call-after", 1).await;
        assert_eq!((rings[0].kind, rings[0].token.as_str()), (PushKind::Ring, &*apns()));
        s.settled("call-after").await;
        s.call(Method::POST, "/v1/calls/call-after/cancel", Some(API_KEY), Some(json!({}))).await;
        let detail = s.settled("call-after").await;
        assert!(detail["deliveries"].as_array().unwrap().iter().all(|d| d["kind"] == "ring"), "{detail}");
    }

    async fn long_polls_return_on_change_or_after_the_wait(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-android", "fcm", FCM).await;
        s.register("bob", "bob-pc", "wns", WNS).await;
        s.ring(&["bob"], json!({"call_id": "call-6"})).await;
        let bob = TestServer::token("bob");
        let started = std::time::Instant::now();
        let (_, state) = s.call(Method::GET, "/v1/calls/call-6?wait=1", Some(&bob), None).await;
        assert_eq!(state["state"], "ringing");
        assert!(started.elapsed() >= Duration::from_millis(900));
        let poll = {
            let http = s.http.clone();
            let url = format!("{}/v1/calls/call-6?wait=20", s.base);
            let bob = bob.clone();
            tokio::spawn(async move { http.get(url).bearer_auth(bob).send().await.unwrap().json::<Value>().await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        s.call(Method::POST, "/v1/calls/call-6/answer", Some(&bob), Some(json!({"installation_id": "bob-pc"}))).await;
        let state = poll.await.unwrap();
        assert_eq!((state["state"].as_str(), state["answered_by"].as_str()), (Some("answered"), Some("bob-pc")));
        assert!(started.elapsed() < Duration::from_secs(2), "woken at once: {:?}", started.elapsed());
    }

    async fn provider_outcomes_are_acted_on(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-android", "fcm", FCM).await;
        // A passing failure is retried; a dead token prunes the installation.
        s.sender.script([SendOutcome::Transient { detail: "503".into() }, SendOutcome::Delivered { provider_id: Some("m-1".into()) }]);
        s.ring(&["bob"], json!({"call_id": "call-7"})).await;
        let detail = s.settled("call-7").await;
        let delivery = &detail["deliveries"][0];
        assert_eq!((delivery["status"].as_str(), delivery["attempts"].as_i64()), (Some("delivered"), Some(2)), "{detail}");
        let events: Vec<&str> = detail["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert!(events.contains(&"delivery_transient") && events.contains(&"delivery_delivered"), "{events:?}");

        s.sender.script([SendOutcome::InvalidToken { detail: "UNREGISTERED".into(), invalid_since: None }]);
        s.ring(&["bob"], json!({"call_id": "call-8"})).await;
        assert_eq!(s.settled("call-8").await["deliveries"][0]["outcome"], "invalid_token");
        assert!(s.ring(&["bob"], json!({})).await["deliveries"].as_array().unwrap().is_empty(), "pruned");

        // APNs 410: pruned only if the token was registered before APNs saw it die.
        s.register("bob", "bob-iphone", "apns", &apns()).await;
        s.sender.script([SendOutcome::InvalidToken { detail: "Unregistered".into(), invalid_since: Some(1_000) }]);
        s.ring(&["bob"], json!({"call_id": "call-9"})).await;
        s.settled("call-9").await;
        let kept = s.ring(&["bob"], json!({})).await;
        assert_eq!(kept["deliveries"].as_array().unwrap().len(), 1, "kept: registered after");
        s.settled(kept["call_id"].as_str().unwrap()).await;

        s.sender.script([SendOutcome::ConfigError { detail: "InvalidProviderToken".into() }]);
        s.ring(&["bob"], json!({"call_id": "call-10"})).await;
        assert_eq!(s.settled("call-10").await["deliveries"][0]["outcome"], "config_error");
        let (_, metrics) = s.call(Method::GET, "/metrics", None, None).await;
        let metrics = metrics.as_str().unwrap().to_owned();
        assert!(metrics.contains(r#"callpush_provider_config_errors_total{platform="apns"} 1"#), "{metrics}");
        assert!(metrics.contains("callpush_rings_total"));
        assert!(metrics.contains(r#"outcome="delivered""#));
    }

    async fn retries_never_go_past_the_ring_deadline(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-android", "fcm", FCM).await;
        s.sender.script((0..100).map(|_| SendOutcome::Transient { detail: "unavailable".into() }));
        s.ring(&["bob"], json!({"call_id": "call-11", "ring_seconds": 5})).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let detail = s.settled("call-11").await;
        let deadline = detail["created_at_ms"].as_i64().unwrap() + 5_000;
        let ring = detail["deliveries"].as_array().unwrap().iter().find(|d| d["kind"] == "ring").unwrap().clone();
        // Given up at the deadline (`failed`, `transient`), refused by the retry that came due
        // after it (`failed`, `expired`), or skipped because the call ended while a retry waited
        // (`skipped`): which one depends on where the deadline falls between backoffs.
        let end = (ring["status"].as_str().unwrap(), ring["outcome"].as_str().unwrap());
        assert!(
            matches!(end, ("failed", "transient" | "expired") | ("skipped", "transient")),
            "{detail}"
        );
        let attempts = detail["timeline"].as_array().unwrap().iter()
            .filter(|e| e["delivery_id"] == ring["delivery_id"] && e["event"] == "delivery_transient").count();
        assert!(attempts >= 3, "retried with backoff: {attempts}");
        // The attempts, not the final "given up" entry, which a retry due at the deadline writes
        // whenever its worker gets to it.
        let last = detail["timeline"].as_array().unwrap().iter()
            .filter(|e| e["delivery_id"] == ring["delivery_id"] && e["event"] == "delivery_transient")
            .map(|e| e["at_ms"].as_i64().unwrap()).max().unwrap();
        // `at_ms` is when an attempt's result was known; an instant sender answers within ms.
        assert!(last <= deadline + 200, "an attempt after the deadline: {last} > {deadline}");
    }

    async fn a_call_reads_as_one_shape_per_identity_told_apart_by_view(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-android", "fcm", FCM).await;
        s.register("bob", "bob-pc", "wns", WNS).await;
        s.ring(&["bob"], json!({"call_id": "call-views"})).await;
        s.settled("call-views").await;
        let bob = TestServer::token("bob");
        let status_keys = ["view", "call_id", "state", "reason", "answered_by", "expires_at_ms", "server_time_ms"];
        let detail_keys = [
            "view", "call_id", "state", "reason", "answered_by", "expires_at_ms", "server_time_ms", "caller_id",
            "caller_name", "video", "callees", "created_at_ms", "ended_at_ms", "deliveries", "timeline",
        ];
        // A device gets the call's status, an API key its details: each says which it is.
        let (status, device) = s.call(Method::GET, "/v1/calls/call-views", Some(&bob), None).await;
        assert_eq!((status, keys(&device)), (StatusCode::OK, sorted(&status_keys)), "{device}");
        assert_eq!((device["view"].as_str(), device["state"].as_str()), (Some("status"), Some("ringing")));
        let (status, backend) = s.call(Method::GET, "/v1/calls/call-views", Some(API_KEY), None).await;
        assert_eq!((status, keys(&backend)), (StatusCode::OK, sorted(&detail_keys)), "{backend}");
        assert_eq!(backend["view"], "detail");
        assert_eq!(backend["deliveries"].as_array().unwrap().len(), 2, "{backend}");
        assert!(backend["timeline"].as_array().unwrap().iter().all(|e| e["at_ms"].is_i64()), "{backend}");
        // The fields both share agree.
        for key in ["call_id", "state", "reason", "answered_by", "expires_at_ms"] {
            assert_eq!(device[key], backend[key], "{key}");
        }
        // Answer, decline and cancel answer the status; so does a conflict, in `call`.
        let (_, answered) = s.call(Method::POST, "/v1/calls/call-views/answer", Some(&bob), Some(json!({"installation_id": "bob-pc"}))).await;
        assert_eq!((keys(&answered), answered["view"].as_str()), (sorted(&status_keys), Some("status")), "{answered}");
        let (status, late) = s.call(Method::POST, "/v1/calls/call-views/decline", Some(&bob), Some(json!({"installation_id": "bob-android"}))).await;
        assert_eq!((status, error_code(&late)), (StatusCode::CONFLICT, "call_not_ringing"));
        assert_eq!((keys(&late["call"]), late["call"]["view"].as_str()), (sorted(&status_keys), Some("status")), "{late}");
        s.ring(&["bob"], json!({"call_id": "call-views-2"})).await;
        let (_, cancelled) = s.call(Method::POST, "/v1/calls/call-views-2/cancel", Some(API_KEY), Some(json!({}))).await;
        assert_eq!((keys(&cancelled), cancelled["view"].as_str()), (sorted(&status_keys), Some("status")), "{cancelled}");
        // The answered call's details say who answered and when it ended.
        let detail = s.detail("call-views").await;
        assert_eq!((detail["state"].as_str(), detail["answered_by"].as_str()), (Some("answered"), Some("bob-pc")));
        assert!(detail["ended_at_ms"].as_i64().unwrap() >= detail["created_at_ms"].as_i64().unwrap(), "{detail}");
    }

    async fn every_instant_is_unix_milliseconds_named_ms(db: Db) {
        let s = TestServer::start(db).await;
        let before = callpush_server::time::now_ms();
        let lease = s.register("bob", "bob-mate", "harmony", HARMONY).await;
        let off = json!({"enabled": false});
        s.call(Method::PUT, "/v1/installations/bob-mate/notifications", Some(&TestServer::token("bob")), Some(off)).await;
        let renewed = s.register("bob", "bob-mate", "harmony", HARMONY).await;
        let created = s.ring(&["bob"], json!({"call_id": "call-ms", "ring_seconds": 30})).await;
        let (_, status) = s.call(Method::GET, "/v1/calls/call-ms", Some(&TestServer::token("bob")), None).await;
        s.settled("call-ms").await;
        let (_, cancelled) = s.call(Method::POST, "/v1/calls/call-ms/cancel", Some(API_KEY), Some(json!({}))).await;
        let detail = s.settled("call-ms").await;
        let after = callpush_server::time::now_ms();
        let mut instants = Vec::new();
        for answer in [&lease, &renewed, &created, &status, &cancelled, &detail] {
            instants_in(answer, "", &mut instants);
        }
        let names: std::collections::BTreeSet<&str> = instants.iter().map(|(name, _)| name.rsplit('.').next().unwrap()).collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["at_ms", "created_at_ms", "ended_at_ms", "expires_at_ms", "reported_at_ms", "server_time_ms"],
            "{instants:?}"
        );
        // Each is a unix time in milliseconds of this test (a lease ends a day on; a ring 30 s).
        for (name, ms) in &instants {
            let latest = if name.ends_with("expires_at_ms") { after + 86_400_000 } else { after };
            assert!((before..=latest).contains(ms), "{name} = {ms} is no unix ms between {before} and {latest}");
        }
        let deadline = created["expires_at_ms"].as_i64().unwrap();
        assert_eq!(deadline, detail["created_at_ms"].as_i64().unwrap() + 30_000, "to the millisecond");
        assert_eq!(status["expires_at_ms"], deadline);
    }

    async fn messages_count_in_words_that_agree(db: Db) {
        let s = TestServer::start_with(db, |c| c.registrar.max_installations_per_user = 1).await;
        s.register("bob", "one", "fcm", FCM).await;
        let body = json!({"platform": "fcm", "token": "fcm-token-two-0123456789"});
        let (status, answer) = s.call(Method::PUT, "/v1/installations/two", Some(&TestServer::token("bob")), Some(body)).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::CONFLICT, "too_many_installations"));
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("this user already has 1 installation, "), "{message}");
        // The timeline says how many devices a ring reaches, "1 device" for one.
        s.ring(&["bob"], json!({"call_id": "call-one"})).await;
        let ringing = s.detail("call-one").await["timeline"][0].clone();
        assert_eq!((ringing["event"].as_str(), ringing["detail"].as_str()), (Some("ringing"), Some("1 device")), "{ringing}");
    }

    async fn expired_installations_are_never_rung(db: Db) {
        let s = TestServer::start(db).await;
        let store = &s.running.as_ref().unwrap().store;
        let now = callpush_server::time::now_ms();
        store.put_installation(&callpush_server::domain::Installation {
            installation_id: "stale".into(), user_id: "bob".into(), platform: Platform::Fcm, token: FCM.into(),
            apns_environment: None, app_id: None, alert_token: None, ttl_seconds: 300, registered_at: now - 400_000, expires_at: now - 100_000, notifications: None,
            device_key: None, device_key_id: None,
        }, 20, &callpush_server::store::PendingNonce::new("unused", now)).await.unwrap();
        assert!(s.ring(&["bob"], json!({})).await["deliveries"].as_array().unwrap().is_empty());
        // The server's own purge task may get there first.
        assert!(store.purge_expired(now).await.unwrap() <= 1);
        assert!(store.installation("bob", "stale").await.unwrap().is_none());
    }

    async fn many_rings_and_racing_answers(db: Db) {
        let s = TestServer::start(db).await;
        for i in 0..20 {
            s.register("bob", &format!("bob-{i}"), "fcm", &format!("fcm-token-bob-{i:04}-abcdef")).await;
        }
        // 40 rings at once, then 20 devices answer one call at once: exactly one wins.
        let rings = (0..40).map(|i| s.ring(&["bob"], json!({"call_id": format!("race-{i}")})));
        let created = futures::future::join_all(rings).await;
        assert!(created.iter().all(|c| c["deliveries"].as_array().unwrap().len() == 20));
        let bob = TestServer::token("bob");
        let answers = (0..20).map(|i| {
            let body = json!({"installation_id": format!("bob-{i}")});
            s.call(Method::POST, "/v1/calls/race-0/answer", Some(&bob), Some(body))
        });
        let results = futures::future::join_all(answers).await;
        let won = results.iter().filter(|(status, _)| *status == StatusCode::OK).count();
        let lost = results.iter().filter(|(status, body)| *status == StatusCode::CONFLICT && error_code(body) == "call_not_ringing").count();
        assert_eq!((won, lost), (1, 19), "{results:?}");
        let total = s.sender.wait_for(40 * 20, Duration::from_secs(30)).await.len();
        assert!(total >= 800, "{total}");
    }

    async fn webhooks_are_signed_and_retried(db: Db) {
        let sink = WebhookSink::start(1).await;
        let s = TestServer::start_with(db, |c| c.webhook = Some(sink.config())).await;
        s.register("bob", "bob-android", "fcm", FCM).await;
        s.ring(&["bob"], json!({"call_id": "call-12"})).await;
        s.call(Method::POST, "/v1/calls/call-12/cancel", Some(API_KEY), Some(json!({}))).await;
        let mut received = Vec::new();
        for _ in 0..100 {
            received = sink.received.lock().unwrap().clone();
            if received.len() >= 2 { break; }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(received.len(), 2, "both events, the first after a retry");
        let mut events = Vec::new();
        for (headers, body) in &received {
            let signature = headers["callpush-signature"].to_str().unwrap();
            let t: i64 = signature.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
            assert_eq!(signature, callpush_server::webhooks::signature("webhook-secret-0123456789", t, body));
            let body: Value = serde_json::from_str(body).unwrap();
            assert_eq!(headers["callpush-webhook-id"].to_str().unwrap(), body["webhook_id"].as_str().unwrap());
            events.push(body["event"].as_str().unwrap().to_owned());
        }
        events.sort();
        assert_eq!(events, vec!["call.cancelled", "call.ringing"]);
    }

    async fn a_rotated_key_is_published_before_it_signs(db: Db) {
        let mut s = TestServer::start(db).await;
        let before = s.register("bob", "bob-android", "fcm", FCM).await;
        let old_kid = before["signing_keys"][0]["kid"].as_str().unwrap().to_owned();
        let store = s.running.as_ref().unwrap().store.clone();
        let now = callpush_server::time::now_ms();
        let next = callpush_server::keyring::rotate(&store, now, now + 3_600_000).await.unwrap();
        s.restart().await;
        let lease = s.register("bob", "bob-android", "fcm", FCM).await;
        let kids: Vec<&str> = lease["signing_keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, vec![next.as_str(), old_kid.as_str()], "the next key is published early");
        s.ring(&["bob"], json!({"call_id": "call-13"})).await;
        let push = &s.pushes("call-13", 1).await[0];
        // Still signed with the old key, and verifiable with the keys a device got before.
        assert_eq!(decide(push, &before["signing_keys"], "bob").outcome, Outcome::Ring);
        let now_key = callpush_server::keyring::rotate(&store, now, now).await.unwrap();
        s.restart().await;
        s.ring(&["bob"], json!({"call_id": "call-14"})).await;
        let push = &s.pushes("call-14", 1).await[0];
        let lease = s.register("bob", "bob-android", "fcm", FCM).await;
        assert!(lease["signing_keys"].as_array().unwrap().iter().any(|k| k["kid"] == now_key.as_str()));
        assert!(lease["signing_keys"].as_array().unwrap().iter().any(|k| k["kid"] == old_kid.as_str()), "the old key stays a while");
        assert_eq!(decide(push, &lease["signing_keys"], "bob").outcome, Outcome::Ring);
        assert_eq!(decide(push, &before["signing_keys"], "bob").outcome, Outcome::Rejected, "signed with the new key");
    }
}

/// The sorted keys of an object.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> =
        value.as_object().unwrap_or_else(|| panic!("not an object: {value}")).keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    names.sort();
    names
}

/// Whether a field named `name` holds an instant: `at`, `timestamp`, `…_at`, `…_time`, each
/// perhaps followed by `_ms`.
fn is_instant(name: &str) -> bool {
    let base = name.strip_suffix("_ms").unwrap_or(name);
    base == "at" || base == "timestamp" || base.ends_with("_at") || base.ends_with("_time")
}

/// Every field of `value` that holds an instant, with its path (its name must end in `_ms`) and
/// its integer value.
fn instants_in(value: &Value, path: &str, found: &mut Vec<(String, i64)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{path}.{key}");
                if is_instant(key) {
                    assert!(key.ends_with("_ms"), "{here} holds an instant: its name ends in _ms");
                    if let Some(ms) = child.as_i64() {
                        found.push((here.clone(), ms));
                    } else {
                        assert!(child.is_null(), "{here} = {child}");
                    }
                }
                instants_in(child, &here, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| instants_in(item, path, found)),
        _ => {}
    }
}

/// `GET /v1/calls/{call_id}` answers one of two schemas told apart by `view`: a discriminator
/// with a mapping, each schema stating its one value, so a generated client cannot take the
/// details for a status. No response anywhere is an undiscriminated union.
#[tokio::test]
async fn the_openapi_document_tells_a_calls_two_shapes_apart_by_view() {
    let s = TestServer::start(Db::Sqlite).await;
    let (_, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    let schemas = &doc["components"]["schemas"];
    let ok = &doc["paths"]["/v1/calls/{call_id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    let name = ok["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    let view = &schemas[name];
    assert_eq!(
        view["discriminator"],
        json!({"propertyName": "view", "mapping": {"status": "#/components/schemas/CallStatus",
                                                    "detail": "#/components/schemas/CallDetail"}}),
        "{view}"
    );
    assert_eq!(
        view["oneOf"],
        json!([{"$ref": "#/components/schemas/CallStatus"}, {"$ref": "#/components/schemas/CallDetail"}])
    );
    for (schema, value) in [("CallStatus", "status"), ("CallDetail", "detail")] {
        let schema = &schemas[schema];
        assert_eq!(schema["properties"]["view"]["enum"], json!([value]), "{schema}");
        assert!(schema["required"].as_array().unwrap().contains(&json!("view")), "{schema}");
    }
    for field in ["deliveries", "timeline", "callees", "created_at_ms"] {
        assert!(schemas["CallDetail"]["required"].as_array().unwrap().contains(&json!(field)), "{field}");
    }
    // Device routes answer the status alone.
    for (path, method) in [
        ("/v1/calls/{call_id}/answer", "post"),
        ("/v1/calls/{call_id}/decline", "post"),
        ("/v1/calls/{call_id}/cancel", "post"),
    ] {
        let ok = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["$ref"], "#/components/schemas/CallStatus", "{path}");
    }
    assert!(!doc.to_string().contains("\"anyOf\""), "no undiscriminated unions");
}

/// Every property of the document that holds an instant is unix milliseconds named `…_ms`, but
/// for Push Kit's own receipt format, which the server reads as Huawei defines it.
#[tokio::test]
async fn the_openapi_document_names_every_instant_ms() {
    let s = TestServer::start(Db::Sqlite).await;
    let (_, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    let mut instants = Vec::new();
    for (schema_name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut stack = vec![schema];
        while let Some(schema) = stack.pop() {
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if is_instant(name) && !(schema_name == "HarmonyDeliveryStatus" && name == "timestamp") {
                    instants.push(format!("{schema_name}.{name}"));
                    assert!(
                        name.ends_with("_ms"),
                        "{schema_name}.{name} holds an instant: its name ends in _ms"
                    );
                    let description = property["description"].as_str().unwrap_or_default();
                    assert!(description.contains("unix milliseconds"), "{schema_name}.{name}: {description}");
                }
            }
            stack.extend(schema["allOf"].as_array().into_iter().flatten());
        }
    }
    assert!(instants.len() >= 9, "{instants:?}");
    let timestamp = &doc["components"]["schemas"]["HarmonyDeliveryStatus"]["properties"]["timestamp"];
    assert!(
        timestamp["description"].as_str().unwrap().contains("unix ms"),
        "Push Kit's field, as Huawei names it"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let s = TestServer::start(Db::Sqlite).await;
    let (status, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in [
        "/v1/installations/{installation_id}",
        "/v1/calls",
        "/v1/calls/{call_id}",
        "/v1/calls/{call_id}/answer",
        "/v1/calls/{call_id}/decline",
        "/v1/calls/{call_id}/cancel",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    assert!(doc["components"]["securitySchemes"]["device_token"].is_object());
    assert_eq!(s.call(Method::GET, "/healthz", None, None).await.1["status"], "ok");
}

/// Every `call_id` and `installation_id` the document describes (paths and bodies) carries the
/// pattern of its one rule in callpush-proto's `ids`.
#[tokio::test]
async fn the_openapi_document_states_each_id_rule_as_ids_defines_it() {
    fn visit(value: &Value, name: Option<&str>, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                let here = map.get("name").and_then(Value::as_str).or(name);
                if let (Some(field), Some(pattern)) = (here, map.get("pattern").and_then(Value::as_str)) {
                    found.push((field.to_owned(), pattern.to_owned()));
                }
                let inner = map.get("schema").map(|_| here).unwrap_or(None);
                for (key, child) in map {
                    let child_name = if key == "schema" { inner } else { Some(key.as_str()) };
                    visit(child, child_name, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| visit(item, name, found)),
            _ => {}
        }
    }
    let s = TestServer::start(Db::Sqlite).await;
    let (_, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    let mut found = Vec::new();
    visit(&doc, None, &mut found);
    let mut checked = 0;
    for rule in [callpush_client::ids::CALL_ID, callpush_client::ids::INSTALLATION_ID] {
        for (field, pattern) in found.iter().filter(|(field, _)| field == rule.field) {
            assert_eq!(pattern, rule.pattern, "{field}");
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} ids found in {found:?}");
}

#[tokio::test]
async fn stopping_the_server_ends_long_polls_at_once() {
    let s = TestServer::start(Db::Sqlite).await;
    s.register("bob", "bob-android", "fcm", FCM).await;
    s.ring(&["bob"], json!({"call_id": "call-stop"})).await;
    let poll = {
        let http = s.http.clone();
        let url = format!("{}/v1/calls/call-stop?wait=30", s.base);
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(TestServer::token("bob"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let mut s = s;
    s.running.take().unwrap().stop().await;
    assert_eq!(poll.await.unwrap()["state"], "ringing", "answered with the call as it is");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}
