//! The HTTP edge: the accept loop serving the API over HTTP/1.1 and h2c, with the limits that
//! keep slow, idle or too many clients from holding the server — a header-read timeout
//! (slowloris), a request-body deadline (slow bodies get `408`), an idle timeout, a connection
//! cap answered with a clean `503` — and the per-user bound on long-polls; and [`observe`], the
//! layer that counts, times and logs every request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, State};
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::middleware::Next;
use axum::Router;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::metrics::{HttpLabels, Metrics, StatusLabels};
use crate::sync::unpoisoned;

/// Connections the cap leaves free when it is derived from the open-file limit: the process's
/// own files and the refusals in progress.
const FILE_RESERVE: u64 = 128;
/// Fewest connections a derived cap allows, however low the open-file limit.
const MIN_CONNECTIONS: usize = 16;
/// Refusals answered at once past the cap; past these a connection is closed unanswered.
const MAX_REFUSING: usize = 32;
/// How long a refused client may go on sending before its connection is closed.
const LINGER: Duration = Duration::from_millis(100);
/// How long a refusal or an idle connection being closed may take.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The answer past the connection cap.
const TOO_MANY_CONNECTIONS: &str = r#"{"error":{"code":"too_many_connections","message":"the server has too many open connections; retry"}}"#;

/// The route of the call status, long-polled with `?wait=`.
const CALL_ROUTE: &str = "/v1/calls/{call_id}";
/// Routes that probes and scrapers call every few seconds: logged at debug, not info.
const PROBE_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Counts and times every request by route pattern and status (`callpush_http_requests_total`,
/// `callpush_http_request_seconds`; long-polls, which last up to their wait by design, in
/// `callpush_http_long_poll_seconds` instead) and logs it: one line with the method, route,
/// path, status and duration, never headers, query or body; at info, warn for a 5xx, debug for
/// health checks and scrapes.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response<axum::body::Body> {
    let started = std::time::Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let long_poll = method == Method::GET && route == CALL_ROUTE && asks_to_wait(request.uri().query());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let labels = HttpLabels { route, status };
    metrics.http_requests.get_or_create(&labels).inc();
    if long_poll {
        metrics.long_poll_seconds.get_or_create(&StatusLabels { status }).observe(elapsed.as_secs_f64());
    } else {
        metrics.http_seconds.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }
    let route = labels.route.as_str();
    let ms = elapsed.as_millis() as u64;
    if status >= 500 {
        tracing::warn!(%method, route, %path, status, ms, long_poll, "request failed");
    } else if PROBE_ROUTES.contains(&route) {
        tracing::debug!(%method, route, %path, status, ms, "request");
    } else {
        tracing::info!(%method, route, %path, status, ms, long_poll, "request");
    }
    response
}

/// Whether a query string asks a long-poll to wait: `wait` is a number above 0 (the API reads
/// it the same way; anything else is answered at once).
fn asks_to_wait(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("wait="))
            .any(|wait| wait.parse::<u64>().is_ok_and(|s| s > 0))
    })
}

/// The limits of the HTTP edge (`[http]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time to receive a request's headers (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// Longest time to receive a request's body, from its headers.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Limits {
    /// The configured limits; the connection cap, unless set, derived from the open-file limit.
    pub fn from_config(config: &Config) -> Limits {
        let http = &config.http;
        Limits {
            header_read_timeout: Duration::from_millis(http.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(http.body_read_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            max_connections: http.max_connections.unwrap_or_else(|| {
                default_max_connections(
                    open_file_limit(),
                    config.database_connections,
                    config.ring.concurrency,
                )
            }),
        }
    }
}

/// The connection cap for an open-file limit: the limit less the database pool (two files a
/// connection: SQLite keeps its log open too), one connection per push in flight, and
/// [`FILE_RESERVE`]; at least [`MIN_CONNECTIONS`]. `None` (no limit) counts as 65536.
pub fn default_max_connections(
    open_files: Option<u64>,
    database_connections: u32,
    ring_concurrency: usize,
) -> usize {
    let reserve = FILE_RESERVE + 2 * u64::from(database_connections) + ring_concurrency as u64;
    let free = open_files.unwrap_or(65_536).saturating_sub(reserve);
    usize::try_from(free).unwrap_or(usize::MAX).max(MIN_CONNECTIONS)
}

/// The process's soft open-file limit; `None` when unlimited or unknown.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// No per-process file limit applies to sockets here.
#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then stops
/// accepting, lets every request in flight finish, and returns once all connections are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let app = TowerToHyperService::new(router);
    let open = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    // Every connection holds a receiver: the loop tells them to close through it, and knows
    // they all have when the last one is dropped.
    let (closing, closed) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        match open.clone().try_acquire_owned() {
            Ok(permit) => {
                let connection = Connection {
                    builder: builder.clone(),
                    app: app.clone(),
                    limits,
                    closing: closed.clone(),
                    _open: OpenConnection::new(permit, metrics.clone()),
                };
                tokio::spawn(connection.serve(stream));
            }
            Err(_) => {
                metrics.http_refused_connections.inc();
                // Past the refusals in progress too: close at once rather than queue.
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(refuse(stream, permit));
                }
            }
        }
    }
    drop(listener);
    drop(closed);
    let _ = closing.send(true);
    closing.closed().await;
}

