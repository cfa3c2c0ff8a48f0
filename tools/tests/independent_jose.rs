//! Wire v2 against an independent JOSE implementation: `jose` (panva, npm; pinned by
//! `tools/tests/jose/package-lock.json`), run with Node.js by `tools/tests/jose/wire-v2.mjs`.
//!
//! - jose signs call pushes (EdDSA) with a key of its own, seals them to an X25519 device key
//!   of its own (ECDH-ES, A256GCM, `cty` `callpush+jwt`, `kid` its RFC 7638 thumbprint) and
//!   wraps them as each platform delivers them; `callpush-dev inspect --device-key` rings the
//!   good ones and never rings the tampered, wrongly sealed or forged ones.
//! - jose opens pushes made by our encoder (`encode_sealed_push`) and verifies the JWS inside.
//!
//! Needs Node.js and `npm ci` in `tools/tests/jose` (`tools/tests/jose/install.sh` does it;
//! `tests/run.sh` runs that). Without them the tests are skipped with a message, unless `CI` or
//! `CALLPUSH_REQUIRE_INDEPENDENT_CLIENT` is set: then they fail.
//!
//! Run alone: `tools/tests/jose/install.sh && cargo test -p callpush-dev --test independent_jose`

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use callpush_client::model::{Caller, Invite, Platform, PushEvent};
use callpush_client::wire::{encode_sealed_push, CallSigner, DeviceSecret, ProviderPayload, SealRandomness};
use serde_json::{json, Value};
use support::{callpush_dev, decision};

/// The clock of the pushes jose makes: any fixed time works, inspect takes it as `--now`.
const NOW: i64 = 1_800_000_000;

fn jose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jose")
}

/// Whether Node.js and jose are installed; when not, skips (false) or, on CI, fails.
fn jose_available() -> bool {
    let dir = jose_dir();
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if node && dir.join("node_modules/jose/package.json").is_file() {
        return true;
    }
    let required = std::env::var_os("CI").is_some_and(|ci| !ci.is_empty() && ci != "false")
        || std::env::var_os("CALLPUSH_REQUIRE_INDEPENDENT_CLIENT").is_some();
    let missing = if node { "the npm package jose" } else { "Node.js (node)" };
    assert!(
        !required,
        "the independent JOSE test needs {missing}: run tools/tests/jose/install.sh (npm ci in {})",
        dir.display()
    );
    eprintln!(
        "skipping the independent JOSE test: it needs {missing} (run tools/tests/jose/install.sh, i.e. npm ci in {})",
        dir.display()
    );
    false
}

