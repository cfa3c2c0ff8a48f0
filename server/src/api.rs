//! The HTTP API: the device side (installations, call status, answer, decline)
//! with the app user's bearer token, the app backend side (ring, cancel, call details) with an
//! API key, plus `/healthz`, `/metrics` and `/openapi.json`.
//!
//! Every error is `{"error": {"code", "message"}}` with its HTTP status. An identity only ever
//! sees its own installations and the calls it is a callee of; anything else is "not found".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use callpush_proto::api::{
    CallActionBody, CallStatus, DeviceKeyJwk, ErrorBody, ErrorDetail, InstallationBody, InstallationResponse,
    NotificationsBody, SigningKey, StatusView, VerificationState, VerifyBody,
};
use callpush_proto::ids::{CALL_ID, INSTALLATION_ID};
use callpush_proto::model::{ApnsEnvironment, Caller, CancelReason, Platform, RegisterOptions};
use callpush_proto::registration::{installation_request, RegistrationError};
use callpush_proto::wire::DeviceKey;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Discriminator, OneOfBuilder, Schema};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::auth::{bearer, check_user_id, is_api_key, AuthError, DeviceAuth};
use crate::domain::{
    CallPhase, CallRecord, Delivery, DeliveryStatus, Installation, Notifications, NotificationsSource,
    TimelineEvent,
};
use crate::http_server::WaitLimiter;
use crate::metrics::Metrics;
use crate::receipts::{ReceiptError, Receipts, SignatureError, CALLBACK_HEADER};
use crate::rings::{NewCall, RingError, Rings};
use crate::store::{PendingNonce, Registered, Store, Verified};
use crate::time::now_ms;
use crate::verification::{new_nonce, NONCE_LIFETIME};

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Longest long-poll, seconds.
const MAX_WAIT: u64 = 60;

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The ring orchestrator.
    pub rings: Arc<Rings>,
    /// Device token verification.
    pub device_auth: DeviceAuth,
    /// App backend API keys.
    pub api_keys: Vec<String>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Long-polls held per user.
    pub waits: WaitLimiter,
    /// Sends verify pushes before a token moves between users.
    pub verifier: Arc<crate::verification::Verifier>,
    /// `registrar.max_installations_per_user`.
    pub max_installations_per_user: u32,
    /// Set when the instance starts shutting down; `/readyz` then fails.
    pub draining: Arc<Draining>,
    /// Push Kit delivery receipts, when `[providers.harmony.receipts]` is configured.
    pub receipts: Option<Arc<Receipts>>,
}

/// Whether this instance is draining: finishing its work before it stops, so it should get no
/// new traffic. Starts false.
#[derive(Debug, Default)]
pub struct Draining(std::sync::atomic::AtomicBool);

