//! Provider requests time out within the push's deadline and hung connections are replaced:
//! through the whole server (server, real sender, emulator), a short ring to 40 devices whose
//! first request hangs still reaches every device exactly once before the deadline, for each
//! of the four providers; a hung APNs HTTP/2 connection is replaced so pushes flow again; and
//! a hung access-token request (FCM, WNS) is timed by the push it is made for.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use callpush_client::model::{ApnsEnvironment, Platform};
use callpush_client::wire::ProviderPayload;
use callpush_emulators::apns::ApnsEmulator;
use callpush_emulators::device::token_for;
use callpush_emulators::faults::{Fault, FaultPlan};
use callpush_emulators::fcm::FcmEmulator;
use callpush_emulators::hub::{DeviceHub, DevicePush};
use callpush_emulators::wns::WnsEmulator;
use callpush_server::domain::PushKind;
use callpush_server::metrics::{provider_connections_replaced, PlatformLabels};
use callpush_server::senders::wns::channel_path_and_query;
use callpush_server::senders::{OutgoingPush, SendOutcome, Sender};
use callpush_server::time::now_ms;
use serde_json::{json, Value};
use support::rig::{EmulatorRig, ProviderServer, ServerOptions};
use tokio::sync::mpsc::UnboundedReceiver;

/// Callees of the ring, and devices each: 40 devices.
const USERS: u32 = 4;
const DEVICES_PER_USER: u32 = 10;
/// The ring: short, so that one request hanging for the old flat 15 s would use it up.
const RING_SECONDS: i64 = 10;
/// How long the emulators hold a hung request: far past the ring (and the test).
const HANG_MS: u64 = 120_000;

/// A device: its push token and what reaches it at the emulator, with when.
struct Device {
    token: String,
    pushes: UnboundedReceiver<DevicePush>,
    reached: Vec<i64>,
}

/// Registers device `n` of `user` on `platform` and brings it online at the emulator.
async fn device(s: &ProviderServer, platform: Platform, user: &str, n: u32) -> Device {
    let token = token_for(platform, n);
    let mut body = json!({"platform": platform.as_str(), "token": token});
    if platform == Platform::Apns {
        body["apns_environment"] = json!("production");
    }
    let response = s
        .http
        .put(format!("{}/v1/installations/{platform}-{n}", s.base))
        .bearer_auth(ProviderServer::device_token(user))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "registering {token}: {}", response.status());
    let pushes = s.emulators.hub.subscribe(platform, &token);
    Device { token, pushes, reached: Vec::new() }
}

