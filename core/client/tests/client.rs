//! The client end to end against an in-process registrar: registration lease, handle, dedupe,
//! call state machine, platform guards, long-poll cancels, persistence and registrar failures.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use callpush_client::api::CallPhase;
use callpush_client::client::{
    CallEvent, ErrorKind, IncomingCallError, RefreshOutcome, RegisterPushOptions, SignalledCall,
};
use callpush_client::model::{
    CallState, CancelReason, EndReason, Outcome, Platform, PushEvent, SystemReport,
};
use callpush_client::Error;
use support::*;

async fn registered(
    platform: Platform,
    registrar: &std::sync::Arc<FakeRegistrar>,
    dir: &std::path::Path,
) -> Device {
    let device = device(platform, registrar, dir, |_| {});
    device.client.register_push(token(platform), RegisterPushOptions::default()).await.unwrap();
    device.listener.clear();
    device
}

fn fixture() -> (std::sync::Arc<FakeRegistrar>, tempfile::TempDir) {
    (FakeRegistrar::new(FakeClock::new()), tempfile::tempdir().unwrap())
}

fn states(device: &Device) -> Vec<(CallState, Option<EndReason>)> {
    device
        .ui
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            UiReport::State(call) => Some((call.state, call.end_reason)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn registration_is_sent_as_designed_persisted_and_keeps_its_installation_id() {
    let (registrar, dir) = fixture();
    let d = device(Platform::Apns, &registrar, dir.path(), |c| {
        c.apns_environment = Some(callpush_client::model::ApnsEnvironment::Sandbox)
    });
    let options = RegisterPushOptions {
        ttl_seconds: Some(3600),
        app_id: Some("com.example.app".into()),
        ..Default::default()
    };
    let reg = d.client.register_push("AB".repeat(32), options).await.unwrap();
    let id = d.client.installation_id();
    assert_eq!(
        (reg.installation_id.as_str(), reg.expires_at, reg.user_id.as_deref()),
        (id.as_str(), T0 + 3600, Some("bob"))
    );

    let put = &registrar.requests("PUT", "/v1/installations/")[0];
    assert_eq!(put.path, format!("/v1/installations/{id}"));
    assert_eq!(put.user.as_deref(), Some("bob"));
    let device_key = registrar.device_key_of("bob").expect("a device key for wire v2");
    assert_eq!(
        put.body,
        serde_json::json!({"installation_id": id, "platform": "apns", "token": "ab".repeat(32), "ttl_seconds": 3600,
                           "apns_environment": "sandbox", "app_id": "com.example.app",
                           "device_key": device_key.jwk()})
    );
    assert!(
        matches!(&d.listener.events()[0], CallEvent::RegistrationChanged { registration } if *registration == reg)
    );

    // A restarted app finds the same installation and lease.
    let again = device(Platform::Apns, &registrar, dir.path(), |_| {});
    assert_eq!(again.client.installation_id(), id);
    assert_eq!(again.client.registration(), Some(reg));
}

#[tokio::test]
async fn bad_tokens_and_ttls_fail_typed_without_touching_the_network() {
    let (registrar, dir) = fixture();
    let d = device(Platform::Wns, &registrar, dir.path(), |_| {});
    let err = d
        .client
        .register_push("https://evil.example/?x".into(), RegisterPushOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_token");
    let ttl = RegisterPushOptions { ttl_seconds: Some(60), ..Default::default() };
    assert_eq!(
        d.client.register_push(token(Platform::Wns), ttl).await.unwrap_err().kind(),
        "invalid_argument"
    );
    assert!(registrar.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_ring_is_reported_to_the_system_then_the_app_and_answered_in_platform_order() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Harmony, &registrar, dir.path()).await;
    let push = registrar.ring(Platform::Harmony, "call-1", "bob", 30);
    let out = d.client.handle_push(push);
    assert_eq!((out.outcome, out.report), (Outcome::Ring, SystemReport::Ring));

    let reports = d.ui.reports();
    let UiReport::Incoming(call) = &reports[0] else { panic!("{reports:?}") };
    assert_eq!(
        (call.state, call.system_call_id.as_deref(), call.peer_name.as_deref()),
        (CallState::Ringing, Some("sys-7"), Some("Alice"))
    );
    assert!(matches!(&d.listener.events()[0], CallEvent::Incoming { call } if call.call_id == "call-1"));

    d.client.answer("call-1".into()).await.unwrap();
    let answer = &registrar.requests("POST", "/v1/calls/call-1/answer")[0];
    assert_eq!(answer.body["installation_id"], d.client.installation_id());
    d.client.media_connected("call-1".into()).unwrap();
    d.client.hang_up("call-1".into()).await.unwrap();
    // HarmonyOS: ANSWERED, then ACTIVE once media connects, then DISCONNECTED.
    assert_eq!(
        states(&d),
        vec![
            (CallState::Answered, None),
            (CallState::Active, None),
            (CallState::Ended, Some(EndReason::HungUp))
        ]
    );
    assert!(matches!(
        d.client.answer("call-1".into()).await,
        Err(Error::InvalidCallState { state: CallState::Ended, .. })
    ));
}

#[tokio::test]
async fn decline_ends_the_call_here_and_tells_the_server() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    d.client.handle_push(registrar.ring(Platform::Fcm, "call-2", "bob", 30));
    let call = d.client.decline("call-2".into()).await.unwrap();
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::Declined)));
    assert_eq!(registrar.call_state("call-2").unwrap().state, CallPhase::Declined);
    assert_eq!(states(&d), vec![(CallState::Ended, Some(EndReason::Declined))]);
}