impl Draining {
    /// From now on `/readyz` answers 503 `draining`.
    pub fn set_draining(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`Draining::set_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

type Shared = Arc<AppState>;

/// The router with every route and the metrics and body-limit layers.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/installations/{installation_id}", put(put_installation).delete(delete_installation))
        .route("/v1/installations/{installation_id}/verify", post(verify_installation))
        .route("/v1/installations/{installation_id}/notifications", put(put_notifications))
        .route("/v1/users/{user_id}/installations", delete(delete_user_installations))
        .route(
            "/v1/receipts/harmony",
            post(harmony_receipts).layer(axum::extract::DefaultBodyLimit::max(crate::receipts::MAX_BODY)),
        )
        .route("/v1/calls", post(create_call))
        .route("/v1/calls/{call_id}", get(get_call))
        .route("/v1/calls/{call_id}/answer", post(answer_call))
        .route("/v1/calls/{call_id}/decline", post(decline_call))
        .route("/v1/calls/{call_id}/cancel", post(cancel_call))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route(WELL_KNOWN_KEYS, get(signing_keys))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::http_server::observe))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

// ---- errors ----

/// An API error: status, stable code, message, and for call conflicts the call as it is.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    call: Option<Box<CallStatus>>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), call: None }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail { code: self.code.into(), message: self.message },
                call: self.call.map(|call| *call),
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "storage is unavailable; retry")
    }
}

impl From<RingError> for ApiError {
    fn from(e: RingError) -> Self {
        match e {
            RingError::Invalid(m) => ApiError::invalid(m),
            RingError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such call"),
            RingError::Exists => {
                ApiError::new(StatusCode::CONFLICT, "call_exists", "a call with this id already exists")
            }
            RingError::NotRinging(call) => ApiError {
                status: StatusCode::CONFLICT,
                code: "call_not_ringing",
                message: format!("the call is {}", call.state.as_str()),
                call: Some(Box::new(call_status(&call))),
            },
            RingError::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the installation does not belong to this user",
            ),
            RingError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            RingError::Store(e) => e.into(),
        }
    }
}

/// A JSON body whose rejections are API errors.
pub struct ApiJson<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("bodies are limited to {MAX_BODY} bytes"),
            )),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// Path parameters whose rejections (say, a segment that is not UTF-8 once decoded) are API
/// errors, not axum's plain text.
pub struct ApiPath<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(e) if e.status().is_server_error() => {
                Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.body_text()))
            }
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// A query string whose rejections are API errors, not axum's plain text.
pub struct ApiQuery<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

// ---- identities ----

/// The app user a device token names.
pub struct Device(String);

impl FromRequestParts<Shared> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Self::Rejection> {
        let token = bearer(parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
        Ok(Device(state.device_auth.authenticate(token).await?))
    }
}

/// An app backend holding an API key.
pub struct Backend;

impl FromRequestParts<Shared> for Backend {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Self::Rejection> {
        let key = bearer(parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
        if is_api_key(&state.api_keys, key) {
            Ok(Backend)
        } else {
            Err(AuthError::Invalid("unknown API key".into()).into())
        }
    }
}

/// A device or an app backend: the call-status route serves both.
pub enum Identity {
    /// A device of this user.
    Device(String),
    /// An app backend.
    Backend,
}

impl FromRequestParts<Shared> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Self::Rejection> {
        let token = bearer(parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
        if is_api_key(&state.api_keys, token) {
            return Ok(Identity::Backend);
        }
        Ok(Identity::Device(state.device_auth.authenticate(token).await?))
    }
}

/// A path segment that must be a valid id, checked before any lookup.
fn installation_id(id: &str) -> Result<(), ApiError> {
    if INSTALLATION_ID.accepts(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(INSTALLATION_ID.refusal()))
    }
}

fn call_id(id: &str) -> Result<(), ApiError> {
    if CALL_ID.accepts(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(CALL_ID.refusal()))
    }
}

// ---- wire types ----

/// What `check_user_id` accepts: 1 to 128 printable ASCII characters, no spaces.
const USER_ID_PATTERN: &str = "^[!-~]{1,128}$";

/// `to`: 1 to 32 user ids.
fn callees_schema() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(user_id_schema())
        .min_items(Some(1))
        .max_items(Some(crate::rings::MAX_CALLEES))
        .description(Some("Callee user ids (1 to 32)."))
        .into()
}

fn user_id_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(USER_ID_PATTERN))
        .build()
}

/// `data`: string values under keys of 1 to 64 bytes.
fn data_schema() -> Schema {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(
            ObjectBuilder::new().schema_type(Type::String).into(),
        ))))
        .property_names(Some(
            ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(64)),
        ))
        .max_properties(Some(crate::rings::MAX_DATA_ENTRIES))
        .description(Some(
            "App data, copied into every push: at most 32 entries, keys of 1 to 64 bytes, 2048 bytes in all \
             (413 beyond).",
        ))
        .into()
}

/// The lease of `inst` as the API answers it, with what the server knows of its notifications.
fn lease(
    inst: &Installation,
    state: &AppState,
    now: i64,
    verification: Option<VerificationState>,
) -> InstallationLease {
    InstallationLease {
        lease: InstallationResponse {
            installation_id: inst.installation_id.clone(),
            user_id: inst.user_id.clone(),
            expires_at_ms: inst.expires_at,
            server_time_ms: now,
            signing_keys: state.rings.published_keys(),
            alert_token: inst.alert_token.clone(),
            verification,
            device_key_id: inst.device_key_id.clone(),
        },
        notifications: inst.notifications.map(NotificationsState::from),
    }
}

/// The registration lease (`PUT` and `POST …/verify` answers): the device API's
/// `InstallationResponse`, plus whether the app's notifications are on as last reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallationLease {
    #[serde(flatten)]
    lease: InstallationResponse,
    /// The app's notification permission on the device as last reported (by the device, or by a
    /// Push Kit receipt saying a message could not show); absent until reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    notifications: Option<NotificationsState>,
}

/// Whether an installation's notifications are enabled, who said so and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsState {
    /// Enabled or not. Off: missed-call notifications cannot show on the device.
    enabled: bool,
    /// `device` (the SDK's report) or `push_kit_receipt` (a Push Kit receipt with result 6).
    #[schema(pattern = "^(device|push_kit_receipt)$")]
    source: String,
    /// When, unix milliseconds: the device's report arrived, or the device reported the receipt.
    reported_at_ms: i64,
}

impl From<Notifications> for NotificationsState {
    fn from(n: Notifications) -> Self {
        NotificationsState { enabled: n.enabled, source: n.source.as_str().into(), reported_at_ms: n.at }
    }
}

/// `POST /v1/calls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCallBody {
    /// The call id; made by the server if absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    call_id: Option<String>,
    /// The caller.
    from: CallerBody,
    /// Callee user ids (1 to 32).
    #[schema(schema_with = callees_schema)]
    to: Vec<String>,
    /// Video offered.
    #[serde(default)]
    video: bool,
    /// Ring time, seconds: at least 5 and at most the server's `ring.max_ring_seconds` (default 30,
    /// at most 120).
    #[serde(default)]
    #[schema(minimum = 5, maximum = 120)]
    ring_seconds: Option<u32>,
    /// App data, copied into every push.
    #[serde(default)]
    #[schema(schema_with = data_schema)]
    data: BTreeMap<String, String>,
}

/// The caller.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerBody {
    /// Caller user id.
    #[schema(pattern = "^[!-~]{1,128}$")]
    id: String,
    /// Display name: at most 256 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 256, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    name: Option<String>,
}

/// A call just created.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallCreated {
    /// The call.
    call_id: String,
    /// `ringing`.
    state: CallPhase,
    /// Ring deadline, unix milliseconds.
    expires_at_ms: i64,
    /// One per live device of the callees.
    deliveries: Vec<DeliverySummary>,
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliverySummary {
    delivery_id: String,
    installation_id: String,
    user_id: String,
    platform: String,
    /// `ring`, `cancel` or `missed`.
    kind: String,
    /// `pending`, `sending`, `delivered`, `failed`, `skipped`, or `unknown` (its instance stopped
    /// before recording a result and it was too late to send again: it may have been sent).
    status: String,
    attempts: i64,
    /// The last outcome class.
    outcome: Option<String>,
    detail: Option<String>,
}

/// `call` as devices see it.
fn call_status(call: &CallRecord) -> CallStatus {
    CallStatus {
        view: StatusView::Status,
        call_id: call.call_id.clone(),
        state: call.state,
        reason: call.reason,
        answered_by: call.answered_by.clone(),
        expires_at_ms: call.expires_at,
        server_time_ms: now_ms(),
    }
}

/// The one value of [`CallDetail::view`].
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailView {
    /// A [`CallDetail`].
    Detail,
}

fn detail_view_schema() -> utoipa::openapi::schema::Object {
    callpush_proto::api::view_schema(
        "detail",
        "Always `detail`: tells an API key's `CallDetail` from a device's `CallStatus`.",
    )
}

/// A call with its devices and timeline, for the app backend (`GET /v1/calls/{id}` with an API
/// key): the fields of `CallStatus` and more.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDetail {
    /// Always `detail`: what `GET /v1/calls/{id}` answers is told apart by this field (the
    /// OpenAPI discriminator), `detail` here and `status` in a device's `CallStatus`.
    #[schema(schema_with = detail_view_schema)]
    view: DetailView,
    /// The call.
    call_id: String,
    /// Where the call is.
    state: CallPhase,
    /// For `cancelled` and `missed`: why.
    reason: Option<CancelReason>,
    /// For `answered`: the installation that answered.
    answered_by: Option<String>,
    /// Ring deadline, unix milliseconds.
    expires_at_ms: i64,
    /// The server's clock when it answered, unix milliseconds.
    server_time_ms: i64,
    /// The caller's user id.
    caller_id: String,
    /// The caller's display name, as the pushes carry it.
    caller_name: Option<String>,
    /// Video offered.
    video: bool,
    /// Callees and whether each declined.
    callees: Vec<CalleeStatus>,
    /// Created, unix milliseconds.
    created_at_ms: i64,
    /// When it stopped ringing, unix milliseconds; null while it rings.
    ended_at_ms: Option<i64>,
    /// One per push: rings, cancels and missed-call notifications.
    deliveries: Vec<DeliverySummary>,
    /// Every state change and delivery attempt, oldest first.
    timeline: Vec<TimelineEntry>,
}

