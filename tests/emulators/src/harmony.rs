//! The Push Kit v3 emulator: `POST /v3/{projectId}/messages:send` as docs/providers/harmony.md describes
//! it, on plain HTTP on a loopback port, or ([`HarmonyEmulator::start_with`]) over TLS from a test
//! CA offering only `http/1.1` by ALPN, as `push-api.cloud.huawei.com` speaks HTTP/1.1
//! (docs/providers/harmony.md, "Endpoint").
//!
//! It checks what Push Kit checks, answering with its business codes: the service-account JWT
//! (PS256 signature against [`HARMONY_PUBLIC_KEY`], `kid`, `iss`, `aud`, expiry, a validity
//! period of at most an hour), the project id in the URL, the `push-type` (every type of the
//! guide's table) and `Content-Type` headers, the body's schema per push-type, the 4096-byte
//! limit (tokens excluded), the token count, each token's format, and the 30–60 s `ttl` of
//! in-app call messages. Accepted pushes reach the subscribed devices as HarmonyOS hands them
//! over: push-type 10 as the `receiveMessage('VoIP')` data (its `header` a string, as the
//! interface declares), push-type 0 as a system notification; other push-types are accepted
//! and not delivered. After a delivery it posts signed delivery receipts to the configured
//! receipt URL ([`ReceiptSender`]). Scripted faults ([`FaultPlan`]) replace the answer to a
//! request for any of its tokens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use callpush_client::model::Platform;
use callpush_client::wire::harmony_delivery;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::credentials::{TestCredentials, HARMONY_PUBLIC_KEY};
use super::faults::{arrival_us, Fault, FaultPlan, Received};
use super::harmony_receipts::{self, ReceiptSender};
use super::hub::{DeviceHub, DevicePush};
use super::memo::VerifiedToken;
use super::serve::{serve_with, Hangup, Protocols};
use super::tls::TestCa;

/// The `aud` of every service-account JWT, a fixed claim checked, never called: Huawei Push Kit,
/// "JWT-based authentication" of a service account (developer.huawei.com, HarmonyOS Push Kit
/// server guide); docs/providers/harmony.md.
pub const JWT_AUDIENCE: &str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token";

/// The send path, `POST /v3/{projectId}/messages:send`: Huawei Push Kit, "Push Kit REST API"
/// (scenario-based message sending, v3); docs/providers/harmony.md.
pub const SEND_PATH_PREFIX: &str = "/v3/";
/// The end of the send path after the project id; see [`SEND_PATH_PREFIX`]. Huawei Push Kit,
/// "Push Kit REST API"; docs/providers/harmony.md.
pub const SEND_PATH_SUFFIX: &str = "/messages:send";

/// Push Kit's business codes (the `code` of every answer body): Huawei Push Kit, "Push Kit REST
/// API" error codes (result codes of the v3 send API); docs/providers/harmony.md.
pub mod code {
    /// Success (Push Kit REST API error codes; docs/providers/harmony.md).
    pub const SUCCESS: &str = "80000000";
    /// Some tokens succeeded, others did not; `msg` lists the illegal ones (Push Kit REST API
    /// error codes; docs/providers/harmony.md).
    pub const PARTIAL_SUCCESS: &str = "80100000";
    /// Parameter check failed: a header or field missing or of the wrong type (Push Kit REST
    /// API error codes; docs/providers/harmony.md).
    pub const PARAMETER_ERROR: &str = "80100001";
    /// Illegal payload for its push-type (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const ILLEGAL_PAYLOAD: &str = "80100003";
    /// Illegal `pushOptions.ttl` (Push Kit REST API error codes; docs/providers/harmony.md).
    pub const ILLEGAL_TTL: &str = "80100004";
    /// Authentication failed: the JWT is not valid for this project (Push Kit REST API error
    /// codes; docs/providers/harmony.md).
    pub const AUTHENTICATION_ERROR: &str = "80200001";
    /// The JWT has expired (Push Kit REST API error codes; docs/providers/harmony.md).
    pub const JWT_EXPIRED: &str = "80200005";
    /// No permission to send to these tokens (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const NO_PERMISSION: &str = "80300002";
    /// Every token is illegal; `msg` lists them (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const ALL_TOKENS_ILLEGAL: &str = "80300007";
    /// The message is too large (Push Kit REST API error codes; docs/providers/harmony.md).
    pub const MESSAGE_TOO_LARGE: &str = "80300008";
    /// Too many (or no) tokens in one request (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const TOKEN_COUNT: &str = "80300010";
    /// Too many tokens for a test message (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const TEST_TOKEN_COUNT: &str = "80300030";
    /// The JWT's validity period is over the threshold (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const JWT_PERIOD_TOO_LONG: &str = "80300036";
    /// Push Kit inner error, retry later (Push Kit REST API error codes;
    /// docs/providers/harmony.md).
    pub const INNER_ERROR: &str = "81000001";
}

