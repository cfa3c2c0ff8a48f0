//! The APNs sender (docs/providers/apns.md): PushKit VoIP pushes for rings and alert pushes for missed
//! calls, over one long-lived HTTP/2 connection per APNs environment, authenticated with an ES256
//! provider token that is reused and replaced every 50 minutes (APNs wants 20 to 60).
//!
//! APNs never gets a cancel push: iOS must report every VoIP push to CallKit, so a call that
//! stops ringing reaches the iPhone as a missed-call alert instead.
//!
//! Connections: each environment has one `reqwest` client speaking HTTP/2 only, whose pool keeps
//! the single connection open (pinged when idle) and multiplexes every push over it within the
//! server's `SETTINGS_MAX_CONCURRENT_STREAMS`. When APNs closes the connection (GOAWAY, a
//! transport error, `Shutdown`) or a request on it times out (the connection may be hung) the
//! client is replaced, so the next push opens a fresh one; a request the GOAWAY says was never
//! processed is resent once on it. Each request's timeout follows the push's deadline
//! ([`attempt_timeout`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callpush_proto::model::{ApnsEnvironment, Platform};
use callpush_proto::wire::ProviderPayload;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::credential::{refresh_at, CachedCredential, Credential, Issued, RefreshError};
use super::http::{
    attempt_timeout, retry_after, AuthHeader, Connection, Connections, HttpSettings, SenderError,
};
use super::{MissedCall, OutgoingPush, SendOutcome, Sender};
use crate::auth::redact;
use crate::config::ApnsConfig;
use crate::domain::PushKind;

/// Age at which the provider token is replaced, seconds. APNs refuses tokens older than an
/// hour and answers `TooManyProviderTokenUpdates` to tokens changed more often than every 20
/// minutes; 50 leaves room for clock skew on both sides.
pub const TOKEN_REFRESH_AGE_SECONDS: i64 = 50 * 60;
/// How long APNs keeps a missed-call alert for an offline device, seconds.
pub const MISSED_EXPIRATION_SECONDS: i64 = 86_400;
/// Longest caller name put in a missed-call alert, characters: the alert must stay well
/// within APNs' 4096-byte limit whatever the caller's name.
const MAX_CALLER_CHARS: usize = 100;
/// How often the idle connection is pinged, as Apple asks instead of reconnecting.
const PING_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// How long a ping may go unanswered before the connection is considered dead.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Unix seconds, as the provider token's `iat` is dated.
type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Sends call pushes through APNs.
pub struct ApnsSender {
    /// The app's bundle id: the missed-call alert's topic; VoIP pushes go to `<bundle>.voip`.
    bundle_id: String,
    tokens: ProviderTokens,
    production: Endpoint,
    sandbox: Endpoint,
    /// The `authorization` header of the provider token in use.
    auth: AuthHeader,
}