/// A callee.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalleeStatus {
    user_id: String,
    declined: bool,
}

/// One timeline entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// When, unix milliseconds.
    at_ms: i64,
    delivery_id: Option<String>,
    event: String,
    detail: Option<String>,
}

/// `POST /v1/calls/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why (default `caller_cancelled`).
    #[serde(default)]
    reason: Option<CancelReason>,
}

/// `?wait=` of the call-status long-poll.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Hold the request up to this many seconds until the call changes; more than 60 counts as 60
    /// (the SDK asks for up to 120). Devices only: an API key's read is answered at once.
    #[serde(default)]
    #[param(value_type = u64, format = "uint64", required = false, minimum = 0, example = 0)]
    wait: Option<u64>,
}

/// `GET /v1/calls/{call_id}`: a device gets a [`CallStatus`] (`view: status`), an API key a
/// [`CallDetail`] (`view: detail`). One of the two, told apart by `view` (the discriminator), which
/// each states as a one-value enum: a generated client picks the right one whether it reads the
/// discriminator or tries each in turn.
pub enum CallView {}

impl PartialSchema for CallView {
    fn schema() -> RefOr<Schema> {
        let status = "#/components/schemas/CallStatus";
        let detail = "#/components/schemas/CallDetail";
        OneOfBuilder::new()
            .item(Ref::new(status))
            .item(Ref::new(detail))
            .discriminator(Some(Discriminator::with_mapping(
                "view",
                [("status", status), ("detail", detail)],
            )))
            .description(Some(
                "`view: status` (CallStatus) for a device token, `view: detail` (CallDetail) for an API key",
            ))
            .into()
    }
}

impl ToSchema for CallView {}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: String,
}

/// The error shape under `description`, as a reusable response, with the header the response
/// `name` carries (`WWW-Authenticate` for `Unauthorized`, `Retry-After` for `TooManyWaits`).
fn error_response(description: &str, name: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{HeaderBuilder, ObjectBuilder, Type};
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let response = ResponseBuilder::new().description(description).content("application/json", content);
    match name {
        "Unauthorized" => {
            let header = HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`Bearer`"))
                .build();
            response.header("WWW-Authenticate", header).build()
        }
        "TooManyWaits" => {
            let header = HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some("Seconds to wait before retrying"))
                .build();
            response.header("Retry-After", header).build()
        }
        _ => response.build(),
    }
}

/// The error responses routes share, each `{"error": {"code", "message"}}`.
macro_rules! error_responses {
    ($($name:ident = $description:literal;)*) => {$(
        #[doc = $description]
        enum $name {}

        impl<'s> utoipa::ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), error_response($description, stringify!($name)).into())
            }
        }
    )*};
}

error_responses! {
    BadRequest = "The request is invalid: a path, query or body value (`invalid_request`, `invalid_token`, `invalid_device_key`).";
    Unauthorized = "The bearer token or API key is missing or not valid; for provider callbacks, the signature is missing, wrong, too old or replayed (`unauthorized`).";
    Forbidden = "The installation does not belong to this user (`forbidden`), or a verification nonce is wrong, expired or used (`verification_failed`).";
    NotFound = "No such installation or call for this identity (`not_found`).";
    Conflict = "The state does not allow it (`too_many_installations`, `call_exists`, `call_not_ringing` with `call`).";
    PayloadTooLarge = "The body, the app data or the push it makes is too large (`payload_too_large`).";
    UnsupportedMediaType = "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).";
    StorageUnavailable = "The database does not answer; retry (`storage_unavailable`).";
    TooManyWaits = "This user holds as many long-polls as the server allows; retry after `Retry-After` seconds (`too_many_waits`).";
    NotReady = "Storage does not answer (`storage_unavailable`) or the instance is draining (`draining`).";
}

// ---- handlers ----

/// Registers or renews a device's push token; idempotent. A token another user's live
/// installation holds moves only once the device proves it holds it: the registration is kept
/// unverified (202, `verification: pending`), a verify push carrying a nonce goes to the token,
/// and the SDK sends the nonce back to `/verify`; until then the other installation rings.
/// With a `device_key` (wire v2) every push to the installation — rings, cancels, the verify
/// push — is encrypted to it, missed-call notifications name nobody, and the lease carries its
/// `device_key_id`; registering without one clears it (wire v1). A key that is not a usable
/// X25519 public key is `400 invalid_device_key`.
#[utoipa::path(put, path = "/v1/installations/{installation_id}", tag = "device",
    params(("installation_id" = String, Path, description = "The device's installation id, scoped to the user",
            pattern = "^[A-Za-z0-9._-]{1,64}$", example = "example-installation")),
    request_body(content = InstallationBody,
                 example = json!({"platform": "fcm", "token": "fcm-token-0123456789abcdef", "ttl_seconds": 86400})),
    responses(
        (status = 200, body = InstallationLease, description = "The lease; the installation rings",
         links(("DeleteInstallation" = (operation_id = "delete_installation",
                parameters(("installation_id" = "$request.path.installation_id")))))),
        (status = 202, body = InstallationLease,
         description = "The lease, with `verification: pending`: another user's installation holds the token; \
                        this one rings once the device answers the verify push (`verify_installation`)",
         links(("VerifyInstallation" = (operation_id = "verify_installation",
                parameters(("installation_id" = "$request.path.installation_id")))))),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 409, response = Conflict), (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = StorageUnavailable)),
    security(("device_token" = [])))]
