//! An [`HttpClient`] on `reqwest`, for Windows and desktop apps, servers and tests.
//!
//! Behind the `reqwest` cargo feature, off by default: mobile apps use their platform's HTTP
//! stack through the binding, and the mobile library carries no HTTP or TLS code.

use std::time::Duration;

use super::host::{HttpClient, HttpError, HttpRequest, HttpResponse};

/// Sends the client's requests with a shared `reqwest::Client` (connection pooling, rustls).
#[derive(Debug, Clone, Default)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
}

impl ReqwestHttpClient {
    /// A client with reqwest's defaults.
    pub fn new() -> Self {
        ReqwestHttpClient::default()
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestHttpClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::Network { detail: format!("bad method {}", request.method) })?;
        let mut builder = self
            .client
            .request(method, &request.url)
            .timeout(Duration::from_millis(request.timeout_ms.into()));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(HttpResponse { status, headers, body })
    }
}

fn transport_error(e: reqwest::Error) -> HttpError {
    let timeout = e.is_timeout();
    // Without the URL: it can carry tokens (WNS channel URIs, query strings).
    let message = e.without_url().to_string();
    if timeout {
        HttpError::Timeout { detail: message }
    } else {
        HttpError::Network { detail: message }
    }
}

/// An [`HttpClient`] on reqwest for foreign code: desktop JVM, Windows and server hosts that
/// would rather use rustls than their platform's stack. Only in builds with the `reqwest` feature.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn reqwest_http_client() -> std::sync::Arc<dyn HttpClient> {
    std::sync::Arc::new(ReqwestHttpClient::new())
}
