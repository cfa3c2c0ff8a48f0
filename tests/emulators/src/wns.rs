//! The WNS emulator: the two token endpoints (classic `login.live.com/accesstoken.srf` and
//! Entra ID `/{tenant}/oauth2/v2.0/token`) and the notification endpoint channel URIs point at,
//! on one loopback HTTP/1.1 port (plain, or [`WnsEmulator::start_with`] over TLS from a test CA
//! offering only `http/1.1` by ALPN: WNS speaks HTTP/1.1, docs/providers/wns.md "Endpoint"),
//! checking what docs/providers/wns.md says WNS checks.
//!
//! - Token endpoints: a form-encoded POST with `grant_type=client_credentials`, the flow's client
//!   id (the Package SID or the Entra application id), the client secret and the flow's scope
//!   (Entra: `https://wns.windows.com/.default`, with or without a trailing `/`), and for Entra
//!   the tenant in the path. They answer the flow's documented token body (Entra writes its
//!   numbers as strings) or an OAuth error with 400.
//! - Notifications: any other path with a `?token=` query is a channel. A POST needs a bearer
//!   token this emulator issued and that has not expired (401), a known channel format (404), a
//!   valid `X-WNS-Type` with its `Content-Type` (`application/octet-stream` for raw, `text/xml`
//!   otherwise), a `Content-Length` (no chunked body, no `Expect: 100-continue`), no
//!   Windows-Phone-only headers (`X-WNS-SuppressPopup`, `X-WNS-Group`, `X-WNS-Match`), no
//!   `X-WNS-Tag` on raw or longer than 16 characters, well-formed `X-WNS-TTL`,
//!   `X-WNS-Cache-Policy` and `X-WNS-RequestForStatus` (400), and a non-empty body of at most
//!   5000 bytes (400, 413). Other methods get 405. The answer is 200 with `X-WNS-Status`,
//!   `X-WNS-Msg-ID`, `X-WNS-Debug-Trace`, `MS-CV` (the request's, else a new one) and, when asked
//!   for, `X-WNS-DeviceConnectionStatus`.
//! - A raw notification goes to the device subscribed to the channel URI whose path and query
//!   the request carried (its host is this emulator's), as the app receives it. When no device
//!   is online WNS keeps no raw notification unless `X-WNS-Cache-Policy: cache`: the answer is
//!   then `X-WNS-Status: dropped` (with `cache`, `received`; the emulator cannot deliver it
//!   later). Toast, tile and badge notifications are checked and answered but not delivered.
//!
//! A device in another process connects to its channel over HTTP (`/_emulator/devices`, see
//! [`DeviceHub::routes`]).
//!
//! Every request is logged in [`WnsEmulator::faults`] (a connection closed by a fault is logged
//! with status 0). Notification requests consult its scripted faults; a fault for one channel
//! names the channel's path and query (`/w/?token=…`), as that is all a request to the
//! emulator carries of it. The token endpoints have their own faults,
//! [`WnsEmulator::token_faults`], so that scripting WNS does not also script the identity
//! provider (control routes `POST`/`DELETE /_emulator/token-faults`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use callpush_client::model::Platform;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::credentials::TestCredentials;
use super::faults::{arrival_us, Fault, FaultPlan, Received};
use super::hub::{DeviceHub, DevicePush};
use super::serve::{lock, serve_with, Hangup, Protocols};
use super::tls::TestCa;

/// The scope of classic tokens: Microsoft, "Windows Push Notification Services (WNS) overview",
/// authentication request (learn.microsoft.com/windows/apps/design/shell/tiles-and-notifications/windows-push-notification-services--wns--overview);
/// docs/providers/wns.md.
pub const LIVE_SCOPE: &str = "notify.windows.com";
/// The scope of Entra ID tokens for WNS: Microsoft, "Push notifications with the Windows App SDK"
/// (learn.microsoft.com/windows/apps/windows-app-sdk/notifications/push-notifications);
/// docs/providers/wns.md.
pub const ENTRA_SCOPE: &str = "https://wns.windows.com/.default";
/// The largest raw notification payload, bytes (413 above): Microsoft, "Push notification service
/// request and response headers" (learn.microsoft.com/windows/apps/design/shell/tiles-and-notifications/push-request-response-headers);
/// docs/providers/wns.md.
pub const MAX_RAW_PAYLOAD: usize = 5000;

