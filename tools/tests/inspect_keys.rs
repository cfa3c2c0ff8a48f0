//! `callpush-dev inspect` with the server's keys as the server publishes them: fetched from
//! `GET /.well-known/callpush-keys` (`--jwks-url`) or saved to a file (`--jwks`), deciding a push
//! a real server signed and "sent" (the file sender). Plus its usage errors, and `--help`
//! writing nothing.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use callpush_server::app;
use callpush_server::auth::mint_device_token;
use callpush_server::config::{Config, SenderConfig};
use serde_json::{json, Value};
use support::{callpush_dev, decision};

const API_KEY: &str = "inspect-test-api-key-0123456789";
const SECRET: &str = "inspect-test-device-secret-0123456789abcdef";

/// Runs `callpush-dev` off the async runtime, which keeps serving meanwhile.
async fn inspect(dir: &Path, args: Vec<String>, stdin: String) -> Output {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        callpush_dev(Some(&dir), &args, &stdin)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_takes_the_servers_published_keys_by_url_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let pushes = dir.path().join("pushes.jsonl");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("callpush.db").display()),
        data_dir: dir.path().to_owned(),
        api_keys: vec![API_KEY.into()],
        sender: SenderConfig::File { path: pushes.clone(), delay_ms: 0 },
        ..Config::default()
    };
    config.auth.hs256_secret = Some(SECRET.into());
    let running = app::start(&config, app::senders_from_config(&config).unwrap()).await.unwrap();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let status = http
        .put(format!("{base}/v1/installations/bob-phone"))
        .bearer_auth(mint_device_token(SECRET, "bob", 3600))
        .json(&json!({"platform": "fcm", "token": "fcm-token-0123456789"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let status = http
        .post(format!("{base}/v1/calls"))
        .bearer_auth(API_KEY)
        .json(&json!({"from": {"id": "alice", "name": "Alice"}, "to": ["bob"], "video": true}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    // The ring push as FCM hands it to the app: the data map, as JSON.
    let started = Instant::now();
    let raw = loop {
        let text = std::fs::read_to_string(&pushes).unwrap_or_default();
        if let Some(line) =
            text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|l| l["kind"] == "ring")
        {
            break line["payload"]["data"].to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no ring push in {}", pushes.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let url = format!("{base}/.well-known/callpush-keys");
    let args = |keys: &[&str]| {
        let mut args: Vec<String> = ["inspect", "--platform", "fcm"].map(String::from).to_vec();
        args.extend(keys.iter().map(|s| s.to_string()));
        args
    };
    let by_url = decision(&inspect(dir.path(), args(&["--jwks-url", &url]), raw.clone()).await);
    assert_eq!(by_url["outcome"], "ring", "{by_url}");
    assert_eq!(
        (by_url["call"]["caller_name"].as_str(), by_url["call"]["video"].as_bool()),
        (Some("Alice"), Some(true))
    );

    let set = http.get(&url).send().await.unwrap().text().await.unwrap();
    let file = dir.path().join("keys.json");
    std::fs::write(&file, &set).unwrap();
    let by_file =
        decision(&inspect(dir.path(), args(&["--jwks", file.to_str().unwrap()]), raw.clone()).await);
    assert_eq!(by_file, by_url);

    // Other keys: the push does not verify, so the keys given are the keys used.
    let other = callpush_server::signing_key::generate().public_jwk();
    let other = serde_json::to_string(&other).unwrap();
    let forged = decision(&inspect(dir.path(), args(&["--jwk", &other]), raw.clone()).await);
    assert_eq!(forged["outcome"], "rejected", "{forged}");

    // A URL that answers no key set is a usage error naming it.
    for (bad, says) in [
        (format!("{base}/.well-known/nothing"), "answered 404".to_owned()),
        (format!("{base}/healthz"), format!("--jwks-url {base}/healthz")),
    ] {
        let out = inspect(dir.path(), args(&["--jwks-url", &bad]), raw.clone()).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(out.stdout.is_empty() && stderr.contains(&says), "{bad}: {stderr}");
    }
    running.stop().await;
}

#[test]
fn the_keys_come_from_exactly_one_place_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = callpush_tests::vectors::load(&callpush_tests::vectors::dir())[0].keys.to_string();
    let missing = dir.path().join("missing.json");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let closed = format!("http://127.0.0.1:{}/.well-known/callpush-keys", {
        // A port nothing listens on.
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    });
    for (args, says) in [
        (vec!["--jwk", &jwk, "--jwks", "keys.json"], "cannot be used with"),
        (vec![], "--jwk <JWK>|--jwks <FILE>|--jwks-url <URL>"),
        (vec!["--jwks", missing.to_str().unwrap()], "missing.json"),
        (vec!["--jwks", junk.to_str().unwrap()], "junk.json"),
        (vec!["--jwks-url", "ftp://example.com/keys"], "not an http:// or https:// URL"),
        (vec!["--jwks-url", &closed], &closed),
    ] {
        let mut all = vec!["inspect", "--platform", "fcm"];
        all.extend(args.iter().copied());
        let out = callpush_dev(Some(dir.path()), &all, "{}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty() && stderr.contains(says), "{args:?}: {stderr}");
    }
    let out = callpush_dev(Some(dir.path()), &["inspect", "--platform", "fcm", "--jwk", &jwk], "{}");
    assert!(out.status.success());
}

#[test]
fn help_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["-h"], &["inspect", "--help"], &["demo", "-h"], &["emulate", "--help"]] {
        let out = callpush_dev(Some(dir.path()), args, "");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: callpush-dev"), "{args:?}");
    }
    let out = callpush_dev(Some(dir.path()), &["inspect", "--help"], "");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--jwks-url <URL>") && help.contains("/.well-known/callpush-keys"), "{help}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}
