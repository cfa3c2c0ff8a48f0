//! The HTTP clients senders use: rustls with the system's roots plus any configured extra root
//! (the emulators' test CA), so the same code talks to providers and to their emulators; how
//! long each request may take ([`attempt_timeout`]); and replacing a client whose connection may
//! be hung ([`Connections`]).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use callpush_proto::model::Platform;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::SendOutcome;
use crate::metrics::{provider_connections_replaced, PlatformLabels};

/// Why a sender could not be set up. Each is a configuration problem an operator must fix.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// A credential or CA file could not be read or is not what it should be.
    #[error("{0}")]
    Config(String),
}

/// Settings shared by every sender's HTTP client.
#[derive(Clone, Default)]
pub struct HttpSettings {
    extra_roots: Vec<reqwest::Certificate>,
}

impl HttpSettings {
    /// Settings trusting the certificates of `ca_file` (PEM) as well as the system's.
    pub fn new(ca_file: Option<&Path>) -> Result<Self, SenderError> {
        let mut extra_roots = Vec::new();
        if let Some(path) = ca_file {
            let pem =
                std::fs::read(path).map_err(|e| SenderError::Config(format!("{}: {e}", path.display())))?;
            extra_roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SenderError::Config(format!("{}: not PEM certificates: {e}", path.display())))?;
        }
        Ok(HttpSettings { extra_roots })
    }

    /// Settings trusting `ca_pem` (for tests and the demo, where the CA is made in memory).
    pub fn with_ca_pem(ca_pem: &str) -> Result<Self, SenderError> {
        let extra_roots = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
            .map_err(|e| SenderError::Config(format!("not PEM certificates: {e}")))?;
        Ok(HttpSettings { extra_roots })
    }

    /// A client builder with these roots, sane timeouts and connection reuse. Senders give
    /// each request its own [`attempt_timeout`]; the client's own timeout is only a backstop.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .timeout(MAX_ATTEMPT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(3600))
            .tcp_keepalive(Duration::from_secs(60));
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
    }

    /// A client for HTTP/1.1 providers (Push Kit, FCM, WNS).
    pub fn client(&self) -> Result<reqwest::Client, SenderError> {
        self.builder().build().map_err(|e| SenderError::Config(format!("HTTP client: {e}")))
    }
}

/// The share of a push's remaining time one request may take: a third, so that a request that
/// hangs leaves time to retry on a fresh connection.
const ATTEMPT_SHARE: u32 = 3;
/// The least time a request is given (unless less is left): enough for a provider's usual
/// answer over a new TLS connection.
pub const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The most time a request is given, however long the push matters (missed-call alerts do
/// for an hour): a provider that has not answered by then is not going to.
pub const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one provider request made for a push may take at `now_ms` (unix ms), the push mattering until
/// `expires_at` (unix seconds; rings until the ring deadline): a third of the time left, at
/// least [`MIN_ATTEMPT_TIMEOUT`] and at most [`MAX_ATTEMPT_TIMEOUT`], never past the deadline.
/// With no time left it is the push's outcome, `Transient`, and no request is made.
pub fn attempt_timeout(now_ms: i64, expires_at: i64) -> Result<Duration, SendOutcome> {
    let since_epoch = Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    let deadline = u64::try_from(expires_at).ok().map(Duration::from_secs);
    let left = deadline.and_then(|d| d.checked_sub(since_epoch)).filter(|left| !left.is_zero());
    let Some(left) = left else {
        return Err(SendOutcome::Transient {
            detail: "no time left before the push's deadline: not sent".into(),
        });
    };
    Ok((left / ATTEMPT_SHARE).clamp(MIN_ATTEMPT_TIMEOUT, MAX_ATTEMPT_TIMEOUT).min(left))
}

/// A sender's HTTP client, replaced when one of its connections may be hung.
///
/// A request that times out may be stuck on a connection that no longer answers (on HTTP/2, every
/// push multiplexed on it is). Replacing the client drops its pool, so the next request opens a
/// fresh connection, while requests in flight on the old client finish there; on HTTP/1.1 the
/// timed-out request's connection is thereby never reused. Concurrent failures of one client
/// replace it once. Each replacement is counted in `provider_connections_replaced` and logged
/// once, at warn.
pub struct Connections {
    platform: Platform,
    /// Names the client in logs: `FCM`, `APNs sandbox`, …
    name: String,
    build: Box<dyn Fn() -> Result<reqwest::Client, SenderError> + Send + Sync>,
    current: Mutex<Connection>,
}

/// The client in use when a request was made, to say which one failed.
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: reqwest::Client,
    /// Counts replacements.
    generation: u64,
}

