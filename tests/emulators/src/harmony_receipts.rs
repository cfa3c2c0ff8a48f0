//! Push Kit's delivery receipts (V2), as the Push Kit emulator sends them: after a message
//! reached (or failed to reach) a device, a batch of statuses is `POST`ed to the receipt URL
//! configured in AppGallery Connect, signed with the callback user name and secret
//! (docs/providers/harmony.md#delivery-receipts). Huawei Push Kit guide, "开发消息回执"
//! (developing message receipts): `developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-msg-receipt`.
//!
//! The emulator's settings stand in for AppGallery Connect's receipt configuration
//! ([`ReceiptSettings`]); a result can be scripted per token ([`ReceiptSender::script`]) to play a
//! device whose app was uninstalled (2) or whose notifications are off (6). Control routes:
//! `PUT /_emulator/receipts` (settings as JSON) and `DELETE` (receipts off);
//! `POST /_emulator/receipts/results` `{"token", "result"}` and `DELETE` (scripts cleared);
//! `GET /_emulator/receipts/sent` (every request posted and the answer's status).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use callpush_client::client::{HttpClient, HttpRequest, ReqwestHttpClient};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::serve::lock;

/// The header carrying the signature: "开发消息回执", receipt parameters.
pub const CALLBACK_HEADER: &str = "X-HUAWEI-CALLBACK-ID";

/// Receipt result codes ("回执状态码", the receipt status code table).
pub mod result {
    /// Delivered.
    pub const DELIVERED: i64 = 0;
    /// Token invalid: the app was uninstalled.
    pub const APP_UNINSTALLED: i64 = 2;
    /// Token invalid: not the token the app holds.
    pub const TOKEN_MISMATCH: i64 = 5;
    /// Not shown: the app's notifications are off.
    pub const NOT_SHOWN: i64 = 6;
    /// The device has been offline for 30 days.
    pub const INACTIVE_DEVICE: i64 = 10;
}

/// How long statuses collect before a batch goes out (the emulator's own choice: Huawei says
/// receipts come with some delay after delivery, without a number).
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Most statuses in one receipt request (the emulator's own choice: Huawei does not say).
pub const MAX_BATCH: usize = 100;

/// AppGallery Connect's receipt configuration, as the emulator takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSettings {
    /// The callback address (the app server's receipt URL).
    pub url: String,
    /// The callback user name (optional in AppGallery Connect).
    #[serde(default)]
    pub user_name: String,
    /// The callback secret as AppGallery Connect generates it: base64, decoded for the key.
    #[serde(default)]
    pub secret: Option<String>,
    /// An older configuration's secret: its UTF-8 text is the key.
    #[serde(default)]
    pub legacy_secret: Option<String>,
    /// `appPackageName` of every status.
    #[serde(default = "default_package")]
    pub app_package_name: String,
}

fn default_package() -> String {
    "com.example.callpush".into()
}

impl ReceiptSettings {
    /// The HMAC key: the decoded `secret`, else the bytes of `legacy_secret`.
    fn key(&self) -> Result<Vec<u8>, String> {
        match (&self.secret, &self.legacy_secret) {
            (Some(secret), _) => {
                STANDARD.decode(secret.trim()).map_err(|_| "secret must be base64".to_owned())
            }
            (None, Some(legacy)) => Ok(legacy.as_bytes().to_vec()),
            (None, None) => Err("a secret or legacy_secret is required".into()),
        }
    }
}

/// `X-HUAWEI-CALLBACK-ID` for a request signed at `timestamp` (unix ms) with `nonce`:
/// `timestamp=…;nonce=…;value=Base64(HMAC-SHA256(key, timestamp + nonce + userName))`.
pub fn callback_id(key: &[u8], user_name: &str, timestamp: i64, nonce: &str) -> String {
    let message = format!("{timestamp}{nonce}{user_name}");
    // jsonwebtoken's HS256 signer is HMAC-SHA256 of the message, base64url without padding.
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key),
        jsonwebtoken::Algorithm::HS256,
    )
    .ok()
    .and_then(|mac| URL_SAFE_NO_PAD.decode(mac).ok())
    .unwrap_or_default();
    format!("timestamp={timestamp};nonce={nonce};value={}", STANDARD.encode(signature))
}

/// One receipt request the emulator posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentReceipts {
    /// The `X-HUAWEI-CALLBACK-ID` it carried.
    pub callback_id: String,
    /// Its body.
    pub body: Value,
    /// The answer's status; 0 when none came.
    pub status: u16,
    /// The answer's body, as text.
    pub answer: String,
}

/// `POST /_emulator/receipts/results`: the result every receipt for `token` reports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    token: String,
    result: i64,
}

/// Sends receipts: settings, scripted results, the batch being collected, and what was sent.
/// Cloning shares them.
#[derive(Clone, Default)]
pub struct ReceiptSender {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    settings: Mutex<Option<ReceiptSettings>>,
    scripted: Mutex<HashMap<String, i64>>,
    queue: Mutex<Vec<Value>>,
    sent: Mutex<Vec<SentReceipts>>,
    changed: tokio::sync::Notify,
}

impl ReceiptSender {
    /// Turns receipts on with `settings`, or off with `None`.
    pub fn configure(&self, settings: Option<ReceiptSettings>) {
        *lock(&self.inner.settings) = settings;
    }

    /// From now on every message to `token` reports `result` (and, unless it is 0, never
    /// reaches the app: the device plays an uninstalled app, notifications off, …).
    pub fn script(&self, token: &str, result: i64) {
        lock(&self.inner.scripted).insert(token.to_owned(), result);
    }

    /// Forgets every scripted result.
    pub fn clear_scripts(&self) {
        lock(&self.inner.scripted).clear();
    }

