//! The object apps hold: [`Client`], the `CallAgent` of callpush.
//!
//! It owns the adapter for the app's platform, the registration lease, the per-call state
//! machine, the dedupe set and deadlines, and it drives the host's system call UI and listener.
//! There are no hidden timers: deadlines are checked on every entry point and
//! [`Client::next_wakeup`] tells the app when to call back. While a call rings, a task on a
//! small tokio runtime long-polls the server so a cancel arrives over the app's own connection.

mod background;
mod calls;
mod config;
mod data_dir;
mod device_keys;
mod host;
mod http_registrar;
mod policy;
#[cfg(feature = "reqwest")]
mod reqwest_http;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use callpush_proto::api::CallStatus;
pub use config::{
    ClientConfig, Clock, Environment, RefreshOutcome, RegisterPushOptions, SignalledCall, SystemClock,
};
pub use host::{
    AccessTokenError, AccessTokenProvider, CallEvent, CallListener, CallUiError, ErrorEvent, ErrorKind,
    HttpClient, HttpError, HttpRequest, HttpResponse, IncomingCallError, SystemCallUi,
};
#[cfg(feature = "reqwest")]
pub use reqwest_http::{reqwest_http_client, ReqwestHttpClient};

use self::calls::{CallBook, Duplicate, REMEMBER_AFTER_DEADLINE};
use self::data_dir::{random_key, random_u64, DataDir, Lease};
use self::device_keys::DeviceKeys;
use self::http_registrar::{ActionError, CallAction, HttpRegistrar};
use self::policy::{Refresh, RetryPolicy};
use crate::adapter::{
    ApnsAdapter, FcmAdapter, HandleContext, HarmonyAdapter, PushAdapter, Registrar, WnsAdapter,
};
use crate::error::Error;
use crate::ids::CALL_ID;
use crate::model::{
    ApnsEnvironment, Call, CallDirection, CallState, CancelReason, EndReason, HandleOutcome, IncomingCall,
    InstallationRequest, Jwk, Outcome, Platform, RawPush, RegisterOptions, Registration, SystemReport,
    DEFAULT_TTL_SECONDS,
};
use crate::wire::{missed_call_message_id, DeviceSecret, KeySet};

/// The options that renew `lease` as it was registered: same lease length, APNs environment,
/// app id and alert token.
fn renewal_options(installation_id: String, lease: &Lease) -> RegisterOptions {
    RegisterOptions {
        installation_id,
        ttl_seconds: lease.registration.ttl_seconds,
        apns_environment: lease.apns_environment,
        app_id: lease.registration.app_id.clone(),
        apns_alert_token: lease.apns_alert_token.clone(),
    }
}

/// Ring time assumed for a signalled call without a deadline, seconds.
const DEFAULT_RING_SECONDS: i64 = 30;

/// The object apps hold: register, handle, unregister, and the calls that result.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    adapter: Box<dyn PushAdapter>,
    registrar: HttpRegistrar,
    ui: Arc<dyn SystemCallUi>,
    listener: Arc<dyn CallListener>,
    data_dir: DataDir,
    installation_id: std::sync::RwLock<String>,
    clock: Arc<dyn Clock>,
    pinned_keys: Option<KeySet>,
    configured_user: Option<String>,
    apns_environment: Option<ApnsEnvironment>,
    report_limit: Option<Duration>,
    long_poll: Option<Duration>,
    state: Mutex<State>,
}

