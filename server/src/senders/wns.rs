//! The WNS sender: raw notifications POSTed to the device's channel URI with an OAuth
//! client-credentials access token, from login.live.com (classic Store registration) or from
//! Entra ID (Windows App SDK push), docs/providers/wns.md.
//!
//! The token is fetched on first use, cached until shortly before it expires, and fetched again
//! when WNS refuses it (401): the push is then resent once, and a second refusal is a
//! configuration error. One fetch runs at a time; sends that need a token meanwhile wait for it.
//!
//! Channel URIs are checked to be `https` on `notify.windows.com` or a subdomain before anything
//! is sent (an installation's token is device input: anything else would let a device make the
//! server send its credentials elsewhere). They carry a device token, so logs and details only
//! ever show them redacted.
//!
//! Every request, the token fetch made for a push included, may take what [`attempt_timeout`]
//! allows for the push; one that times out replaces the client ([`Connections`]).

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callpush_proto::model::Platform;
use callpush_proto::token::normalize_token;
use callpush_proto::wire::ProviderPayload;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use super::credential::{refresh_at, CachedCredential, Credential, Issued};
use super::http::{
    attempt_timeout, retry_after, transport_error, AuthHeader, Connections, HttpSettings, SenderError,
};
use super::{OutgoingPush, SendOutcome, Sender};
use crate::auth::redact;
use crate::config::{WnsConfig, WnsFlow};
use crate::domain::PushKind;

/// The classic (Microsoft Store / Partner Center) token endpoint.
pub const LIVE_TOKEN_URL: &str = "https://login.live.com/accesstoken.srf";
/// The scope of classic tokens.
pub const LIVE_SCOPE: &str = "notify.windows.com";
/// The scope of Entra ID tokens for WNS.
pub const ENTRA_SCOPE: &str = "https://wns.windows.com/.default";
/// The largest raw payload WNS accepts, bytes (413 above).
pub const MAX_RAW_PAYLOAD: usize = 5000;

/// A token is fetched again this long before it expires (at most a tenth of its lifetime), ms.
const REFRESH_MARGIN: i64 = 300_000;
/// What a token endpoint that names no lifetime is taken to have given, seconds.
const DEFAULT_TOKEN_LIFETIME: u64 = 3600;
/// Longest provider text copied into an outcome's detail.
const MAX_DETAIL: usize = 300;

/// The Entra ID token endpoint of `tenant`.
pub fn entra_token_url(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
}

/// The path and query of a channel URI (`/w/?token=…`), what is sent to `endpoint_override`
/// and how the emulator recognises the channel: everything after the authority, without a
/// fragment, `/` when empty.
pub fn channel_path_and_query(channel: &str) -> String {
    let rest = channel.split_once("://").map_or(channel, |(_, rest)| rest);
    let rest = rest.split('#').next().unwrap_or_default();
    match rest.find(['/', '?']) {
        Some(start) if rest[start..].starts_with('?') => format!("/{}", &rest[start..]),
        Some(start) => rest[start..].to_owned(),
        None => "/".to_owned(),
    }
}

/// A channel URI fit for logs: scheme and host, the rest redacted (it carries a device token).
pub fn redact_channel(channel: &str) -> String {
    let (scheme, rest) = channel.split_once("://").unwrap_or(("", channel));
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(split);
    format!("{scheme}://{host}{}", if path.is_empty() { String::new() } else { redact(path) })
}

/// Sends call pushes through WNS as raw notifications.
pub struct WnsSender {
    connections: Connections,
    client_id: String,
    client_secret: String,
    scope: &'static str,
    token_url: String,
    endpoint_override: Option<String>,
    token: CachedCredential<String, SendOutcome>,
    /// The `Authorization` header of the access token in use.
    auth: AuthHeader,
}

/// What one POST to a channel came to.
enum Answer {
    /// WNS refused the access token (401): refresh and resend once.
    Unauthorized(String),
    /// Anything else.
    Outcome(SendOutcome),
}