async fn put_installation(
    State(state): State<Shared>,
    Device(user): Device,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<InstallationLease>), ApiError> {
    let (body, device_key) = installation_body(body)?;
    installation_id(&id)?;
    if body.installation_id.as_deref().is_some_and(|b| b != id) {
        return Err(ApiError::invalid("installation_id in the body differs from the path"));
    }
    let platform = body.platform;
    if platform == Platform::Apns && body.apns_environment.is_none() {
        let e = RegistrationError::InvalidToken(callpush_proto::TokenError::MissingApnsEnvironment);
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", e.to_string()));
    }
    let opts = RegisterOptions {
        installation_id: id.clone(),
        ttl_seconds: body.ttl_seconds.unwrap_or(callpush_proto::model::DEFAULT_TTL_SECONDS),
        apns_environment: body.apns_environment,
        app_id: body.app_id,
        apns_alert_token: body.alert_token,
    };
    let environment = opts.apns_environment;
    let request = installation_request(platform, &body.token, &opts, environment).map_err(|e| match e {
        RegistrationError::InvalidToken(token) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", token_message(&token))
        }
        other @ RegistrationError::InvalidArgument(_) => ApiError::invalid(other.to_string()),
    })?;
    let now = now_ms();
    let installation = Installation {
        installation_id: id.clone(),
        user_id: user.clone(),
        platform,
        token: request.token,
        apns_environment: request.apns_environment,
        app_id: request.app_id,
        alert_token: request.apns_alert_token,
        ttl_seconds: i64::from(request.ttl_seconds),
        registered_at: now,
        expires_at: now + i64::from(request.ttl_seconds) * 1000,
        notifications: None,
        // The key id is its thumbprint; `x` is kept as the key encodes it.
        device_key_id: device_key.as_ref().map(|k| k.kid().to_owned()),
        device_key: device_key.map(|k| k.jwk().x),
    };
    let nonce = new_nonce();
    let nonce_expires_at = now + NONCE_LIFETIME;
    let limit = state.max_installations_per_user;
    let registered = state
        .store
        .put_installation(&installation, limit, &PendingNonce::new(&nonce, nonce_expires_at))
        .await?;
    // What is known of its notifications survives a renewal.
    let installation = match registered {
        Registered::TooMany => installation,
        _ => Installation {
            notifications: state.store.installation(&user, &id).await?.and_then(|i| i.notifications),
            ..installation
        },
    };
    match registered {
        Registered::Live => Ok((StatusCode::OK, Json(lease(&installation, &state, now, None)))),
        Registered::Pending { nonce_stored } => {
            if nonce_stored {
                tracing::info!(%user, installation = %id, %platform, token = %crate::auth::redact(&installation.token),
                               "another user's installation holds this token; sent a verify push before moving it");
                state.verifier.send(&installation, &nonce, nonce_expires_at, now);
            }
            let lease = lease(&installation, &state, now, Some(VerificationState::Pending));
            Ok((StatusCode::ACCEPTED, Json(lease)))
        }
        Registered::TooMany => Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_installations",
            format!(
                "this user already has {}, the most this server allows; unregister devices no longer \
                 used (DELETE /v1/installations/{{id}}) or wait for their leases to lapse",
                count(u64::from(limit), "installation", "installations")
            ),
        )),
    }
}

/// The device answers a verify push with its nonce, proving it holds the token its pending
/// registration names: the token moves here from the other user's installation, which is
/// removed, and this installation rings. A nonce is good once, for five minutes.
#[utoipa::path(post, path = "/v1/installations/{installation_id}/verify", tag = "device",
    params(("installation_id" = String, Path, description = "The device's installation id, scoped to the user",
            pattern = "^[A-Za-z0-9._-]{1,64}$", example = "example-installation")),
    request_body(content = VerifyBody, example = json!({"nonce": "2dC6kPq3u0Xw9mZbVYyB1c4JfN7sTgHrLaeQvW5oIx8"})),
    responses((status = 200, body = InstallationLease, description = "The lease; the installation rings"),
              (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 413, response = PayloadTooLarge), (status = 415, response = UnsupportedMediaType),
              (status = 503, response = StorageUnavailable)),
    security(("device_token" = [])))]
async fn verify_installation(
    State(state): State<Shared>,
    Device(user): Device,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<InstallationLease>, ApiError> {
    installation_id(&id)?;
    let nonce = body.nonce;
    if nonce.is_empty()
        || nonce.len() > 128
        || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::invalid("nonce must be 1 to 128 bytes of base64url"));
    }
    let now = now_ms();
    match state.store.verify_installation(&user, &id, &nonce, now).await? {
        Verified::Moved { installation, moves } => {
            for m in &moves {
                tracing::info!(platform = %m.platform, token = %m.token, from_user = %m.from_user_id,
                               from_installation = %m.from_installation, to_user = %m.to_user_id,
                               to_installation = %m.to_installation,
                               "the device proved it holds the token: moved it to this installation");
            }
            Ok(Json(lease(&installation, &state, now, None)))
        }
        Verified::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such installation")),
        Verified::Refused(why) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "verification_failed", why.to_string()))
        }
    }
}

