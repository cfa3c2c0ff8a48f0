//! The registrar and ring API (server/README.md, `/openapi.json`) over the app's [`HttpClient`].
//!
//! Every request carries the app's bearer token. Transient failures (no answer, 408, 429, 5xx)
//! are retried with exponential backoff and full jitter, honouring `Retry-After`; a 401 asks the
//! app for a fresh token once; anything else is a typed, permanent error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::data_dir::random_u64;
use super::host::{AccessTokenProvider, HttpClient, HttpError, HttpRequest, HttpResponse};
use super::policy::{Retry, RetryPolicy};
use crate::adapter::Registrar;
use crate::error::Error;
use callpush_proto::api::{
    CallActionBody, CallStatus, ErrorBody, InstallationBody, InstallationResponse, NotificationsBody,
    VerificationState, VerifyBody,
};

use crate::model::{InstallationRequest, Registration};

/// The lease the registrar answered for `request`. The API gives instants in unix milliseconds;
/// a [`Registration`] keeps them in unix seconds, as the client's clock and policies count.
fn registration(answer: InstallationResponse, request: &InstallationRequest) -> Registration {
    Registration {
        installation_id: answer.installation_id,
        platform: request.platform,
        token: request.token.clone(),
        ttl_seconds: request.ttl_seconds,
        apns_environment: request.apns_environment,
        app_id: request.app_id.clone(),
        apns_alert_token: request.apns_alert_token.clone(),
        expires_at: answer.expires_at_ms.div_euclid(1000),
        server_time: answer.server_time_ms.div_euclid(1000),
        signing_keys: answer.signing_keys,
        user_id: Some(answer.user_id),
        verification_pending: answer.verification == Some(VerificationState::Pending),
        device_key_id: answer.device_key_id,
    }
}

/// The body that registers `request`.
fn installation_body(request: &InstallationRequest) -> InstallationBody {
    InstallationBody {
        installation_id: Some(request.installation_id.clone()),
        platform: request.platform,
        token: request.token.clone(),
        ttl_seconds: Some(request.ttl_seconds),
        apns_environment: request.apns_environment,
        app_id: request.app_id.clone(),
        alert_token: request.apns_alert_token.clone(),
        device_key: request.device_key.clone(),
    }
}

/// What the device may do to a ringing call on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallAction {
    /// `POST /v1/calls/{id}/answer`.
    Answer,
    /// `POST /v1/calls/{id}/decline`.
    Decline,
}

impl CallAction {
    /// The last segment of the action's path.
    fn path_segment(self) -> &'static str {
        match self {
            CallAction::Answer => "answer",
            CallAction::Decline => "decline",
        }
    }
}

/// What a call action's refusal tells about the call.
pub(crate) enum ActionError {
    /// The call is no longer ringing; its status says why.
    NotRinging(CallStatus),
    /// Anything else.
    Failed(Error),
}

/// A registrar reached over HTTP.
pub(crate) struct HttpRegistrar {
    base_url: String,
    http: Arc<dyn HttpClient>,
    tokens: Arc<dyn AccessTokenProvider>,
    retry: RetryPolicy,
}