impl WnsSender {
    /// A sender for `config`, its settings checked now: the client id must fit the flow (a
    /// Package SID for classic, an application id for Entra ID), Entra ID needs a tenant unless
    /// `token_url` is given, and the URLs must be http(s) origins.
    pub fn new(config: &WnsConfig, http: &HttpSettings) -> Result<Self, SenderError> {
        let problem = |what: String| SenderError::Config(format!("providers.wns: {what}"));
        let client_id = config.client_id.trim();
        if config.client_secret.trim().is_empty() {
            return Err(problem("client_secret is empty".into()));
        }
        let (scope, default_token_url) = match config.flow {
            WnsFlow::Live => {
                if !client_id.to_ascii_lowercase().starts_with("ms-app://") {
                    return Err(problem(format!(
                        "client_id `{client_id}` is not a Package SID (`ms-app://S-1-15-2-…`), which the \
                         classic flow needs"
                    )));
                }
                (LIVE_SCOPE, Some(LIVE_TOKEN_URL.to_owned()))
            }
            WnsFlow::Entra => {
                if !is_guid(client_id) {
                    return Err(problem(format!(
                        "client_id `{client_id}` is not an application (client) id, a GUID, which the \
                         entra flow needs"
                    )));
                }
                let tenant = match config.tenant_id.as_deref().map(str::trim) {
                    Some(tenant) => Some(check_tenant(tenant).map_err(problem)?),
                    None => None,
                };
                (ENTRA_SCOPE, tenant.map(entra_token_url))
            }
        };
        let token_url = match (&config.token_url, default_token_url) {
            (Some(url), _) => check_url(url, "token_url", true).map_err(problem)?,
            (None, Some(url)) => url,
            (None, None) => return Err(problem("the entra flow needs tenant_id (or token_url)".into())),
        };
        let endpoint_override = match &config.endpoint_override {
            Some(url) => Some(check_url(url, "endpoint_override", false).map_err(problem)?),
            None => None,
        };
        let http = http.clone();
        Ok(WnsSender {
            connections: Connections::new(Platform::Wns, "WNS", move || http.client())?,
            client_id: client_id.to_owned(),
            client_secret: config.client_secret.clone(),
            scope,
            token_url,
            endpoint_override,
            token: CachedCredential::default(),
            auth: AuthHeader::default(),
        })
    }

    /// The access token to send with: the cached one while fresh and not the one WNS just
    /// `refused`, else a new one, fetched in the time the push due by `expires_at` allows.
    /// One fetch runs at a time; whoever waited takes its result.
    async fn access_token(
        &self,
        refused: Option<&Credential<String>>,
        expires_at: i64,
    ) -> Result<Credential<String>, SendOutcome> {
        self.token.for_push(refused, expires_at, |timeout| self.fetch_token(timeout)).await
    }

