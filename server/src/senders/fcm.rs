//! The FCM HTTP v1 sender (docs/providers/fcm.md).
//!
//! Auth: the service account signs an RS256 assertion, which its `token_uri` trades for an
//! OAuth2 access token (JWT-bearer grant). The token is cached until five minutes before it
//! expires, fetched by one send at a time (the others wait for the same fetch), and dropped
//! when FCM refuses it: the send is then retried once with a fresh token, and a refusal that
//! persists is a configuration error.
//!
//! Ring and cancel pushes are both data-only, high-priority messages collapsing on the call id;
//! FCM devices never get a missed-call notification (they get a cancel push). Answers are
//! classified by the `FcmError` code first, then by HTTP status (docs/providers/fcm.md#errors).
//!
//! Every request, the token fetch made for a send included, may take what [`attempt_timeout`]
//! allows for the push; one that times out replaces the client ([`Connections`]).

use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use callpush_proto::model::Platform;
use callpush_proto::wire::ProviderPayload;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::credential::{refresh_at, CachedCredential, Credential, Issued};
use super::http::{
    attempt_timeout, read_capped, retry_after, transport_error, AuthHeader, Connections, HttpSettings,
    SenderError,
};
use super::{OutgoingPush, SendOutcome, Sender};
use crate::auth::redact;
use crate::config::FcmConfig;
use crate::domain::PushKind;

/// The OAuth scope an access token needs to send FCM messages.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The OAuth2 grant type trading a signed assertion for an access token (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The message FCM answers a malformed registration token with (a dead token, not a bad
/// request).
pub const INVALID_TOKEN_MESSAGE: &str = "The registration token is not a valid FCM registration token";
/// How long before its expiry a cached access token is replaced, ms.
const TOKEN_MARGIN: i64 = 300_000;
/// Lifetime of the signed assertion: Google's maximum.
const ASSERTION_LIFETIME: u64 = 3600;
/// Longest `android.ttl` FCM accepts, seconds (4 weeks).
const MAX_TTL_SECONDS: u32 = 2_419_200;
/// The delay after `QUOTA_EXCEEDED` without `Retry-After`: Google's minimum initial backoff.
const QUOTA_BACKOFF: Duration = Duration::from_secs(60);
/// Longest an access token is trusted, whatever `expires_in` says, seconds (Google's live 1 h).
const MAX_TOKEN_LIFETIME: u64 = 86_400;
/// Longest provider message kept in an outcome's detail, characters.
const MAX_DETAIL: usize = 300;

/// The fields of a Firebase service-account key file the sender uses.
#[derive(Deserialize)]
struct ServiceAccountFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// The assertion's claims (Google's "OAuth 2.0 for Server to Server Applications").
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// What one FCM request came to.
enum Answer {
    /// A final outcome.
    Done(SendOutcome),
    /// 401 without `FcmError`: our access token was refused.
    Unauthenticated(String),
}

/// Sends call pushes through FCM HTTP v1.
pub struct FcmSender {
    connections: Connections,
    /// `{base_url}/v1/projects/{project_id}/messages:send`.
    send_url: String,
    /// Where access tokens come from: `config.token_url`, else the key file's `token_uri`.
    token_url: String,
    client_email: String,
    private_key_id: String,
    key: EncodingKey,
    tokens: CachedCredential<String, SendOutcome>,
    /// The `Authorization` header of the access token in use.
    auth: AuthHeader,
}

