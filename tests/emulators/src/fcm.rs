//! The FCM HTTP v1 emulator (docs/providers/fcm.md): Google's OAuth token endpoint for service
//! accounts and `POST /v1/projects/{project_id}/messages:send`, on one loopback port.
//!
//! The token endpoint verifies the RS256 assertion with [`FCM_PUBLIC_KEY`] and its claims
//! (`iss`, `scope`, `aud`, `iat`/`exp`) and issues random access tokens that expire. The send
//! endpoint checks the bearer token, the project, the body schema (one target, string data,
//! priority, TTL), reserved data keys, the 4096-byte data limit and the token format, and
//! answers with FCM's `google.rpc.Status` errors (`FcmError` / `BadRequest` details) or
//! `{"name": "projects/{p}/messages/{id}"}`. Accepted messages reach the subscribed device as
//! the data map the app's `RemoteMessage` holds, with the keys FCM adds.
//!
//! Every request is logged in [`FcmEmulator::faults`] with the status it got (0: the connection
//! was dropped); scripted faults replace the answer to sends (matched by the message's token)
//! and, separately, to token requests ([`FcmEmulator::token_faults`]).
//!
//! Plain HTTP (HTTP/1.1, or HTTP/2 with prior knowledge) by default; [`FcmEmulator::start_with`]
//! serves TLS from a test CA instead, offering `h2` and `http/1.1` by ALPN as
//! `fcm.googleapis.com` does (FCM HTTP v1 speaks HTTP/2).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use callpush_client::model::Platform;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use super::credentials::{TestCredentials, FCM_PUBLIC_KEY};
use super::faults::{arrival_us, Fault, FaultPlan, Received};
use super::hub::{DeviceHub, DevicePush};
use super::serve::{lock, serve_with, Hangup, Protocols};
use super::tls::TestCa;

/// The OAuth scope an access token needs to send FCM messages: Google, "Authorize send
/// requests" (firebase.google.com/docs/cloud-messaging/auth-server); docs/providers/fcm.md.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The grant type of the service-account token request, a signed assertion traded for an access
/// token: RFC 7523 §2.1 and Google, "Using OAuth 2.0 for Server to Server Applications"
/// (developers.google.com/identity/protocols/oauth2/service-account); docs/providers/fcm.md.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `INVALID_ARGUMENT` message FCM answers a malformed registration token with: FCM HTTP v1
/// `ErrorCode` reference (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode);
/// docs/providers/fcm.md.
pub const INVALID_TOKEN_MESSAGE: &str = "The registration token is not a valid FCM registration token";
/// The send path, `POST /v1/projects/{project_id}/messages:send`: FCM HTTP v1 reference,
/// `projects.messages.send` (firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send);
/// docs/providers/fcm.md.
pub const SEND_PATH_PREFIX: &str = "/v1/projects/";
/// The end of the send path after the project id; see [`SEND_PATH_PREFIX`] (FCM HTTP v1
/// reference, `projects.messages.send`; docs/providers/fcm.md).
pub const SEND_PATH_SUFFIX: &str = "/messages:send";
/// The token endpoint's path (`https://oauth2.googleapis.com/token`): Google, "Using OAuth 2.0 for
/// Server to Server Applications"; docs/providers/fcm.md.
pub const TOKEN_PATH: &str = "/token";

/// The `errorCode` of FCM's `FcmError` detail: FCM HTTP v1 `ErrorCode` reference
/// (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode); docs/providers/fcm.md.
pub mod error_code {
    /// The request is invalid, a malformed registration token included (FCM `ErrorCode`
    /// reference; docs/providers/fcm.md).
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    /// The registration token is no longer valid: the app was uninstalled or the token expired
    /// (FCM `ErrorCode` reference; docs/providers/fcm.md).
    pub const UNREGISTERED: &str = "UNREGISTERED";
    /// The token belongs to another sender (FCM `ErrorCode` reference; docs/providers/fcm.md).
    pub const SENDER_ID_MISMATCH: &str = "SENDER_ID_MISMATCH";
}