/// The body of `PUT /v1/installations/{id}` with its `device_key` read apart and checked, so
/// that any bad key — not a JWK at all included, whose serde error would quote it — is
/// `400 invalid_device_key`.
fn installation_body(mut body: serde_json::Value) -> Result<(InstallationBody, Option<DeviceKey>), ApiError> {
    let key = body.as_object_mut().and_then(|fields| fields.remove("device_key"));
    let rest = serde_json::to_vec(&body).unwrap_or_default();
    let Json(body) =
        Json::<InstallationBody>::from_bytes(&rest).map_err(|e| ApiError::invalid(e.body_text()))?;
    let key = match key {
        None | Some(serde_json::Value::Null) => None,
        Some(key) => {
            let jwk = serde_json::from_value(key).map_err(|_| {
                invalid_device_key(
                    "must be a public JWK: {\"kty\": \"OKP\", \"crv\": \"X25519\", \"x\": \"…\"}",
                )
            })?;
            Some(checked_device_key(&jwk)?)
        }
    };
    Ok((body, key))
}

/// `400 invalid_device_key`, saying `why`.
fn invalid_device_key(why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_device_key", format!("device_key: {why}"))
}

/// The device key a registration names, checked (`DeviceKey::from_jwk`): a public X25519 JWK
/// whose `x` is 32 bytes and not a small-order point. A bad one is `400 invalid_device_key`,
/// whose message says what is wrong without repeating anything of the key.
fn checked_device_key(jwk: &callpush_proto::model::Jwk) -> Result<DeviceKey, ApiError> {
    let invalid = invalid_device_key;
    if jwk.kty != "OKP" || jwk.crv != callpush_proto::wire::CRV_X25519 {
        return Err(invalid("must be an X25519 public key (a JWK with kty OKP and crv X25519)"));
    }
    DeviceKey::from_jwk(jwk).map_err(|e| match e {
        // Its messages name the fault (`x` not base64url, its length, a small-order point, a
        // wrong alg or use), never the key's bytes.
        callpush_proto::error::WireError::InvalidKey(why) => invalid(&why),
        _ => invalid("is not a usable X25519 public key"),
    })
}

/// `n` and the noun for it: "1 installation", "2 installations".
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A refused token, described with the API's field names (`alert_token`, not the SDK's
/// `apns_alert_token`).
fn token_message(e: &callpush_proto::TokenError) -> String {
    use callpush_proto::TokenError::{AlertTokenIsVoipToken, AlertTokenNotApns, BadAlertToken};
    let message = match e {
        BadAlertToken(inner) => format!("alert_token: {inner}"),
        AlertTokenNotApns { platform } => format!("alert_token is for APNs only, not {platform}"),
        AlertTokenIsVoipToken => {
            "alert_token equals token: give the device token of registerForRemoteNotifications, \
             not the PushKit VoIP token"
                .to_owned()
        }
        other => other.to_string(),
    };
    format!("invalid push token: {message}")
}

/// Withdraws an installation: its token is never rung again.
#[utoipa::path(delete, path = "/v1/installations/{installation_id}", tag = "device",
    params(("installation_id" = String, Path, description = "The device's installation id",
            pattern = "^[A-Za-z0-9._-]{1,64}$", example = "example-old-installation")),
    responses((status = 204, description = "Withdrawn"), (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized), (status = 404, response = NotFound),
              (status = 503, response = StorageUnavailable)),
    security(("device_token" = [])))]
async fn delete_installation(
    State(state): State<Shared>,
    Device(user): Device,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    installation_id(&id)?;
    if state.store.delete_installation(&id, &user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such installation"))
    }
}

/// The device reports whether the app's notifications are enabled (HarmonyOS keeps them off until
/// the user allows them). With them off, missed-call notifications cannot show: the server
/// records it on the installation and puts it on the timeline of every call that rings it.
#[utoipa::path(put, path = "/v1/installations/{installation_id}/notifications", tag = "device",
    params(("installation_id" = String, Path, description = "The device's installation id, scoped to the user",
            pattern = "^[A-Za-z0-9._-]{1,64}$", example = "example-installation")),
    request_body(content = NotificationsBody, example = json!({"enabled": false})),
    responses((status = 204, description = "Recorded"), (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized), (status = 404, response = NotFound),
              (status = 413, response = PayloadTooLarge), (status = 415, response = UnsupportedMediaType),
              (status = 503, response = StorageUnavailable)),
    security(("device_token" = [])))]
async fn put_notifications(
    State(state): State<Shared>,
    Device(user): Device,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NotificationsBody>,
) -> Result<StatusCode, ApiError> {
    installation_id(&id)?;
    let report = Notifications { enabled: body.enabled, source: NotificationsSource::Device, at: now_ms() };
    match state.store.set_notifications(&user, &id, report).await? {
        Some(_) => {
            tracing::info!(%user, installation = %id, enabled = body.enabled, "the device reported its notification permission");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such installation")),
    }
}

/// `DELETE /v1/users/{user_id}/installations`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedInstallations {
    /// How many installations were removed (0 for a user without any).
    removed: u64,
}

/// The app backend removes every installation of a user (the account was deleted, or signed out
/// everywhere): none of their devices rings again until it registers anew.
#[utoipa::path(delete, path = "/v1/users/{user_id}/installations", tag = "backend",
    params(("user_id" = String, Path, description = "The user id", pattern = "^[!-~]{1,128}$",
            example = "example-departed-user")),
    responses((status = 200, body = RemovedInstallations), (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized), (status = 503, response = StorageUnavailable)),
    security(("api_key" = [])))]
async fn delete_user_installations(
    State(state): State<Shared>,
    _: Backend,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<RemovedInstallations>, ApiError> {
    check_user_id(&user).map_err(|_| {
        ApiError::invalid("user_id must be 1 to 128 printable ASCII characters without spaces")
    })?;
    let removed = state.store.delete_user_installations(&user).await?;
    tracing::info!(%user, removed, "the app backend removed every installation of a user");
    Ok(Json(RemovedInstallations { removed }))
}

/// A Push Kit delivery receipt request (V2), as documented: one status per message and token.
/// (The OpenAPI description; `receipts::parse_body` reads and checks the body.)
#[derive(Debug, Serialize, ToSchema)]
pub struct HarmonyReceiptBody {
    /// At most 1000.
    #[schema(max_items = 1000)]
    statuses: Vec<HarmonyReceiptStatus>,
}

/// One status of a Push Kit receipt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarmonyReceiptStatus {
    /// The message's `biTag`: callpush sends the call id.
    #[schema(max_length = 64)]
    bi_tag: Option<String>,
    /// The message's push-type (10 in-app call, 0 notification).
    push_type: Option<i64>,
    /// The Push Token it went to.
    #[schema(min_length = 1, max_length = 4096)]
    token: String,
    /// Push Kit's request id.
    #[schema(max_length = 256)]
    request_id: Option<String>,
    /// The app.
    #[schema(max_length = 256)]
    app_package_name: Option<String>,
    /// The delivery result (absent for other kinds of status, which are only counted).
    delivery_status: Option<HarmonyDeliveryStatus>,
}

