//! Push Kit delivery receipts (V2), docs/providers/harmony.md#delivery-receipts.
//!
//! Push Kit posts what became of the messages it delivered to `POST /v1/receipts/harmony`,
//! signed with the callback user name and secret configured in AppGallery Connect:
//! `X-HUAWEI-CALLBACK-ID: timestamp=<unix ms>;nonce=<uuid>;value=<signature>`, where the
//! signature is `Base64(HMAC-SHA256(key, timestamp + nonce + userName))`.
//!
//! This module decides without I/O: whether a request is signed ([`ReceiptVerifier::verify`],
//! given `now`), what its body says ([`parse_body`]), and what each result code leads to
//! ([`action`]). [`Receipts::handle`] does the I/O: the nonce (replays are refused across
//! instances, in the database), pruning, the notification flag, the call timeline, metrics.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callpush_proto::model::Platform;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::HarmonyReceiptsConfig;
use crate::domain::{Notifications, NotificationsSource, PushKind};
use crate::metrics::{Metrics, ResultLabels};
use crate::store::{Store, StoreError};

/// The header carrying the signature.
pub const CALLBACK_HEADER: &str = "x-huawei-callback-id";
/// How far a receipt's timestamp may be from the server's clock, ms. Push Kit signs each
/// request as it sends it; five minutes covers clock drift between well-run clocks and a slow
/// request many times over, while a captured request is useless soon after. Nonces are
/// remembered this long past their timestamp, so every replay within the window is caught.
pub const MAX_SKEW_MS: i64 = 300_000;
/// Largest receipt request body, bytes. A status is a few hundred bytes with a real token, so
/// a full batch of [`MAX_STATUSES`] fits several times over.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most statuses in one request: as many as tokens in one Push Kit send request.
pub const MAX_STATUSES: usize = 1000;
/// Longest `X-HUAWEI-CALLBACK-ID` header, bytes.
const MAX_HEADER: usize = 512;
/// Longest nonce, bytes (Push Kit sends a 36-character UUID).
const MAX_NONCE: usize = 64;
/// Longest `biTag`, bytes (Push Kit's own limit).
const MAX_BI_TAG: usize = 64;
/// Longest token, bytes (as `normalize_token` accepts).
const MAX_TOKEN: usize = 4096;
/// Longest `requestId` and `appPackageName`, bytes.
const MAX_ID: usize = 256;

/// The result codes callpush acts on (docs/providers/harmony.md#receipt-results).
pub mod result {
    /// Delivered to the device.
    pub const DELIVERED: i64 = 0;
    /// Token invalid: the app is not installed any more.
    pub const APP_UNINSTALLED: i64 = 2;
    /// Token invalid: not the token the app holds now.
    pub const TOKEN_MISMATCH: i64 = 5;
    /// Not shown: notifications off (system switch, the app's channel, or minor mode).
    pub const NOT_SHOWN: i64 = 6;
    /// The device has been offline for 30 days; nothing is sent to it.
    pub const INACTIVE_DEVICE: i64 = 10;
}

/// The result codes Push Kit documents, with their meaning: metric labels and timeline detail.
const KNOWN_RESULTS: [(i64, &str); 27] = [
    (0, "delivered to the device"),
    (2, "token invalid: the app was uninstalled"),
    (5, "token invalid: not the token the app holds now"),
    (6, "not shown: the app's notifications are off on the device"),
    (10, "not sent: the device has been offline for 30 days"),
    (14, "other error: Push Kit internal network failure"),
    (15, "offline message dropped (collapsed or over the 120 kept)"),
    (22, "the token belongs to another user of the device"),
    (27, "the app process is not running; background message cached"),
    (31, "the page the message opens does not exist in the app"),
    (51, "the device restarted and is not unlocked yet"),
    (102, "dropped by frequency control"),
    (144, "profileId does not exist"),
    (151, "not shown, or the card does not exist"),
    (155, "Live View update failed"),
    (156, "Live View update out of order"),
    (158, "the Live View exists already"),
    (188, "starting the app failed"),
    (191, "badge update failed"),
    (256, "message frequency limit"),
    (259, "message refused (content or URL)"),
    (261, "the card does not exist"),
    (262, "card refreshes reached their limit"),
    (264, "not subscribed"),
    (265, "Live View updates held back"),
    (268, "Live View update without status"),
    (269, "Live View created twice"),
];