/// The path and query of a channel URI (`/w/?token=…`), `/` when it has neither: the request
/// target a notification to the channel carries (its host is the emulator's), so it is how the
/// emulator recognises the channel. Channel URIs are opaque URLs to senders: Microsoft, "Windows
/// Push Notification Services (WNS) overview"; docs/providers/wns.md.
pub fn channel_path_and_query(channel: &str) -> String {
    let without_fragment = channel.split('#').next().unwrap_or_default();
    match without_fragment.parse::<Uri>().ok().and_then(|uri| uri.path_and_query().cloned()) {
        Some(target) if target.path().is_empty() => format!("/{target}"),
        Some(target) => target.to_string(),
        None => "/".to_owned(),
    }
}

/// The classic token endpoint's path (`https://login.live.com/accesstoken.srf`): Microsoft,
/// "Windows Push Notification Services (WNS) overview", authenticating your cloud service;
/// docs/providers/wns.md.
pub const LIVE_TOKEN_PATH: &str = "/accesstoken.srf";
/// The Entra ID token endpoint's path after the tenant (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`):
/// Microsoft identity platform, "OAuth 2.0 client credentials flow"; docs/providers/wns.md.
pub const ENTRA_TOKEN_PATH: &str = "/oauth2/v2.0/token";
/// The grant type both token endpoints take: RFC 6749 §4.4, as Microsoft, "Windows Push
/// Notification Services (WNS) overview" and "OAuth 2.0 client credentials flow" use it;
/// docs/providers/wns.md.
pub const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";
/// The `X-WNS-Type` of raw notifications: Microsoft, "Push notification service request and
/// response headers"; docs/providers/wns.md.
pub const RAW_TYPE: &str = "wns/raw";

/// The `error` of the token endpoints' refusals: RFC 6749 §5.2, as Microsoft, "Windows Push
/// Notification Services (WNS) overview" and "OAuth 2.0 client credentials flow" answer them;
/// docs/providers/wns.md.
pub mod token_error {
    /// A parameter is missing, repeated or malformed (RFC 6749 §5.2; docs/providers/wns.md).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The grant type is not `client_credentials` (RFC 6749 §5.2; docs/providers/wns.md).
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    /// Unknown client or wrong secret (RFC 6749 §5.2; docs/providers/wns.md).
    pub const INVALID_CLIENT: &str = "invalid_client";
    /// The scope is not the flow's WNS scope (RFC 6749 §5.2; docs/providers/wns.md).
    pub const INVALID_SCOPE: &str = "invalid_scope";
}

/// Classic tokens live a day (`expires_in: 86400`): Microsoft, "Windows Push Notification
/// Services (WNS) overview"; docs/providers/wns.md.
const LIVE_LIFETIME: u64 = 86_400;
/// Entra ID's sample says `"86399"` (Microsoft identity platform, "OAuth 2.0 client credentials
/// flow"; docs/providers/wns.md).
const ENTRA_LIFETIME: u64 = 86_399;
/// Most body bytes read from any request; more is answered 413 unread (the emulator's own bound,
/// above [`MAX_RAW_PAYLOAD`]; docs/providers/wns.md).
const MAX_BODY: usize = 1 << 20;
/// Longest `X-WNS-Tag`: Microsoft, "Push notification service request and response headers";
/// docs/providers/wns.md.
const MAX_TAG: usize = 16;

/// A local WNS with its token endpoints.
pub struct WnsEmulator {
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    faults: FaultPlan,
    shared: Arc<Shared>,
    serving: JoinHandle<()>,
}

impl Drop for WnsEmulator {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl WnsEmulator {
    /// Starts on a free loopback port, plain HTTP, accepting `credentials` and delivering to
    /// `hub`.
    pub async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        WnsEmulator::start_with(credentials, hub, None).await
    }

