//! Wire v2 on the device: the client makes, keeps and rotates its device key, opens pushes
//! sealed to it, and refuses unencrypted pushes once the server encrypts.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use callpush_client::client::{CallEvent, ErrorKind, RefreshOutcome, RegisterPushOptions};
use callpush_client::model::{Outcome, Platform, PushEvent, RejectionKind, SystemReport};
use callpush_client::wire::DeviceKey;
use support::*;

fn fixture(encrypts: bool) -> (Arc<FakeRegistrar>, tempfile::TempDir) {
    let registrar = FakeRegistrar::new(FakeClock::new());
    registrar.encrypts.store(encrypts, SeqCst);
    (registrar, tempfile::tempdir().unwrap())
}

async fn registered(platform: Platform, registrar: &Arc<FakeRegistrar>, dir: &std::path::Path) -> Device {
    let device = device(platform, registrar, dir, |_| {});
    device.client.register_push(token(platform), RegisterPushOptions::default()).await.unwrap();
    device.listener.clear();
    device
}

fn rejection(outcome: &callpush_client::model::HandleOutcome) -> Option<RejectionKind> {
    outcome.error.as_ref().map(|e| e.kind)
}

#[tokio::test]
async fn a_v2_server_gets_a_device_key_and_every_platform_rings_sealed_pushes_only() {
    for platform in Platform::ALL {
        let (registrar, dir) = fixture(true);
        let d = registered(platform, &registrar, dir.path()).await;
        let key = registrar.device_key_of("bob").expect("the registration carries a device key");
        let registration = d.client.registration().unwrap();
        assert_eq!(registration.device_key_id.as_deref(), Some(key.kid()), "{platform}");

        let out = d.client.handle_push(registrar.ring(platform, "call-1", "bob", 30));
        assert_eq!(
            (out.outcome, out.report),
            (Outcome::Ring, SystemReport::Ring),
            "{platform}: {:?}",
            out.error
        );
        assert_eq!(out.call.unwrap().caller_name.as_deref(), Some("Alice"));

        // A v1 push, even correctly signed, would let the provider read the call: refused.
        registrar.encrypts.store(false, SeqCst);
        let out = d.client.handle_push(registrar.ring(platform, "call-2", "bob", 30));
        assert_eq!(
            (out.outcome, rejection(&out)),
            (Outcome::Rejected, Some(RejectionKind::Downgraded)),
            "{platform}"
        );
        if platform == Platform::Apns {
            assert_eq!(out.report, SystemReport::ReportAndEnd);
        }
        assert!(d
            .listener
            .events()
            .iter()
            .any(|e| matches!(e, CallEvent::Error { error } if error.kind == ErrorKind::Downgraded)));
    }
}

#[tokio::test]
async fn a_v1_server_keeps_ringing_v1_pushes() {
    let (registrar, dir) = fixture(false);
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    assert_eq!(d.client.registration().unwrap().device_key_id, None);
    let out = d.client.handle_push(registrar.ring(Platform::Fcm, "call-1", "bob", 30));
    assert_eq!(out.outcome, Outcome::Ring);
    // The key was sent anyway: a server switching on v2 finds it at the next renewal.
    assert!(registrar.device_key_of("bob").is_some());
}

#[tokio::test]
async fn a_server_from_before_device_keys_registers_the_device_for_v1() {
    let (registrar, dir) = fixture(false);
    // What such a server answers: its body type refuses unknown fields.
    registrar.fail_next_saying(400, "invalid_request", "Failed to deserialize the JSON body into the target type: unknown field `device_key`, expected one of `installation_id`, `platform`, `token` at line 1 column 200");
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    let puts = registrar.requests("PUT", "/v1/installations/");
    assert_eq!(puts.len(), 2);
    assert!(puts[0].body.get("device_key").is_some() && puts[1].body.get("device_key").is_none());
    assert_eq!(d.client.registration().unwrap().device_key_id, None);
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Fcm, "call-1", "bob", 30)).outcome,
        Outcome::Ring
    );
}

#[tokio::test]
async fn a_push_sealed_to_another_key_never_rings() {
    let (registrar, dir) = fixture(true);
    let d = registered(Platform::Apns, &registrar, dir.path()).await;
    let stranger = callpush_client::wire::DeviceSecret::from_bytes([0x77; 32]);
    let now = registrar.server_now();
    let push = registrar.sealed_push(
        Platform::Apns,
        invite("call-1", "bob", now, now + 30, PushEvent::Ring, None),
        stranger.public(),
    );
    let out = d.client.handle_push(push);
    assert_eq!((out.outcome, out.report), (Outcome::Rejected, SystemReport::ReportAndEnd));
    assert_eq!(rejection(&out), Some(RejectionKind::Undecryptable));
    assert!(out.call.is_none(), "nothing of a push this device cannot open is shown");
}

