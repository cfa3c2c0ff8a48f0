//! `callpush-dev demo`: the whole path of two calls in one process, on every platform.
//!
//! A server on SQLite, the four provider emulators, and four simulated devices of one user —
//! one per platform, each running the real core client over HTTP — then:
//!
//! 1. a video call that rings all four and is answered on the HarmonyOS phone, so the others
//!    stop ringing the way their platform allows (a cancel push on Android and Windows, the
//!    long-poll on iOS);
//! 2. a call nobody answers, ending in a missed-call notification on every device.
//!
//! Everything the server, the providers and the devices did is collected into one timeline.

use std::time::{Duration, Instant};

use callpush_client::client::CallEvent;
use callpush_client::model::{CancelReason, Outcome, Platform};
use serde::Serialize;
use serde_json::{json, Value};

use callpush_emulators::credentials::TestCredentials;
use callpush_emulators::device::{token_for, Seen, SimulatedDevice};
use callpush_emulators::Emulators;
use callpush_server::app;
use callpush_server::auth::{mint_device_token, random_token};
use callpush_server::config::{Config, SenderConfig, WnsFlow};

/// Why the demo did not complete.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn fail(what: impl std::fmt::Display) -> DemoError {
    DemoError(what.to_string())
}

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Milliseconds since the demo started.
    pub t_ms: u64,
    /// Who: `server`, `backend`, or a device's name.
    pub who: String,
    /// What happened.
    pub what: String,
}

/// The devices of the demo's callee: name, platform.
const DEVICES: [(&str, Platform); 4] = [
    ("Bob's Mate 60 (HarmonyOS)", Platform::Harmony),
    ("Bob's Pixel (Android)", Platform::Fcm),
    ("Bob's iPhone (iOS)", Platform::Apns),
    ("Bob's PC (Windows)", Platform::Wns),
];

struct Demo {
    started: Instant,
    started_unix_ms: i64,
    base: String,
    api_key: String,
    http: reqwest::Client,
    steps: Vec<Step>,
}

impl Demo {
    fn step(&mut self, at: Instant, who: &str, what: impl Into<String>) {
        let t_ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.steps.push(Step { t_ms, who: who.to_owned(), what: what.into() });
    }

    async fn backend(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DemoError> {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(fail)?;
        if !status.is_success() {
            return Err(fail(format!("{path}: {status} {body}")));
        }
        Ok(body)
    }

    /// The server's timeline of a call, as steps.
    async fn server_timeline(&mut self, call_id: &str, names: &[(String, String)]) -> Result<(), DemoError> {
        let detail = self.backend(reqwest::Method::GET, &format!("/v1/calls/{call_id}"), None).await?;
        let deliveries = detail["deliveries"].as_array().cloned().unwrap_or_default();
        for entry in detail["timeline"].as_array().cloned().unwrap_or_default() {
            let at = entry["at"].as_i64().unwrap_or_default();
            let t = self.started + Duration::from_millis((at - self.started_unix_ms).max(0) as u64);
            let delivery = deliveries.iter().find(|d| d["delivery_id"] == entry["delivery_id"]);
            let event = entry["event"].as_str().unwrap_or_default();
            let what = match delivery {
                Some(d) => {
                    let device = names
                        .iter()
                        .find(|(id, _)| d["installation_id"] == id.as_str())
                        .map_or("a device", |(_, name)| name.as_str());
                    let provider = provider_name(d["platform"].as_str().unwrap_or_default());
                    let kind = match d["kind"].as_str() {
                        Some("ring") => "ring push",
                        Some("cancel") => "cancel push",
                        _ => "missed-call notification",
                    };
                    match event {
                        "delivery_delivered" => format!("{provider} accepted the {kind} for {device}"),
                        other => format!(
                            "{provider}: {kind} for {device}: {}",
                            other.trim_start_matches("delivery_")
                        ),
                    }
                }
                None => match event {
                    "ringing" => {
                        format!("call {call_id} stored, ringing {}", entry["detail"].as_str().unwrap_or(""))
                    }
                    "declined_by_callee" => format!("declined by {}", entry["detail"].as_str().unwrap_or("")),
                    state => format!("call {call_id} {state}"),
                },
            };
            self.step(t, "server", what);
        }
        Ok(())
    }
}

fn provider_name(platform: &str) -> &'static str {
    match platform {
        "harmony" => "Push Kit",
        "fcm" => "FCM",
        "apns" => "APNs",
        _ => "WNS",
    }
}

