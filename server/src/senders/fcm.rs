//! The FCM HTTP v1 sender.

use async_trait::async_trait;

use super::http::{HttpSettings, SenderError};
use super::{OutgoingPush, SendOutcome, Sender};
use crate::config::FcmConfig;

/// Sends call pushes through FCM HTTP v1.
pub struct FcmSender {
    _config: FcmConfig,
}

impl FcmSender {
    /// A sender for `config`, reading its credential files now.
    pub fn new(config: &FcmConfig, _http: &HttpSettings) -> Result<Self, SenderError> {
        Err(SenderError::Config(format!(
            "the FCM HTTP v1 sender is not available in this build ({:?})",
            config
        )))
    }
}

#[async_trait]
impl Sender for FcmSender {
    async fn send(&self, _push: &OutgoingPush) -> SendOutcome {
        SendOutcome::ConfigError { detail: "the FCM HTTP v1 sender is not available in this build".into() }
    }
}
