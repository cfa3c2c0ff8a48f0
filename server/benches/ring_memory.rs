//! Resident memory of `callpush serve` on SQLite through repeated ring bursts: does memory come
//! back, or stay at its high-water mark? Registers 1,000 users with one device each (no-op
//! sender), then fires bursts of rings as fast as they go from many clients at once (so the
//! server commits rings in groups of every size), and samples the server's VmRSS after each
//! burst once it has settled.
//!
//! Run: `cargo bench -p callpush-server --bench ring_memory` (release build; about a minute).
//! `CALLPUSH_BENCH_BURSTS` and `CALLPUSH_BENCH_BURST_RINGS` change the load (default 8 × 20,000);
//! `CALLPUSH_BENCH_BIN` runs another `callpush` binary (to compare two builds).

#[path = "../tests/support/process.rs"]
mod process;

use std::io::Write;
use std::time::{Duration, Instant};

use callpush_server::auth::mint_device_token;
use futures::stream::{self, StreamExt};
use process::{free_port, wait_healthy, Launch, ServeProcess};
use serde_json::json;

const API_KEY: &str = "bench-api-key-0123456789";
const SECRET: &str = "bench-device-token-secret-0123456789abcdef";
const USERS: usize = 1_000;
const CONCURRENCY: usize = 128;

/// The server under measure, with its data directory.
struct Server {
    process: ServeProcess,
    base: String,
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("callpush.toml");
    write!(
        std::fs::File::create(&config).unwrap(),
        r#"
        listen = "127.0.0.1:{port}"
        database_url = "sqlite://{db}"
        data_dir = "{dir}"
        api_keys = ["{API_KEY}"]
        [auth]
        hs256_secret = "{SECRET}"
        [sender]
        kind = "noop"
        "#,
        db = dir.path().join("bench.db").display(),
        dir = dir.path().display(),
    )
    .unwrap();
    let binary = std::env::var("CALLPUSH_BENCH_BIN").ok();
    let launch = Launch { show_stderr: true, binary: binary.as_deref(), ..Launch::default() };
    Server {
        process: ServeProcess::start(&config, launch),
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let bursts = env_or("CALLPUSH_BENCH_BURSTS", 8);
    let burst_rings = env_or("CALLPUSH_BENCH_BURST_RINGS", 20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = start();
        let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
        wait_healthy(&server.base, None).await;
        for i in 0..USERS {
            let r = http
                .put(format!("{}/v1/installations/inst-{i}", server.base))
                .bearer_auth(mint_device_token(SECRET, &format!("user-{i}"), 3600))
                .json(&json!({"platform": "fcm", "token": format!("fcm-token-{i:08}-benchmark")}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("sqlite: {USERS} installations, idle RSS {:.1} MiB", server.process.rss_mib());
        let mut total = 0;
        let mut peak: f64 = 0.0;
        for burst in 1..=bursts {
            let started = Instant::now();
            let failed = stream::iter(0..burst_rings)
                .map(|n| {
                    let (http, base) = (http.clone(), server.base.clone());
                    async move {
                        let r = http
                            .post(format!("{base}/v1/calls"))
                            .bearer_auth(API_KEY)
                            .json(&json!({"from": {"id": "caller"}, "to": [format!("user-{}", n % USERS)]}))
                            .send()
                            .await;
                        !r.is_ok_and(|r| r.status().as_u16() == 202)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .filter(|failed| std::future::ready(*failed))
                .count()
                .await;
            let rate = burst_rings as f64 / started.elapsed().as_secs_f64();
            total += burst_rings;
            let busy = server.process.rss_mib();
            // Let the deliveries drain and the write-ahead log be checkpointed.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let settled = server.process.rss_mib();
            peak = peak.max(busy).max(settled);
            println!(
                "burst {burst:>2}: {total:>7} rings ({rate:>5.0}/s, {failed} failed)   RSS at end {busy:>6.1} MiB, \
                 settled {settled:>6.1} MiB"
            );
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        println!("sqlite: after {total} rings, peak {peak:.1} MiB, 10 s idle {:.1} MiB", server.process.rss_mib());
    });
}