impl FcmSender {
    /// A sender for `config`, reading and checking its service-account key file now.
    pub fn new(config: &FcmConfig, http: &HttpSettings) -> Result<Self, SenderError> {
        let path = config.service_account_file.display().to_string();
        let bad = |what: String| SenderError::Config(format!("FCM service-account file {path}: {what}"));
        let text = std::fs::read_to_string(&config.service_account_file).map_err(|e| bad(e.to_string()))?;
        let file: ServiceAccountFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a service-account key (JSON): {e}")))?;
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(bad(format!("`type` is {kind:?}, not \"service_account\"")));
        }
        let field = |name: &str, value: Option<String>| {
            value.filter(|v| !v.trim().is_empty()).ok_or_else(|| bad(format!("`{name}` is missing or empty")))
        };
        let project_id = field("project_id", file.project_id)?;
        if !project_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_')) {
            return Err(bad(format!("`project_id` {project_id:?} is not a Google Cloud project id")));
        }
        let private_key_id = field("private_key_id", file.private_key_id)?;
        let client_email = field("client_email", file.client_email)?;
        let private_key = field("private_key", file.private_key)?;
        let key = EncodingKey::from_rsa_pem(private_key.as_bytes())
            .map_err(|e| bad(format!("`private_key` is not an RSA private key in PEM: {e}")))?;
        let token_url = match &config.token_url {
            Some(url) => url.clone(),
            None => field("token_uri", file.token_uri)?,
        };
        check_url("the OAuth token endpoint", &token_url)?;
        check_url("providers.fcm.base_url", &config.base_url)?;
        let send_url =
            format!("{}/v1/projects/{project_id}/messages:send", config.base_url.trim_end_matches('/'));
        let http = http.clone();
        Ok(FcmSender {
            connections: Connections::new(Platform::Fcm, "FCM", move || http.client())?,
            send_url,
            token_url,
            client_email,
            private_key_id,
            key,
            tokens: CachedCredential::default(),
            auth: AuthHeader::default(),
        })
    }

    /// A valid access token: the cached one, or a fresh one when there is none, it is about to
    /// expire, or it is `refused` (FCM just refused it). One fetch runs at a time, timed by the
    /// push making it (due by `expires_at`); sends that waited for it share its result,
    /// failures included.
    async fn access_token(
        &self,
        refused: Option<&Credential<String>>,
        expires_at: i64,
    ) -> Result<Credential<String>, SendOutcome> {
        self.tokens.for_push(refused, expires_at, |timeout| self.fetch_token(timeout)).await
    }

    /// Signs an assertion and trades it for an access token at the token endpoint, waiting at
    /// most `timeout`.
    async fn fetch_token(&self, timeout: Duration) -> Result<Issued<String>, SendOutcome> {
        let iat = u64::try_from(crate::time::now_secs()).unwrap_or(0);
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: FCM_SCOPE,
            aud: &self.token_url,
            iat,
            exp: iat + ASSERTION_LIFETIME,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.private_key_id.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| {
            SendOutcome::ConfigError { detail: format!("signing the FCM OAuth assertion failed: {e}") }
        })?;
        let started = crate::time::now_ms();
        let connection = self.connections.current();
        let response = match connection
            .client
            .post(&self.token_url)
            .timeout(timeout)
            .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", assertion.as_str())])
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                self.connections.failed(&connection, &e);
                return Err(SendOutcome::Transient {
                    detail: format!(
                        "the FCM OAuth token endpoint could not be reached: {}",
                        transport_error(&e)
                    ),
                });
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), crate::time::now_ms());
        let text = match read_capped(response).await {
            Ok(text) => text,
            Err(e) => {
                self.connections.failed(&connection, &e);
                return Err(SendOutcome::Transient {
                    detail: format!("reading the FCM OAuth token answer failed: {}", transport_error(&e)),
                });
            }
        };
        let token = classify_token_answer(status, retry_after, &text, started)?;
        tracing::debug!(token = %redact(&token.value), "fetched an FCM access token");
        Ok(token)
    }

    /// After FCM refused `refused`: fetches a new token and sends once more; a second refusal
    /// is a configuration error.
    async fn retry_with_fresh_token(
        &self,
        body: &Bytes,
        refused: &Credential<String>,
        detail: &str,
        expires_at: i64,
    ) -> SendOutcome {
        tracing::info!(%detail, token = %redact(&refused.value), "FCM refused the access token; fetching a new one");
        let fresh = match self.access_token(Some(refused), expires_at).await {
            Ok(fresh) => fresh,
            Err(outcome) => return outcome,
        };
        match self.post(body, &fresh.value, expires_at).await {
            Answer::Done(outcome) => outcome,
            Answer::Unauthenticated(detail) => SendOutcome::ConfigError {
                detail: format!(
                    "FCM refused a freshly issued access token ({detail}): check that the service account \
                     belongs to the project and may send messages"
                ),
            },
        }
    }

    /// Posts one message with `access_token`, in the time the push due by `expires_at` allows,
    /// and classifies the answer.
    async fn post(&self, body: &Bytes, access_token: &str, expires_at: i64) -> Answer {
        let timeout = match attempt_timeout(crate::time::now_ms(), expires_at) {
            Ok(timeout) => timeout,
            Err(outcome) => return Answer::Done(outcome),
        };
        let connection = self.connections.current();
        let request = connection.client.post(&self.send_url);
        let request = match self.auth.value("Bearer", access_token) {
            Ok(value) => request.header(AUTHORIZATION, value),
            Err(_) => request.bearer_auth(access_token),
        };
        let response = match request
            .timeout(timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body.clone())
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                self.connections.failed(&connection, &e);
                return Answer::Done(SendOutcome::Transient {
                    detail: format!("FCM could not be reached: {}", transport_error(&e)),
                });
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), crate::time::now_ms());
        match read_capped(response).await {
            Ok(text) => classify(status, retry_after, &text),
            Err(e) => {
                self.connections.failed(&connection, &e);
                Answer::Done(SendOutcome::Transient {
                    detail: format!("reading FCM's answer failed: {}", transport_error(&e)),
                })
            }
        }
    }
}

