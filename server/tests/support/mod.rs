//! A server started in-process for tests, on SQLite or PostgreSQL, with a recording sender.
#![allow(dead_code)]

pub mod process;
pub mod rig;

use std::time::Duration;

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{HandleOutcome, RawPush};
use callpush_client::wire::{harmony_delivery, KeySet, ProviderPayload};
use callpush_emulators::recording::RecordingSender;
use callpush_server::app::{self, Running};
use callpush_server::auth::mint_device_token;
use callpush_server::config::{Config, SenderConfig, WebhookConfig};
use callpush_server::senders::{OutgoingPush, Senders};
use callpush_server::time::now_secs;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Defines each test once per database: `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($(async fn $name:ident($db:ident: Db) $body:block)*) => {
        $(
            mod $name {
                use super::*;
                async fn run($db: Db) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { run(Db::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if support::postgres_url().is_some() { run(Db::Postgres).await }
                }
            }
        )*
    };
}

/// The PostgreSQL server tests use: `CALLPUSH_TEST_POSTGRES_URL` (tests/run.sh starts one).
/// Without it PostgreSQL tests are skipped, unless `CALLPUSH_REQUIRE_POSTGRES` is set.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CALLPUSH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CALLPUSH_REQUIRE_POSTGRES").is_some() => {
            panic!("CALLPUSH_TEST_POSTGRES_URL is not set; tests/run.sh starts a PostgreSQL for the tests")
        }
        _ => {
            eprintln!("skipping a PostgreSQL test: CALLPUSH_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A fresh, empty database for one test.
pub async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("callpush.db").display()),
        Db::Postgres => {
            use sqlx::Connection;
            let admin = postgres_url().expect("postgres url");
            let name = format!("callpush_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the test PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let (base, _) = admin.rsplit_once('/').expect("postgres url has a database");
            format!("{base}/{name}")
        }
    }
}

pub const API_KEY: &str = "test-api-key-0123456789";
pub const SECRET: &str = "test-device-token-secret-0123456789abcdef";

/// A running server, its sender, and an HTTP client.
pub struct TestServer {
    pub base: String,
    pub sender: RecordingSender,
    pub config: Config,
    pub running: Option<Running>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(db: Db) -> TestServer {
        TestServer::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: Db, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: fresh_database(db, dir.path()).await,
            database_connections: 8,
            data_dir: dir.path().to_owned(),
            api_keys: vec![API_KEY.into()],
            sender: SenderConfig::Noop,
            ..Config::default()
        };
        config.auth.hs256_secret = Some(SECRET.into());
        configure(&mut config);
        let sender = RecordingSender::new();
        let running = app::start(&config, Senders::all(std::sync::Arc::new(sender.clone()))).await.unwrap();
        let base = format!("http://{}", running.addr);
        TestServer { base, sender, config, running: Some(running), http: reqwest::Client::new(), dir }
    }

    /// Stops and starts again on the same database (a restart).
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        let running =
            app::start(&self.config, Senders::all(std::sync::Arc::new(self.sender.clone()))).await.unwrap();
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub fn token(user: &str) -> String {
        mint_device_token(SECRET, user, 3600)
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Registers an installation for `user`; returns the lease.
    pub async fn register(&self, user: &str, id: &str, platform: &str, token: &str) -> Value {
        let mut body = json!({"platform": platform, "token": token});
        if platform == "apns" {
            body["apns_environment"] = json!("sandbox");
        }
        let (status, lease) = self
            .call(Method::PUT, &format!("/v1/installations/{id}"), Some(&Self::token(user)), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{lease}");
        lease
    }

    /// Registers an iPhone: its VoIP `token` and, for missed-call alerts, its `alert_token`.
    pub async fn register_iphone(&self, user: &str, id: &str, token: &str, alert_token: &str) -> Value {
        let body = json!({"platform": "apns", "token": token, "apns_environment": "sandbox",
                          "alert_token": alert_token});
        let (status, lease) = self
            .call(Method::PUT, &format!("/v1/installations/{id}"), Some(&Self::token(user)), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{lease}");
        lease
    }

    /// Rings `to`; returns the created call.
    pub async fn ring(&self, to: &[&str], extra: Value) -> Value {
        let mut body = json!({"from": {"id": "alice", "name": "Alice"}, "to": to, "video": false});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (status, call) = self.call(Method::POST, "/v1/calls", Some(API_KEY), Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{call}");
        call
    }

    /// Pushes sent so far for `call_id`, once at least `n` exist (or after a few seconds).
    pub async fn pushes(&self, call_id: &str, n: usize) -> Vec<OutgoingPush> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let sent: Vec<_> = self.sender.sent().into_iter().filter(|p| p.call_id == call_id).collect();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The call's details as the app backend sees them.
    pub async fn detail(&self, call_id: &str) -> Value {
        let (status, detail) =
            self.call(Method::GET, &format!("/v1/calls/{call_id}"), Some(API_KEY), None).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        detail
    }

    /// Waits until the call's deliveries are all settled (none pending or sending).
    pub async fn settled(&self, call_id: &str) -> Value {
        for _ in 0..500 {
            let detail = self.detail(call_id).await;
            let busy = detail["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["status"] == "pending" || d["status"] == "sending");
            if !busy {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("deliveries of {call_id} never settled: {}", self.detail(call_id).await);
    }
}

/// What the device makes of a push: decoded exactly as the platform would hand it over.
pub fn decide(push: &OutgoingPush, keys: &Value, user: &str) -> HandleOutcome {
    let raw = match push.payload.clone().expect("a call push") {
        ProviderPayload::Harmony { extra_data } => harmony_delivery("sys-1", &extra_data, "t"),
        ProviderPayload::Fcm { data } => serde_json::to_string(&data).unwrap(),
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    };
    let keys = KeySet::from_json(&keys.to_string()).unwrap();
    let now = now_secs();
    adapter_for(push.platform).handle(&RawPush::from(raw), &HandleContext::v1(&keys, now, Some(user)))
}

/// A webhook receiver on loopback that records what it is sent.
pub struct WebhookSink {
    pub url: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

impl WebhookSink {
    pub async fn start(fail_first: usize) -> WebhookSink {
        use axum::routing::post;
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(fail_first));
        let store = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let store = store.clone();
                let failures = failures.clone();
                async move {
                    if failures.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                        failures.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    store.lock().unwrap().push((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        WebhookSink { url, received }
    }

    pub fn config(&self) -> WebhookConfig {
        WebhookConfig { url: self.url.clone(), secret: "webhook-secret-0123456789".into() }
    }
}