/// An accept error: a connection that failed before it was accepted is skipped; anything else
/// (out of files or memory) is logged and retried shortly, never in a busy loop.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Answers a connection past the cap with `503 too_many_connections` and closes it, reading what
/// the client sends until it pauses for [`LINGER`]: a close with unread data would reset the
/// connection and could lose the answer.
async fn refuse(mut stream: TcpStream, _refusing: OwnedSemaphorePermit) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{TOO_MANY_CONNECTIONS}",
        TOO_MANY_CONNECTIONS.len()
    );
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while let Ok(read) = tokio::time::timeout(LINGER, stream.read(&mut sink)).await {
            if read? == 0 {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Counts an open connection and holds its place under the cap until dropped.
struct OpenConnection {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl OpenConnection {
    fn new(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> OpenConnection {
        metrics.http_connections.inc();
        OpenConnection { _permit: permit, metrics }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.http_connections.dec();
    }
}

/// One accepted connection and what it is served with.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: TowerToHyperService<Router>,
    limits: Limits,
    closing: watch::Receiver<bool>,
    _open: OpenConnection,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let Connection { builder, app, limits, mut closing, _open } = self;
        let (busy, activity) = watch::channel(0usize);
        let busy = Arc::new(busy);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = InFlight::start(busy.clone());
            let timed_out = Arc::new(AtomicBool::new(false));
            let (parts, body) = request.into_parts();
            let body = DeadlineBody::new(body, limits.body_read_timeout, timed_out.clone());
            let response = app.call(Request::from_parts(parts, body));
            async move {
                let response = response.await;
                drop(in_flight);
                if timed_out.load(Ordering::Relaxed) {
                    return Ok::<_, Infallible>(request_timeout());
                }
                response
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let idle = idle_for(activity, limits.idle_timeout);
        tokio::pin!(idle);
        let mut graceful = false;
        let mut idle_closing = false;
        let grace = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    return;
                }
                // The server stops: no new requests; those in flight finish.
                _ = closing.changed(), if !graceful => {
                    graceful = true;
                    connection.as_mut().graceful_shutdown();
                }
                // Idle: nothing in flight, so a client slow to take the close gets a second.
                () = &mut idle, if !idle_closing => {
                    graceful = true;
                    idle_closing = true;
                    connection.as_mut().graceful_shutdown();
                    grace.as_mut().reset(Instant::now() + CLOSE_GRACE);
                }
                () = &mut grace, if idle_closing => return,
            }
        }
    }
}

/// Resolves once no request has been in flight on the connection for `timeout`: any request
/// starting or ending, however short, starts the timeout again.
async fn idle_for(mut activity: watch::Receiver<usize>, timeout: Duration) {
    loop {
        if activity.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        match tokio::time::timeout(timeout, activity.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// A request in flight on its connection, until dropped (answered or abandoned).
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn start(busy: Arc<watch::Sender<usize>>) -> InFlight {
        busy.send_modify(|n| *n += 1);
        InFlight(busy)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// `408 request_timeout`, closing the connection: the body did not arrive in time.
fn request_timeout() -> Response<axum::body::Body> {
    let body = r#"{"error":{"code":"request_timeout","message":"the request body did not arrive in time"}}"#;
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// The body was still arriving at its deadline.
    #[error("the request body did not arrive in time")]
    TimedOut,
}

/// A request body that fails once its deadline passes while it is still being waited for; a
/// body read in time, or not read at all, is unaffected.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration, timed_out: Arc<AtomicBool>) -> DeadlineBody {
        DeadlineBody { inner, deadline: Instant::now() + timeout, timer: None, timed_out }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::Read)));
        }
        let deadline = this.deadline;
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyError::TimedOut)));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Long-polls held at once per user, at most `max` each: one identity cannot hold the server's
/// connections and memory with waits.
#[derive(Debug, Clone)]
pub struct WaitLimiter {
    max: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
    gauge: Gauge,
}