impl ApnsSender {
    /// A sender for `config`: reads and checks the `.p8` key (it must sign an ES256 token now),
    /// the key and team ids, the bundle id and both endpoints. Connections open on first use.
    pub fn new(config: &ApnsConfig, http: &HttpSettings) -> Result<Self, SenderError> {
        let key_file = config.key_file.display();
        let pem = std::fs::read(&config.key_file)
            .map_err(|e| SenderError::Config(format!("APNs key file {key_file}: {e}")))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| {
            SenderError::Config(format!("APNs key file {key_file}: not a PKCS#8 EC private key (.p8): {e}"))
        })?;
        check_apple_id("apns.key_id", &config.key_id)?;
        check_apple_id("apns.team_id", &config.team_id)?;
        check_bundle_id(&config.bundle_id)?;
        let tokens = ProviderTokens {
            key,
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            clock: Arc::new(crate::time::now_secs),
            cached: CachedCredential::default(),
        };
        tokens.mint(crate::time::now_secs()).map_err(|e| {
            SenderError::Config(format!(
                "APNs key file {key_file}: cannot sign ES256 with it (is it P-256?): {e}"
            ))
        })?;
        Ok(ApnsSender {
            bundle_id: config.bundle_id.clone(),
            tokens,
            production: Endpoint::new(ApnsEnvironment::Production, &config.production_url, http)?,
            sandbox: Endpoint::new(ApnsEnvironment::Sandbox, &config.sandbox_url, http)?,
            auth: AuthHeader::default(),
        })
    }

    /// The same sender dating and aging its provider tokens by `clock` (unix seconds) instead
    /// of the system clock: for tests that need a token to be old, or from the future.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.tokens.clock = Arc::new(clock);
        self.tokens.cached.reset();
        self
    }

    fn endpoint(&self, environment: Option<ApnsEnvironment>) -> &Endpoint {
        match environment.unwrap_or_default() {
            ApnsEnvironment::Production => &self.production,
            ApnsEnvironment::Sandbox => &self.sandbox,
        }
    }

    /// The APNs request for `push`, or why there is none to send.
    fn request_for(&self, push: &OutgoingPush) -> Result<ApnsRequest, SendOutcome> {
        if push.token.is_empty() || !push.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            // What APNs would answer (BadDeviceToken); checked here so that no path but a
            // device path is ever requested.
            return Err(SendOutcome::InvalidToken {
                detail: "BadDeviceToken: the device token is not a hex string (checked before sending)"
                    .into(),
                invalid_since: None,
            });
        }
        let path = format!("/3/device/{}", push.token);
        let apns_id = apns_id(&push.delivery_id);
        match push.kind {
            PushKind::Ring => match &push.payload {
                Some(ProviderPayload::Apns { body }) => Ok(ApnsRequest {
                    path,
                    push_type: "voip",
                    topic: format!("{}.voip", self.bundle_id),
                    expiration: push.expires_at,
                    apns_id,
                    collapse_id: None,
                    body: body.clone(),
                }),
                other => Err(SendOutcome::BadRequest {
                    detail: format!("an APNs ring needs an APNs payload, not {other:?}"),
                }),
            },
            PushKind::Cancel => Err(SendOutcome::BadRequest {
                detail: "APNs never gets a cancel push: every VoIP push must ring through CallKit, so \
                         iOS learns of the ending from a missed-call alert"
                    .into(),
            }),
            PushKind::Missed => match &push.missed {
                Some(missed) => Ok(ApnsRequest {
                    path,
                    push_type: "alert",
                    topic: self.bundle_id.clone(),
                    expiration: crate::time::now_secs() + MISSED_EXPIRATION_SECONDS,
                    apns_id,
                    collapse_id: Some(missed.app_message_id.clone()),
                    body: missed_call_alert(missed),
                }),
                None => Err(SendOutcome::BadRequest {
                    detail: "a missed-call notification without its content".into(),
                }),
            },
        }
    }

    /// Sends `request` once on the endpoint's current connection, waiting at most `timeout`.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        request: &ApnsRequest,
        token: &Credential<Arc<str>>,
        timeout: Duration,
    ) -> Attempt {
        let connection = endpoint.connections.current();
        let builder = connection.client.post(format!("{}{}", endpoint.base_url, request.path));
        let builder = match self.auth.value("bearer", &token.value) {
            Ok(value) => builder.header("authorization", value),
            Err(_) => builder.header("authorization", format!("bearer {}", token.value)),
        };
        let mut builder = builder
            .timeout(timeout)
            .header("apns-push-type", request.push_type)
            .header("apns-topic", &request.topic)
            .header("apns-priority", "10")
            .header("apns-expiration", request.expiration.to_string())
            .header("apns-id", &request.apns_id)
            .header("content-type", "application/json")
            .body(request.body.clone());
        if let Some(collapse_id) = &request.collapse_id {
            builder = builder.header("apns-collapse-id", collapse_id);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return endpoint.failed(&connection, e),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned())
        };
        let apns_id = header("apns-id");
        let retry_after = retry_after(response.headers(), crate::time::now_ms());
        let body = match response.bytes().await {
            Ok(body) => body,
            // A 200 is a 200 even if the (empty) body was cut short.
            Err(_) if status == 200 => Default::default(),
            Err(e) => return endpoint.failed(&connection, e),
        };
        let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let answer =
            Answer { status, apns_id, retry_after, reason: error.reason, timestamp: error.timestamp };
        if answer.ends_connection() {
            endpoint.connections.replace(&connection, "APNs is closing the connection");
        }
        Attempt::Answered(answer)
    }
}

