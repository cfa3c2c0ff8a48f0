//! The emulators over TLS ([`Emulators::start_tls`], `callpush-dev emulate --tls`): every one on
//! the test CA, each offering by ALPN what its provider speaks, and the server's senders deliver
//! through all four trusting nothing but the CA file [`Emulators::providers_config`] writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use callpush_client::model::{ApnsEnvironment, Caller, Invite, Platform, PushEvent};
use callpush_client::wire::{encode_push, CallSigner};
use callpush_emulators::credentials::TestCredentials;
use callpush_emulators::device::token_for;
use callpush_emulators::hub::DevicePush;
use callpush_emulators::Emulators;
use callpush_server::config::{Config, SenderConfig, WnsFlow};
use callpush_server::domain::PushKind;
use callpush_server::senders::{OutgoingPush, SendOutcome};
use callpush_server::time::now_secs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The protocol the emulator at `url` (`https://127.0.0.1:<port>`) picks when a client offers
/// `h2` and `http/1.1`, trusting only `ca_pem`.
async fn negotiated(ca_pem: &str, url: &str) -> Option<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let address = url.strip_prefix("https://").expect("an https URL");
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    tls.get_ref().1.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned())
}

#[tokio::test]
async fn each_emulator_offers_what_its_provider_speaks() {
    let emulators = Emulators::start_tls(TestCredentials::default()).await.unwrap();
    let ca = emulators.ca_pem();
    let urls = [
        (emulators.fcm.base_url(), "h2"),
        (emulators.apns.production_url(), "h2"),
        (emulators.apns.sandbox_url(), "h2"),
        (emulators.harmony.base_url(), "http/1.1"),
        (emulators.wns.endpoint(), "http/1.1"),
    ];
    for (url, protocol) in urls {
        assert_eq!(negotiated(&ca, &url).await.as_deref(), Some(protocol), "{url}");
    }
    assert!(emulators.fcm.token_url().starts_with("https://"));
    assert!(emulators.wns.live_token_url().starts_with("https://"));

    // Without TLS, as before: plain HTTP, APNs alone on TLS.
    let plain = Emulators::start(TestCredentials::default()).await.unwrap();
    assert!(plain.fcm.base_url().starts_with("http://"));
    assert!(plain.harmony.base_url().starts_with("http://"));
    assert!(plain.wns.endpoint().starts_with("http://"));
    assert!(plain.apns.production_url().starts_with("https://"));
}

#[tokio::test]
async fn the_senders_deliver_through_all_four_trusting_the_written_ca() {
    let dir = std::env::temp_dir().join(format!("callpush-emulators-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let emulators = Emulators::start_tls(TestCredentials::default()).await.unwrap();
    let (providers, _) = emulators.providers_config(&dir, WnsFlow::Live).unwrap();
    assert_eq!(std::fs::read_to_string(providers.ca_file.as_ref().unwrap()).unwrap(), emulators.ca_pem());
    let config = Config { providers, sender: SenderConfig::Noop, ..Config::default() };
    let senders = callpush_server::app::senders_from_config(&config).unwrap();
    let signer = CallSigner::from_seed(&[7; 32]);
    let before = callpush_emulators::faults::unix_micros();
    for platform in Platform::ALL {
        let token = token_for(platform, 1);
        let mut device = emulators.hub.subscribe(platform, &token);
        let now = now_secs();
        let invite = Invite {
            iss: "test".into(),
            aud: "bob".into(),
            jti: "d-1".into(),
            iat: now,
            exp: now + 30,
            v: 1,
            evt: PushEvent::Ring,
            cid: "call-1".into(),
            from: Caller { id: "alice".into(), name: Some("Alice".into()) },
            video: false,
            reason: None,
            data: BTreeMap::new(),
        };
        let push = OutgoingPush {
            delivery_id: "d-1".into(),
            call_id: "call-1".into(),
            installation_id: "i-1".into(),
            platform,
            token,
            apns_environment: Some(ApnsEnvironment::Production),
            kind: PushKind::Ring,
            payload: Some(encode_push(platform, &invite, &signer).unwrap()),
            missed: None,
            ttl_seconds: 30,
            expires_at: now + 30,
        };
        let outcome = senders.for_platform(platform).send(&push).await;
        assert!(matches!(outcome, SendOutcome::Delivered { .. }), "{platform}: {outcome:?}");
        assert!(
            matches!(device.try_recv(), Ok(DevicePush::App { .. })),
            "{platform}: the device got its push"
        );
    }
    // Every logged request carries its arrival.
    let logged = [
        emulators.fcm.faults().received(),
        emulators.apns.faults().received(),
        emulators.harmony.faults().received(),
        emulators.wns.faults().received(),
    ];
    let after = callpush_emulators::faults::unix_micros();
    for request in logged.iter().flatten() {
        assert!((before..=after).contains(&request.received_at_us), "{request:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