impl HttpRegistrar {
    pub(crate) fn new(
        base_url: &str,
        http: Arc<dyn HttpClient>,
        tokens: Arc<dyn AccessTokenProvider>,
        retry: RetryPolicy,
    ) -> Result<Self, Error> {
        let base_url = base_url.trim_end_matches('/');
        let scheme_ok = base_url.starts_with("https://") || base_url.starts_with("http://");
        if !scheme_ok || base_url.len() <= "https://".len() || base_url.chars().any(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!("server_url `{base_url}` is not an http(s) URL")));
        }
        Ok(HttpRegistrar { base_url: base_url.to_owned(), http, tokens, retry })
    }

    /// `GET /v1/calls/{id}?wait=`: returns when the call changes or `wait` passes.
    pub(crate) async fn call_status(&self, call_id: &str, wait: Duration) -> Result<CallStatus, Error> {
        let path = format!("/v1/calls/{call_id}?wait={}", wait.as_secs());
        let timeout = wait + Duration::from_secs(10);
        let response = self.send("GET", &path, None, timeout).await?;
        match response.status {
            200 => json(&response),
            404 => Err(Error::CallNotFound(call_id.to_owned())),
            _ => Err(permanent(&response)),
        }
    }

    /// `POST /v1/calls/{id}/answer` or `/decline`.
    pub(crate) async fn call_action(
        &self,
        call_id: &str,
        action: CallAction,
        installation_id: &str,
    ) -> Result<CallStatus, ActionError> {
        let body = to_json(&CallActionBody { installation_id: installation_id.to_owned() });
        let path = format!("/v1/calls/{call_id}/{}", action.path_segment());
        let response = self
            .send("POST", &path, Some(body), Duration::from_secs(15))
            .await
            .map_err(ActionError::Failed)?;
        match response.status {
            200 => json(&response).map_err(ActionError::Failed),
            404 => Err(ActionError::Failed(Error::CallNotFound(call_id.to_owned()))),
            409 => match serde_json::from_slice::<ErrorBody>(&response.body).ok().and_then(|b| b.call) {
                Some(status) => Err(ActionError::NotRinging(status)),
                None => Err(ActionError::Failed(permanent(&response))),
            },
            _ => Err(ActionError::Failed(permanent(&response))),
        }
    }

    /// `POST /v1/installations/{id}/verify`: answers a verify push with its nonce, proving this
    /// device holds the token `request` registered. Returns the lease, now live.
    pub(crate) async fn verify_installation(
        &self,
        request: &InstallationRequest,
        nonce: &str,
    ) -> Result<Registration, Error> {
        let path = format!("/v1/installations/{}/verify", request.installation_id);
        let body = to_json(&VerifyBody { nonce: nonce.to_owned() });
        let response = self.send("POST", &path, Some(body), Duration::from_secs(15)).await?;
        if response.status != 200 {
            return Err(permanent(&response));
        }
        Ok(registration(json(&response)?, request))
    }

    /// `PUT /v1/installations/{id}/notifications`: tells the server whether the app's
    /// notifications are enabled on the device.
    pub(crate) async fn report_notifications(
        &self,
        installation_id: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        let path = format!("/v1/installations/{installation_id}/notifications");
        let body = to_json(&NotificationsBody { enabled });
        let response = self.send("PUT", &path, Some(body), Duration::from_secs(15)).await?;
        match response.status {
            200..=299 => Ok(()),
            404 => Err(Error::NotRegistered(installation_id.to_owned())),
            _ => Err(permanent(&response)),
        }
    }

    /// Sends with the bearer token, retrying transient failures and refreshing a refused token once.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<HttpResponse, Error> {
        let mut fresh_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token =
                self.tokens.access_token(fresh_token).await.map_err(|e| Error::AccessToken(e.to_string()))?;
            let mut headers = HashMap::from([
                ("Authorization".to_owned(), format!("Bearer {token}")),
                ("Accept".to_owned(), "application/json".to_owned()),
            ]);
            let body = body.as_ref().map(|b| {
                headers.insert("Content-Type".to_owned(), "application/json".to_owned());
                b.to_string().into_bytes()
            });
            let request = HttpRequest {
                method: method.to_owned(),
                url: format!("{}{path}", self.base_url),
                headers,
                body,
                timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            };
            let (retry_after, failure) = match self.http.send(request).await {
                Ok(response) if response.status == 401 && !fresh_token => {
                    fresh_token = true;
                    attempt -= 1;
                    continue;
                }
                Ok(response) if response.status == 401 => {
                    return Err(Error::Unauthorized(error_message(&response)))
                }
                Ok(response) if is_transient(response.status) => {
                    let after = response.header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok());
                    (after.map(Duration::from_secs), format!("HTTP {}", response.status))
                }
                Ok(response) => return Ok(response),
                Err(HttpError::Network { detail } | HttpError::Timeout { detail }) => (None, detail),
            };
            match self.retry.after_failure(attempt, retry_after, random_u64()) {
                Retry::After(delay) => tokio::time::sleep(delay).await,
                Retry::GiveUp => {
                    return Err(Error::Network(format!(
                        "{method} {path}: {failure} (after {})",
                        attempts(attempt)
                    )))
                }
            }
        }
    }
}

