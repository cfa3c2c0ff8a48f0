//! Push tokens belong to devices: a token another user's installation holds moves only once the
//! device proves it holds it (a verify push whose nonce the SDK sends back), and until then the
//! other installation keeps ringing. Installation ids are scoped per user, and a user's
//! installations are capped. On both databases.

mod support;

use std::sync::Arc;
use std::time::Duration;

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::client::{
    AccessTokenError, AccessTokenProvider, CallEvent, CallListener, CallUiError, Client, ClientConfig,
    IncomingCallError, RegisterPushOptions, SystemCallUi,
};
use callpush_client::model::{Call, Outcome, Platform, RawPush, Verification};
use callpush_client::wire::{harmony_delivery, KeySet, ProviderPayload};
use callpush_server::senders::OutgoingPush;
use callpush_server::store::{Verified, VerifyRefusal};
use callpush_server::time::{now_ms, now_secs};
use callpush_server::verification::NONCE_LIFETIME;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;

const TOKEN: &str = "fcm-token-of-bobs-phone-0123456789";

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {body}"))
}

/// The push exactly as the platform hands it to the app.
fn raw(push: &OutgoingPush) -> String {
    match push.payload.clone().expect("a push with a payload") {
        ProviderPayload::Harmony { extra_data } => harmony_delivery("sys-1", &extra_data, "t"),
        ProviderPayload::Fcm { data } => serde_json::to_string(&data).unwrap(),
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    }
}