/// The `error` of the token endpoint's refusals: RFC 6749 §5.2 as Google's token endpoint answers
/// them ("Using OAuth 2.0 for Server to Server Applications"); docs/providers/fcm.md.
pub mod token_error {
    /// The `grant_type` is not the JWT bearer grant (RFC 6749 §5.2; docs/providers/fcm.md).
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    /// The assertion is malformed, badly signed, expired or from an unknown account (RFC 6749
    /// §5.2, RFC 7523 §3.1; docs/providers/fcm.md).
    pub const INVALID_GRANT: &str = "invalid_grant";
    /// The assertion's scope is not one FCM accepts (RFC 6749 §5.2; docs/providers/fcm.md).
    pub const INVALID_SCOPE: &str = "invalid_scope";
}

/// The sender id (Firebase project number) devices see as `from`.
pub const SENDER_ID: &str = "1000000000001";
/// How long issued access tokens live unless [`FcmEmulator::set_token_lifetime`] says otherwise:
/// what Google answers (`expires_in` 3599), "Using OAuth 2.0 for Server to Server Applications";
/// docs/providers/fcm.md.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
/// The broad scope Google also accepts for FCM (the Admin SDKs ask for it): Google, "Authorize
/// send requests" (firebase.google.com/docs/cloud-messaging/auth-server); docs/providers/fcm.md.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Largest data map, keys plus values, bytes: FCM, "About FCM messages" (payload limit, 4096
/// bytes); docs/providers/fcm.md.
pub const MAX_DATA_BYTES: usize = 4096;
/// Longest `android.ttl`, seconds (4 weeks): FCM, "Setting the lifespan of a message";
/// docs/providers/fcm.md.
pub const MAX_TTL_SECONDS: u64 = 2_419_200;
/// Shortest registration token accepted. Real tokens are about 160 characters; this bound is
/// lower so that `device::token_for(Platform::Fcm, _)` (74 characters) stays valid.
pub const MIN_TOKEN_LEN: usize = 64;
/// Longest registration token accepted (the emulator's own bound: FCM tokens are opaque;
/// docs/providers/fcm.md).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Largest request body read; larger ones are refused unread (the emulator's own bound, above
/// FCM's message limit; docs/providers/fcm.md).
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Google's token endpoint, the audience Google's own client libraries always put in the
/// assertion whatever the key file's `token_uri` says; the emulator accepts it as Google does
/// ("Using OAuth 2.0 for Server to Server Applications"; docs/providers/fcm.md).
pub const GOOGLE_TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// How far in the future an assertion's `iat` may be (clock skew; the emulator's own allowance,
/// docs/providers/fcm.md).
const CLOCK_SKEW: i64 = 60;
/// The message Google gives for an out-of-range `iat`/`exp` ("Using OAuth 2.0 for Server to Server
/// Applications", assertion lifetime at most an hour; docs/providers/fcm.md).
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
                           timeframe. Check your iat and exp values in the JWT claim.";
/// The `@type` of FCM's error detail (FCM HTTP v1 `FcmError` reference; docs/providers/fcm.md).
const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// The `@type` of the field-violation detail (Google API design guide, "Errors", `google.rpc`
/// error details; docs/providers/fcm.md).
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// The `@type` of the error-info detail (Google API design guide, "Errors"; docs/providers/fcm.md).
const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// A `google.rpc.Status` error body as FCM sends it: `{"error": {code, message, status,
/// details}}`, with an `FcmError` detail when `error_code` is given.
pub fn error_body(code: u16, status: &str, message: &str, error_code: Option<&str>) -> Value {
    let details: Vec<Value> =
        error_code.map(|c| json!({"@type": FCM_ERROR_TYPE, "errorCode": c})).into_iter().collect();
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
}

/// A local FCM HTTP v1 with its OAuth token endpoint.
pub struct FcmEmulator {
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    faults: FaultPlan,
    token_faults: FaultPlan,
    shared: Arc<Shared>,
    accepting: JoinHandle<()>,
}

impl Drop for FcmEmulator {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl FcmEmulator {
    /// Starts on a free loopback port, plain HTTP, accepting the FCM service account of
    /// `credentials`.
    pub async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        FcmEmulator::start_with(credentials, hub, None).await
    }

