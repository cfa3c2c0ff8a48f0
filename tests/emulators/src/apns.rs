//! The APNs emulator (docs/providers/apns.md): HTTP/2 over TLS from the test CA, one listener for
//! production and one for sandbox, checking what APNs checks and answering as it answers.
//!
//! Checked, in this order: the method (`405 MethodNotAllowed`), the path `/3/device/<hex>`
//! (`404 BadPath`, `400 MissingDeviceToken`, `400 BadDeviceToken`), repeated `apns-*` or
//! `authorization` headers (`400 DuplicateHeaders`), the provider token — ES256 signed by
//! [`APNS_PUBLIC_KEY`](super::credentials::APNS_PUBLIC_KEY), `kid` and `iss` of the test
//! credentials, `iat` at most an hour old (`403 MissingProviderToken`, `InvalidProviderToken`,
//! `ExpiredProviderToken`) and changed at most once per 20 minutes on a connection
//! (`429 TooManyProviderTokenUpdates`) — then `apns-topic` against `apns-push-type`
//! (`400 MissingTopic`, `TopicDisallowed`, `BadTopic`, `InvalidPushType`), `apns-priority`,
//! `apns-expiration`, `apns-id`, `apns-collapse-id` (`400 BadPriority`, `BadExpirationDate`,
//! `BadMessageId`, `BadCollapseId`), the body (`400 PayloadEmpty` unless a JSON object,
//! `413 PayloadTooLarge` over 5120 bytes for VoIP and 4096 otherwise), and finally the token's
//! environment, kind and liveness as the tests and simulated devices set them
//! ([`ApnsEmulator::set_environment`]: `400 BadDeviceToken` in the other one;
//! [`ApnsEmulator::register_token`]: `400 DeviceTokenNotForTopic` for a VoIP push to an alert
//! token or any other push to a VoIP token; [`ApnsEmulator::unregister`]: `410 Unregistered`
//! with its `timestamp`). Tokens nobody described are accepted for everything.
//!
//! Accepted pushes answer `200` with an `apns-id` (sandbox: also `apns-unique-id`) and reach the
//! device: VoIP (and background) bodies as the app's `dictionaryPayload`, alerts as system
//! notifications. Scripted faults ([`FaultPlan`]) apply after the path is read; a fault of
//! status 0 only delays, ends or hangs the connection around normal handling.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use callpush_client::model::{ApnsEnvironment, Platform};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::credentials::{TestCredentials, APNS_PUBLIC_KEY};
use super::faults::{arrival_us, arrived, Fault, FaultPlan, Received};
use super::hub::{ApnsTokenKind, DeviceHub, DevicePush};
use super::memo::VerifiedToken;
use super::serve::lock;
use super::tls::TestCa;