/// One long-poll held; released when dropped (answered, or abandoned by the client).
#[derive(Debug)]
pub struct Waiting {
    limiter: WaitLimiter,
    user: String,
}

impl WaitLimiter {
    /// At most `max` waits per user; `gauge` counts the waits held.
    pub fn new(max: usize, gauge: Gauge) -> WaitLimiter {
        WaitLimiter { max, held: Arc::default(), gauge }
    }

    /// A place for one more wait of `user`, or `None` when they hold `max` already.
    pub fn try_acquire(&self, user: &str) -> Option<Waiting> {
        let mut held = unpoisoned(self.held.lock());
        let count = held.entry(user.to_owned()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        self.gauge.inc();
        Some(Waiting { limiter: self.clone(), user: user.to_owned() })
    }

    /// Waits `user` holds now.
    pub fn held(&self, user: &str) -> usize {
        unpoisoned(self.held.lock()).get(user).copied().unwrap_or(0)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut held = unpoisoned(self.limiter.held.lock());
        if let Some(count) = held.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.user);
            }
            self.limiter.gauge.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_room_for_the_database_providers_and_files() {
        // The common 1024: 1024 - 128 - 2×16 - 256.
        assert_eq!(default_max_connections(Some(1024), 16, 256), 608);
        assert_eq!(default_max_connections(Some(256), 4, 4), 116);
        assert_eq!(default_max_connections(Some(100), 16, 256), MIN_CONNECTIONS);
        assert_eq!(default_max_connections(None, 16, 256), 65_536 - 416);
    }

    #[test]
    fn a_long_poll_is_a_wait_above_zero() {
        for (query, waits) in [
            (None, false),
            (Some(""), false),
            (Some("wait=0"), false),
            (Some("wait=abc"), false),
            (Some("nowait=5"), false),
            (Some("wait=5"), true),
            (Some("x=1&wait=60"), true),
        ] {
            assert_eq!(asks_to_wait(query), waits, "{query:?}");
        }
    }

    #[test]
    fn waits_are_bounded_per_user_and_released_on_drop() {
        let gauge = Gauge::default();
        let waits = WaitLimiter::new(2, gauge.clone());
        let first = waits.try_acquire("bob").unwrap();
        let second = waits.try_acquire("bob").unwrap();
        assert!(waits.try_acquire("bob").is_none(), "a third wait of bob");
        let carol = waits.try_acquire("carol");
        assert!(carol.is_some(), "another user is not affected");
        drop(first);
        let third = waits.try_acquire("bob");
        assert!(third.is_some(), "a released place is free again");
        assert_eq!(gauge.get(), 3);
        drop((second, third, carol));
        assert_eq!((waits.held("bob"), waits.held("carol"), gauge.get()), (0, 0, 0));
        assert!(waits.held.lock().unwrap().is_empty(), "nothing kept for users without waits");
    }

    #[tokio::test]
    async fn idle_means_nothing_in_flight_for_the_whole_timeout() {
        let (busy, activity) = watch::channel(0usize);
        let busy = Arc::new(busy);
        let request = InFlight::start(busy.clone());
        let idle = tokio::spawn(idle_for(activity, Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!idle.is_finished(), "a request in flight longer than the timeout is not idleness");
        drop(request);
        // Short requests, each starting the timeout again.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(InFlight::start(busy.clone()));
        }
        assert!(!idle.is_finished(), "short requests every 200 ms are not idleness");
        tokio::time::timeout(Duration::from_secs(10), idle).await.unwrap().unwrap();
        assert_eq!(*busy.borrow(), 0);
    }
}