#[async_trait]
impl Sender for ApnsSender {
    async fn send(&self, push: &OutgoingPush) -> SendOutcome {
        let request = match self.request_for(push) {
            Ok(request) => request,
            Err(outcome) => return outcome,
        };
        let endpoint = self.endpoint(push.apns_environment);
        let mut token = match self.tokens.token(None).await {
            Ok(token) => token,
            Err(detail) => return SendOutcome::ConfigError { detail },
        };
        let (mut refreshed, mut resent) = (false, false);
        loop {
            let timeout = match attempt_timeout(crate::time::now_ms(), push.expires_at) {
                Ok(timeout) => timeout,
                Err(outcome) => return outcome,
            };
            match self.attempt(endpoint, &request, &token, timeout).await {
                Attempt::Answered(answer) if answer.is_expired_provider_token() => {
                    if refreshed {
                        return SendOutcome::ConfigError {
                            detail: "APNs 403 ExpiredProviderToken even for a fresh provider token: \
                                     check this server's clock"
                                .into(),
                        };
                    }
                    refreshed = true;
                    token = match self.tokens.token(Some(&token)).await {
                        Ok(token) => token,
                        Err(detail) => return SendOutcome::ConfigError { detail },
                    };
                }
                Attempt::Answered(answer) => {
                    let outcome = answer.classify(endpoint.environment, &request.apns_id);
                    tracing::debug!(
                        token = %redact(&push.token),
                        environment = endpoint.environment.as_str(),
                        status = answer.status,
                        reason = answer.reason.as_deref().unwrap_or(""),
                        outcome = outcome.class(),
                        "APNs answered"
                    );
                    return outcome;
                }
                Attempt::NotProcessed(detail) if !resent => {
                    tracing::debug!(token = %redact(&push.token), %detail, "resending a push APNs did not process");
                    resent = true;
                }
                Attempt::NotProcessed(detail) | Attempt::Failed(detail) => {
                    return SendOutcome::Transient { detail };
                }
                Attempt::Unsendable(detail) => return SendOutcome::BadRequest { detail },
            }
        }
    }
}

/// One APNs request, ready to send (and to resend).
struct ApnsRequest {
    path: String,
    push_type: &'static str,
    topic: String,
    expiration: i64,
    apns_id: String,
    collapse_id: Option<String>,
    body: String,
}

/// How one attempt ended.
enum Attempt {
    /// APNs answered.
    Answered(Answer),
    /// The connection went away and APNs says it never processed the request: safe to resend.
    NotProcessed(String),
    /// The request failed in transport and may or may not have been processed.
    Failed(String),
    /// The request could not be made at all (a header value HTTP cannot carry).
    Unsendable(String),
}

/// The error body APNs sends with every status but 200.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// APNs' answer to one request.
#[derive(Debug)]
struct Answer {
    status: u16,
    apns_id: Option<String>,
    retry_after: Option<Duration>,
    reason: Option<String>,
    timestamp: Option<i64>,
}

impl Answer {
    fn is_expired_provider_token(&self) -> bool {
        self.status == 403 && self.reason.as_deref() == Some("ExpiredProviderToken")
    }

    /// Whether APNs is closing the connection this answer came on.
    fn ends_connection(&self) -> bool {
        matches!(self.reason.as_deref(), Some("Shutdown" | "IdleTimeout"))
    }