/// The verify pushes sent to `token` so far, once at least `n` exist (or after a few seconds).
async fn verify_pushes(s: &TestServer, token: &str, n: usize) -> Vec<OutgoingPush> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sent: Vec<_> = s
            .sender
            .sent()
            .into_iter()
            .filter(|p| p.call_id.starts_with("verify-") && p.token == token)
            .collect();
        if sent.len() >= n || tokio::time::Instant::now() >= deadline {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a device makes of a verify push: its claims, checked against the server's keys.
fn verification(push: &OutgoingPush, keys: &Value) -> Verification {
    let keys = KeySet::from_json(&keys.to_string()).unwrap();
    let now = now_secs();
    let decided =
        adapter_for(push.platform).decide(&RawPush::from(raw(push)), &HandleContext::v1(&keys, now, None));
    assert_eq!(decided.outcome.outcome, Outcome::Verify, "{decided:?}");
    assert!(decided.outcome.call.is_none(), "a verify push is not a call");
    decided.verify.expect("a verify request").verification
}

/// Registers `token` for `user` under `id`; returns the status and the lease.
async fn put(s: &TestServer, user: &str, id: &str, token: &str) -> (StatusCode, Value) {
    let body = json!({"platform": "fcm", "token": token});
    s.call(Method::PUT, &format!("/v1/installations/{id}"), Some(&TestServer::token(user)), Some(body)).await
}

async fn verify(s: &TestServer, user: &str, id: &str, nonce: &str) -> (StatusCode, Value) {
    let path = format!("/v1/installations/{id}/verify");
    s.call(Method::POST, &path, Some(&TestServer::token(user)), Some(json!({"nonce": nonce}))).await
}

/// The tokens a ring to `user` goes to.
async fn rung_tokens(s: &TestServer, user: &str) -> Vec<String> {
    let call = s.ring(&[user], json!({})).await;
    let n = call["deliveries"].as_array().unwrap().len();
    s.pushes(call["call_id"].as_str().unwrap(), n).await.into_iter().map(|p| p.token).collect()
}

on_both_databases! {
    async fn another_users_token_keeps_ringing_its_owner_until_the_device_proves_it(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-phone", "fcm", TOKEN).await;
        // Alice names Bob's token: nothing of Bob's changes; her registration waits.
        let (status, lease) = put(&s, "alice", "alice-phone", TOKEN).await;
        assert_eq!((status, lease["verification"].as_str()), (StatusCode::ACCEPTED, Some("pending")), "{lease}");
        assert_eq!(lease["user_id"], "alice");
        assert_eq!(rung_tokens(&s, "bob").await, vec![TOKEN.to_owned()], "Bob's phone still rings");
        assert!(rung_tokens(&s, "alice").await.is_empty(), "Alice's calls never reach Bob's phone");

        // The verify push went to the token, for Alice's installation.
        let pushes = verify_pushes(&s, TOKEN, 1).await;
        assert_eq!(pushes.len(), 1);
        let v = verification(&pushes[0], &lease["signing_keys"]);
        assert_eq!((v.aud.as_str(), v.installation_id.as_str()), ("alice", "alice-phone"));
        // Registering again while the nonce lives sends no second push.
        assert_eq!(put(&s, "alice", "alice-phone", TOKEN).await.0, StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(verify_pushes(&s, TOKEN, 2).await.len(), 1, "one verify push per nonce");

        // Refused: a wrong nonce, the right nonce from another user, a malformed one.
        let (status, body) = verify(&s, "alice", "alice-phone", "bm90LXRoZS1ub25jZQ").await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "verification_failed"));
        let (status, body) = verify(&s, "bob", "alice-phone", &v.nonce).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
        let (status, body) = verify(&s, "bob", "bob-phone", &v.nonce).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "verification_failed"));
        let (status, body) = verify(&s, "alice", "alice-phone", "not a nonce!").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
        assert_eq!(rung_tokens(&s, "bob").await, vec![TOKEN.to_owned()]);

        // The device answers: the token moves, and the move is recorded.
        let (status, lease) = verify(&s, "alice", "alice-phone", &v.nonce).await;
        assert_eq!(status, StatusCode::OK, "{lease}");
        assert!(lease.get("verification").is_none(), "{lease}");
        assert_eq!(rung_tokens(&s, "alice").await, vec![TOKEN.to_owned()]);
        assert!(rung_tokens(&s, "bob").await.is_empty(), "Bob's old installation is gone");
        let moves = s.running.as_ref().unwrap().store.token_moves().await.unwrap();
        assert_eq!(moves.len(), 1, "{moves:?}");
        let m = &moves[0];
        assert_eq!((m.from_user_id.as_str(), m.from_installation.as_str()), ("bob", "bob-phone"));
        assert_eq!((m.to_user_id.as_str(), m.to_installation.as_str()), ("alice", "alice-phone"));
        assert!(!m.token.contains(TOKEN), "the record keeps the token redacted: {}", m.token);

        // A nonce is good once.
        let (status, body) = verify(&s, "alice", "alice-phone", &v.nonce).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "verification_failed"));
    }

    async fn a_nonce_expires(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-phone", "fcm", TOKEN).await;
        let (status, lease) = put(&s, "alice", "alice-phone", TOKEN).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let v = verification(&verify_pushes(&s, TOKEN, 1).await[0], &lease["signing_keys"]);
        let store = &s.running.as_ref().unwrap().store;
        let later = now_ms() + NONCE_LIFETIME + 1;
        assert_eq!(
            store.verify_installation("alice", "alice-phone", &v.nonce, later).await.unwrap(),
            Verified::Refused(VerifyRefusal::Expired)
        );
        assert_eq!(rung_tokens(&s, "bob").await, vec![TOKEN.to_owned()]);
        // Alice's registration is still there, waiting for a proof.
        let pending = store.installation("alice", "alice-phone").await.unwrap().unwrap();
        assert_eq!(pending.token, TOKEN);
    }

    async fn the_sdk_answers_the_verify_push_and_the_token_moves(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "bob-phone", "fcm", TOKEN).await;
        // The phone Bob used now belongs to Alice: her app registers the same token.
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Events::default());
        let client = Client::new(
            ClientConfig::new(s.base.clone(), dir.path().to_string_lossy(), Platform::Fcm),
            Arc::new(callpush_client::client::ReqwestHttpClient::new()),
            Arc::new(Token(TestServer::token("alice"))),
            Arc::new(NoUi),
            events.clone(),
        )
        .unwrap();
        let registration = client.register_push(TOKEN.into(), RegisterPushOptions::default()).await.unwrap();
        assert!(registration.verification_pending, "{registration:?}");
        assert_eq!(rung_tokens(&s, "bob").await, vec![TOKEN.to_owned()]);

        let push = verify_pushes(&s, TOKEN, 1).await.pop().expect("a verify push");
        let outcome = client.handle_push(raw(&push));
        assert_eq!(outcome.outcome, Outcome::Verify);
        assert!(outcome.call.is_none());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client.registration().unwrap().verification_pending {
            assert!(tokio::time::Instant::now() < deadline, "the client never answered: {:?}", events.all());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(rung_tokens(&s, "alice").await, vec![TOKEN.to_owned()]);
        assert!(rung_tokens(&s, "bob").await.is_empty());
        assert!(events.all().iter().all(|e| !matches!(e, CallEvent::Incoming { .. } | CallEvent::Error { .. })),
                "{:?}", events.all());
    }

    async fn installation_ids_are_per_user_and_reveal_nothing(db: Db) {
        let s = TestServer::start(db).await;
        s.register("bob", "phone", "fcm", TOKEN).await;
        let (status, lease) = put(&s, "alice", "phone", "fcm-token-of-alices-phone-98765").await;
        assert_eq!((status, lease["user_id"].as_str()), (StatusCode::OK, Some("alice")), "{lease}");
        assert_eq!(rung_tokens(&s, "bob").await, vec![TOKEN.to_owned()]);
        assert_eq!(rung_tokens(&s, "alice").await, vec!["fcm-token-of-alices-phone-98765".to_owned()]);
        // Alice's delete touches her own only.
        let alice = TestServer::token("alice");
        assert_eq!(s.call(Method::DELETE, "/v1/installations/phone", Some(&alice), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(rung_tokens(&s, "bob").await, vec![TOKEN.to_owned()]);
        // Answering with an id of Bob's is answering with an id Alice does not have.
        let call = s.ring(&["alice"], json!({})).await;
        let path = format!("/v1/calls/{}/answer", call["call_id"].as_str().unwrap());
        let (status, body) = s.call(Method::POST, &path, Some(&alice), Some(json!({"installation_id": "phone"}))).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }

    async fn a_user_has_at_most_the_configured_installations(db: Db) {
        let s = TestServer::start_with(db, |c| c.registrar.max_installations_per_user = 2).await;
        assert_eq!(put(&s, "bob", "one", "fcm-token-one-0123456789").await.0, StatusCode::OK);
        assert_eq!(put(&s, "bob", "two", "fcm-token-two-0123456789").await.0, StatusCode::OK);
        let (status, body) = put(&s, "bob", "three", "fcm-token-three-0123456789").await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "too_many_installations"));
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains('2') && message.contains("unregister"), "{message}");
        // Renewing (even with a new token) is never refused; other users are not affected.
        assert_eq!(put(&s, "bob", "two", "fcm-token-two-rotated-0123").await.0, StatusCode::OK);
        assert_eq!(put(&s, "carol", "three", "fcm-token-three-0123456789").await.0, StatusCode::OK);
        // A withdrawn installation frees its place.
        let bob = TestServer::token("bob");
        assert_eq!(s.call(Method::DELETE, "/v1/installations/one", Some(&bob), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(put(&s, "bob", "three", "fcm-token-four-0123456789").await.0, StatusCode::OK);
        assert_eq!(rung_tokens(&s, "bob").await.len(), 2);
    }
}

struct Token(String);

#[async_trait::async_trait]
impl AccessTokenProvider for Token {
    async fn access_token(&self, _force_refresh: bool) -> Result<String, AccessTokenError> {
        Ok(self.0.clone())
    }
}

struct NoUi;

impl SystemCallUi for NoUi {
    fn report_incoming_call(&self, _call: Call) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_and_end_call(
        &self,
        _call: Option<Call>,
        _reason: IncomingCallError,
    ) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_incoming_call_error(
        &self,
        _id: Option<String>,
        _reason: IncomingCallError,
    ) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_outgoing_call(&self, _call: Call) -> Result<(), CallUiError> {
        Ok(())
    }
    fn report_call_state(&self, _call: Call) -> Result<(), CallUiError> {
        Ok(())
    }
}

#[derive(Default)]
struct Events(std::sync::Mutex<Vec<CallEvent>>);

impl Events {
    fn all(&self) -> Vec<CallEvent> {
        self.0.lock().unwrap().clone()
    }
}

impl CallListener for Events {
    fn on_event(&self, event: CallEvent) {
        self.0.lock().unwrap().push(event);
    }
}
