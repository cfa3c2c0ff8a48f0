//! What devices and app backends say about installations besides registering them, on both
//! databases: the notification permission a device reports (`PUT /v1/installations/{id}/notifications`)
//! and the backend's removal of every installation of a user (`DELETE /v1/users/{id}/installations`).

mod support;

use callpush_server::domain::{Notifications, NotificationsSource};
use callpush_server::time::now_ms;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;

const HARMONY: &str = "MAMzLg0123456789aZWbcd";
const FCM: &str = "fcm-token-0123456789abcdef";

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {body}"))
}

async fn report(s: &TestServer, user: &str, id: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/v1/installations/{id}/notifications");
    s.call(Method::PUT, &path, Some(&TestServer::token(user)), Some(body)).await
}

on_both_databases! {
    async fn a_device_reports_its_notification_permission(db: Db) {
        let s = TestServer::start(db).await;
        let lease = s.register("bob", "phone", "harmony", HARMONY).await;
        assert!(lease.get("notifications").is_none(), "unknown until reported: {lease}");

        let before = now_ms();
        let (status, body) = report(&s, "bob", "phone", json!({"enabled": false})).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

        // The lease says so from then on (a renewal keeps it), with who said it and when.
        let lease = s.register("bob", "phone", "harmony", HARMONY).await;
        let n = &lease["notifications"];
        assert_eq!((n["enabled"].as_bool(), n["source"].as_str()), (Some(false), Some("device")), "{lease}");
        assert!(n["reported_at_ms"].as_i64().unwrap() >= before);

        // A call ringing it says missed calls cannot show there; an installation with its
        // notifications on says nothing.
        s.register("bob", "tablet", "fcm", FCM).await;
        assert_eq!(report(&s, "bob", "tablet", json!({"enabled": true})).await.0, StatusCode::NO_CONTENT);
        let call = s.ring(&["bob"], json!({})).await;
        let call_id = call["call_id"].as_str().unwrap();
        let phone = call["deliveries"].as_array().unwrap().iter().find(|d| d["installation_id"] == "phone").unwrap();
        let detail = s.detail(call_id).await;
        let notes: Vec<&Value> =
            detail["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == "notifications_off").collect();
        assert_eq!(notes.len(), 1, "{detail}");
        assert_eq!(notes[0]["delivery_id"], phone["delivery_id"]);
        let text = notes[0]["detail"].as_str().unwrap();
        assert!(text.contains("missed calls cannot show") && text.contains("the device reported"), "{text}");

        // Back on: the next call says nothing.
        assert_eq!(report(&s, "bob", "phone", json!({"enabled": true})).await.0, StatusCode::NO_CONTENT);
        let lease = s.register("bob", "phone", "harmony", HARMONY).await;
        assert_eq!(lease["notifications"]["enabled"], true);
        let call = s.ring(&["bob"], json!({})).await;
        let detail = s.detail(call["call_id"].as_str().unwrap()).await;
        assert!(!detail["timeline"].as_array().unwrap().iter().any(|e| e["event"] == "notifications_off"), "{detail}");
    }

    async fn only_the_owner_reports_and_bodies_are_checked(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "phone", "harmony", HARMONY).await;
        // Another user's installation, an unknown one: 404 as the other installation routes answer.
        let (status, body) = report(&s, "mallory", "phone", json!({"enabled": true})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
        let (status, body) = report(&s, "bob", "nope", json!({"enabled": true})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
        let store = &s.running.as_ref().unwrap().store;
        assert_eq!(store.installation("bob", "phone").await.unwrap().unwrap().notifications, None);
        // Bad bodies, a bad id, no token.
        for (name, body) in [
            ("not a boolean", json!({"enabled": "no"})),
            ("missing", json!({})),
            ("unknown field", json!({"enabled": true, "extra": 1})),
        ] {
            let (status, answer) = report(&s, "bob", "phone", body).await;
            assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "invalid_request"), "{name}");
        }
        let (status, _) = report(&s, "bob", "bad%20id", json!({"enabled": true})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = s
            .call(Method::PUT, "/v1/installations/phone/notifications", None, Some(json!({"enabled": true})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = s
            .call(Method::PUT, "/v1/installations/phone/notifications", Some(API_KEY), Some(json!({"enabled": true})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an API key is not a device");
    }

    async fn the_latest_report_wins_whoever_makes_it(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "phone", "harmony", HARMONY).await;
        let store = &s.running.as_ref().unwrap().store;
        let now = now_ms();
        let state = |enabled, source, at| Notifications { enabled, source, at };
        // The device says on; a receipt from before that says off changes nothing; a later one does.
        assert_eq!(store.set_notifications("bob", "phone", state(true, NotificationsSource::Device, now)).await.unwrap(), Some(true));
        let old = state(false, NotificationsSource::PushKitReceipt, now - 1_000);
        assert_eq!(store.set_notifications_for_token(callpush_client::model::Platform::Harmony, HARMONY, old).await.unwrap(), 0);
        assert!(store.installation("bob", "phone").await.unwrap().unwrap().notifications.unwrap().enabled);
        let later = state(false, NotificationsSource::PushKitReceipt, now + 1_000);
        assert_eq!(store.set_notifications_for_token(callpush_client::model::Platform::Harmony, HARMONY, later).await.unwrap(), 1);
        assert_eq!(store.installation("bob", "phone").await.unwrap().unwrap().notifications, Some(later));
        assert_eq!(store.set_notifications("bob", "nope", state(true, NotificationsSource::Device, now)).await.unwrap(), None);
    }

    async fn the_backend_removes_every_installation_of_a_user(db: Db) {
        let s = TestServer::start(db).await;
        for n in 0..3 {
            s.register("bob", &format!("bob-{n}"), "fcm", &format!("fcm-token-bob-{n:04}-abcdef")).await;
        }
        s.register("alice", "bob-0", "fcm", "fcm-token-alice-0000-abcdef").await;
        let (status, body) = s.call(Method::DELETE, "/v1/users/bob/installations", Some(API_KEY), None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"removed": 3})));
        assert!(s.ring(&["bob"], json!({})).await["deliveries"].as_array().unwrap().is_empty());
        // Others are untouched, even an installation with the same id.
        assert_eq!(s.ring(&["alice"], json!({})).await["deliveries"].as_array().unwrap().len(), 1);
        // Again, or for a user without any: 0.
        for user in ["bob", "nobody"] {
            let (status, body) = s.call(Method::DELETE, &format!("/v1/users/{user}/installations"), Some(API_KEY), None).await;
            assert_eq!((status, body), (StatusCode::OK, json!({"removed": 0})), "{user}");
        }
        // Only with an API key; a user id as the API checks it.
        let (status, _) = s.call(Method::DELETE, "/v1/users/alice/installations", Some(&TestServer::token("alice")), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = s.call(Method::DELETE, "/v1/users/alice/installations", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = s.call(Method::DELETE, "/v1/users/a%20b/installations", Some(API_KEY), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
        let long = "u".repeat(129);
        let (status, _) = s.call(Method::DELETE, &format!("/v1/users/{long}/installations"), Some(API_KEY), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(s.ring(&["alice"], json!({})).await["deliveries"].as_array().unwrap().len(), 1);
    }
}