/// What became of one message on one device.
#[derive(Debug, Serialize, ToSchema)]
pub struct HarmonyDeliveryStatus {
    /// 0 delivered; 2, 5, 10 dead token (the installation is pruned); 6 not shown, notifications
    /// off; others recorded.
    result: i64,
    /// When, unix ms.
    timestamp: Option<i64>,
}

/// The answer Push Kit expects from a receipt server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptAnswer {
    /// `0`.
    code: String,
    /// `success`.
    message: String,
}

/// Push Kit posts delivery receipts here (configure this URL as the receipt address in
/// AppGallery Connect, version V2). Authenticated by the signature in `X-HUAWEI-CALLBACK-ID`
/// made with `[providers.harmony.receipts]` `user_name` and `secret`, not by an API key.
/// Result 0 puts "delivered to the device" on the call's timeline; 2, 5 and 10 prune the
/// installation holding the token; 6 marks it "notifications off"; every result is counted.
#[utoipa::path(post, path = "/v1/receipts/harmony", tag = "providers", tags = ["operations"],
    params(("X-HUAWEI-CALLBACK-ID" = String, Header,
            description = "`timestamp=<unix ms>;nonce=<uuid>;value=<Base64(HMAC-SHA256(key, timestamp + nonce + userName))>`")),
    request_body(content = HarmonyReceiptBody,
                 example = json!({"statuses": [{"biTag": "example-call", "pushType": 10, "token": "MAMzLg0123456789aZW",
                                                "requestId": "169802171701", "appPackageName": "com.example.app",
                                                "deliveryStatus": {"result": 0, "timestamp": 1767225600000_i64}}]})),
    responses((status = 200, body = ReceiptAnswer, example = json!({"code": "0", "message": "success"})),
              (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized),
              (status = 404, response = NotFound),
              (status = 413, response = PayloadTooLarge),
              (status = 503, response = StorageUnavailable)))]
async fn harmony_receipts(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ReceiptAnswer>, ApiError> {
    let Some(receipts) = &state.receipts else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Push Kit receipts are not configured on this server ([providers.harmony.receipts])",
        ));
    };
    let body = body.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("receipt bodies are limited to {} bytes", crate::receipts::MAX_BODY),
        )
    })?;
    let header = match headers.get(CALLBACK_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => Some(text),
        Some(Err(_)) => Some(""),
    };
    match receipts.handle(header, &body, now_ms()).await {
        Ok(_) => Ok(Json(ReceiptAnswer { code: "0".into(), message: "success".into() })),
        Err(ReceiptError::Unsigned(e)) => {
            if !matches!(e, SignatureError::Missing) {
                tracing::warn!(error = %e, "refused a Push Kit receipt request");
            }
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))
        }
        Err(ReceiptError::Body(e)) => Err(ApiError::invalid(e.to_string())),
        Err(ReceiptError::Store(e)) => Err(e.into()),
    }
}

/// Rings the callees' devices.
#[utoipa::path(post, path = "/v1/calls", tag = "backend",
    request_body(content = CreateCallBody,
                 example = json!({"from": {"id": "alice", "name": "Alice"}, "to": ["bob"], "video": false,
                                  "ring_seconds": 30, "data": {"room": "r-42"}})),
    responses(
        (status = 202, body = CallCreated, description = "Ringing",
         links(("GetCall" = (operation_id = "get_call", parameters(("call_id" = "$response.body#/call_id")))),
               ("CancelCall" = (operation_id = "cancel_call",
                                parameters(("call_id" = "$response.body#/call_id")))))),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 409, response = Conflict), (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = StorageUnavailable)),
    security(("api_key" = [])))]
async fn create_call(
    State(state): State<Shared>,
    _: Backend,
    ApiJson(body): ApiJson<CreateCallBody>,
) -> Result<(StatusCode, Json<CallCreated>), ApiError> {
    let request = NewCall {
        call_id: body.call_id,
        from: Caller { id: body.from.id, name: body.from.name },
        to: body.to,
        video: body.video,
        ring_seconds: body.ring_seconds,
        data: body.data,
    };
    let (call, deliveries) = state.rings.create(request, now_ms()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CallCreated {
            call_id: call.call_id,
            state: call.state,
            expires_at_ms: call.expires_at,
            deliveries: deliveries.iter().map(summary).collect(),
        }),
    ))
}

/// A call: its state for a callee's device (`view: status`, with `?wait=` to long-poll), or its
/// details, deliveries and timeline for the app backend (`view: detail`).
#[utoipa::path(get, path = "/v1/calls/{call_id}", tag = "device", tags = ["backend"],
    params(("call_id" = String, Path, description = "The call id", pattern = "^[A-Za-z0-9._:-]{1,64}$",
             example = "example-call"), WaitQuery),
    responses((status = 200, body = CallView,
               description = "A device token gets the call's `CallStatus` (`view: status`); an API key gets its \
                              `CallDetail` (`view: detail`)"),
              (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
              (status = 404, response = NotFound), (status = 429, response = TooManyWaits),
              (status = 503, response = StorageUnavailable)),
    security(("device_token" = []), ("api_key" = [])))]
