//! Where emulators hand accepted pushes: to the simulated devices subscribed to their token.
//!
//! Devices in the same process subscribe directly ([`DeviceHub::subscribe`]); a device in
//! another process (a C# test playing Windows) connects over HTTP ([`DeviceHub::routes`]): it
//! stays online, with its pushes queued, from its connection until it disconnects, as a PC
//! keeps its connection to WNS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use callpush_client::model::Platform;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::serve::lock;
use crate::wns::channel_path_and_query;

/// A push as it reaches a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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

/// Devices by platform and [`address`].
type Subscribers = HashMap<(Platform, String), mpsc::UnboundedSender<DevicePush>>;

/// What a device is found by: its token as its provider addresses it. APNs hex tokens are
/// case-insensitive; a WNS channel is addressed by its URI's path and query, since the emulator
/// stands in for every notify.windows.com host. One map lookup per push, however many devices.
fn address(platform: Platform, token: &str) -> String {
    match platform {
        Platform::Apns => token.to_ascii_lowercase(),
        Platform::Wns => channel_path_and_query(token),
        Platform::Harmony | Platform::Fcm => token.to_owned(),
    }
}

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
    connections: Arc<Connections>,
}

/// Devices connected over HTTP, by connection id.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: tokio::sync::Mutex<HashMap<u64, mpsc::UnboundedReceiver<DevicePush>>>,
}

/// `POST /_emulator/devices`: the token a device connects for.
#[derive(Deserialize)]
struct Connect {
    token: String,
}

/// The answer to a connection: its id, for the other two routes.
#[derive(Serialize)]
struct Connected {
    device: u64,
}

/// `GET /_emulator/devices/{id}/pushes?wait_ms=`: how long to wait for a first push.
#[derive(Deserialize)]
struct Take {
    #[serde(default)]
    wait_ms: u64,
}

/// The longest a push poll waits, so a lost client does not hold a task for long.
const MAX_WAIT: Duration = Duration::from_secs(10);

impl DeviceHub {
    /// A device comes online for `token`; a later subscription for the same token replaces it.
    pub fn subscribe(&self, platform: Platform, token: &str) -> mpsc::UnboundedReceiver<DevicePush> {
        self.subscribe_all(platform, &[token])
    }

    /// A device comes online for several tokens at once (an iPhone's VoIP and alert tokens):
    /// pushes to any of them arrive on the one receiver.
    pub fn subscribe_all(&self, platform: Platform, tokens: &[&str]) -> mpsc::UnboundedReceiver<DevicePush> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut devices = self.subscribers();
        for token in tokens {
            devices.insert((platform, address(platform, token)), tx.clone());
        }
        rx
    }

    /// Records what an APNs token is for, as APNs knows from issuing it (hex is
    /// case-insensitive). The APNs emulator refuses pushes of the other kind to it.
    pub fn set_apns_token_kind(&self, token: &str, kind: ApnsTokenKind) {
        let mut kinds = lock(&self.apns_kinds);
        kinds.insert(token.to_ascii_lowercase(), kind);
    }

    /// What an APNs token is for, if anyone said.
    pub fn apns_token_kind(&self, token: &str) -> Option<ApnsTokenKind> {
        let kinds = lock(&self.apns_kinds);
        kinds.get(&token.to_ascii_lowercase()).copied()
    }

    /// Hands a push to the device with `token` (for WNS, its channel URI or just the URI's path
    /// and query). Returns `false` when no device is online, as a provider that accepted a push
    /// for an offline device would drop or store it.
    pub fn deliver(&self, platform: Platform, token: &str, push: DevicePush) -> bool {
        let key = (platform, address(platform, token));
        let mut devices = self.subscribers();
        match devices.get(&key) {
            Some(device) if device.send(push).is_ok() => true,
            Some(_) => {
                devices.remove(&key);
                false
            }
            None => false,
        }
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        lock(&self.devices)
    }

    /// Devices of `platform` in other processes, over HTTP:
    ///
    /// - `POST /_emulator/devices` `{"token": "…"}`: the device comes online for the token
    ///   (for WNS, its channel URI); answers `{"device": id}`.
    /// - `GET /_emulator/devices/{id}/pushes?wait_ms=N`: every push delivered since the last
    ///   call, oldest first (`[{"kind": "app", "raw": "…"}, …]`), waiting up to N ms (at most
    ///   10 s) for the first; 404 for an unknown id.
    /// - `DELETE /_emulator/devices/{id}`: the device goes offline.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, platform: Platform) -> Router<S> {
        Router::new()
            .route("/_emulator/devices", post(connect))
            .route("/_emulator/devices/{id}/pushes", get(take))
            .route("/_emulator/devices/{id}", delete(disconnect))
            .with_state((self.clone(), platform))
    }
}

