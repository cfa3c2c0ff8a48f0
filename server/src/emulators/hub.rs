//! Where emulators hand accepted pushes: to the simulated devices subscribed to their token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use callpush::model::Platform;
use tokio::sync::mpsc;

/// A push as it reaches a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePush {
    /// Handed to the app exactly as the platform hands it over: HarmonyOS `receiveMessage('VoIP')`
    /// data, the FCM data map as JSON, the APNs `dictionaryPayload` as JSON, the WNS raw content.
    App {
        /// The raw push.
        raw: String,
    },
    /// Shown by the system as a notification (Push Kit alert, APNs alert); the app sees nothing.
    Notification {
        /// Title.
        title: String,
        /// Body.
        body: String,
        /// The id the system collapses notifications by (`appMessageId`, `apns-collapse-id`).
        id: Option<String>,
        /// Category (`MISS_CALL`), if any.
        category: Option<String>,
    },
}

type Subscribers = HashMap<(Platform, String), mpsc::UnboundedSender<DevicePush>>;

/// What an APNs device token is for. iOS hands an app two different tokens: PushKit's VoIP
/// token and the regular device token of `registerForRemoteNotifications`; APNs takes VoIP
/// pushes only on the first and every other push type only on the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApnsTokenKind {
    /// A PushKit VoIP token: `apns-push-type: voip` on `<bundle>.voip` only.
    Voip,
    /// A regular device token: alerts (and other non-VoIP pushes) on `<bundle>` only.
    Alert,
}

/// Subscribed devices by platform and push token, and what each APNs token is for. Cloning
/// shares the hub.
#[derive(Clone, Default)]
pub struct DeviceHub {
    devices: Arc<Mutex<Subscribers>>,
    apns_kinds: Arc<Mutex<HashMap<String, ApnsTokenKind>>>,
}

impl DeviceHub {
    /// A device comes online for `token`; a later subscription for the same token replaces it.
    pub fn subscribe(&self, platform: Platform, token: &str) -> mpsc::UnboundedReceiver<DevicePush> {
        self.subscribe_all(platform, &[token])
    }

    /// A device comes online for several tokens at once (an iPhone's VoIP and alert tokens):
    /// pushes to any of them arrive on the one receiver.
    pub fn subscribe_all(&self, platform: Platform, tokens: &[&str]) -> mpsc::UnboundedReceiver<DevicePush> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut devices = self.lock();
        for token in tokens {
            devices.insert((platform, (*token).to_owned()), tx.clone());
        }
        rx
    }

    /// Records what an APNs token is for, as APNs knows from issuing it (hex is
    /// case-insensitive). The APNs emulator refuses pushes of the other kind to it.
    pub fn set_apns_token_kind(&self, token: &str, kind: ApnsTokenKind) {
        let mut kinds = self.apns_kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kinds.insert(token.to_ascii_lowercase(), kind);
    }

    /// What an APNs token is for, if anyone said.
    pub fn apns_token_kind(&self, token: &str) -> Option<ApnsTokenKind> {
        let kinds = self.apns_kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kinds.get(&token.to_ascii_lowercase()).copied()
    }

    /// Hands a push to the device with `token`. Returns `false` when no device is online, as a
    /// provider that accepted a push for an offline device would drop or store it.
    pub fn deliver(&self, platform: Platform, token: &str, push: DevicePush) -> bool {
        let mut devices = self.lock();
        match devices.get(&(platform, token.to_owned())) {
            Some(device) if device.send(push).is_ok() => true,
            Some(_) => {
                devices.remove(&(platform, token.to_owned()));
                false
            }
            None => false,
        }
    }

    /// Hands a push to the first device whose token `matches` (WNS: the channel URI whose path
    /// and query the request carried, whatever host it was sent to).
    pub fn deliver_where(
        &self,
        platform: Platform,
        matches: impl Fn(&str) -> bool,
        push: DevicePush,
    ) -> bool {
        let token = self.lock().keys().find(|(p, t)| *p == platform && matches(t)).map(|(_, t)| t.clone());
        token.is_some_and(|token| self.deliver(platform, &token, push))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.devices.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