#[tokio::test]
async fn a_call_rings_once_across_pushes_retries_signalling_and_restarts() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Harmony, &registrar, dir.path()).await;
    let push = registrar.ring(Platform::Harmony, "call-3", "bob", 30);
    assert_eq!(d.client.handle_push(push.clone()).outcome, Outcome::Ring);
    let again = d.client.handle_push(push.clone());
    assert_eq!((again.outcome, again.report), (Outcome::Duplicate, SystemReport::ReportError));
    // HarmonyOS: a duplicate is reported as line busy with the push's system call id.
    assert_eq!(
        d.ui.reports().last(),
        Some(&UiReport::Error(Some("sys-7".into()), IncomingCallError::LineBusy))
    );

    let signalled = SignalledCall {
        call_id: "call-3".into(),
        caller_id: "alice".into(),
        caller_name: None,
        video: false,
        expires_at: None,
        system_call_id: None,
        data: Default::default(),
    };
    assert_eq!(
        d.client.report_incoming_from_signalling(signalled.clone()).unwrap().outcome,
        Outcome::Duplicate
    );

    // The socket first, then the push.
    let first = SignalledCall { call_id: "call-4".into(), ..signalled.clone() };
    assert_eq!(d.client.report_incoming_from_signalling(first).unwrap().outcome, Outcome::Ring);
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Harmony, "call-4", "bob", 30)).outcome,
        Outcome::Duplicate
    );

    // After a restart the retried push is still a duplicate.
    drop(d);
    let restarted = device(Platform::Harmony, &registrar, dir.path(), |_| {});
    assert_eq!(restarted.client.handle_push(push).outcome, Outcome::Duplicate);
    assert!(restarted.ui.reports().iter().all(|r| !matches!(r, UiReport::Incoming(_))));
}

#[tokio::test]
async fn every_apns_push_that_does_not_ring_is_reported_then_ended() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Apns, &registrar, dir.path()).await;
    let push = registrar.ring(Platform::Apns, "call-5", "bob", 30);
    d.client.handle_push(push.clone());
    d.ui.clear();
    let out = d.client.handle_push(push);
    assert_eq!((out.outcome, out.report), (Outcome::Duplicate, SystemReport::ReportAndEnd));
    assert!(
        matches!(&d.ui.reports()[..], [UiReport::AndEnd(Some(call), IncomingCallError::LineBusy)] if call.call_id == "call-5")
    );

    d.ui.clear();
    let out = d.client.handle_push(r#"{"aps":{"alert":"chat"}}"#.into());
    assert_eq!((out.outcome, out.report), (Outcome::Ignore, SystemReport::ReportAndEnd));
    assert_eq!(d.ui.reports(), vec![UiReport::AndEnd(None, IncomingCallError::InvalidPush)]);
}