struct State {
    lease: Option<Lease>,
    keys: KeySet,
    /// Wire v2 keys, and their secrets decoded once for `handle`.
    device_keys: DeviceKeys,
    device_secrets: Vec<DeviceSecret>,
    book: CallBook,
    lapse_reported: bool,
    watching: HashSet<String>,
    last_key_refresh: Option<i64>,
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl Client {
    /// A client for one app installation, restoring what `config.data_dir` holds.
    #[cfg_attr(feature = "uniffi", uniffi::constructor)]
    pub fn new(
        config: ClientConfig,
        http: Arc<dyn HttpClient>,
        tokens: Arc<dyn AccessTokenProvider>,
        ui: Arc<dyn SystemCallUi>,
        listener: Arc<dyn CallListener>,
    ) -> Result<Arc<Self>, Error> {
        let environment = Environment::device(config.platform);
        Client::with_environment(config, http, tokens, ui, listener, environment)
    }

    /// The installation id: made once for this data directory and kept.
    pub fn installation_id(&self) -> String {
        self.inner.installation_id()
    }

    /// The current registration lease, if registered.
    pub fn registration(&self) -> Option<Registration> {
        self.inner.lock().lease.as_ref().map(|l| l.registration.clone())
    }

    /// Registers (or re-registers) the platform's push token. Call on every launch and whenever
    /// the platform hands out a new token; a new token replaces the old one, which stops ringing.
    pub async fn register_push(
        &self,
        token: String,
        options: RegisterPushOptions,
    ) -> Result<Registration, Error> {
        let opts = RegisterOptions {
            installation_id: self.inner.installation_id(),
            ttl_seconds: options.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS),
            apns_environment: options.apns_environment.or(self.inner.apns_environment),
            app_id: options.app_id,
            apns_alert_token: options.apns_alert_token,
        };
        self.inner.register(&token, &opts).await
    }

    /// Tells the server whether the app's notifications are enabled on the device. Without
    /// them missed calls cannot show (HarmonyOS keeps an app's notifications off until the user
    /// allows them); the server records it on the installation so operators see why. Call it
    /// after registering and whenever the permission may have changed (the app came to the
    /// foreground).
    pub async fn report_notifications(&self, enabled: bool) -> Result<(), Error> {
        if self.inner.lock().lease.is_none() {
            return Err(Error::NotRegistered(self.inner.installation_id()));
        }
        self.inner.registrar.report_notifications(&self.inner.installation_id(), enabled).await
    }

    /// Withdraws the registration: the server stops ringing this device.
    pub async fn unregister_push(&self) -> Result<(), Error> {
        let lease = self.inner.lock().lease.clone();
        let lease = lease.ok_or_else(|| Error::NotRegistered(self.inner.installation_id()))?;
        self.inner.adapter.unregister(&self.inner.registrar, &lease.registration).await?;
        let mut state = self.inner.lock();
        state.lease = None;
        state.keys = self.inner.pinned_keys.clone().unwrap_or_default();
        state.device_keys.clear();
        state.device_secrets.clear();
        let device_keys = state.device_keys.clone();
        drop(state);
        self.inner.data_dir.save_device_keys(&device_keys)?;
        self.inner.data_dir.clear_lease()
    }

    /// Keeps the registration alive; what a WorkManager / BGTask / WorkScheduler job calls.
    ///
    /// Renews once less than 20 % of the lease is left (with jitter), at once when it lapsed,
    /// and re-registers when `token` differs from the registered one.
    pub async fn refresh(&self, token: Option<String>) -> Result<RefreshOutcome, Error> {
        self.inner.housekeeping();
        let Some(lease) = self.inner.lock().lease.clone() else {
            return Ok(RefreshOutcome::NotRegistered);
        };
        let now = self.inner.server_now_with(Some(&lease));
        let token_changed = token.as_deref().is_some_and(|t| t.trim() != lease.app_token.trim());
        if let Refresh::NotDue { renew_at } = policy::refresh(now, lease.renew_at, token_changed) {
            return Ok(RefreshOutcome::NotDue { renew_at: renew_at - lease.clock_offset });
        }
        let opts = renewal_options(self.inner.installation_id(), &lease);
        let token = token.unwrap_or(lease.app_token);
        let registration = self.inner.register(&token, &opts).await?;
        Ok(RefreshOutcome::Renewed { registration })
    }

    /// When the app should next call [`Client::tick`] or [`Client::refresh`]: the earliest of a
    /// ringing call's deadline and the lease's renewal time. Device clock, unix seconds.
    pub fn next_wakeup(&self) -> Option<i64> {
        self.inner.housekeeping();
        let state = self.inner.lock();
        let offset = state.lease.as_ref().map_or(0, |l| l.clock_offset);
        policy::next_wakeup(state.lease.as_ref().map(|l| l.renew_at), state.book.next_deadline(), offset)
    }

