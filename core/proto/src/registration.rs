//! What makes a registration acceptable, checked the same way on the device (before it is sent)
//! and on the server (when it arrives): the installation id, the lease length, the app id, the
//! token and the APNs alert token.

use crate::error::TokenError;
use crate::ids::INSTALLATION_ID;
use crate::model::{
    ApnsEnvironment, InstallationRequest, Platform, RegisterOptions, MAX_TTL_SECONDS, MIN_TTL_SECONDS,
};
use crate::token::normalize_token;

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The push token or the alert token breaks its platform's rules.
    #[error("invalid push token: {0}")]
    InvalidToken(#[from] TokenError),
    /// Another field is out of range or badly formed; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Validates `token` and `opts` for `platform` into the request the registrar stores, with the
/// token (and alert token) in normal form. `apns_environment` is required for APNs and dropped
/// for the other platforms.
pub fn installation_request(
    platform: Platform,
    token: &str,
    opts: &RegisterOptions,
    apns_environment: Option<ApnsEnvironment>,
) -> Result<InstallationRequest, RegistrationError> {
    if !INSTALLATION_ID.accepts(&opts.installation_id) {
        return Err(RegistrationError::InvalidArgument(INSTALLATION_ID.refusal()));
    }
    if !(MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&opts.ttl_seconds) {
        return Err(RegistrationError::InvalidArgument(format!(
            "ttl_seconds is {}; it must be from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}",
            opts.ttl_seconds
        )));
    }
    if let Some(app_id) = &opts.app_id {
        if app_id.is_empty()
            || app_id.len() > 255
            || app_id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(RegistrationError::InvalidArgument(
                "app_id must be 1 to 255 bytes without spaces".into(),
            ));
        }
    }
    let apns_environment = match platform {
        Platform::Apns => Some(apns_environment.ok_or(TokenError::MissingApnsEnvironment)?),
        _ => None,
    };
    let token = normalize_token(platform, token)?;
    let apns_alert_token =
        opts.apns_alert_token.as_deref().map(|t| alert_token(platform, &token, t)).transpose()?;
    Ok(InstallationRequest {
        installation_id: opts.installation_id.clone(),
        platform,
        token,
        ttl_seconds: opts.ttl_seconds,
        apns_environment,
        app_id: opts.app_id.clone(),
        apns_alert_token,
        device_key: None,
    })
}

/// Checks an APNs alert token by the same rules as the VoIP token (`voip_token`, normalised)
/// and returns its normal form: APNs only, and never the VoIP token itself.
fn alert_token(platform: Platform, voip_token: &str, alert: &str) -> Result<String, TokenError> {
    if platform != Platform::Apns {
        return Err(TokenError::AlertTokenNotApns { platform });
    }
    let alert = normalize_token(Platform::Apns, alert).map_err(|e| TokenError::BadAlertToken(Box::new(e)))?;
    if alert == voip_token {
        return Err(TokenError::AlertTokenIsVoipToken);
    }
    Ok(alert)
}