    /// Starts as [`WnsEmulator::start`] does, over TLS with `tls`'s certificate when given
    /// (ALPN `http/1.1` only, as WNS).
    pub async fn start_with(
        credentials: &TestCredentials,
        hub: DeviceHub,
        tls: Option<&TestCa>,
    ) -> std::io::Result<Self> {
        let faults = FaultPlan::default();
        let shared = Arc::new(Shared {
            credentials: credentials.clone(),
            hub,
            faults: faults.clone(),
            token_faults: FaultPlan::default(),
            tokens: Mutex::default(),
            lifetime: Mutex::default(),
        });
        let app = Router::new()
            .route(LIVE_TOKEN_PATH, any(live_token))
            .route(&format!("/{{tenant}}{ENTRA_TOKEN_PATH}"), any(entra_token))
            .route("/_emulator/token-faults", post(add_token_fault).delete(clear_token_faults))
            .fallback(notify)
            .with_state(shared.clone())
            .merge(faults.routes())
            .merge(shared.hub.routes(Platform::Wns));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let tls = tls.map(|ca| ca.acceptor(&[b"http/1.1"]));
        let serving = tokio::spawn(serve_with(listener, app, Protocols::Http1, tls, "WNS"));
        Ok(WnsEmulator { addr, scheme, faults, shared, serving })
    }

    /// The origin channel URIs are sent to (`endpoint_override`).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The classic (login.live.com) token endpoint.
    pub fn live_token_url(&self) -> String {
        format!("{}://{}{LIVE_TOKEN_PATH}", self.scheme, self.addr)
    }

    /// The Entra ID token endpoint of `tenant`.
    pub fn entra_token_url(&self, tenant: &str) -> String {
        format!("{}://{}/{tenant}{ENTRA_TOKEN_PATH}", self.scheme, self.addr)
    }

    /// Its scripted faults (notification requests) and the log of every request.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Scripted faults of the token endpoints (logged in [`WnsEmulator::faults`]).
    pub fn token_faults(&self) -> &FaultPlan {
        &self.shared.token_faults
    }

    /// Issues tokens valid `seconds` from now on (`None`: each flow's documented lifetime), to
    /// test expiry without waiting a day.
    pub fn set_token_lifetime(&self, seconds: Option<u64>) {
        *lock(&self.shared.lifetime) = seconds;
    }

    /// Forgets every issued token, as when WNS stops honouring them: the next notification
    /// with one is refused with 401.
    pub fn revoke_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }
}

/// What the handlers share.
struct Shared {
    credentials: TestCredentials,
    hub: DeviceHub,
    faults: FaultPlan,
    token_faults: FaultPlan,
    /// Issued access tokens and when each expires.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Lifetime of new tokens, seconds, if not the flow's.
    lifetime: Mutex<Option<u64>>,
}

/// One request as read, for the handlers and the log.
struct Request {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    /// Reads the body (up to [`MAX_BODY`]); `Err` when it is larger, with the body left empty.
    async fn read(method: Method, uri: &Uri, headers: HeaderMap, body: Body) -> Result<Request, Request> {
        let target = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(body) => Ok(Request { method, target, headers, body }),
            Err(_) => Err(Request { method, target, headers, body: Bytes::new() }),
        }
    }

    /// A header's value, trimmed (non-ASCII becomes U+FFFD).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
    }

    /// Logs the request with the status it got.
    fn log(&self, faults: &FaultPlan, status: u16) {
        faults.record(Received {
            method: self.method.to_string(),
            path: self.target.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
            status,
            received_at_us: arrival_us(),
        });
    }
}

/// Answers with `fault`: after its delay, its status, headers and body, or no answer at all.
async fn apply_fault(fault: Fault, request: &Request, faults: &FaultPlan, hangup: &Hangup) -> Response {
    tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    if fault.drop_connection {
        request.log(faults, 0);
        hangup.now();
        return std::future::pending().await;
    }
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match fault.body {
        Some(Value::String(text)) => text.into_response(),
        Some(json) => Json(json).into_response(),
        None => Body::empty().into_response(),
    };
    *response.status_mut() = status;
    for (name, value) in &fault.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
        {
            response.headers_mut().insert(name, value);
        }
    }
    request.log(faults, status.as_u16());
    response
}