async fn get_call(
    State(state): State<Shared>,
    who: Identity,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    call_id(&id)?;
    match who {
        Identity::Device(user) => {
            let call = state.rings.call_for_callee(&id, &user).await?;
            let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT));
            let call = if call.state == CallPhase::Ringing && !wait.is_zero() {
                let Some(_waiting) = state.waits.try_acquire(&user) else {
                    return Ok(too_many_waits());
                };
                state.rings.wait_for_change(&id, call.version, wait).await?
            } else {
                call
            };
            Ok(Json(call_status(&call)).into_response())
        }
        Identity::Backend => {
            let call = state
                .store
                .call(&id)
                .await?
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such call"))?;
            let deliveries = state.store.deliveries(&id).await?;
            let timeline = state.store.events(&id).await?;
            let callees = state.store.callees(&id).await?;
            Ok(Json(CallDetail {
                view: DetailView::Detail,
                call_id: call.call_id,
                state: call.state,
                reason: call.reason,
                answered_by: call.answered_by,
                expires_at_ms: call.expires_at,
                server_time_ms: now_ms(),
                caller_id: call.caller_id,
                caller_name: call.caller_name,
                video: call.video,
                callees: callees
                    .into_iter()
                    .map(|(user_id, declined)| CalleeStatus { user_id, declined })
                    .collect(),
                created_at_ms: call.created_at,
                ended_at_ms: call.ended_at,
                timeline: timeline_of(timeline, &deliveries),
                deliveries: deliveries.iter().map(summary).collect(),
            })
            .into_response())
        }
    }
}

/// `429 too_many_waits`: the user holds `http.max_waits_per_user` long-polls already.
fn too_many_waits() -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_waits",
        "this user holds as many long-polls as allowed; retry when one ends",
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// A callee's device answers; the call's other devices stop ringing.
#[utoipa::path(post, path = "/v1/calls/{call_id}/answer", tag = "device",
    params(("call_id" = String, Path, description = "The call id", pattern = "^[A-Za-z0-9._:-]{1,64}$",
             example = "example-call")),
    request_body(content = CallActionBody, example = json!({"installation_id": "example-installation"})),
    responses((status = 200, body = CallStatus), (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
              (status = 404, response = NotFound), (status = 409, response = Conflict),
              (status = 413, response = PayloadTooLarge), (status = 415, response = UnsupportedMediaType),
              (status = 503, response = StorageUnavailable)),
    security(("device_token" = [])))]
async fn answer_call(
    State(state): State<Shared>,
    Device(user): Device,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CallActionBody>,
) -> Result<Json<CallStatus>, ApiError> {
    call_id(&id)?;
    installation_id(&body.installation_id)?;
    let call = state.rings.answer(&id, &user, &body.installation_id, now_ms()).await?;
    Ok(Json(call_status(&call)))
}

/// A callee's device declines; once every callee declined, the call is declined.
#[utoipa::path(post, path = "/v1/calls/{call_id}/decline", tag = "device",
    params(("call_id" = String, Path, description = "The call id", pattern = "^[A-Za-z0-9._:-]{1,64}$",
             example = "example-call")),
    request_body(content = CallActionBody, example = json!({"installation_id": "example-installation"})),
    responses((status = 200, body = CallStatus), (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
              (status = 404, response = NotFound), (status = 409, response = Conflict),
              (status = 413, response = PayloadTooLarge), (status = 415, response = UnsupportedMediaType),
              (status = 503, response = StorageUnavailable)),
    security(("device_token" = [])))]
async fn decline_call(
    State(state): State<Shared>,
    Device(user): Device,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CallActionBody>,
) -> Result<Json<CallStatus>, ApiError> {
    call_id(&id)?;
    installation_id(&body.installation_id)?;
    let call = state.rings.decline(&id, &user, &body.installation_id, now_ms()).await?;
    Ok(Json(call_status(&call)))
}

/// The app backend cancels a ringing call.
#[utoipa::path(post, path = "/v1/calls/{call_id}/cancel", tag = "backend",
    params(("call_id" = String, Path, description = "The call id", pattern = "^[A-Za-z0-9._:-]{1,64}$",
             example = "example-call")),
    request_body(content = CancelBody, example = json!({"reason": "caller_cancelled"})),
    responses((status = 200, body = CallStatus), (status = 400, response = BadRequest),
              (status = 401, response = Unauthorized), (status = 404, response = NotFound),
              (status = 409, response = Conflict), (status = 413, response = PayloadTooLarge),
              (status = 415, response = UnsupportedMediaType), (status = 503, response = StorageUnavailable)),
    security(("api_key" = [])))]
async fn cancel_call(
    State(state): State<Shared>,
    _: Backend,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Json<CallStatus>, ApiError> {
    call_id(&id)?;
    let reason = body.reason.unwrap_or(CancelReason::CallerCancelled);
    let call = state.rings.cancel(&id, reason, now_ms()).await?;
    Ok(Json(call_status(&call)))
}

/// Liveness: the database takes writes (a recent committed write, else a probe write). A
/// failing check means restarting or replacing the instance may help.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health, description = "Alive: writes work"),
              (status = 503, response = StorageUnavailable)))]
async fn healthz(State(state): State<Shared>) -> Result<Json<Health>, ApiError> {
    state.store.check_writes(now_ms()).await?;
    Ok(Json(Health { status: "ok".into() }))
}

/// Readiness: the database answers reads and takes writes, and the instance is not draining.
/// A failing check means: send no new traffic here for now.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health, description = "Ready for traffic"),
              (status = 503, response = NotReady)))]
async fn readyz(State(state): State<Shared>) -> Result<Json<Health>, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this instance is shutting down",
        ));
    }
    state.store.check_reads_and_writes(now_ms()).await?;
    Ok(Json(Health { status: "ok".into() }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text")))]
async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.encode())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, body = Object, description = "OpenAPI 3.1")))]
async fn openapi() -> Json<serde_json::Value> {
    Json(document())
}

/// The OpenAPI document as served. utoipa 5.5 writes a link's `operationId`, `operationRef` and
/// `requestBody` in snake case; OpenAPI (and every tool following links) spells them in camel case.
pub fn document() -> serde_json::Value {
    fn camel_case_links(value: &mut serde_json::Value) {
        let Some(object) = value.as_object_mut() else { return };
        for (key, child) in object.iter_mut() {
            if key == "links" {
                for link in child.as_object_mut().into_iter().flat_map(|links| links.values_mut()) {
                    let Some(link) = link.as_object_mut() else { continue };
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(snake) {
                            link.insert(camel.into(), v);
                        }
                    }
                }
            } else {
                camel_case_links(child);
            }
        }
    }
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    camel_case_links(&mut doc);
    doc
}