/// Largest body, tokens excluded, bytes (→ 80300008): Huawei Push Kit, "Push Kit REST API"
/// message size limit; docs/providers/harmony.md.
pub const MAX_BODY: usize = 4096;
/// Most tokens per request (→ 80300010): Huawei Push Kit, "Push Kit REST API" `target.token`;
/// docs/providers/harmony.md.
pub const MAX_TOKENS: usize = 1000;
/// Most tokens per test message (→ 80300030): Huawei Push Kit, "Push Kit REST API"
/// `pushOptions.testMessage`; docs/providers/harmony.md.
pub const MAX_TEST_TOKENS: usize = 10;
/// Longest JWT validity period the emulator accepts, seconds (→ 80300036): Huawei Push Kit,
/// "基于服务账号生成鉴权令牌" (service-account JWT): `exp` is 3600 s after `iat`;
/// docs/providers/harmony.md.
pub const MAX_JWT_VALIDITY: i64 = 3_600;
/// Shortest token the emulator takes for a Push Kit token (the emulator's own bound: Push Kit
/// tokens are opaque; docs/providers/harmony.md).
pub const MIN_TOKEN_LEN: usize = 8;
/// Longest `pushOptions.ttl`, seconds (15 days): Huawei Push Kit, "Push Kit REST API"
/// `pushOptions`; docs/providers/harmony.md.
const MAX_TTL: i64 = 1_296_000;
/// The `pushOptions.ttl` of in-app call messages, seconds: Huawei Push Kit, "推送应用内通话消息"
/// (in-app call messages) asks for 30 to 60 s; the emulator refuses anything else (80100004),
/// an absent ttl (a day by default) included; docs/providers/harmony.md.
pub const VOIP_TTL: std::ops::RangeInclusive<i64> = 30..=60;
/// The push-types of Huawei Push Kit, "推送场景化消息" (scenario-based messages): 0 alert,
/// 1 card refresh, 2 notification extension, 6 background, 7 Live View, 9 location, 10 in-app
/// call; docs/providers/harmony.md.
pub const PUSH_TYPES: [u8; 7] = [0, 1, 2, 6, 7, 9, 10];
/// Largest `formId` of a card refresh (push-type 1), 2^31 − 1: Huawei Push Kit, "推送卡片刷新消息";
/// docs/providers/harmony.md.
const MAX_FORM_ID: i64 = 2_147_483_647;
/// Most tokens of a card-refresh test message: Huawei Push Kit, "推送卡片刷新消息" (one token per
/// test push); docs/providers/harmony.md.
const MAX_TEST_FORM_TOKENS: usize = 1;
/// Notification categories of alert messages: Huawei Push Kit, "Push Kit REST API"
/// `Notification.category` (notification classification); docs/providers/harmony.md.
const CATEGORIES: [&str; 14] = [
    "IM",
    "VOIP",
    "MISS_CALL",
    "SUBSCRIPTION",
    "TRAVEL",
    "HEALTH",
    "WORK",
    "ACCOUNT",
    "EXPRESS",
    "FINANCE",
    "DEVICE_REMINDER",
    "MAIL",
    "PLAY_VOICE",
    "MARKETING",
];

