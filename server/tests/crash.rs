//! `kill -9` in the middle of a fan-out loses nothing: after a restart every device of the
//! still-ringing call is sent its push, and none is sent twice beyond the pushes that were in
//! flight at the moment of the kill (which the device-side dedupe absorbs).

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use callpush_server::auth::mint_device_token;
use serde_json::{json, Value};
use support::process::{free_port, wait_healthy, Launch, ServeProcess};

const API_KEY: &str = "crash-test-api-key-0123";
const SECRET: &str = "crash-test-device-secret-0123456789abcdef";
const DEVICES: usize = 60;
const CONCURRENCY: usize = 4;

/// Pushes per installation in the sender's file.
fn sent(pushes: &std::path::Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(pushes).unwrap_or_default().lines() {
        if let Ok(push) = serde_json::from_str::<Value>(line) {
            if push["kind"] == "ring" {
                *counts.entry(push["installation_id"].as_str().unwrap().to_owned()).or_default() += 1;
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_fan_out_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pushes = dir.path().join("pushes.jsonl");
    let port = free_port();
    let config = dir.path().join("callpush.toml");
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        r#"
        listen = "127.0.0.1:{port}"
        database_url = "sqlite://{db}"
        data_dir = "{dir}"
        api_keys = ["{API_KEY}"]
        [auth]
        hs256_secret = "{SECRET}"
        [registrar]
        max_installations_per_user = 1000
        [ring]
        default_ring_seconds = 60
        max_ring_seconds = 120
        concurrency = {CONCURRENCY}
        claim_batch = 8
        [sender]
        kind = "file"
        path = "{pushes}"
        delay_ms = 40
        "#,
        db = dir.path().join("callpush.db").display(),
        dir = dir.path().display(),
        pushes = pushes.display(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = ServeProcess::start(&config, Launch::default());
    wait_healthy(&base, None).await;
    let bob = mint_device_token(SECRET, "bob", 600);
    for i in 0..DEVICES {
        let r = http
            .put(format!("{base}/v1/installations/bob-{i:02}"))
            .bearer_auth(&bob)
            .json(&json!({"platform": "fcm", "token": format!("fcm-token-bob-{i:04}-xyz")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let r = http
        .post(format!("{base}/v1/calls"))
        .bearer_auth(API_KEY)
        .json(&json!({"call_id": "crash-call", "from": {"id": "alice"}, "to": ["bob"], "ring_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Kill it mid fan-out.
    let started = Instant::now();
    while sent(&pushes).len() < 10 {
        assert!(started.elapsed() < Duration::from_secs(20), "the fan-out never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill(); // SIGKILL: no shutdown code runs
    let at_kill = sent(&pushes);
    assert!(at_kill.len() < DEVICES, "killed too late to prove anything: {}", at_kill.len());

    let mut server = ServeProcess::start(&config, Launch::default());
    wait_healthy(&base, None).await;
    let started = Instant::now();
    while sent(&pushes).len() < DEVICES && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = sent(&pushes);
    // The timeline tells what is known: every device's push delivered, each one that may have
    // gone out twice marked as taken over — never `failed` or `expired`.
    let mut call = Value::Null;
    while started.elapsed() < Duration::from_secs(30) {
        call = http
            .get(format!("{base}/v1/calls/crash-call"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if call["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    let statuses: Vec<&str> =
        call["deliveries"].as_array().unwrap().iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == "delivered"), "{statuses:?}");
    let taken_over =
        call["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == "delivery_taken_over").count();

    let duplicates: usize = after.values().map(|n| n - 1).sum();
    eprintln!(
        "killed after {} of {DEVICES} pushes; after the restart {} devices had theirs, {duplicates} twice",
        at_kill.len(),
        after.len()
    );
    assert_eq!(after.len(), DEVICES, "every device was sent its push after the restart");
    // In flight at the kill, or sent with the result not yet written: at most two batches' worth.
    assert!(
        duplicates <= 2 * CONCURRENCY,
        "only pushes in flight at the kill may go twice: {duplicates} duplicates"
    );
    assert!(
        taken_over >= duplicates,
        "each push that may have gone twice is on the timeline: {taken_over} taken over, {duplicates} twice"
    );
}
