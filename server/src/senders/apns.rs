//! The APNs sender.

use async_trait::async_trait;

use super::http::{HttpSettings, SenderError};
use super::{OutgoingPush, SendOutcome, Sender};
use crate::config::ApnsConfig;

/// Sends call pushes through APNs.
pub struct ApnsSender {
    _config: ApnsConfig,
}

impl ApnsSender {
    /// A sender for `config`, reading its credential files now.
    pub fn new(config: &ApnsConfig, _http: &HttpSettings) -> Result<Self, SenderError> {
        Err(SenderError::Config(format!("the APNs sender is not available in this build ({:?})", config)))
    }
}

#[async_trait]
impl Sender for ApnsSender {
    async fn send(&self, _push: &OutgoingPush) -> SendOutcome {
        SendOutcome::ConfigError { detail: "the APNs sender is not available in this build".into() }
    }
}