    /// Starts as [`FcmEmulator::start`] does, over TLS with `tls`'s certificate when given
    /// (ALPN `h2`, then `http/1.1`).
    pub async fn start_with(
        credentials: &TestCredentials,
        hub: DeviceHub,
        tls: Option<&TestCa>,
    ) -> std::io::Result<Self> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_key = DecodingKey::from_rsa_pem(FCM_PUBLIC_KEY.as_bytes())
            .map_err(|e| std::io::Error::other(format!("the FCM test public key: {e}")))?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (faults, token_faults) = (FaultPlan::default(), FaultPlan::default());
        let shared = Arc::new(Shared {
            project_id: credentials.fcm_project_id.clone(),
            client_email: credentials.fcm_client_email.clone(),
            private_key_id: credentials.fcm_private_key_id.clone(),
            token_url: token_url(scheme, addr),
            public_key,
            hub,
            faults: faults.clone(),
            token_faults: token_faults.clone(),
            token_lifetime: Mutex::new(DEFAULT_TOKEN_LIFETIME),
            access_tokens: Mutex::new(HashMap::new()),
            unregistered: Mutex::new(HashSet::new()),
            other_project: Mutex::new(HashSet::new()),
            sequence: AtomicU64::new(1),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone()).merge(faults.routes());
        let tls = tls.map(|ca| ca.acceptor(&[b"h2", b"http/1.1"]));
        let accepting = tokio::spawn(serve_with(listener, router, Protocols::Http1Or2, tls, "FCM"));
        Ok(FcmEmulator { addr, scheme, faults, token_faults, shared, accepting })
    }

    /// Its base URL (`providers.fcm.base_url`).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Its OAuth token endpoint (the service-account file's `token_uri`).
    pub fn token_url(&self) -> String {
        token_url(self.scheme, self.addr)
    }

    /// Its scripted faults for sends (matched by the message's token) and the log of every
    /// request it received, token requests included.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Scripted faults for the token endpoint (`token` filters do not apply there). Token
    /// requests are logged in [`FcmEmulator::faults`].
    pub fn token_faults(&self) -> &FaultPlan {
        &self.token_faults
    }

    /// How long access tokens issued from now on live (default 3599 s), so tests can watch
    /// them expire.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.shared.token_lifetime) = lifetime;
    }

    /// Revokes every access token issued so far: sends with them get 401 UNAUTHENTICATED.
    pub fn revoke_access_tokens(&self) {
        lock(&self.shared.access_tokens).clear();
    }

    /// The app behind `token` was uninstalled: sends to it get 404 UNREGISTERED.
    pub fn unregister_token(&self, token: &str) {
        lock(&self.shared.unregistered).insert(token.to_owned());
    }

    /// `token` belongs to another Firebase project: sends to it get 403 SENDER_ID_MISMATCH.
    pub fn move_token_to_other_project(&self, token: &str) {
        lock(&self.shared.other_project).insert(token.to_owned());
    }
}

fn token_url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{addr}{TOKEN_PATH}")
}

/// What the emulator knows and remembers.
struct Shared {
    project_id: String,
    client_email: String,
    private_key_id: String,
    token_url: String,
    public_key: DecodingKey,
    hub: DeviceHub,
    faults: FaultPlan,
    token_faults: FaultPlan,
    token_lifetime: Mutex<Duration>,
    access_tokens: Mutex<HashMap<String, IssuedToken>>,
    unregistered: Mutex<HashSet<String>>,
    other_project: Mutex<HashSet<String>>,
    sequence: AtomicU64,
}

/// An access token the token endpoint issued.
struct IssuedToken {
    expires: Instant,
    /// Whether its scopes allow sending FCM messages.
    may_send: bool,
}