/// A local Push Kit v3.
pub struct HarmonyEmulator {
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    faults: FaultPlan,
    receipts: ReceiptSender,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for HarmonyEmulator {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl HarmonyEmulator {
    /// Starts on a free loopback port, plain HTTP, accepting JWTs of `credentials`' service
    /// account and handing accepted pushes to `hub`.
    pub async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        HarmonyEmulator::start_with(credentials, hub, None).await
    }

    /// Starts as [`HarmonyEmulator::start`] does, over TLS with `tls`'s certificate when given:
    /// HTTP/1.1 only (ALPN `http/1.1`), as Push Kit.
    pub async fn start_with(
        credentials: &TestCredentials,
        hub: DeviceHub,
        tls: Option<&TestCa>,
    ) -> std::io::Result<Self> {
        let key = DecodingKey::from_rsa_pem(HARMONY_PUBLIC_KEY.as_bytes())
            .map_err(|e| std::io::Error::other(format!("the Push Kit test public key: {e}")))?;
        let faults = FaultPlan::default();
        let receipts = ReceiptSender::default();
        let shared = Arc::new(Shared {
            project_id: credentials.harmony_project_id.clone(),
            key_id: credentials.harmony_key_id.clone(),
            sub_account: credentials.harmony_sub_account.clone(),
            key,
            verified: VerifiedToken::default(),
            hub,
            faults: faults.clone(),
            receipts: receipts.clone(),
            requests: AtomicU64::new(0),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(shared)
            // Bodies of up to 1000 tokens pass; Push Kit's own limits are checked in `handle`.
            .layer(DefaultBodyLimit::max(1024 * 1024))
            .merge(faults.routes())
            .merge(receipts.routes());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        // Plain HTTP keeps taking HTTP/2 with prior knowledge, as it always has; TLS offers what
        // Push Kit speaks.
        let (scheme, protocols, tls) = match tls {
            None => ("http", Protocols::Http1Or2, None),
            Some(ca) => ("https", Protocols::Http1, Some(ca.acceptor(&[b"http/1.1"]))),
        };
        let serving = tokio::spawn(serve_with(listener, router, protocols, tls, "Push Kit"));
        Ok(HarmonyEmulator { addr, scheme, faults, receipts, serving })
    }

    /// Its base URL (`providers.harmony.base_url`).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Its scripted faults and request log. A request cut by `drop_connection` is logged with
    /// status 0.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Its delivery receipts: where they go, scripted results per token, what was sent.
    pub fn receipts(&self) -> &ReceiptSender {
        &self.receipts
    }
}

struct Shared {
    project_id: String,
    key_id: String,
    sub_account: String,
    key: DecodingKey,
    verified: VerifiedToken<Claims>,
    hub: DeviceHub,
    faults: FaultPlan,
    receipts: ReceiptSender,
    requests: AtomicU64,
}

/// An answer: HTTP status and JSON body.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn into_response(self) -> Response {
        (self.status, [(axum::http::header::CONTENT_TYPE, "application/json")], self.body.to_string())
            .into_response()
    }
}

async fn handle(
    State(emulator): State<Arc<Shared>>,
    Extension(hangup): Extension<Hangup>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut received = Received {
        method: method.to_string(),
        path: uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect::<BTreeMap<_, _>>(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        received_at_us: arrival_us(),
    };
    let Some(project_id) = send_path(uri.path()) else {
        received.status = 404;
        emulator.faults.record(received);
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    if method != Method::POST {
        received.status = 405;
        emulator.faults.record(received);
        return (StatusCode::METHOD_NOT_ALLOWED, [(axum::http::header::ALLOW, "POST")]).into_response();
    }
    let fault = emulator.fault_for(&body);
    if let Some(fault) = fault {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.drop_connection {
            emulator.faults.record(received);
            hangup.now();
            // The connection task drops this request with the connection.
            return std::future::pending::<Response>().await;
        }
        received.status = fault.status;
        emulator.faults.record(received);
        return fault_response(&fault);
    }
    let answer = emulator.send(project_id, &headers, &body);
    received.status = answer.status.as_u16();
    emulator.faults.record(received);
    answer.into_response()
}

/// The project id of `/v3/{projectId}/messages:send`.
fn send_path(path: &str) -> Option<&str> {
    let project = path.strip_prefix(SEND_PATH_PREFIX)?.strip_suffix(SEND_PATH_SUFFIX)?;
    (!project.is_empty() && !project.contains('/')).then_some(project)
}

/// A scripted fault's answer: its status, body (JSON, or text when a string) and headers.
fn fault_response(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &fault.body {
        Some(Value::String(text)) => {
            (status, [(axum::http::header::CONTENT_TYPE, "text/plain")], text.clone()).into_response()
        }
        Some(json) => (status, [(axum::http::header::CONTENT_TYPE, "application/json")], json.to_string())
            .into_response(),
        None => status.into_response(),
    };
    for (name, value) in &fault.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The HTTP status Push Kit answers a business code with (docs/providers/harmony.md leaves it open; these
/// follow its HTTP table: 200 for results, 401 for authentication, 500 for inner errors, 400
/// for the rest).
fn http_status(code: &str) -> StatusCode {
    match code {
        code::SUCCESS | code::PARTIAL_SUCCESS => StatusCode::OK,
        code::AUTHENTICATION_ERROR | code::JWT_EXPIRED => StatusCode::UNAUTHORIZED,
        code::INNER_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The claims of a service-account JWT.
#[derive(Clone, Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
}

/// Why a request is refused: a business code and its message.
struct Refusal {
    code: &'static str,
    msg: String,
}

fn refuse(code: &'static str, msg: impl Into<String>) -> Refusal {
    Refusal { code, msg: msg.into() }
}

/// A request that passed every check.
struct Accepted {
    push_type: u8,
    payload: Map<String, Value>,
    tokens: Vec<String>,
    bi_tag: Option<String>,
}

impl Shared {
    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:06}", callpush_server::time::now_ms())
    }

    fn answer(&self, code: &'static str, msg: impl Into<String>) -> Answer {
        self.answer_as(&self.request_id(), code, msg)
    }

    fn answer_as(&self, request_id: &str, code: &'static str, msg: impl Into<String>) -> Answer {
        Answer {
            status: http_status(code),
            body: json!({ "code": code, "msg": msg.into(), "requestId": request_id }),
        }
    }

    /// The first queued fault that applies to a token of this request (or to any request).
    fn fault_for(&self, body: &[u8]) -> Option<Fault> {
        let tokens: Vec<String> = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("target")?.get("token")?.as_array().cloned())
            .map(|list| list.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if tokens.is_empty() {
            return self.faults.take(None);
        }
        tokens.iter().find_map(|token| self.faults.take(Some(token)))
    }

    /// Checks and delivers one send request.
    fn send(&self, project_id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
        let accepted = match self.check(project_id, headers, body) {
            Ok(accepted) => accepted,
            Err(Refusal { code, msg }) => return self.answer(code, msg),
        };
        let (good, bad): (Vec<&String>, Vec<&String>) = accepted.tokens.iter().partition(|t| valid_token(t));
        if good.is_empty() {
            let detail = json!({ "illegalTokens": { "tokenFormatError": bad } });
            return self.answer(code::ALL_TOKENS_ILLEGAL, detail.to_string());
        }
        let request_id = self.request_id();
        for token in &good {
            let push = match accepted.push_type {
                10 => DevicePush::App {
                    raw: harmony_delivery(
                        &uuid::Uuid::new_v4().simple().to_string(),
                        accepted.payload.get("extraData").and_then(Value::as_str).unwrap_or_default(),
                        token,
                    ),
                },
                // Card refreshes, extensions, background, Live View and location messages are
                // accepted; no simulated device takes them.
                1 | 2 | 6 | 7 | 9 => continue,
                _ => {
                    let notification = accepted.payload.get("notification");
                    let text = |key: &str| {
                        notification.and_then(|n| n.get(key)).and_then(Value::as_str).map(str::to_owned)
                    };
                    DevicePush::Notification {
                        title: text("title").unwrap_or_default(),
                        body: text("body").unwrap_or_default(),
                        id: text("appMessageId"),
                        category: text("category"),
                    }
                }
            };
            // A device that is not online is offline: Push Kit accepts the push all the same,
            // and reports a delivery only once there is one. A scripted result plays a device
            // whose app did not take the message (uninstalled, notifications off, …).
            let result = match self.receipts.scripted(token) {
                Some(result) if result != harmony_receipts::result::DELIVERED => Some(result),
                _ => self
                    .hub
                    .deliver(Platform::Harmony, token, push)
                    .then_some(harmony_receipts::result::DELIVERED),
            };
            if let Some(result) = result {
                self.receipts.queue(
                    accepted.bi_tag.as_deref(),
                    accepted.push_type,
                    token,
                    &request_id,
                    result,
                );
            }
        }
        if bad.is_empty() {
            return self.answer_as(&request_id, code::SUCCESS, "Success");
        }
        let detail = json!({
            "success": good.len(),
            "failure": bad.len(),
            "illegalTokens": { "tokenFormatError": bad },
        });
        self.answer_as(&request_id, code::PARTIAL_SUCCESS, detail.to_string())
    }

    /// Every check of a send request, in the order Push Kit reports them.
    fn check(&self, project_id: &str, headers: &HeaderMap, body: &[u8]) -> Result<Accepted, Refusal> {
        self.authenticate(headers)?;
        if project_id != self.project_id {
            return Err(refuse(code::NO_PERMISSION, "No permission to send message to these tmIDs."));
        }
        let push_type = match header(headers, "push-type").map(str::trim) {
            Some(text) => match text.parse::<u8>() {
                Ok(push_type) if PUSH_TYPES.contains(&push_type) && text == push_type.to_string() => {
                    push_type
                }
                _ => return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: unknown push-type")),
            },
            None => {
                return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: push-type is required"))
            }
        };
        let json_body = header(headers, "content-type").is_some_and(|v| {
            v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json_body {
            return Err(refuse(
                code::PARAMETER_ERROR,
                "Check Parameter Error: Content-Type must be application/json",
            ));
        }
        let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
            return Err(refuse(
                code::PARAMETER_ERROR,
                "Check Parameter Error: the body is not a JSON object",
            ));
        };
        let Some(Value::Object(payload)) = root.get("payload") else {
            return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: payload is required"));
        };
        let tokens = match root.get("target").and_then(|t| t.get("token")) {
            Some(Value::Array(list)) => list
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    refuse(code::PARAMETER_ERROR, "Check Parameter Error: target.token must be strings")
                })?,
            _ => {
                return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: target.token is required"))
            }
        };
        let options = check_push_options(root.get("pushOptions"))?;
        let test_message = options.test_message;
        match push_type {
            0 => check_alert_payload(payload)?,
            1 => check_form_payload(payload)?,
            2 => check_extension_payload(payload)?,
            6 => check_background_payload(payload)?,
            7 | 9 => check_undocumented_payload(payload)?,
            _ => check_call_payload(payload)?,
        }
        let limit = match (test_message, push_type) {
            (true, 1) => MAX_TEST_FORM_TOKENS,
            (true, _) => MAX_TEST_TOKENS,
            (false, _) => MAX_TOKENS,
        };
        if tokens.is_empty() || tokens.len() > MAX_TOKENS {
            return Err(refuse(code::TOKEN_COUNT, format!("token count should within 1 and {MAX_TOKENS}.")));
        }
        if tokens.len() > limit {
            return Err(refuse(code::TEST_TOKEN_COUNT, "When send test message, token count exceed limit."));
        }
        // The limit counts the body without its tokens: each token as JSON, and the commas.
        let token_bytes: usize = tokens.iter().map(|t| json_len(t) + 1).sum::<usize>() - 1;
        if body.len().saturating_sub(token_bytes) > MAX_BODY {
            return Err(refuse(code::MESSAGE_TOO_LARGE, "Push message size is too long."));
        }
        if push_type == 10 && !options.ttl.is_some_and(|ttl| VOIP_TTL.contains(&ttl)) {
            return Err(refuse(
                code::ILLEGAL_TTL,
                "Illegal expire time: an in-app call message (push-type 10) takes a ttl of 30 to 60 seconds.",
            ));
        }
        Ok(Accepted { push_type, payload: payload.clone(), tokens, bi_tag: options.bi_tag })
    }

    /// Verifies the service-account JWT of `Authorization: Bearer`.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let auth_error =
            |why: &str| refuse(code::AUTHENTICATION_ERROR, format!("Authentication Error: {why}"));
        let jwt = header(headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_error("missing Authorization: Bearer"))?;
        // Signature and fixed claims once per token; expiry below, on every request.
        let claims = self.verified.claims(jwt, || {
            let head = jsonwebtoken::decode_header(jwt).map_err(|_| auth_error("not a JWT"))?;
            if head.alg != Algorithm::PS256 {
                return Err(auth_error("the JWT must be signed PS256"));
            }
            if head.typ.as_deref() != Some("JWT") {
                return Err(auth_error("the JWT header must say typ JWT"));
            }
            if head.kid.as_deref() != Some(self.key_id.as_str()) {
                return Err(auth_error("unknown key id"));
            }
            let mut validation = Validation::new(Algorithm::PS256);
            validation.leeway = 0;
            validation.set_audience(&[JWT_AUDIENCE]);
            validation.set_issuer(&[self.sub_account.as_str()]);
            validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
            match jsonwebtoken::decode::<Claims>(jwt, &self.key, &validation) {
                Ok(data) => Ok(data.claims),
                Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                    Err(refuse(code::JWT_EXPIRED, "Jwt token expired."))
                }
                Err(e) => Err(auth_error(&format!("{e}"))),
            }
        })?;
        let now = callpush_server::time::now_secs();
        if claims.exp <= now {
            return Err(refuse(code::JWT_EXPIRED, "Jwt token expired."));
        }
        if claims.exp.saturating_sub(claims.iat) > MAX_JWT_VALIDITY {
            return Err(refuse(code::JWT_PERIOD_TOO_LONG, "JWT expire period over threshold."));
        }
        Ok(())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(s.len() + 2, |quoted| quoted.len())
}

/// Push Kit tokens are opaque ASCII; anything outside base64 / base64url, or too short, is a
/// `tokenFormatError`.
fn valid_token(token: &str) -> bool {
    token.len() >= MIN_TOKEN_LEN
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// What `pushOptions` says, once checked.
#[derive(Default)]
struct PushOptions {
    /// `ttl`, if given.
    ttl: Option<i64>,
    /// `biTag`, if given.
    bi_tag: Option<String>,
    /// `testMessage`.
    test_message: bool,
}

/// `pushOptions`, when present.
fn check_push_options(options: Option<&Value>) -> Result<PushOptions, Refusal> {
    let options = match options {
        None | Some(Value::Null) => return Ok(PushOptions::default()),
        Some(Value::Object(options)) => options,
        Some(_) => {
            return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: pushOptions must be an object"))
        }
    };
    let ttl = match options.get("ttl") {
        None => None,
        Some(ttl) => match ttl.as_i64() {
            Some(ttl) if (1..=MAX_TTL).contains(&ttl) => Some(ttl),
            Some(_) => return Err(refuse(code::ILLEGAL_TTL, "Illegal expire time.")),
            None => {
                return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: ttl must be an integer"))
            }
        },
    };
    let bi_tag = match options.get("biTag") {
        None => None,
        Some(Value::String(tag)) if tag.len() <= 64 => Some(tag.clone()),
        Some(_) => {
            return Err(refuse(
                code::PARAMETER_ERROR,
                "Check Parameter Error: biTag must be a string of at most 64 bytes",
            ))
        }
    };
    let test_message = match options.get("testMessage") {
        None => false,
        Some(Value::Bool(test)) => *test,
        Some(_) => {
            return Err(refuse(code::PARAMETER_ERROR, "Check Parameter Error: testMessage must be a boolean"))
        }
    };
    Ok(PushOptions { ttl, bi_tag, test_message })
}

/// push-type 10 (`VoIPCallPayload`): `extraData`, a non-empty string.
fn check_call_payload(payload: &Map<String, Value>) -> Result<(), Refusal> {
    match payload.get("extraData") {
        Some(Value::String(extra)) if !extra.is_empty() => Ok(()),
        Some(_) => {
            Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, extraData must be a non-empty string."))
        }
        None => Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, extraData is required.")),
    }
}

/// push-type 0 (`AlertPayload`): a notification with a known category, a title, a body and a
/// click action.
fn check_alert_payload(payload: &Map<String, Value>) -> Result<(), Refusal> {
    check_notification(payload)
}

/// push-type 2 (notification extension): a notification as for push-type 0, handed to the
/// app's extension process, and `extraData`, a string, when given.
fn check_extension_payload(payload: &Map<String, Value>) -> Result<(), Refusal> {
    check_notification(payload)?;
    match payload.get("extraData") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, extraData must be a string.")),
    }
}

/// push-type 6 (background message): `extraData`, a string; `proxyData`, when given, only
/// `"ENABLE"` (upper case).
fn check_background_payload(payload: &Map<String, Value>) -> Result<(), Refusal> {
    match payload.get("extraData") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, extraData must be a string.")),
        None => return Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, extraData is required.")),
    }
    match payload.get("proxyData") {
        None => Ok(()),
        Some(Value::String(proxy)) if proxy == "ENABLE" => Ok(()),
        Some(_) => Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, proxyData can only be ENABLE.")),
    }
}

/// push-type 1 (card refresh): `formId`, an integer from 0 to 2^31 − 1; `version` an integer,
/// `formData` an object, `moduleName`, `abilityName` and `formName` strings, when given.
fn check_form_payload(payload: &Map<String, Value>) -> Result<(), Refusal> {
    let illegal = |tips: &str| refuse(code::ILLEGAL_PAYLOAD, format!("Illegal payload, {tips}."));
    match payload.get("formId").and_then(Value::as_i64) {
        Some(id) if (0..=MAX_FORM_ID).contains(&id) => {}
        _ => return Err(illegal("formId must be an integer from 0 to 2147483647")),
    }
    if payload.get("version").is_some_and(|v| !v.is_i64()) {
        return Err(illegal("version must be an integer"));
    }
    if payload.get("formData").is_some_and(|v| !v.is_object()) {
        return Err(illegal("formData must be an object"));
    }
    for field in ["moduleName", "abilityName", "formName"] {
        if payload.get(field).is_some_and(|v| !v.is_string()) {
            return Err(illegal(&format!("{field} must be a string")));
        }
    }
    Ok(())
}

/// push-types 7 (Live View) and 9 (location): the guide documents no body for them, so the
/// emulator asks only for a payload that is not empty.
fn check_undocumented_payload(payload: &Map<String, Value>) -> Result<(), Refusal> {
    if payload.is_empty() {
        return Err(refuse(code::ILLEGAL_PAYLOAD, "Illegal payload, payload is empty."));
    }
    Ok(())
}

/// A notification (push-types 0 and 2): a known category, a title, a body and a click action.
fn check_notification(payload: &Map<String, Value>) -> Result<(), Refusal> {
    let illegal = |tips: &str| refuse(code::ILLEGAL_PAYLOAD, format!("Illegal payload, {tips}."));
    let Some(Value::Object(notification)) = payload.get("notification") else {
        return Err(illegal("notification is required"));
    };
    match notification.get("category") {
        Some(Value::String(c)) if CATEGORIES.contains(&c.as_str()) => {}
        _ => return Err(illegal("category is not a known notification category")),
    }
    for field in ["title", "body"] {
        match notification.get(field) {
            Some(Value::String(text)) if !text.trim().is_empty() => {}
            _ => return Err(illegal(&format!("{field} is required"))),
        }
    }
    let action = notification.get("clickAction").and_then(|a| a.get("actionType")).and_then(Value::as_i64);
    if !matches!(action, Some(0 | 1)) {
        return Err(illegal("clickAction.actionType must be 0 or 1"));
    }
    match notification.get("appMessageId") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(illegal("appMessageId must be a string")),
    }
}
