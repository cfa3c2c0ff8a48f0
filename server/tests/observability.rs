//! What an operator sees of `callpush serve` run as a process: its log at the default level (no
//! `CALLPUSH_LOG`), in both formats, and its `/metrics`.
//!
//! - Text: one line per call state change and per failed or retried delivery, with the call id,
//!   delivery id, platform and outcome, tokens shortened and no secret; no ANSI escapes when
//!   stderr is a file.
//! - JSON (`log_format = "json"`): every line is a JSON object, the `--dev` banner included.
//! - `/metrics`: Prometheus text, long-polls in their own histogram.
//!
//! The Prometheus parsers themselves read `/metrics` in tests/metrics/check.sh.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callpush_emulators::device::token_for;
use callpush_emulators::faults::Fault;
use callpush_emulators::fcm::{error_body, FcmEmulator};
use callpush_server::auth::mint_device_token;
use callpush_server::config::FcmConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::process::{free_port, wait_healthy};
use support::rig::EmulatorRig;

const API_KEY: &str = "observability-test-api-key-0123";
const SECRET: &str = "observability-test-device-secret-0123456789abcdef";

/// `callpush serve` with only its configuration file: no `CALLPUSH_*` variable, so the log is at
/// its default level. Killed when dropped.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Serve {
    /// Starts `callpush serve --config <dir>/callpush.toml` (with `--dev` if asked) on a free
    /// port with `settings` added to the configuration, stderr to `<dir>/serve.log`.
    async fn start(dir: &Path, settings: &str, dev: bool) -> Serve {
        let port = free_port();
        let config = dir.join("callpush.toml");
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"sqlite://{db}\"\ndata_dir = \"{dir}\"\n{settings}\n",
            db = dir.join("callpush.db").display(),
            dir = dir.display(),
        );
        std::fs::write(&config, toml).unwrap();
        let log = dir.join("serve.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_callpush"));
        command.args(["serve", "--config", config.to_str().unwrap()]);
        if dev {
            command.arg("--dev");
        }
        for (name, _) in std::env::vars() {
            if name.starts_with("CALLPUSH_") || name == "NO_COLOR" {
                command.env_remove(name);
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start callpush serve");
        let serve =
            Serve { child, base: format!("http://127.0.0.1:{port}"), log, http: reqwest::Client::new() };
        wait_healthy(&serve.base, Some(&serve.log)).await;
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 10 s) until a log line says `message` and has `fields`; that line.
    async fn line(&self, message: &str, fields: &[(&str, &str)]) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains(message) && has_fields(l, fields)) {
                return line.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no log line `{message}` with {fields:?} in:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a text log line has each `key=value` (a string field is written quoted).
fn has_fields(line: &str, fields: &[(&str, &str)]) -> bool {
    fields.iter().all(|(key, value)| {
        line.split_whitespace()
            .any(|word| word == format!("{key}={value}") || word == format!("{key}=\"{value}\""))
    })
}

/// The FCM section pointing at the emulator.
fn fcm_settings(config: &FcmConfig) -> String {
    let section = toml::to_string(config).unwrap();
    format!("api_keys = [\"{API_KEY}\"]\n[auth]\nhs256_secret = \"{SECRET}\"\n[providers.fcm]\n{section}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_level_logs_each_call_change_and_each_failed_delivery_with_its_ids() {
    let rig = EmulatorRig::<FcmEmulator>::start().await;
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &fcm_settings(&rig.config), false).await;
    let bob = mint_device_token(SECRET, "bob", 600);
    // The phone rings; the old phone's app was uninstalled (404 UNREGISTERED: a failed
    // delivery); the tablet's first push meets a passing outage (503: a retried delivery).
    let devices = [
        ("bob-phone", token_for(callpush_client::model::Platform::Fcm, 1)),
        ("bob-old-phone", token_for(callpush_client::model::Platform::Fcm, 2)),
        ("bob-tablet", token_for(callpush_client::model::Platform::Fcm, 3)),
    ];
    for (id, token) in &devices {
        let body = json!({"platform": "fcm", "token": token, "ttl_seconds": 600});
        let (status, answer) =
            serve.call(reqwest::Method::PUT, &format!("/v1/installations/{id}"), &bob, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    rig.emulator.unregister_token(&devices[1].1);
    let unavailable =
        error_body(503, "UNAVAILABLE", "The service is currently unavailable.", Some("UNAVAILABLE"));
    rig.emulator.faults().push(Fault::json(503, unavailable).for_token(&devices[2].1));

    let ring = json!({"from": {"id": "alice", "name": "Alice"}, "to": ["bob"], "video": false});
    let (status, created) = serve.call(reqwest::Method::POST, "/v1/calls", API_KEY, Some(ring)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let call_id = created["call_id"].as_str().unwrap().to_owned();
    let delivery_to = |installation: &str| {
        created["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["installation_id"] == installation)
            .unwrap_or_else(|| panic!("no delivery to {installation}: {created}"))["delivery_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let call = call_id.as_str();
    serve.line("call created", &[("call_id", call), ("caller", "alice"), ("deliveries", "3")]).await;
    let old_phone = delivery_to("bob-old-phone");
    let failed = serve
        .line(
            "delivery failed",
            &[
                ("call_id", call),
                ("delivery_id", &old_phone),
                ("platform", "fcm"),
                ("outcome", "invalid_token"),
            ],
        )
        .await;
    assert!(has_fields(&failed, &[("installation_id", "bob-old-phone"), ("kind", "ring")]), "{failed}");
    assert!(failed.contains("token=dQw4w9…("), "the token, shortened: {failed}");
    let tablet = delivery_to("bob-tablet");
    let retried =
        serve.line("retrying", &[("call_id", call), ("delivery_id", &tablet), ("platform", "fcm")]).await;
    assert!(retried.contains(" WARN ") && retried.contains("retry_in_ms="), "{retried}");
    assert!(
        has_fields(&retried, &[("outcome", "transient")])
            || has_fields(&retried, &[("outcome", "rate_limited")]),
        "{retried}"
    );

    let answer = json!({"installation_id": "bob-phone"});
    let (status, answered) =
        serve.call(reqwest::Method::POST, &format!("/v1/calls/{call}/answer"), &bob, Some(answer)).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    let line = serve.line("call answered", &[("call_id", call), ("state", "answered")]).await;
    assert!(has_fields(&line, &[("answered_by", "bob-phone")]), "{line}");
    serve.line("request", &[("route", "/v1/calls/{call_id}/answer"), ("status", "200")]).await;
    serve.line("request", &[("route", "/v1/calls"), ("status", "202")]).await;

    let log = serve.log();
    // What the operator saw of the call (cargo test -- --nocapture).
    println!("{}", log.lines().filter(|l| l.contains(call)).collect::<Vec<_>>().join("\n"));
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file:\n{log}");
    for secret in [API_KEY, SECRET, bob.as_str()] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
    for (_, token) in &devices {
        assert!(!log.contains(token.as_str()), "a whole push token in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_from_the_dev_banner_on_and_metrics_keep_long_polls_apart() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), "log_format = \"json\"", true).await;
    let credentials: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("callpush-dev-credentials.json")).unwrap(),
    )
    .unwrap();
    let api_key = credentials["api_key"].as_str().unwrap();
    let secret = credentials["hs256_secret"].as_str().unwrap();
    let bob = mint_device_token(secret, "bob", 600);

    // A call to a user without devices rings until cancelled; bob long-polls it meanwhile.
    let ring = json!({"from": {"id": "alice"}, "to": ["bob"], "video": true});
    let (status, created) = serve.call(reqwest::Method::POST, "/v1/calls", api_key, Some(ring)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let call_id = created["call_id"].as_str().unwrap();
    let (status, polled) =
        serve.call(reqwest::Method::GET, &format!("/v1/calls/{call_id}?wait=1"), &bob, None).await;
    assert_eq!((status, polled["state"].as_str()), (StatusCode::OK, Some("ringing")), "{polled}");
    let (status, cancelled) = serve
        .call(reqwest::Method::POST, &format!("/v1/calls/{call_id}/cancel"), api_key, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");

    // Every line is one JSON object: the banner, the call's changes, the requests.
    let started = Instant::now();
    let events: Vec<Value> = loop {
        let log = serve.log();
        let events: Vec<Value> = log
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{log}"))
            })
            .collect();
        let fields =
            |e: &Value, message: &str| e["fields"]["message"].as_str().is_some_and(|m| m.contains(message));
        if events.iter().any(|e| fields(e, "call cancelled")) {
            break events;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no `call cancelled` event:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(events.iter().all(Value::is_object));
    let banner = events
        .iter()
        .find(|e| e["fields"]["credentials_file"].is_string())
        .unwrap_or_else(|| panic!("no development banner event: {events:?}"));
    assert_eq!(banner["level"], "WARN", "{banner}");
    assert_eq!(banner["fields"]["api"], serve.base.as_str(), "{banner}");
    let event = |message: &str| {
        events
            .iter()
            .find(|e| e["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no `{message}` event: {events:?}"))
    };
    assert_eq!(event("call created: ringing")["fields"]["call_id"], call_id);
    let ended = event("call cancelled");
    assert_eq!(
        (&ended["fields"]["call_id"], &ended["fields"]["reason"]),
        (&json!(call_id), &json!("caller_cancelled"))
    );
    let log = serve.log();
    assert!(
        !log.contains(api_key) && !log.contains(secret) && !log.contains(&bob),
        "a secret in the log:\n{log}"
    );

    // The long-poll is timed apart from ordinary requests.
    let response = serve.http.get(format!("{}/metrics", serve.base)).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let metrics = response.text().await.unwrap();
    assert!(metrics.contains("# TYPE callpush_http_long_poll_seconds histogram\n"), "{metrics}");
    assert!(metrics.contains("callpush_http_long_poll_seconds_count{status=\"200\"} 1\n"), "{metrics}");
    let sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("callpush_http_long_poll_seconds_sum{status=\"200\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.9..5.0).contains(&sum), "the long-poll waited about 1 s: {sum}");
    assert!(
        !metrics.contains("callpush_http_request_seconds_count{route=\"/v1/calls/{call_id}\""),
        "the long-poll is not an ordinary request:\n{metrics}"
    );
    assert!(
        metrics.contains("callpush_http_requests_total{route=\"/v1/calls/{call_id}\",status=\"200\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE callpush_rings_total counter\ncallpush_rings_total 1\n"), "{metrics}");
    assert!(!metrics.contains("# EOF"), "{metrics}");
}
