//! The WNS sender.

use async_trait::async_trait;

use super::http::{HttpSettings, SenderError};
use super::{OutgoingPush, SendOutcome, Sender};
use crate::config::WnsConfig;

/// Sends call pushes through WNS.
pub struct WnsSender {
    _config: WnsConfig,
}

impl WnsSender {
    /// A sender for `config`, reading its credential files now.
    pub fn new(config: &WnsConfig, _http: &HttpSettings) -> Result<Self, SenderError> {
        Err(SenderError::Config(format!("the WNS sender is not available in this build ({:?})", config)))
    }
}

#[async_trait]
impl Sender for WnsSender {
    async fn send(&self, _push: &OutgoingPush) -> SendOutcome {
        SendOutcome::ConfigError { detail: "the WNS sender is not available in this build".into() }
    }
}
