//! Test doubles for the client: an in-process registrar that speaks the registrar API through the
//! `HttpClient` trait, a settable clock, and recording fakes of the system call UI and listener.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callpush_client::api::{
    CallActionBody, CallPhase, CallStatus, ErrorBody, ErrorDetail, InstallationBody, InstallationResponse,
    StatusView,
};
use callpush_client::client::{
    AccessTokenError, AccessTokenProvider, CallEvent, CallListener, CallUiError, Client, ClientConfig, Clock,
    Environment, HttpClient, HttpError, HttpRequest, HttpResponse, IncomingCallError, SystemCallUi,
};
use callpush_client::model::{Call, Caller, CancelReason, Invite, Platform, PushEvent};
use callpush_client::wire::{
    encode_push, encode_sealed_push, harmony_delivery, CallSigner, DeviceKey, ProviderPayload, SealRandomness,
};
use serde_json::Value;

/// Device time at the start of every test: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;

/// A clock tests move by hand.
#[derive(Debug)]
pub struct FakeClock(AtomicI64);

impl FakeClock {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeClock(AtomicI64::new(T0 * 1000)))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, SeqCst);
    }
    pub fn now(&self) -> i64 {
        self.0.load(SeqCst) / 1000
    }
}

impl Clock for FakeClock {
    fn now_millis(&self) -> i64 {
        self.0.load(SeqCst)
    }
}

/// One request the registrar received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub user: Option<String>,
    pub body: Value,
}

/// The server side of the registrar API, in process. Bearer tokens are `token-for:<user>`.
pub struct FakeRegistrar {
    pub clock: Arc<FakeClock>,
    /// Server clock minus device clock, seconds.
    pub skew: AtomicI64,
    signer: Mutex<CallSigner>,
    published: Mutex<Vec<callpush_client::model::Jwk>>,
    /// Installation id → (owner, what the device registered).
    installations: Mutex<HashMap<String, (String, InstallationBody)>>,
    calls: Mutex<HashMap<String, CallStatus>>,
    /// States only call actions see: the server changed, the long-poll has not told yet.
    unannounced: Mutex<HashMap<String, CallStatus>>,
    changed: tokio::sync::Notify,
    pub received: Mutex<Vec<Received>>,
    /// Statuses to answer the next requests with, before handling them normally.
    faults: Mutex<VecDeque<(u16, ErrorBody)>>,
    /// Fail the next requests at the transport level.
    pub drop_next: AtomicUsize,
    /// Answer as servers did before instants were milliseconds: `expires_at` and `server_time`
    /// in unix seconds, no `view`.
    pub seconds: AtomicBool,
    /// Speak wire v2: answer a registered device key's id and seal every push to the key of
    /// the callee's installation. Off: a server that ignores device keys (wire v1 only).
    pub encrypts: AtomicBool,
}

impl FakeRegistrar {
    pub fn new(clock: Arc<FakeClock>) -> Arc<Self> {
        let signer = CallSigner::from_seed(&[0x31; 32]);
        Arc::new(FakeRegistrar {
            clock,
            skew: AtomicI64::new(0),
            published: Mutex::new(vec![signer.public_jwk()]),
            signer: Mutex::new(signer),
            installations: Mutex::default(),
            calls: Mutex::default(),
            unannounced: Mutex::default(),
            changed: tokio::sync::Notify::new(),
            received: Mutex::default(),
            faults: Mutex::default(),
            drop_next: AtomicUsize::new(0),
            seconds: AtomicBool::new(false),
            encrypts: AtomicBool::new(false),
        })
    }

    pub fn server_now(&self) -> i64 {
        self.clock.now() + self.skew.load(SeqCst)
    }

    /// Answers the next request with `status` and an error body.
    pub fn fail_next(&self, status: u16, code: &str) {
        self.fail_next_saying(status, code, &format!("injected {status}"));
    }

    /// Answers the next request with `status` and an error body saying `message`.
    pub fn fail_next_saying(&self, status: u16, code: &str, message: &str) {
        self.faults.lock().unwrap().push_back((status, error(code, message)));
    }