    /// The outcome class (docs/providers/apns.md#errors).
    fn classify(&self, environment: ApnsEnvironment, apns_id: &str) -> SendOutcome {
        let reason = self.reason.as_deref().unwrap_or("");
        let detail = if reason.is_empty() {
            format!("APNs {} (no reason)", self.status)
        } else {
            format!("APNs {} {reason}", self.status)
        };
        match (self.status, reason) {
            (200, _) => SendOutcome::Delivered {
                provider_id: Some(self.apns_id.clone().unwrap_or_else(|| apns_id.into())),
            },
            (410, _) => SendOutcome::InvalidToken { detail, invalid_since: self.timestamp },
            (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => SendOutcome::InvalidToken {
                detail: format!(
                    "{detail} in {}: if many tokens fail like this, the app's APNs environment or bundle \
                     id is misconfigured rather than the tokens dead",
                    environment.as_str()
                ),
                invalid_since: None,
            },
            (400 | 403, "TopicDisallowed" | "BadTopic" | "MissingTopic" | "InvalidPushType") => {
                SendOutcome::ConfigError { detail }
            }
            // The connection idled out: the request is fine on a fresh one.
            (400, "IdleTimeout") => SendOutcome::Transient { detail },
            (400 | 404 | 405 | 413, _) => SendOutcome::BadRequest { detail },
            (403, _) => SendOutcome::ConfigError { detail },
            // Slow down without touching the provider token: replacing it is what caused
            // TooManyProviderTokenUpdates.
            (429, _) => SendOutcome::RateLimited { retry_after: self.retry_after, detail },
            (500..=599, _) => SendOutcome::Transient { detail },
            (400..=499, _) => SendOutcome::BadRequest { detail },
            _ => SendOutcome::Transient { detail: format!("{detail}: unexpected status") },
        }
    }
}

/// One APNs environment: its URL and its single connection.
struct Endpoint {
    environment: ApnsEnvironment,
    base_url: String,
    /// An HTTP/2 client holding (at most) one connection; replaced to reconnect.
    connections: Connections,
}

impl Endpoint {
    fn new(environment: ApnsEnvironment, url: &str, http: &HttpSettings) -> Result<Self, SenderError> {
        let name = format!("apns.{}_url", environment.as_str());
        let parsed =
            reqwest::Url::parse(url).map_err(|e| SenderError::Config(format!("{name} {url:?}: {e}")))?;
        if parsed.scheme() != "https" || parsed.host_str().is_none() {
            return Err(SenderError::Config(format!("{name} {url:?}: APNs is only reached over https")));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() || parsed.path() != "/" {
            return Err(SenderError::Config(format!(
                "{name} {url:?}: give only the origin (https://host[:port])"
            )));
        }
        let http = http.clone();
        let connections =
            Connections::new(Platform::Apns, format!("APNs {}", environment.as_str()), move || {
                Self::client(&http)
            })?;
        Ok(Endpoint { environment, base_url: url.trim_end_matches('/').to_owned(), connections })
    }

    /// An HTTP/2-only client: one multiplexed connection, kept open and pinged when idle.
    fn client(http: &HttpSettings) -> Result<reqwest::Client, SenderError> {
        http.builder()
            .http2_prior_knowledge()
            .pool_idle_timeout(None)
            .pool_max_idle_per_host(1)
            .http2_keep_alive_interval(PING_INTERVAL)
            .http2_keep_alive_timeout(PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .build()
            .map_err(|e| SenderError::Config(format!("APNs HTTP/2 client: {e}")))
    }

    /// What a transport error means for the request. The connection is replaced: it failed,
    /// or the request timed out on it and it may be hung (a hung HTTP/2 connection stalls
    /// every push); requests in flight on it finish there.
    fn failed(&self, connection: &Connection, error: reqwest::Error) -> Attempt {
        // The URL names the device token: keep it out of details and logs.
        let error = error.without_url();
        let detail = format!("APNs {} connection: {}", self.environment.as_str(), error_chain(&error));
        if error.is_builder() {
            return Attempt::Unsendable(detail);
        }
        let reason = if error.is_timeout() { "a request timed out" } else { "the connection failed" };
        self.connections.replace(connection, reason);
        if was_not_processed(&error) {
            Attempt::NotProcessed(detail)
        } else {
            Attempt::Failed(detail)
        }
    }
}

/// Whether the error says APNs never processed the request (RFC 9113 §8.7): the stream was
/// refused (`REFUSED_STREAM`), or a GOAWAY named an earlier last stream (h2 fails a stream with
/// the peer's GOAWAY only then; streams the GOAWAY covers fail as broken pipes if the
/// connection ends under them), or the request never left because its connection was closing.
fn was_not_processed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM) || (h2.is_go_away() && h2.is_remote());
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_canceled() {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// An error and its causes on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}

/// The provider tokens: one at a time, reused until it is [`TOKEN_REFRESH_AGE_SECONDS`] old.
struct ProviderTokens {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    clock: Clock,
    cached: CachedCredential<Arc<str>, String>,
}

#[derive(Serialize)]
struct ProviderTokenClaims<'a> {
    iss: &'a str,
    iat: i64,
}

impl ProviderTokens {
    /// A token `{"alg":"ES256","kid"}` / `{"iss","iat"}` dated `now`.
    fn mint(&self, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &ProviderTokenClaims { iss: &self.team_id, iat: now }, &self.key)
    }

