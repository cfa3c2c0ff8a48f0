//! Storage faults and secrets at rest: a full disk fails writes and `/healthz` and both recover
//! once space is freed, without a restart; `/readyz` fails while draining; the SQLite files are
//! readable by their owner only; JSON logs carry no text banner and no secret.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use callpush_server::auth::{dev_credentials_path, mint_device_token};
use callpush_server::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::process::{free_port, wait_healthy, Launch, ServeProcess};
use support::{Db, TestServer};

const API_KEY: &str = "storage-test-api-key-0123";
const SECRET: &str = "storage-test-device-secret-0123456789abcdef";

/// A small filesystem the database lives on, and a way to fill and free it.
enum Disk {
    /// A tmpfs of its own (needs root): filled with a file, freed by deleting it.
    Tmpfs { mount: PathBuf },
    /// Without root: the server's file size limit (`RLIMIT_FSIZE`) lowered so every write
    /// fails (`EFBIG`), then raised again.
    FileSizeLimit { dir: PathBuf, pid: Option<u32> },
}

impl Disk {
    fn new(dir: &Path) -> Disk {
        let mount = dir.join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
            .arg(&mount)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            Disk::Tmpfs { mount }
        } else {
            eprintln!("mounting a tmpfs failed: injecting write errors through RLIMIT_FSIZE instead");
            Disk::FileSizeLimit { dir: mount, pid: None }
        }
    }

    fn dir(&self) -> &Path {
        match self {
            Disk::Tmpfs { mount } => mount,
            Disk::FileSizeLimit { dir, .. } => dir,
        }
    }

    /// Starts `callpush serve`; under a file size limit, with `SIGXFSZ` ignored so a refused
    /// write is an error, not the end of the process.
    fn serve(&mut self, config: &Path, stderr: &Path) -> ServeProcess {
        let prelude = match self {
            Disk::Tmpfs { .. } => None,
            Disk::FileSizeLimit { .. } => Some("trap '' XFSZ"),
        };
        let server =
            ServeProcess::start(config, Launch { stderr: Some(stderr), prelude, ..Launch::default() });
        if let Disk::FileSizeLimit { pid, .. } = self {
            *pid = Some(server.child.id());
        }
        server
    }

    fn fill(&self) {
        match self {
            Disk::Tmpfs { mount } => {
                let mut filler = std::fs::File::create(mount.join("filler")).unwrap();
                for size in [64 * 1024, 4096, 512] {
                    let chunk = vec![0x5a_u8; size];
                    while filler.write_all(&chunk).is_ok() {}
                }
            }
            Disk::FileSizeLimit { pid, .. } => prlimit(pid.unwrap(), "1:"),
        }
    }

    fn free(&self) {
        match self {
            Disk::Tmpfs { mount } => std::fs::remove_file(mount.join("filler")).unwrap(),
            Disk::FileSizeLimit { pid, .. } => prlimit(pid.unwrap(), "unlimited:"),
        }
    }
}

fn prlimit(pid: u32, fsize: &str) {
    let done =
        Command::new("prlimit").args(["--pid", &pid.to_string(), &format!("--fsize={fsize}")]).status();
    assert!(done.is_ok_and(|s| s.success()), "prlimit --fsize={fsize} failed");
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Disk::Tmpfs { mount } = self {
            let unmounted = Command::new("umount").arg(&*mount).status().is_ok_and(|s| s.success());
            if !unmounted {
                let _ = Command::new("umount").arg("-l").arg(&*mount).status();
            }
        }
    }
}