impl Connections {
    /// A first client from `build`, which makes every replacement too.
    pub fn new(
        platform: Platform,
        name: impl Into<String>,
        build: impl Fn() -> Result<reqwest::Client, SenderError> + Send + Sync + 'static,
    ) -> Result<Self, SenderError> {
        let client = build()?;
        Ok(Connections {
            platform,
            name: name.into(),
            build: Box::new(build),
            current: Mutex::new(Connection { client, generation: 0 }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        crate::sync::unpoisoned(self.current.lock())
    }

    /// The client to make a request with.
    pub fn current(&self) -> Connection {
        self.lock().clone()
    }

    /// Replaces `used` (unless that was done already) because of `reason`, which must not
    /// name a device or access token.
    pub fn replace(&self, used: &Connection, reason: &str) {
        let mut current = self.lock();
        if current.generation != used.generation {
            return;
        }
        match (self.build)() {
            Ok(client) => *current = Connection { client, generation: used.generation + 1 },
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %e, "could not replace the provider connection");
                return;
            }
        }
        drop(current);
        provider_connections_replaced()
            .get_or_create(&PlatformLabels { platform: self.platform.as_str().to_owned() })
            .inc();
        tracing::warn!(provider = %self.name, reason, "replaced the provider connection; the next request opens a new one");
    }

    /// Notes that a request made on `used` failed with `error`: one that timed out may have
    /// been on a hung connection, which is replaced.
    pub fn failed(&self, used: &Connection, error: &reqwest::Error) {
        if error.is_timeout() {
            self.replace(used, "a request timed out");
        }
    }
}

/// The `Authorization` header value of the credential in use (`<scheme> <token>`), made once per
/// credential rather than per request, and marked sensitive (never logged).
#[derive(Default)]
pub struct AuthHeader {
    cached: Mutex<Option<(String, reqwest::header::HeaderValue)>>,
}

impl AuthHeader {
    /// `<scheme> <token>` as a header value: the one made before if `token` is the same.
    pub fn value(&self, scheme: &str, token: &str) -> Result<reqwest::header::HeaderValue, String> {
        let mut cached = crate::sync::unpoisoned(self.cached.lock());
        if let Some((known, value)) = cached.as_ref() {
            if known == token {
                return Ok(value.clone());
            }
        }
        let mut value = reqwest::header::HeaderValue::from_str(&format!("{scheme} {token}"))
            .map_err(|_| "the provider credential cannot be sent in an HTTP header".to_owned())?;
        value.set_sensitive(true);
        *cached = Some((token.to_owned(), value.clone()));
        Ok(value)
    }
}

/// A transport error for an outcome's detail: what went wrong (`timed out`, `could not
/// connect`, `connection failed`) and its causes, without the URL, which may carry a device
/// token.
pub fn transport_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "connection failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The longest `Retry-After` a sender passes on: a day. A provider asking for more is treated as
/// asking for a day; the dispatcher never waits past a ring's deadline anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// A response's `Retry-After` as a delay from `now_ms` (unix ms): delay-seconds or an HTTP-date
/// (RFC 9110 §10.2.3); a date in the past means "now", and the delay is capped at
/// [`MAX_RETRY_AFTER`]. `None` when the header is absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now_ms: i64) -> Option<Duration> {
    let now = UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Most bytes of a provider's answer read: the answers are a few hundred bytes, and a provider
/// (or something posing as one) never makes the server buffer more.
pub const MAX_ANSWER: usize = 64 * 1024;

/// Reads at most [`MAX_ANSWER`] bytes of a response body, as text.
pub async fn read_capped(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(value: &str, now_unix: i64) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.parse().unwrap());
        retry_after(&headers, now_unix * 1000)
    }

    #[test]
    fn attempts_get_a_third_of_the_time_left_within_bounds() {
        let ms = Duration::from_millis;
        // (now, unix ms; deadline, unix seconds; timeout)
        let table = [
            (1_000_000_000, 1_000_027, ms(9_000)),  // a third of 27 s
            (1_000_000_000, 1_000_012, ms(4_000)),  // a 12 s ring
            (1_000_009_000, 1_000_012, ms(1_000)),  // a third of 3 s
            (1_000_010_500, 1_000_012, ms(1_000)),  // 1.5 s left: the floor
            (1_000_011_250, 1_000_012, ms(750)),    // less than the floor left: all of it
            (1_000_000_000, 1_000_031, ms(10_000)), // the cap
            (1_000_000_000, 1_003_600, ms(10_000)), // a missed-call alert's hour: the cap
            (1_000_000_000, i64::MAX, ms(10_000)),  // never expires: the cap
        ];
        for (now, expires_at, timeout) in table {
            assert_eq!(attempt_timeout(now, expires_at).ok(), Some(timeout), "{now} ms, {expires_at}");
        }
        for (now, expires_at) in
            [(1_000_000_000, 1_000_000), (1_000_000_001, 1_000_000), (0, 0), (0, -1), (0, i64::MIN)]
        {
            let Err(SendOutcome::Transient { detail }) = attempt_timeout(now, expires_at) else {
                panic!("{now} ms, {expires_at}: no time left")
            };
            assert!(detail.contains("no time left"), "{detail}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(after(" 17 ", 0), Some(Duration::from_secs(17)));
        assert_eq!(after("Sun, 06 Nov 1994 08:49:47 GMT", 784_111_777), Some(Duration::from_secs(10)));
        assert_eq!(
            after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800),
            Some(Duration::ZERO),
            "past means now"
        );
        assert_eq!(after(&u64::MAX.to_string(), 0), Some(MAX_RETRY_AFTER));
        assert_eq!(after("Sun, 06 Nov 1994 08:49:37 CET", 0), None);
        assert_eq!(after("Sun, 06 Nov 1994 25:49:37 GMT", 0), None);
        assert_eq!(after("soon", 0), None);
        assert_eq!(after("-5", 0), None);
        assert_eq!(retry_after(&HeaderMap::new(), crate::time::now_ms()), None);
    }
}