/// The path prefix of a push, `POST /3/device/<device token>`: Apple, "Sending notification
/// requests to APNs" (developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns);
/// docs/providers/apns.md.
pub const DEVICE_PATH: &str = "/3/device";
/// The `apns-push-type` of VoIP pushes: Apple, "Sending notification requests to APNs";
/// docs/providers/apns.md.
pub const VOIP_PUSH_TYPE: &str = "voip";
/// The topic suffix of VoIP pushes (`<bundle id>.voip`): Apple, "Sending notification requests to
/// APNs"; docs/providers/apns.md.
pub const VOIP_TOPIC_SUFFIX: &str = ".voip";
/// The `reason` of every APNs error body: Apple, "Handling notification responses from APNs"
/// (developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns),
/// the table of error reasons; docs/providers/apns.md.
pub mod reason {
    /// 404: the request path is not `/3/device/<token>` (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_PATH: &str = "BadPath";
    /// 405: the method is not `POST` (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 400: the path names no device token (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const MISSING_DEVICE_TOKEN: &str = "MissingDeviceToken";
    /// 400: the token is malformed, or of the other environment (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_DEVICE_TOKEN: &str = "BadDeviceToken";
    /// 400: a header is repeated (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const DUPLICATE_HEADERS: &str = "DuplicateHeaders";
    /// 400: no `apns-topic` where one is required (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const MISSING_TOPIC: &str = "MissingTopic";
    /// 400: an `apns-push-type` APNs does not know (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const INVALID_PUSH_TYPE: &str = "InvalidPushType";
    /// 400: pushing to this topic is not allowed (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const TOPIC_DISALLOWED: &str = "TopicDisallowed";
    /// 400: the topic does not fit the push type (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_TOPIC: &str = "BadTopic";
    /// 400: `apns-priority` other than 10, 5 or 1 (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_PRIORITY: &str = "BadPriority";
    /// 400: `apns-expiration` is not a unix time (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_EXPIRATION_DATE: &str = "BadExpirationDate";
    /// 400: `apns-id` is not a canonical UUID (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_MESSAGE_ID: &str = "BadMessageId";
    /// 400: `apns-collapse-id` is over 64 bytes (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const BAD_COLLAPSE_ID: &str = "BadCollapseId";
    /// 400: the body is empty (or not a JSON object) (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const PAYLOAD_EMPTY: &str = "PayloadEmpty";
    /// 413: the body is over the push type's limit (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    /// 400: the token is not for this topic (a VoIP push to an alert token, or the reverse) (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const DEVICE_TOKEN_NOT_FOR_TOPIC: &str = "DeviceTokenNotForTopic";
    /// 410: the token is no longer active for the topic; the body carries `timestamp` (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const UNREGISTERED: &str = "Unregistered";
    /// 403: no provider token in `authorization` (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const MISSING_PROVIDER_TOKEN: &str = "MissingProviderToken";
    /// 403: the provider token's signature, `kid` or `iss` is wrong (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const INVALID_PROVIDER_TOKEN: &str = "InvalidProviderToken";
    /// 403: the provider token's `iat` is over an hour old (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const EXPIRED_PROVIDER_TOKEN: &str = "ExpiredProviderToken";
    /// 429: the provider token changed more than once in 20 minutes (Apple, "Handling notification responses from APNs"; docs/providers/apns.md).
    pub const TOO_MANY_PROVIDER_TOKEN_UPDATES: &str = "TooManyProviderTokenUpdates";
}

/// Streams a client may open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`), the
/// value APNs advertises: Apple, "Sending notification requests to APNs" (HTTP/2 and multiple
/// concurrent streams); docs/providers/apns.md.
pub const MAX_CONCURRENT_STREAMS: u32 = 1000;
/// Largest VoIP body, bytes: Apple, "Sending notification requests to APNs" (payload size
/// limits); docs/providers/apns.md.
pub const VOIP_PAYLOAD_LIMIT: usize = 5120;
/// Largest body of every other push type, bytes: Apple, "Sending notification requests to APNs";
/// docs/providers/apns.md.
pub const PAYLOAD_LIMIT: usize = 4096;
/// Oldest provider token accepted, seconds: Apple, "Establishing a token-based connection to
/// APNs" (refresh no more than once every 20 minutes, no less than once every 60);
/// docs/providers/apns.md.
const TOKEN_MAX_AGE: i64 = 3600;
/// Furthest in the future a provider token's `iat` may be (clock skew), seconds: the emulator's
/// own allowance (Apple documents none; docs/providers/apns.md).
const TOKEN_MAX_SKEW: i64 = 300;
/// Shortest time between two provider-token changes on one connection: Apple, "Establishing a
/// token-based connection to APNs"; docs/providers/apns.md.
const TOKEN_UPDATE_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// Most body bytes read; anything longer is too large whatever its push type (the emulator's own
/// bound, above every limit of docs/providers/apns.md).
const READ_LIMIT: usize = 64 * 1024;
/// Longest `apns-collapse-id`, bytes: Apple, "Sending notification requests to APNs";
/// docs/providers/apns.md.
const COLLAPSE_ID_LIMIT: usize = 64;
/// The push types APNs knows (`apns-push-type`): Apple, "Sending notification requests to APNs";
/// docs/providers/apns.md.
const PUSH_TYPES: [&str; 11] = [
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "widgets",
    "controls",
];