/// What a device's journal entry says, for the timeline; `None` for what adds nothing.
fn describe(seen: &Seen) -> Option<String> {
    Some(match seen {
        Seen::Push(outcome) => {
            let reason =
                outcome.call.as_ref().and_then(|c| c.reason).map(|r| format!(" ({r})")).unwrap_or_default();
            format!("push received → {}{reason}", outcome.outcome.as_str())
        }
        Seen::Notification { title, body, .. } => format!("system notification: {title} — {body}"),
        Seen::Ui(what) => format!("system call UI: {what}"),
        Seen::Event(CallEvent::Incoming { call }) => {
            format!("app event: incoming call from {}", call.peer_name.as_deref().unwrap_or(&call.peer_id))
        }
        Seen::Event(CallEvent::Cancelled { reason, .. }) => format!("app event: stopped ringing ({reason})"),
        Seen::Event(CallEvent::Missed { app_message_id, .. }) => {
            format!("app event: missed call → local notification {app_message_id}")
        }
        Seen::Event(CallEvent::Error { error }) => {
            format!("app event: error {:?}: {}", error.kind, error.message)
        }
        Seen::Event(CallEvent::RegistrationChanged { registration }) => {
            format!("registered (lease until unix {})", registration.expires_at)
        }
        Seen::Event(_) => return None,
    })
}

