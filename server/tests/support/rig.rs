//! The provider test rigs, shared by the provider suites (provider_apns, provider_fcm,
//! provider_harmony, provider_wns, provider_deadlines):
//!
//! - [`EmulatorRig`]: one provider's emulator started with the test credentials, its device
//!   hub, the credential files, the provider configuration pointing at it and the HTTP
//!   settings that reach it; [`EmulatorRig::sender`] builds the real sender against it.
//! - [`ProviderServer`]: the whole server in-process, sending through the emulators
//!   ([`callpush_emulators::Emulators`]) for one provider or all four, with simulated devices,
//!   and the backend's operations: ring, read a call's detail, wait on it, stop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use callpush_client::model::Platform;
use callpush_emulators::apns::ApnsEmulator;
use callpush_emulators::credentials::{CredentialFiles, TestCredentials};
use callpush_emulators::device::SimulatedDevice;
use callpush_emulators::faults::FaultPlan;
use callpush_emulators::fcm::FcmEmulator;
use callpush_emulators::harmony::HarmonyEmulator;
use callpush_emulators::hub::DeviceHub;
use callpush_emulators::wns::WnsEmulator;
use callpush_emulators::Emulators;
use callpush_server::app::{self, Running};
use callpush_server::auth::mint_device_token;
use callpush_server::config::{
    ApnsConfig, Config, FcmConfig, HarmonyConfig, ProvidersConfig, SenderConfig, WnsConfig, WnsFlow,
};
use callpush_server::senders::apns::ApnsSender;
use callpush_server::senders::fcm::FcmSender;
use callpush_server::senders::harmony::HarmonySender;
use callpush_server::senders::http::HttpSettings;
use callpush_server::senders::wns::WnsSender;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{fresh_database, Db, API_KEY, SECRET};

// ---------------------------------------------------------------------------------------------
// One emulator and the sender against it.

/// A provider emulator a sender is tested against.
pub trait Emulator: Sized {
    /// What the provider's sender is configured with.
    type Config: Clone;
    /// The provider's sender.
    type Sender;
    /// Starts the emulator on a free loopback port, accepting `credentials`.
    fn start(
        credentials: &TestCredentials,
        hub: DeviceHub,
    ) -> impl std::future::Future<Output = std::io::Result<Self>>;
    /// The FCM token endpoint written into the FCM service-account file (only FCM's own).
    fn fcm_token_url(&self) -> String {
        "http://127.0.0.1:9/token".into()
    }
    /// The HTTP settings that reach the emulator (its test CA, where it serves TLS).
    fn http(&self) -> HttpSettings {
        HttpSettings::default()
    }
    /// The sender's configuration sending here (WNS: the Live flow).
    fn config(&self, credentials: &TestCredentials, files: &CredentialFiles) -> Self::Config;
    /// The real sender for `config`.
    fn sender(config: &Self::Config, http: &HttpSettings) -> Self::Sender;
    /// The scripted faults and the request log of its provider endpoint.
    fn faults(&self) -> &FaultPlan;
}

/// An emulator started with the test credentials, and what a sender needs to reach it.
pub struct EmulatorRig<E: Emulator> {
    pub emulator: E,
    pub hub: DeviceHub,
    pub credentials: TestCredentials,
    /// The credential files, in `dir`.
    pub files: CredentialFiles,
    /// The sender's configuration pointing at the emulator.
    pub config: E::Config,
    /// The HTTP settings that reach the emulator.
    pub http: HttpSettings,
    pub dir: tempfile::TempDir,
}

impl<E: Emulator> EmulatorRig<E> {
    pub async fn start() -> EmulatorRig<E> {
        let credentials = TestCredentials::default();
        let hub = DeviceHub::default();
        let emulator = E::start(&credentials, hub.clone()).await.expect("the emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let files = credentials.write_files(dir.path(), &emulator.fcm_token_url()).unwrap();
        let config = emulator.config(&credentials, &files);
        let http = emulator.http();
        EmulatorRig { emulator, hub, credentials, files, config, http, dir }
    }

    /// The real sender against the emulator.
    pub fn sender(&self) -> E::Sender {
        E::sender(&self.config, &self.http)
    }
}

impl Emulator for ApnsEmulator {
    type Config = ApnsConfig;
    type Sender = ApnsSender;
    async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        ApnsEmulator::start(credentials, hub).await
    }
    fn http(&self) -> HttpSettings {
        HttpSettings::with_ca_pem(&self.ca_pem()).unwrap()
    }
    fn config(&self, c: &TestCredentials, files: &CredentialFiles) -> ApnsConfig {
        ApnsConfig {
            key_file: files.apns_key.clone(),
            key_id: c.apns_key_id.clone(),
            team_id: c.apns_team_id.clone(),
            bundle_id: c.apns_bundle_id.clone(),
            production_url: self.production_url(),
            sandbox_url: self.sandbox_url(),
        }
    }
    fn sender(config: &ApnsConfig, http: &HttpSettings) -> ApnsSender {
        ApnsSender::new(config, http).unwrap()
    }
    fn faults(&self) -> &FaultPlan {
        ApnsEmulator::faults(self)
    }
}

