//! The wire contract: JWS framing and verification, claims, envelopes and size limits.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_proto::model::{Caller, Invite, Platform, PushEvent, RawPush, RejectionKind};
use callpush_proto::wire::{encode_push, open_envelope, wrap, CallSigner, Jws, KeySet, ProviderPayload};
use callpush_proto::WireError;

fn invite() -> Invite {
    Invite {
        iss: "callpush-test".into(),
        aud: "bob".into(),
        jti: "m-1".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_030,
        v: 1,
        evt: PushEvent::Ring,
        cid: "call-1".into(),
        from: Caller { id: "alice".into(), name: Some("Alice".into()) },
        video: false,
        reason: None,
        data: BTreeMap::new(),
    }
}

fn signer() -> CallSigner {
    CallSigner::from_seed(&[1; 32])
}

fn keys(signer: &CallSigner) -> KeySet {
    KeySet::from_jwks(&[signer.public_jwk()]).unwrap()
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

fn jws_of(payload: &ProviderPayload) -> String {
    match payload {
        ProviderPayload::Fcm { data } => data["callpush"].clone(),
        ProviderPayload::Harmony { extra_data: body }
        | ProviderPayload::Apns { body }
        | ProviderPayload::Wns { body } => {
            serde_json::from_str::<serde_json::Value>(body).unwrap()["callpush"].as_str().unwrap().to_owned()
        }
    }
}

/// Signs arbitrary header and claims JSON with `signer`, as another implementation might.
fn sign_raw(header: &str, claims: &str, signer_seed: [u8; 32]) -> String {
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(&signer_seed);
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn header(signer: &CallSigner) -> String {
    format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"callpush+jwt"}}"#, signer.kid())
}

fn claims_json(invite: &Invite) -> String {
    serde_json::to_string(invite).unwrap()
}

fn verify(token: &str, keys: &KeySet) -> Result<Invite, RejectionKind> {
    let jws = Jws::decode(token).map_err(|r| r.kind)?;
    jws.verify(keys).map_err(|r| r.kind)?;
    jws.claims().map_err(|r| r.kind)
}

#[test]
fn a_signed_invite_verifies_and_round_trips() {
    let s = signer();
    let token = callpush_proto::wire::sign(&invite(), &s);
    assert_eq!(verify(&token, &keys(&s)), Ok(invite()));
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "EdDSA", "kid": s.kid(), "typ": "callpush+jwt"}));
}

#[test]
fn header_member_order_and_typ_spelling_of_other_implementations_are_accepted() {
    let s = signer();
    let claims = claims_json(&invite());
    for header in [
        format!(r#"{{"typ":"callpush+jwt","kid":"{}","alg":"EdDSA"}}"#, s.kid()),
        format!(r#"{{ "alg" : "EdDSA", "typ" : "application/callpush+jwt", "kid" : "{}" }}"#, s.kid()),
        format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"CallPush+JWT","x-extra":1}}"#, s.kid()),
    ] {
        let token = sign_raw(&header, &claims, [1; 32]);
        assert_eq!(verify(&token, &keys(&s)), Ok(invite()), "{header}");
    }
}