// ---------------------------------------------------------------------------------------------
// Token endpoints

/// Which token endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Live,
    Entra,
}

/// `POST /accesstoken.srf`: the classic token endpoint.
async fn live_token(
    State(shared): State<Arc<Shared>>,
    Extension(hangup): Extension<Hangup>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    token_endpoint(&shared, &hangup, Flow::Live, method, &uri, headers, body).await
}

/// `POST /{tenant}/oauth2/v2.0/token`: the Entra ID token endpoint.
async fn entra_token(
    State(shared): State<Arc<Shared>>,
    Extension(hangup): Extension<Hangup>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    token_endpoint(&shared, &hangup, Flow::Entra, method, &uri, headers, body).await
}

/// Either token endpoint: logs the request, applies a token fault or answers it.
async fn token_endpoint(
    shared: &Shared,
    hangup: &Hangup,
    flow: Flow,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match Request::read(method, uri, headers, body).await {
        Ok(request) => request,
        Err(request) => {
            let response = oauth_error(
                flow,
                StatusCode::PAYLOAD_TOO_LARGE,
                token_error::INVALID_REQUEST,
                0,
                "Request too large.",
            );
            request.log(&shared.faults, 413);
            return response;
        }
    };
    if let Some(fault) = shared.token_faults.take(None) {
        return apply_fault(fault, &request, &shared.faults, hangup).await;
    }
    let response = issue_token(shared, flow, &request, uri.path()).unwrap_or_else(|refused| {
        oauth_error(flow, refused.status, refused.error, refused.code, &refused.description)
    });
    request.log(&shared.faults, response.status().as_u16());
    response
}

/// Why a token request is refused: an OAuth error with, for Entra ID, its `AADSTS` code.
struct OAuthRefusal {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

/// Checks a token request and issues a token, or says what is wrong as the identity provider
/// would.
fn issue_token(shared: &Shared, flow: Flow, request: &Request, path: &str) -> Result<Response, OAuthRefusal> {
    let c = &shared.credentials;
    let refuse = |status, error, code, description: &str| {
        Err(OAuthRefusal { status, error, code, description: description.to_owned() })
    };
    if request.method != Method::POST {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            token_error::INVALID_REQUEST,
            900_561,
            "The endpoint only accepts POST.",
        );
    }
    let media_type = request.header("content-type").and_then(|v| v.split(';').next()).unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return refuse(
            StatusCode::BAD_REQUEST,
            token_error::INVALID_REQUEST,
            900_144,
            "The request body must be application/x-www-form-urlencoded.",
        );
    }
    let Some(form) = parse_form(&request.body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            token_error::INVALID_REQUEST,
            900_144,
            "The request body is not a valid form.",
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str);
    if flow == Flow::Entra {
        let tenant = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if tenant != c.wns_tenant_id {
            return refuse(
                StatusCode::BAD_REQUEST,
                token_error::INVALID_REQUEST,
                90_002,
                &format!("AADSTS90002: Tenant '{}' not found.", tenant.chars().take(64).collect::<String>()),
            );
        }
    }
    if field("grant_type") != Some(CLIENT_CREDENTIALS_GRANT) {
        return refuse(
            StatusCode::BAD_REQUEST,
            token_error::UNSUPPORTED_GRANT_TYPE,
            70_003,
            "The grant_type must be client_credentials.",
        );
    }
    let expected_client = match flow {
        Flow::Live => &c.wns_package_sid,
        Flow::Entra => &c.wns_app_id,
    };
    if field("client_id") != Some(expected_client.as_str()) {
        let (error, description) = match flow {
            Flow::Live => (token_error::INVALID_CLIENT, "Invalid client id."),
            Flow::Entra => (
                "unauthorized_client",
                "AADSTS700016: Application with the identifier was not found in the directory.",
            ),
        };
        return refuse(StatusCode::BAD_REQUEST, error, 700_016, description);
    }
    if field("client_secret") != Some(c.wns_client_secret.as_str()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            token_error::INVALID_CLIENT,
            7_000_215,
            match flow {
                Flow::Live => "Invalid client secret.",
                Flow::Entra => "AADSTS7000215: Invalid client secret provided.",
            },
        );
    }
    let scope_ok = match (flow, field("scope")) {
        (Flow::Live, Some(scope)) => scope == LIVE_SCOPE,
        // The doc's raw-HTTP sample ends the scope with `/`, its C# sample does not.
        (Flow::Entra, Some(scope)) => scope.strip_suffix('/').unwrap_or(scope) == ENTRA_SCOPE,
        (_, None) => false,
    };
    if !scope_ok {
        return refuse(
            StatusCode::BAD_REQUEST,
            token_error::INVALID_SCOPE,
            70_011,
            match flow {
                Flow::Live => "The scope must be notify.windows.com.",
                Flow::Entra => "AADSTS70011: The provided value for scope is not valid.",
            },
        );
    }

    let lifetime = (*lock(&shared.lifetime)).unwrap_or(match flow {
        Flow::Live => LIVE_LIFETIME,
        Flow::Entra => ENTRA_LIFETIME,
    });
    let token = new_token(flow, c, lifetime);
    {
        let mut tokens = lock(&shared.tokens);
        let now = Instant::now();
        // Keep expired tokens an hour, to tell "expired" from "never issued".
        tokens.retain(|_, expires| now.saturating_duration_since(*expires) < Duration::from_secs(3600));
        tokens.insert(token.clone(), now + Duration::from_secs(lifetime));
    }
    let body = match flow {
        Flow::Live => json!({"access_token": token, "token_type": "bearer", "expires_in": lifetime}),
        Flow::Entra => {
            let now = callpush_server::time::now_secs();
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime.to_string(),
                "ext_expires_in": lifetime.to_string(),
                "expires_on": (now + lifetime as i64).to_string(),
                "not_before": now.to_string(),
                "access_token": token,
            })
        }
    };
    Ok(([(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], Json(body)).into_response())
}