/// The meaning of a result code, if Push Kit documents it.
pub fn meaning(code: i64) -> Option<&'static str> {
    KNOWN_RESULTS.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
}

/// The metric label of a result code: the code when documented, else `other` (labels stay few
/// whatever a request says).
pub fn result_label(code: i64) -> String {
    match meaning(code) {
        Some(_) => code.to_string(),
        None => "other".into(),
    }
}

/// What a receipt's result leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptAction {
    /// A "delivered to the device" entry on the call's timeline.
    Delivered,
    /// The token is dead: prune the installation holding it.
    Prune,
    /// The app's notifications are off: mark the installation.
    NotificationsOff,
    /// Recorded (timeline, log, metric) only.
    Record,
}

/// What the result `code` of a delivery receipt leads to. Push Kit asks apps to stop pushing
/// to 2, 5, 6 and 10; 6 is not a dead token (the app runs, its notifications are off), so only
/// 2, 5 and 10 prune.
pub fn action(code: i64) -> ReceiptAction {
    match code {
        result::DELIVERED => ReceiptAction::Delivered,
        result::APP_UNINSTALLED | result::TOKEN_MISMATCH | result::INACTIVE_DEVICE => ReceiptAction::Prune,
        result::NOT_SHOWN => ReceiptAction::NotificationsOff,
        _ => ReceiptAction::Record,
    }
}

/// Why a receipt request is not accepted as signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-HUAWEI-CALLBACK-ID` header.
    #[error("X-HUAWEI-CALLBACK-ID is missing")]
    Missing,
    /// The header is not `timestamp=…;nonce=…;value=…`.
    #[error("X-HUAWEI-CALLBACK-ID is malformed: {0}")]
    Malformed(&'static str),
    /// The timestamp is too far from the server's clock.
    #[error("the receipt timestamp is {skew_ms} ms from the server's clock (at most {MAX_SKEW_MS} allowed)")]
    Skewed {
        /// How far, ms.
        skew_ms: i64,
    },
    /// The signature is not made with the configured user name and secret.
    #[error("the signature does not match the configured receipt user name and secret")]
    Mismatch,
    /// The nonce was seen before.
    #[error("this nonce was used before: a replayed receipt request")]
    Replayed,
}

/// The parts of `X-HUAWEI-CALLBACK-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackId {
    /// When Push Kit signed the request, unix ms.
    pub timestamp: i64,
    /// A UUID, once per request.
    pub nonce: String,
    /// The signature, decoded.
    pub value: Vec<u8>,
    /// `timestamp` exactly as sent (it is signed as text).
    timestamp_text: String,
}

/// Reads `timestamp=…;nonce=…;value=…` (in any order, each once, spaces around parts ignored).
pub fn parse_callback_id(header: &str) -> Result<CallbackId, SignatureError> {
    if header.len() > MAX_HEADER {
        return Err(SignatureError::Malformed("longer than 512 bytes"));
    }
    let (mut timestamp, mut nonce, mut value) = (None, None, None);
    for part in header.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, v) = part.split_once('=').ok_or(SignatureError::Malformed("a part without `=`"))?;
        let slot = match name.trim() {
            "timestamp" => &mut timestamp,
            "nonce" => &mut nonce,
            "value" => &mut value,
            _ => return Err(SignatureError::Malformed("an unknown part")),
        };
        if slot.replace(v.trim()).is_some() {
            return Err(SignatureError::Malformed("a part given twice"));
        }
    }
    let timestamp_text = timestamp.ok_or(SignatureError::Malformed("no timestamp"))?;
    if timestamp_text.is_empty()
        || timestamp_text.len() > 16
        || !timestamp_text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SignatureError::Malformed("the timestamp must be unix milliseconds"));
    }
    let timestamp = timestamp_text.parse().map_err(|_| SignatureError::Malformed("the timestamp"))?;
    let nonce = nonce.ok_or(SignatureError::Malformed("no nonce"))?;
    if nonce.is_empty()
        || nonce.len() > MAX_NONCE
        || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SignatureError::Malformed("the nonce must be 1 to 64 letters, digits, `-` or `_`"));
    }
    let value = value.ok_or(SignatureError::Malformed("no value"))?;
    let value = STANDARD.decode(value).map_err(|_| SignatureError::Malformed("the value must be base64"))?;
    Ok(CallbackId { timestamp, nonce: nonce.to_owned(), value, timestamp_text: timestamp_text.to_owned() })
}

