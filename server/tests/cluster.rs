//! Rings through deploys, crashes and slow providers, with `callpush serve` processes as an
//! operator runs them: one or two instances on one database, pushes counted per device in the
//! file sender's log (one line per push as it reaches the "provider", with its time).
//!
//! Each test prints its figures (lost, duplicated, late, takeover and drain times).

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use callpush_server::auth::mint_device_token;
use callpush_server::time::now_ms;
use serde_json::{json, Value};
use support::process::{free_port, wait_healthy, Launch, ServeProcess};
use support::Db;

const API_KEY: &str = "cluster-test-api-key-0123";
const SECRET: &str = "cluster-test-device-secret-0123456789abcdef";

/// How the instances of one test run.
struct Setup {
    db: Db,
    devices: usize,
    concurrency: usize,
    delay_ms: u64,
    lease_ms: u32,
    ring_seconds: u32,
}

/// A test's database, push log and instances.
struct Cluster {
    dir: tempfile::TempDir,
    database_url: String,
    pushes: PathBuf,
    setup: Setup,
    http: reqwest::Client,
}

/// One `callpush serve` process.
struct Instance {
    process: ServeProcess,
    base: String,
}

/// One push as the file sender logged it.
#[derive(Debug, Clone)]
struct Push {
    at: i64,
    installation_id: String,
    kind: String,
}

