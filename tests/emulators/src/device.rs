//! A simulated device: the real core `Client` (with the `reqwest` transport) behind a push
//! token, fed by the emulators, with a system call UI that answers like the platform's and a
//! journal of everything it saw.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callpush_client::client::{
    AccessTokenError, AccessTokenProvider, CallEvent, CallListener, CallUiError, Client, ClientConfig,
    IncomingCallError, RegisterPushOptions, ReqwestHttpClient, SystemCallUi,
};
use callpush_client::model::{ApnsEnvironment, Call, HandleOutcome, Platform};
use tokio::sync::Notify;

use super::hub::{ApnsTokenKind, DeviceHub, DevicePush};

/// Something the device saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A push reached the app and the client decided.
    Push(HandleOutcome),
    /// The system showed a notification (the app saw nothing).
    Notification {
        /// Title.
        title: String,
        /// Body.
        body: String,
        /// Collapse id.
        id: Option<String>,
    },
    /// The client told the system call UI something.
    Ui(String),
    /// The client told the app something.
    Event(CallEvent),
}

/// One journal entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it happened.
    pub at: Instant,
    /// What.
    pub seen: Seen,
}

#[derive(Default)]
struct Journal {
    entries: Mutex<Vec<Entry>>,
    changed: Notify,
}

impl Journal {
    fn add(&self, seen: Seen) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push(Entry { at: Instant::now(), seen });
        self.changed.notify_waiters();
    }
}

/// The platform's call UI, answering as it would and writing down what it was told.
struct SimulatedCallUi(Arc<Journal>);

impl SystemCallUi for SimulatedCallUi {
    fn report_incoming_call(&self, call: Call) -> Result<(), CallUiError> {
        let name = call.peer_name.clone().unwrap_or_else(|| call.peer_id.clone());
        self.0.add(Seen::Ui(format!("ringing: {name}{}", if call.video { " (video)" } else { "" })));
        Ok(())
    }
    fn report_and_end_call(&self, call: Option<Call>, reason: IncomingCallError) -> Result<(), CallUiError> {
        let id = call.map_or_else(|| "a push".to_owned(), |c| c.call_id);
        self.0.add(Seen::Ui(format!("CallKit report-and-end of {id} ({reason:?})")));
        Ok(())
    }
    fn report_incoming_call_error(
        &self,
        id: Option<String>,
        reason: IncomingCallError,
    ) -> Result<(), CallUiError> {
        self.0.add(Seen::Ui(format!("reportIncomingCallError {} ({reason:?})", id.unwrap_or_default())));
        Ok(())
    }
    fn report_outgoing_call(&self, call: Call) -> Result<(), CallUiError> {
        self.0.add(Seen::Ui(format!("dialing {}", call.peer_id)));
        Ok(())
    }
    fn report_call_state(&self, call: Call) -> Result<(), CallUiError> {
        let state = match call.end_reason {
            Some(reason) => format!("ended ({reason:?})"),
            None => format!("{:?}", call.state).to_lowercase(),
        };
        self.0.add(Seen::Ui(state));
        Ok(())
    }
}

struct Listener(Arc<Journal>);

impl CallListener for Listener {
    fn on_event(&self, event: CallEvent) {
        self.0.add(Seen::Event(event));
    }
}

/// A fixed bearer token (the demo mints one per user).
pub struct StaticToken(pub String);

#[async_trait::async_trait]
impl AccessTokenProvider for StaticToken {
    async fn access_token(&self, _force_refresh: bool) -> Result<String, AccessTokenError> {
        Ok(self.0.clone())
    }
}

/// A device: a client, its push token and its journal.
pub struct SimulatedDevice {
    /// A name for people (`Bob's iPhone`).
    pub name: String,
    /// The platform.
    pub platform: Platform,
    /// Its push token (WNS: channel URI; iOS: the PushKit VoIP token).
    pub token: String,
    /// iOS: the regular device token (`registerForRemoteNotifications`) that takes the
    /// missed-call alert, made from `token` by [`alert_token_for`].
    pub alert_token: Option<String>,
    /// The client apps hold.
    pub client: Arc<Client>,
    journal: Arc<Journal>,
    feeding: tokio::task::JoinHandle<()>,
}

