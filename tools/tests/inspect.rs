//! `callpush-dev inspect` as a user runs it: every shared vector through the binary, and pushes
//! signed by an independent JWS implementation (the `jsonwebtoken` crate) with a key made as the
//! server makes its signing keys. (The server's own keys, fetched from it: inspect_keys.rs.)

mod support;

use callpush_tests::vectors;
use serde_json::{json, Value};
use support::{callpush_dev, decision};

fn inspect(platform: &str, jwk: &str, now: i64, raw: &str) -> Value {
    decision(&callpush_dev(
        None,
        &["inspect", "--platform", platform, "--jwk", jwk, "--now", &now.to_string()],
        raw,
    ))
}

#[test]
fn inspect_reaches_every_vector_decision() {
    let all = vectors::load(&vectors::dir());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|v| {
            let actual = inspect(v.platform.as_str(), &v.keys.to_string(), v.now, &v.raw);
            vectors::check(v, &actual).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn usage_errors_exit_non_zero_and_decisions_exit_zero() {
    let jwk = vectors::load(&vectors::dir())[0].keys.to_string();
    for args in [
        vec!["inspect", "--platform", "sms", "--jwk", &jwk],
        vec!["inspect", "--platform", "fcm", "--jwk", "{}"],
        vec!["inspect", "--platform", "fcm", "--jwk", r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#],
        vec!["inspect", "--platform", "fcm"],
        vec!["inspect", "--platform", "fcm", "--jwk", &jwk, "--now", "yesterday"],
    ] {
        let out = callpush_dev(None, &args, "{}");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty() && !out.stderr.is_empty(), "{args:?}");
    }
    // Not UTF-8, empty, and a megabyte of junk are all decisions.
    for (platform, raw, outcome) in
        [("fcm", "", "rejected"), ("wns", "", "ignore"), ("apns", &"x".repeat(2 << 20), "rejected")]
    {
        assert_eq!(inspect(platform, &jwk, 0, raw)["outcome"], outcome, "{platform}");
    }
    let answer = decision(&callpush_dev(
        None,
        &["inspect", "--platform", "harmony", "--jwk", &jwk],
        [0xff, 0xfe, b'{'],
    ));
    assert_eq!(
        (answer["outcome"].as_str(), answer["report"].as_str()),
        (Some("rejected"), Some("report_error"))
    );
}

/// A key made as the server makes its signing keys, as a PKCS#8 PEM file and its public JWK.
fn generated_key(dir: &std::path::Path) -> (Vec<u8>, Value) {
    let path = dir.join("signing.pem");
    let signer = callpush_server::signing_key::generate();
    callpush_server::signing_key::write(&path, &signer, false).unwrap();
    (std::fs::read(&path).unwrap(), serde_json::to_value(signer.public_jwk()).unwrap())
}

fn claims(evt: &str, now: i64) -> Value {
    let mut claims = json!({
        "iss": "other-server", "aud": "bob", "jti": "j-1", "iat": now - 1, "exp": now + 29, "v": 1,
        "evt": evt, "cid": "call-42", "from": {"id": "alice", "name": "Alice"}, "video": true,
        "data": {"k": "v"},
    });
    if evt == "cancel" {
        claims["reason"] = json!("caller_cancelled");
    }
    claims
}

fn envelope(platform: &str, jws: &str) -> String {
    let body = json!({ "callpush": jws }).to_string();
    match platform {
        "harmony" => json!({"callId": "sys-1", "data": body, "header": {"token": "t"}}).to_string(),
        "fcm" => json!({"callpush": jws, "google.message_id": "0:1", "from": "99"}).to_string(),
        "apns" => json!({"aps": {}, "callpush": jws}).to_string(),
        _ => format!(" {body} "),
    }
}

#[test]
fn pushes_signed_by_another_jws_implementation_are_understood() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let dir = tempfile::tempdir().unwrap();
    let (pem, jwk) = generated_key(dir.path());
    let key = EncodingKey::from_ed_pem(&pem).unwrap();
    let kid = jwk["kid"].as_str().unwrap().to_owned();
    let jwk = jwk.to_string();
    let now = 1_800_000_000;
    let header = |alg| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.clone());
        h.typ = Some("callpush+jwt".into());
        h
    };
    for platform in ["harmony", "fcm", "apns", "wns"] {
        let ring = encode(&header(Algorithm::EdDSA), &claims("ring", now), &key).unwrap();
        let decision = inspect(platform, &jwk, now, &envelope(platform, &ring));
        assert_eq!(decision["outcome"], "ring", "{platform}: {decision}");
        assert_eq!(decision["call"]["caller_name"], "Alice");
        assert_eq!(decision["call"]["data"], json!({"k": "v"}));

        let cancel = encode(&header(Algorithm::EdDSA), &claims("cancel", now), &key).unwrap();
        let decision = inspect(platform, &jwk, now, &envelope(platform, &cancel));
        assert_eq!(
            (decision["outcome"].as_str(), decision["call"]["reason"].as_str()),
            (Some("cancel"), Some("caller_cancelled"))
        );

        // --now fixes the clock of the stale decision.
        assert_eq!(inspect(platform, &jwk, now + 29, &envelope(platform, &ring))["outcome"], "stale");

        // An HMAC token "signed" with the public key bytes, the classic algorithm confusion.
        let confused = encode(
            &header(Algorithm::HS256),
            &claims("ring", now),
            &EncodingKey::from_secret(jwk.as_bytes()),
        )
        .unwrap();
        let decision = inspect(platform, &jwk, now, &envelope(platform, &confused));
        assert_eq!(
            (decision["outcome"].as_str(), decision["error"]["kind"].as_str()),
            (Some("rejected"), Some("bad_signature"))
        );
    }
}
