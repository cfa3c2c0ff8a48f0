//! The Push Kit v3 sender (HarmonyOS NEXT), docs/providers/harmony.md.
//!
//! Auth: a service-account JWT (PS256, `exp = iat + 3600`) sent directly as
//! `Authorization: Bearer`, with no token exchange; it is reused until five minutes before it
//! expires, and made afresh once when Push Kit refuses it (80200001, 80200005, HTTP 401).
//!
//! Sending: `POST {base_url}/v3/{projectId}/messages:send` with `push-type: 10` (in-app call) for
//! rings and cancels and `push-type: 0` (alert, category `MISS_CALL`) for missed calls. Missed-call
//! notifications sent at the same moment with the same body (a user's devices getting one) share
//! one request of up to 1000 tokens (10 for test messages); each push gets its own outcome from
//! the per-token results of the answer. A ring goes at once in a request of its own, even when
//! a user's devices get the same signed push: no ring waits for a batch to fill, and no hung
//! request holds up another device's ring.
//!
//! A request may take what [`attempt_timeout`] allows for the earliest deadline among its
//! pushes; one that times out replaces the client ([`Connections`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use callpush_proto::model::Platform;
use callpush_proto::wire::ProviderPayload;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::credential::{refresh_at, CachedCredential, Credential, Issued, RefreshError};
use super::http::{
    attempt_timeout, read_capped, retry_after, transport_error, AuthHeader, Connections, HttpSettings,
    SenderError,
};
use super::{
    DailyQuota, OutgoingPush, SendOutcome, Sender, GENERIC_MISSED_CALL_BODY, GENERIC_MISSED_CALL_TITLE,
};
use crate::auth::redact;
use crate::config::HarmonyConfig;
use crate::domain::PushKind;

/// The `aud` of every service-account JWT: a fixed claim, never called.
pub const JWT_AUDIENCE: &str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token";
/// How long a JWT is valid, seconds (Huawei recommends an hour).
pub const JWT_LIFETIME: i64 = 3600;
/// A cached JWT with less than this left is replaced before use, seconds.
pub const JWT_RENEW_MARGIN: i64 = 300;
/// Most tokens in one request.
pub const MAX_TOKENS: usize = 1000;
/// Most tokens in one test message (`pushOptions.testMessage`).
pub const MAX_TEST_TOKENS: usize = 10;
/// How long a push waits for others with the same body to share its request, by default.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Longest `pushOptions.ttl` Push Kit accepts, seconds (15 days).
const MAX_TTL: u32 = 1_296_000;
/// Longest `pushOptions.biTag`, bytes.
const MAX_BI_TAG: usize = 64;
/// The `pushOptions.ttl` window of in-app call messages, seconds: Huawei's guide asks for 30 to
/// 60 s, whatever the ring time (the device refuses a ring past its deadline by itself).
const VOIP_TTL: std::ops::RangeInclusive<u32> = 30..=60;
/// Test messages a project may send per day (`pushOptions.testMessage`).
pub const TEST_MESSAGES_PER_DAY: i64 = 1000;
/// `push-type` of in-app call messages.
const PUSH_TYPE_CALL: u8 = 10;
/// `push-type` of alert (notification) messages.
const PUSH_TYPE_ALERT: u8 = 0;

/// Unix seconds now; replaceable so tests can age the JWT or skew the clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Knobs of a [`HarmonySender`]; the default is what production uses.
#[derive(Clone)]
pub struct HarmonyOptions {
    /// How long a missed-call notification waits for others with the same body to share its
    /// request (rings never wait). Zero sends every push on its own.
    pub batch_window: Duration,
    /// The clock the JWT's `iat` and `exp`, and its renewal, go by.
    pub clock: Clock,
}

impl Default for HarmonyOptions {
    fn default() -> Self {
        HarmonyOptions { batch_window: DEFAULT_BATCH_WINDOW, clock: Arc::new(crate::time::now_secs) }
    }
}

/// Sends call pushes through Push Kit v3.
pub struct HarmonySender {
    inner: Arc<Inner>,
}

