//! Scripted faults and the request log every emulator shares, with their control routes:
//! `POST /_emulator/faults` (one [`Fault`] as JSON), `DELETE /_emulator/faults`,
//! `GET /_emulator/requests`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

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
}

/// The faults waiting to be served and the requests received. Cloning shares them.
#[derive(Clone, Default)]
pub struct FaultPlan {
    faults: Arc<Mutex<VecDeque<Fault>>>,
    received: Arc<Mutex<Vec<Received>>>,
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
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

async fn requests(State(plan): State<FaultPlan>) -> Json<Vec<Received>> {
    Json(plan.received())
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
}