/// A local APNs: a production and a sandbox endpoint sharing faults, request log and tokens.
pub struct ApnsEmulator {
    production: SocketAddr,
    sandbox: SocketAddr,
    ca_pem: String,
    faults: FaultPlan,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl Drop for ApnsEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl ApnsEmulator {
    /// Starts both endpoints on free loopback ports, with a fresh test CA.
    pub async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        let ca = TestCa::new().map_err(std::io::Error::other)?;
        ApnsEmulator::start_with_ca(credentials, hub, &ca).await
    }

    /// Starts both endpoints as [`ApnsEmulator::start`] does, with the certificate of `ca` (the
    /// CA the other emulators use too, so that one `providers.ca_file` trusts them all).
    pub async fn start_with_ca(
        credentials: &TestCredentials,
        hub: DeviceHub,
        ca: &TestCa,
    ) -> std::io::Result<Self> {
        // HTTP/2 only, as APNs: a client that cannot speak it fails the handshake.
        let acceptor = ca.acceptor(&[b"h2"]);
        let key = DecodingKey::from_ec_pem(APNS_PUBLIC_KEY.as_bytes()).map_err(std::io::Error::other)?;
        let faults = FaultPlan::default();
        let shared = Arc::new(Shared {
            credentials: credentials.clone(),
            key,
            verified: VerifiedToken::default(),
            hub,
            faults: faults.clone(),
            tokens: Mutex::default(),
            production_connections: AtomicUsize::new(0),
            sandbox_connections: AtomicUsize::new(0),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone()).merge(faults.routes());
        let (shutdown, stopped) = watch::channel(false);
        let mut addrs = Vec::new();
        for environment in [ApnsEnvironment::Production, ApnsEnvironment::Sandbox] {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            addrs.push(listener.local_addr()?);
            let endpoint = Listening {
                environment,
                acceptor: acceptor.clone(),
                router: router.clone(),
                shared: shared.clone(),
                stopped: stopped.clone(),
            };
            tokio::spawn(endpoint.accept(listener));
        }
        Ok(ApnsEmulator {
            production: addrs[0],
            sandbox: addrs[1],
            ca_pem: ca.ca_pem.clone(),
            faults,
            shared,
            shutdown,
        })
    }

    /// The production endpoint (`https://127.0.0.1:<port>`).
    pub fn production_url(&self) -> String {
        format!("https://{}", self.production)
    }

    /// The sandbox endpoint (another port).
    pub fn sandbox_url(&self) -> String {
        format!("https://{}", self.sandbox)
    }

    /// The test CA senders must trust, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Its scripted faults and request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Makes `token` a token of `environment`: sent to the other endpoint it gets
    /// `400 BadDeviceToken`, as a sandbox token does at production. Tokens never named here
    /// are accepted by both.
    pub fn set_environment(&self, token: &str, environment: ApnsEnvironment) {
        self.shared.update_token(token, |t| t.environment = Some(environment));
    }

    /// Tells the emulator what `token` is for, as APNs knows from issuing it: a VoIP token then
    /// takes only VoIP pushes and an alert token only the others; the wrong kind gets
    /// `400 DeviceTokenNotForTopic`. Simulated iPhones register their tokens this way (through
    /// the hub) when they start.
    pub fn register_token(&self, token: &str, kind: ApnsTokenKind) {
        self.shared.hub.set_apns_token_kind(token, kind);
    }

    /// Makes `token` dead since `since_ms` (unix ms), as when the app was uninstalled: pushes
    /// to it get `410 Unregistered` with that `timestamp`.
    pub fn unregister(&self, token: &str, since_ms: i64) {
        self.shared.update_token(token, |t| t.unregistered_since = Some(since_ms));
    }

    /// How many TCP connections `environment`'s endpoint has accepted: a sender keeping one
    /// long-lived connection makes this 1.
    pub fn connections(&self, environment: ApnsEnvironment) -> usize {
        self.shared.connections(environment).load(Ordering::SeqCst)
    }
}

/// What both endpoints share.
struct Shared {
    credentials: TestCredentials,
    key: DecodingKey,
    verified: VerifiedToken<Claims>,
    hub: DeviceHub,
    faults: FaultPlan,
    tokens: Mutex<HashMap<String, DeviceToken>>,
    production_connections: AtomicUsize,
    sandbox_connections: AtomicUsize,
}

/// What the tests told the emulator about a device token.
#[derive(Debug, Default, Clone, Copy)]
struct DeviceToken {
    environment: Option<ApnsEnvironment>,
    unregistered_since: Option<i64>,
}

impl Shared {
    /// What the tests said about `token` (hex tokens are case-insensitive).
    fn token_state(&self, token: &str) -> DeviceToken {
        let tokens = lock(&self.tokens);
        tokens.get(&token.to_ascii_lowercase()).copied().unwrap_or_default()
    }