#[tokio::test]
async fn a_cancel_push_stops_the_ring_with_its_reason() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Wns, &registrar, dir.path()).await;
    d.client.handle_push(registrar.ring(Platform::Wns, "call-6", "bob", 30));
    let out = d.client.handle_push(registrar.cancel_push(
        Platform::Wns,
        "call-6",
        "bob",
        CancelReason::CallerCancelled,
    ));
    assert_eq!(out.outcome, Outcome::Cancel);
    let events = d.listener.events();
    assert!(events.iter().any(|e| matches!(e, CallEvent::Cancelled { reason: CancelReason::CallerCancelled, call } if call.end_reason == Some(EndReason::CallerCancelled))));
    assert!(events.iter().any(|e| matches!(e, CallEvent::Missed { call, app_message_id } if call.call_id == "call-6" && app_message_id.starts_with("missed-"))));
    assert_eq!(states(&d), vec![(CallState::Ended, Some(EndReason::CallerCancelled))]);

    // A cancel that overtakes its ring keeps the ring from ringing.
    d.client.handle_push(registrar.cancel_push(
        Platform::Wns,
        "call-7",
        "bob",
        CancelReason::CallerCancelled,
    ));
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Wns, "call-7", "bob", 30)).outcome,
        Outcome::Duplicate
    );
}

#[tokio::test]
async fn the_long_poll_learns_of_an_answer_elsewhere_on_a_rust_thread() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    d.client.handle_push(registrar.ring(Platform::Fcm, "call-8", "bob", 30));
    registrar.set_call("call-8", CallPhase::Answered, None, Some("another-device"));
    let (event, thread) = d
        .listener
        .wait_for(|e| matches!(e, CallEvent::Cancelled { reason: CancelReason::AnsweredElsewhere, .. }))
        .await;
    assert!(matches!(event, CallEvent::Cancelled { call, .. } if call.state == CallState::Ended));
    assert_eq!(thread, "callpush", "long-poll events come from the client's runtime thread");
    assert_eq!(d.client.call("call-8".into()).unwrap().end_reason, Some(EndReason::AnsweredElsewhere));
    assert!(
        !d.listener.events().iter().any(|e| matches!(e, CallEvent::Missed { .. })),
        "answered elsewhere is not missed"
    );
}

#[tokio::test]
async fn with_the_long_poll_off_nothing_polls_and_the_call_still_ends_at_its_deadline() {
    let (registrar, dir) = fixture();
    let d = device(Platform::Fcm, &registrar, dir.path(), |c| c.long_poll_seconds = Some(0));
    d.client.register_push(token(Platform::Fcm), RegisterPushOptions::default()).await.unwrap();
    d.client.handle_push(registrar.ring(Platform::Fcm, "call-lp", "bob", 30));
    registrar.set_call("call-lp", CallPhase::Answered, None, Some("another-device"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(registrar.requests("GET", "/v1/calls/").is_empty(), "the app signals calls itself: no long-poll");
    assert_eq!(d.client.call("call-lp".into()).unwrap().state, CallState::Ringing);
    registrar.clock.advance(30);
    d.client.tick();
    let call = d.client.call("call-lp".into()).unwrap();
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::Missed)));
}

