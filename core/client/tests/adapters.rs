//! The PushAdapter contract: register / handle / unregister on each of the four providers.

use std::collections::BTreeMap;

use callpush_client::adapter::{
    adapter_for, ApnsAdapter, FcmAdapter, HandleContext, HarmonyAdapter, InMemoryRegistrar, PushAdapter,
    WnsAdapter,
};
use callpush_client::model::{
    ApnsEnvironment, Caller, CancelReason, Invite, Outcome, Platform, PushEvent, RawPush, RegisterOptions,
    RejectionKind, SystemReport,
};
use callpush_client::wire::{encode_push, harmony_delivery, CallSigner, KeySet, ProviderPayload};
use callpush_client::{Error, TokenError};

const NOW: i64 = 1_700_000_010;

fn invite(evt: PushEvent) -> Invite {
    Invite {
        iss: "test".into(),
        aud: "bob".into(),
        jti: "m-1".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_030,
        v: 1,
        evt,
        cid: "call-7".into(),
        from: Caller { id: "alice".into(), name: Some("Alice Ådahl 🚀".into()) },
        video: true,
        reason: (evt == PushEvent::Cancel).then_some(CancelReason::AnsweredElsewhere),
        data: BTreeMap::from([("room".to_owned(), "r-9".to_owned())]),
    }
}

/// The push exactly as the device hands it to the app.
fn delivered(payload: ProviderPayload) -> RawPush {
    match payload {
        ProviderPayload::Harmony { extra_data } => {
            RawPush::from(harmony_delivery("sys-1", &extra_data, "MAMz"))
        }
        ProviderPayload::Fcm { data } => RawPush::Map(data.into_iter().collect()),
        ProviderPayload::Apns { body } => RawPush::from(body),
        ProviderPayload::Wns { body } => RawPush::from(format!("  {body}\n")),
    }
}

struct Fixture {
    signer: CallSigner,
    keys: KeySet,
}

impl Fixture {
    fn new() -> Self {
        Fixture::new_with_seed([9; 32])
    }

    fn new_with_seed(seed: [u8; 32]) -> Self {
        let signer = CallSigner::from_seed(&seed);
        let keys = KeySet::from_jwks(&[signer.public_jwk()]).unwrap();
        Fixture { signer, keys }
    }

    fn handle(
        &self,
        adapter: &dyn PushAdapter,
        invite: &Invite,
        now: i64,
    ) -> callpush_client::model::HandleOutcome {
        let push = delivered(encode_push(adapter.platform(), invite, &self.signer).unwrap());
        adapter.handle(&push, &HandleContext::v1(&self.keys, now, Some("bob")))
    }
}

fn adapters() -> Vec<Box<dyn PushAdapter>> {
    vec![
        Box::new(HarmonyAdapter),
        Box::new(FcmAdapter),
        Box::new(ApnsAdapter::new(ApnsEnvironment::Sandbox)),
        Box::new(WnsAdapter),
    ]
}

#[test]
fn a_live_ring_rings_on_every_platform_with_the_call_it_describes() {
    let f = Fixture::new();
    for adapter in adapters() {
        let out = f.handle(adapter.as_ref(), &invite(PushEvent::Ring), NOW);
        assert_eq!((out.outcome, out.report), (Outcome::Ring, SystemReport::Ring), "{}", adapter.platform());
        let call = out.call.unwrap();
        assert_eq!(call.call_id, "call-7");
        assert_eq!(call.caller_name.as_deref(), Some("Alice Ådahl 🚀"));
        assert!(call.video);
        assert_eq!(call.reason, None);
        assert_eq!(call.data["room"], "r-9");
        let system_call_id = (adapter.platform() == Platform::Harmony).then(|| "sys-1".to_owned());
        assert_eq!(call.system_call_id, system_call_id);
    }
}