    /// Checks deadlines now: ends calls that rang out and notices a lapsed lease.
    pub fn tick(&self) {
        self.inner.housekeeping();
    }

    /// Handles one push exactly as the platform delivered it (HarmonyOS `receiveMessage('VoIP')`
    /// data, APNs `dictionaryPayload` as JSON, WNS raw content, FCM data as JSON).
    ///
    /// Synchronous: the system call UI has been told what it needs before this returns.
    pub fn handle_push(&self, raw: String) -> HandleOutcome {
        self.inner.handle(RawPush::Text(raw))
    }

    /// Handles an FCM `RemoteMessage.data` map as it is.
    pub fn handle_push_data(&self, data: HashMap<String, String>) -> HandleOutcome {
        self.inner.handle(RawPush::Map(data))
    }

    /// Reports an incoming call the app learned over its own connection. Rings it unless the
    /// same call id already came by push (or the other way round: a later push is a duplicate).
    pub fn report_incoming_from_signalling(&self, call: SignalledCall) -> Result<HandleOutcome, Error> {
        self.inner.signalled(call)
    }

    /// The user answered: tells the system call UI (answered), then the server, which cancels
    /// the call on the user's other devices. Call [`Client::media_connected`] once media flows.
    pub async fn answer(&self, call_id: String) -> Result<Call, Error> {
        self.inner.act(&call_id, CallAction::Answer).await
    }

    /// The user declined: ends the call here and tells the server.
    pub async fn decline(&self, call_id: String) -> Result<Call, Error> {
        self.inner.act(&call_id, CallAction::Decline).await
    }

    /// Media connected for an answered or outgoing call: it becomes active.
    pub fn media_connected(&self, call_id: String) -> Result<Call, Error> {
        self.inner.housekeeping();
        let call = self.inner.lock().book.media_connected(&call_id)?;
        self.inner.report_state(&call);
        Ok(call)
    }

    /// The user hung up. A call still ringing is declined instead.
    pub async fn hang_up(&self, call_id: String) -> Result<Call, Error> {
        self.inner.housekeeping();
        let ringing = self.inner.lock().book.is_ringing(&call_id);
        if ringing {
            return self.inner.act(&call_id, CallAction::Decline).await;
        }
        let call = self.inner.lock().book.hang_up(&call_id)?;
        self.inner.report_state(&call);
        Ok(call)
    }

    /// Ends a call on this device only, without telling the server: the platform refused it,
    /// media failed, or the other side hung up over the app's own signalling. The system call UI
    /// is told (with `reason`) unless the call already ended.
    pub fn end_call(&self, call_id: String, reason: EndReason) -> Result<Call, Error> {
        self.inner.housekeeping();
        let call = self.inner.lock().book.end(&call_id, reason)?;
        self.inner.report_state(&call);
        Ok(call)
    }

    /// Reports a call this user places, so the system shows it (HarmonyOS `reportOutgoingCall`,
    /// CallKit start-call).
    pub fn report_outgoing_call(
        &self,
        call_id: String,
        callee_id: String,
        callee_name: Option<String>,
        video: bool,
    ) -> Result<Call, Error> {
        if !CALL_ID.accepts(&call_id) {
            return Err(Error::InvalidArgument(CALL_ID.refusal()));
        }
        let call = Call {
            system_call_id: Some(call_id.clone()),
            call_id,
            direction: CallDirection::Outgoing,
            state: CallState::Dialing,
            end_reason: None,
            peer_id: callee_id,
            peer_name: callee_name,
            video,
            expires_at: None,
            data: HashMap::new(),
        };
        let now = self.inner.server_now();
        let call = self.inner.lock().book.begin_outgoing(call, now)?;
        if let Err(e) = self.inner.ui.report_outgoing_call(call.clone()) {
            let failed = self.inner.lock().book.fail(&call.call_id);
            self.inner.error(ErrorKind::ReportFailed, e.to_string(), Some(&call.call_id));
            if let Some(failed) = failed {
                self.inner.emit(CallEvent::StateChanged { call: failed });
            }
            return Err(Error::InvalidCallState {
                call_id: call.call_id,
                state: CallState::Ended,
                action: "reported",
            });
        }
        self.inner.emit(CallEvent::StateChanged { call: call.clone() });
        Ok(call)
    }