async fn connect(
    State((hub, platform)): State<(DeviceHub, Platform)>,
    Json(body): Json<Connect>,
) -> Result<Json<Connected>, (StatusCode, String)> {
    if body.token.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "token must not be empty".into()));
    }
    let receiver = hub.subscribe(platform, &body.token);
    let device = hub.connections.next.fetch_add(1, Ordering::Relaxed) + 1;
    hub.connections.open.lock().await.insert(device, receiver);
    Ok(Json(Connected { device }))
}

async fn take(
    State((hub, _)): State<(DeviceHub, Platform)>,
    Path(device): Path<u64>,
    Query(take): Query<Take>,
) -> Result<Json<Vec<DevicePush>>, StatusCode> {
    // Held across the wait: one poll per device at a time, as one connection has one reader.
    let mut open = hub.connections.open.lock().await;
    let receiver = open.get_mut(&device).ok_or(StatusCode::NOT_FOUND)?;
    let mut pushes = Vec::new();
    while let Ok(push) = receiver.try_recv() {
        pushes.push(push);
    }
    if pushes.is_empty() && take.wait_ms > 0 {
        let wait = Duration::from_millis(take.wait_ms).min(MAX_WAIT);
        if let Ok(Some(push)) = tokio::time::timeout(wait, receiver.recv()).await {
            pushes.push(push);
        }
    }
    Ok(Json(pushes))
}

async fn disconnect(State((hub, _)): State<(DeviceHub, Platform)>, Path(device): Path<u64>) -> StatusCode {
    match hub.connections.open.lock().await.remove(&device) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(raw: &str) -> DevicePush {
        DevicePush::App { raw: raw.into() }
    }

    #[test]
    fn devices_are_found_by_the_address_their_provider_uses() {
        let hub = DeviceHub::default();
        let mut iphone = hub.subscribe(Platform::Apns, "ABCDEF0123");
        let mut pc = hub.subscribe(Platform::Wns, "https://wns2-by3p.notify.windows.com/w/?token=AwYA");
        let mut pixel = hub.subscribe(Platform::Fcm, "fcm-Token");

        assert!(hub.deliver(Platform::Apns, "abcdef0123", app("1")), "APNs hex is case-insensitive");
        assert!(
            hub.deliver(Platform::Wns, "/w/?token=AwYA", app("2")),
            "a WNS request target finds its channel"
        );
        assert!(hub.deliver(Platform::Wns, "https://db5p.notify.windows.com/w/?token=AwYA", app("3")));
        assert!(!hub.deliver(Platform::Wns, "/w/?token=other", app("4")));
        assert!(!hub.deliver(Platform::Fcm, "fcm-token", app("5")), "other tokens are exact");
        assert!(!hub.deliver(Platform::Harmony, "fcm-Token", app("6")), "platforms are apart");
        assert!(hub.deliver(Platform::Fcm, "fcm-Token", app("7")));

        assert_eq!(iphone.try_recv().unwrap(), app("1"));
        assert_eq!((pc.try_recv().unwrap(), pc.try_recv().unwrap()), (app("2"), app("3")));
        assert_eq!(pixel.try_recv().unwrap(), app("7"));
        drop(pixel);
        assert!(!hub.deliver(Platform::Fcm, "fcm-Token", app("8")), "a device that went away is offline");
    }
}