#[async_trait]
impl Sender for FcmSender {
    async fn send(&self, push: &OutgoingPush) -> SendOutcome {
        let body = match message(push) {
            Ok(body) => body,
            Err(detail) => return SendOutcome::BadRequest { detail },
        };
        let token = match self.access_token(None, push.expires_at).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let outcome = match self.post(&body, &token.value, push.expires_at).await {
            Answer::Done(outcome) => outcome,
            Answer::Unauthenticated(detail) => {
                self.retry_with_fresh_token(&body, &token, &detail, push.expires_at).await
            }
        };
        tracing::debug!(
            call = %push.call_id,
            device = %redact(&push.token),
            outcome = outcome.class(),
            "FCM answered"
        );
        outcome
    }
}

/// The `messages:send` body for `push`, or why it cannot go through FCM.
fn message(push: &OutgoingPush) -> Result<Bytes, String> {
    if push.kind == PushKind::Missed {
        return Err("FCM devices get a cancel push, never a missed-call notification".into());
    }
    let data = match &push.payload {
        Some(ProviderPayload::Fcm { data }) => data,
        Some(other) => return Err(format!("a {} payload cannot be sent through FCM", other.platform())),
        None => return Err(format!("a {} push without a payload", push.kind.as_str())),
    };
    // Written straight from the push, members in the order `json!` writes them (sorted).
    #[derive(Serialize)]
    struct Body<'a> {
        message: Message<'a>,
    }
    #[derive(Serialize)]
    struct Message<'a> {
        android: Android<'a>,
        data: &'a std::collections::BTreeMap<String, String>,
        token: &'a str,
    }
    #[derive(Serialize)]
    struct Android<'a> {
        collapse_key: &'a str,
        priority: &'static str,
        ttl: String,
    }
    // A wire v2 installation's collapse key must not carry the call id readably: a hash of it
    // collapses the call's pushes all the same.
    let opaque;
    let collapse_key = if push.is_sealed() {
        opaque = super::opaque_call_tag(&push.call_id);
        &opaque
    } else {
        &push.call_id
    };
    let body = Body {
        message: Message {
            android: Android {
                collapse_key,
                priority: "HIGH",
                ttl: format!("{}s", push.ttl_seconds.min(MAX_TTL_SECONDS)),
            },
            data,
            token: &push.token,
        },
    };
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| format!("the FCM message cannot be written: {e}"))
}

/// What the token endpoint's answer means: a token to cache, or the outcome for the send.
fn classify_token_answer(
    status: StatusCode,
    retry_after: Option<Duration>,
    text: &str,
    requested: i64,
) -> Result<Issued<String>, SendOutcome> {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if status.is_success() {
        let value = body.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let lifetime = match body.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let (Some(value), Some(lifetime)) = (value, lifetime.filter(|l| *l > 0)) else {
            return Err(SendOutcome::Transient {
                detail: "the FCM OAuth token endpoint answered without access_token and expires_in".into(),
            });
        };
        let lifetime = lifetime.min(MAX_TOKEN_LIFETIME) as i64 * 1000;
        // Short-lived tokens (tests) keep half their life as the margin.
        let margin = TOKEN_MARGIN.min(lifetime / 2);
        return Ok(Issued { value: value.to_owned(), refresh_at: refresh_at(requested, lifetime, margin) });
    }
    let error = body.get("error").and_then(Value::as_str).unwrap_or("no error code");
    let description = body.get("error_description").and_then(Value::as_str).unwrap_or_default();
    let detail = shorten(&format!("FCM OAuth token endpoint {}: {error}: {description}", status.as_u16()));
    Err(match status.as_u16() {
        429 => SendOutcome::RateLimited { retry_after, detail },
        408 | 500..=599 => transient_or_limited(retry_after, detail),
        // invalid_grant (bad key, clock skew, unknown account), invalid_client, wrong URL, …
        _ => SendOutcome::ConfigError { detail },
    })
}