/// A new access token: opaque base64 for the classic flow, JWT-shaped for Entra ID (senders
/// must treat both as opaque; the emulator recognises them by value).
fn new_token(flow: Flow, c: &TestCredentials, lifetime: u64) -> String {
    let random: Vec<u8> = (0..3).flat_map(|_| uuid::Uuid::new_v4().into_bytes()).collect();
    match flow {
        Flow::Live => STANDARD.encode(&random),
        Flow::Entra => {
            let now = callpush_server::time::now_secs();
            let header = json!({"typ": "JWT", "alg": "RS256", "kid": "emulator"});
            let claims = json!({
                "aud": "https://wns.windows.com/",
                "iss": format!("https://sts.windows.net/{}/", c.wns_tenant_id),
                "appid": c.wns_app_id,
                "tid": c.wns_tenant_id,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime as i64,
            });
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string()),
                URL_SAFE_NO_PAD.encode(&random)
            )
        }
    }
}

/// An OAuth error answer in the flow's shape (Entra ID adds its codes and trace ids).
fn oauth_error(flow: Flow, status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = match flow {
        Flow::Live => json!({"error": error, "error_description": description}),
        Flow::Entra => {
            let trace = uuid::Uuid::new_v4();
            let correlation = uuid::Uuid::new_v4();
            json!({
                "error": error,
                "error_description": format!("{description} Trace ID: {trace} Correlation ID: {correlation}"),
                "error_codes": [code],
                "timestamp": callpush_server::time::now_secs().to_string(),
                "trace_id": trace.to_string(),
                "correlation_id": correlation.to_string(),
            })
        }
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// An `application/x-www-form-urlencoded` body as fields; `None` when malformed or a field
/// repeats (OAuth forbids that).
fn parse_form(body: &[u8]) -> Option<HashMap<String, String>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if fields.insert(form_decode(name)?, form_decode(value)?).is_some() {
            return None;
        }
    }
    Some(fields)
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = [input.next()?, input.next()?];
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

/// `POST /_emulator/token-faults`: queues a token-endpoint fault.
async fn add_token_fault(State(shared): State<Arc<Shared>>, Json(fault): Json<Fault>) -> StatusCode {
    shared.token_faults.push(fault);
    StatusCode::NO_CONTENT
}

/// `DELETE /_emulator/token-faults`: drops every queued token-endpoint fault.
async fn clear_token_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.token_faults.clear();
    StatusCode::NO_CONTENT
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// Any other path: a notification to a channel. Logs the request, applies a fault or answers it.
async fn notify(
    State(shared): State<Arc<Shared>>,
    Extension(hangup): Extension<Hangup>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cv = HeaderValue::try_from(correlation_vector(&headers)).unwrap_or(HeaderValue::from_static("0.0"));
    let request = match Request::read(method, &uri, headers, body).await {
        Ok(request) => request,
        Err(request) => {
            let response = with_trace(
                refusal(StatusCode::PAYLOAD_TOO_LARGE, "The notification payload exceeds 5000 bytes."),
                &cv,
            );
            request.log(&shared.faults, 413);
            return response;
        }
    };
    if let Some(fault) = shared.faults.take(Some(&request.target)) {
        return apply_fault(fault, &request, &shared.faults, &hangup).await;
    }
    let response =
        accept(&shared, &request).unwrap_or_else(|refused| refusal(refused.status, &refused.description));
    let response = with_trace(response, &cv);
    request.log(&shared.faults, response.status().as_u16());
    response
}

/// Why a notification is refused: the status and its `X-WNS-Error-Description`.
struct Refusal {
    status: StatusCode,
    description: String,
}

/// Checks a notification request (docs/providers/wns.md) and delivers it, or refuses it.
fn accept(shared: &Shared, request: &Request) -> Result<Response, Refusal> {
    let refuse = |status, description: &str| Err(Refusal { status, description: description.to_owned() });
    let bad = |description: &str| refuse(StatusCode::BAD_REQUEST, description);
    if request.method != Method::POST {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "Invalid method; only POST is allowed.");
    }
    let bearer = request
        .header("authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(bearer) = bearer else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Missing or malformed Authorization header; expected Bearer.",
        );
    };
    match lock(&shared.tokens).get(bearer) {
        None => return refuse(StatusCode::UNAUTHORIZED, "Invalid token."),
        Some(expires) if *expires <= Instant::now() => {
            return refuse(StatusCode::UNAUTHORIZED, "Token expired.")
        }
        Some(_) => {}
    }
    if !is_channel(&request.target) {
        return refuse(StatusCode::NOT_FOUND, "The channel URI is not valid or is not recognized.");
    }
    if request.header("expect").is_some() {
        return bad("Expect: 100-continue is not supported.");
    }
    // Without Transfer-Encoding, a missing Content-Length means an empty body (refused below).
    if request.header("transfer-encoding").is_some() {
        return bad("Content-Length is required; chunked encoding is not supported.");
    }
    let kind = match request.header("x-wns-type") {
        None => return bad("The X-WNS-Type header is required."),
        Some(kind) => kind.to_ascii_lowercase(),
    };
    let expected_type = match kind.as_str() {
        RAW_TYPE => "application/octet-stream",
        "wns/toast" | "wns/tile" | "wns/badge" => "text/xml",
        _ => return bad("X-WNS-Type must be wns/toast, wns/tile, wns/badge or wns/raw."),
    };
    let media_type = request.header("content-type").and_then(|v| v.split(';').next()).unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(expected_type) {
        return bad(&format!("Content-Type must be {expected_type} for {kind}."));
    }
    for phone_only in ["x-wns-suppresspopup", "x-wns-group", "x-wns-match"] {
        if request.header(phone_only).is_some() {
            return bad(&format!("{phone_only} is supported only on Windows Phone channels."));
        }
    }
    if let Some(tag) = request.header("x-wns-tag") {
        if kind == RAW_TYPE || tag.chars().count() > MAX_TAG {
            return bad("X-WNS-Tag is for tile notifications only, at most 16 characters.");
        }
    }
    if request.header("x-wns-ttl").is_some_and(|ttl| ttl.parse::<u32>().is_err()) {
        return bad("X-WNS-TTL must be a whole number of seconds.");
    }
    let cache = match request.header("x-wns-cache-policy").map(str::to_ascii_lowercase).as_deref() {
        None | Some("no-cache") => false,
        Some("cache") => true,
        Some(_) => return bad("X-WNS-Cache-Policy must be cache or no-cache."),
    };
    let wants_status = match request.header("x-wns-requestforstatus").map(str::to_ascii_lowercase).as_deref()
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return bad("X-WNS-RequestForStatus must be true or false."),
    };
    if request.body.is_empty() {
        return bad("The notification payload must not be empty.");
    }
    if request.body.len() > MAX_RAW_PAYLOAD {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "The notification payload exceeds 5000 bytes.");
    }

    let connected = kind == RAW_TYPE && {
        let raw = String::from_utf8_lossy(&request.body).into_owned();
        shared.hub.deliver(Platform::Wns, &request.target, DevicePush::App { raw })
    };
    // Toasts, tiles and badges are cached for an offline device; raw only when asked.
    let status = if connected || cache || kind != RAW_TYPE { "received" } else { "dropped" };
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert("x-wns-status", HeaderValue::from_static(status));
    if let Ok(id) = HeaderValue::try_from(message_id()) {
        headers.insert("x-wns-msg-id", id);
    }
    if wants_status {
        let device = if connected { "connected" } else { "disconnected" };
        headers.insert("x-wns-deviceconnectionstatus", HeaderValue::from_static(device));
    }
    Ok(response)
}