#[async_trait]
impl Registrar for HttpRegistrar {
    async fn put_installation(&self, request: &InstallationRequest) -> Result<Registration, Error> {
        let path = format!("/v1/installations/{}", request.installation_id);
        let body = to_json(&installation_body(request));
        let response = self.send("PUT", &path, Some(body), Duration::from_secs(15)).await?;
        if !(200..300).contains(&response.status) {
            return Err(permanent(&response));
        }
        let answer: InstallationResponse = json(&response)?;
        if answer.installation_id != request.installation_id {
            return Err(Error::Registrar {
                status: response.status,
                code: "wrong_installation".into(),
                message: "the registrar answered for another installation".into(),
            });
        }
        Ok(registration(answer, request))
    }

    async fn delete_installation(&self, installation_id: &str) -> Result<(), Error> {
        let path = format!("/v1/installations/{installation_id}");
        let response = self.send("DELETE", &path, None, Duration::from_secs(15)).await?;
        match response.status {
            // Already gone is what was asked for.
            200..=299 | 404 => Ok(()),
            _ => Err(permanent(&response)),
        }
    }
}

/// "1 attempt", "2 attempts".
fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{n} attempts")
    }
}

fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status)
}

fn to_json<T: serde::Serialize>(body: &T) -> serde_json::Value {
    // The API types are plain strings, numbers and lists: they always serialise.
    serde_json::to_value(body).unwrap_or_default()
}

fn json<T: serde::de::DeserializeOwned>(response: &HttpResponse) -> Result<T, Error> {
    serde_json::from_slice(&response.body).map_err(|e| Error::Registrar {
        status: response.status,
        code: "bad_response".into(),
        message: format!("the registrar's answer is not what the registrar API says: {e}"),
    })
}

fn permanent(response: &HttpResponse) -> Error {
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(body) => {
            Error::Registrar { status: response.status, code: body.error.code, message: body.error.message }
        }
        Err(_) => Error::Registrar {
            status: response.status,
            code: "http_error".into(),
            message: String::from_utf8_lossy(&response.body).chars().take(200).collect(),
        },
    }
}

fn error_message(response: &HttpResponse) -> String {
    serde_json::from_slice::<ErrorBody>(&response.body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("HTTP {}", response.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_in_words_that_agree() {
        assert_eq!([attempts(1), attempts(2), attempts(0)], ["1 attempt", "2 attempts", "0 attempts"]);
    }

    #[test]
    fn a_lease_in_milliseconds_is_kept_in_seconds() {
        let request = InstallationRequest {
            installation_id: "i".into(),
            platform: callpush_proto::model::Platform::Fcm,
            token: "t".into(),
            ttl_seconds: 86_400,
            apns_environment: None,
            app_id: None,
            apns_alert_token: None,
            device_key: None,
        };
        let answer = InstallationResponse {
            installation_id: "i".into(),
            user_id: "u".into(),
            expires_at_ms: 1_767_312_000_999,
            server_time_ms: 1_767_225_600_500,
            signing_keys: Vec::new(),
            alert_token: None,
            verification: None,
            device_key_id: None,
        };
        let lease = registration(answer, &request);
        assert_eq!((lease.expires_at, lease.server_time), (1_767_312_000, 1_767_225_600));
    }
}