    /// The token to send with: the cached one unless it is due for replacement or APNs just
    /// refused it as expired (`refused`). If another send already replaced a refused token,
    /// that one: a burst of refusals changes the token once. The cache counts unix ms; APNs
    /// dates tokens in seconds.
    async fn token(&self, refused: Option<&Credential<Arc<str>>>) -> Result<Credential<Arc<str>>, String> {
        self.cached
            .get_unless(refused, || (self.clock)().saturating_mul(1000), |now| self.mint_issued(now))
            .await
    }

    /// A new token dated `now_ms`, due for replacement [`TOKEN_REFRESH_AGE_SECONDS`] later.
    async fn mint_issued(&self, now_ms: i64) -> Result<Issued<Arc<str>>, RefreshError<String>> {
        let jwt = self
            .mint(now_ms / 1000)
            .map_err(|e| RefreshError::Failed(format!("signing the APNs provider token failed: {e}")))?;
        Ok(Issued { value: jwt.into(), refresh_at: refresh_at(now_ms, TOKEN_REFRESH_AGE_SECONDS * 1000, 0) })
    }
}

/// The `apns-id` of a delivery: its id as a canonical UUID when it is one (the server's are),
/// else a UUID derived from it, so that every attempt of a delivery carries the same id.
fn apns_id(delivery_id: &str) -> String {
    let uuid = uuid::Uuid::try_parse(delivery_id).unwrap_or_else(|_| {
        let digest = Sha256::digest(delivery_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    });
    uuid.hyphenated().to_string()
}

/// The missed-call alert: shown by iOS as is; `callpush_missed` lets the app's notification
/// extension or its next launch know the call. To a wire v2 installation (`caller` `None`) it
/// names nobody: the generic text alone, and no `callpush_missed` (see [`MissedCall`]).
fn missed_call_alert(missed: &MissedCall) -> String {
    let aps = |body: String| {
        serde_json::json!({
            "alert": {"title": "Missed call", "body": body},
            "sound": "default",
            "thread-id": "missed-calls",
            "category": "MISSED_CALL",
        })
    };
    let Some(caller) = &missed.caller else {
        return serde_json::json!({ "aps": aps(super::GENERIC_MISSED_CALL_BODY.into()) }).to_string();
    };
    let name = caller.name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&caller.id);
    let name: String = name.chars().take(MAX_CALLER_CHARS).collect();
    serde_json::json!({
        "aps": aps(format!("{name} called")),
        "callpush_missed": {"caller_id": caller.id, "video": caller.video},
    })
    .to_string()
}

/// Apple's key and team ids: 10 ASCII letters and digits.
fn check_apple_id(name: &str, value: &str) -> Result<(), SenderError> {
    if value.len() == 10 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(SenderError::Config(format!("{name} {value:?}: must be Apple's 10-character id")))
    }
}