#[tokio::test]
async fn the_notification_permission_is_reported_for_the_registered_installation() {
    let (registrar, dir) = fixture();
    let d = device(Platform::Harmony, &registrar, dir.path(), |_| {});
    let err = d.client.report_notifications(false).await.unwrap_err();
    assert!(matches!(err, Error::NotRegistered(_)), "{err:?}");
    d.client.register_push(token(Platform::Harmony), RegisterPushOptions::default()).await.unwrap();
    d.client.report_notifications(false).await.unwrap();
    d.client.report_notifications(true).await.unwrap();
    let path = format!("/v1/installations/{}/notifications", d.client.installation_id());
    let sent = registrar.requests("PUT", &path);
    assert_eq!(
        sent.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
        vec![serde_json::json!({ "enabled": false }), serde_json::json!({ "enabled": true })]
    );
}

#[tokio::test]
async fn answering_a_call_that_ended_elsewhere_fails_and_ends_it_here() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    d.client.handle_push(registrar.ring(Platform::Fcm, "call-9", "bob", 30));
    registrar.calls_set_quietly("call-9", CallPhase::Cancelled, Some(CancelReason::CallerCancelled));
    let err = d.client.answer("call-9".into()).await.unwrap_err();
    assert_eq!(err, Error::CallEnded { call_id: "call-9".into(), reason: EndReason::CallerCancelled });
    assert_eq!(
        states(&d),
        vec![(CallState::Answered, None), (CallState::Ended, Some(EndReason::CallerCancelled))]
    );
}

#[tokio::test]
async fn a_ringing_call_ends_at_its_deadline_on_the_server_clock() {
    let (registrar, dir) = fixture();
    registrar.skew.store(1000, SeqCst);
    let d = registered(Platform::Harmony, &registrar, dir.path()).await;
    // The device clock is 1000 s behind; the push's deadline is on the server clock.
    let out = d.client.handle_push(registrar.ring(Platform::Harmony, "call-10", "bob", 30));
    assert_eq!(out.outcome, Outcome::Ring, "the offset learned at registration corrects the device clock");
    let wake = d.client.next_wakeup().unwrap();
    assert_eq!(wake, T0 + 30, "next_wakeup is the deadline on the device clock");
    registrar.clock.advance(29);
    d.client.tick();
    assert_eq!(d.client.call("call-10".into()).unwrap().state, CallState::Ringing);
    registrar.clock.advance(1);
    d.client.tick();
    let call = d.client.call("call-10".into()).unwrap();
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::Missed)));
    assert!(d
        .listener
        .events()
        .iter()
        .any(|e| matches!(e, CallEvent::Missed { call, .. } if call.call_id == "call-10")));
    assert_eq!(states(&d), vec![(CallState::Ended, Some(EndReason::Missed))]);
}

#[tokio::test]
async fn a_server_answering_in_seconds_is_understood_as_one_in_milliseconds() {
    // Servers from before instants were unix milliseconds (`expires_at_ms`) answered
    // `expires_at` and `server_time` in seconds, without `view`: the lease, the long-poll and the
    // call actions read the same from both.
    for seconds in [false, true] {
        let (registrar, dir) = fixture();
        registrar.seconds.store(seconds, SeqCst);
        registrar.skew.store(1000, SeqCst);
        let d = device(Platform::Fcm, &registrar, dir.path(), |_| {});
        let reg = d.client.register_push(token(Platform::Fcm), RegisterPushOptions::default()).await.unwrap();
        let now = registrar.server_now();
        assert_eq!((reg.server_time, reg.expires_at), (now, now + 86_400), "seconds: {seconds}");
        // The clock offset learned from `server_time`: a push by the server's clock rings.
        let out = d.client.handle_push(registrar.ring(Platform::Fcm, "call-s", "bob", 30));
        assert_eq!(out.outcome, Outcome::Ring, "seconds: {seconds}");
        registrar.set_call("call-s", CallPhase::Answered, None, Some("another-device"));
        d.listener
            .wait_for(|e| matches!(e, CallEvent::Cancelled { reason: CancelReason::AnsweredElsewhere, .. }))
            .await;
        d.client.handle_push(registrar.ring(Platform::Fcm, "call-t", "bob", 30));
        registrar.calls_set_quietly("call-t", CallPhase::Cancelled, Some(CancelReason::CallerCancelled));
        let err = d.client.answer("call-t".into()).await.unwrap_err();
        assert_eq!(err, Error::CallEnded { call_id: "call-t".into(), reason: EndReason::CallerCancelled });
    }
}

