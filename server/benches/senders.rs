//! Each provider sender against its emulator, in one process on the machine's two cores:
//! pushes per second at 256 in flight (the server's default concurrency), and CPU time per
//! push (sender and emulator together, so an upper bound for the sender alone). Then the whole server with every provider configured:
//! ring request → provider hand-off latency at a steady 200 rings/s, each ringing one device on
//! each of the four platforms.
//!
//! Run: `cargo bench -p callpush-server --bench senders`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callpush_client::model::{Caller, Invite, Platform, PushEvent};
use callpush_client::wire::{encode_push, CallSigner};
use callpush_emulators::credentials::TestCredentials;
use callpush_emulators::device::token_for;
use callpush_emulators::Emulators;
use callpush_server::config::{Config, SenderConfig, WnsFlow};
use callpush_server::domain::PushKind;
use callpush_server::senders::{OutgoingPush, SendOutcome, Sender};
use callpush_server::time::now_secs;
use futures::stream::{self, StreamExt};

const PUSHES: usize = 20_000;
/// Pushes in flight: the server's default `ring.concurrency`.
const IN_FLIGHT: usize = 256;

/// CPU time of this process so far (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn push(platform: Platform, signer: &CallSigner, n: usize) -> OutgoingPush {
    let now = now_secs();
    let invite = Invite {
        iss: "bench".into(),
        aud: "bob".into(),
        jti: format!("d-{n}"),
        iat: now,
        exp: now + 30,
        v: 1,
        evt: PushEvent::Ring,
        cid: format!("call-{n}"),
        from: Caller { id: "alice".into(), name: Some("Alice".into()) },
        video: true,
        reason: None,
        data: BTreeMap::new(),
    };
    OutgoingPush {
        delivery_id: format!("d-{n}"),
        call_id: format!("call-{n}"),
        installation_id: format!("i-{n}"),
        platform,
        token: token_for(platform, (n % 1000) as u32),
        apns_environment: Some(callpush_client::model::ApnsEnvironment::Sandbox),
        kind: PushKind::Ring,
        payload: Some(encode_push(platform, &invite, signer).unwrap()),
        missed: None,
        ttl_seconds: 30,
        expires_at: now + 30,
    }
}

async fn throughput(platform: Platform, sender: Arc<dyn Sender>) {
    let signer = CallSigner::from_seed(&[7; 32]);
    let pushes: Vec<OutgoingPush> = (0..PUSHES).map(|n| push(platform, &signer, n)).collect();
    // Warm up: the provider token, the connection. A sender that does not deliver here has
    // nothing to measure: say why and stop.
    for p in pushes.iter().take(200) {
        let outcome = sender.send(p).await;
        assert!(matches!(outcome, SendOutcome::Delivered { .. }), "{platform}: {outcome:?}");
    }
    let (cpu, started) = (cpu_time(), Instant::now());
    let delivered = stream::iter(pushes.iter())
        .map(|p| {
            let sender = sender.clone();
            async move { matches!(sender.send(p).await, SendOutcome::Delivered { .. }) }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let elapsed = started.elapsed();
    let cpu_per_push = (cpu_time() - cpu).as_secs_f64() * 1e6 / PUSHES as f64;
    println!(
        "{:<8} {:>7.0} pushes/s   {:>5.0} µs CPU per push (sender + emulator)   {delivered}/{PUSHES} delivered",
        platform.as_str(),
        PUSHES as f64 / elapsed.as_secs_f64(),
        cpu_per_push
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let emulators = Emulators::start(TestCredentials::default()).await.unwrap();
        let (providers, _) = emulators.providers_config(dir.path(), WnsFlow::Live).unwrap();
        let config = Config { providers, sender: SenderConfig::Noop, ..Config::default() };
        let senders = callpush_server::app::senders_from_config(&config).unwrap();
        // Every token's device is online (WNS drops raw notifications to offline devices).
        for platform in Platform::ALL {
            for n in 0..1000 {
                let mut device = emulators.hub.subscribe(platform, &token_for(platform, n));
                tokio::spawn(async move { while device.recv().await.is_some() {} });
            }
        }
        println!("each sender to its emulator, {IN_FLIGHT} in flight, {PUSHES} pushes:");
        for platform in Platform::ALL {
            throughput(platform, senders.for_platform(platform).clone()).await;
        }
        ring_latency(&emulators, config, dir.path()).await;
    });
}

/// The whole server, every provider configured: ring → provider hand-off at 200 rings/s.
async fn ring_latency(emulators: &Emulators, mut config: Config, dir: &std::path::Path) {
    use callpush_emulators::device::SimulatedDevice;
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    config.data_dir = dir.to_owned();
    config.api_keys = vec!["bench-api-key-0123456789".into()];
    config.auth.hs256_secret = Some("bench-device-token-secret-0123456789abcdef".into());
    let senders = callpush_server::app::senders_from_config(&config).unwrap();
    let server = callpush_server::app::start(&config, senders).await.unwrap();
    let base = format!("http://{}", server.addr);
    let bob =
        callpush_server::auth::mint_device_token("bench-device-token-secret-0123456789abcdef", "bob", 3600);
    let mut devices = Vec::new();
    for (n, platform) in Platform::ALL.into_iter().enumerate() {
        let device = SimulatedDevice::start(
            platform.as_str(),
            platform,
            &token_for(platform, 5000 + n as u32),
            &base,
            &dir.join(format!("device-{n}")),
            bob.clone(),
            &emulators.hub,
        )
        .unwrap();
        device.register().await.unwrap();
        devices.push(device);
    }
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut rings = Vec::new();
    for _ in 0..2000 {
        tick.tick().await;
        let (http, base) = (http.clone(), base.clone());
        rings.push(tokio::spawn(async move {
            http.post(format!("{base}/v1/calls"))
                .bearer_auth("bench-api-key-0123456789")
                .json(&serde_json::json!({"from": {"id": "alice"}, "to": ["bob"]}))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 202)
        }));
    }
    let ok = futures::future::join_all(rings).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = server.metrics.encode();
    let (p50, p99, n) = quantiles(&metrics, "callpush_ring_to_send_seconds");
    println!(
        "whole server, 200 rings/s × 4 platforms: ring → provider hand-off p50 ≤ {p50:.2} ms, p99 ≤ {p99:.2} ms \
         over {n} pushes ({ok}/2000 rings accepted)"
    );
    drop(devices);
    server.stop().await;
}

/// p50 and p99 (bucket upper bounds, ms) and the count of a histogram in Prometheus text.
fn quantiles(metrics: &str, name: &str) -> (f64, f64, u64) {
    let buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            Some((
                if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? },
                l.rsplit(' ').next()?.parse().ok()?,
            ))
        })
        .collect();
    let total = buckets.last().map_or(0, |b| b.1);
    let at = |q: f64| {
        buckets.iter().find(|(_, c)| *c as f64 >= q * total as f64).map_or(f64::NAN, |(le, _)| le * 1000.0)
    };
    (at(0.5), at(0.99), total)
}