#[tokio::test]
async fn keys_rotate_with_the_lease_and_pushes_in_flight_still_open() {
    let (registrar, dir) = fixture(true);
    let d = registered(Platform::Wns, &registrar, dir.path()).await;
    let first = registrar.device_key_of("bob").unwrap();
    let now = registrar.server_now();
    let in_flight = registrar.sealed_push(
        Platform::Wns,
        invite("call-1", "bob", now, now + 30 * 86_400, PushEvent::Ring, None),
        &first,
    );

    registrar.clock.advance(86_400);
    let RefreshOutcome::Renewed { registration } = d.client.refresh(None).await.unwrap() else { panic!() };
    let second = registrar.device_key_of("bob").unwrap();
    assert_ne!(first.kid(), second.kid(), "a renewal makes a new key");
    assert_eq!(registration.device_key_id.as_deref(), Some(second.kid()));
    assert_eq!(d.client.handle_push(in_flight.clone()).outcome, Outcome::Ring, "sealed before the renewal");

    registrar.clock.advance(86_400);
    d.client.refresh(None).await.unwrap();
    // Two renewals later the first key is gone: what was sealed to it no longer opens.
    assert_eq!(rejection(&d.client.handle_push(in_flight)), Some(RejectionKind::Undecryptable));
}

#[tokio::test]
async fn a_failed_registration_sends_the_same_key_again_and_a_restart_keeps_the_keys() {
    let (registrar, dir) = fixture(true);
    let d = device(Platform::Harmony, &registrar, dir.path(), |_| {});
    registrar.fail_next(400, "invalid_argument");
    assert!(d.client.register_push(token(Platform::Harmony), RegisterPushOptions::default()).await.is_err());
    let tried: DeviceKey = registrar.device_key_of("bob").unwrap();
    d.client.register_push(token(Platform::Harmony), RegisterPushOptions::default()).await.unwrap();
    assert_eq!(registrar.device_key_of("bob").unwrap().kid(), tried.kid());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("device-keys.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is the app's alone: {mode:o}");
    }

    drop(d);
    let restarted = device(Platform::Harmony, &registrar, dir.path(), |_| {});
    let out = restarted.client.handle_push(registrar.ring(Platform::Harmony, "call-1", "bob", 30));
    assert_eq!((out.outcome, out.report), (Outcome::Ring, SystemReport::Ring), "{:?}", out.error);
    registrar.encrypts.store(false, SeqCst);
    let out = restarted.client.handle_push(registrar.ring(Platform::Harmony, "call-2", "bob", 30));
    assert_eq!((rejection(&out), out.report), (Some(RejectionKind::Downgraded), SystemReport::ReportError));
}

#[tokio::test]
async fn a_lost_key_file_renews_the_registration_at_the_next_refresh() {
    let (registrar, dir) = fixture(true);
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    let lost = registrar.device_key_of("bob").unwrap();
    drop(d);
    std::fs::write(dir.path().join("device-keys.json"), "{not json").unwrap();
    let restarted = device(Platform::Fcm, &registrar, dir.path(), |_| {});
    assert!(restarted.listener.events().iter().any(
        |e| matches!(e, CallEvent::Error { error } if error.kind == ErrorKind::Storage && error.message.contains("renewing"))
    ));
    // Not due by the lease, due because nothing sealed to the lost key can open.
    let RefreshOutcome::Renewed { registration } = restarted.client.refresh(None).await.unwrap() else {
        panic!()
    };
    let fresh = registrar.device_key_of("bob").unwrap();
    assert_ne!(fresh.kid(), lost.kid());
    assert_eq!(registration.device_key_id.as_deref(), Some(fresh.kid()));
    let out = restarted.client.handle_push(registrar.ring(Platform::Fcm, "call-1", "bob", 30));
    assert_eq!(out.outcome, Outcome::Ring, "{:?}", out.error);
}

#[tokio::test]
async fn unregistering_forgets_the_keys() {
    let (registrar, dir) = fixture(true);
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    let key = registrar.device_key_of("bob").unwrap();
    d.client.unregister_push().await.unwrap();
    let now = registrar.server_now();
    let push = registrar.sealed_push(
        Platform::Fcm,
        invite("call-1", "bob", now, now + 30, PushEvent::Ring, None),
        &key,
    );
    assert_eq!(rejection(&d.client.handle_push(push)), Some(RejectionKind::Undecryptable));
    let stored = std::fs::read_to_string(dir.path().join("device-keys.json")).unwrap();
    assert!(!stored.contains(&key.jwk().x) && stored.len() < 40, "{stored}");
}