/// An answer, before it becomes a response.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: StatusCode, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=UTF-8",
            body: body.to_string(),
            headers: vec![],
        }
    }

    /// A `google.rpc.Status` error.
    fn rpc(status: StatusCode, rpc_status: &str, message: &str, details: Vec<Value>) -> Reply {
        let body = json!({"error": {
            "code": status.as_u16(), "message": message, "status": rpc_status, "details": details,
        }});
        Reply::json(status, &body)
    }

    /// 400 INVALID_ARGUMENT with an `FcmError` detail and, when `field` is given, a
    /// `BadRequest` field violation.
    fn invalid(message: &str, field: Option<&str>) -> Reply {
        let mut details = vec![json!({"@type": FCM_ERROR_TYPE, "errorCode": error_code::INVALID_ARGUMENT})];
        if let Some(field) = field {
            details.push(violation(field, message));
        }
        Reply::rpc(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, details)
    }

    /// 400 INVALID_ARGUMENT as Google's JSON decoding answers it: a `BadRequest` detail only.
    fn undecodable(message: &str, field: &str) -> Reply {
        Reply::rpc(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, vec![violation(field, message)])
    }

    /// An OAuth error from the token endpoint.
    fn oauth(status: StatusCode, error: &str, description: &str) -> Reply {
        Reply::json(status, &json!({"error": error, "error_description": description}))
    }

    /// A scripted fault's answer.
    fn fault(fault: &Fault) -> Reply {
        let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (content_type, body) = match &fault.body {
            None => ("text/plain", String::new()),
            Some(Value::String(text)) => ("text/plain; charset=UTF-8", text.clone()),
            Some(json) => ("application/json; charset=UTF-8", json.to_string()),
        };
        let headers = fault.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Reply { status, content_type, body, headers }
    }

    fn into_response(self) -> Response {
        let mut response =
            (self.status, [(header::CONTENT_TYPE, self.content_type)], self.body).into_response();
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// A `google.rpc.BadRequest` detail naming one field.
fn violation(field: &str, description: &str) -> Value {
    json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field, "description": description}]})
}

/// A `google.rpc.ErrorInfo` detail, as Google's front end adds to auth errors.
fn error_info(reason: &str) -> Value {
    json!({"@type": ERROR_INFO_TYPE, "reason": reason, "domain": "googleapis.com", "metadata": {
        "service": "fcm.googleapis.com", "method": "google.firebase.fcm.v1.FcmService.SendMessage",
    }})
}

/// Where a request goes.
enum Route {
    Token,
    Send(String),
    Unknown,
}

/// The route of a request path.
fn route(path: &str) -> Route {
    if path == TOKEN_PATH {
        return Route::Token;
    }
    match path.strip_prefix(SEND_PATH_PREFIX).and_then(|rest| rest.strip_suffix(SEND_PATH_SUFFIX)) {
        Some(project) if !project.is_empty() && !project.contains('/') => Route::Send(project.to_owned()),
        _ => Route::Unknown,
    }
}

