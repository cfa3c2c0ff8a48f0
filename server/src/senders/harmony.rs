//! The Push Kit v3 sender.

use async_trait::async_trait;

use super::http::{HttpSettings, SenderError};
use super::{OutgoingPush, SendOutcome, Sender};
use crate::config::HarmonyConfig;

/// Sends call pushes through Push Kit v3.
pub struct HarmonySender {
    _config: HarmonyConfig,
}

impl HarmonySender {
    /// A sender for `config`, reading its credential files now.
    pub fn new(config: &HarmonyConfig, _http: &HttpSettings) -> Result<Self, SenderError> {
        Err(SenderError::Config(format!(
            "the Push Kit v3 sender is not available in this build ({:?})",
            config
        )))
    }
}

#[async_trait]
impl Sender for HarmonySender {
    async fn send(&self, _push: &OutgoingPush) -> SendOutcome {
        SendOutcome::ConfigError { detail: "the Push Kit v3 sender is not available in this build".into() }
    }
}