#[test]
fn algorithms_other_than_eddsa_are_rejected_before_anything_else() {
    let s = signer();
    let claims = b64(&claims_json(&invite()));
    for alg in ["none", "None", "HS256", "RS256", "ES256", "eddsa"] {
        let header = b64(&format!(r#"{{"alg":"{alg}","kid":"{}","typ":"callpush+jwt"}}"#, s.kid()));
        for token in [format!("{header}.{claims}."), format!("{header}.{claims}.c2lnbmF0dXJl")] {
            assert_eq!(verify(&token, &keys(&s)), Err(RejectionKind::BadSignature), "{alg}");
        }
    }
}

#[test]
fn tampering_forgery_and_unknown_keys_are_told_apart() {
    let s = signer();
    let token = callpush_proto::wire::sign(&invite(), &s);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();

    // Claims changed after signing.
    let mut tampered = invite();
    tampered.video = true;
    parts[1] = b64(&claims_json(&tampered));
    assert_eq!(verify(&parts.join("."), &keys(&s)), Err(RejectionKind::BadSignature));

    // Signed by another key claiming our kid.
    let forged = sign_raw(&header(&s), &claims_json(&invite()), [2; 32]);
    assert_eq!(verify(&forged, &keys(&s)), Err(RejectionKind::BadSignature));

    // A kid nobody trusts, and no kid at all.
    let other = CallSigner::from_seed(&[3; 32]);
    let unknown = callpush_proto::wire::sign(&invite(), &other);
    assert_eq!(verify(&unknown, &keys(&s)), Err(RejectionKind::UnknownKey));
    let no_kid = sign_raw(r#"{"alg":"EdDSA","typ":"callpush+jwt"}"#, &claims_json(&invite()), [1; 32]);
    assert_eq!(verify(&no_kid, &keys(&s)), Err(RejectionKind::UnknownKey));

    // A signature of the wrong length.
    let short = format!("{}.{}", &token[..token.rfind('.').unwrap()], URL_SAFE_NO_PAD.encode([0u8; 63]));
    assert_eq!(verify(&short, &keys(&s)), Err(RejectionKind::BadSignature));
}

#[test]
fn framing_and_header_faults_are_malformed() {
    let s = signer();
    let claims = claims_json(&invite());
    let good = callpush_proto::wire::sign(&invite(), &s);
    for token in [
        String::new(),
        "a.b".into(),
        format!("{good}.extra"),
        "!!!.###.$$$".into(),
        format!("{}={}", &good[..10], &good[10..]),
        sign_raw("[]", &claims, [1; 32]),
        sign_raw(r#"{"kid":"x"}"#, &claims, [1; 32]),
        sign_raw(&format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, s.kid()), &claims, [1; 32]),
        sign_raw(&format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, s.kid()), &claims, [1; 32]),
        sign_raw(
            &format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"callpush+jwt","crit":["exp"]}}"#, s.kid()),
            &claims,
            [1; 32],
        ),
        sign_raw(
            &format!(r#"{{"alg":"EdDSA","alg":"none","kid":"{}","typ":"callpush+jwt"}}"#, s.kid()),
            &claims,
            [1; 32],
        ),
    ] {
        assert_eq!(verify(&token, &keys(&s)), Err(RejectionKind::Malformed), "{token}");
    }
}

#[test]
fn claims_are_checked_after_the_signature() {
    let s = signer();
    let full: serde_json::Value = serde_json::to_value(invite()).unwrap();
    for claim in ["iss", "aud", "jti", "iat", "exp", "v", "evt", "cid", "from", "video"] {
        let mut claims = full.clone();
        claims.as_object_mut().unwrap().remove(claim);
        let token = sign_raw(&header(&s), &claims.to_string(), [1; 32]);
        assert_eq!(verify(&token, &keys(&s)), Err(RejectionKind::Malformed), "without {claim}");
    }
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = full.clone();
        f(&mut claims);
        verify(&sign_raw(&header(&s), &claims.to_string(), [1; 32]), &keys(&s))
    };
    assert_eq!(mutate(&|c| c["v"] = 2.into()), Err(RejectionKind::UnsupportedVersion));
    // A future version may change any claim's shape; the version still explains the refusal.
    assert_eq!(
        mutate(&|c| {
            c["v"] = 2.into();
            c["from"] = "x".into()
        }),
        Err(RejectionKind::UnsupportedVersion)
    );
    assert_eq!(mutate(&|c| c["cid"] = "a/b".into()), Err(RejectionKind::Malformed));
    assert_eq!(mutate(&|c| c["cid"] = "x".repeat(65).into()), Err(RejectionKind::Malformed));
    assert_eq!(mutate(&|c| c["evt"] = "hangup".into()), Err(RejectionKind::Malformed));
    assert_eq!(
        mutate(&|c| c["evt"] = "cancel".into()),
        Err(RejectionKind::Malformed),
        "cancel needs a reason"
    );
    assert_eq!(
        mutate(&|c| {
            c["evt"] = "cancel".into();
            c["reason"] = "bored".into()
        }),
        Err(RejectionKind::Malformed)
    );
    assert_eq!(mutate(&|c| c["exp"] = 1.into()), Err(RejectionKind::Malformed), "exp before iat");
    assert_eq!(mutate(&|c| c["iat"] = "now".into()), Err(RejectionKind::Malformed));
    assert_eq!(mutate(&|c| c["data"] = serde_json::json!({"n": 1})), Err(RejectionKind::Malformed));
    assert!(mutate(&|c| c["extra_claim"] = "ignored".into()).is_ok());
    assert!(mutate(&|c| {
        c["evt"] = "cancel".into();
        c["reason"] = "timeout".into()
    })
    .is_ok());
}