    fn update_token(&self, token: &str, update: impl FnOnce(&mut DeviceToken)) {
        let mut tokens = lock(&self.tokens);
        update(tokens.entry(token.to_ascii_lowercase()).or_default());
    }

    fn connections(&self, environment: ApnsEnvironment) -> &AtomicUsize {
        match environment {
            ApnsEnvironment::Production => &self.production_connections,
            ApnsEnvironment::Sandbox => &self.sandbox_connections,
        }
    }
}

/// One endpoint's accept loop.
struct Listening {
    environment: ApnsEnvironment,
    acceptor: TlsAcceptor,
    router: Router,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
}

impl Listening {
    async fn accept(self, listener: TcpListener) {
        let mut stopped = self.stopped.clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.changed() => return,
            };
            match accepted {
                Ok((tcp, _)) => {
                    self.shared.connections(self.environment).fetch_add(1, Ordering::SeqCst);
                    let conn = ConnectionTask {
                        environment: self.environment,
                        acceptor: self.acceptor.clone(),
                        router: self.router.clone(),
                        stopped: self.stopped.clone(),
                    };
                    tokio::spawn(conn.serve(tcp));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// What a request handler asks of its connection.
enum Command {
    /// Send GOAWAY and close once the streams in flight are answered.
    GoAway,
    /// Close the connection now, answering nothing.
    Drop,
    /// Stop serving the connection, leaving it open: it hangs.
    Hang,
}

/// One client connection: its endpoint, its provider-token history and its control channel.
struct Connection {
    environment: ApnsEnvironment,
    commands: mpsc::UnboundedSender<Command>,
    tokens: Mutex<TokenHistory>,
}

/// The provider tokens seen on one connection.
#[derive(Default)]
struct TokenHistory {
    /// The valid token in use.
    current: Option<String>,
    /// When the token in use was last changed.
    changed_at: Option<Instant>,
}

impl TokenHistory {
    /// Notes a valid `token`; `false` if it changes the connection's token within 20 minutes
    /// of the previous change (the first token of a connection is not a change).
    fn observe(&mut self, token: &str, now: Instant) -> bool {
        match &self.current {
            None => {
                self.current = Some(token.to_owned());
                true
            }
            Some(current) if current == token => true,
            Some(_) => {
                if self.changed_at.is_some_and(|at| now.duration_since(at) < TOKEN_UPDATE_INTERVAL) {
                    return false;
                }
                self.current = Some(token.to_owned());
                self.changed_at = Some(now);
                true
            }
        }
    }
}

/// Serves one accepted TCP connection.
struct ConnectionTask {
    environment: ApnsEnvironment,
    acceptor: TlsAcceptor,
    router: Router,
    stopped: watch::Receiver<bool>,
}

impl ConnectionTask {
    async fn serve(mut self, tcp: TcpStream) {
        let Ok(tls) = self.acceptor.accept(tcp).await else { return };
        let (commands, mut commanded) = mpsc::unbounded_channel();
        let connection =
            Arc::new(Connection { environment: self.environment, commands, tokens: Mutex::default() });
        let service = TowerToHyperService::new(self.router.layer(Extension(connection)));
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            arrived(hyper::service::Service::call(&service, request))
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http2_only();
        builder.http2().max_concurrent_streams(MAX_CONCURRENT_STREAMS);
        let serving = builder.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(serving);
        loop {
            tokio::select! {
                _ = serving.as_mut() => return,
                command = commanded.recv() => match command {
                    Some(Command::GoAway) => serving.as_mut().graceful_shutdown(),
                    // Dropping the connection closes the socket with streams unanswered.
                    Some(Command::Drop) | None => return,
                    // Never polled again, the connection reads, writes and answers nothing.
                    Some(Command::Hang) => {
                        let _ = self.stopped.changed().await;
                        return;
                    }
                },
                _ = self.stopped.changed() => return,
            }
        }
    }
}

/// A provider-token claim set.
#[derive(Clone, Deserialize)]
struct Claims {
    iss: String,
    iat: i64,
}

/// A refusal: status and APNs reason.
type Refusal = (StatusCode, &'static str);

/// What a valid request asks for.
struct Accepted {
    push_type: String,
    collapse_id: Option<String>,
    /// The body as sent: what the app's `dictionaryPayload` holds.
    raw: String,
    body: Value,
}

/// Every APNs request: checks, scripted faults, answer, log, delivery.
async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(connection): Extension<Arc<Connection>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, READ_LIMIT).await;
    let apns_id = parts
        .headers
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_canonical_uuid(v))
        .map_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string(), |v| v.to_ascii_lowercase());
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
        headers: header_map(&parts.headers),
        body: body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
        status: 0,
        received_at_us: arrival_us(),
    };
    let token = match device_token(&parts.method, parts.uri.path()) {
        Ok(token) => token.to_owned(),
        Err(refusal) => return shared.answer(received, refuse(refusal, &apns_id)),
    };
    let mut goaway = false;
    if let Some(fault) = shared.faults.take(Some(&token)) {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.drop_connection || fault.hang_connection {
            shared.faults.record(received);
            let command = if fault.drop_connection { Command::Drop } else { Command::Hang };
            let _ = connection.commands.send(command);
            // Nothing is ever answered: the connection ends under this handler, or hangs.
            return std::future::pending().await;
        }
        if fault.status != 0 {
            if fault.goaway {
                let _ = connection.commands.send(Command::GoAway);
            }
            return shared.answer(received, fault_response(&fault, &apns_id));
        }
        goaway = fault.goaway;
    }
    let checked = match body {
        Err(_) => Err((StatusCode::PAYLOAD_TOO_LARGE, reason::PAYLOAD_TOO_LARGE)),
        Ok(body) => shared.check(&connection, &parts.headers, &body),
    };
    let response = match checked {
        Err(refusal) => refuse(refusal, &apns_id),
        Ok(accepted) => match shared.dead_token(&connection, &token, &accepted.push_type) {
            Some(body) => refusal_with_body(body, &apns_id),
            None => {
                shared.deliver(&token, accepted);
                success(connection.environment, &apns_id)
            }
        },
    };
    if goaway {
        let _ = connection.commands.send(Command::GoAway);
    }
    shared.answer(received, response)
}