#[tokio::test]
async fn a_stale_push_never_rings_and_is_shown_as_missed() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Harmony, &registrar, dir.path()).await;
    let now = registrar.server_now();
    let stale = registrar
        .push(Platform::Harmony, invite("call-11", "bob", now - 60, now - 30, PushEvent::Ring, None));
    let out = d.client.handle_push(stale);
    assert_eq!((out.outcome, out.report), (Outcome::Stale, SystemReport::ReportError));
    assert_eq!(d.ui.reports(), vec![UiReport::Error(Some("sys-7".into()), IncomingCallError::CallEnded)]);
    assert!(
        matches!(&d.listener.events()[..], [CallEvent::Missed { call, .. }] if call.call_id == "call-11")
    );
}

#[tokio::test]
async fn forged_and_misaddressed_pushes_are_refused_and_reported_as_errors() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Harmony, &registrar, dir.path()).await;
    let out = d.client.handle_push(registrar.ring(Platform::Harmony, "call-12", "carol", 30));
    assert_eq!(out.outcome, Outcome::Rejected);
    assert!(
        matches!(&d.listener.events()[..], [CallEvent::Error { error }] if error.kind == ErrorKind::WrongAudience)
    );
    assert_eq!(d.ui.reports(), vec![UiReport::Error(Some("sys-7".into()), IncomingCallError::InvalidPush)]);

    d.listener.clear();
    registrar.sign_with_unpublished(0x66);
    let out = d.client.handle_push(registrar.ring(Platform::Harmony, "call-13", "bob", 30));
    assert_eq!(
        (out.outcome, out.error.unwrap().kind),
        (Outcome::Rejected, callpush_client::model::RejectionKind::UnknownKey)
    );
    assert!(d
        .listener
        .events()
        .iter()
        .any(|e| matches!(e, CallEvent::Error { error } if error.kind == ErrorKind::UnknownKey)));
}

#[tokio::test]
async fn an_unknown_key_fetches_the_servers_rotated_keys_in_the_background() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    registrar.rotate_key(0x44);
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Fcm, "call-14", "bob", 30)).outcome,
        Outcome::Rejected
    );
    d.listener.wait_for(|e| matches!(e, CallEvent::RegistrationChanged { .. })).await;
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Fcm, "call-15", "bob", 30)).outcome,
        Outcome::Ring
    );
}

#[tokio::test]
async fn reports_slower_than_the_platform_allows_are_error_events() {
    let (registrar, dir) = fixture();
    let d = device_under(
        "bob",
        Platform::Harmony,
        &registrar,
        dir.path(),
        |_| {},
        |e| e.report_limit = Some(Duration::from_millis(5)),
    );
    d.client.register_push(token(Platform::Harmony), RegisterPushOptions::default()).await.unwrap();
    *d.ui.delay.lock().unwrap() = Duration::from_millis(30);
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Harmony, "call-16", "bob", 30)).outcome,
        Outcome::Ring
    );
    assert!(d
        .listener
        .events()
        .iter()
        .any(|e| matches!(e, CallEvent::Error { error } if error.kind == ErrorKind::ReportTooSlow)));
}

#[tokio::test]
async fn a_call_the_system_refuses_ends_as_failed() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    d.ui.refuse.store(true, SeqCst);
    d.client.handle_push(registrar.ring(Platform::Fcm, "call-17", "bob", 30));
    assert_eq!(d.client.call("call-17".into()).unwrap().end_reason, Some(EndReason::Failed));
    assert!(d
        .listener
        .events()
        .iter()
        .any(|e| matches!(e, CallEvent::Error { error } if error.kind == ErrorKind::ReportFailed)));
}