/// What FCM's answer means (docs/providers/fcm.md#errors): by `FcmError.errorCode` first, then by status.
fn classify(status: StatusCode, retry_after: Option<Duration>, text: &str) -> Answer {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if status.is_success() {
        let name = body.get("name").and_then(Value::as_str).map(str::to_owned);
        return Answer::Done(SendOutcome::Delivered { provider_id: name });
    }
    let error = body.get("error");
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).unwrap_or_default();
    let (message, rpc_status) = (field("message"), field("status"));
    let error_code = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"))
        })
        .find_map(|d| d.get("errorCode").and_then(Value::as_str));
    let name = error_code.or((!rpc_status.is_empty()).then_some(rpc_status)).unwrap_or("no status");
    let detail = if message.is_empty() && error.is_none() {
        shorten(&format!("FCM {} {name}: {}", status.as_u16(), text.trim()))
    } else {
        shorten(&format!("FCM {} {name}: {message}", status.as_u16()))
    };
    let invalid_token = message.contains(INVALID_TOKEN_MESSAGE);
    let outcome = match error_code {
        Some("UNREGISTERED" | "SENDER_ID_MISMATCH") => {
            SendOutcome::InvalidToken { detail, invalid_since: None }
        }
        Some("INVALID_ARGUMENT") if invalid_token => {
            SendOutcome::InvalidToken { detail, invalid_since: None }
        }
        Some("INVALID_ARGUMENT") => SendOutcome::BadRequest { detail },
        Some("QUOTA_EXCEEDED") => {
            SendOutcome::RateLimited { retry_after: Some(retry_after.unwrap_or(QUOTA_BACKOFF)), detail }
        }
        Some("UNAVAILABLE" | "INTERNAL") => transient_or_limited(retry_after, detail),
        Some("THIRD_PARTY_AUTH_ERROR" | "APNS_AUTH_ERROR") => SendOutcome::ConfigError { detail },
        Some("UNSPECIFIED_ERROR") => SendOutcome::Transient { detail },
        _ => match status.as_u16() {
            400 if invalid_token => SendOutcome::InvalidToken { detail, invalid_since: None },
            401 => return Answer::Unauthenticated(detail),
            // PERMISSION_DENIED: the service account may not send for this project, or the API
            // is disabled. 404 without UNREGISTERED: no such project or endpoint.
            403 | 404 => SendOutcome::ConfigError { detail },
            429 => {
                SendOutcome::RateLimited { retry_after: Some(retry_after.unwrap_or(QUOTA_BACKOFF)), detail }
            }
            408 | 500..=599 => transient_or_limited(retry_after, detail),
            400..=499 => SendOutcome::BadRequest { detail },
            _ => SendOutcome::Transient { detail },
        },
    };
    Answer::Done(outcome)
}

/// `Transient`, or `RateLimited` when the provider said when to come back.
fn transient_or_limited(retry_after: Option<Duration>, detail: String) -> SendOutcome {
    match retry_after {
        Some(after) => SendOutcome::RateLimited { retry_after: Some(after), detail },
        None => SendOutcome::Transient { detail },
    }
}

/// Checks that `url` is an absolute http(s) URL.
fn check_url(what: &str, url: &str) -> Result<(), SenderError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.has_host() => Ok(()),
        _ => Err(SenderError::Config(format!("{what} {url:?} is not an http(s) URL"))),
    }
}