impl Shared {
    /// Logs the request with its answer and returns the answer.
    fn answer(&self, mut received: Received, response: Response) -> Response {
        received.status = response.status().as_u16();
        self.faults.record(received);
        response
    }

    /// Why a well-formed push of `push_type` to `token` still fails on this endpoint, as the
    /// tests set it: a token of the other environment, a token of the other kind (VoIP or
    /// alert), or a token that stopped working.
    fn dead_token(
        &self,
        connection: &Connection,
        token: &str,
        push_type: &str,
    ) -> Option<(StatusCode, Value)> {
        let state = self.token_state(token);
        if state.environment.is_some_and(|env| env != connection.environment) {
            return Some((StatusCode::BAD_REQUEST, json!({"reason": reason::BAD_DEVICE_TOKEN})));
        }
        let wrong_kind = match self.hub.apns_token_kind(token) {
            Some(ApnsTokenKind::Voip) => push_type != VOIP_PUSH_TYPE,
            Some(ApnsTokenKind::Alert) => push_type == VOIP_PUSH_TYPE,
            None => false,
        };
        if wrong_kind {
            return Some((StatusCode::BAD_REQUEST, json!({"reason": reason::DEVICE_TOKEN_NOT_FOR_TOPIC})));
        }
        let since = state.unregistered_since?;
        Some((StatusCode::GONE, json!({"reason": reason::UNREGISTERED, "timestamp": since})))
    }