    /// Asks the token endpoint for a new access token, waiting at most `timeout`.
    async fn fetch_token(&self, timeout: Duration) -> Result<Issued<String>, SendOutcome> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", self.scope),
        ];
        let connection = self.connections.current();
        let failed = |e: reqwest::Error, what: &str| {
            self.connections.failed(&connection, &e);
            SendOutcome::Transient { detail: format!("WNS token endpoint {what}: {}", transport_error(&e)) }
        };
        let response = connection
            .client
            .post(&self.token_url)
            .timeout(timeout)
            .form(&form)
            .send()
            .await
            .map_err(|e| failed(e, "unreachable"))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), crate::time::now_ms());
        let body = response.text().await.map_err(|e| failed(e, "answer cut short"))?;
        let detail =
            || format!("WNS token endpoint {} answered {status}: {}", self.token_url, oauth_error(&body));
        match status {
            200 => {}
            429 => return Err(SendOutcome::RateLimited { retry_after, detail: detail() }),
            503 if retry_after.is_some() => {
                return Err(SendOutcome::RateLimited { retry_after, detail: detail() })
            }
            500..=599 => return Err(SendOutcome::Transient { detail: detail() }),
            // 400 (bad client id, secret, scope or tenant), 401, 403, a wrong URL: the settings.
            _ => return Err(SendOutcome::ConfigError { detail: detail() }),
        }
        let config_error = |what: &str| SendOutcome::ConfigError {
            detail: format!("WNS token endpoint {} answered 200 {what}", self.token_url),
        };
        let parsed: Value = serde_json::from_str(&body).map_err(|_| config_error("without JSON"))?;
        let value = match parsed.get("access_token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
                token.to_owned()
            }
            _ => return Err(config_error("without a usable access_token")),
        };
        if let Some(kind) = parsed.get("token_type").and_then(Value::as_str) {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(config_error(&format!("with token_type `{}`, not bearer", clip(kind))));
            }
        }
        // Entra ID writes the numbers as strings ("86399"), login.live.com as numbers.
        let lifetime = parsed.get("expires_in").and_then(seconds).unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let lifetime_ms = i64::try_from(lifetime).unwrap_or(i64::MAX).saturating_mul(1000);
        tracing::info!(
            token_url = %self.token_url,
            token = %redact(&value),
            expires_in = lifetime,
            "fetched a WNS access token"
        );
        let margin = REFRESH_MARGIN.min(lifetime_ms / 10);
        Ok(Issued { value, refresh_at: refresh_at(crate::time::now_ms(), lifetime_ms, margin) })
    }

    /// Where a channel's pushes go: the channel URI itself, or the override origin with its
    /// path and query.
    fn url_for(&self, channel: &str) -> String {
        match &self.endpoint_override {
            Some(origin) => format!("{origin}{}", channel_path_and_query(channel)),
            None => channel.to_owned(),
        }
    }

    /// POSTs one raw notification, in the time the push allows, and classifies the answer.
    async fn post(&self, url: &str, channel: &str, token: &str, body: &str, push: &OutgoingPush) -> Answer {
        let timeout = match attempt_timeout(crate::time::now_ms(), push.expires_at) {
            Ok(timeout) => timeout,
            Err(outcome) => return Answer::Outcome(outcome),
        };
        let connection = self.connections.current();
        let request = connection.client.post(url);
        let request = match self.auth.value("Bearer", token) {
            Ok(value) => request.header(AUTHORIZATION, value),
            Err(_) => request.bearer_auth(token),
        };
        let response = request
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("X-WNS-Type", "wns/raw")
            .header("X-WNS-TTL", push.ttl_seconds.to_string())
            .header("X-WNS-RequestForStatus", "true")
            .header("MS-CV", correlation_vector())
            .body(body.to_owned())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                self.connections.failed(&connection, &e);
                // Never the URL: it carries the channel's token.
                return Answer::Outcome(SendOutcome::Transient {
                    detail: format!(
                        "WNS unreachable for {}: {}",
                        redact_channel(channel),
                        transport_error(&e)
                    ),
                });
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // A body cut short leaves the status to go by.
        let text = response.text().await.unwrap_or_else(|e| {
            self.connections.failed(&connection, &e);
            String::new()
        });
        let answer = classify(status, &headers, &text, &redact_channel(channel));
        if let Answer::Outcome(outcome) = &answer {
            tracing::debug!(
                channel = %redact_channel(channel),
                status,
                class = outcome.class(),
                msg_id = header(&headers, "x-wns-msg-id").unwrap_or_default(),
                debug_trace = header(&headers, "x-wns-debug-trace").unwrap_or_default(),
                ms_cv = header(&headers, "ms-cv").unwrap_or_default(),
                "WNS answered"
            );
        }
        answer
    }
}