/// Cuts a detail to [`MAX_DETAIL`] characters.
fn shorten(detail: &str) -> String {
    match detail.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn done(answer: Answer) -> SendOutcome {
        match answer {
            Answer::Done(outcome) => outcome,
            Answer::Unauthenticated(detail) => panic!("unexpectedly unauthenticated: {detail}"),
        }
    }

    fn fcm_error(code: u16, status: &str, message: &str, error_code: &str) -> String {
        json!({"error": {"code": code, "message": message, "status": status, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}
        ]}})
        .to_string()
    }

    #[test]
    fn the_message_is_written_as_json_wrote_it() {
        let push = OutgoingPush {
            delivery_id: "d-1".into(),
            call_id: "call-\"1\"".into(),
            installation_id: "i-1".into(),
            platform: Platform::Fcm,
            token: "dQw4w9WgXcQ:APA91b".into(),
            apns_environment: None,
            kind: PushKind::Ring,
            payload: Some(callpush_proto::wire::wrap(Platform::Fcm, "a.b.c".into())),
            missed: None,
            ttl_seconds: 30,
            expires_at: 0,
        };
        let written = message(&push).unwrap();
        let expected = json!({
            "message": {
                "token": push.token,
                "data": {"callpush": "a.b.c"},
                "android": {"priority": "HIGH", "ttl": "30s", "collapse_key": push.call_id},
            }
        })
        .to_string();
        assert_eq!(std::str::from_utf8(&written).unwrap(), expected);

        // Sealed (wire v2): the collapse key is a hash of the call id, the same for each push.
        let sealed = OutgoingPush {
            payload: Some(callpush_proto::wire::wrap(Platform::Fcm, "h.k.i.c.t".into())),
            ..push
        };
        let written: Value = serde_json::from_slice(&message(&sealed).unwrap()).unwrap();
        let key = written["message"]["android"]["collapse_key"].as_str().unwrap();
        assert_eq!(key, crate::senders::opaque_call_tag(&sealed.call_id));
        assert!(!key.contains("call-"), "{key}");
    }

    #[test]
    fn error_code_wins_over_status() {
        let unregistered = fcm_error(400, "INVALID_ARGUMENT", "gone", "UNREGISTERED");
        assert!(matches!(
            done(classify(StatusCode::BAD_REQUEST, None, &unregistered)),
            SendOutcome::InvalidToken { .. }
        ));
        let quota = fcm_error(429, "RESOURCE_EXHAUSTED", "slow down", "QUOTA_EXCEEDED");
        assert_eq!(
            done(classify(StatusCode::TOO_MANY_REQUESTS, None, &quota)),
            SendOutcome::RateLimited {
                retry_after: Some(QUOTA_BACKOFF),
                detail: "FCM 429 QUOTA_EXCEEDED: slow down".into()
            }
        );
        let third_party = fcm_error(401, "UNAUTHENTICATED", "apns", "THIRD_PARTY_AUTH_ERROR");
        assert!(matches!(
            done(classify(StatusCode::UNAUTHORIZED, None, &third_party)),
            SendOutcome::ConfigError { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#),
            Answer::Unauthenticated(_)
        ));
    }

    #[test]
    fn answers_that_are_not_json_are_classified_by_status() {
        assert!(matches!(
            done(classify(StatusCode::BAD_GATEWAY, None, "<html>bad gateway</html>")),
            SendOutcome::Transient { .. }
        ));
        assert!(matches!(
            done(classify(StatusCode::PAYLOAD_TOO_LARGE, None, "")),
            SendOutcome::BadRequest { .. }
        ));
        let long = "x".repeat(5000);
        let SendOutcome::Transient { detail } =
            done(classify(StatusCode::INTERNAL_SERVER_ERROR, None, &long))
        else {
            panic!("500 is transient")
        };
        assert!(detail.chars().count() <= MAX_DETAIL + 1);
    }

    #[test]
    fn token_answers_set_the_refresh_time() {
        let now = 1_700_000_000_000;
        let token = classify_token_answer(
            StatusCode::OK,
            None,
            r#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap_or_else(|_| panic!("a token"));
        assert_eq!(token.refresh_at, now + (3599 - 300) * 1000);
        let short =
            classify_token_answer(StatusCode::OK, None, r#"{"access_token":"t","expires_in":"2"}"#, now)
                .unwrap_or_else(|_| panic!("a token"));
        assert_eq!(short.refresh_at, now + 1000);
        let forever = format!(r#"{{"access_token":"t","expires_in":{}}}"#, u64::MAX);
        let capped =
            classify_token_answer(StatusCode::OK, None, &forever, now).unwrap_or_else(|_| panic!("a token"));
        assert_eq!(capped.refresh_at, now + MAX_TOKEN_LIFETIME as i64 * 1000 - TOKEN_MARGIN);
        assert!(matches!(
            classify_token_answer(StatusCode::OK, None, "{}", now),
            Err(SendOutcome::Transient { .. })
        ));
        assert!(matches!(
            classify_token_answer(StatusCode::BAD_REQUEST, None, r#"{"error":"invalid_grant"}"#, now),
            Err(SendOutcome::ConfigError { .. })
        ));
    }
}