/// A bundle id: letters, digits, `-` and `.`, not the VoIP topic itself.
fn check_bundle_id(bundle_id: &str) -> Result<(), SenderError> {
    let valid = !bundle_id.is_empty()
        && bundle_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !bundle_id.starts_with('.')
        && !bundle_id.ends_with('.');
    if !valid {
        return Err(SenderError::Config(format!("apns.bundle_id {bundle_id:?}: not a bundle id")));
    }
    if bundle_id.ends_with(".voip") {
        return Err(SenderError::Config(format!(
            "apns.bundle_id {bundle_id:?}: give the app's bundle id, without .voip (VoIP pushes add it)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, reason: &str) -> Answer {
        Answer {
            status,
            apns_id: None,
            retry_after: None,
            reason: (!reason.is_empty()).then(|| reason.to_owned()),
            timestamp: None,
        }
    }

    #[test]
    fn apns_ids_are_canonical_and_stable() {
        let id = "0f8fad5bd9cb469fa16570867728950e";
        assert_eq!(apns_id(id), "0f8fad5b-d9cb-469f-a165-70867728950e");
        let derived = apns_id("not-a-uuid");
        assert_eq!(derived, apns_id("not-a-uuid"));
        assert_eq!(uuid::Uuid::try_parse(&derived).map(|u| u.hyphenated().to_string()).ok(), Some(derived));
    }

    #[test]
    fn unknown_answers_are_classified_conservatively() {
        let env = ApnsEnvironment::Production;
        assert_eq!(answer(502, "").classify(env, "x").class(), "transient");
        assert_eq!(answer(418, "Teapot").classify(env, "x").class(), "bad_request");
        assert_eq!(answer(302, "").classify(env, "x").class(), "transient");
        assert_eq!(answer(400, "IdleTimeout").classify(env, "x").class(), "transient");
        assert!(answer(503, "Shutdown").ends_connection());
    }

    #[test]
    fn refused_streams_were_not_processed() {
        let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(was_not_processed(&refused));
        let internal = h2::Error::from(h2::Reason::INTERNAL_ERROR);
        assert!(!was_not_processed(&internal));
        assert!(!was_not_processed(&std::io::Error::other("reset")));
    }

    #[test]
    fn missed_call_alerts_name_the_caller_briefly() {
        let caller =
            super::super::MissedCaller { id: "alice".into(), name: Some("A".repeat(5000)), video: true };
        let missed = MissedCall { caller: Some(caller.clone()), app_message_id: "missed-1".into() };
        let alert: serde_json::Value = serde_json::from_str(&missed_call_alert(&missed)).unwrap();
        assert_eq!(alert["aps"]["alert"]["body"].as_str().map(str::len), Some(MAX_CALLER_CHARS + 7));
        assert_eq!(alert["callpush_missed"], serde_json::json!({"caller_id": "alice", "video": true}));
        let unnamed = MissedCall {
            caller: Some(super::super::MissedCaller { name: Some(" ".into()), ..caller }),
            ..missed.clone()
        };
        let alert: serde_json::Value = serde_json::from_str(&missed_call_alert(&unnamed)).unwrap();
        assert_eq!(alert["aps"]["alert"]["body"], "alice called");
    }

    #[test]
    fn missed_call_alerts_to_wire_v2_installations_name_nobody() {
        let missed = MissedCall { caller: None, app_message_id: "missed-1".into() };
        let text = missed_call_alert(&missed);
        let alert: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            alert["aps"]["alert"],
            serde_json::json!({"title": "Missed call", "body": "You missed a call"})
        );
        assert!(alert.get("callpush_missed").is_none(), "{text}");
    }
}