#[tokio::test]
async fn outgoing_calls_dial_then_go_active_then_end() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Harmony, &registrar, dir.path()).await;
    let call =
        d.client.report_outgoing_call("out-1".into(), "carol".into(), Some("Carol".into()), true).unwrap();
    assert_eq!(call.state, CallState::Dialing);
    assert!(
        matches!(&d.ui.reports()[0], UiReport::Outgoing(c) if c.system_call_id.as_deref() == Some("out-1"))
    );
    assert_eq!(d.client.media_connected("out-1".into()).unwrap().state, CallState::Active);
    assert_eq!(d.client.hang_up("out-1".into()).await.unwrap().end_reason, Some(EndReason::HungUp));
    assert!(d.client.report_outgoing_call("bad id".into(), "carol".into(), None, false).is_err());
}

#[tokio::test]
async fn refresh_renews_late_in_the_lease_or_when_the_token_changes() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    let RefreshOutcome::NotDue { renew_at } = d.client.refresh(None).await.unwrap() else { panic!() };
    // Renewal is due when 20 % to 15 % of the 86 400 s lease is left.
    assert!((T0 + 69_120..=T0 + 73_440).contains(&renew_at), "{renew_at}");
    assert_eq!(d.client.next_wakeup(), Some(renew_at));

    registrar.clock.advance(renew_at - T0);
    let RefreshOutcome::Renewed { registration } = d.client.refresh(None).await.unwrap() else { panic!() };
    assert_eq!(registration.expires_at, registrar.server_now() + 86_400);

    let RefreshOutcome::Renewed { registration } =
        d.client.refresh(Some("new-fcm-token-123456".into())).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(registration.token, "new-fcm-token-123456");
    let id = d.client.installation_id();
    assert_eq!(
        registrar.installation(&id).unwrap().1.token,
        "new-fcm-token-123456",
        "replaced under the same id"
    );
    assert_eq!(registrar.requests("PUT", "/v1/installations/").len(), 3);
}

#[tokio::test]
async fn the_apns_alert_token_is_sent_kept_and_resent_on_every_renewal() {
    let (registrar, dir) = fixture();
    let d = device(Platform::Apns, &registrar, dir.path(), |c| {
        c.apns_environment = Some(callpush_client::model::ApnsEnvironment::Sandbox)
    });
    let voip = "ab".repeat(32);
    let options = RegisterPushOptions { apns_alert_token: Some("CD".repeat(32)), ..Default::default() };
    let reg = d.client.register_push(voip.clone(), options).await.unwrap();
    assert_eq!(reg.apns_alert_token, Some("cd".repeat(32)), "normalised like the VoIP token");
    let sent = |n: usize| registrar.requests("PUT", "/v1/installations/")[n].body.clone();
    assert_eq!(sent(0)["alert_token"], "cd".repeat(32));
    assert_eq!(sent(0)["token"], voip);

    // A restarted app renews with both tokens, whether the lease is due or the VoIP token rotated.
    let d = device(Platform::Apns, &registrar, dir.path(), |_| {});
    let RefreshOutcome::NotDue { renew_at } = d.client.refresh(None).await.unwrap() else { panic!() };
    registrar.clock.advance(renew_at - T0);
    assert!(matches!(d.client.refresh(None).await.unwrap(), RefreshOutcome::Renewed { .. }));
    assert_eq!(sent(1)["alert_token"], "cd".repeat(32));
    assert_eq!(sent(1)["apns_environment"], "sandbox");
    let rotated = "ef".repeat(32);
    let RefreshOutcome::Renewed { registration } = d.client.refresh(Some(rotated.clone())).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(registration.apns_alert_token, Some("cd".repeat(32)));
    assert_eq!(
        (sent(2)["token"].as_str(), sent(2)["alert_token"].as_str()),
        (Some(&*rotated), Some(&*"cd".repeat(32)))
    );

    // Registering without it withdraws it: the body carries no alert token.
    d.client.register_push(rotated, RegisterPushOptions::default()).await.unwrap();
    assert!(sent(3).get("alert_token").is_none());
}