/// The server's `/metrics` value of `callpush_provider_connections_replaced_total` for
/// `platform` (0 when not yet counted).
async fn replaced(s: &ProviderServer, platform: Platform) -> f64 {
    let text = s.http.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    let series = format!("callpush_provider_connections_replaced_total{{platform=\"{platform}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0.0, |v| v.trim().parse().unwrap())
}

/// What a scripted fault for `token` is matched by at `platform`'s emulator: the token, and for
/// WNS the channel's path and query (the emulator stands in for every notify.windows.com host).
fn fault_key(platform: Platform, token: &str) -> String {
    match platform {
        Platform::Wns => channel_path_and_query(token),
        _ => token.to_owned(),
    }
}

/// For `platform`: 40 devices, the first request to each hangs at the emulator, a 10 s ring.
/// Every device is reached exactly once, before the deadline, on its second attempt, and the
/// sender replaced its connection.
async fn a_hung_first_request_still_rings_every_device_in_time(platform: Platform) {
    let s = ProviderServer::start(ServerOptions::all()).await;
    let mut devices = Vec::new();
    let mut users = Vec::new();
    for u in 0..USERS {
        let user = format!("user-{u}");
        for d in 0..DEVICES_PER_USER {
            devices.push(device(&s, platform, &user, u * DEVICES_PER_USER + d + 1).await);
        }
        users.push(user);
    }
    for device in &devices {
        let hang = Fault { status: 503, delay_ms: HANG_MS, times: 1, ..Fault::default() };
        s.faults(platform).push(hang.for_token(&fault_key(platform, &device.token)));
    }
    let replaced_before = replaced(&s, platform).await;

    let to: Vec<&str> = users.iter().map(String::as_str).collect();
    let call = s.ring(&to, json!({"ring_seconds": RING_SECONDS})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let created_at = s.detail(&call_id).await["created_at_ms"].as_i64().unwrap();
    let deadline_ms = created_at + RING_SECONDS * 1000;

    // Watch every device until each was reached or the ring is over.
    while now_ms() < deadline_ms && devices.iter().any(|d| d.reached.is_empty()) {
        for device in &mut devices {
            while let Ok(DevicePush::App { .. }) = device.pushes.try_recv() {
                device.reached.push(now_ms());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unreached: Vec<&str> =
        devices.iter().filter(|d| d.reached.is_empty()).map(|d| d.token.as_str()).collect();
    assert!(
        unreached.is_empty(),
        "{platform}: {} of 40 devices not reached by the deadline",
        unreached.len()
    );

    // Every ring delivery is settled (before the deadline: nothing else is sent while it rings).
    let detail = loop {
        let detail = s.detail(&call_id).await;
        let rings: Vec<&Value> =
            detail["deliveries"].as_array().unwrap().iter().filter(|d| d["kind"] == "ring").collect();
        if rings.iter().all(|d| d["status"] == "delivered") {
            break detail;
        }
        assert!(now_ms() < deadline_ms, "{platform}: rings still unsettled at the deadline: {detail}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(detail["state"], "ringing", "{detail}");
    let attempts: HashMap<i64, usize> =
        detail["deliveries"].as_array().unwrap().iter().fold(HashMap::new(), |mut counts, d| {
            *counts.entry(d["attempts"].as_i64().unwrap()).or_default() += 1;
            counts
        });
    assert_eq!(attempts, HashMap::from([(2, 40)]), "{platform}: one hung attempt, one delivered, each");
    for device in &mut devices {
        while let Ok(DevicePush::App { .. }) = device.pushes.try_recv() {
            device.reached.push(now_ms());
        }
        assert_eq!(device.reached.len(), 1, "{platform}: {} reached exactly once", device.token);
        assert!(device.reached[0] < deadline_ms);
    }
    assert!(
        replaced(&s, platform).await > replaced_before,
        "{platform}: a timed-out request replaces the sender's connection"
    );
    if platform == Platform::Apns {
        // The 40 hung streams shared one connection: replaced once, by one new connection.
        assert_eq!(s.emulators.apns.connections(ApnsEnvironment::Production), 2);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_kit_hung_first_requests_still_ring_every_device_in_time() {
    a_hung_first_request_still_rings_every_device_in_time(Platform::Harmony).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_hung_first_requests_still_ring_every_device_in_time() {
    a_hung_first_request_still_rings_every_device_in_time(Platform::Fcm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_hung_first_requests_still_ring_every_device_in_time() {
    a_hung_first_request_still_rings_every_device_in_time(Platform::Apns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wns_hung_first_requests_still_ring_every_device_in_time() {
    a_hung_first_request_still_rings_every_device_in_time(Platform::Wns).await;
}

/// A ring to APNs `token` in production, mattering for `seconds`.
fn apns_ring(token: &str, seconds: i64) -> OutgoingPush {
    OutgoingPush {
        delivery_id: uuid::Uuid::new_v4().simple().to_string(),
        call_id: "call-1".into(),
        installation_id: "inst-1".into(),
        platform: Platform::Apns,
        token: token.into(),
        apns_environment: Some(ApnsEnvironment::Production),
        kind: PushKind::Ring,
        payload: Some(ProviderPayload::Apns { body: json!({"callpush": "x.e30.c2ln"}).to_string() }),
        missed: None,
        ttl_seconds: seconds as u32,
        expires_at: now_ms() / 1000 + seconds,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_apns_connection_is_replaced_and_pushes_flow_again() {
    let rig = EmulatorRig::<ApnsEmulator>::start().await;
    let sender = rig.sender();
    let apns = &rig.emulator;
    let replaced =
        || provider_connections_replaced().get_or_create(&PlatformLabels { platform: "apns".into() }).get();
    let (first, second) = (token_for(Platform::Apns, 1), token_for(Platform::Apns, 2));
    let mut sandbox_ring = apns_ring(&first, 30);
    sandbox_ring.apns_environment = Some(ApnsEnvironment::Sandbox);
    assert_eq!(sender.send(&apns_ring(&first, 30)).await.class(), "delivered");
    assert_eq!(sender.send(&sandbox_ring).await.class(), "delivered");
    assert_eq!(apns.connections(ApnsEnvironment::Production), 1);

    // The production connection hangs under a push; another push joins it there. Both time
    // out within their attempt's share of the ring, not the ring itself.
    apns.faults().push(Fault { hang_connection: true, times: 1, ..Fault::default() }.for_token(&first));
    let before = replaced();
    let push = apns_ring(&first, 6);
    let hung = sender.send(&push);
    let joining = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sender.send(&apns_ring(&second, 6)).await
    };
    let (hung, joining) = tokio::join!(hung, joining);
    for outcome in [&hung, &joining] {
        assert!(
            matches!(outcome, SendOutcome::Transient { detail } if detail.contains("timed out")),
            "{outcome:?}"
        );
    }
    assert!(replaced() > before, "the replacement is counted");

    // Pushes flow again, on one new connection however many pushes hung on the old one; the
    // sandbox connection was never touched.
    assert_eq!(sender.send(&apns_ring(&second, 6)).await.class(), "delivered");
    assert_eq!(sender.send(&apns_ring(&first, 6)).await.class(), "delivered");
    assert_eq!(apns.connections(ApnsEnvironment::Production), 2);
    assert_eq!(sender.send(&sandbox_ring).await.class(), "delivered");
    assert_eq!(apns.connections(ApnsEnvironment::Sandbox), 1);
}

/// A push to `platform` device `n` (FCM or WNS) mattering for `seconds`, with its payload.
fn push_to(platform: Platform, n: u32, seconds: i64) -> OutgoingPush {
    let payload = match platform {
        Platform::Fcm => ProviderPayload::Fcm {
            data: std::collections::BTreeMap::from([("callpush".to_owned(), "x.e30.c2ln".to_owned())]),
        },
        _ => ProviderPayload::Wns { body: json!({"callpush": "x.e30.c2ln"}).to_string() },
    };
    OutgoingPush {
        token: token_for(platform, n),
        platform,
        apns_environment: None,
        payload: Some(payload),
        ..apns_ring("", seconds)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_access_token_request_is_timed_by_the_push_and_replaced() {
    let (fcm_rig, wns_rig) =
        (EmulatorRig::<FcmEmulator>::start().await, EmulatorRig::<WnsEmulator>::start().await);
    let (fcm, wns) = (fcm_rig.sender(), wns_rig.sender());
    let senders: [(Platform, &dyn Sender, &FaultPlan, &DeviceHub); 2] = [
        (Platform::Fcm, &fcm, fcm_rig.emulator.token_faults(), &fcm_rig.hub),
        (Platform::Wns, &wns, wns_rig.emulator.token_faults(), &wns_rig.hub),
    ];
    for (platform, sender, token_faults, hub) in senders {
        let _online = hub.subscribe(platform, &token_for(platform, 1));
        token_faults.push(Fault { status: 503, delay_ms: HANG_MS, times: 1, ..Fault::default() });
        // The token request made for a push due in 6 s gives up within those 6 s.
        let push = push_to(platform, 1, 6);
        let outcome = tokio::time::timeout(Duration::from_secs(6), sender.send(&push)).await;
        let Ok(SendOutcome::Transient { detail }) = &outcome else {
            panic!("{platform}: the hung token request ends within the push's time: {outcome:?}")
        };
        assert!(detail.contains("token endpoint") && detail.contains("timed out"), "{platform}: {detail}");
        // The next push fetches a token on a new connection and is delivered.
        assert_eq!(sender.send(&push_to(platform, 1, 6)).await.class(), "delivered", "{platform}");
    }
}