struct Inner {
    connections: Connections,
    send_url: String,
    account: ServiceAccount,
    test_message: bool,
    options: HarmonyOptions,
    /// The JWT in use; concurrent sends wait for one signature.
    jwt: CachedCredential<String, String>,
    /// Its `Authorization` header.
    auth: AuthHeader,
    /// Requests still collecting tokens, by push-type and body.
    batches: Mutex<HashMap<String, Batch>>,
    next_batch: std::sync::atomic::AtomicU64,
}

/// The service-account key file's fields the sender uses.
struct ServiceAccount {
    project_id: String,
    key_id: String,
    sub_account: String,
    key: EncodingKey,
}

#[derive(Deserialize)]
struct ServiceAccountFile {
    project_id: Option<String>,
    key_id: Option<String>,
    private_key: Option<String>,
    sub_account: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl ServiceAccount {
    fn load(path: &Path) -> Result<ServiceAccount, SenderError> {
        let fail = |what: String| SenderError::Config(format!("{}: {what}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let file: ServiceAccountFile = serde_json::from_str(&text)
            .map_err(|e| fail(format!("not a Push Kit service-account key file (JSON): {e}")))?;
        let field = |value: Option<String>, name: &str| match value {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            _ => Err(fail(format!("`{name}` is missing or empty"))),
        };
        let project_id = field(file.project_id, "project_id")?;
        if !project_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(fail(
                "`project_id` must be the AppGallery Connect project id (letters and digits)".into(),
            ));
        }
        let key_id = field(file.key_id, "key_id")?;
        let sub_account = field(file.sub_account, "sub_account")?;
        let pem = field(file.private_key, "private_key")?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| fail(format!("`private_key` is not an RSA private key in PEM: {e}")))?;
        let account = ServiceAccount { project_id, key_id, sub_account, key };
        account
            .sign(crate::time::now_secs())
            .map_err(|e| fail(format!("`private_key` cannot sign PS256: {e}")))?;
        Ok(account)
    }

    /// A fresh JWT issued at `now`.
    fn sign(&self, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.key_id.clone());
        let exp = now + JWT_LIFETIME;
        let claims = Claims { iss: &self.sub_account, aud: JWT_AUDIENCE, iat: now, exp };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

impl HarmonySender {
    /// A sender for `config`, reading and checking its service-account key file now.
    pub fn new(config: &HarmonyConfig, http: &HttpSettings) -> Result<Self, SenderError> {
        HarmonySender::with_options(config, http, HarmonyOptions::default())
    }

    /// A sender with non-default [`HarmonyOptions`] (tests: a fake clock, no batching).
    pub fn with_options(
        config: &HarmonyConfig,
        http: &HttpSettings,
        options: HarmonyOptions,
    ) -> Result<Self, SenderError> {
        let account = ServiceAccount::load(&config.service_account_file)?;
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SenderError::Config(format!(
                "providers.harmony.base_url must be an http(s) URL, not {base:?}"
            )));
        }
        let send_url = format!("{base}/v3/{}/messages:send", account.project_id);
        let http = http.clone();
        Ok(HarmonySender {
            inner: Arc::new(Inner {
                connections: Connections::new(Platform::Harmony, "Push Kit", move || http.client())?,
                send_url,
                account,
                test_message: config.test_message,
                options,
                jwt: CachedCredential::default(),
                auth: AuthHeader::default(),
                batches: Mutex::new(HashMap::new()),
                next_batch: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

#[async_trait]
impl Sender for HarmonySender {
    async fn send(&self, push: &OutgoingPush) -> SendOutcome {
        match Message::for_push(push, self.inner.test_message) {
            Ok(message) => self.inner.clone().enqueue(message, push.token.clone(), push.expires_at).await,
            Err(detail) => SendOutcome::BadRequest { detail },
        }
    }

    /// Test messages: [`TEST_MESSAGES_PER_DAY`] per project and UTC day, each push (one token)
    /// counting as one.
    fn daily_quota(&self) -> Option<DailyQuota> {
        self.inner.test_message.then(|| DailyQuota {
            counter: format!("harmony-test-messages:{}", self.inner.account.project_id),
            limit: TEST_MESSAGES_PER_DAY,
            describe: format!(
                "Push Kit test messages (providers.harmony.test_message): {TEST_MESSAGES_PER_DAY} a day per \
                 project, used up for today (UTC); they return at midnight UTC"
            ),
        })
    }
}

/// `pushOptions.ttl` of an in-app call message for a push with `remaining` seconds to live:
/// within [`VOIP_TTL`] whatever the ring time.
pub fn voip_ttl(remaining: u32) -> u32 {
    remaining.clamp(*VOIP_TTL.start(), *VOIP_TTL.end())
}

/// What one request says apart from its tokens: pushes with equal messages can share a request.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    push_type: u8,
    payload: Value,
    push_options: Value,
}

impl Message {
    /// The message of `push`, or why it cannot be sent.
    fn for_push(push: &OutgoingPush, test_message: bool) -> Result<Message, String> {
        let (push_type, payload) = match push.kind {
            // Huawei's guide: an in-app call message only wakes the app to ring; never hang up
            // through it. A ring ends on the device over the app's own connection.
            PushKind::Cancel => {
                return Err("Push Kit in-app call messages only start calls: a cancel is never sent \
                            through them (the device learns of the end over its own connection)"
                    .into())
            }
            PushKind::Ring => match &push.payload {
                Some(ProviderPayload::Harmony { extra_data }) => {
                    (PUSH_TYPE_CALL, json!({ "extraData": extra_data }))
                }
                Some(other) => {
                    return Err(format!("a {} payload cannot go through Push Kit", other.platform()))
                }
                None => return Err("a call push without its payload".into()),
            },
            PushKind::Missed => {
                let missed = push.missed.as_ref().ok_or("a missed-call notification without its content")?;
                // To a wire v2 installation it names nobody (see `MissedCall`).
                let (title, body) = match &missed.caller {
                    Some(caller) => {
                        let name = caller.name.as_deref().filter(|n| !n.trim().is_empty());
                        let title = if caller.video { "Missed video call" } else { "Missed call" };
                        (title, format!("{} called", name.unwrap_or(&caller.id)))
                    }
                    None => (GENERIC_MISSED_CALL_TITLE, GENERIC_MISSED_CALL_BODY.to_owned()),
                };
                let notification = json!({
                    "category": "MISS_CALL",
                    "title": title,
                    "body": body,
                    "clickAction": { "actionType": 0 },
                    "appMessageId": missed.app_message_id,
                });
                (PUSH_TYPE_ALERT, json!({ "notification": notification }))
            }
        };
        let ttl = match push_type {
            PUSH_TYPE_CALL => voip_ttl(push.ttl_seconds),
            _ => push.ttl_seconds.clamp(1, MAX_TTL),
        };
        // Receipts find the call by its `biTag`. For a wire v2 installation the provider must
        // not read the call id: the delivery id (random) stands in, and receipts look it up.
        let tag = if push.is_sealed() { &push.delivery_id } else { &push.call_id };
        let push_options = json!({
            "ttl": ttl,
            "biTag": bi_tag(tag),
            "testMessage": test_message,
        });
        Ok(Message { push_type, payload, push_options })
    }

    /// What identifies requests that may be merged: the push-type and the body without tokens.
    fn batch_key(&self) -> String {
        format!("{}\n{}\n{}", self.push_type, self.payload, self.push_options)
    }

    /// The request body for `tokens`.
    fn body(&self, tokens: &[String]) -> Vec<u8> {
        let body = json!({
            "payload": self.payload,
            "target": { "token": tokens },
            "pushOptions": self.push_options,
        });
        body.to_string().into_bytes()
    }
}

/// The call id (or delivery id) as a `biTag`: at most 64 bytes, cut on a character boundary.
fn bi_tag(call_id: &str) -> String {
    let mut end = call_id.len().min(MAX_BI_TAG);
    while !call_id.is_char_boundary(end) {
        end -= 1;
    }
    call_id[..end].to_owned()
}

/// A request collecting tokens until its window closes or it is full.
struct Batch {
    id: u64,
    message: Message,
    /// The earliest deadline of its pushes, unix seconds: the request must fit before it.
    expires_at: i64,
    /// Each token once, in the order they came.
    tokens: Vec<String>,
    seen: HashSet<String>,
    waiters: Vec<(String, oneshot::Sender<SendOutcome>)>,
}

impl Batch {
    fn new(id: u64, message: Message) -> Batch {
        Batch {
            id,
            message,
            expires_at: i64::MAX,
            tokens: Vec::new(),
            seen: HashSet::new(),
            waiters: Vec::new(),
        }
    }

    fn add(&mut self, token: String, expires_at: i64, waiter: oneshot::Sender<SendOutcome>) {
        self.expires_at = self.expires_at.min(expires_at);
        if self.seen.insert(token.clone()) {
            self.tokens.push(token.clone());
        }
        self.waiters.push((token, waiter));
    }
}

impl Inner {
    fn max_tokens(&self) -> usize {
        if self.test_message {
            MAX_TEST_TOKENS
        } else {
            MAX_TOKENS
        }
    }

    fn lock_batches(&self) -> std::sync::MutexGuard<'_, HashMap<String, Batch>> {
        crate::sync::unpoisoned(self.batches.lock())
    }

    /// Sends `token` the `message`, in a request shared with concurrent pushes of the same
    /// message, and returns this token's outcome. The push matters until `expires_at`.
    async fn enqueue(self: Arc<Self>, message: Message, token: String, expires_at: i64) -> SendOutcome {
        // A ring goes at once, on its own: it must not wait for a window to close, and a request
        // that hangs or fails must take no other device's ring with it.
        if self.options.batch_window.is_zero() || message.push_type == PUSH_TYPE_CALL {
            let tokens = [token];
            return self.deliver(&message, &tokens, expires_at).await.into_iter().next().unwrap_or_else(lost);
        }
        let (waiter, outcome) = oneshot::channel();
        let key = message.batch_key();
        let (opened, full) = {
            let mut batches = self.lock_batches();
            let mut opened = None;
            match batches.get_mut(&key) {
                Some(batch) => batch.add(token, expires_at, waiter),
                None => {
                    let id = self.next_batch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut batch = Batch::new(id, message);
                    batch.add(token, expires_at, waiter);
                    batches.insert(key.clone(), batch);
                    opened = Some(id);
                }
            }
            let full = batches.get(&key).is_some_and(|b| b.tokens.len() >= self.max_tokens());
            (opened, if full { batches.remove(&key) } else { None })
        };
        if let Some(batch) = full {
            tokio::spawn(self.clone().flush(batch));
        }
        if let Some(id) = opened {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(this.options.batch_window).await;
                let batch = {
                    let mut batches = this.lock_batches();
                    match batches.get(&key) {
                        Some(batch) if batch.id == id => batches.remove(&key),
                        _ => None,
                    }
                };
                if let Some(batch) = batch {
                    this.flush(batch).await;
                }
            });
        }
        outcome.await.unwrap_or_else(|_| lost())
    }

    /// Sends a batch and hands each waiting push its token's outcome.
    async fn flush(self: Arc<Self>, batch: Batch) {
        let outcomes = self.deliver(&batch.message, &batch.tokens, batch.expires_at).await;
        let by_token: HashMap<&str, &SendOutcome> =
            batch.tokens.iter().map(String::as_str).zip(outcomes.iter()).collect();
        for (token, waiter) in batch.waiters {
            let outcome = by_token.get(token.as_str()).map_or_else(lost, |o| (*o).clone());
            let _ = waiter.send(outcome);
        }
    }

    /// Sends `message` to `tokens` (at most [`MAX_TOKENS`]) by `expires_at` and returns one
    /// outcome per token, making a fresh JWT and trying once more when Push Kit refuses the one
    /// in use.
    async fn deliver(&self, message: &Message, tokens: &[String], expires_at: i64) -> Vec<SendOutcome> {
        let body = message.body(tokens);
        tracing::debug!(
            push_type = message.push_type,
            tokens = tokens.len(),
            first = %tokens.first().map(|t| redact(t)).unwrap_or_default(),
            "sending through Push Kit"
        );
        let mut refused_before = None;
        loop {
            let jwt = match self.bearer().await {
                Ok(jwt) => jwt,
                Err(detail) => return all(tokens, SendOutcome::ConfigError { detail }),
            };
            let timeout = match attempt_timeout(crate::time::now_ms(), expires_at) {
                Ok(timeout) => timeout,
                Err(outcome) => return all(tokens, outcome),
            };
            let answer = match self.post(&body, message.push_type, &jwt.value, timeout).await {
                Ok(answer) => answer,
                Err(detail) => return all(tokens, SendOutcome::Transient { detail }),
            };
            match classify(&answer, tokens) {
                Verdict::Outcomes(outcomes) => return outcomes,
                Verdict::AuthRefused(detail) => match refused_before {
                    None => {
                        tracing::info!(%detail, "Push Kit refused the JWT; making a fresh one");
                        self.jwt.invalidate(&jwt).await;
                        refused_before = Some(detail);
                    }
                    Some(first) => {
                        let detail = format!(
                            "Push Kit refused a fresh JWT too ({detail}; before: {first}): check the \
                             service-account key file and the project id"
                        );
                        return all(tokens, SendOutcome::ConfigError { detail });
                    }
                },
            }
        }
    }

    /// The JWT to send: the cached one unless it is within [`JWT_RENEW_MARGIN`] of expiring.
    /// The cache counts unix ms; the JWT is dated in seconds.
    async fn bearer(&self) -> Result<Credential<String>, String> {
        let refresh = |now_ms: i64| async move {
            let jwt = self
                .account
                .sign(now_ms / 1000)
                .map_err(|e| RefreshError::Failed(format!("signing the Push Kit JWT failed: {e}")))?;
            Ok(Issued {
                value: jwt,
                refresh_at: refresh_at(now_ms, JWT_LIFETIME * 1000, JWT_RENEW_MARGIN * 1000),
            })
        };
        self.jwt.get(|| (self.options.clock)().saturating_mul(1000), refresh).await
    }

    /// Posts one request, waiting at most `timeout` for the whole answer.
    async fn post(&self, body: &[u8], push_type: u8, jwt: &str, timeout: Duration) -> Result<Answer, String> {
        let connection = self.connections.current();
        let failed = |e: reqwest::Error, what: &str| {
            self.connections.failed(&connection, &e);
            format!("{what}: {}", transport_error(&e))
        };
        let request = connection.client.post(&self.send_url);
        let request = match self.auth.value("Bearer", jwt) {
            Ok(value) => request.header(reqwest::header::AUTHORIZATION, value),
            Err(_) => request.header(reqwest::header::AUTHORIZATION, format!("Bearer {jwt}")),
        };
        let response = request
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("push-type", push_type.to_string())
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| failed(e, "Push Kit request failed"))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), crate::time::now_ms());
        let body =
            read_capped(response).await.map_err(|e| failed(e, "reading the Push Kit answer failed"))?;
        Ok(Answer { status, retry_after, body })
    }
}