#[async_trait]
impl Sender for WnsSender {
    async fn send(&self, push: &OutgoingPush) -> SendOutcome {
        let body = match (push.kind, &push.payload) {
            (PushKind::Missed, _) => {
                return SendOutcome::BadRequest {
                    detail: "WNS gets no missed-call notification (the cancel push with reason timeout \
                             is it); not sent"
                        .into(),
                }
            }
            (_, Some(ProviderPayload::Wns { body })) => body,
            (_, Some(other)) => {
                return SendOutcome::BadRequest {
                    detail: format!("a {} payload cannot go through WNS; not sent", other.platform()),
                }
            }
            (_, None) => {
                return SendOutcome::BadRequest { detail: "a call push without payload; not sent".into() }
            }
        };
        let channel = match normalize_token(Platform::Wns, &push.token) {
            Ok(channel) => channel,
            Err(e) => {
                return SendOutcome::BadRequest { detail: format!("not a WNS channel URI, not sent: {e}") };
            }
        };
        let url = self.url_for(&channel);
        let token = match self.access_token(None, push.expires_at).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let refused = match self.post(&url, &channel, &token.value, body, push).await {
            Answer::Outcome(outcome) => return outcome,
            Answer::Unauthorized(detail) => detail,
        };
        tracing::info!(detail = %refused, "WNS refused the access token; fetching a new one and resending once");
        let token = match self.access_token(Some(&token), push.expires_at).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        match self.post(&url, &channel, &token.value, body, push).await {
            Answer::Outcome(outcome) => outcome,
            Answer::Unauthorized(detail) => SendOutcome::ConfigError {
                detail: format!("WNS refused a freshly issued access token: {detail}"),
            },
        }
    }
}

/// What WNS's answer means (docs/providers/wns.md#errors).
fn classify(status: u16, headers: &HeaderMap, body: &str, channel: &str) -> Answer {
    let detail = describe(status, headers, body, channel);
    let retry_after = retry_after(headers, crate::time::now_ms());
    let outcome = match status {
        200 => {
            // Current docs name it X-WNS-Status; older ones (and libraries) X-WNS-NotificationStatus.
            let notification = header(headers, "x-wns-status")
                .or_else(|| header(headers, "x-wns-notificationstatus"))
                .or_else(|| header(headers, "x-notificationstatus"))
                .map(|s| s.to_ascii_lowercase());
            match notification.as_deref() {
                Some("received") | None => {
                    SendOutcome::Delivered { provider_id: header(headers, "x-wns-msg-id").map(clip) }
                }
                Some("dropped") => SendOutcome::Transient {
                    detail: format!(
                        "WNS dropped the notification (device offline or app not running; raw \
                         notifications are not cached): {detail}"
                    ),
                },
                Some("channelthrottled") => SendOutcome::RateLimited {
                    retry_after,
                    detail: format!("WNS throttled the channel: {detail}"),
                },
                Some(_) => {
                    SendOutcome::Transient { detail: format!("WNS answered an unknown status: {detail}") }
                }
            }
        }
        401 => return Answer::Unauthorized(detail),
        403 => SendOutcome::ConfigError {
            detail: format!("WNS: these credentials may not push to this channel (another app's?): {detail}"),
        },
        404 => SendOutcome::InvalidToken {
            detail: format!("WNS does not know the channel: {detail}"),
            invalid_since: None,
        },
        410 if domain_blocked(headers, body) => {
            SendOutcome::ConfigError { detail: format!("WNS blocked the sending domain: {detail}") }
        }
        410 => SendOutcome::InvalidToken {
            detail: format!("the channel expired: {detail}"),
            invalid_since: None,
        },
        406 | 429 => SendOutcome::RateLimited { retry_after, detail: format!("WNS throttled us: {detail}") },
        503 if retry_after.is_some() => {
            SendOutcome::RateLimited { retry_after, detail: format!("WNS unavailable: {detail}") }
        }
        500..=599 => SendOutcome::Transient { detail: format!("WNS failed: {detail}") },
        // 400 (headers), 405 (method), 413 (size) and any other refusal of the request itself.
        400..=499 => SendOutcome::BadRequest { detail: format!("WNS refused the request: {detail}") },
        _ => SendOutcome::Transient { detail: format!("WNS answered unexpectedly: {detail}") },
    };
    Answer::Outcome(outcome)
}

/// 410 "Domain Blocked": the sending domain is blocked for abuse, not the channel gone.
fn domain_blocked(headers: &HeaderMap, body: &str) -> bool {
    let text = format!("{} {body}", header(headers, "x-wns-error-description").unwrap_or_default())
        .to_ascii_lowercase();
    text.contains("domain") && text.contains("block")
}