    /// The call `call_id`, if this device knows it.
    pub fn call(&self, call_id: String) -> Option<Call> {
        self.inner.lock().book.get(&call_id).cloned()
    }

    /// Every call this device knows, live ones first.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().book.all()
    }
}

impl Client {
    /// A client under `environment` instead of the device's (tests, simulations).
    pub fn with_environment(
        config: ClientConfig,
        http: Arc<dyn HttpClient>,
        tokens: Arc<dyn AccessTokenProvider>,
        ui: Arc<dyn SystemCallUi>,
        listener: Arc<dyn CallListener>,
        environment: Environment,
    ) -> Result<Arc<Self>, Error> {
        let Environment { clock, report_limit } = environment;
        if config.data_dir.trim().is_empty() {
            return Err(Error::InvalidArgument("data_dir is empty".into()));
        }
        let registrar = HttpRegistrar::new(&config.server_url, http, tokens, RetryPolicy::default())?;
        let pinned_keys = config.pinned_keys_json.as_deref().map(KeySet::from_json).transpose()?;
        let data_dir = DataDir::open(&PathBuf::from(&config.data_dir))?;
        let (installation_id, id_problem) = data_dir.installation_id()?;
        let mut problems: Vec<String> = id_problem.into_iter().collect();
        let lease = data_dir.load_lease().unwrap_or_else(|problem| {
            problems.push(problem);
            None
        });
        let offset = lease.as_ref().map_or(0, |l| l.clock_offset);
        let (seen, seen_problem) = data_dir.load_seen(clock.now_millis() / 1000 + offset);
        problems.extend(seen_problem);
        let device_keys = data_dir.load_device_keys().unwrap_or_else(|problem| {
            problems.push(problem);
            DeviceKeys::default()
        });
        let mut lease = lease;
        if let Some(lease) =
            lease.as_mut().filter(|l| !device_keys.holds(l.registration.device_key_id.as_deref()))
        {
            // The key the server encrypts to is gone (a lost or corrupt key file): nothing
            // sealed to it can open, so the next refresh renews at once, sending a new key.
            lease.renew_at = 0;
            problems
                .push("the device key the server encrypts to is missing; renewing the registration".into());
        }
        let leased_keys = lease.as_ref().and_then(|l| KeySet::from_jwks(&l.registration.signing_keys).ok());
        let keys = pinned_keys.clone().or(leased_keys).unwrap_or_default();
        let adapter: Box<dyn PushAdapter> = match config.platform {
            Platform::Harmony => Box::new(HarmonyAdapter),
            Platform::Fcm => Box::new(FcmAdapter),
            Platform::Apns => Box::new(ApnsAdapter::new(config.apns_environment.unwrap_or_default())),
            Platform::Wns => Box::new(WnsAdapter),
        };
        let inner = Arc::new(Inner {
            adapter,
            registrar,
            ui,
            listener,
            data_dir,
            installation_id: std::sync::RwLock::new(installation_id),
            clock,
            pinned_keys,
            configured_user: config.user_id,
            apns_environment: config.apns_environment,
            report_limit,
            long_poll: policy::long_poll(config.long_poll_seconds),
            state: Mutex::new(State {
                lease,
                keys,
                device_secrets: device_keys.secrets(),
                device_keys,
                book: CallBook::with_seen(seen),
                lapse_reported: false,
                watching: HashSet::new(),
                last_key_refresh: None,
            }),
        });
        for problem in problems {
            inner.error(ErrorKind::Storage, problem, None);
        }
        Ok(Arc::new(Client { inner }))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a panicked holder is harmless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn installation_id(&self) -> String {
        self.installation_id.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn server_now(&self) -> i64 {
        let offset = self.lock().lease.as_ref().map_or(0, |l| l.clock_offset);
        self.clock.now_millis() / 1000 + offset
    }

    fn server_now_with(&self, lease: Option<&Lease>) -> i64 {
        self.clock.now_millis() / 1000 + lease.map_or(0, |l| l.clock_offset)
    }

    fn emit(&self, event: CallEvent) {
        self.listener.on_event(event);
    }

    fn error(&self, kind: ErrorKind, message: String, call_id: Option<&str>) {
        self.emit(CallEvent::Error {
            error: ErrorEvent { kind, message, call_id: call_id.map(str::to_owned) },
        });
    }

    /// Ends calls past their deadline and notices a lapsed lease; runs at every entry point.
    fn housekeeping(&self) {
        let (missed, lapsed) = {
            let mut state = self.lock();
            let now = self.server_now_with(state.lease.as_ref());
            let missed = state.book.expire(now);
            let lapsed = match &state.lease {
                Some(lease)
                    if policy::newly_lapsed(now, lease.registration.expires_at, state.lapse_reported) =>
                {
                    Some((lease.registration.installation_id.clone(), lease.registration.expires_at))
                }
                _ => None,
            };
            state.lapse_reported |= lapsed.is_some();
            (missed, lapsed)
        };
        for call in missed {
            self.report_state(&call);
            self.missed(&call);
        }
        if let Some((installation_id, expired_at)) = lapsed {
            self.emit(CallEvent::RegistrationLapsed { installation_id, expired_at });
        }
    }

    async fn register(&self, token: &str, opts: &RegisterOptions) -> Result<Registration, Error> {
        let device_key = self.device_key_for_registration()?;
        let put = |opts: &RegisterOptions| {
            let request = self
                .adapter
                .installation(token, opts)
                .map(|request| InstallationRequest { device_key: Some(device_key.clone()), ..request });
            async move {
                let request = request?;
                match self.registrar.put_installation(&request).await {
                    // A server from before wire v2 refuses the field it does not know; it
                    // sends v1 pushes, which this installation then keeps accepting.
                    Err(Error::Registrar { status: 400, message, .. })
                        if message.contains("unknown field `device_key`") =>
                    {
                        let request = InstallationRequest { device_key: None, ..request };
                        self.registrar.put_installation(&request).await
                    }
                    other => other,
                }
            }
        };
        let before = self.clock.now_millis();
        let registration = match put(opts).await {
            // Servers before per-user installation ids answer this when the id is another user's
            // (this data directory served someone else who never unregistered): start afresh
            // under a new id. Current servers scope ids per user and never do.
            Err(Error::Registrar { status: 409, code, .. }) if code == "installation_taken" => {
                let fresh = self.data_dir.replace_installation_id()?;
                *self.installation_id.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
                let opts = RegisterOptions { installation_id: fresh, ..opts.clone() };
                put(&opts).await?
            }
            other => other?,
        };
        self.confirm_device_key(registration.device_key_id.as_deref())?;
        let after = self.clock.now_millis();
        let keys = KeySet::from_jwks(&registration.signing_keys)?;
        let lease = Lease {
            version: 1,
            clock_offset: policy::clock_offset(registration.server_time, before, after),
            renew_at: policy::renew_at(registration.expires_at, registration.ttl_seconds, random_u64()),
            app_token: token.to_owned(),
            apns_environment: opts.apns_environment,
            apns_alert_token: opts.apns_alert_token.clone(),
            registration: registration.clone(),
        };
        let saved = self.data_dir.save_lease(&lease);
        {
            let mut state = self.lock();
            if self.pinned_keys.is_none() {
                state.keys = keys;
            }
            state.lease = Some(lease);
            state.lapse_reported = false;
        }
        saved?;
        self.emit(CallEvent::RegistrationChanged { registration: registration.clone() });
        Ok(registration)
    }

    /// The public device key a registration sends: the pending one, made and persisted first
    /// when there is none, so a push sealed to it opens even before the answer arrives.
    fn device_key_for_registration(&self) -> Result<Jwk, Error> {
        let mut state = self.lock();
        let fresh = random_key()?;
        let (key, made) = state.device_keys.for_registration(|| fresh);
        let jwk = key.public().jwk();
        if made {
            state.device_secrets = state.device_keys.secrets();
            self.data_dir.save_device_keys(&state.device_keys)?;
        }
        Ok(jwk)
    }

    /// Records that the server encrypts to the key `kid` (`None`: it speaks wire v1 only).
    fn confirm_device_key(&self, kid: Option<&str>) -> Result<(), Error> {
        let mut state = self.lock();
        if state.device_keys.confirm(kid) {
            state.device_secrets = state.device_keys.secrets();
            self.data_dir.save_device_keys(&state.device_keys)?;
        }
        Ok(())
    }

    fn audience<'a>(&'a self, state: &'a State) -> Option<&'a str> {
        self.configured_user
            .as_deref()
            .or_else(|| state.lease.as_ref().and_then(|l| l.registration.user_id.as_deref()))
    }

    fn handle(self: &Arc<Self>, raw: RawPush) -> HandleOutcome {
        let started = Instant::now();
        self.housekeeping();
        let (mut decision, verify) = {
            let state = self.lock();
            let now = self.server_now_with(state.lease.as_ref());
            let ctx = HandleContext {
                keys: &state.keys,
                now,
                audience: self.audience(&state),
                device_keys: &state.device_secrets,
                // Once the server confirmed a device key it encrypts every push: no downgrade.
                accepts_v1: state.lease.as_ref().is_none_or(|l| l.registration.device_key_id.is_none()),
            };
            let decided = self.adapter.decide(&raw, &ctx);
            (decided.outcome, decided.verify)
        };
        let call = decision.call.clone();
        match decision.outcome {
            Outcome::Verify => {
                let system_call_id = verify.as_ref().and_then(|v| v.system_call_id.clone());
                let result = match decision.report {
                    SystemReport::ReportAndEnd => {
                        self.ui.report_and_end_call(None, IncomingCallError::CallEnded)
                    }
                    SystemReport::ReportError => {
                        self.ui.report_incoming_call_error(system_call_id, IncomingCallError::CallEnded)
                    }
                    SystemReport::Ring | SystemReport::None => Ok(()),
                };
                if let Err(e) = result {
                    self.error(ErrorKind::ReportFailed, e.to_string(), None);
                }
                if let Some(verify) = verify {
                    self.answer_verification(verify.verification);
                }
            }
            Outcome::Ring => {
                if let Some(incoming) = call {
                    self.ring(&incoming, started, &mut decision);
                }
            }
            Outcome::Cancel => {
                if let Some(incoming) = &call {
                    let reason = incoming.reason.unwrap_or(CancelReason::CallerCancelled);
                    self.stop_ringing(incoming, reason);
                }
                self.report_push(decision.report, call.as_ref(), IncomingCallError::CallEnded);
            }
            Outcome::Stale => {
                if let Some(incoming) = &call {
                    let known = self.lock().book.is_known(&incoming.call_id);
                    let ended = self.stop_ringing(incoming, CancelReason::Timeout);
                    if !known && !ended {
                        self.emit(CallEvent::Missed {
                            app_message_id: missed_call_message_id(&incoming.call_id),
                            call: incoming.clone(),
                        });
                    }
                }
                self.report_push(decision.report, call.as_ref(), IncomingCallError::CallEnded);
            }
            Outcome::Rejected => {
                if let Some(rejection) = &decision.error {
                    self.error(
                        rejection.kind.into(),
                        rejection.message.clone(),
                        call.as_ref().map(|c| c.call_id.as_str()),
                    );
                    if rejection.kind == crate::model::RejectionKind::UnknownKey {
                        self.refresh_keys_soon();
                    }
                }
                self.report_push(decision.report, call.as_ref(), IncomingCallError::InvalidPush);
            }
            Outcome::Ignore | Outcome::Duplicate => {
                self.report_push(decision.report, None, IncomingCallError::InvalidPush);
            }
        }
        decision
    }

    /// Rings a new call, or turns the decision into `Duplicate` if its id was seen.
    fn ring(self: &Arc<Self>, incoming: &IncomingCall, started: Instant, decision: &mut HandleOutcome) {
        let begun = self.lock().book.begin_incoming(incoming);
        match begun {
            Ok(call) => self.show(call, incoming, started),
            Err(Duplicate) => {
                decision.outcome = Outcome::Duplicate;
                decision.report = self.adapter.report(Outcome::Duplicate);
                self.report_push(decision.report, Some(incoming), IncomingCallError::LineBusy);
            }
        }
    }

    /// Shows a call that just began ringing, measuring the time the platform allows for it.
    fn show(self: &Arc<Self>, call: Call, incoming: &IncomingCall, started: Instant) {
        let reported = self.ui.report_incoming_call(call.clone());
        let elapsed = started.elapsed();
        if let Some(limit) = self.report_limit.filter(|limit| elapsed > *limit) {
            self.error(
                ErrorKind::ReportTooSlow,
                format!(
                    "the call was reported to the system {} ms after the push arrived; {} allows {} ms",
                    elapsed.as_millis(),
                    self.adapter.platform(),
                    limit.as_millis()
                ),
                Some(&call.call_id),
            );
        }
        if let Err(e) = reported {
            let failed = self.lock().book.fail(&call.call_id);
            self.error(ErrorKind::ReportFailed, e.to_string(), Some(&call.call_id));
            if let Some(failed) = failed {
                self.emit(CallEvent::StateChanged { call: failed });
            }
            return;
        }
        self.remember(&call.call_id, incoming.expires_at);
        self.emit(CallEvent::Incoming { call: call.clone() });
        self.watch(call.call_id);
    }

    /// Ends a ringing call that stopped elsewhere; returns whether one was ringing here.
    fn stop_ringing(&self, incoming: &IncomingCall, reason: CancelReason) -> bool {
        let forget = incoming.expires_at.saturating_add(REMEMBER_AFTER_DEADLINE);
        let ended = self.lock().book.cancel(&incoming.call_id, reason, forget);
        self.remember(&incoming.call_id, incoming.expires_at);
        match ended {
            Some(call) => {
                self.report_state(&call);
                self.emit(CallEvent::Cancelled { call: call.clone(), reason });
                if matches!(reason, CancelReason::CallerCancelled | CancelReason::Timeout) {
                    self.missed(&call);
                }
                true
            }
            None => false,
        }
    }

    fn remember(&self, call_id: &str, expires_at: i64) {
        if let Err(e) = self.data_dir.append_seen(call_id, expires_at.saturating_add(REMEMBER_AFTER_DEADLINE))
        {
            self.error(ErrorKind::Storage, e.to_string(), Some(call_id));
        }
    }

    fn missed(&self, call: &Call) {
        let callee = self.audience(&self.lock()).unwrap_or_default().to_owned();
        let incoming = IncomingCall {
            call_id: call.call_id.clone(),
            caller_id: call.peer_id.clone(),
            caller_name: call.peer_name.clone(),
            video: call.video,
            callee,
            issued_at: 0,
            expires_at: call.expires_at.unwrap_or_default(),
            reason: None,
            system_call_id: call.system_call_id.clone(),
            data: call.data.clone(),
        };
        self.emit(CallEvent::Missed {
            app_message_id: missed_call_message_id(&call.call_id),
            call: incoming,
        });
    }

    /// Tells the system call UI what a push that does not ring requires (docs/wire-contract.md, "What the system call UI must be told").
    fn report_push(&self, report: SystemReport, call: Option<&IncomingCall>, reason: IncomingCallError) {
        let result = match report {
            SystemReport::ReportAndEnd => {
                let call = call.map(|c| calls::incoming_call(c, CallState::Ended));
                self.ui.report_and_end_call(call, reason)
            }
            SystemReport::ReportError => {
                self.ui.report_incoming_call_error(call.and_then(|c| c.system_call_id.clone()), reason)
            }
            SystemReport::Ring | SystemReport::None => Ok(()),
        };
        if let Err(e) = result {
            self.error(ErrorKind::ReportFailed, e.to_string(), call.map(|c| c.call_id.as_str()));
        }
    }

    fn report_state(&self, call: &Call) {
        if let Err(e) = self.ui.report_call_state(call.clone()) {
            self.error(ErrorKind::ReportFailed, e.to_string(), Some(&call.call_id));
        }
        self.emit(CallEvent::StateChanged { call: call.clone() });
    }

    fn signalled(self: &Arc<Self>, signalled: SignalledCall) -> Result<HandleOutcome, Error> {
        let started = Instant::now();
        self.housekeeping();
        if !CALL_ID.accepts(&signalled.call_id) {
            return Err(Error::InvalidArgument(CALL_ID.refusal()));
        }
        if signalled.caller_id.is_empty() {
            return Err(Error::InvalidArgument("caller_id is empty".into()));
        }
        let now = self.server_now();
        let callee = self.audience(&self.lock()).unwrap_or_default().to_owned();
        let incoming = IncomingCall {
            system_call_id: Some(signalled.system_call_id.unwrap_or_else(|| signalled.call_id.clone())),
            call_id: signalled.call_id,
            caller_id: signalled.caller_id,
            caller_name: signalled.caller_name,
            video: signalled.video,
            callee,
            issued_at: now,
            expires_at: signalled.expires_at.unwrap_or(now + DEFAULT_RING_SECONDS),
            reason: None,
            data: signalled.data,
        };
        let mut decision = HandleOutcome {
            outcome: Outcome::Ring,
            report: SystemReport::Ring,
            call: Some(incoming.clone()),
            error: None,
        };
        if now >= incoming.expires_at {
            decision.outcome = Outcome::Stale;
            decision.report = SystemReport::None;
            if !self.lock().book.is_known(&incoming.call_id) {
                self.remember(&incoming.call_id, incoming.expires_at);
                self.lock()
                    .book
                    .remember(&incoming.call_id, incoming.expires_at.saturating_add(REMEMBER_AFTER_DEADLINE));
                self.emit(CallEvent::Missed {
                    app_message_id: missed_call_message_id(&incoming.call_id),
                    call: incoming,
                });
            }
            return Ok(decision);
        }
        let begun = self.lock().book.begin_incoming(&incoming);
        match begun {
            Ok(call) => self.show(call, &incoming, started),
            Err(Duplicate) => {
                // The push got here first and the system already shows the call.
                decision.outcome = Outcome::Duplicate;
                decision.report = SystemReport::None;
            }
        }
        Ok(decision)
    }

    /// Answer or decline: local state and system UI first, then the server.
    async fn act(self: &Arc<Self>, call_id: &str, action: CallAction) -> Result<Call, Error> {
        self.housekeeping();
        let call = {
            let mut state = self.lock();
            match action {
                CallAction::Answer => state.book.answer(call_id)?,
                CallAction::Decline => state.book.decline(call_id)?,
            }
        };
        self.report_state(&call);
        let installation_id = self.installation_id();
        match self.registrar.call_action(call_id, action, &installation_id).await {
            Ok(status) => match status.ended_for(&installation_id) {
                Some(reason) if action == CallAction::Answer => Err(self.ended_elsewhere(call_id, reason)),
                _ => Ok(self.lock().book.get(call_id).cloned().unwrap_or(call)),
            },
            Err(ActionError::NotRinging(status)) if action == CallAction::Answer => {
                let reason = status.ended_for(&installation_id).unwrap_or(CancelReason::CallerCancelled);
                Err(self.ended_elsewhere(call_id, reason))
            }
            // Declining a call that already stopped ringing elsewhere still declined it here.
            Err(ActionError::NotRinging(_)) => Ok(call),
            Err(ActionError::Failed(e)) => Err(e),
        }
    }

    /// The server says an answered call already ended elsewhere: end it here too.
    fn ended_elsewhere(&self, call_id: &str, reason: CancelReason) -> Error {
        let ended = {
            let mut state = self.lock();
            let forget = self.server_now_with(state.lease.as_ref()) + REMEMBER_AFTER_DEADLINE;
            state.book.cancel(call_id, reason, forget)
        };
        if let Some(call) = &ended {
            self.report_state(call);
            self.emit(CallEvent::Cancelled { call: call.clone(), reason });
        }
        Error::CallEnded { call_id: call_id.to_owned(), reason: reason.into() }
    }
}
