//! The `callpush` commands as a user runs them, in a directory of their own with no `CALLPUSH_*`
//! setting inherited:
//!
//! - every command finds the server's configuration and state as `serve` does, and only `serve`
//!   creates state: `token` never makes credentials (its tokens are the ones the running server
//!   accepts), `rotate-key` never makes a database, and both say where they looked;
//! - `serve --dev` generates credentials only on a loopback address, unless `--dev-public`;
//! - `--help` writes nothing, and `keys` is gone;
//! - `GET /.well-known/callpush-keys` publishes the signing keys;
//! - the curl tour of server/README.md runs as written (`examples/api-tour.sh`), and a broken
//!   or missing tour fails it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::process::free_port;
use support::{Db, TestServer};

/// `callpush` run in `dir` with no `CALLPUSH_*` variable but `extra`.
fn callpush(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callpush"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CALLPUSH_") {
            command.env_remove(name);
        }
    }
    command.env("CALLPUSH_LOG", "warn").envs(extra.iter().copied());
    command
}

fn run(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = callpush(dir, args, extra).output().expect("callpush runs");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    entries
}

/// A `callpush serve` process, killed when dropped.
struct Serving {
    child: Child,
    base: String,
}

impl Serving {
    /// `callpush serve <args>` in `dir`, listening on a free loopback port, once it answers.
    async fn start(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Serving {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env = extra.to_vec();
        env.push(("CALLPUSH_LISTEN", &listen));
        let child = callpush(dir, args, &env)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("serve.log")).unwrap()))
            .spawn()
            .expect("start callpush serve");
        let mut serving = Serving { child, base: format!("http://{listen}") };
        let started = Instant::now();
        loop {
            if let Some(status) = serving.child.try_wait().unwrap() {
                panic!(
                    "serve exited ({status}): {}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap()
                );
            }
            if reqwest::get(format!("{}/healthz", serving.base)).await.is_ok_and(|r| r.status().is_success())
            {
                return serving;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PUT /v1/installations/phone` with `token`: the status, 200 when the server accepts the token.
async fn register_with(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .put(format!("{base}/v1/installations/phone"))
        .bearer_auth(token)
        .json(&serde_json::json!({"platform": "fcm", "token": "fcm-token-0123456789"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn help_writes_nothing_and_keys_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["-h"],
        &["serve", "--help"],
        &["serve", "-h"],
        &["token", "--help"],
        &["rotate-key", "--help"],
        &["help", "token"],
    ] {
        let (code, stdout, stderr) = run(dir.path(), args, &[]);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains("Usage: callpush"), "{args:?}: {stdout}");
    }
    let (_, stdout, _) = run(dir.path(), &["serve", "--help"], &[]);
    assert!(stdout.contains("--dev-public") && stdout.contains("CALLPUSH_CONFIG"), "{stdout}");
    let (code, _, stderr) = run(dir.path(), &["keys"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unrecognized subcommand 'keys'"), "{stderr}");
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "nothing written");
}

#[test]
fn token_never_makes_credentials_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["token", "--user", "bob"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty());
    let looked = dir.path().join("callpush-dev-credentials.json");
    assert!(stderr.contains(&looked.display().to_string()), "names the file: {stderr}");
    assert!(stderr.contains("callpush serve --dev") && stderr.contains("no configuration file"), "{stderr}");
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "no credentials made");

    // A configuration found through CALLPUSH_CONFIG: its data_dir is where it looks.
    let data = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", data.path())).unwrap();
    let (code, _, stderr) =
        run(dir.path(), &["token", "--user", "bob"], &[("CALLPUSH_CONFIG", config.to_str().unwrap())]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&data.path().join("callpush-dev-credentials.json").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("CALLPUSH_CONFIG={}", config.display())), "{stderr}");
    assert_eq!(entries(data.path()), Vec::<PathBuf>::new());

    // A CALLPUSH_CONFIG naming no file is an error, not the defaults.
    let (code, _, stderr) =
        run(dir.path(), &["token", "--user", "bob"], &[("CALLPUSH_CONFIG", "/nonexistent/callpush.toml")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("CALLPUSH_CONFIG=/nonexistent/callpush.toml: no such file"), "{stderr}");

    // Public-key auth: tokens come from the identity provider.
    std::fs::write(dir.path().join("callpush.toml"), "[auth]\npublic_key_files = [\"idp.pem\"]\n").unwrap();
    let (code, _, stderr) = run(dir.path(), &["token", "--user", "bob"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("identity provider") && stderr.contains("callpush.toml"), "{stderr}");
}

/// The tokens `token` prints are the ones the running server accepts: with `serve --dev`'s
/// secret from the same directory, and with a configured secret, issuer and audience found
/// through CALLPUSH_CONFIG from elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_signs_with_the_secret_the_running_server_uses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serving::start(dir.path(), &["serve", "--dev"], &[]).await;
    let (code, token, stderr) = run(dir.path(), &["token", "--user", "bob"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(register_with(&server.base, token.trim()).await, 200, "the server accepts it");
    drop(server);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("callpush.toml"),
        "api_keys = [\"commands-test-api-key-0123\"]\n[auth]\n\
         hs256_secret = \"commands-test-device-secret-0123456789abcdef\"\n\
         issuer = \"https://id.example.com/\"\naudience = \"callpush\"\n",
    )
    .unwrap();
    // Found as ./callpush.toml by serve, through CALLPUSH_CONFIG by token.
    let server = Serving::start(dir.path(), &["serve"], &[]).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let config = dir.path().join("callpush.toml");
    let (code, token, stderr) =
        run(elsewhere.path(), &["token", "--user", "bob"], &[("CALLPUSH_CONFIG", config.to_str().unwrap())]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(register_with(&server.base, token.trim()).await, 200, "iss and aud as configured");
    assert_eq!(register_with(&server.base, "not-a-token").await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_never_creates_a_database_and_adds_to_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["rotate-key"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty() && !stderr.contains("published"), "{stderr}");
    assert!(
        stderr.contains(&format!("no database at {}", dir.path().join("callpush.db").display())),
        "{stderr}"
    );
    assert!(stderr.contains("no configuration file"), "says where it looked: {stderr}");
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "no database made");

    // A file no server started on.
    std::fs::write(dir.path().join("callpush.db"), "").unwrap();
    let (code, _, stderr) = run(dir.path(), &["rotate-key"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a callpush server's database"), "{stderr}");
    assert_eq!(std::fs::metadata(dir.path().join("callpush.db")).unwrap().len(), 0, "left as it was");
    std::fs::remove_file(dir.path().join("callpush.db")).unwrap();

    // The database a server runs on.
    let server = Serving::start(dir.path(), &["serve", "--dev"], &[]).await;
    let keys = |base: String| async move {
        let set: Value =
            reqwest::get(format!("{base}/.well-known/callpush-keys")).await.unwrap().json().await.unwrap();
        set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(server.base.clone()).await.len(), 1);
    let (code, stdout, stderr) = run(dir.path(), &["rotate-key", "--activate-after-hours", "1"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("published") && stdout.contains("callpush.db"), "{stdout}");
    let kid = stdout.split_whitespace().nth(3).unwrap().to_owned();
    drop(server);
    // A restart reads it at once (a running server within its reload period).
    let server = Serving::start(dir.path(), &["serve", "--dev"], &[]).await;
    let published = keys(server.base.clone()).await;
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published.contains(&kid), "{kid} in {published:?}");
}

/// On PostgreSQL, a database no server started on is refused and left without tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_refuses_a_postgres_database_no_server_started_on() {
    let Some(_) = support::postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = support::fresh_database(Db::Postgres, dir.path()).await;
    let (code, _, stderr) = run(dir.path(), &["rotate-key"], &[("CALLPUSH_DATABASE_URL", &url)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no signing_keys table"), "{stderr}");
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_credentials_only_on_loopback_unless_dev_public() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let (code, _, stderr) = run(dir.path(), &["serve", "--dev"], &[("CALLPUSH_LISTEN", listen)]);
        assert_eq!(code, Some(2), "{listen}: {stderr}");
        assert!(stderr.contains("loopback") && stderr.contains("--dev-public"), "{listen}: {stderr}");
        assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "{listen}: nothing generated or started");
    }
    let (code, _, stderr) = run(dir.path(), &["serve", "--dev-public"], &[]);
    assert_eq!(code, Some(2), "--dev-public needs --dev: {stderr}");

    // With --dev-public it starts (on all addresses, reached here through loopback).
    let port = free_port().to_string();
    let listen = format!("0.0.0.0:{port}");
    let mut child =
        callpush(dir.path(), &["serve", "--dev", "--dev-public"], &[("CALLPUSH_LISTEN", &listen)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let started = Instant::now();
    let up = loop {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break true;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(30) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "serve --dev --dev-public on {listen} started");
    assert!(dir.path().join("callpush-dev-credentials.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_keys_are_published_as_a_cacheable_jwk_set() {
    let server = TestServer::start(Db::Sqlite).await;
    let (status, lease) = server
        .call(
            reqwest::Method::PUT,
            "/v1/installations/phone",
            Some(&TestServer::token("bob")),
            Some(serde_json::json!({"platform": "fcm", "token": "fcm-token-0123456789"})),
        )
        .await;
    assert_eq!(status, 200, "{lease}");
    // No credentials needed.
    let response = reqwest::get(format!("{}/.well-known/callpush-keys", server.base)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let set: Value = response.json().await.unwrap();
    assert_eq!(set["keys"], lease["signing_keys"], "the keys a registration answers");
    let key = &set["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none(), "never the private key");
    callpush_client::wire::KeySet::from_json(&set.to_string()).expect("a device can trust them");

    let doc = callpush_server::api::document();
    let op = &doc["paths"]["/.well-known/callpush-keys"]["get"];
    assert!(op["responses"]["200"]["headers"]["Cache-Control"].is_object(), "{op}");
    assert!(op.get("security").is_none_or(|s| s.as_array().is_some_and(|s| s.is_empty())), "public: {op}");
}

// ---- the README's tour ----

fn tour(args: &[&str]) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_callpush")).parent().unwrap();
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/api-tour.sh"))
        .args(["--bin", bin.to_str().unwrap(), "--quiet"])
        .args(args)
        .output()
        .expect("bash runs examples/api-tour.sh")
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn the_readme_tour_runs_as_written() {
    let out = tour(&[]);
    assert!(
        out.status.success(),
        "the tour in server/README.md failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What ran is the README's block: it sets CALL from the ring's answer and mints with `callpush`.
    let printed = tour(&["--print"]);
    let block = String::from_utf8(printed.stdout).unwrap();
    assert!(printed.status.success() && readme().contains(&block), "{block}");
    assert!(block.contains("CALL=$(") && block.contains("$(callpush token --user bob)"), "{block}");
}

#[test]
fn a_broken_or_missing_readme_tour_fails() {
    let dir = tempfile::tempdir().unwrap();
    let readme = readme();
    // The tour as it once was: CALL never set.
    let broken = dir.path().join("broken.md");
    assert!(readme.contains("CALL=$(curl"));
    std::fs::write(&broken, readme.replace("CALL=$(curl", "RING=$(curl")).unwrap();
    let out = tour(&["--readme", broken.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unset CALL must fail the tour");
    assert!(stderr.contains("CALL: unbound variable") && stderr.contains("the tour in"), "{stderr}");

    // A request the server refuses fails it too (curl --fail-with-body).
    let refused = dir.path().join("refused.md");
    std::fs::write(&refused, readme.replace("/v1/calls/$CALL/answer", "/v1/calls/$CALL/answered")).unwrap();
    assert!(!tour(&["--readme", refused.to_str().unwrap()]).status.success());

    // No marked block: nothing to run is a failure, not a pass.
    let unmarked = dir.path().join("unmarked.md");
    std::fs::write(&unmarked, readme.replace("<!-- tour", "<!-- was the tour")).unwrap();
    let out = tour(&["--readme", unmarked.to_str().unwrap(), "--print"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fenced block marked <!-- tour -->"));
}