impl Emulator for FcmEmulator {
    type Config = FcmConfig;
    type Sender = FcmSender;
    async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        FcmEmulator::start(credentials, hub).await
    }
    fn fcm_token_url(&self) -> String {
        self.token_url()
    }
    fn config(&self, _: &TestCredentials, files: &CredentialFiles) -> FcmConfig {
        FcmConfig {
            service_account_file: files.fcm_service_account.clone(),
            base_url: self.base_url(),
            token_url: None,
        }
    }
    fn sender(config: &FcmConfig, http: &HttpSettings) -> FcmSender {
        FcmSender::new(config, http).unwrap()
    }
    fn faults(&self) -> &FaultPlan {
        FcmEmulator::faults(self)
    }
}

impl Emulator for HarmonyEmulator {
    type Config = HarmonyConfig;
    type Sender = HarmonySender;
    async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        HarmonyEmulator::start(credentials, hub).await
    }
    fn config(&self, _: &TestCredentials, files: &CredentialFiles) -> HarmonyConfig {
        HarmonyConfig {
            service_account_file: files.harmony_service_account.clone(),
            base_url: self.base_url(),
            test_message: false,
            receipts: None,
        }
    }
    fn sender(config: &HarmonyConfig, http: &HttpSettings) -> HarmonySender {
        HarmonySender::new(config, http).expect("sender")
    }
    fn faults(&self) -> &FaultPlan {
        HarmonyEmulator::faults(self)
    }
}

impl Emulator for WnsEmulator {
    type Config = WnsConfig;
    type Sender = WnsSender;
    async fn start(credentials: &TestCredentials, hub: DeviceHub) -> std::io::Result<Self> {
        WnsEmulator::start(credentials, hub).await
    }
    fn config(&self, c: &TestCredentials, _: &CredentialFiles) -> WnsConfig {
        wns_config(self, c, WnsFlow::Live)
    }
    fn sender(config: &WnsConfig, http: &HttpSettings) -> WnsSender {
        match WnsSender::new(config, http) {
            Ok(sender) => sender,
            Err(e) => panic!("WNS sender: {e}"),
        }
    }
    fn faults(&self) -> &FaultPlan {
        WnsEmulator::faults(self)
    }
}

/// The WNS settings that send through `emulator` with `flow`.
pub fn wns_config(emulator: &WnsEmulator, c: &TestCredentials, flow: WnsFlow) -> WnsConfig {
    let (client_id, tenant_id, token_url) = match flow {
        WnsFlow::Live => (c.wns_package_sid.clone(), None, emulator.live_token_url()),
        WnsFlow::Entra => {
            (c.wns_app_id.clone(), Some(c.wns_tenant_id.clone()), emulator.entra_token_url(&c.wns_tenant_id))
        }
    };
    WnsConfig {
        flow,
        client_id,
        client_secret: c.wns_client_secret.clone(),
        tenant_id,
        token_url: Some(token_url),
        endpoint_override: Some(emulator.endpoint()),
    }
}

// ---------------------------------------------------------------------------------------------
// The whole server, sending through the emulators.

/// How a [`ProviderServer`] is set up.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// The one provider the server is configured for; `None`: all four.
    pub platform: Option<Platform>,
    /// The WNS token flow.
    pub wns_flow: WnsFlow,
}

impl ServerOptions {
    /// The server configured for `platform` alone (WNS: the Live flow).
    pub fn only(platform: Platform) -> ServerOptions {
        ServerOptions { platform: Some(platform), wns_flow: WnsFlow::Live }
    }

    /// The server configured for all four providers.
    pub fn all() -> ServerOptions {
        ServerOptions { platform: None, wns_flow: WnsFlow::Live }
    }

    pub fn wns_flow(self, wns_flow: WnsFlow) -> ServerOptions {
        ServerOptions { wns_flow, ..self }
    }
}

/// The server in-process, sending through the emulators, and an HTTP client for its API.
pub struct ProviderServer {
    pub emulators: Emulators,
    pub running: Running,
    pub base: String,
    pub http: reqwest::Client,
    pub options: ServerOptions,
    pub dir: tempfile::TempDir,
    devices: AtomicUsize,
}

impl ProviderServer {
    pub async fn start(options: ServerOptions) -> ProviderServer {
        ProviderServer::start_on(options, None).await
    }