impl Drop for SimulatedDevice {
    fn drop(&mut self) {
        self.feeding.abort();
    }
}

impl SimulatedDevice {
    /// A device for `user` on `platform`, online in `hub` under `token`, its client talking to
    /// `server_url` and keeping its state in `data_dir`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        name: &str,
        platform: Platform,
        token: &str,
        server_url: &str,
        data_dir: &Path,
        access_token: String,
        hub: &DeviceHub,
    ) -> Result<SimulatedDevice, callpush_client::Error> {
        let journal = Arc::new(Journal::default());
        let mut config = ClientConfig::new(server_url, data_dir.to_string_lossy(), platform);
        config.apns_environment = (platform == Platform::Apns).then_some(ApnsEnvironment::Sandbox);
        let client = Client::new(
            config,
            Arc::new(ReqwestHttpClient::new()),
            Arc::new(StaticToken(access_token)),
            Arc::new(SimulatedCallUi(journal.clone())),
            Arc::new(Listener(journal.clone())),
        )?;
        // An iPhone holds two tokens, and APNs knows which is which: rings come to the VoIP
        // token, the missed-call alert to the regular one.
        let alert_token = (platform == Platform::Apns).then(|| alert_token_for(token));
        let mut pushes = match &alert_token {
            Some(alert_token) => {
                hub.set_apns_token_kind(token, ApnsTokenKind::Voip);
                hub.set_apns_token_kind(alert_token, ApnsTokenKind::Alert);
                hub.subscribe_all(platform, &[token, alert_token])
            }
            None => hub.subscribe(platform, token),
        };
        let (feeding_client, feeding_journal) = (client.clone(), journal.clone());
        let feeding = tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                match push {
                    DevicePush::App { raw } => {
                        let outcome = feeding_client.handle_push(raw);
                        feeding_journal.add(Seen::Push(outcome));
                    }
                    DevicePush::Notification { title, body, id, .. } => {
                        feeding_journal.add(Seen::Notification { title, body, id });
                    }
                }
            }
        });
        Ok(SimulatedDevice {
            name: name.to_owned(),
            platform,
            token: token.to_owned(),
            alert_token,
            client,
            journal,
            feeding,
        })
    }

    /// Registers the device's token with the server (iOS: with its alert token).
    pub async fn register(&self) -> Result<callpush_client::model::Registration, callpush_client::Error> {
        let options =
            RegisterPushOptions { apns_alert_token: self.alert_token.clone(), ..Default::default() };
        self.client.register_push(self.token.clone(), options).await
    }

    /// Everything the device saw so far.
    pub fn journal(&self) -> Vec<Entry> {
        self.journal.entries.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the device saw something `matches` (from journal entry `from` on), or
    /// `timeout` passes.
    pub async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        matches: impl Fn(&Seen) -> bool,
    ) -> Option<Entry> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.journal.changed.notified();
            if let Some(entry) = self.journal().into_iter().skip(from).find(|e| matches(&e.seen)) {
                return Some(entry);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

/// The regular APNs device token of the simulated iPhone whose VoIP token is `voip_token`:
/// every hex digit complemented, so it is as long, unique per VoIP token, and never equal to it.
pub fn alert_token_for(voip_token: &str) -> String {
    voip_token
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| char::from_digit(15 - d, 16)).unwrap_or(c))
        .collect()
}

/// A push token of the right form for `platform`, unique per `n`.
pub fn token_for(platform: Platform, n: u32) -> String {
    match platform {
        Platform::Harmony => format!("MAMzLg{n:08}AAAAaZWqBGDYbVd2NGtYmXWnbKSWeHJbXxMrnWQpLaPSVmCd"),
        Platform::Fcm => format!("dQw4w9WgXcQ:APA91bH{n:08}un4MxP5egoKMwt2KZFBaFUH-1RYqxUcEDvfzsb8Q0ymWtAW"),
        Platform::Apns => format!("{n:08x}{}", "5f0e3a9c".repeat(7)),
        Platform::Wns => {
            format!("https://wns2-by3p.notify.windows.com/w/?token=AwYAAAB{n:08}a5cJ3kgAAAAB9uxBOiV")
        }
    }
}
