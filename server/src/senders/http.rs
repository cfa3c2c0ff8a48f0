//! The HTTP clients senders use: rustls with the system's roots plus any configured extra root
//! (the emulators' test CA), so the same code talks to providers and to their emulators.

use std::path::Path;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

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

    /// A client builder with these roots, sane timeouts and connection reuse.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
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

/// The longest `Retry-After` a sender passes on: a day. A provider asking for more is treated as
/// asking for a day; the dispatcher never waits past a ring's deadline anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// A response's `Retry-After` as a delay from `now`: delay-seconds or an HTTP-date
/// (RFC 9110 §10.2.3); a date in the past means "now", and the delay is capped at
/// [`MAX_RETRY_AFTER`]. `None` when the header is absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn after(value: &str, now_unix: u64) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.parse().unwrap());
        retry_after(&headers, UNIX_EPOCH + Duration::from_secs(now_unix))
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
        assert_eq!(retry_after(&HeaderMap::new(), SystemTime::now()), None);
    }
}