    /// Signs with a new key from now on, publishing both.
    pub fn rotate_key(&self, seed: u8) {
        let next = CallSigner::from_seed(&[seed; 32]);
        self.published.lock().unwrap().push(next.public_jwk());
        *self.signer.lock().unwrap() = next;
    }

    /// Signs with a key it does not publish (a forger).
    pub fn sign_with_unpublished(&self, seed: u8) {
        *self.signer.lock().unwrap() = CallSigner::from_seed(&[seed; 32]);
    }

    pub fn installation(&self, id: &str) -> Option<(String, InstallationBody)> {
        self.installations.lock().unwrap().get(id).cloned()
    }

    pub fn requests(&self, method: &str, path_prefix: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// Starts a call ringing on the server and returns the push each platform delivers.
    pub fn ring(&self, platform: Platform, call_id: &str, to: &str, ring_seconds: i64) -> String {
        let now = self.server_now();
        let ringing = self.status(call_id, CallPhase::Ringing, None, None, now + ring_seconds);
        self.calls.lock().unwrap().insert(call_id.to_owned(), ringing);
        self.push(platform, invite(call_id, to, now, now + ring_seconds, PushEvent::Ring, None))
    }

    fn status(
        &self,
        call_id: &str,
        state: CallPhase,
        reason: Option<CancelReason>,
        answered_by: Option<&str>,
        expires_at: i64,
    ) -> CallStatus {
        CallStatus {
            view: StatusView::Status,
            call_id: call_id.to_owned(),
            state,
            reason,
            answered_by: answered_by.map(str::to_owned),
            expires_at_ms: expires_at * 1000,
            server_time_ms: self.server_now() * 1000,
        }
    }

    /// Changes a call's state on the server, waking long-polls.
    pub fn set_call(
        &self,
        call_id: &str,
        state: CallPhase,
        reason: Option<CancelReason>,
        answered_by: Option<&str>,
    ) {
        let expires_at = self.call_state(call_id).map_or(self.server_now(), |c| c.expires_at_ms / 1000);
        let status = self.status(call_id, state, reason, answered_by, expires_at);
        self.calls.lock().unwrap().insert(call_id.to_owned(), status);
        self.changed.notify_waiters();
    }

    /// Changes a call's state for call actions only, as if the long-poll had not told yet.
    pub fn calls_set_quietly(&self, call_id: &str, state: CallPhase, reason: Option<CancelReason>) {
        let expires_at = self.call_state(call_id).map_or(self.server_now(), |c| c.expires_at_ms / 1000);
        let status = self.status(call_id, state, reason, None, expires_at);
        self.unannounced.lock().unwrap().insert(call_id.to_owned(), status);
    }

    pub fn call_state(&self, call_id: &str) -> Option<CallStatus> {
        self.calls.lock().unwrap().get(call_id).cloned()
    }

    /// A cancel push for `call_id`.
    pub fn cancel_push(&self, platform: Platform, call_id: &str, to: &str, reason: CancelReason) -> String {
        let now = self.server_now();
        self.push(platform, invite(call_id, to, now, now + 30, PushEvent::Cancel, Some(reason)))
    }

    /// Any invite, signed with the current key and wrapped as the platform delivers it; when
    /// the fake [`encrypts`](Self::encrypts), sealed to the device key the callee registered last.
    pub fn push(&self, platform: Platform, invite: Invite) -> String {
        match self.device_key_of(&invite.aud).filter(|_| self.encrypts.load(SeqCst)) {
            Some(key) => self.sealed_push(platform, invite, &key),
            None => delivered(encode_push(platform, &invite, &self.signer.lock().unwrap()).unwrap()),
        }
    }

    /// Any invite sealed to `key` (wire v2), whatever the fake speaks.
    pub fn sealed_push(&self, platform: Platform, invite: Invite, key: &DeviceKey) -> String {
        let randomness = SealRandomness { ephemeral: [0x42; 32], iv: [0x24; 12] };
        delivered(
            encode_sealed_push(platform, &invite, &self.signer.lock().unwrap(), key, &randomness).unwrap(),
        )
    }

    /// The device key `user` registered last, if any.
    pub fn device_key_of(&self, user: &str) -> Option<DeviceKey> {
        let last = self
            .requests("PUT", "/v1/installations/")
            .into_iter()
            .rev()
            .find(|r| r.user.as_deref() == Some(user))?;
        let jwk = serde_json::from_value(last.body.get("device_key")?.clone()).ok()?;
        DeviceKey::from_jwk(&jwk).ok()
    }

    async fn route(&self, request: HttpRequest) -> HttpResponse {
        let user = request
            .headers
            .get("Authorization")
            .and_then(|a| a.strip_prefix("Bearer token-for:"))
            .map(str::to_owned);
        let body: Value = request.body.as_deref().map_or(Value::Null, |b| serde_json::from_slice(b).unwrap());
        let path = request.url.strip_prefix("http://registrar.test").unwrap().to_owned();
        self.received.lock().unwrap().push(Received {
            method: request.method.clone(),
            path: path.clone(),
            user: user.clone(),
            body: body.clone(),
        });
        if let Some((status, body)) = self.faults.lock().unwrap().pop_front() {
            return respond(status, &body);
        }
        let Some(user) = user else {
            return respond(401, &error("unauthorized", "bad token"));
        };
        let segments: Vec<&str> =
            path.split('?').next().unwrap().trim_start_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("PUT", ["v1", "installations", id]) => {
                let owner = self.installations.lock().unwrap().get(*id).map(|(owner, _)| owner.clone());
                if owner.is_some_and(|owner| owner != user) {
                    return respond(409, &error("installation_taken", "another user's"));
                }
                let body: InstallationBody = serde_json::from_value(body).unwrap();
                let ttl = i64::from(body.ttl_seconds.unwrap());
                let alert_token = body.alert_token.clone();
                let device_key_id = body
                    .device_key
                    .as_ref()
                    .filter(|_| self.encrypts.load(SeqCst))
                    .map(|jwk| DeviceKey::from_jwk(jwk).unwrap().kid().to_owned());
                self.installations.lock().unwrap().insert((*id).to_owned(), (user.clone(), body));
                let now = self.server_now();
                let lease = InstallationResponse {
                    installation_id: (*id).to_owned(),
                    user_id: user,
                    expires_at_ms: (now + ttl) * 1000,
                    server_time_ms: now * 1000,
                    signing_keys: self.published.lock().unwrap().clone(),
                    alert_token,
                    verification: None,
                    device_key_id,
                };
                respond(200, &lease)
            }
            ("PUT", ["v1", "installations", id, "notifications"]) => {
                match self.installations.lock().unwrap().get(*id) {
                    Some((owner, _)) if *owner == user => respond(204, &Value::Null),
                    _ => respond(404, &error("not_found", "no such installation")),
                }
            }
            ("DELETE", ["v1", "installations", id]) => match self.installations.lock().unwrap().remove(*id) {
                Some(_) => respond(204, &Value::Null),
                None => respond(404, &error("not_found", "no such installation")),
            },
            ("GET", ["v1", "calls", id]) => {
                let wait: u64 = path.split("wait=").nth(1).and_then(|w| w.parse().ok()).unwrap_or(0);
                let before = self.call_state(id);
                if before.as_ref().is_some_and(|c| c.state == CallPhase::Ringing) && wait > 0 {
                    // A real server holds the request up to `wait`; a short hold keeps tests fast.
                    let _ = tokio::time::timeout(Duration::from_millis(200), self.changed.notified()).await;
                }
                match self.call_state(id) {
                    Some(call) => respond(200, &call),
                    None => respond(404, &error("not_found", "no such call")),
                }
            }
            ("POST", ["v1", "calls", id, action]) => {
                let unannounced = self.unannounced.lock().unwrap().get(*id).cloned();
                let Some(call) = unannounced.or_else(|| self.call_state(id)) else {
                    return respond(404, &error("not_found", "no such call"));
                };
                if call.state != CallPhase::Ringing {
                    let body = ErrorBody { call: Some(call), ..error("call_not_ringing", "too late") };
                    return respond(409, &body);
                }
                let body: CallActionBody = serde_json::from_value(body).unwrap();
                match *action {
                    "answer" => self.set_call(id, CallPhase::Answered, None, Some(&body.installation_id)),
                    _ => self.set_call(id, CallPhase::Declined, None, None),
                }
                respond(200, &self.call_state(id).unwrap())
            }
            _ => respond(404, &error("not_found", "no route")),
        }
    }
}