    /// Every check APNs makes of a push, in order.
    fn check(&self, connection: &Connection, headers: &HeaderMap, body: &Bytes) -> Result<Accepted, Refusal> {
        let repeated = headers
            .keys()
            .filter(|name| name.as_str().starts_with("apns-") || *name == header::AUTHORIZATION)
            .any(|name| headers.get_all(name).iter().count() > 1);
        if repeated {
            return Err((StatusCode::BAD_REQUEST, reason::DUPLICATE_HEADERS));
        }
        let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").trim());
        self.check_provider_token(connection, text("authorization"))?;

        let topic = text("apns-topic")
            .filter(|t| !t.is_empty())
            .ok_or((StatusCode::BAD_REQUEST, reason::MISSING_TOPIC))?;
        let bundle = self.credentials.apns_bundle_id.as_str();
        let push_type = match text("apns-push-type") {
            Some(push_type) if PUSH_TYPES.contains(&push_type) => push_type.to_owned(),
            Some(_) => return Err((StatusCode::BAD_REQUEST, reason::INVALID_PUSH_TYPE)),
            None if topic.ends_with(VOIP_TOPIC_SUFFIX) => VOIP_PUSH_TYPE.to_owned(),
            None => "alert".to_owned(),
        };
        let Some(suffix) = topic.strip_prefix(bundle) else {
            return Err((StatusCode::BAD_REQUEST, reason::TOPIC_DISALLOWED));
        };
        let expected = match push_type.as_str() {
            "voip" => ".voip",
            "complication" => ".complication",
            "fileprovider" => ".pushkit.fileprovider",
            "location" => ".location-query",
            "liveactivity" => ".push-type.liveactivity",
            "pushtotalk" => ".voip-ptt",
            "widgets" => ".push-type.widgets",
            "controls" => ".push-type.controls",
            _ => "",
        };
        if suffix != expected {
            let known = [".voip", ".complication", ".pushkit.fileprovider", ".location-query", ".voip-ptt"];
            let ours = suffix.is_empty() || known.contains(&suffix) || suffix.starts_with(".push-type.");
            return Err((
                StatusCode::BAD_REQUEST,
                if ours { reason::BAD_TOPIC } else { reason::TOPIC_DISALLOWED },
            ));
        }
        if text("apns-priority").is_some_and(|p| !matches!(p, "10" | "5" | "1")) {
            return Err((StatusCode::BAD_REQUEST, reason::BAD_PRIORITY));
        }
        if text("apns-expiration").is_some_and(|e| e.parse::<u64>().is_err()) {
            return Err((StatusCode::BAD_REQUEST, reason::BAD_EXPIRATION_DATE));
        }
        if text("apns-id").is_some_and(|id| !is_canonical_uuid(id)) {
            return Err((StatusCode::BAD_REQUEST, reason::BAD_MESSAGE_ID));
        }
        let collapse_id = headers.get("apns-collapse-id").map(|v| v.as_bytes());
        if collapse_id.is_some_and(|id| id.len() > COLLAPSE_ID_LIMIT) {
            return Err((StatusCode::BAD_REQUEST, reason::BAD_COLLAPSE_ID));
        }
        if body.is_empty() {
            return Err((StatusCode::BAD_REQUEST, reason::PAYLOAD_EMPTY));
        }
        let limit = if push_type == VOIP_PUSH_TYPE { VOIP_PAYLOAD_LIMIT } else { PAYLOAD_LIMIT };
        if body.len() > limit {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, reason::PAYLOAD_TOO_LARGE));
        }
        let raw =
            String::from_utf8(body.to_vec()).map_err(|_| (StatusCode::BAD_REQUEST, reason::PAYLOAD_EMPTY))?;
        let body: Value = match serde_json::from_str(&raw) {
            Ok(body @ Value::Object(_)) => body,
            _ => return Err((StatusCode::BAD_REQUEST, reason::PAYLOAD_EMPTY)),
        };
        Ok(Accepted {
            push_type,
            collapse_id: collapse_id.map(|id| String::from_utf8_lossy(id).into_owned()),
            raw,
            body,
        })
    }

    /// The provider token: present, ES256 by the test key, our `kid` and `iss`, fresh, and
    /// not changed too often on this connection.
    fn check_provider_token(
        &self,
        connection: &Connection,
        authorization: Option<&str>,
    ) -> Result<(), Refusal> {
        const INVALID: Refusal = (StatusCode::FORBIDDEN, reason::INVALID_PROVIDER_TOKEN);
        let authorization = authorization.filter(|a| !a.is_empty());
        let Some(authorization) = authorization else {
            return Err((StatusCode::FORBIDDEN, reason::MISSING_PROVIDER_TOKEN));
        };
        let jwt = match authorization.split_once(' ') {
            Some((scheme, jwt)) if scheme.eq_ignore_ascii_case("bearer") && !jwt.trim().is_empty() => {
                jwt.trim()
            }
            _ => return Err((StatusCode::FORBIDDEN, reason::MISSING_PROVIDER_TOKEN)),
        };
        let claims = self.verified.claims(jwt, || {
            let header = jsonwebtoken::decode_header(jwt).map_err(|_| INVALID)?;
            if header.alg != Algorithm::ES256
                || header.kid.as_deref() != Some(self.credentials.apns_key_id.as_str())
            {
                return Err(INVALID);
            }
            let mut validation = Validation::new(Algorithm::ES256);
            validation.set_required_spec_claims::<&str>(&[]);
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.validate_aud = false;
            let claims =
                jsonwebtoken::decode::<Claims>(jwt, &self.key, &validation).map_err(|_| INVALID)?.claims;
            if claims.iss != self.credentials.apns_team_id {
                return Err(INVALID);
            }
            Ok(claims)
        })?;
        let now = unix_seconds();
        if claims.iat > now + TOKEN_MAX_SKEW {
            return Err(INVALID);
        }
        if now - claims.iat > TOKEN_MAX_AGE {
            return Err((StatusCode::FORBIDDEN, reason::EXPIRED_PROVIDER_TOKEN));
        }
        let mut history = lock(&connection.tokens);
        if !history.observe(jwt, Instant::now()) {
            return Err((StatusCode::TOO_MANY_REQUESTS, reason::TOO_MANY_PROVIDER_TOKEN_UPDATES));
        }
        Ok(())
    }

    /// Hands an accepted push to the device, as iOS would: VoIP and background pushes to the
    /// app, alerts to the notification centre. A device that is offline just misses it.
    fn deliver(&self, token: &str, accepted: Accepted) {
        let push = match accepted.push_type.as_str() {
            "voip" | "background" => DevicePush::App { raw: accepted.raw },
            "alert" => {
                let aps = &accepted.body["aps"];
                let (title, body) = match &aps["alert"] {
                    Value::String(body) => (String::new(), body.clone()),
                    Value::Object(alert) => {
                        let field =
                            |name: &str| alert.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
                        (field("title"), field("body"))
                    }
                    _ => return,
                };
                let category = aps["category"].as_str().map(str::to_owned);
                DevicePush::Notification { title, body, id: accepted.collapse_id, category }
            }
            _ => return,
        };
        self.hub.deliver(Platform::Apns, token, push);
    }
}