fn write_config(dir: &Path, db_dir: &Path, port: u16, extra: &str) -> PathBuf {
    let config = dir.join("callpush.toml");
    write!(
        std::fs::File::create(&config).unwrap(),
        r#"
        listen = "127.0.0.1:{port}"
        database_url = "sqlite://{db}"
        data_dir = "{dir}"
        {extra}
        [sender]
        kind = "noop"
        "#,
        db = db_dir.join("callpush.db").display(),
        dir = dir.display(),
    )
    .unwrap();
    config
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = http.get(url).timeout(Duration::from_secs(15)).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// Registers installation `i` with a large token (so the database grows fast).
async fn register(http: &reqwest::Client, base: &str, i: usize) -> (StatusCode, Value) {
    let token = format!("fcm-token-{i:06}-{}", "x".repeat(3000));
    let r = http
        .put(format!("{base}/v1/installations/disk-{i:06}"))
        .bearer_auth(mint_device_token(SECRET, "bob", 600))
        .json(&json!({"platform": "fcm", "token": token}))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_liveness_recover_once_a_full_disk_has_space_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = Disk::new(dir.path());
    let port = free_port();
    // One user fills the disk with registrations: no installation cap in the way.
    let auth = format!(
        "api_keys = [\"{API_KEY}\"]\n[auth]\nhs256_secret = \"{SECRET}\"\n\
         [registrar]\nmax_installations_per_user = 1000000"
    );
    let config = write_config(dir.path(), disk.dir(), port, &auth);
    let stderr = dir.path().join("stderr.log");
    let _server = disk.serve(&config, &stderr);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base, Some(&stderr)).await;
    assert_eq!(register(&http, &base, 0).await.0, StatusCode::OK);

    // Full: writes fail with 503 `storage_unavailable`, and so does liveness.
    disk.fill();
    let started = Instant::now();
    let mut i = 1;
    loop {
        let (status, body) = register(&http, &base, i).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(started.elapsed() < Duration::from_secs(20), "writes kept working on a full disk");
        i += 1;
    }
    eprintln!("the disk was full after {i} writes");
    let (status, body) = get(&http, format!("{base}/healthz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "liveness while writes fail: {body}");
    assert_eq!(body["error"]["code"], "storage_unavailable");
    let (status, _) = get(&http, format!("{base}/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "readiness while writes fail");

    // Space again: writes work on every connection of the pool, with no restart.
    disk.free();
    let started = Instant::now();
    loop {
        i += 1;
        if register(&http, &base, i).await.0 == StatusCode::OK {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "writes did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..40 {
        i += 1;
        let (status, body) = register(&http, &base, i).await;
        assert_eq!(status, StatusCode::OK, "a write after recovery failed: {body}");
    }
    let ring = http
        .post(format!("{base}/v1/calls"))
        .bearer_auth(API_KEY)
        .json(&json!({"from": {"id": "alice"}, "to": ["bob"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ring.status(), StatusCode::ACCEPTED);
    assert_eq!(get(&http, format!("{base}/healthz")).await.0, StatusCode::OK);
    assert_eq!(get(&http, format!("{base}/readyz")).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_draining_and_both_checks_are_documented() {
    let s = TestServer::start(Db::Sqlite).await;
    assert_eq!(s.call(Method::GET, "/readyz", None, None).await.0, StatusCode::OK);
    s.running.as_ref().unwrap().draining.set_draining();
    let (status, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "draining");
    // Draining is no reason to restart: liveness still passes.
    assert_eq!(s.call(Method::GET, "/healthz", None, None).await.0, StatusCode::OK);

    let (_, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    for path in ["/healthz", "/readyz"] {
        let responses = &doc["paths"][path]["get"]["responses"];
        assert!(responses["200"].is_object() && responses["503"].is_object(), "{path}: {responses}");
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_wal_and_shm_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("callpush.db");
    let store = Store::connect(&format!("sqlite://{}", db.display()), 4).await.unwrap();
    store.check_writes(callpush_server::time::now_ms()).await.unwrap();
    for file in ["callpush.db", "callpush.db-wal", "callpush.db-shm"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_database_readable_by_others_is_restricted_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("callpush.db");
    let url = format!("sqlite://{}", db.display());
    drop(Store::connect(&url, 1).await.unwrap());
    for file in ["callpush.db", "callpush.db-wal", "callpush.db-shm"] {
        let file = dir.path().join(file);
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let store = Store::connect(&url, 1).await.unwrap();
    store.check_writes(callpush_server::time::now_ms()).await.unwrap();
    for file in ["callpush.db", "callpush.db-wal", "callpush.db-shm"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_stderr_is_json_and_carries_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No API keys and no [auth], with `--dev`: development credentials are made and announced.
    let config = write_config(dir.path(), dir.path(), port, "log_format = \"json\"");
    let stderr = dir.path().join("stderr.log");
    let server = ServeProcess::start(
        &config,
        Launch { log: Some("info"), stderr: Some(&stderr), dev: true, ..Launch::default() },
    );
    wait_healthy(&format!("http://127.0.0.1:{port}"), Some(&stderr)).await;
    drop(server);

    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(dev_credentials_path(dir.path())).unwrap()).unwrap();
    let secrets: Vec<&str> = credentials.as_object().unwrap().values().filter_map(Value::as_str).collect();
    assert!(!secrets.is_empty(), "{credentials}");
    let log = std::fs::read_to_string(&stderr).unwrap();
    let mut announced = false;
    for line in log.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line:?}"));
        for secret in &secrets {
            assert!(!line.contains(secret), "a secret on stderr: {line}");
        }
        announced |= event["fields"]["credentials_file"]
            .as_str()
            .is_some_and(|f| f == dev_credentials_path(dir.path()).display().to_string());
    }
    assert!(announced, "no event names the credentials file: {log}");
}