/// Runs `node wire-v2.mjs args` with `stdin`; its one line of JSON.
fn jose(args: &[&str], stdin: &str) -> Value {
    use std::io::Write;
    let dir = jose_dir();
    let mut child = Command::new("node")
        .arg(dir.join("wire-v2.mjs"))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node wire-v2.mjs {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// What each case jose makes must come to: the outcome and, for a refusal, the error kind.
fn expected(case: &str) -> (&'static str, Option<&'static str>) {
    match case {
        "ring" | "ring-unicode-name" | "ring-apu-apv" | "ring-application-cty" => ("ring", None),
        "cancel" => ("cancel", None),
        "stale" => ("stale", None),
        "tampered-ciphertext"
        | "wrong-device-key"
        | "wrong-device-key-claiming-kid"
        | "enc-a128gcm"
        | "alg-ecdh-es-a256kw" => ("rejected", Some("undecryptable")),
        "cty-jwt" => ("rejected", Some("malformed")),
        "forged-signature" => ("rejected", Some("bad_signature")),
        "not-encrypted" => ("rejected", Some("downgraded")),
        other => panic!("wire-v2.mjs made a case this test does not know: {other}"),
    }
}

#[test]
fn pushes_sealed_by_jose_are_opened_by_inspect() {
    if !jose_available() {
        return;
    }
    let made = jose(&["make", &NOW.to_string()], "");
    let keys = made["keys"].to_string();
    let device_key = made["device_key"].to_string();
    // jose's thumbprint of the device key is ours.
    let ours = DeviceSecret::from_private_jwk(&device_key).unwrap();
    assert_eq!(made["device_kid"].as_str(), Some(ours.public().kid()));

    let pushes = made["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 4 * 14, "every case on every platform");
    let mut failures = Vec::new();
    for push in pushes {
        let (platform, case, raw) = (
            push["platform"].as_str().unwrap(),
            push["case"].as_str().unwrap(),
            push["raw"].as_str().unwrap(),
        );
        let args = [
            "inspect",
            "--platform",
            platform,
            "--jwk",
            &keys,
            "--now",
            &NOW.to_string(),
            "--device-key",
            &device_key,
        ];
        let decision = decision(&callpush_dev(None, &args, raw));
        let (outcome, kind) = expected(case);
        let actual = (decision["outcome"].as_str(), decision["error"]["kind"].as_str());
        if actual != (Some(outcome), kind) {
            failures.push(format!("{platform} {case}: expected {outcome} {kind:?}, got {decision}"));
            continue;
        }
        if outcome != "rejected" {
            let call = &decision["call"];
            let name = if case == "ring-unicode-name" { "王小明 Zoë 🚀📞" } else { "Alice" };
            assert_eq!(
                (call["call_id"].as_str(), call["caller_name"].as_str(), call["callee"].as_str()),
                (Some("call-jose-42"), Some(name), Some("bob")),
                "{platform} {case}: {decision}"
            );
            assert_eq!(call["data"], json!({"k": "v"}), "{platform} {case}");
            assert_eq!(call["video"], true, "{platform} {case}");
        }
        if case == "cancel" {
            assert_eq!(decision["call"]["reason"], "caller_cancelled", "{platform}: {decision}");
        }
        // Without the device key, nothing jose sealed opens; its unencrypted JWS is wire v1.
        let v1 = decision_without_key(platform, &keys, raw);
        let expected_v1 = if case == "not-encrypted" { "ring" } else { "rejected" };
        if v1["outcome"] != expected_v1 {
            failures
                .push(format!("{platform} {case} without --device-key: expected {expected_v1}, got {v1}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} pushes:\n{}", failures.len(), pushes.len(), failures.join("\n"));
}

fn decision_without_key(platform: &str, keys: &str, raw: &str) -> Value {
    decision(&callpush_dev(
        None,
        &["inspect", "--platform", platform, "--jwk", keys, "--now", &NOW.to_string()],
        raw,
    ))
}

/// The JWE our encoder put in `payload`.
fn jwe_of(payload: &ProviderPayload) -> String {
    let body = match payload {
        ProviderPayload::Fcm { data } => return data["callpush"].clone(),
        ProviderPayload::Harmony { extra_data } => extra_data,
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    };
    let body: Value = serde_json::from_str(body).unwrap();
    body["callpush"].as_str().unwrap().to_owned()
}

#[test]
fn jose_opens_what_our_encoder_seals() {
    if !jose_available() {
        return;
    }
    let signer = CallSigner::from_seed(&[0x5a; 32]);
    let device = DeviceSecret::from_bytes([0x6b; 32]);
    let invite = Invite {
        iss: "callpush-test".into(),
        aud: "user-bob".into(),
        jti: "msg-jose".into(),
        iat: NOW - 1,
        exp: NOW + 29,
        v: 1,
        evt: PushEvent::Ring,
        cid: "call-sealed-1".into(),
        from: Caller { id: "user-alice".into(), name: Some("Zoë 🚀".into()) },
        video: true,
        reason: None,
        data: [("room".to_owned(), "r-7".to_owned())].into(),
    };
    let mut pushes = Vec::new();
    for (n, platform) in Platform::ALL.into_iter().enumerate() {
        let randomness = SealRandomness { ephemeral: [0x70 + n as u8; 32], iv: [0x10 + n as u8; 12] };
        let payload = encode_sealed_push(platform, &invite, &signer, device.public(), &randomness).unwrap();
        pushes.push(jwe_of(&payload));
    }
    // Tampered: one character of the first push's ciphertext changed.
    let mut parts: Vec<String> = pushes[0].split('.').map(str::to_owned).collect();
    let middle = parts[3].len() / 2;
    let replacement = if &parts[3][middle..=middle] == "A" { "B" } else { "A" };
    parts[3].replace_range(middle..=middle, replacement);
    pushes.push(parts.join("."));
    // Sealed to another key.
    let other = DeviceSecret::from_bytes([0x7c; 32]);
    let randomness = SealRandomness { ephemeral: [0x7f; 32], iv: [0x1f; 12] };
    pushes.push(jwe_of(
        &encode_sealed_push(Platform::Fcm, &invite, &signer, other.public(), &randomness).unwrap(),
    ));

    let input = json!({
        "device_key": serde_json::from_str::<Value>(&device.private_jwk()).unwrap(),
        "keys": {"keys": [signer.public_jwk()]},
        "pushes": pushes,
    });
    let opened = jose(&["open"], &input.to_string());
    let opened = opened["opened"].as_array().unwrap();
    assert_eq!(opened.len(), 6);
    for (platform, result) in Platform::ALL.into_iter().zip(opened) {
        assert!(result.get("error").is_none(), "{platform}: jose could not open it: {result}");
        let header = &result["header"];
        assert_eq!(
            (header["alg"].as_str(), header["enc"].as_str(), header["cty"].as_str(), header["kid"].as_str()),
            (Some("ECDH-ES"), Some("A256GCM"), Some("callpush+jwt"), Some(device.public().kid())),
            "{platform}: {header}"
        );
        assert_eq!(
            (header["epk"]["kty"].as_str(), header["epk"]["crv"].as_str()),
            (Some("OKP"), Some("X25519"))
        );
        let jws_header = &result["jws_header"];
        assert_eq!(
            (jws_header["alg"].as_str(), jws_header["typ"].as_str(), jws_header["kid"].as_str()),
            (Some("EdDSA"), Some("callpush+jwt"), Some(signer.kid())),
            "{platform}: {jws_header}"
        );
        let claims = &result["claims"];
        assert_eq!(
            (claims["cid"].as_str(), claims["aud"].as_str(), claims["evt"].as_str(), claims["v"].as_i64()),
            (Some("call-sealed-1"), Some("user-bob"), Some("ring"), Some(1)),
            "{platform}: {claims}"
        );
        assert_eq!(claims["from"]["name"], "Zoë 🚀", "{platform}");
        assert_eq!(claims["data"], json!({"room": "r-7"}), "{platform}");
        assert!(claims["pad"].is_string(), "{platform}: our encoder pads: {claims}");
    }
    for (what, result) in [("tampered", &opened[4]), ("sealed to another key", &opened[5])] {
        assert!(result["error"].is_string(), "jose opened a push {what}: {result}");
    }
}