    /// The server on a fresh database of `db`; `None`: a SQLite file in its directory.
    pub async fn start_on(options: ServerOptions, db: Option<Db>) -> ProviderServer {
        let emulators = Emulators::start(TestCredentials::default()).await.expect("the emulators start");
        let dir = tempfile::tempdir().unwrap();
        let database_url = match db {
            Some(db) => fresh_database(db, dir.path()).await,
            None => format!("sqlite://{}", dir.path().join("callpush.db").display()),
        };
        let (all, _files) = emulators.providers_config(dir.path(), options.wns_flow).unwrap();
        let providers = match options.platform {
            None => all,
            Some(platform) => {
                let mut only = ProvidersConfig { ca_file: all.ca_file, ..ProvidersConfig::default() };
                match platform {
                    Platform::Apns => only.apns = all.apns,
                    Platform::Fcm => only.fcm = all.fcm,
                    Platform::Harmony => only.harmony = all.harmony,
                    Platform::Wns => only.wns = all.wns,
                }
                only
            }
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url,
            database_connections: 8,
            data_dir: dir.path().to_owned(),
            api_keys: vec![API_KEY.into()],
            sender: SenderConfig::Noop,
            providers,
            ..Config::default()
        };
        config.auth.hs256_secret = Some(SECRET.into());
        let senders = app::senders_from_config(&config).expect("senders");
        let running = app::start(&config, senders).await.expect("the server starts");
        let base = format!("http://{}", running.addr);
        ProviderServer {
            emulators,
            running,
            base,
            http: reqwest::Client::new(),
            options,
            dir,
            devices: AtomicUsize::new(0),
        }
    }

    /// The scripted faults and request log of `platform`'s provider endpoint.
    pub fn faults(&self, platform: Platform) -> &FaultPlan {
        match platform {
            Platform::Harmony => self.emulators.harmony.faults(),
            Platform::Fcm => self.emulators.fcm.faults(),
            Platform::Apns => self.emulators.apns.faults(),
            Platform::Wns => self.emulators.wns.faults(),
        }
    }

    /// A device token for `user`, as the app gets it from its backend.
    pub fn device_token(user: &str) -> String {
        mint_device_token(SECRET, user, 3600)
    }

    /// A simulated device called `name` of `user` with push `token`, on the server's provider,
    /// registered through the real client.
    pub async fn device(&self, name: &str, user: &str, token: &str) -> SimulatedDevice {
        let platform = self.options.platform.expect("devices need the server's one provider");
        let n = self.devices.fetch_add(1, Ordering::SeqCst);
        let data = self.dir.path().join(format!("device-{n}"));
        std::fs::create_dir_all(&data).unwrap();
        let device = SimulatedDevice::start(
            name,
            platform,
            token,
            &self.base,
            &data,
            Self::device_token(user),
            &self.emulators.hub,
        )
        .expect("a simulated device");
        device.register().await.expect("registered through the real client");
        device
    }

    /// Sends `method path` with the API key (and `body`); the status and the JSON answer
    /// (Null when there is none).
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(API_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` to `path` with the API key; the answer, which must be a success.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.api(Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }

    /// Rings `to` from Alice (`extra` adds to or replaces the body's fields: `call_id`,
    /// `ring_seconds`, …); the created call.
    pub async fn ring(&self, to: &[&str], extra: Value) -> Value {
        let mut body = json!({"from": {"id": "alice", "name": "Alice"}, "to": to, "video": false});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (status, call) = self.api(Method::POST, "/v1/calls", Some(body)).await;
        assert_eq!(status, 202, "{call}");
        call
    }

    /// The call's details as the app backend sees them.
    pub async fn detail(&self, call_id: &str) -> Value {
        let (status, detail) = self.api(Method::GET, &format!("/v1/calls/{call_id}"), None).await;
        assert_eq!(status, 200, "{detail}");
        detail
    }

    /// The call's details once `check` holds for them, or the last ones after `timeout`.
    pub async fn wait_for(&self, call_id: &str, timeout: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let detail = self.detail(call_id).await;
            if check(&detail) || tokio::time::Instant::now() >= deadline {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The call's details once none of its deliveries (of `kind`, if given) is pending or
    /// sending; panics if that takes more than `timeout`.
    pub async fn settled(&self, call_id: &str, kind: Option<&str>, timeout: Duration) -> Value {
        let busy = |detail: &Value| {
            detail["deliveries"].as_array().unwrap().iter().any(|d| {
                kind.is_none_or(|kind| d["kind"] == kind)
                    && (d["status"] == "pending" || d["status"] == "sending")
            })
        };
        let detail = self.wait_for(call_id, timeout, |detail| !busy(detail)).await;
        assert!(!busy(&detail), "the deliveries of {call_id} never settled: {detail}");
        detail
    }

    /// The call's delivery of `kind` once `done` holds for it (or after `timeout`); panics if
    /// the call has no delivery of `kind` by then.
    pub async fn delivery(
        &self,
        call_id: &str,
        kind: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let of_kind = |detail: &Value| {
            detail["deliveries"].as_array().and_then(|d| d.iter().find(|d| d["kind"] == kind).cloned())
        };
        let detail =
            self.wait_for(call_id, timeout, |detail| of_kind(detail).is_some_and(|d| done(&d))).await;
        of_kind(&detail).unwrap_or_else(|| panic!("no {kind} delivery for {call_id}: {detail}"))
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}