/// A refusal: the status, `X-WNS-Error-Description` and no body.
fn refusal(status: StatusCode, description: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::try_from(description) {
        response.headers_mut().insert("x-wns-error-description", value);
    }
    response
}

/// Adds what WNS puts on every answer for support: `X-WNS-Debug-Trace` and `MS-CV`.
fn with_trace(mut response: Response, cv: &HeaderValue) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-wns-debug-trace", HeaderValue::from_static("EMULATOR-127.0.0.1"));
    headers.insert("ms-cv", cv.clone());
    response
}

/// Whether `target` looks like a channel: a query with a non-empty `token` of base64 and
/// percent-encoding characters.
fn is_channel(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else { return false };
    query.split('&').filter_map(|pair| pair.strip_prefix("token=")).any(|token| {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'+' | b'/' | b'=' | b'-' | b'_'))
    })
}

/// The request's `MS-CV`, else a new one.
fn correlation_vector(headers: &HeaderMap) -> String {
    headers
        .get("ms-cv")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|cv| !cv.is_empty() && cv.len() <= 128)
        .map_or_else(
            || format!("{}.0", STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..12])),
            str::to_owned,
        )
}

/// A message id: 16 hex digits.
fn message_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_like_urlencoded() {
        let form = parse_form(b"client_id=ms-app%3A%2F%2FS-1&scope=notify.windows.com&x=a+b").unwrap();
        assert_eq!(form["client_id"], "ms-app://S-1");
        assert_eq!(form["x"], "a b");
        assert!(parse_form(b"a=1&a=2").is_none(), "repeated fields");
        assert!(parse_form(b"a=%zz").is_none());
        assert!(parse_form(b"a=%4").is_none());
        assert!(parse_form(&[b'a', b'=', 0xff]).is_none());
    }

    #[test]
    fn a_channel_is_known_by_its_path_and_query() {
        let channel = "https://wns2-by3p.notify.windows.com/w/?token=AwYAAABa%2fx+y=";
        assert_eq!(channel_path_and_query(channel), "/w/?token=AwYAAABa%2fx+y=");
        assert_eq!(channel_path_and_query(&format!("{channel}#fragment")), "/w/?token=AwYAAABa%2fx+y=");
        assert_eq!(channel_path_and_query("https://host.example?token=x"), "/?token=x");
        assert_eq!(channel_path_and_query("https://host.example"), "/");
    }

    #[test]
    fn channels_need_a_token_query() {
        assert!(is_channel("/w/?token=AwYAAABa%2fx+y="));
        assert!(is_channel("/?a=b&token=x"));
        assert!(!is_channel("/w/"));
        assert!(!is_channel("/w/?token="));
        assert!(!is_channel("/w/?token=a<b"));
    }
}