/// The status and every header support needs (docs/providers/wns.md#support-headers: the status,
/// X-WNS-Msg-ID, X-WNS-Debug-Trace and MS-CV), with the channel redacted.
fn describe(status: u16, headers: &HeaderMap, body: &str, channel: &str) -> String {
    let mut parts = vec![format!("HTTP {status}")];
    for name in [
        "X-WNS-Status",
        "X-WNS-NotificationStatus",
        "X-WNS-DeviceConnectionStatus",
        "X-WNS-Error-Description",
        "X-WNS-Msg-ID",
        "X-WNS-Debug-Trace",
        "MS-CV",
        "Retry-After",
    ] {
        if let Some(value) = header(headers, name) {
            parts.push(format!("{name}: {}", clip(value)));
        }
    }
    let body = body.trim();
    if !body.is_empty() {
        parts.push(format!("body: {}", clip(body)));
    }
    parts.push(format!("channel {channel}"));
    parts.join("; ")
}

/// A header's value as text, if present and printable.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// A JSON number or a numeric string (`86399` or `"86399"`) as whole seconds.
fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The OAuth error of a token endpoint's answer (`error: error_description`), else its text.
fn oauth_error(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(json) if json.get("error").is_some() => {
            let error = json.get("error").and_then(Value::as_str).unwrap_or("?");
            match json.get("error_description").and_then(Value::as_str) {
                Some(description) => clip(&format!("{error}: {description}")),
                None => clip(error),
            }
        }
        _ if body.trim().is_empty() => "(no body)".into(),
        _ => clip(body.trim()),
    }
}

/// Provider text shortened for a detail, on a character boundary, control characters dropped.
fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().filter(|c| !c.is_control()).take(MAX_DETAIL).collect();
    if text.chars().count() > MAX_DETAIL {
        clipped.push('…');
    }
    clipped
}

/// A fresh correlation vector (`MS-CV`): 16 base64 characters and `.0`, so WNS support can find
/// the request.
fn correlation_vector() -> String {
    // A trace id, not a secret: std's randomly keyed hasher gives one without a system call.
    use std::hash::{BuildHasher, Hasher};
    let draw = || std::collections::hash_map::RandomState::new().build_hasher().finish().to_le_bytes();
    let (a, b) = (draw(), draw());
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&a);
    bytes[8..].copy_from_slice(&b[..4]);
    format!("{}.0", STANDARD.encode(bytes))
}

/// `8-4-4-4-12` hex digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An Entra tenant: its GUID or a verified domain. `common`, `organizations` and `consumers`
/// cannot issue client-credentials tokens.
fn check_tenant(tenant: &str) -> Result<&str, String> {
    let domain = !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !is_guid(tenant) && !domain {
        return Err(format!("tenant_id `{}` is neither a GUID nor a domain", clip(tenant)));
    }
    if ["common", "organizations", "consumers"].iter().any(|t| tenant.eq_ignore_ascii_case(t)) {
        return Err(format!("tenant_id `{tenant}` cannot issue client-credentials tokens; name the tenant"));
    }
    Ok(tenant)
}

