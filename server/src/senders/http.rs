//! The HTTP clients senders use: rustls with the system's roots plus any configured extra root
//! (the emulators' test CA), so the same code talks to providers and to their emulators.

use std::path::Path;
use std::time::Duration;

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