#[tokio::test]
async fn a_bad_apns_alert_token_fails_typed_naming_the_field_without_touching_the_network() {
    let (registrar, dir) = fixture();
    let voip = "ab".repeat(32);
    let apns = device(Platform::Apns, &registrar, dir.path(), |c| {
        c.apns_environment = Some(callpush_client::model::ApnsEnvironment::Production)
    });
    let fcm_dir = tempfile::tempdir().unwrap();
    let fcm = device(Platform::Fcm, &registrar, fcm_dir.path(), |_| {});
    let alert = |t: &str| RegisterPushOptions { apns_alert_token: Some(t.into()), ..Default::default() };
    for (client, token, options, expected) in [
        (&apns, voip.clone(), alert("not hex at all, no"), "apns_alert_token: "),
        (&apns, voip.clone(), alert(&"a".repeat(65)), "apns_alert_token: "),
        (&apns, voip.clone(), alert(&"AB".repeat(32)), "apns_alert_token equals the VoIP token"),
        (&fcm, token(Platform::Fcm), alert(&"cd".repeat(32)), "apns_alert_token is for APNs only"),
    ] {
        let err = client.client.register_push(token, options).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_token", "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = apns.client.register_push(voip, alert("0f")).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidToken(callpush_client::TokenError::BadAlertToken(inner))
            if matches!(**inner, callpush_client::TokenError::TooShort { .. })),
        "{err:?}"
    );
    assert!(registrar.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_lapsed_lease_is_reported_once_and_renewed_by_refresh() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    registrar.clock.advance(86_400);
    d.client.tick();
    d.client.tick();
    let lapsed =
        d.listener.events().into_iter().filter(|e| matches!(e, CallEvent::RegistrationLapsed { .. })).count();
    assert_eq!(lapsed, 1);
    assert!(matches!(d.client.refresh(None).await.unwrap(), RefreshOutcome::Renewed { .. }));
}

#[tokio::test]
async fn unregister_withdraws_the_installation_and_stops_trusting_pushes() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    let push = registrar.ring(Platform::Fcm, "call-18", "bob", 30);
    d.client.unregister_push().await.unwrap();
    assert!(registrar.installation(&d.client.installation_id()).is_none());
    assert_eq!(d.client.registration(), None);
    assert_eq!(d.client.handle_push(push).outcome, Outcome::Rejected);
    assert_eq!(d.client.unregister_push().await.unwrap_err().kind(), "not_registered");
    assert_eq!(d.client.refresh(None).await.unwrap(), RefreshOutcome::NotRegistered);
    let restarted = device(Platform::Fcm, &registrar, dir.path(), |_| {});
    assert_eq!(restarted.client.registration(), None);
}

#[tokio::test]
async fn transient_registrar_failures_are_retried_and_permanent_ones_are_typed() {
    let (registrar, dir) = fixture();
    let d = device(Platform::Fcm, &registrar, dir.path(), |_| {});
    let register = || d.client.register_push(token(Platform::Fcm), RegisterPushOptions::default());

    registrar.fail_next(503, "unavailable");
    registrar.drop_next.store(1, SeqCst);
    registrar.fail_next(429, "slow_down");
    assert!(register().await.is_ok(), "two failures then success");

    for _ in 0..4 {
        registrar.fail_next(500, "boom");
    }
    let err = register().await.unwrap_err();
    assert_eq!(err.kind(), "network");
    assert!(err.to_string().contains("(after 4 attempts)"), "{err}");

    registrar.fail_next(400, "invalid_token");
    let err = register().await.unwrap_err();
    assert!(matches!(&err, Error::Registrar { status: 400, code, .. } if code == "invalid_token"), "{err}");

    // A refused token is refreshed once.
    d.tokens.stale_first.store(true, SeqCst);
    assert!(register().await.is_ok());
    assert_eq!(d.tokens.forced.load(SeqCst), 1);
    registrar.fail_next(401, "unauthorized");
    registrar.fail_next(401, "unauthorized");
    assert_eq!(register().await.unwrap_err().kind(), "unauthorized");
}