#[test]
fn every_envelope_opens_what_the_platform_delivers() {
    let s = signer();
    let token = callpush_proto::wire::sign(&invite(), &s);
    let body = format!(r#"{{"callpush":"{token}"}}"#);
    let opened = |platform, raw: &str| {
        open_envelope(platform, &RawPush::from(raw)).map(|o| o.map(|o| (o.jws, o.system_call_id)))
    };

    // HarmonyOS: receiveMessage('VoIP') data, with the system callId.
    let harmony = callpush_proto::wire::harmony_delivery("sys-42", &body, "MAMzLg");
    assert_eq!(opened(Platform::Harmony, &harmony), Ok(Some((token.clone(), Some("sys-42".into())))));
    assert_eq!(opened(Platform::Harmony, r#"{"callId":"x","data":"{\"scene\":\"voice\"}"}"#), Ok(None));
    assert!(opened(Platform::Harmony, "garbage").is_err());

    // FCM: the data map with google.* and other foreign keys, as JSON or as a map.
    let fcm =
        format!(r#"{{"google.message_id":"0:1","from":"123","collapse_key":"x","callpush":"{token}"}}"#);
    assert_eq!(opened(Platform::Fcm, &fcm), Ok(Some((token.clone(), None))));
    let map = HashMap::from([
        ("google.sent_time".to_owned(), "1".to_owned()),
        ("callpush".to_owned(), token.clone()),
    ]);
    assert_eq!(open_envelope(Platform::Fcm, &RawPush::Map(map)).unwrap().unwrap().jws, token);
    let wrapped = format!(r#"{{"data":{{"callpush":"{token}"}},"notification":null}}"#);
    assert_eq!(opened(Platform::Fcm, &wrapped), Ok(Some((token.clone(), None))));
    assert_eq!(opened(Platform::Fcm, r#"{"chat":"hi"}"#), Ok(None));
    assert!(opened(Platform::Fcm, r#"{"callpush":42}"#).is_err());

    // APNs: with or without aps.
    let apns = format!(r#"{{"aps":{{"content-available":1}},"callpush":"{token}"}}"#);
    assert_eq!(opened(Platform::Apns, &apns), Ok(Some((token.clone(), None))));
    assert_eq!(opened(Platform::Apns, &body), Ok(Some((token.clone(), None))));

    // WNS: raw content with surrounding whitespace; plain text is someone else's.
    assert_eq!(opened(Platform::Wns, &format!("\r\n  {body}\n")), Ok(Some((token.clone(), None))));
    assert_eq!(opened(Platform::Wns, "refresh-inbox"), Ok(None));
}

#[test]
fn encoding_respects_each_provider_limit_by_shortening_the_name_first() {
    let s = signer();
    for platform in Platform::ALL {
        let limit = platform.payload_limit();
        let mut big = invite();
        big.from.name = Some("名".repeat(3000));
        let payload = encode_push(platform, &big, &s).unwrap();
        assert!(payload.size() <= limit, "{platform}: {} > {limit}", payload.size());
        let decoded = verify(&jws_of(&payload), &keys(&s)).unwrap();
        let name = decoded.from.name.unwrap();
        assert!(name.ends_with('…') && name.starts_with("名名"), "{platform}: {name}");
        // It was shortened only as much as needed: one more character would not fit.
        assert!(payload.size() + 300 > limit, "{platform} cut too much");

        let mut huge = invite();
        huge.data.insert("blob".into(), "x".repeat(limit));
        assert!(matches!(encode_push(platform, &huge, &s), Err(WireError::PayloadTooLarge { .. })));
    }
}

#[test]
fn oversized_pushes_are_refused_when_opened() {
    let s = signer();
    let mut big = invite();
    big.data.insert("blob".into(), "x".repeat(6000));
    let token = callpush_proto::wire::sign(&big, &s);
    for platform in Platform::ALL {
        let payload = wrap(platform, token.clone());
        let raw = match payload {
            ProviderPayload::Harmony { extra_data } => {
                callpush_proto::wire::harmony_delivery("s", &extra_data, "t")
            }
            ProviderPayload::Fcm { data } => serde_json::to_string(&data).unwrap(),
            ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
        };
        let err = open_envelope(platform, &RawPush::from(raw)).unwrap_err();
        assert_eq!(err.kind, RejectionKind::Malformed, "{platform}");
    }
    assert!(open_envelope(Platform::Wns, &RawPush::from("x".repeat(1 << 20))).is_err());
}

// Wire v2: sealed pushes.

mod sealed {
    use super::*;
    use callpush_proto::wire::{
        encode_sealed_push, is_jwe, open_sealed, seal_for, sign_verification_for_sealing, DeviceSecret,
        SealRandomness,
    };

    fn device() -> DeviceSecret {
        DeviceSecret::from_bytes([3; 32])
    }

    fn randomness(n: u8) -> SealRandomness {
        SealRandomness { ephemeral: [n; 32], iv: [n; 12] }
    }

    fn sealed(platform: Platform, invite: &Invite, n: u8) -> Result<ProviderPayload, WireError> {
        encode_sealed_push(platform, invite, &signer(), device().public(), &randomness(n))
    }

    #[test]
    fn every_sealed_push_of_a_platform_has_the_same_size_and_fits() {
        for platform in Platform::ALL {
            let mut sizes = Vec::new();
            for (n, name) in
                [None, Some("A"), Some("Alice"), Some(&*"Bartholomew 🦀 ".repeat(20))].into_iter().enumerate()
            {
                let mut invite = invite();
                invite.from.name = name.map(str::to_owned);
                let payload = sealed(platform, &invite, n as u8 + 1).unwrap();
                assert!(payload.size() <= platform.payload_limit(), "{platform}: {}", payload.size());
                sizes.push(payload.size());
                let token = jws_of(&payload);
                assert!(is_jwe(&token));
                let jws = open_sealed(&token, &[device()]).unwrap();
                assert_eq!(verify(&jws, &keys(&signer())).unwrap(), invite, "{platform}");
            }
            assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{platform}: {sizes:?}");
            // Filled to within a few bytes of the provider's limit.
            assert!(sizes[0] + 8 > platform.payload_limit(), "{platform}: {sizes:?}");
            let verification = callpush_proto::model::Verification {
                iss: "callpush-test".into(),
                aud: "bob".into(),
                jti: "m-2".into(),
                iat: 1_700_000_000,
                exp: 1_700_000_300,
                installation_id: "inst-1".into(),
                nonce: "bm9uY2U".into(),
            };
            let jws = sign_verification_for_sealing(platform, &verification, &signer());
            let payload = seal_for(platform, &jws, device().public(), &randomness(9));
            assert_eq!(payload.size(), sizes[0], "{platform}: a verify push looks like a ring");
        }
    }

    #[test]
    fn a_long_name_is_shortened_and_too_much_app_data_is_refused() {
        let mut invite = invite();
        invite.from.name = Some("N".repeat(3000));
        let jws = open_sealed(&jws_of(&sealed(Platform::Fcm, &invite, 1).unwrap()), &[device()]).unwrap();
        let name = verify(&jws, &keys(&signer())).unwrap().from.name.unwrap();
        assert!(name.ends_with('…') && name.len() < 3000, "{}", name.len());
        invite.data.insert("blob".into(), "d".repeat(4000));
        assert!(matches!(sealed(Platform::Fcm, &invite, 1), Err(WireError::PayloadTooLarge { .. })));
    }

    #[test]
    fn the_provider_sees_neither_caller_nor_callee() {
        let mut invite = invite();
        invite.from = Caller { id: "caller-7f3a".into(), name: Some("Zebulon".into()) };
        for platform in Platform::ALL {
            let payload = sealed(platform, &invite, 4).unwrap();
            let text = format!("{payload:?}");
            // The one readable part: the protected header.
            let token = jws_of(&payload);
            let header =
                String::from_utf8(URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
            for secret in ["caller-7f3a", "Zebulon", "call-1", "bob"] {
                assert!(!text.contains(secret) && !header.contains(secret), "{platform}: {secret} in {text}");
            }
        }
    }
}