/// The device token of a `POST /3/device/<hex>`, or APNs' refusal.
fn device_token<'a>(method: &Method, path: &'a str) -> Result<&'a str, Refusal> {
    let Some(token) = path.strip_prefix(DEVICE_PATH).and_then(|rest| {
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix('/')
        }
    }) else {
        return Err((StatusCode::NOT_FOUND, reason::BAD_PATH));
    };
    if token.contains('/') {
        return Err((StatusCode::NOT_FOUND, reason::BAD_PATH));
    }
    if method != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, reason::METHOD_NOT_ALLOWED));
    }
    if token.is_empty() {
        return Err((StatusCode::BAD_REQUEST, reason::MISSING_DEVICE_TOKEN));
    }
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) || token.len() % 2 != 0 {
        return Err((StatusCode::BAD_REQUEST, reason::BAD_DEVICE_TOKEN));
    }
    Ok(token)
}

/// `8-4-4-4-12` hex digits.
fn is_canonical_uuid(id: &str) -> bool {
    id.len() == 36
        && id
            .char_indices()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn unix_seconds() -> i64 {
    callpush_server::time::now_secs()
}

/// Request headers for the log: lowercased names, repeated values joined.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_owned()).and_modify(|v| *v = format!("{v}, {value}")).or_insert(value);
    }
    map
}