/// Every request but the control routes: log, apply a scripted fault, or answer.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let hangup = request.extensions().get::<Hangup>().cloned();
    let (parts, body) = request.into_parts();
    let path =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let log = |status: u16, body: &str| {
        shared.faults.record(Received {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: headers.clone(),
            body: body.to_owned(),
            status,
            received_at_us: arrival_us(),
        });
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        let reply = Reply::rpc(
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_ARGUMENT",
            "Request payload is too large.",
            vec![],
        );
        log(reply.status.as_u16(), "");
        return reply.into_response();
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let route = route(parts.uri.path());
    let fault = match &route {
        Route::Token => shared.token_faults.take(None),
        Route::Send(_) => shared.faults.take(message_token(&bytes).as_deref()),
        Route::Unknown => None,
    };
    if let Some(fault) = fault {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.drop_connection {
            if let Some(hangup) = hangup {
                log(0, &text);
                hangup.now();
                // The connection task drops this future along with the connection.
                std::future::pending::<()>().await;
            }
        }
        let reply = Reply::fault(&fault);
        log(reply.status.as_u16(), &text);
        return reply.into_response();
    }
    let reply = match route {
        Route::Token => shared.token(&parts.method, &parts.headers, &bytes),
        Route::Send(project) => shared.send(&parts.method, &parts.headers, &project, &bytes),
        Route::Unknown => {
            Reply::rpc(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.", vec![])
        }
    };
    log(reply.status.as_u16(), &text);
    reply.into_response()
}

/// The message's token, read leniently (for matching scripted faults).
fn message_token(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("message")?.get("token")?.as_str().map(str::to_owned)
}

fn unix_now() -> i64 {
    callpush_server::time::now_secs()
}

fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

impl Shared {
    /// `POST /token`: the JWT-bearer grant.
    fn token(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> Reply {
        if method != Method::POST {
            return Reply::oauth(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method must be POST.");
        }
        if !has_content_type(headers, "application/x-www-form-urlencoded") {
            return Reply::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded.",
            );
        }
        let form = match parse_form(body) {
            Ok(form) => form,
            Err(description) => {
                return Reply::oauth(StatusCode::BAD_REQUEST, "invalid_request", &description)
            }
        };
        let grant_type = form.get("grant_type").map(String::as_str).unwrap_or_default();
        if grant_type != JWT_BEARER_GRANT {
            return Reply::oauth(
                StatusCode::BAD_REQUEST,
                token_error::UNSUPPORTED_GRANT_TYPE,
                &format!("Invalid grant_type: {grant_type}"),
            );
        }
        let Some(assertion) = form.get("assertion").filter(|a| !a.is_empty()) else {
            return Reply::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: assertion",
            );
        };
        let scopes = match self.verify_assertion(assertion) {
            Ok(scopes) => scopes,
            Err((error, description)) => return Reply::oauth(StatusCode::BAD_REQUEST, error, &description),
        };
        let may_send = scopes.iter().any(|s| s == FCM_SCOPE || s == CLOUD_PLATFORM_SCOPE);
        let lifetime = *lock(&self.token_lifetime);
        let access_token =
            format!("ya29.c.{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        {
            let mut tokens = lock(&self.access_tokens);
            let now = Instant::now();
            tokens.retain(|_, t| t.expires > now);
            let expires = now.checked_add(lifetime).unwrap_or(now + DEFAULT_TOKEN_LIFETIME);
            tokens.insert(access_token.clone(), IssuedToken { expires, may_send });
        }
        let mut reply = Reply::json(
            StatusCode::OK,
            &json!({"access_token": access_token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
        );
        reply.headers.push(("cache-control".into(), "no-cache, no-store, max-age=0, must-revalidate".into()));
        reply
    }

    /// Checks the assertion's signature and claims; returns its scopes, or the OAuth error and
    /// description.
    fn verify_assertion(&self, assertion: &str) -> Result<Vec<String>, (&'static str, String)> {
        let grant = |description: &str| (token_error::INVALID_GRANT, description.to_owned());
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| grant("Invalid JWT: malformed."))?;
        if header.alg != Algorithm::RS256 {
            return Err(grant("Invalid JWT Signature."));
        }
        if header.kid.as_deref().is_some_and(|kid| kid != self.private_key_id) {
            return Err(grant("Invalid JWT Signature."));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Map<String, Value>>(assertion, &self.public_key, &validation)
            .map_err(|_| grant("Invalid JWT Signature."))?
            .claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
        if text("iss") != self.client_email {
            return Err(grant("Invalid grant: account not found"));
        }
        let aud = text("aud");
        if aud != self.token_url && aud != GOOGLE_TOKEN_AUDIENCE {
            return Err(grant(&format!(
                "Invalid JWT: Failed audience check. The right audience is {}",
                self.token_url
            )));
        }
        let (Some(iat), Some(exp)) =
            (claims.get("iat").and_then(Value::as_i64), claims.get("exp").and_then(Value::as_i64))
        else {
            return Err(grant(SHORT_LIVED));
        };
        let now = unix_now();
        if exp <= now || iat > now + CLOCK_SKEW || exp <= iat || exp - iat > 3600 {
            return Err(grant(SHORT_LIVED));
        }
        let scopes: Vec<String> = text("scope").split_whitespace().map(str::to_owned).collect();
        if scopes.is_empty() {
            return Err((
                token_error::INVALID_SCOPE,
                "Invalid OAuth scope or ID token audience provided.".into(),
            ));
        }
        Ok(scopes)
    }

    /// `POST /v1/projects/{project}/messages:send`.
    fn send(&self, method: &Method, headers: &HeaderMap, project: &str, body: &[u8]) -> Reply {
        if method != Method::POST {
            return Reply::rpc(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.", vec![]);
        }
        if let Err(reply) = self.authorize(headers, project) {
            return reply;
        }
        if !has_content_type(headers, "application/json") {
            return Reply::undecodable(
                "Invalid JSON payload received. Content-Type must be application/json.",
                "",
            );
        }
        let request: Value = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => return Reply::undecodable(&format!("Invalid JSON payload received. {e}"), ""),
        };
        let message = match check_request(&request) {
            Ok(message) => message,
            Err(reply) => return reply,
        };
        if let Some(token) = &message.token {
            if lock(&self.unregistered).contains(token) {
                return Reply::rpc(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "Requested entity was not found.",
                    vec![json!({"@type": FCM_ERROR_TYPE, "errorCode": error_code::UNREGISTERED})],
                );
            }
            if lock(&self.other_project).contains(token) {
                return Reply::rpc(
                    StatusCode::FORBIDDEN,
                    "PERMISSION_DENIED",
                    "SenderId mismatch",
                    vec![json!({"@type": FCM_ERROR_TYPE, "errorCode": error_code::SENDER_ID_MISMATCH})],
                );
            }
        }
        if message.validate_only {
            return Reply::json(
                StatusCode::OK,
                &json!({"name": format!("projects/{project}/messages/fake_message_id")}),
            );
        }
        let sent_ms = callpush_server::time::now_ms();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let message_id = format!("0:{sent_ms}%{sequence:016x}");
        if let Some(token) = &message.token {
            let mut data = message.data.clone();
            data.insert("google.message_id".into(), message_id.clone());
            data.insert("google.sent_time".into(), sent_ms.to_string());
            data.insert("google.ttl".into(), message.ttl_seconds.to_string());
            data.insert("google.original_priority".into(), message.priority.clone());
            data.insert("google.delivered_priority".into(), message.priority.clone());
            data.insert("from".into(), SENDER_ID.into());
            data.insert("collapse_key".into(), message.collapse_key.clone());
            let raw = serde_json::to_string(&data).unwrap_or_default();
            // A device that is not online is simply offline: FCM still accepts the message.
            self.hub.deliver(Platform::Fcm, token, DevicePush::App { raw });
        }
        Reply::json(StatusCode::OK, &json!({"name": format!("projects/{project}/messages/{message_id}")}))
    }

    /// The bearer token must be live, issued here with a scope that may send, and the project
    /// must be the service account's.
    fn authorize(&self, headers: &HeaderMap, project: &str) -> Result<(), Reply> {
        let unauthenticated = |message: &str, reason: &str| {
            Reply::rpc(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message, vec![error_info(reason)])
        };
        let invalid_credentials = "Request had invalid authentication credentials. Expected OAuth 2 access \
                                   token, login cookie or other valid authentication credential. See \
                                   https://developers.google.com/identity/sign-in/web/devconsole-project.";
        let authorization =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let bearer = authorization
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        let Some(bearer) = bearer else {
            return Err(unauthenticated(
                "Request is missing required authentication credential. Expected OAuth 2 access token, login \
                 cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "CREDENTIALS_MISSING",
            ));
        };
        let may_send = match lock(&self.access_tokens).get(bearer) {
            None => return Err(unauthenticated(invalid_credentials, "ACCESS_TOKEN_TYPE_UNSUPPORTED")),
            Some(token) if token.expires <= Instant::now() => {
                return Err(unauthenticated(invalid_credentials, "ACCESS_TOKEN_EXPIRED"))
            }
            Some(token) => token.may_send,
        };
        if !may_send {
            return Err(Reply::rpc(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Request had insufficient authentication scopes.",
                vec![error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT")],
            ));
        }
        if project != self.project_id {
            return Err(Reply::rpc(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                &format!(
                    "Permission 'cloudmessaging.messages.create' denied on resource \
                     '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
                ),
                vec![error_info("IAM_PERMISSION_DENIED")],
            ));
        }
        Ok(())
    }
}

/// A message that passed the checks: what delivering it needs.
struct CheckedMessage {
    validate_only: bool,
    /// The device token, when the target is one (topics and conditions reach no emulated device).
    token: Option<String>,
    /// The data the app gets (`android.data` replaces `message.data`).
    data: BTreeMap<String, String>,
    /// `high` or `normal`.
    priority: String,
    ttl_seconds: u64,
    collapse_key: String,
}

/// Message fields (proto3 JSON: snake_case or lowerCamelCase): FCM HTTP v1 reference, `Message`
/// (firebase.google.com/docs/reference/fcm/rest/v1/projects.messages); docs/providers/fcm.md.
const MESSAGE_FIELDS: &[&str] = &[
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "fcmOptions",
    "token",
    "topic",
    "condition",
];
/// Fields of `android` (FCM HTTP v1 reference, `AndroidConfig`; docs/providers/fcm.md).
const ANDROID_FIELDS: &[&str] = &[
    "collapse_key",
    "collapseKey",
    "priority",
    "ttl",
    "restricted_package_name",
    "restrictedPackageName",
    "data",
    "notification",
    "fcm_options",
    "fcmOptions",
    "direct_boot_ok",
    "directBootOk",
    "bandwidth_constrained_ok",
    "bandwidthConstrainedOk",
    "restricted_satellite_ok",
    "restrictedSatelliteOk",
];

/// Checks a send request's schema and limits, as FCM does.
fn check_request(request: &Value) -> Result<CheckedMessage, Reply> {
    let Some(request) = request.as_object() else {
        return Err(Reply::undecodable("Invalid JSON payload received. Expected an object.", ""));
    };
    unknown_fields(request, &["validate_only", "validateOnly", "message"], "")?;
    let validate_only = match request.get("validate_only").or_else(|| request.get("validateOnly")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("validate_only", "TYPE_BOOL", other)),
    };
    let message = match request.get("message") {
        Some(Value::Object(message)) => message,
        None | Some(Value::Null) => {
            return Err(Reply::invalid("Request contains an invalid argument.", None))
        }
        Some(other) => {
            return Err(wrong_type("message", "type.googleapis.com/google.firebase.fcm.v1.Message", other))
        }
    };
    unknown_fields(message, MESSAGE_FIELDS, "message")?;
    let mut target: Option<(&str, &str)> = None;
    for name in ["token", "topic", "condition"] {
        match message.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(value)) => {
                if target.is_some() {
                    return Err(Reply::undecodable(
                        &format!(
                            "Invalid JSON payload received. Oneof field 'target' is already set. \
                             Cannot set '{name}'"
                        ),
                        "message",
                    ));
                }
                target = Some((name, value));
            }
            Some(other) => return Err(wrong_type(&format!("message.{name}"), "TYPE_STRING", other)),
        }
    }
    let Some((kind, target)) = target else {
        return Err(Reply::invalid("Recipient of the message is not set.", None));
    };
    let mut data = string_map(message.get("data"), "message.data")?;
    let (mut priority, mut ttl_seconds, mut collapse_key) =
        ("normal".to_owned(), MAX_TTL_SECONDS, "do_not_collapse".to_owned());
    match message.get("android") {
        None | Some(Value::Null) => {}
        Some(Value::Object(android)) => {
            unknown_fields(android, ANDROID_FIELDS, "message.android")?;
            if let Some(android_data) = android.get("data").filter(|d| !d.is_null()) {
                data = string_map(Some(android_data), "message.android.data")?;
            }
            if let Some(value) = android.get("priority").filter(|v| !v.is_null()) {
                priority = match value.as_str().map(str::to_ascii_uppercase).as_deref() {
                    Some("HIGH") => "high".into(),
                    Some("NORMAL") => "normal".into(),
                    _ => {
                        return Err(wrong_type(
                            "message.android.priority",
                            "type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority",
                            value,
                        ))
                    }
                };
            }
            if let Some(value) = android.get("ttl").filter(|v| !v.is_null()) {
                let Some(seconds) = value.as_str().and_then(parse_duration) else {
                    return Err(wrong_type(
                        "message.android.ttl",
                        "type.googleapis.com/google.protobuf.Duration",
                        value,
                    ));
                };
                if !(0.0..=MAX_TTL_SECONDS as f64).contains(&seconds) {
                    return Err(Reply::invalid(
                        &format!("message.android.ttl must be from 0s to {MAX_TTL_SECONDS}s"),
                        Some("message.android.ttl"),
                    ));
                }
                ttl_seconds = seconds as u64;
            }
            for name in ["collapse_key", "collapseKey"] {
                match android.get(name) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(key)) => collapse_key = key.clone(),
                    Some(other) => {
                        return Err(wrong_type(&format!("message.android.{name}"), "TYPE_STRING", other))
                    }
                }
            }
        }
        Some(other) => {
            return Err(wrong_type(
                "message.android",
                "type.googleapis.com/google.firebase.fcm.v1.AndroidConfig",
                other,
            ))
        }
    }
    if let Some(key) = data.keys().find(|k| is_reserved_key(k)) {
        return Err(Reply::invalid(&format!("Invalid data payload key: {key}"), Some("message.data")));
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_DATA_BYTES {
        return Err(Reply::invalid(
            &format!("Message is too big: the data payload is {size} bytes, over {MAX_DATA_BYTES}"),
            Some("message.data"),
        ));
    }
    if kind == "token" && !is_token(target) {
        return Err(Reply::invalid(INVALID_TOKEN_MESSAGE, Some("message.token")));
    }
    Ok(CheckedMessage {
        validate_only,
        token: (kind == "token").then(|| target.to_owned()),
        data,
        priority,
        ttl_seconds,
        collapse_key,
    })
}