#[test]
fn non_ringing_outcomes_report_what_each_platform_requires() {
    let f = Fixture::new();
    let expected = |platform: Platform| match platform {
        Platform::Apns => SystemReport::ReportAndEnd,
        Platform::Harmony => SystemReport::ReportError,
        _ => SystemReport::None,
    };
    for adapter in adapters() {
        let p = adapter.platform();
        let cancel = f.handle(adapter.as_ref(), &invite(PushEvent::Cancel), NOW);
        assert_eq!((cancel.outcome, cancel.report), (Outcome::Cancel, expected(p)), "{p}");
        assert_eq!(cancel.call.unwrap().reason, Some(CancelReason::AnsweredElsewhere));

        // The deadline is exclusive: at exp the push is already stale.
        let stale = f.handle(adapter.as_ref(), &invite(PushEvent::Ring), 1_700_000_030);
        assert_eq!((stale.outcome, stale.report), (Outcome::Stale, expected(p)), "{p}");
        assert!(stale.call.is_some());
        assert_eq!(
            f.handle(adapter.as_ref(), &invite(PushEvent::Ring), 1_700_000_029).outcome,
            Outcome::Ring
        );

        let ignored =
            adapter.handle(&RawPush::from(r#"{"chat":"hello"}"#), &HandleContext::v1(&f.keys, NOW, None));
        let ignore_report = if p == Platform::Apns { SystemReport::ReportAndEnd } else { SystemReport::None };
        assert_eq!(
            (ignored.outcome, ignored.report, ignored.call),
            (Outcome::Ignore, ignore_report, None),
            "{p}"
        );
        assert_eq!(
            adapter.report(Outcome::Duplicate),
            match p {
                Platform::Apns => SystemReport::ReportAndEnd,
                Platform::Harmony => SystemReport::ReportError,
                _ => SystemReport::None,
            }
        );
    }
}

#[test]
fn pushes_for_another_user_or_from_an_untrusted_server_never_ring() {
    let f = Fixture::new();
    let stranger = Fixture::new_with_seed([4; 32]);
    for adapter in adapters() {
        let mut other = invite(PushEvent::Ring);
        other.aud = "carol".into();
        let out = f.handle(adapter.as_ref(), &other, NOW);
        assert_eq!(out.outcome, Outcome::Rejected);
        assert_eq!(out.error.unwrap().kind, RejectionKind::WrongAudience);

        let push =
            delivered(encode_push(adapter.platform(), &invite(PushEvent::Ring), &stranger.signer).unwrap());
        let out = adapter.handle(&push, &HandleContext::v1(&f.keys, NOW, None));
        assert_eq!(out.outcome, Outcome::Rejected);
        assert_eq!(out.error.unwrap().kind, RejectionKind::UnknownKey);
        // The unverified claims are shown for debugging.
        assert_eq!(out.call.unwrap().call_id, "call-7");
    }
}

#[tokio::test]
async fn register_normalises_tokens_and_unregister_withdraws_them() {
    let f = Fixture::new();
    let registrar = InMemoryRegistrar::new(vec![f.signer.public_jwk()]).with_clock(|| NOW);
    let tokens = [
        (Platform::Harmony, " MAMzLgAAAAAAaZW123 ", "MAMzLgAAAAAAaZW123"),
        (Platform::Fcm, "dQw4w9WgXcQ:APA91bHun4MxP5eg", "dQw4w9WgXcQ:APA91bHun4MxP5eg"),
        (Platform::Apns, &"AB".repeat(32), &"ab".repeat(32)),
        (
            Platform::Wns,
            "https://wns2-by3p.notify.windows.com/?token=AwY",
            "https://wns2-by3p.notify.windows.com/?token=AwY",
        ),
    ];
    for (platform, token, normal) in tokens {
        let adapter = adapter_for(platform);
        let mut opts = RegisterOptions::new(format!("inst-{platform}"));
        opts.ttl_seconds = 3600;
        let reg = adapter.register(&registrar, token, &opts).await.unwrap();
        assert_eq!((reg.platform, reg.token.as_str(), reg.expires_at), (platform, normal, NOW + 3600));
        assert_eq!(reg.signing_keys, vec![f.signer.public_jwk()]);
        assert_eq!(reg.apns_environment.is_some(), platform == Platform::Apns);
        assert!(registrar.installation(&reg.installation_id).is_some());
        adapter.unregister(&registrar, &reg).await.unwrap();
        assert!(registrar.installation(&reg.installation_id).is_none());
        assert_eq!(adapter.unregister(&registrar, &reg).await.unwrap_err().kind(), "not_registered");
    }
    assert!(registrar.is_empty());
}

#[tokio::test]
async fn a_new_token_replaces_the_old_one_under_the_same_installation() {
    let registrar = InMemoryRegistrar::new(vec![]);
    let opts = RegisterOptions::new("inst-1");
    FcmAdapter.register(&registrar, "token-one-aaaaaa", &opts).await.unwrap();
    FcmAdapter.register(&registrar, "token-two-bbbbbb", &opts).await.unwrap();
    assert_eq!(registrar.len(), 1);
    assert_eq!(registrar.installation("inst-1").unwrap().token, "token-two-bbbbbb");
}

#[tokio::test]
async fn bad_registrations_fail_with_a_typed_error_naming_the_fault() {
    let registrar = InMemoryRegistrar::new(vec![]);
    let opts = RegisterOptions::new("inst-1");
    let err = WnsAdapter.register(&registrar, "https://evil.example.com/?token=x", &opts).await.unwrap_err();
    assert!(matches!(err, Error::InvalidToken(TokenError::HostNotAllowed { .. })), "{err}");
    assert_eq!(err.kind(), "invalid_token");

    for ttl in [299, 15_552_001] {
        let opts = RegisterOptions { ttl_seconds: ttl, ..RegisterOptions::new("inst-1") };
        let err = FcmAdapter.register(&registrar, "token-one-aaaaaa", &opts).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_argument", "{ttl}");
    }
    for ttl in [300, 15_552_000] {
        let opts = RegisterOptions { ttl_seconds: ttl, ..RegisterOptions::new("inst-1") };
        assert!(FcmAdapter.register(&registrar, "token-one-aaaaaa", &opts).await.is_ok(), "{ttl}");
    }
    let err = FcmAdapter
        .register(&registrar, "token-one-aaaaaa", &RegisterOptions::new("../etc"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_argument");

    // The APNs environment comes from the options, else from the adapter.
    let token = "0f".repeat(32);
    let sandbox =
        ApnsAdapter::new(ApnsEnvironment::Sandbox).register(&registrar, &token, &opts).await.unwrap();
    assert_eq!(sandbox.apns_environment, Some(ApnsEnvironment::Sandbox));
    let opts = RegisterOptions { apns_environment: Some(ApnsEnvironment::Production), ..opts };
    let production =
        ApnsAdapter::new(ApnsEnvironment::Sandbox).register(&registrar, &token, &opts).await.unwrap();
    assert_eq!(production.apns_environment, Some(ApnsEnvironment::Production));
}

#[test]
fn a_verify_push_is_answered_never_rung_and_must_be_signed() {
    use callpush_client::model::Verification;
    use callpush_client::wire::encode_verification;
    let f = Fixture::new();
    let verification = Verification {
        iss: "test".into(),
        aud: "carol".into(),
        jti: "v-1".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_300,
        installation_id: "phone-1".into(),
        nonce: "bm9uY2Utbm9uY2Utbm9uY2U".into(),
    };
    let expected = [
        (Platform::Harmony, SystemReport::ReportError),
        (Platform::Fcm, SystemReport::None),
        (Platform::Apns, SystemReport::ReportAndEnd),
        (Platform::Wns, SystemReport::None),
    ];
    for (adapter, (platform, report)) in adapters().into_iter().zip(expected) {
        assert_eq!(adapter.platform(), platform);
        let push = delivered(encode_verification(platform, &verification, &f.signer));
        // Addressed to another user than the device's last one: the server checks the audience.
        let decided = adapter.decide(&push, &HandleContext::v1(&f.keys, NOW, Some("bob")));
        assert_eq!(
            (decided.outcome.outcome, decided.outcome.report),
            (Outcome::Verify, report),
            "{platform}"
        );
        assert!(decided.outcome.call.is_none() && decided.outcome.error.is_none());
        let request = decided.verify.expect("what to answer");
        assert_eq!(request.verification, verification);
        assert_eq!(request.system_call_id.is_some(), platform == Platform::Harmony);

        // Signed by a stranger: refused, nothing to answer.
        let stranger = Fixture::new_with_seed([3; 32]);
        let forged = delivered(encode_verification(platform, &verification, &stranger.signer));
        let decided = adapter.decide(&forged, &HandleContext::v1(&f.keys, NOW, None));
        assert_eq!(decided.outcome.outcome, Outcome::Rejected);
        assert!(decided.verify.is_none());
    }
}