/// An error answer as the API gives it.
fn error(code: &str, message: &str) -> ErrorBody {
    ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.to_owned() }, call: None }
}

fn respond(status: u16, body: &impl serde::Serialize) -> HttpResponse {
    let body = serde_json::to_value(body).unwrap();
    let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    HttpResponse {
        status,
        headers: HashMap::from([("content-type".into(), "application/json".into())]),
        body,
    }
}

#[async_trait::async_trait]
impl HttpClient for FakeRegistrar {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if self.drop_next.load(SeqCst) > 0 {
            self.drop_next.fetch_sub(1, SeqCst);
            return Err(HttpError::Network { detail: "connection reset".into() });
        }
        let mut response = self.route(request).await;
        if self.seconds.load(SeqCst) && !response.body.is_empty() {
            let mut body: Value = serde_json::from_slice(&response.body).unwrap();
            in_seconds(&mut body);
            response.body = body.to_string().into_bytes();
        }
        Ok(response)
    }
}

/// `body` as a server from before instants were milliseconds answered it.
fn in_seconds(body: &mut Value) {
    match body {
        Value::Object(map) => {
            map.remove("view");
            for name in ["expires_at", "server_time"] {
                if let Some(ms) = map.remove(&format!("{name}_ms")) {
                    map.insert(name.into(), (ms.as_i64().unwrap().div_euclid(1000)).into());
                }
            }
            map.values_mut().for_each(in_seconds);
        }
        Value::Array(items) => items.iter_mut().for_each(in_seconds),
        _ => {}
    }
}