impl Cluster {
    async fn new(setup: Setup) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let database_url = support::fresh_database(setup.db, dir.path()).await;
        let pushes = dir.path().join("pushes.jsonl");
        Cluster { dir, database_url, pushes, setup, http: reqwest::Client::new() }
    }

    /// Starts an instance and waits until it answers.
    async fn start(&self, name: &str) -> Instance {
        let port = free_port();
        let config = self.dir.path().join(format!("{name}.toml"));
        let mut file = std::fs::File::create(&config).unwrap();
        write!(
            file,
            r#"
            listen = "127.0.0.1:{port}"
            database_url = "{db}"
            database_connections = 4
            data_dir = "{dir}"
            api_keys = ["{API_KEY}"]
            [auth]
            hs256_secret = "{SECRET}"
            [registrar]
            max_installations_per_user = 1000
            [ring]
            default_ring_seconds = {ring}
            max_ring_seconds = 120
            concurrency = {concurrency}
            claim_batch = {concurrency}
            claim_lease_ms = {lease}
            drain_seconds = 10
            [sender]
            kind = "file"
            path = "{pushes}"
            delay_ms = {delay}
            "#,
            db = self.database_url,
            dir = self.dir.path().display(),
            ring = self.setup.ring_seconds,
            concurrency = self.setup.concurrency,
            lease = self.setup.lease_ms,
            pushes = self.pushes.display(),
            delay = self.setup.delay_ms,
        )
        .unwrap();
        let log = self.dir.path().join(format!("{name}.log"));
        let launch = Launch { log: Some("info,sqlx=warn"), stderr: Some(&log), ..Launch::default() };
        let instance = Instance {
            process: ServeProcess::start(&config, launch),
            base: format!("http://127.0.0.1:{port}"),
        };
        wait_healthy(&instance.base, Some(&log)).await;
        instance
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Registers `bob`'s devices `bob-000`… on `instance`.
    async fn register_devices(&self, instance: &Instance) {
        let bob = mint_device_token(SECRET, "bob", 600);
        for chunk in (0..self.setup.devices).collect::<Vec<_>>().chunks(32) {
            let puts = chunk.iter().map(|i| {
                self.http
                    .put(format!("{}/v1/installations/{}", instance.base, device(*i)))
                    .bearer_auth(&bob)
                    .json(&json!({"platform": "fcm", "token": format!("fcm-token-bob-{i:05}-xyz")}))
                    .send()
            });
            for r in futures::future::join_all(puts).await {
                assert!(r.unwrap().status().is_success());
            }
        }
    }

    /// Rings every device of `bob` through `instance`; returns the ring deadline, unix ms.
    async fn ring(&self, instance: &Instance, call_id: &str) -> i64 {
        let r = self
            .http
            .post(format!("{}/v1/calls", instance.base))
            .bearer_auth(API_KEY)
            .json(&json!({"call_id": call_id, "from": {"id": "alice"}, "to": ["bob"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["deliveries"].as_array().unwrap().len(), self.setup.devices);
        created["expires_at_ms"].as_i64().unwrap()
    }

    fn pushes(&self) -> Vec<Push> {
        std::fs::read_to_string(&self.pushes)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|p| Push {
                at: p["at"].as_i64().unwrap(),
                installation_id: p["installation_id"].as_str().unwrap().to_owned(),
                kind: p["kind"].as_str().unwrap().to_owned(),
            })
            .collect()
    }

    /// Rings per device so far.
    fn rings(&self) -> HashMap<String, Vec<i64>> {
        let mut rings: HashMap<String, Vec<i64>> = HashMap::new();
        for push in self.pushes().into_iter().filter(|p| p.kind == "ring") {
            rings.entry(push.installation_id).or_default().push(push.at);
        }
        rings
    }

    /// Waits until `n` devices rang, or `limit` passes.
    async fn wait_for_rings(&self, n: usize, limit: Duration) -> HashMap<String, Vec<i64>> {
        let started = Instant::now();
        loop {
            let rings = self.rings();
            if rings.len() >= n || started.elapsed() > limit {
                return rings;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The call as the app backend sees it once every delivery's result is recorded (results
    /// are written a moment after the push goes out).
    async fn call(&self, instance: &Instance, call_id: &str) -> Value {
        let started = Instant::now();
        loop {
            let r = self
                .http
                .get(format!("{}/v1/calls/{call_id}", instance.base))
                .bearer_auth(API_KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let call: Value = r.json().await.unwrap();
            let settled = call["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] != "sending" && d["status"] != "pending");
            if settled || started.elapsed() > Duration::from_secs(10) {
                return call;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The status of each delivery of a call, sorted.
fn statuses(call: &Value) -> Vec<String> {
    let mut statuses: Vec<String> = call["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    statuses
}

fn device(i: usize) -> String {
    format!("bob-{i:03}")
}

/// Lost, duplicated and late rings of a fan-out.
#[derive(Debug)]
struct Tally {
    lost: usize,
    duplicated: usize,
    late: usize,
}

fn tally(rings: &HashMap<String, Vec<i64>>, devices: usize, deadline: i64) -> Tally {
    Tally {
        lost: devices - rings.len(),
        duplicated: rings.values().map(|at| at.len() - 1).sum(),
        late: rings.values().flatten().filter(|at| **at > deadline).count(),
    }
}

/// Sends SIGTERM and waits for the process to exit; returns its status and how long it took.
fn terminate(instance: &mut Instance) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    let pid = instance.process.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    loop {
        if let Some(status) = instance.process.child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the instance did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two instances on PostgreSQL; one is killed (`kill -9`) in the middle of a fan-out. The
/// survivor takes its work over within a lease: every device rings before the deadline, and
/// only the pushes the dead instance had in flight go twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_work_is_taken_over_within_a_lease() {
    if support::postgres_url().is_none() {
        return;
    }
    let setup = Setup {
        db: Db::Postgres,
        devices: 300,
        concurrency: 8,
        delay_ms: 100,
        lease_ms: 3000,
        ring_seconds: 20,
    };
    let (devices, concurrency) = (setup.devices, setup.concurrency);
    let cluster = Cluster::new(setup).await;
    let mut a = cluster.start("a").await;
    let b = cluster.start("b").await;
    cluster.register_devices(&a).await;
    let deadline = cluster.ring(&a, "kill-call").await;
    cluster.wait_for_rings(60, Duration::from_secs(20)).await;
    a.process.kill(); // SIGKILL: no shutdown code runs
    let killed_at = now_ms();
    let rings = cluster.wait_for_rings(devices, Duration::from_secs(20)).await;
    let t = tally(&rings, devices, deadline);
    let last = rings.values().flatten().max().copied().unwrap_or(killed_at);
    eprintln!(
        "kill -9 of one of two instances mid fan-out: {t:?}; every device rang {} ms after the kill",
        last - killed_at
    );
    assert_eq!((t.lost, t.late), (0, 0), "every device rang before the deadline");
    // In flight at the kill, or sent with the result not yet written.
    assert!(t.duplicated <= 2 * concurrency, "only pushes in flight at the kill may go twice: {t:?}");
    let call = cluster.call(&b, "kill-call").await;
    assert_eq!(statuses(&call), vec!["delivered"; devices], "the timeline shows every ring delivered");
    let taken_over =
        call["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == "delivery_taken_over").count();
    assert!(
        taken_over >= t.duplicated,
        "every push sent twice is on the timeline as taken over: {taken_over}, {t:?}"
    );
}

async fn a_terminated_instance_hands_its_work_over(db: Db) {
    let setup = Setup { db, devices: 300, concurrency: 8, delay_ms: 100, lease_ms: 3000, ring_seconds: 20 };
    let devices = setup.devices;
    let cluster = Cluster::new(setup).await;
    let mut a = cluster.start("a").await;
    // On SQLite one instance: the same one starts again, as in a deploy.
    let b = if db == Db::Postgres { Some(cluster.start("b").await) } else { None };
    cluster.register_devices(&a).await;
    let deadline = cluster.ring(&a, "deploy-call").await;
    cluster.wait_for_rings(60, Duration::from_secs(20)).await;
    let (status, drain) = terminate(&mut a);
    assert!(status.success(), "SIGTERM exits cleanly: {status}; {}", cluster.log("a"));
    let at_exit = cluster.rings().len();
    let b = match b {
        Some(b) => b,
        None => cluster.start("a-again").await,
    };
    let rings = cluster.wait_for_rings(devices, Duration::from_secs(20)).await;
    let t = tally(&rings, devices, deadline);
    eprintln!(
        "SIGTERM mid fan-out ({db:?}): drained and exited in {} ms with {at_exit} of {devices} rung; {t:?}",
        drain.as_millis()
    );
    assert!(at_exit < devices, "terminated too late to prove anything");
    assert_eq!((t.lost, t.duplicated, t.late), (0, 0, 0), "a deploy loses nothing and rings nothing twice");
    let call = cluster.call(&b, "deploy-call").await;
    assert_eq!(statuses(&call), vec!["delivered"; devices]);
}

/// SIGTERM during a fan-out: the instance stops claiming, finishes what is in flight, hands the
/// rest back and exits 0; the other instance (PostgreSQL) or the restarted one (SQLite) sends
/// the rest. Nothing is lost and nothing rings twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_loses_nothing_and_rings_nothing_twice_on_postgres() {
    if support::postgres_url().is_some() {
        a_terminated_instance_hands_its_work_over(Db::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_loses_nothing_and_rings_nothing_twice_on_sqlite() {
    a_terminated_instance_hands_its_work_over(Db::Sqlite).await;
}

/// How the call ends in the middle of its fan-out.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Answer,
    Cancel,
}

/// Rings a fan-out through one instance and ends it mid-way through `ender` (the same instance,
/// or with `on_other_instance` a second one on the same PostgreSQL database).
async fn nothing_rings_after_the_end(db: Db, ending: Ending, on_other_instance: bool) {
    let setup = Setup { db, devices: 200, concurrency: 8, delay_ms: 200, lease_ms: 3000, ring_seconds: 30 };
    let devices = setup.devices;
    let cluster = Cluster::new(setup).await;
    let a = cluster.start("a").await;
    let b = if on_other_instance { Some(cluster.start("b").await) } else { None };
    let ender = b.as_ref().unwrap_or(&a);
    cluster.register_devices(&a).await;
    cluster.ring(&a, "end-call").await;
    cluster.wait_for_rings(20, Duration::from_secs(20)).await;
    let request = match ending {
        Ending::Answer => cluster
            .http
            .post(format!("{}/v1/calls/end-call/answer", ender.base))
            .bearer_auth(mint_device_token(SECRET, "bob", 600))
            .json(&json!({"installation_id": device(0)})),
        Ending::Cancel => cluster
            .http
            .post(format!("{}/v1/calls/end-call/cancel", ender.base))
            .bearer_auth(API_KEY)
            .json(&json!({"reason": "caller_cancelled"})),
    };
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ended_at = now_ms();
    // Whatever was in flight lands; nothing queued may follow.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rings = cluster.rings();
    let after: usize = rings.values().flatten().filter(|at| **at > ended_at).count();
    eprintln!(
        "{ending:?} during a fan-out ({db:?}, {}): {} of {devices} devices rang before the end, {after} after",
        if on_other_instance { "ended on the other instance" } else { "one instance" },
        rings.len()
    );
    assert!(rings.len() < devices, "ended too late to prove anything");
    assert_eq!(after, 0, "no ring is sent after the call ended");
    let call = cluster.call(&a, "end-call").await;
    let deliveries = call["deliveries"].as_array().unwrap();
    let rang = deliveries.iter().filter(|d| d["kind"] == "ring" && d["status"] == "delivered").count();
    let skipped = deliveries.iter().filter(|d| d["kind"] == "ring" && d["status"] == "skipped").count();
    assert_eq!(rang, rings.len(), "the timeline lists as delivered exactly the rings that went out");
    assert_eq!(rang + skipped, devices, "every other ring is skipped: {:?}", statuses(&call));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_rings_after_an_answer_on_sqlite() {
    nothing_rings_after_the_end(Db::Sqlite, Ending::Answer, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_rings_after_a_cancel_on_sqlite() {
    nothing_rings_after_the_end(Db::Sqlite, Ending::Cancel, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_rings_after_an_answer_on_postgres() {
    if support::postgres_url().is_some() {
        nothing_rings_after_the_end(Db::Postgres, Ending::Answer, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_rings_after_a_cancel_on_postgres() {
    if support::postgres_url().is_some() {
        nothing_rings_after_the_end(Db::Postgres, Ending::Cancel, false).await;
    }
}

/// An answer or cancel handled by the other instance stops the fan-out of the first: it claims
/// only what it can send at once, and the end skips everything unclaimed in the same commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_rings_after_an_answer_on_the_other_instance() {
    if support::postgres_url().is_some() {
        nothing_rings_after_the_end(Db::Postgres, Ending::Answer, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_rings_after_a_cancel_on_the_other_instance() {
    if support::postgres_url().is_some() {
        nothing_rings_after_the_end(Db::Postgres, Ending::Cancel, true).await;
    }
}

/// A provider slower than the claim lease, on two instances: a queue that waits longer than a
/// lease keeps its claims (the heartbeat renews them), so each device rings exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slower_than_the_lease_rings_each_device_once() {
    let db = if support::postgres_url().is_some() { Db::Postgres } else { Db::Sqlite };
    let setup = Setup { db, devices: 48, concurrency: 8, delay_ms: 1500, lease_ms: 600, ring_seconds: 30 };
    let devices = setup.devices;
    let cluster = Cluster::new(setup).await;
    let a = cluster.start("a").await;
    let _b = if db == Db::Postgres { Some(cluster.start("b").await) } else { None };
    cluster.register_devices(&a).await;
    let deadline = cluster.ring(&a, "slow-call").await;
    let rings = cluster.wait_for_rings(devices, Duration::from_secs(25)).await;
    // Let any duplicate that would follow arrive.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let t = tally(&cluster.rings(), devices, deadline);
    eprintln!("provider 1.5 s per push, lease 0.6 s ({db:?}): {t:?} ({} rang)", rings.len());
    assert_eq!((t.lost, t.duplicated, t.late), (0, 0, 0));
}