/// Checks receipt signatures with the configured user name and keys.
#[derive(Clone)]
pub struct ReceiptVerifier {
    user_name: String,
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ReceiptVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptVerifier").field("user_name", &self.user_name).finish_non_exhaustive()
    }
}

impl ReceiptVerifier {
    /// The verifier of `config`.
    pub fn from_config(config: &HarmonyReceiptsConfig) -> Result<Self, crate::config::ConfigError> {
        Ok(ReceiptVerifier { user_name: config.user_name.clone(), keys: config.keys()? })
    }

    /// Whether `header` is a valid signature at `now` (unix ms): well formed, its timestamp
    /// within [`MAX_SKEW_MS`], its value the HMAC of one of the keys, compared in constant time.
    /// The nonce is not checked here (that needs the database).
    pub fn verify(&self, header: Option<&str>, now: i64) -> Result<CallbackId, SignatureError> {
        let id = parse_callback_id(header.ok_or(SignatureError::Missing)?)?;
        let skew_ms = now.saturating_sub(id.timestamp).saturating_abs();
        if skew_ms > MAX_SKEW_MS {
            return Err(SignatureError::Skewed { skew_ms });
        }
        let message = signed_text(&id.timestamp_text, &id.nonce, &self.user_name);
        // Every key is tried, so the time taken does not tell which one matched.
        let mut matched = false;
        for key in &self.keys {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { continue };
            mac.update(message.as_bytes());
            matched |= mac.verify_slice(&id.value).is_ok();
        }
        if matched {
            Ok(id)
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// What Push Kit signs: `timestamp + nonce + userName`.
fn signed_text(timestamp: &str, nonce: &str, user_name: &str) -> String {
    format!("{timestamp}{nonce}{user_name}")
}

/// `X-HUAWEI-CALLBACK-ID` for a request signed at `timestamp` (unix ms) with `nonce`, as Push Kit
/// makes it: for tests and tools that play Push Kit.
pub fn callback_id(key: &[u8], user_name: &str, timestamp: i64, nonce: &str) -> String {
    // HMAC takes keys of any length: this never fails.
    let value = Hmac::<Sha256>::new_from_slice(key)
        .map(|mut mac| {
            mac.update(signed_text(&timestamp.to_string(), nonce, user_name).as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default();
    format!("timestamp={timestamp};nonce={nonce};value={value}")
}

/// Why a receipt body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not the documented JSON.
    #[error("the body is not a receipt: {0}")]
    Malformed(String),
    /// Too many statuses.
    #[error("{0} statuses; at most {MAX_STATUSES} are accepted in one request")]
    TooMany(usize),
    /// A field is out of bounds.
    #[error("statuses[{index}]: {what}")]
    Invalid {
        /// Which status.
        index: usize,
        /// What is wrong.
        what: String,
    },
}

#[derive(Deserialize)]
struct RawBody {
    statuses: Vec<RawStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    #[serde(default)]
    bi_tag: Option<String>,
    #[serde(default)]
    push_type: Option<i64>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    app_package_name: Option<String>,
    #[serde(default)]
    delivery_status: Option<RawDeliveryStatus>,
}

#[derive(Deserialize)]
struct RawDeliveryStatus {
    result: i64,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// One status of a receipt request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The `biTag` of the message (callpush: the call id, or for a wire v2 installation the
    /// delivery id); `None` when absent or empty.
    pub bi_tag: Option<String>,
    /// The push-type of the message.
    pub push_type: Option<i64>,
    /// The token it went to.
    pub token: String,
    /// Push Kit's request id.
    pub request_id: Option<String>,
    /// The app.
    pub app_package_name: Option<String>,
    /// The delivery result and when the device reported it (unix ms); `None` for other kinds
    /// of status (card refreshes report `formStatus`), which are only counted.
    pub delivery: Option<(i64, Option<i64>)>,
}

/// Reads and checks a receipt body: `{"statuses": [...]}`, at most [`MAX_STATUSES`], each with
/// a token and bounded fields. Unknown fields are ignored.
pub fn parse_body(body: &[u8]) -> Result<Vec<Receipt>, BodyError> {
    let raw: RawBody = serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
    if raw.statuses.len() > MAX_STATUSES {
        return Err(BodyError::TooMany(raw.statuses.len()));
    }
    raw.statuses
        .into_iter()
        .enumerate()
        .map(|(index, s)| {
            let invalid = |what: &str| BodyError::Invalid { index, what: what.to_owned() };
            let token = s.token.filter(|t| !t.is_empty()).ok_or_else(|| invalid("token is required"))?;
            if token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid("token must be at most 4096 printable ASCII bytes"));
            }
            let bi_tag = s.bi_tag.filter(|t| !t.is_empty());
            if bi_tag.as_ref().is_some_and(|t| t.len() > MAX_BI_TAG) {
                return Err(invalid("biTag must be at most 64 bytes"));
            }
            for (name, value) in [("requestId", &s.request_id), ("appPackageName", &s.app_package_name)] {
                if value.as_ref().is_some_and(|v| v.len() > MAX_ID) {
                    return Err(invalid(&format!("{name} must be at most {MAX_ID} bytes")));
                }
            }
            Ok(Receipt {
                bi_tag,
                push_type: s.push_type,
                token,
                request_id: s.request_id,
                app_package_name: s.app_package_name,
                delivery: s.delivery_status.map(|d| (d.result, d.timestamp)),
            })
        })
        .collect()
}

/// When a receipt's result was true, for records: the device's timestamp, never later than
/// `now` and never before the earliest a live call could have rung (a day before `now`).
pub fn effective_time(reported: Option<i64>, now: i64) -> i64 {
    reported.map_or(now, |at| at.clamp(now - 86_400_000, now))
}

/// Why a receipt request failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Not signed as configured, or replayed: 401, nothing changed.
    #[error(transparent)]
    Unsigned(#[from] SignatureError),
    /// The body is not an acceptable receipt: 400, nothing changed.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Storage failed: 503, the provider retries.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one request did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// Statuses read.
    pub statuses: usize,
    /// Installations pruned.
    pub pruned: u64,
    /// Installations marked "notifications off".
    pub notifications_off: u64,
    /// Timeline entries written.
    pub timeline: usize,
}

/// Receipts as the server handles them: checks, then acts on each status.
pub struct Receipts {
    verifier: ReceiptVerifier,
    store: Store,
    metrics: Arc<Metrics>,
}

impl Receipts {
    /// Receipts checked with `verifier`, acted on in `store`.
    pub fn new(verifier: ReceiptVerifier, store: Store, metrics: Arc<Metrics>) -> Self {
        Receipts { verifier, store, metrics }
    }

    fn count_request(&self, outcome: &str) {
        self.metrics.receipt_requests.get_or_create(&ResultLabels { result: outcome.into() }).inc();
    }

    /// Handles one receipt request received at `now`: the signature and its nonce, the body,
    /// then each status. Nothing changes unless the signature, the nonce and the body are good.
    pub async fn handle(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Processed, ReceiptError> {
        let id = match self.verifier.verify(header, now) {
            Ok(id) => id,
            Err(e) => {
                self.count_request("unauthorized");
                return Err(e.into());
            }
        };
        let receipts = match parse_body(body) {
            Ok(receipts) => receipts,
            Err(e) => {
                self.count_request("invalid");
                return Err(e.into());
            }
        };
        if !self.store.record_receipt_nonce(&id.nonce, id.timestamp + MAX_SKEW_MS, now).await? {
            self.count_request("replayed");
            return Err(SignatureError::Replayed.into());
        }
        match self.apply(&receipts, now).await {
            Ok(processed) => {
                self.count_request("accepted");
                Ok(processed)
            }
            Err(e) => {
                // Let Push Kit's retry of this very request through.
                if let Err(forget) = self.store.forget_receipt_nonce(&id.nonce).await {
                    tracing::warn!(error = %forget, "forgetting the nonce of a failed receipt request failed");
                }
                self.count_request("failed");
                Err(e.into())
            }
        }
    }

    /// The call `call_id`, read once per batch (`calls` keeps what was read).
    async fn call(
        &self,
        calls: &mut std::collections::HashMap<String, Option<crate::domain::CallRecord>>,
        call_id: &str,
    ) -> Result<Option<crate::domain::CallRecord>, StoreError> {
        if let Some(call) = calls.get(call_id) {
            return Ok(call.clone());
        }
        let call = self.store.call(call_id).await?;
        calls.insert(call_id.to_owned(), call.clone());
        Ok(call)
    }

    async fn apply(&self, receipts: &[Receipt], now: i64) -> Result<Processed, StoreError> {
        let mut processed = Processed { statuses: receipts.len(), ..Processed::default() };
        let mut calls: std::collections::HashMap<String, Option<crate::domain::CallRecord>> =
            std::collections::HashMap::new();
        for receipt in receipts {
            let Some((code, reported)) = receipt.delivery else {
                self.metrics
                    .harmony_receipts
                    .get_or_create(&ResultLabels { result: "not_delivery".into() })
                    .inc();
                continue;
            };
            self.metrics.harmony_receipts.get_or_create(&ResultLabels { result: result_label(code) }).inc();
            let at = effective_time(reported, now);
            let token = crate::auth::redact(&receipt.token);
            // A batch speaks of a few calls many times: each is read once.
            let mut call = match &receipt.bi_tag {
                Some(tag) if callpush_proto::ids::CALL_ID.accepts(tag) => self.call(&mut calls, tag).await?,
                _ => None,
            };
            let delivery_id = match (&call, &receipt.bi_tag) {
                (Some(call), _) => {
                    let kind = if receipt.push_type == Some(0) { PushKind::Missed } else { PushKind::Ring };
                    self.store
                        .delivery_to_token(&call.call_id, Platform::Harmony, &receipt.token, kind)
                        .await?
                }
                // Not a call id: a push to a wire v2 installation is tagged with its delivery id.
                (None, Some(tag)) if callpush_proto::ids::CALL_ID.accepts(tag) => {
                    match self.store.delivery_by_tag(tag, Platform::Harmony, &receipt.token).await? {
                        Some((call_id, delivery_id)) => {
                            call = self.call(&mut calls, &call_id).await?;
                            Some(delivery_id)
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            let what = meaning(code).unwrap_or("an undocumented result");
            let (event, detail) = match action(code) {
                ReceiptAction::Delivered => {
                    ("delivered_to_device", format!("Push Kit receipt {code}: {what}"))
                }
                ReceiptAction::Prune => {
                    let mut pruned = 0;
                    for (user, installation) in
                        self.store.installations_with_token(Platform::Harmony, &receipt.token).await?
                    {
                        if crate::dispatch::prune_dead_token(
                            &self.store,
                            &self.metrics,
                            &user,
                            &installation,
                            Platform::Harmony,
                            &receipt.token,
                            Some(at),
                        )
                        .await
                        {
                            pruned += 1;
                        }
                    }
                    processed.pruned += pruned;
                    let done = if pruned > 0 { "; the installation was pruned" } else { "" };
                    ("token_dead", format!("Push Kit receipt {code}: {what}{done}"))
                }
                ReceiptAction::NotificationsOff => {
                    let state =
                        Notifications { enabled: false, source: NotificationsSource::PushKitReceipt, at };
                    let marked = self
                        .store
                        .set_notifications_for_token(Platform::Harmony, &receipt.token, state)
                        .await?;
                    processed.notifications_off += marked;
                    (
                        "notifications_off",
                        format!("Push Kit receipt {code}: {what}; missed calls cannot show"),
                    )
                }
                ReceiptAction::Record => ("device_receipt", format!("Push Kit receipt {code}: {what}")),
            };
            let bi_tag = receipt.bi_tag.as_deref().unwrap_or("");
            let request_id = receipt.request_id.as_deref().unwrap_or("");
            if code == result::DELIVERED {
                tracing::debug!(code, %token, bi_tag, request_id, "Push Kit receipt: {what}");
            } else {
                tracing::info!(code, %token, bi_tag, request_id, "Push Kit receipt: {what}");
            }
            if let Some(call) = call {
                self.store.add_event(&call.call_id, delivery_id.as_deref(), at, event, Some(&detail)).await?;
                processed.timeline += 1;
            }
        }
        Ok(processed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(user: &str, secret: Option<&str>, legacy: Option<&str>) -> ReceiptVerifier {
        ReceiptVerifier::from_config(&HarmonyReceiptsConfig {
            user_name: user.into(),
            secret: secret.map(|s| STANDARD.encode(s)),
            legacy_secret: legacy.map(Into::into),
        })
        .unwrap()
    }

    const NOW: i64 = 1_767_225_600_000;
    const NONCE: &str = "a07bfa17-6d82-4b53-a9a2-07c0123eef1a";

    #[test]
    fn signatures_follow_the_guide_with_either_secret() {
        let v = verifier("callpush", Some("current-secret"), None);
        let header = callback_id(b"current-secret", "callpush", NOW, NONCE);
        let id = v.verify(Some(&header), NOW).unwrap();
        assert_eq!((id.timestamp, id.nonce.as_str()), (NOW, NONCE));
        // Parts in another order, with spaces.
        let parts: Vec<&str> = header.split(';').collect();
        let shuffled = format!(" {} ; {} ;{}", parts[2], parts[0], parts[1]);
        assert!(v.verify(Some(&shuffled), NOW).is_ok());

        // The wrong secret, the wrong user name, a tampered timestamp or nonce.
        assert_eq!(
            v.verify(Some(&callback_id(b"other-secret", "callpush", NOW, NONCE)), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(Some(&callback_id(b"current-secret", "someone", NOW, NONCE)), NOW),
            Err(SignatureError::Mismatch)
        );
        let tampered = header.replace(&NOW.to_string(), &(NOW + 1).to_string());
        assert_eq!(v.verify(Some(&tampered), NOW), Err(SignatureError::Mismatch));

        // The legacy secret: its text is the key; both may be configured at once.
        let both = verifier("callpush", Some("current-secret"), Some("old text secret"));
        let legacy = callback_id(b"old text secret", "callpush", NOW, NONCE);
        assert!(both.verify(Some(&legacy), NOW).is_ok());
        assert!(both.verify(Some(&header), NOW).is_ok());
        assert_eq!(v.verify(Some(&legacy), NOW), Err(SignatureError::Mismatch));

        // No user name configured: the signed text is timestamp + nonce.
        let anonymous = verifier("", None, Some("old text secret"));
        assert!(anonymous.verify(Some(&callback_id(b"old text secret", "", NOW, NONCE)), NOW).is_ok());
    }

    #[test]
    fn timestamps_are_milliseconds_within_five_minutes() {
        let v = verifier("u", Some("k"), None);
        let at = |t: i64| callback_id(b"k", "u", t, NONCE);
        assert!(v.verify(Some(&at(NOW - MAX_SKEW_MS)), NOW).is_ok());
        assert!(v.verify(Some(&at(NOW + MAX_SKEW_MS)), NOW).is_ok());
        assert_eq!(
            v.verify(Some(&at(NOW - MAX_SKEW_MS - 1)), NOW),
            Err(SignatureError::Skewed { skew_ms: MAX_SKEW_MS + 1 })
        );
        assert!(matches!(
            v.verify(Some(&at(NOW + MAX_SKEW_MS + 1)), NOW),
            Err(SignatureError::Skewed { .. })
        ));
        // Seconds instead of milliseconds are decades off.
        assert!(matches!(v.verify(Some(&at(NOW / 1000)), NOW), Err(SignatureError::Skewed { .. })));
    }

    #[test]
    fn malformed_headers_are_refused_before_any_hmac() {
        let v = verifier("u", Some("k"), None);
        assert_eq!(v.verify(None, NOW), Err(SignatureError::Missing));
        for header in [
            "",
            "timestamp=1;nonce=n",
            "timestamp=abc;nonce=n;value=AAAA",
            "timestamp=1;nonce=n;value=not base64!",
            "timestamp=1;timestamp=2;nonce=n;value=AAAA",
            "timestamp=1;nonce=n n;value=AAAA",
            "timestamp=1;nonce=n;value=AAAA;extra=1",
            "timestamp=1;nonce=n;value",
        ] {
            assert!(matches!(v.verify(Some(header), NOW), Err(SignatureError::Malformed(_))), "{header}");
        }
        let long = format!("timestamp={NOW};nonce={};value=AAAA", "n".repeat(600));
        assert!(matches!(v.verify(Some(&long), NOW), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn each_result_has_its_action() {
        let table = [
            (0, ReceiptAction::Delivered),
            (2, ReceiptAction::Prune),
            (5, ReceiptAction::Prune),
            (6, ReceiptAction::NotificationsOff),
            (10, ReceiptAction::Prune),
            (14, ReceiptAction::Record),
            (22, ReceiptAction::Record),
            (102, ReceiptAction::Record),
            (-1, ReceiptAction::Record),
            (99_999, ReceiptAction::Record),
        ];
        for (code, expected) in table {
            assert_eq!(action(code), expected, "{code}");
        }
        assert_eq!(result_label(6), "6");
        assert_eq!(result_label(99_999), "other");
    }

    #[test]
    fn bodies_are_read_as_documented_and_bounded() {
        let body = serde_json::json!({"statuses": [
            {"biTag": "call-1", "pushType": 10, "token": "MsDZmCSyuS+Gd0ZLs8Es", "requestId": "169802171701",
             "appPackageName": "com.example.app", "deliveryStatus": {"result": 0, "timestamp": 1697741455082_i64}},
            {"biTag": "bi62", "pushType": 1, "token": "MsDZmCSyuS+Gd0ZLs8Es", "requestId": "1",
             "appPackageName": "com.example.app", "formStatus": {"formId": 10086, "result": 0, "timestamp": 1}},
        ]});
        let receipts = parse_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(receipts[0].delivery, Some((0, Some(1_697_741_455_082))));
        assert_eq!(receipts[0].bi_tag.as_deref(), Some("call-1"));
        assert_eq!(receipts[1].delivery, None, "a card refresh status is not a delivery receipt");

        let status = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut s = serde_json::json!({"token": "tttttttt", "deliveryStatus": {"result": 0}});
            edit(&mut s);
            serde_json::json!({"statuses": [s]}).to_string()
        };
        assert!(parse_body(status(&|_| {}).as_bytes()).is_ok());
        for (body, why) in [
            (status(&|s| s["token"] = "".into()), "empty token"),
            (status(&|s| s["token"] = "x".repeat(4097).into()), "long token"),
            (status(&|s| s["token"] = "a b".into()), "token with a space"),
            (status(&|s| s["biTag"] = "b".repeat(65).into()), "long biTag"),
            (status(&|s| s["requestId"] = "r".repeat(257).into()), "long requestId"),
            (status(&|s| s["deliveryStatus"]["result"] = "0".into()), "result as a string"),
            ("{}".to_owned(), "no statuses"),
            ("[]".to_owned(), "not an object"),
            ("{\"statuses\": 1}".to_owned(), "statuses not a list"),
        ] {
            assert!(parse_body(body.as_bytes()).is_err(), "{why}");
        }
        let many =
            serde_json::json!({"statuses": vec![serde_json::json!({"token": "tttttttt"}); MAX_STATUSES + 1]});
        assert_eq!(parse_body(many.to_string().as_bytes()), Err(BodyError::TooMany(MAX_STATUSES + 1)));
    }

    #[test]
    fn receipt_times_are_never_in_the_future() {
        assert_eq!(effective_time(None, NOW), NOW);
        assert_eq!(effective_time(Some(NOW - 5), NOW), NOW - 5);
        assert_eq!(effective_time(Some(NOW + 60_000), NOW), NOW);
        assert_eq!(effective_time(Some(0), NOW), NOW - 86_400_000);
    }
}