/// The stored events plus one `delivery_delivered` entry per delivered push, oldest first.
fn timeline_of(events: Vec<TimelineEvent>, deliveries: &[Delivery]) -> Vec<TimelineEntry> {
    let mut timeline: Vec<TimelineEntry> = events
        .into_iter()
        .map(|e| TimelineEntry { at_ms: e.at, delivery_id: e.delivery_id, event: e.event, detail: e.detail })
        .chain(deliveries.iter().filter(|d| d.status == DeliveryStatus::Delivered).map(|d| TimelineEntry {
            at_ms: d.updated_at,
            delivery_id: Some(d.delivery_id.clone()),
            event: "delivery_delivered".into(),
            detail: d.detail.clone(),
        }))
        .collect();
    timeline.sort_by_key(|e| e.at_ms);
    timeline
}

fn summary(d: &Delivery) -> DeliverySummary {
    DeliverySummary {
        delivery_id: d.delivery_id.clone(),
        installation_id: d.installation_id.clone(),
        user_id: d.user_id.clone(),
        platform: d.platform.as_str().into(),
        kind: d.kind.as_str().into(),
        status: d.status.as_str().into(),
        attempts: d.attempts,
        outcome: d.outcome.clone(),
        detail: d.detail.clone(),
    }
}

// ---- the server's call-signing keys: GET /.well-known/callpush-keys ----

/// Where the server publishes the public keys call pushes are signed with.
pub const WELL_KNOWN_KEYS: &str = "/.well-known/callpush-keys";

/// How long the key set may be cached, seconds. A rotation publishes the next key long before
/// it signs (`callpush rotate-key`, a day by default), and a retired key stays published an hour
/// after its successor activates (`keyring::RETIRED_KEY_GRACE`), so a copy this old still
/// verifies every push.
pub const SIGNING_KEYS_MAX_AGE: u32 = 300;

/// The server's call-signing public keys: a JWK Set (RFC 7517), the keys registrations answer
/// in `signing_keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeySet {
    /// The keys devices trust now: the one signing, the next one, and one retired within the hour.
    pub keys: Vec<SigningJwk>,
}

/// One Ed25519 public key (RFC 8037).
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningJwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The key id call pushes name in their `kid` header (the key's RFC 7638 thumbprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `EdDSA`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl From<callpush_proto::model::Jwk> for SigningJwk {
    fn from(jwk: callpush_proto::model::Jwk) -> Self {
        SigningJwk { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid: jwk.kid, alg: jwk.alg, use_: jwk.use_ }
    }
}

/// The public keys call pushes are signed with, as a JWK Set: what a device trusts, and what
/// `callpush-dev inspect --jwks-url` takes. Public: no credentials.
#[utoipa::path(get, path = "/.well-known/callpush-keys", tag = "operations",
    responses((status = 200, body = SigningKeySet, description = "The JWK Set of the call-signing keys",
               headers(("Cache-Control" = String, description = "`public, max-age=300`")))))]
async fn signing_keys(State(state): State<Shared>) -> impl IntoResponse {
    let keys = state.rings.published_keys().into_iter().map(SigningJwk::from).collect();
    (
        [(header::CACHE_CONTROL, format!("public, max-age={SIGNING_KEYS_MAX_AGE}"))],
        Json(SigningKeySet { keys }),
    )
}

// ---- end of the call-signing keys ----

/// The OpenAPI document, generated from the handlers above.
#[derive(OpenApi)]
#[openapi(
    info(title = "callpush", description = "Incoming-call push registrar and ring orchestrator"),
    paths(put_installation, verify_installation, put_notifications, delete_installation, delete_user_installations,
          create_call, get_call, answer_call, decline_call, cancel_call, harmony_receipts,
          healthz, readyz, metrics, openapi, signing_keys),
    components(schemas(InstallationBody, DeviceKeyJwk, InstallationResponse, InstallationLease, NotificationsState, NotificationsBody,
                        RemovedInstallations, HarmonyReceiptBody, HarmonyReceiptStatus, HarmonyDeliveryStatus,
                        ReceiptAnswer, VerifyBody, CreateCallBody, CallerBody, CallCreated,
                        DeliverySummary, CallStatus, CallDetail, CalleeStatus, TimelineEntry, CallActionBody, SigningKey,
                        CancelBody, ErrorBody, ErrorDetail, Platform, ApnsEnvironment, CancelReason, CallPhase, VerificationState,
                        CallView, Health),
                responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                          UnsupportedMediaType, StorageUnavailable, TooManyWaits, NotReady)),
    modifiers(&Security),
    tags((name = "device", description = "Called by devices with the app user's token"),
         (name = "backend", description = "Called by the app backend with an API key"),
         (name = "providers", description = "Called by push providers (delivery receipts), authenticated by their signature"),
         (name = "operations", description = "Health, metrics, this document"))
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_spells_links_as_openapi_does() {
        let doc = document();
        let links = &doc["paths"]["/v1/calls"]["post"]["responses"]["202"]["links"];
        assert_eq!(links["GetCall"]["operationId"], "get_call");
        assert_eq!(links["CancelCall"]["parameters"]["call_id"], "$response.body#/call_id");
        let text = doc.to_string();
        assert!(!text.contains("\"operation_id\"") && !text.contains("\"request_body\""), "{text}");
        // Every link names an operation of the document.
        let operations: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for response in doc["paths"].as_object().unwrap().values().flat_map(|item| {
            item.as_object().unwrap().values().flat_map(|op| op["responses"].as_object().unwrap().values())
        }) {
            for link in response["links"].as_object().into_iter().flat_map(|links| links.values()) {
                assert!(operations.contains(&link["operationId"].as_str().unwrap()), "{link}");
            }
        }
    }
}