/// Runs the demo; returns its timeline, oldest first.
pub async fn run() -> Result<Vec<Step>, DemoError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let emulators =
        Emulators::start(TestCredentials::default()).await.map_err(|e| fail(format!("emulators: {e}")))?;
    let (providers, _) = emulators.providers_config(dir.path(), WnsFlow::Entra).map_err(fail)?;
    let secret = random_token();
    let api_key = format!("cpk_{}", random_token());
    let mut config = Config {
        listen: "127.0.0.1:0".parse().map_err(fail)?,
        database_url: format!("sqlite://{}", dir.path().join("callpush.db").display()),
        data_dir: dir.path().to_owned(),
        api_keys: vec![api_key.clone()],
        sender: SenderConfig::Noop,
        providers,
        ..Config::default()
    };
    config.auth.hs256_secret = Some(secret.clone());
    let senders = app::senders_from_config(&config).map_err(fail)?;
    let server = app::start(&config, senders).await.map_err(fail)?;
    let mut demo = Demo {
        started: Instant::now(),
        started_unix_ms: callpush_server::time::now_ms(),
        base: format!("http://{}", server.addr),
        api_key,
        http: reqwest::Client::new(),
        steps: Vec::new(),
    };
    demo.step(
        Instant::now(),
        "server",
        format!("callpush-server on {} with SQLite; Push Kit, FCM, APNs and WNS emulators up", demo.base),
    );

    // Four devices of Bob register through the real client.
    let bob = mint_device_token(&secret, "bob", 3600);
    let mut devices = Vec::new();
    for (n, (name, platform)) in DEVICES.into_iter().enumerate() {
        let data = dir.path().join(format!("device-{n}"));
        let token = token_for(platform, n as u32);
        let device =
            SimulatedDevice::start(name, platform, &token, &demo.base, &data, bob.clone(), &emulators.hub)
                .map_err(fail)?;
        device.register().await.map_err(|e| fail(format!("{name} registering: {e}")))?;
        devices.push(device);
    }
    let names: Vec<(String, String)> =
        devices.iter().map(|d| (d.client.installation_id(), d.name.clone())).collect();

    // Call 1: rings everywhere, answered on the HarmonyOS phone.
    let first = devices.iter().map(|d| d.journal().len()).collect::<Vec<_>>();
    let call = demo
        .backend(
            reqwest::Method::POST,
            "/v1/calls",
            Some(json!({"from": {"id": "alice", "name": "Alice"}, "to": ["bob"], "video": true, "ring_seconds": 30})),
        )
        .await?;
    let call_1 = call["call_id"].as_str().unwrap_or_default().to_owned();
    demo.step(Instant::now(), "backend", format!("POST /v1/calls: Alice calls Bob (video) → {call_1}"));
    for (device, from) in devices.iter().zip(&first) {
        device
            .wait_for(
                *from,
                Duration::from_secs(10),
                |s| matches!(s, Seen::Push(o) if o.outcome == Outcome::Ring),
            )
            .await
            .ok_or_else(|| fail(format!("{} never rang", device.name)))?;
    }
    let answering = &devices[0];
    answering.client.answer(call_1.clone()).await.map_err(|e| fail(format!("answering: {e}")))?;
    answering.client.media_connected(call_1.clone()).map_err(fail)?;
    demo.step(Instant::now(), &answering.name, "the user taps answer; media connects");
    for device in &devices[1..] {
        device
            .wait_for(0, Duration::from_secs(10), |s| {
                matches!(s, Seen::Event(CallEvent::Cancelled { reason: CancelReason::AnsweredElsewhere, .. }))
            })
            .await
            .ok_or_else(|| fail(format!("{} kept ringing after the answer", device.name)))?;
    }
    answering.client.hang_up(call_1.clone()).await.map_err(fail)?;
    demo.step(Instant::now(), &answering.name, "the user hangs up");

    // Call 2: nobody answers.
    let second = devices.iter().map(|d| d.journal().len()).collect::<Vec<_>>();
    let call = demo
        .backend(
            reqwest::Method::POST,
            "/v1/calls",
            Some(json!({"from": {"id": "alice", "name": "Alice"}, "to": ["bob"], "video": false, "ring_seconds": 5})),
        )
        .await?;
    let call_2 = call["call_id"].as_str().unwrap_or_default().to_owned();
    demo.step(
        Instant::now(),
        "backend",
        format!("POST /v1/calls: Alice calls Bob again, rings 5 s → {call_2}"),
    );
    // Every device shows the missed call itself; APNs and Push Kit devices also get the server's
    // missed-call notification, a moment later (the server ends the call at its deadline).
    for (device, from) in devices.iter().zip(&second) {
        device
            .wait_for(*from, Duration::from_secs(15), |s| matches!(s, Seen::Event(CallEvent::Missed { .. })))
            .await
            .ok_or_else(|| fail(format!("{} never showed the missed call", device.name)))?;
        if matches!(device.platform, Platform::Apns | Platform::Harmony) {
            device
                .wait_for(*from, Duration::from_secs(15), |s| matches!(s, Seen::Notification { .. }))
                .await
                .ok_or_else(|| fail(format!("{} never got the missed-call notification", device.name)))?;
        }
    }
    // Let the last notifications arrive before reading the timelines.
    tokio::time::sleep(Duration::from_millis(300)).await;

    demo.server_timeline(&call_1, &names).await?;
    demo.server_timeline(&call_2, &names).await?;
    for device in &devices {
        for entry in device.journal() {
            if let Some(what) = describe(&entry.seen) {
                demo.step(entry.at, &device.name, what);
            }
        }
    }
    server.stop().await;
    drop(devices);
    let mut steps = demo.steps;
    steps.sort_by_key(|s| s.t_ms);
    Ok(steps)
}

/// The timeline as text for people.
pub fn render(steps: &[Step]) -> String {
    let width = steps.iter().map(|s| s.who.chars().count()).max().unwrap_or(0);
    steps
        .iter()
        .map(|s| format!("{:>7.3}s  {:<width$}  {}\n", s.t_ms as f64 / 1000.0, s.who, s.what))
        .collect()
}

/// Runs the demo in a fresh runtime and prints its timeline; `json` prints it as JSON.
pub fn main(json: bool) -> Result<(), DemoError> {
    let runtime = tokio::runtime::Runtime::new().map_err(fail)?;
    let steps = runtime.block_on(run())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&steps).map_err(fail)?);
    } else {
        print!("{}", render(&steps));
    }
    Ok(())
}