    /// The result scripted for `token`, if any.
    pub fn scripted(&self, token: &str) -> Option<i64> {
        lock(&self.inner.scripted).get(token).copied()
    }

    /// Every receipt request posted so far.
    pub fn sent(&self) -> Vec<SentReceipts> {
        lock(&self.inner.sent).clone()
    }

    /// Waits until `check` holds for what was sent, or `timeout` passes; what was sent then.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        check: impl Fn(&[SentReceipts]) -> bool,
    ) -> Vec<SentReceipts> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            let sent = self.sent();
            if check(&sent) || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.sent();
            }
        }
    }

    /// Queues the status of one message to one token, when receipts are on; the batch goes
    /// out [`BATCH_WINDOW`] after its first status.
    pub(crate) fn queue(
        &self,
        bi_tag: Option<&str>,
        push_type: u8,
        token: &str,
        request_id: &str,
        result: i64,
    ) {
        let Some(settings) = lock(&self.inner.settings).clone() else { return };
        let mut status = json!({
            "pushType": push_type,
            "token": token,
            "requestId": request_id,
            "appPackageName": settings.app_package_name,
            "deliveryStatus": { "result": result, "timestamp": callpush_server::time::now_ms() },
        });
        if let Some(tag) = bi_tag {
            status["biTag"] = tag.into();
        }
        let first = {
            let mut queue = lock(&self.inner.queue);
            queue.push(status);
            queue.len() == 1
        };
        if first {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(BATCH_WINDOW).await;
                let statuses = std::mem::take(&mut *lock(&this.inner.queue));
                for batch in statuses.chunks(MAX_BATCH) {
                    this.post(&settings, batch).await;
                }
            });
        }
    }

    /// Posts one signed batch and records it.
    async fn post(&self, settings: &ReceiptSettings, statuses: &[Value]) {
        let body = json!({ "statuses": statuses });
        let key = match settings.key() {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(error = %e, "Push Kit emulator: receipts not sent");
                return;
            }
        };
        let nonce = uuid::Uuid::new_v4().hyphenated().to_string();
        let callback_id = callback_id(&key, &settings.user_name, callpush_server::time::now_ms(), &nonce);
        let request = HttpRequest {
            method: "POST".into(),
            url: settings.url.clone(),
            headers: HashMap::from([
                ("Content-Type".to_owned(), "application/json".to_owned()),
                (CALLBACK_HEADER.to_owned(), callback_id.clone()),
            ]),
            body: Some(body.to_string().into_bytes()),
            timeout_ms: 10_000,
        };
        let (status, answer) = match ReqwestHttpClient::new().send(request).await {
            Ok(response) => (response.status, String::from_utf8_lossy(&response.body).into_owned()),
            Err(e) => (0, format!("{e:?}")),
        };
        lock(&self.inner.sent).push(SentReceipts { callback_id, body, status, answer });
        self.inner.changed.notify_waiters();
    }

    /// The control routes, to merge into the emulator's router.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/_emulator/receipts", put(configure).delete(turn_off))
            .route("/_emulator/receipts/results", post(script).delete(clear_scripts))
            .route("/_emulator/receipts/sent", get(sent))
            .with_state(self.clone())
    }
}

async fn configure(
    State(receipts): State<ReceiptSender>,
    Json(settings): Json<ReceiptSettings>,
) -> Result<StatusCode, (StatusCode, String)> {
    settings.key().map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    receipts.configure(Some(settings));
    Ok(StatusCode::NO_CONTENT)
}

async fn turn_off(State(receipts): State<ReceiptSender>) -> StatusCode {
    receipts.configure(None);
    StatusCode::NO_CONTENT
}

async fn script(State(receipts): State<ReceiptSender>, Json(script): Json<Script>) -> StatusCode {
    receipts.script(&script.token, script.result);
    StatusCode::NO_CONTENT
}

async fn clear_scripts(State(receipts): State<ReceiptSender>) -> StatusCode {
    receipts.clear_scripts();
    StatusCode::NO_CONTENT
}

async fn sent(State(receipts): State<ReceiptSender>) -> Json<Vec<SentReceipts>> {
    Json(receipts.sent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_standard_base64() {
        // The published example HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // = f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8.
        let header = callback_id(b"key", "dog", 0, "The-quick-brown-fox-jumps-over-the-lazy-");
        // The message is timestamp + nonce + userName: "0" + nonce + "dog" ≠ the RFC's text, so
        // check the shape and the HMAC against the RFC vector separately.
        assert!(header.starts_with("timestamp=0;nonce=The-quick-brown-fox-jumps-over-the-lazy-;value="));
        let mac = jsonwebtoken::crypto::sign(
            b"The quick brown fox jumps over the lazy dog",
            &jsonwebtoken::EncodingKey::from_secret(b"key"),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        let hex: String = URL_SAFE_NO_PAD.decode(mac).unwrap().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
        let value = header.rsplit_once("value=").unwrap().1;
        assert_eq!(STANDARD.decode(value).unwrap().len(), 32);
    }

    #[test]
    fn the_key_is_the_decoded_secret_or_the_legacy_text() {
        let settings = |secret: Option<&str>, legacy: Option<&str>| ReceiptSettings {
            url: "http://127.0.0.1:9/".into(),
            user_name: String::new(),
            secret: secret.map(Into::into),
            legacy_secret: legacy.map(Into::into),
            app_package_name: default_package(),
        };
        assert_eq!(settings(Some("c2VjcmV0"), Some("other")).key().unwrap(), b"secret");
        assert_eq!(settings(None, Some("plain text")).key().unwrap(), b"plain text");
        assert!(settings(Some("not base64!"), None).key().is_err());
        assert!(settings(None, None).key().is_err());
    }
}