/// Hands out `token-for:<user>`; after `stale_first` is set, the first token is refused.
pub struct Tokens {
    pub user: String,
    pub stale_first: AtomicBool,
    pub forced: AtomicUsize,
}

impl Tokens {
    pub fn new(user: &str) -> Arc<Self> {
        Arc::new(Tokens {
            user: user.into(),
            stale_first: AtomicBool::new(false),
            forced: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl AccessTokenProvider for Tokens {
    async fn access_token(&self, force_refresh: bool) -> Result<String, AccessTokenError> {
        if force_refresh {
            self.forced.fetch_add(1, SeqCst);
        }
        if self.stale_first.swap(false, SeqCst) {
            return Ok("expired".into());
        }
        Ok(format!("token-for:{}", self.user))
    }
}

/// What the system call UI was told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum UiReport {
    Incoming(Call),
    AndEnd(Option<Call>, IncomingCallError),
    Error(Option<String>, IncomingCallError),
    Outgoing(Call),
    State(Call),
}

#[derive(Default)]
pub struct RecordingUi {
    pub log: Mutex<Vec<UiReport>>,
    pub delay: Mutex<Duration>,
    pub refuse: AtomicBool,
}

impl RecordingUi {
    pub fn reports(&self) -> Vec<UiReport> {
        self.log.lock().unwrap().clone()
    }
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl SystemCallUi for RecordingUi {
    fn report_incoming_call(&self, call: Call) -> Result<(), CallUiError> {
        std::thread::sleep(*self.delay.lock().unwrap());
        if self.refuse.load(SeqCst) {
            return Err(CallUiError::Refused { detail: "the system refused the call".into() });
        }
        self.log.lock().unwrap().push(UiReport::Incoming(call));
        Ok(())
    }
    fn report_and_end_call(&self, call: Option<Call>, reason: IncomingCallError) -> Result<(), CallUiError> {
        self.log.lock().unwrap().push(UiReport::AndEnd(call, reason));
        Ok(())
    }
    fn report_incoming_call_error(
        &self,
        id: Option<String>,
        reason: IncomingCallError,
    ) -> Result<(), CallUiError> {
        self.log.lock().unwrap().push(UiReport::Error(id, reason));
        Ok(())
    }
    fn report_outgoing_call(&self, call: Call) -> Result<(), CallUiError> {
        self.log.lock().unwrap().push(UiReport::Outgoing(call));
        Ok(())
    }
    fn report_call_state(&self, call: Call) -> Result<(), CallUiError> {
        self.log.lock().unwrap().push(UiReport::State(call));
        Ok(())
    }
}

/// Every event with the name of the thread it arrived on.
#[derive(Default)]
pub struct RecordingListener {
    pub events: Mutex<Vec<(CallEvent, String)>>,
}

impl RecordingListener {
    pub fn events(&self) -> Vec<CallEvent> {
        self.events.lock().unwrap().iter().map(|(e, _)| e.clone()).collect()
    }
    pub fn clear(&self) {
        self.events.lock().unwrap().clear();
    }
    /// Waits (real time) until an event matches, returning it and its thread.
    pub async fn wait_for(&self, what: impl Fn(&CallEvent) -> bool) -> (CallEvent, String) {
        for _ in 0..300 {
            if let Some(found) = self.events.lock().unwrap().iter().find(|(e, _)| what(e)).cloned() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no matching event; got {:#?}", self.events());
    }
}

impl CallListener for RecordingListener {
    fn on_event(&self, event: CallEvent) {
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.events.lock().unwrap().push((event, thread));
    }
}

/// A client wired to the fakes.
pub struct Device {
    pub client: Arc<Client>,
    pub ui: Arc<RecordingUi>,
    pub listener: Arc<RecordingListener>,
    pub tokens: Arc<Tokens>,
    pub dir: std::path::PathBuf,
}

pub fn device(
    platform: Platform,
    registrar: &Arc<FakeRegistrar>,
    dir: &std::path::Path,
    configure: impl FnOnce(&mut ClientConfig),
) -> Device {
    device_of("bob", platform, registrar, dir, configure)
}

pub fn device_of(
    user: &str,
    platform: Platform,
    registrar: &Arc<FakeRegistrar>,
    dir: &std::path::Path,
    configure: impl FnOnce(&mut ClientConfig),
) -> Device {
    device_under(user, platform, registrar, dir, configure, |_| {})
}

/// A device whose environment (clock aside: the registrar's) `configure_environment` changes.
pub fn device_under(
    user: &str,
    platform: Platform,
    registrar: &Arc<FakeRegistrar>,
    dir: &std::path::Path,
    configure: impl FnOnce(&mut ClientConfig),
    configure_environment: impl FnOnce(&mut Environment),
) -> Device {
    let ui = Arc::new(RecordingUi::default());
    let listener = Arc::new(RecordingListener::default());
    let tokens = Tokens::new(user);
    let mut config = ClientConfig::new("http://registrar.test/", dir.to_str().unwrap(), platform);
    configure(&mut config);
    let mut environment = Environment::device(platform);
    environment.clock = registrar.clock.clone();
    configure_environment(&mut environment);
    let client = Client::with_environment(
        config,
        registrar.clone(),
        tokens.clone(),
        ui.clone(),
        listener.clone(),
        environment,
    )
    .unwrap();
    Device { client, ui, listener, tokens, dir: dir.to_owned() }
}

pub fn invite(
    call_id: &str,
    to: &str,
    iat: i64,
    exp: i64,
    evt: PushEvent,
    reason: Option<CancelReason>,
) -> Invite {
    Invite {
        iss: "fake".into(),
        aud: to.into(),
        jti: format!("{call_id}-{evt:?}"),
        iat,
        exp,
        v: 1,
        evt,
        cid: call_id.into(),
        from: Caller { id: "alice".into(), name: Some("Alice".into()) },
        video: false,
        reason,
        data: BTreeMap::new(),
    }
}

pub fn delivered(payload: ProviderPayload) -> String {
    match payload {
        ProviderPayload::Harmony { extra_data } => harmony_delivery("sys-7", &extra_data, "MAMz"),
        ProviderPayload::Fcm { data } => serde_json::to_string(&data).unwrap(),
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    }
}

/// A valid token for each platform.
pub fn token(platform: Platform) -> String {
    match platform {
        Platform::Harmony => "MAMzLg0123456789aZW".into(),
        Platform::Fcm => "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZ".into(),
        Platform::Apns => "ab".repeat(32),
        Platform::Wns => "https://wns2-by3p.notify.windows.com/?token=AwYAAABa".into(),
    }
}
