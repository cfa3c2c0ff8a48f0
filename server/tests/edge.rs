//! The HTTP edge against a `callpush serve` process: idle connections cannot starve it of files,
//! slow headers and slow bodies are cut off, one user's long-polls are bounded, and device tokens
//! are held to the configured issuer, audience, `nbf`, `crit` and size.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_server::auth::mint_device_token;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::process::{Launch, ServeProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_KEY: &str = "edge-test-api-key-0123";
const SECRET: &str = "edge-test-device-secret-0123456789abcdef";
const FCM: &str = "fcm-token-edge-0123456789";

/// A `callpush serve` process, killed when dropped.
struct Server {
    _process: ServeProcess,
    base: String,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server whose configuration ends with `extra` (TOML sections), with at most
    /// `open_files` files open when given.
    async fn start(extra: &str, open_files: Option<u32>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.path().join("callpush.toml");
        let mut file = std::fs::File::create(&config).unwrap();
        write!(
            file,
            r#"
            listen = "127.0.0.1:{port}"
            database_url = "sqlite://{db}"
            database_connections = 4
            data_dir = "{dir}"
            api_keys = ["{API_KEY}"]
            [ring]
            default_ring_seconds = 60
            max_ring_seconds = 120
            concurrency = 4
            claim_batch = 8
            [sender]
            kind = "noop"
            {extra}
            "#,
            db = dir.path().join("callpush.db").display(),
            dir = dir.path().display(),
        )
        .unwrap();
        let ulimit = open_files.map(|limit| format!("ulimit -n {limit}"));
        // Tests that configure no [auth] run with development device-token credentials.
        let process = ServeProcess::start(
            &config,
            Launch { prelude: ulimit.as_deref(), dev: true, ..Launch::default() },
        );
        let server = Server {
            _process: process,
            base: format!("http://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if raw_get(&server.addr, "/healthz").await.is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not come up");
    }

    /// A client that opens a new connection for every request, so no kept-alive connection of
    /// the test counts against the server's limits.
    fn http() -> reqwest::Client {
        reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
    }

    /// The value of an unlabelled metric.
    async fn metric(&self, name: &str) -> f64 {
        let text =
            Server::http().get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// Waits up to ten seconds for a metric to reach `value`.
    async fn wait_for_metric(&self, name: &str, value: f64) {
        let started = Instant::now();
        loop {
            let now = self.metric(name).await;
            if now == value {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{name} stayed {now}, not {value}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `GET path` on a new connection: everything the server sent before closing, or `None` if it
/// did not answer and close within five seconds.
async fn raw_get(addr: &str, path: &str) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.ok().flatten()
}

/// Reads until the server closes the connection (or resets it); `None` if it is still open
/// after `bound`.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    loop {
        let left = bound.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&answer).into_owned()),
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// With 256 files the default cap is 256 − 128 − 2 × 4 database connections − 4 pushes = 116
/// connections. Far more idle connections than the files allow: each one past the cap is answered
/// `503 too_many_connections` and closed, `/healthz` on a new connection is answered at once (the
/// same `503` while saturated, never a hang), the idle ones are closed after the idle timeout, and
/// then `/healthz` answers `200`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_server_of_files() {
    const IDLE: usize = 300;
    const CAP: usize = 116;
    let server =
        Server::start("[http]\nidle_timeout_ms = 4000\nheader_read_timeout_ms = 4000", Some(256)).await;
    // Only the probe itself is open: every slot under the cap is free.
    server.wait_for_metric("callpush_http_connections", 1.0).await;

    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(&server.addr).await.expect("the listener takes connections"));
    }
    // The connections past the cap are refused first; the held ones only close at the idle timeout.
    let (closed, mut still_open): (Vec<_>, Vec<_>) = {
        let reads = idle.into_iter().map(|mut stream| async move {
            let answer = read_until_closed(&mut stream, Duration::from_millis(2500)).await;
            (answer, stream)
        });
        futures::future::join_all(reads).await.into_iter().partition(|(answer, _)| answer.is_some())
    };
    assert_eq!(still_open.len(), CAP, "connections held under the cap");
    for (answer, _) in &closed {
        let answer = answer.as_deref().unwrap();
        // A refusal is the 503, or (past the refusals in progress) a close without a word.
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "{answer}");
    }
    assert!(closed.iter().any(|(a, _)| a.as_deref().unwrap().contains("too_many_connections")));

    let answer = raw_get(&server.addr, "/healthz").await.expect("an answer while saturated, not a hang");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("connection: close") && answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains(r#"{"error":{"code":"too_many_connections""#), "{answer}");

    for (_, stream) in &mut still_open {
        let answer = read_until_closed(stream, Duration::from_secs(10)).await;
        assert_eq!(answer.as_deref(), Some(""), "an idle connection is closed after the idle timeout");
    }
    let started = Instant::now();
    loop {
        match raw_get(&server.addr, "/healthz").await {
            Some(answer) if answer.starts_with("HTTP/1.1 200") => break,
            other => assert!(
                started.elapsed() < Duration::from_secs(10),
                "no 200 after the idle ones closed: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metric("callpush_http_refused_connections_total").await, (IDLE - CAP + 1) as f64);
}

/// Headers trickled in (slowloris) and a body trickled in are cut off after their timeouts, long
/// before the idle timeout: the slow body with `408 request_timeout` and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let server = Server::start(
        "[http]\nheader_read_timeout_ms = 1000\nbody_read_timeout_ms = 1000\nidle_timeout_ms = 60000",
        None,
    )
    .await;

    /// Sends `head` then one byte of `trickle` every 200 ms; what the server answered once it
    /// closed the connection, or `None` if it was still open after eight seconds.
    async fn trickle(addr: &str, head: &str, trickle: &[u8]) -> Option<String> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let trickle = trickle.to_vec();
        let writing = tokio::spawn(async move {
            for byte in trickle.iter().cycle() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if writer.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        });
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(8), async {
            let _ = reader.read_to_end(&mut answer).await;
        })
        .await;
        writing.abort();
        closed.ok().map(|()| String::from_utf8_lossy(&answer).into_owned())
    }

    let slowloris = trickle(&server.addr, "GET /healthz HTTP/1.1\r\nhost: edge\r\n", b"x-slow: 1\r\n").await;
    let slowloris = slowloris.expect("trickled headers are cut off");
    assert!(!slowloris.contains("200 OK"), "{slowloris}");

    let body =
        r#"{"from": {"id": "alice"}, "to": ["bob"], "data": {"pad": "................................"}}"#;
    let head = format!(
        "POST /v1/calls HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {API_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    let answer = trickle(&server.addr, &head, &body.as_bytes()[10..]).await.expect("a slow body is cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");

    // A body sent in time is unaffected.
    let r = Server::http()
        .post(format!("{}/v1/calls", server.base))
        .bearer_auth(API_KEY)
        .json(&json!({"from": {"id": "alice"}, "to": ["bob"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// The ninth concurrent long-poll of one user is answered `429 too_many_waits` with `Retry-After`
/// at once; another user is not affected; waits are released when answered and when their
/// client goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_holds_at_most_eight_long_polls() {
    let server = Server::start(&format!("[auth]\nhs256_secret = \"{SECRET}\""), None).await;
    let http = reqwest::Client::new();
    for user in ["bob", "carol"] {
        let r = http
            .put(format!("{}/v1/installations/{user}-phone", server.base))
            .bearer_auth(mint_device_token(SECRET, user, 600))
            .json(&json!({"platform": "fcm", "token": format!("{FCM}-{user}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let ring = |call: &'static str| {
        let http = http.clone();
        let base = server.base.clone();
        async move {
            let r = http
                .post(format!("{base}/v1/calls"))
                .bearer_auth(API_KEY)
                .json(&json!({"call_id": call, "from": {"id": "alice"}, "to": ["bob", "carol"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    };
    let wait = |user: &'static str, call: &'static str, seconds: u32| {
        let http = http.clone();
        let url = format!("{}/v1/calls/{call}?wait={seconds}", server.base);
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(mint_device_token(SECRET, user, 600)).send().await.unwrap();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry_after, r.json::<Value>().await.unwrap())
        })
    };

    ring("edge-call-1").await;
    let bobs: Vec<_> = (0..8).map(|_| wait("bob", "edge-call-1", 30)).collect();
    server.wait_for_metric("callpush_long_polls", 8.0).await;
    let (status, retry_after, body) = wait("bob", "edge-call-1", 30).await.unwrap();
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")), "{body}");
    assert_eq!(body["error"]["code"], "too_many_waits");
    let carol = wait("carol", "edge-call-1", 30);
    server.wait_for_metric("callpush_long_polls", 9.0).await;

    let r = http
        .post(format!("{}/v1/calls/edge-call-1/cancel", server.base))
        .bearer_auth(API_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for poll in bobs.into_iter().chain([carol]) {
        let (status, _, body) = poll.await.unwrap();
        assert_eq!((status, body["state"].as_str()), (200, Some("cancelled")), "{body}");
    }
    server.wait_for_metric("callpush_long_polls", 0.0).await;

    // Clients that go away release their waits.
    ring("edge-call-2").await;
    let bobs: Vec<_> = (0..8).map(|_| wait("bob", "edge-call-2", 30)).collect();
    server.wait_for_metric("callpush_long_polls", 8.0).await;
    for poll in bobs {
        poll.abort();
    }
    server.wait_for_metric("callpush_long_polls", 0.0).await;
    let (status, _, body) = wait("bob", "edge-call-2", 1).await.unwrap();
    assert_eq!((status, body["state"].as_str()), (200, Some("ringing")), "{body}");
}

/// With `issuer` and `audience` configured, a token needs both; a future `nbf` is refused, so is a
/// header naming critical extensions, and a bearer value over 8 KiB is refused before anything
/// decodes it, device token or API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_tokens_are_held_to_the_configuration() {
    let server = Server::start(
        &format!(
            "[auth]\nhs256_secret = \"{SECRET}\"\nissuer = \"https://id.example.com/\"\naudience = \"callpush-edge\""
        ),
        None,
    )
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let token = |header: &Header, claims: Value| jsonwebtoken::encode(header, &claims, &key).unwrap();
    let hs256 = Header::new(Algorithm::HS256);
    let register = |bearer: String| {
        let url = format!("{}/v1/installations/bob-phone", server.base);
        async move {
            let r = reqwest::Client::new()
                .put(url)
                .bearer_auth(bearer)
                .json(&json!({"platform": "fcm", "token": FCM}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (iss, aud, exp) = ("https://id.example.com/", "callpush-edge", now + 600);

    let good = token(&hs256, json!({"sub": "bob", "exp": exp, "iss": iss, "aud": aud}));
    assert_eq!(register(good).await.0, 200);
    for (case, claims) in [
        ("no iss", json!({"sub": "bob", "exp": exp, "aud": aud})),
        ("no aud", json!({"sub": "bob", "exp": exp, "iss": iss})),
        ("nbf in ten minutes", json!({"sub": "bob", "exp": exp, "iss": iss, "aud": aud, "nbf": now + 600})),
    ] {
        let (status, body) = register(token(&hs256, claims)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{case}: {body}");
    }
    let crit = Header { crit: Some(vec!["exp".into()]), ..Header::new(Algorithm::HS256) };
    let (status, body) =
        register(token(&crit, json!({"sub": "bob", "exp": exp, "iss": iss, "aud": aud}))).await;
    assert_eq!(status, 401, "crit: {body}");

    // 9 KiB: a well-formed token padded with an unknown claim, and an API-key-sized one.
    let padded =
        token(&hs256, json!({"sub": "bob", "exp": exp, "iss": iss, "aud": aud, "pad": "p".repeat(7000)}));
    assert!(padded.len() > 8192, "{}", padded.len());
    let (status, body) = register(padded).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("longer than 8192 bytes"), "{body}");
    let r = reqwest::Client::new()
        .post(format!("{}/v1/calls", server.base))
        .bearer_auth(URL_SAFE_NO_PAD.encode([7u8; 7000]))
        .json(&json!({"from": {"id": "alice"}, "to": ["bob"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("longer than 8192 bytes"), "{body}");
}
