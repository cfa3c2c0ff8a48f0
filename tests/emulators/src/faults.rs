//! Scripted faults and the request log every emulator shares, with their control routes:
//! `POST /_emulator/faults` (one [`Fault`] as JSON), `DELETE /_emulator/faults`,
//! `GET /_emulator/requests` (`?since=N` skips the first N entries, `&wait_ms=M` waits up to M ms
//! for one more).
//!
//! Every logged request carries the moment it arrived ([`Received::received_at_us`]), taken when
//! its head was read, before the emulator checked anything: benchmarks in other processes time a
//! push from the server's side to its provider with it.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// One scripted fault: the next matching request gets this answer (or this misbehaviour)
/// instead of being handled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// HTTP status to answer with.
    pub status: u16,
    /// Body: JSON (an object or array) or, as a string, text.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Extra response headers (`Retry-After`, `X-WNS-Status`, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Wait this long before answering, ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// Close the connection without answering.
    #[serde(default)]
    pub drop_connection: bool,
    /// HTTP/2: send GOAWAY on the connection (APNs), after answering.
    #[serde(default)]
    pub goaway: bool,
    /// HTTP/2: stop serving the connection (APNs), as a hung connection behaves: it stays
    /// open, but nothing more is read or written on it, not even answers to PINGs, and this
    /// request and every other on it go unanswered.
    #[serde(default)]
    pub hang_connection: bool,
    /// How many requests it applies to (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// Only requests for this device token.
    #[serde(default)]
    pub token: Option<String>,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault answering `status` with a JSON `body`.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Fault { status, body: Some(body), times: 1, ..Fault::default() }
    }

    /// The same fault with a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The same fault for `n` requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// The same fault for one device token only.
    pub fn for_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
}

/// A request an emulator received; the `Authorization` header is kept (it is a test credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// Body as text.
    pub body: String,
    /// Status the emulator answered.
    pub status: u16,
    /// When the request arrived (its head was read), unix microseconds ([`arrival_us`]).
    pub received_at_us: u64,
}

tokio::task_local! {
    /// When the request being handled arrived, unix µs: set by the connection serving it.
    static ARRIVAL: u64;
}

/// Now, unix microseconds.
pub fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Handles one request (`handling`, the router's future for it) stamped with the moment it
/// arrived, now: what [`arrival_us`] gives inside.
pub fn arrived<F: Future>(handling: F) -> impl Future<Output = F::Output> {
    ARRIVAL.scope(unix_micros(), handling)
}

/// When the request being handled arrived, unix microseconds: stamped by the connection that
/// read it ([`arrived`]); now, outside one.
pub fn arrival_us() -> u64 {
    ARRIVAL.try_with(|at| *at).unwrap_or_else(|_| unix_micros())
}

/// The faults waiting to be served and the requests received. Cloning shares them.
#[derive(Clone, Default)]
pub struct FaultPlan {
    faults: Arc<Mutex<VecDeque<Fault>>>,
    received: Arc<Mutex<Vec<Received>>>,
    logged: Arc<Notify>,
}

impl FaultPlan {
    /// Queues a fault.
    pub fn push(&self, fault: Fault) {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).push_back(fault);
    }

    /// Removes every queued fault.
    pub fn clear(&self) {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The first queued fault that applies to a request for `token`, counted as used.
    pub fn take(&self, token: Option<&str>) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let index = faults.iter().position(|f| f.token.is_none() || f.token.as_deref() == token)?;
        let fault = faults[index].clone();
        if faults[index].times <= 1 {
            faults.remove(index);
        } else {
            faults[index].times -= 1;
        }
        Some(fault)
    }

    /// Logs a request.
    pub fn record(&self, received: Received) {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).push(received);
        self.logged.notify_waiters();
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The requests received after the first `since`, waiting up to `wait` for one if there are
    /// none yet.
    pub async fn received_since(&self, since: usize, wait: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let logged = self.logged.notified();
            tokio::pin!(logged);
            logged.as_mut().enable();
            let newer: Vec<Received> = {
                let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
                received.get(since..).map(<[Received]>::to_vec).unwrap_or_default()
            };
            if !newer.is_empty() || tokio::time::Instant::now() >= deadline {
                return newer;
            }
            if tokio::time::timeout_at(deadline, logged).await.is_err() {
                return Vec::new();
            }
        }
    }

    /// The control routes, to merge into an emulator's router.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/_emulator/faults", post(add_fault).delete(clear_faults))
            .route("/_emulator/requests", get(requests))
            .with_state(self.clone())
    }
}

async fn add_fault(State(plan): State<FaultPlan>, Json(fault): Json<Fault>) -> StatusCode {
    plan.push(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(plan): State<FaultPlan>) -> StatusCode {
    plan.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_emulator/requests?since=N&wait_ms=M`.
#[derive(Deserialize)]
struct RequestsQuery {
    /// Skip the first N entries.
    #[serde(default)]
    since: usize,
    /// With none after them yet, wait this long for one, ms (at most 10 s).
    #[serde(default)]
    wait_ms: u64,
}

/// The longest a request-log poll waits.
const MAX_LOG_WAIT: Duration = Duration::from_secs(10);

async fn requests(State(plan): State<FaultPlan>, Query(query): Query<RequestsQuery>) -> Json<Vec<Received>> {
    let wait = Duration::from_millis(query.wait_ms).min(MAX_LOG_WAIT);
    Json(plan.received_since(query.since, wait).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_to_matching_tokens_and_run_out() {
        let plan = FaultPlan::default();
        plan.push(Fault::json(500, serde_json::json!({})).for_token("b"));
        plan.push(Fault::json(503, serde_json::json!({})).times(2));
        assert_eq!(plan.take(Some("a")).unwrap().status, 503);
        assert_eq!(plan.take(Some("b")).unwrap().status, 500);
        assert_eq!(plan.take(Some("b")).unwrap().status, 503);
        assert!(plan.take(Some("b")).is_none());
    }

    fn request(path: &str) -> Received {
        Received {
            method: "POST".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            body: String::new(),
            status: 200,
            received_at_us: arrival_us(),
        }
    }

    #[tokio::test]
    async fn the_log_is_read_from_an_offset_and_waited_on() {
        let plan = FaultPlan::default();
        plan.record(request("/a"));
        assert_eq!(plan.received_since(0, Duration::ZERO).await.len(), 1);
        assert!(plan.received_since(1, Duration::from_millis(10)).await.is_empty(), "nothing newer yet");
        let later = plan.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            later.record(request("/b"));
        });
        let newer = plan.received_since(1, Duration::from_secs(5)).await;
        assert_eq!(newer.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/b"]);
        writer.await.unwrap();
        assert!(plan.received_since(7, Duration::ZERO).await.is_empty(), "past the end");
    }

    #[tokio::test]
    async fn requests_carry_the_moment_their_connection_read_them() {
        let stamped = arrived(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            (arrival_us(), unix_micros())
        })
        .await;
        assert!(stamped.1 >= stamped.0 + 30_000, "the arrival, not the moment of logging: {stamped:?}");
        let outside = arrival_us();
        assert!(outside >= stamped.1, "outside a request, now");
    }
}