/// Refuses fields `allowed` does not name, as Google's JSON decoding does.
fn unknown_fields(object: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), Reply> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(name) => {
            let place = if at.is_empty() { String::new() } else { format!(" at '{at}'") };
            Err(Reply::undecodable(
                &format!("Invalid JSON payload received. Unknown name \"{name}\"{place}: Cannot find field."),
                at,
            ))
        }
    }
}

/// Google's answer to a value of the wrong type or form.
fn wrong_type(field: &str, type_name: &str, value: &Value) -> Reply {
    Reply::undecodable(&format!("Invalid value at '{field}' ({type_name}), {value}"), field)
}

/// A `map<string, string>`: absent is empty; every value must be a string.
fn string_map(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, Reply> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .enumerate()
            .map(|(i, (k, v))| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(wrong_type(&format!("{field}[{i}].value"), "TYPE_STRING", other)),
            })
            .collect(),
        Some(other) => Err(wrong_type(field, "TYPE_MAP", other)),
    }
}

/// Data keys FCM reserves: `from`, `message_type`, and anything starting with `google` or `gcm`
/// (FCM HTTP v1 reference, `Message.data`; docs/providers/fcm.md).
fn is_reserved_key(key: &str) -> bool {
    key == "from" || key == "message_type" || key.starts_with("google") || key.starts_with("gcm")
}

