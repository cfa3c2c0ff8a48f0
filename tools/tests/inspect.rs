//! `callpush-dev inspect` as a user runs it: every shared vector through the binary, and pushes
//! signed by an independent JWS implementation (the `jsonwebtoken` crate) with a key made as the
//! server makes its signing keys. (The server's own keys, fetched from it: inspect_keys.rs;
//! wire v2 pushes made by an independent JOSE implementation: independent_jose.rs.)

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

/// `inspect` with a device key (`--device-key`), as an installation switched to wire v2.
fn inspect_v2(platform: &str, jwk: &str, now: i64, device_key: &str, raw: &str) -> Value {
    decision(&callpush_dev(
        None,
        &[
            "inspect",
            "--platform",
            platform,
            "--jwk",
            jwk,
            "--now",
            &now.to_string(),
            "--device-key",
            device_key,
        ],
        raw,
    ))
}

#[test]
fn inspect_reaches_every_vector_decision() {
    let all = vectors::load(&vectors::dir());
    assert!(all.iter().any(|v| v.device_key.is_some()), "wire v2 vectors are among them");
    let failures: Vec<String> = all
        .iter()
        .filter_map(|v| {
            let (platform, keys) = (v.platform.as_str(), v.keys.to_string());
            let actual = match &v.device_key {
                Some(device_key) => inspect_v2(platform, &keys, v.now, &device_key.to_string(), &v.raw),
                None => inspect(platform, &keys, v.now, &v.raw),
            };
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

#[test]
fn the_device_key_comes_inline_or_from_a_file_and_a_bad_one_is_a_usage_error_that_hides_it() {
    let all = vectors::load(&vectors::dir());
    let ring = all.iter().find(|v| v.name == "fcm-v2-ring-audio").expect("the v2 ring vector");
    let device_key = ring.device_key.as_ref().unwrap().to_string();
    let secret = ring.device_key.as_ref().unwrap()["d"].as_str().unwrap().to_owned();
    let jwk = ring.keys.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("device-key.json");
    std::fs::write(&file, format!("{device_key}\n")).unwrap();
    let at_file = format!("@{}", file.display());
    for key in [&device_key, &at_file] {
        let answer = inspect_v2("fcm", &jwk, ring.now, key, &ring.raw);
        assert_eq!(answer["outcome"], "ring", "{key}: {answer}");
    }
    // With a device key, a wire v1 push is refused; without one, a sealed push is.
    let v1 = all.iter().find(|v| v.name == "fcm-ring-audio").unwrap();
    let answer = inspect_v2("fcm", &jwk, v1.now, &at_file, &v1.raw);
    assert_eq!(
        (answer["outcome"].as_str(), answer["error"]["kind"].as_str()),
        (Some("rejected"), Some("downgraded"))
    );
    let answer = inspect("fcm", &jwk, ring.now, &ring.raw);
    assert_eq!(
        (answer["outcome"].as_str(), answer["error"]["kind"].as_str()),
        (Some("rejected"), Some("undecryptable"))
    );

    let mut wrong_x: Value = serde_json::from_str(&device_key).unwrap();
    wrong_x["x"] = ring.keys["keys"][0]["x"].clone();
    let mut short_d: Value = serde_json::from_str(&device_key).unwrap();
    short_d["d"] = json!(&secret[..20]);
    let mut ed25519: Value = serde_json::from_str(&device_key).unwrap();
    ed25519["crv"] = json!("Ed25519");
    let mut public_only: Value = serde_json::from_str(&device_key).unwrap();
    public_only.as_object_mut().unwrap().remove("d");
    let not_json = format!("{{\"d\": \"{secret}\"");
    let missing = format!("@{}", dir.path().join("nothing-here.json").display());
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let at_empty = format!("@{}", empty.display());
    for bad in [
        wrong_x.to_string(),
        short_d.to_string(),
        ed25519.to_string(),
        public_only.to_string(),
        not_json,
        ring.keys["keys"][0].to_string(),
        "".into(),
        missing,
        at_empty,
    ] {
        let out = callpush_dev(
            None,
            &["inspect", "--platform", "fcm", "--jwk", &jwk, "--device-key", &bad],
            &ring.raw,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(out.stdout.is_empty(), "{bad}");
        assert!(stderr.contains("--device-key"), "the message names the option: {stderr}");
        assert!(!stderr.contains(&secret[..20]), "the message never shows the key: {stderr}");
    }
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
