//! Whole-process load figures for `callpush serve` with the no-op sender (budgets in docs/performance.md):
//! registrations/s and rings/s through the HTTP API, the ring → sender hand-off latency at a
//! steady 1,000 rings/s (p50/p99, from the server's own histogram), the fan-out rate of rings
//! to 1,000 devices each, and resident memory once idle with 100,000 installations. On SQLite
//! always; on PostgreSQL too when `CALLPUSH_BENCH_POSTGRES_URL` names a database
//! (`server/bench.sh` starts one). The load generator shares the machine's cores.
//!
//! Run: `cargo bench -p callpush-server --bench load` (release build; about two minutes).

#[path = "../tests/support/process.rs"]
mod process;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callpush_server::auth::mint_device_token;
use futures::stream::{self, StreamExt};
use process::{free_port, wait_healthy, Launch, ServeProcess};
use serde_json::json;

const API_KEY: &str = "bench-api-key-0123456789";
const SECRET: &str = "bench-device-token-secret-0123456789abcdef";
/// 90,000 users with one device each, and ten with 1,000 devices each (fan-out).
const SINGLE_USERS: usize = 90_000;
const FAN_USERS: usize = 10;
const FAN_DEVICES: usize = 1_000;
const INSTALLATIONS: usize = SINGLE_USERS + FAN_USERS * FAN_DEVICES;
const CONCURRENCY: usize = 64;

/// The owner of installation `i`.
fn owner(i: usize) -> String {
    if i < SINGLE_USERS {
        format!("user-{i}")
    } else {
        format!("fan-{}", (i - SINGLE_USERS) / FAN_DEVICES)
    }
}

/// The server under measure, with its data directory.
struct Server {
    process: ServeProcess,
    base: String,
    _dir: tempfile::TempDir,
}

fn start(database_url: Option<String>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let database_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let config = dir.path().join("callpush.toml");
    write!(
        std::fs::File::create(&config).unwrap(),
        r#"
        listen = "127.0.0.1:{port}"
        database_url = "{database_url}"
        data_dir = "{dir}"
        api_keys = ["{API_KEY}"]
        [auth]
        hs256_secret = "{SECRET}"
        [registrar]
        max_installations_per_user = 1000
        [sender]
        kind = "noop"
        "#,
        dir = dir.path().display(),
    )
    .unwrap();
    let binary: Option<String> = None;
    let launch = Launch { show_stderr: true, binary: binary.as_deref(), ..Launch::default() };
    Server {
        process: ServeProcess::start(&config, launch),
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// p50 and p99 of a Prometheus histogram in the server's /metrics text, in ms (upper bounds of
/// the buckets the quantiles fall in).
fn quantiles(metrics: &str, name: &str) -> (f64, f64, u64) {
    let buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, count))
        })
        .collect();
    let total = buckets.last().map_or(0, |b| b.1);
    let at = |q: f64| {
        buckets.iter().find(|(_, c)| *c as f64 >= q * total as f64).map_or(f64::NAN, |(le, _)| le * 1000.0)
    };
    (at(0.5), at(0.99), total)
}