fn reason_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// An error answer: `{"reason"}` and the `apns-id`.
fn refuse((status, reason): Refusal, apns_id: &str) -> Response {
    refusal_with_body((status, json!({"reason": reason})), apns_id)
}

/// An error answer with its whole JSON body (`410`: with the `timestamp`).
fn refusal_with_body((status, body): (StatusCode, Value), apns_id: &str) -> Response {
    let mut response = reason_response(status, body);
    if let Ok(id) = HeaderValue::from_str(apns_id) {
        response.headers_mut().insert("apns-id", id);
    }
    response
}

/// Success: empty body, the `apns-id`, and in the sandbox an `apns-unique-id`.
fn success(environment: ApnsEnvironment, apns_id: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Ok(id) = HeaderValue::from_str(apns_id) {
        response.headers_mut().insert("apns-id", id);
    }
    if environment == ApnsEnvironment::Sandbox {
        if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().hyphenated().to_string()) {
            response.headers_mut().insert("apns-unique-id", id);
        }
    }
    response
}

/// A scripted answer: its status, body and headers, plus the `apns-id` APNs always sends.
fn fault_response(fault: &Fault, apns_id: &str) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &fault.body {
        None => Response::new(Body::empty()),
        Some(Value::String(text)) => Response::new(Body::from(text.clone())),
        Some(json) => reason_response(status, json.clone()),
    };
    *response.status_mut() = status;
    if let Ok(id) = HeaderValue::from_str(apns_id) {
        response.headers_mut().insert("apns-id", id);
    }
    for (name, value) in &fault.headers {
        if let (Ok(name), Ok(value)) =
            (header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_are_checked_like_apns() {
        assert_eq!(device_token(&Method::POST, "/3/device/ab01"), Ok("ab01"));
        assert_eq!(
            device_token(&Method::POST, "/3/devices/ab01"),
            Err((StatusCode::NOT_FOUND, reason::BAD_PATH))
        );
        assert_eq!(
            device_token(&Method::POST, "/3/device/ab/01"),
            Err((StatusCode::NOT_FOUND, reason::BAD_PATH))
        );
        assert_eq!(
            device_token(&Method::GET, "/3/device/ab01"),
            Err((StatusCode::METHOD_NOT_ALLOWED, reason::METHOD_NOT_ALLOWED))
        );
        assert_eq!(
            device_token(&Method::POST, "/3/device/"),
            Err((StatusCode::BAD_REQUEST, reason::MISSING_DEVICE_TOKEN))
        );
        assert_eq!(
            device_token(&Method::POST, "/3/device/xyz0"),
            Err((StatusCode::BAD_REQUEST, reason::BAD_DEVICE_TOKEN))
        );
    }

    #[test]
    fn uuids_must_be_canonical() {
        assert!(is_canonical_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(is_canonical_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
        assert!(!is_canonical_uuid("0f8fad5bd9cb469fa16570867728950e"));
        assert!(!is_canonical_uuid("0f8fad5b-d9cb-469f-a165-70867728950é"));
    }

    #[test]
    fn a_connection_may_change_its_token_once_per_twenty_minutes() {
        let mut history = TokenHistory::default();
        let start = Instant::now();
        assert!(history.observe("a", start));
        assert!(history.observe("a", start));
        assert!(history.observe("b", start), "the first change is fine");
        assert!(!history.observe("c", start + Duration::from_secs(60)), "a second within 20 minutes is not");
        assert!(history.observe("b", start + Duration::from_secs(60)), "the accepted token still works");
        assert!(history.observe("c", start + TOKEN_UPDATE_INTERVAL));
    }
}