/// The outcome of a push whose batch vanished (the runtime shut down mid-send).
fn lost() -> SendOutcome {
    SendOutcome::Transient { detail: "the Push Kit request was abandoned".into() }
}

fn all(tokens: &[String], outcome: SendOutcome) -> Vec<SendOutcome> {
    vec![outcome; tokens.len()]
}

/// Push Kit's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

/// The JSON body of every answer, read leniently (`code` is documented as a string).
#[derive(Debug, Default, Deserialize)]
struct Reply {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    msg: Option<Value>,
    #[serde(default, rename = "requestId")]
    request_id: Option<Value>,
}

/// What an answer means for the request.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// One outcome per token.
    Outcomes(Vec<SendOutcome>),
    /// The JWT was refused: make a fresh one and try once more.
    AuthRefused(String),
}

fn text_of(value: &Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Classifies `answer` to a request for `tokens` (docs/providers/harmony.md#errors).
fn classify(answer: &Answer, tokens: &[String]) -> Verdict {
    let reply: Reply = serde_json::from_str(&answer.body).unwrap_or_default();
    let code = text_of(&reply.code).unwrap_or_default();
    let request_id = text_of(&reply.request_id);
    let status = answer.status;
    let detail = describe(status, &code, &reply.msg);
    let every = |outcome: SendOutcome| Verdict::Outcomes(all(tokens, outcome));
    let rate_limited =
        || every(SendOutcome::RateLimited { retry_after: answer.retry_after, detail: detail.clone() });
    match code.as_str() {
        _ if status == 401 => Verdict::AuthRefused(detail),
        "80200001" | "80200005" => Verdict::AuthRefused(detail),
        _ if status == 503 => rate_limited(),
        _ if status == 404 => every(SendOutcome::ConfigError {
            detail: format!(
                "{detail}: no Push Kit v3 service at this URL (check providers.harmony.base_url)"
            ),
        }),
        "80000000" => every(SendOutcome::Delivered { provider_id: request_id }),
        "80100000" => Verdict::Outcomes(partial_success(&reply.msg, tokens, request_id)),
        "80300007" => Verdict::Outcomes(all_invalid(&reply.msg, tokens, &detail)),
        "80100001" | "80100003" | "80100004" | "80100022" | "80300008" | "80300010" | "80300030" => {
            every(SendOutcome::BadRequest { detail })
        }
        "80300002" | "80300036" | "80300037" => every(SendOutcome::ConfigError { detail }),
        "80300029" => rate_limited(),
        "81000001" => every(SendOutcome::Transient { detail }),
        _ if status == 429 => rate_limited(),
        _ if status >= 500 => every(SendOutcome::Transient { detail }),
        _ if status == 403 => every(SendOutcome::ConfigError { detail }),
        _ if (200..300).contains(&status) && code.is_empty() => {
            every(SendOutcome::Transient { detail: format!("{detail}: an answer without a result code") })
        }
        _ => every(SendOutcome::BadRequest { detail }),
    }
}

/// `HTTP <status> <code>: <msg>` for people, without per-token detail (it lists tokens).
fn describe(status: u16, code: &str, msg: &Option<Value>) -> String {
    let mut text = format!("Push Kit HTTP {status}");
    if !code.is_empty() {
        text.push_str(&format!(" code {code}"));
    }
    if let Some(msg) = text_of(msg) {
        if IllegalTokens::parse(&Some(Value::String(msg.clone()))).is_none() && !msg.trim().is_empty() {
            let msg: String = msg.chars().take(200).collect();
            text.push_str(&format!(": {msg}"));
        }
    }
    text
}

/// The per-token detail of 80100000 / 80300007, in either shape Push Kit is known to use.
#[derive(Debug, Default, PartialEq, Eq)]
struct IllegalTokens {
    /// v3: `{"illegalTokens": {"<reason>": ["<token>", …]}}`.
    reasons: HashMap<String, String>,
    /// Legacy: `{"success": n, "failure": m, "illegal_tokens": ["<token>", …]}` (no reason).
    unexplained: HashSet<String>,
}

impl IllegalTokens {
    /// Reads `msg` (a JSON string, or an object); `None` when it has neither shape.
    fn parse(msg: &Option<Value>) -> Option<IllegalTokens> {
        let object = match msg {
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => object,
                _ => return None,
            },
            Some(Value::Object(object)) => object.clone(),
            _ => return None,
        };
        let mut found = IllegalTokens::default();
        let mut recognised = false;
        let strings = |list: &Vec<Value>| -> Vec<String> {
            list.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect()
        };
        match object.get("illegalTokens") {
            Some(Value::Object(by_reason)) => {
                recognised = true;
                for (reason, list) in by_reason {
                    if let Value::Array(list) = list {
                        for token in strings(list) {
                            found.reasons.insert(token, reason.clone());
                        }
                    }
                }
            }
            Some(Value::Array(list)) => {
                recognised = true;
                found.unexplained.extend(strings(list));
            }
            _ => {}
        }
        if let Some(Value::Array(list)) = object.get("illegal_tokens") {
            recognised = true;
            found.unexplained.extend(strings(list));
        }
        recognised.then_some(found)
    }

    /// What the detail says about `token`, if anything.
    fn outcome(&self, token: &str, code: &str) -> Option<SendOutcome> {
        if let Some(reason) = self.reasons.get(token) {
            return Some(reason_outcome(code, reason));
        }
        self.unexplained.contains(token).then(|| SendOutcome::InvalidToken {
            detail: format!("Push Kit {code}: illegal token"),
            invalid_since: None,
        })
    }
}

/// What a per-token failure reason means (docs/providers/harmony.md#per-token-reasons).
fn reason_outcome(code: &str, reason: &str) -> SendOutcome {
    let detail = format!("Push Kit {code}: {reason}");
    match reason {
        "tokenFormatError" | "tokenPlatformNotSupport" => {
            SendOutcome::InvalidToken { detail, invalid_since: None }
        }
        "noPushTypeRight" | "noRight" | "appinfoError" | "disableSendHuaweiMsgBecauseOfPenalty" => {
            SendOutcome::ConfigError { detail }
        }
        // Not sent to this device (country, unsubscribed, image policy, …) and sending again
        // would not change that; the token itself is fine.
        _ => SendOutcome::BadRequest { detail },
    }
}

/// 80100000: tokens named in the detail failed for their reason, the rest were accepted. A
/// detail that cannot be read counts as success for all: tokens are never dropped on a guess.
fn partial_success(msg: &Option<Value>, tokens: &[String], request_id: Option<String>) -> Vec<SendOutcome> {
    let detail = IllegalTokens::parse(msg);
    if detail.is_none() {
        tracing::warn!("Push Kit 80100000 without a readable per-token detail; counting every token as sent");
    }
    tokens
        .iter()
        .map(|token| {
            detail
                .as_ref()
                .and_then(|d| d.outcome(token, "80100000"))
                .unwrap_or(SendOutcome::Delivered { provider_id: request_id.clone() })
        })
        .collect()
}

/// 80300007: every token failed. Only a token-specific reason drops a token; without a reason
/// the cause may be the app's configuration (a missing push-type right fails every token), so
/// it is raised as a configuration error rather than pruning installations on a guess.
fn all_invalid(msg: &Option<Value>, tokens: &[String], detail: &str) -> Vec<SendOutcome> {
    let found = IllegalTokens::parse(msg);
    tokens
        .iter()
        .map(|token| {
            found.as_ref().and_then(|d| d.outcome(token, "80300007")).unwrap_or_else(|| {
                SendOutcome::ConfigError { detail: format!("{detail} (all tokens refused without a reason)") }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    fn answer(status: u16, body: Value) -> Answer {
        Answer { status, retry_after: None, body: body.to_string() }
    }

    fn outcomes(verdict: Verdict) -> Vec<SendOutcome> {
        match verdict {
            Verdict::Outcomes(outcomes) => outcomes,
            other => panic!("expected outcomes, got {other:?}"),
        }
    }

    #[test]
    fn partial_success_reads_both_shapes_and_never_guesses() {
        let t = tokens(&["aaaaaaaa", "bbbbbbbb", "cccccccc"]);
        let v3 =
            json!({"illegalTokens": {"tokenFormatError": ["aaaaaaaa"], "noPushTypeRight": ["bbbbbbbb"]}});
        let got = outcomes(classify(
            &answer(200, json!({"code": "80100000", "msg": v3.to_string(), "requestId": "r1"})),
            &t,
        ));
        assert_eq!(got[0].class(), "invalid_token");
        assert_eq!(got[1].class(), "config_error");
        assert_eq!(got[2], SendOutcome::Delivered { provider_id: Some("r1".into()) });

        let legacy = json!({"success": 2, "failure": 1, "illegal_tokens": ["cccccccc"]}).to_string();
        let got = outcomes(classify(&answer(200, json!({"code": "80100000", "msg": legacy})), &t));
        assert_eq!(
            got.iter().map(SendOutcome::class).collect::<Vec<_>>(),
            ["delivered", "delivered", "invalid_token"]
        );

        let got = outcomes(classify(&answer(200, json!({"code": 80100000, "msg": "Partial Success."})), &t));
        assert!(got.iter().all(|o| o.class() == "delivered"));
    }

    #[test]
    fn all_invalid_drops_only_on_a_token_specific_reason() {
        let t = tokens(&["aaaaaaaa"]);
        let detail = json!({"illegalTokens": {"tokenPlatformNotSupport": ["aaaaaaaa"]}}).to_string();
        let got = outcomes(classify(&answer(400, json!({"code": "80300007", "msg": detail})), &t));
        assert_eq!(got[0].class(), "invalid_token");
        let got = outcomes(classify(
            &answer(400, json!({"code": "80300007", "msg": "All the tokens are invalid."})),
            &t,
        ));
        assert_eq!(got[0].class(), "config_error");
    }

    #[test]
    fn auth_refusals_and_statuses() {
        let t = tokens(&["aaaaaaaa"]);
        for body in [json!({"code": "80200001"}), json!({"code": "80200005"}), json!({})] {
            assert!(matches!(classify(&answer(401, body), &t), Verdict::AuthRefused(_)));
        }
        let class = |status, body| outcomes(classify(&answer(status, body), &t))[0].class();
        assert_eq!(class(503, json!({})), "rate_limited");
        assert_eq!(class(404, json!("not found")), "config_error");
        assert_eq!(class(502, json!({})), "transient");
        assert_eq!(class(500, json!({"code": "81000001"})), "transient");
        assert_eq!(class(200, json!({"code": "80300029"})), "rate_limited");
        assert_eq!(class(200, json!({"code": "99999999"})), "bad_request");
        assert_eq!(class(200, json!({})), "transient");
    }

    fn push(kind: PushKind, ttl_seconds: u32) -> OutgoingPush {
        OutgoingPush {
            delivery_id: "d".into(),
            call_id: "call-1".into(),
            installation_id: "i".into(),
            platform: Platform::Harmony,
            token: "MAMzLg0123456789aZW".into(),
            apns_environment: None,
            kind,
            payload: Some(ProviderPayload::Harmony { extra_data: "{\"callpush\":\"x\"}".into() }),
            missed: None,
            ttl_seconds,
            expires_at: 0,
        }
    }

    #[test]
    fn a_cancel_never_becomes_an_in_app_call_message() {
        // Whatever it carries, a cancel has no message: the sender refuses it before any request.
        for ttl in [0, 30, 86_400] {
            let refused = Message::for_push(&push(PushKind::Cancel, ttl), false).unwrap_err();
            assert!(refused.contains("never sent"), "{refused}");
        }
        assert_eq!(Message::for_push(&push(PushKind::Ring, 30), false).unwrap().push_type, PUSH_TYPE_CALL);
    }

    #[test]
    fn messages_to_wire_v2_installations_carry_neither_the_call_id_nor_the_caller() {
        let sealed = ProviderPayload::Harmony { extra_data: "{\"callpush\":\"h.k.i.c.t\"}".into() };
        let ring = OutgoingPush { payload: Some(sealed), ..push(PushKind::Ring, 30) };
        assert!(ring.is_sealed());
        let message = Message::for_push(&ring, false).unwrap();
        assert_eq!(message.push_options["biTag"], "d", "the delivery id, not the call id");
        let missed = OutgoingPush {
            kind: PushKind::Missed,
            payload: None,
            missed: Some(super::super::MissedCall { caller: None, app_message_id: "missed-1".into() }),
            ..push(PushKind::Missed, 60)
        };
        let message = Message::for_push(&missed, false).unwrap();
        let text = message.batch_key();
        assert!(!text.contains("call-1"), "{text}");
        assert_eq!(message.payload["notification"]["title"], "Missed call");
        assert_eq!(message.payload["notification"]["body"], "You missed a call");
        // A wire v1 ring keeps the call id, which receipts find the call by.
        assert_eq!(
            Message::for_push(&push(PushKind::Ring, 30), false).unwrap().push_options["biTag"],
            "call-1"
        );
    }

    #[test]
    fn in_app_call_messages_live_30_to_60_seconds_whatever_the_ring_time() {
        // remaining seconds → ttl
        for (remaining, ttl) in
            [(0, 30), (1, 30), (29, 30), (30, 30), (45, 45), (60, 60), (61, 60), (120, 60), (300, 60)]
        {
            assert_eq!(voip_ttl(remaining), ttl, "{remaining}");
            let message = Message::for_push(&push(PushKind::Ring, remaining), false).unwrap();
            assert_eq!(message.push_options["ttl"], ttl, "{remaining}");
        }
    }

    #[test]
    fn bi_tags_are_cut_on_character_boundaries() {
        assert_eq!(bi_tag("call-1"), "call-1");
        assert_eq!(bi_tag(&"é".repeat(40)).len(), 64);
        assert_eq!(bi_tag(&format!("a{}", "é".repeat(40))).len(), 63);
    }
}