async fn run(label: &str, database_url: Option<String>) {
    let server = start(database_url);
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    wait_healthy(&server.base, None).await;
    let tokens: Arc<Vec<String>> =
        Arc::new((0..INSTALLATIONS).map(|i| mint_device_token(SECRET, &owner(i), 3600)).collect());

    // Registrations: 100,000 installations.
    let started = Instant::now();
    let failures = stream::iter(0..INSTALLATIONS)
        .map(|i| {
            let (http, base, tokens) = (http.clone(), server.base.clone(), tokens.clone());
            async move {
                let r = http
                    .put(format!("{base}/v1/installations/inst-{i}"))
                    .bearer_auth(&tokens[i])
                    .json(&json!({"platform": "fcm", "token": format!("fcm-token-{i:08}-benchmark")}))
                    .send()
                    .await;
                !r.is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    let registrations = INSTALLATIONS as f64 / started.elapsed().as_secs_f64();
    assert_eq!(failures, 0, "registrations failed");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.process.rss_mib();

    // Rings as fast as they go, each to a user with one device.
    let rings = 10_000;
    let ring_to = |user: String| {
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/calls"))
                .bearer_auth(API_KEY)
                .json(&json!({"from": {"id": "caller", "name": "Bench"}, "to": [user]}))
                .send()
                .await;
            !r.is_ok_and(|r| r.status().as_u16() == 202)
        }
    };
    let ring = |n: usize| ring_to(format!("user-{}", n % SINGLE_USERS));
    let started = Instant::now();
    let failures = stream::iter(0..rings)
        .map(ring)
        .buffer_unordered(CONCURRENCY)
        .filter(|f| std::future::ready(*f))
        .count()
        .await;
    let ring_rate = rings as f64 / started.elapsed().as_secs_f64();
    assert_eq!(failures, 0, "rings failed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    let (_, _, sent_before) = quantiles(&before, "callpush_ring_to_send_seconds");

    // A steady 1,000 rings/s for 10 s: latency from the ring request to the sender.
    let restart = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut pending = Vec::with_capacity(10_000);
    for n in 0..10_000 {
        tick.tick().await;
        pending.push(tokio::spawn(ring(rings + n)));
    }
    let mut late = 0;
    for p in pending {
        late += usize::from(p.await.unwrap());
    }
    let paced = 10_000.0 / restart.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    // The histogram holds both phases; subtract the first by recomputing from the difference.
    let diff = histogram_difference(&after, &before, "callpush_ring_to_send_seconds");
    let (p50, p99, n) = quantiles(&diff, "callpush_ring_to_send_seconds");

    // Fan-out: ten rings of 1,000 devices each at once; pushes/s until the last is handed over.
    let sent = |metrics: &str| quantiles(metrics, "callpush_provider_latency_seconds").2;
    let fanned_before =
        sent(&http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap());
    let started = Instant::now();
    futures::future::join_all((0..FAN_USERS).map(|u| ring_to(format!("fan-{u}")))).await;
    let target = fanned_before + (FAN_USERS * FAN_DEVICES) as u64;
    loop {
        let metrics =
            http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
        if sent(&metrics) >= target || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fan_out = (FAN_USERS * FAN_DEVICES) as f64 / started.elapsed().as_secs_f64();

    let rss_after = server.process.rss_mib();
    println!(
        "{label:<10} registrations {registrations:>6.0}/s   rings {ring_rate:>5.0}/s   fan-out {fan_out:>6.0} pushes/s   \
         idle RSS with 100k installations {idle:.1} MiB (after load {rss_after:.1})"
    );
    println!(
        "{label:<10} at {paced:.0} rings/s: ring → sender p50 ≤ {p50:.2} ms, p99 ≤ {p99:.2} ms over {n} pushes \
         ({late} ring requests failed; {sent_before} pushes before)"
    );
}

/// The `after − before` histogram of `name`, as /metrics text.
fn histogram_difference(after: &str, before: &str, name: &str) -> String {
    let counts = |text: &str| -> Vec<(String, u64)> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
            .filter_map(|l| {
                let (series, count) = l.rsplit_once(' ')?;
                Some((series.to_owned(), count.parse().ok()?))
            })
            .collect()
    };
    let before = counts(before);
    counts(after)
        .into_iter()
        .map(|(series, count)| {
            let was = before.iter().find(|(s, _)| *s == series).map_or(0, |(_, c)| *c);
            format!("{series} {}\n", count - was)
        })
        .collect()
}

fn main() {
    // `cargo bench` passes filter arguments; this harness runs everything.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        run("sqlite", None).await;
        match std::env::var("CALLPUSH_BENCH_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => run("postgresql", Some(url)).await,
            _ => println!("postgresql: skipped (set CALLPUSH_BENCH_POSTGRES_URL; server/bench.sh does)"),
        }
    });
}