#[tokio::test]
async fn corrupt_state_files_never_stop_the_client() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    let id = d.client.installation_id();
    drop(d);
    std::fs::write(dir.path().join("lease.json"), b"{ torn").unwrap();
    std::fs::write(dir.path().join("seen-calls.log"), b"\xff\xfe garbage").unwrap();
    let d = device(Platform::Fcm, &registrar, dir.path(), |_| {});
    assert_eq!(d.client.installation_id(), id, "the installation id lives in its own file");
    assert_eq!(d.client.registration(), None);
    assert!(d
        .listener
        .events()
        .iter()
        .any(|e| matches!(e, CallEvent::Error { error } if error.kind == ErrorKind::Storage)));
    d.client.register_push(token(Platform::Fcm), RegisterPushOptions::default()).await.unwrap();
    assert_eq!(
        d.client.handle_push(registrar.ring(Platform::Fcm, "call-19", "bob", 30)).outcome,
        Outcome::Ring
    );
    assert!(dir.path().join("lease.json.corrupt").exists());
}

#[test]
fn a_bad_configuration_is_refused_with_a_clear_error() {
    let (registrar, dir) = fixture();
    let make = |configure: &dyn Fn(&mut callpush_client::client::ClientConfig)| {
        let mut config = callpush_client::client::ClientConfig::new(
            "http://registrar.test",
            dir.path().to_str().unwrap(),
            Platform::Fcm,
        );
        configure(&mut config);
        callpush_client::client::Client::new(
            config,
            registrar.clone(),
            Tokens::new("bob"),
            std::sync::Arc::new(RecordingUi::default()),
            std::sync::Arc::new(RecordingListener::default()),
        )
        .map(|_| ())
    };
    assert!(make(&|_| {}).is_ok());
    assert_eq!(make(&|c| c.server_url = "ftp://x".into()).unwrap_err().kind(), "invalid_argument");
    assert_eq!(make(&|c| c.data_dir = " ".into()).unwrap_err().kind(), "invalid_argument");
    assert_eq!(make(&|c| c.pinned_keys_json = Some("{}".into())).unwrap_err().kind(), "invalid_key");
}

#[tokio::test]
async fn end_call_ends_a_call_on_this_device_only() {
    let (registrar, dir) = fixture();
    let d = registered(Platform::Fcm, &registrar, dir.path()).await;
    d.client.handle_push(registrar.ring(Platform::Fcm, "call-20", "bob", 30));
    let call = d.client.end_call("call-20".into(), EndReason::Failed).unwrap();
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::Failed)));
    assert_eq!(states(&d), vec![(CallState::Ended, Some(EndReason::Failed))]);
    assert_eq!(registrar.call_state("call-20").unwrap().state, CallPhase::Ringing, "the server is not told");
    assert!(d.client.end_call("call-20".into(), EndReason::HungUp).is_err(), "ends once");
}

#[tokio::test]
async fn a_data_directory_left_by_another_user_gets_a_new_installation() {
    let (registrar, dir) = fixture();
    let bob = registered(Platform::Fcm, &registrar, dir.path()).await;
    let bobs_id = bob.client.installation_id();
    drop(bob);
    // Carol signs in on the same app data without Bob having unregistered.
    let carol = device_of("carol", Platform::Fcm, &registrar, dir.path(), |_| {});
    let reg = carol.client.register_push(token(Platform::Fcm), RegisterPushOptions::default()).await.unwrap();
    assert_ne!(reg.installation_id, bobs_id);
    assert_eq!(carol.client.installation_id(), reg.installation_id);
    assert_eq!(registrar.installation(&reg.installation_id).unwrap().0, "carol");
    assert_eq!(
        device_of("carol", Platform::Fcm, &registrar, dir.path(), |_| {}).client.installation_id(),
        reg.installation_id,
        "kept"
    );
}