/// An http(s) URL without credentials; `with_path: false` also wants a bare origin, returned
/// without a trailing slash.
fn check_url(url: &str, name: &str, with_path: bool) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("{name} `{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{name} `{url}` is not an http(s) URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{name} must not carry credentials"));
    }
    if with_path {
        return Ok(parsed.to_string());
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{name} `{url}` must be an origin (scheme, host and port) only"));
    }
    Ok(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_paths_keep_what_follows_the_authority() {
        let cases = [
            ("https://wns2-by3p.notify.windows.com/w/?token=AwYAAABa%2f", "/w/?token=AwYAAABa%2f"),
            ("https://notify.windows.com?token=x", "/?token=x"),
            ("https://cloud.notify.windows.com", "/"),
            ("https://a.notify.windows.com:443/?token=x#frag", "/?token=x"),
        ];
        for (channel, path) in cases {
            assert_eq!(channel_path_and_query(channel), path, "{channel}");
        }
        assert_eq!(
            redact_channel("https://wns2-by3p.notify.windows.com/w/?token=AwYAAABa"),
            "https://wns2-by3p.notify.windows.com/w/?to…(18 chars)"
        );
    }

    #[test]
    fn token_lifetimes_may_be_numbers_or_strings() {
        assert_eq!(seconds(&serde_json::json!(86400)), Some(86400));
        assert_eq!(seconds(&serde_json::json!("86399")), Some(86399));
        assert_eq!(seconds(&serde_json::json!(3599.0)), Some(3599));
        assert_eq!(seconds(&serde_json::json!("soon")), None);
        assert_eq!(seconds(&serde_json::json!(-1)), None);
    }

    #[test]
    fn settings_are_checked() {
        let live = WnsConfig {
            flow: WnsFlow::Live,
            client_id: "ms-app://S-1-15-2-1".into(),
            client_secret: "s".into(),
            tenant_id: None,
            token_url: None,
            endpoint_override: None,
        };
        let http = HttpSettings::default();
        let sender = WnsSender::new(&live, &http).unwrap();
        assert_eq!((sender.token_url.as_str(), sender.scope), (LIVE_TOKEN_URL, LIVE_SCOPE));
        let error = |config: WnsConfig| match WnsSender::new(&config, &http) {
            Err(SenderError::Config(e)) => e,
            Ok(_) => panic!("accepted {config:?}"),
        };
        assert!(error(WnsConfig {
            client_id: "00000000-0000-0000-0000-000000000000".into(),
            ..live.clone()
        })
        .contains("Package SID"));
        assert!(error(WnsConfig { client_secret: " ".into(), ..live.clone() }).contains("client_secret"));
        assert!(error(WnsConfig { endpoint_override: Some("http://127.0.0.1:1/x".into()), ..live.clone() })
            .contains("origin"));
        assert!(error(WnsConfig { token_url: Some("ftp://x/".into()), ..live.clone() }).contains("http(s)"));
        let entra = WnsConfig {
            flow: WnsFlow::Entra,
            client_id: "00000000-0000-0000-0000-00000000c0de".into(),
            tenant_id: Some("contoso.onmicrosoft.com".into()),
            ..live.clone()
        };
        let sender = WnsSender::new(&entra, &http).unwrap();
        assert_eq!(
            sender.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(sender.scope, ENTRA_SCOPE);
        assert!(error(WnsConfig { tenant_id: None, ..entra.clone() }).contains("tenant_id"));
        assert!(error(WnsConfig { tenant_id: Some("common".into()), ..entra.clone() })
            .contains("name the tenant"));
        assert!(error(WnsConfig { tenant_id: Some("a/b".into()), ..entra.clone() }).contains("neither"));
        assert!(error(WnsConfig { client_id: "ms-app://S-1".into(), ..entra }).contains("GUID"));
        let sender = WnsSender::new(
            &WnsConfig { endpoint_override: Some("http://127.0.0.1:8080/".into()), ..live },
            &http,
        )
        .unwrap();
        assert_eq!(
            sender.url_for("https://x.notify.windows.com/w/?token=a"),
            "http://127.0.0.1:8080/w/?token=a"
        );
    }

    #[test]
    fn answers_are_classified() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let class = |status, pairs: &[(&'static str, &'static str)]| match classify(
            status,
            &headers(pairs),
            "",
            "https://x.notify.windows.com/…",
        ) {
            Answer::Outcome(outcome) => outcome.class(),
            Answer::Unauthorized(_) => "refresh",
        };
        assert_eq!(class(200, &[("x-wns-status", "received")]), "delivered");
        assert_eq!(class(200, &[("x-wns-notificationstatus", "Received")]), "delivered");
        assert_eq!(class(200, &[("x-wns-status", "dropped")]), "transient");
        assert_eq!(class(200, &[("x-wns-status", "channelthrottled")]), "rate_limited");
        assert_eq!(class(401, &[]), "refresh");
        assert_eq!(class(410, &[("x-wns-error-description", "Domain Blocked")]), "config_error");
        assert_eq!(class(410, &[]), "invalid_token");
        assert_eq!(class(418, &[]), "bad_request");
        assert_eq!(class(302, &[]), "transient");
    }
}