/// Whether `token` looks like an FCM registration token.
fn is_token(token: &str) -> bool {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
}

/// A protobuf `Duration` in JSON (`"30s"`, `"3.5s"`, `"-1s"`), in seconds.
fn parse_duration(text: &str) -> Option<f64> {
    let number = text.strip_suffix('s')?;
    let digits = number.strip_prefix('-').unwrap_or(number);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let well_formed = !whole.is_empty()
        && whole.len() <= 12
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 9
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    well_formed.then(|| number.parse().ok()).flatten()
}

/// Decodes an `application/x-www-form-urlencoded` body; a repeated parameter is an error.
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "The request body is not UTF-8.".to_owned())?;
    let mut form = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name)?, percent_decode(value)?);
        if form.insert(name.clone(), value).is_some() {
            return Err(format!("Parameter {name} is repeated."));
        }
    }
    Ok(form)
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte =
                    hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("Malformed percent-encoding.")?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "The form is not UTF-8.".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_protobuf_json() {
        assert_eq!(parse_duration("30s"), Some(30.0));
        assert_eq!(parse_duration("3.5s"), Some(3.5));
        assert_eq!(parse_duration("-1s"), Some(-1.0));
        for bad in ["30", "s", "3.s", ".5s", "1e3s", "3.1234567891s", "", "٣s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn forms_decode_and_refuse_repeats() {
        let form = parse_form(b"grant_type=urn%3Aietf%3Aparams&assertion=a.b+c").unwrap();
        assert_eq!(form["grant_type"], "urn:ietf:params");
        assert_eq!(form["assertion"], "a.b c");
        assert!(parse_form(b"a=1&a=2").is_err());
        assert!(parse_form(b"a=%zz").is_err());
        assert!(parse_form(b"a=%4").is_err());
        assert!(parse_form(&[0xff]).is_err());
    }

    #[test]
    fn tokens_and_reserved_keys() {
        let token = crate::device::token_for(Platform::Fcm, 7);
        assert!(is_token(&token));
        assert!(!is_token("short"));
        assert!(!is_token(&format!("{token}!")));
        assert!(!is_token(&"a".repeat(MAX_TOKEN_LEN + 1)));
        for key in ["from", "gcm", "gcm.notification.title", "google.c.a", "googleX", "message_type"] {
            assert!(is_reserved_key(key), "{key}");
        }
        assert!(!is_reserved_key("callpush"));
        assert!(!is_reserved_key("collapse_key"));
    }
}
