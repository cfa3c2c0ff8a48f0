//! Prints signed ring pushes for benchmarks of the bindings, which have no Ed25519 signer of
//! their own (Mono's class library has none): the signing key as a JWKS on the first line, then
//! one raw push per line, as the platform hands it to the app.
//!
//! ```text
//! cargo run --release -p callpush-client --example signed_pushes -- <platform> <count> <user>
//! ```
//!
//! Each push rings a new call (`bench-<n>`) for `<user>`, valid for an hour from now.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use callpush_client::model::{Caller, Invite, Platform, PushEvent};
use callpush_client::wire::{encode_push, harmony_delivery, CallSigner, ProviderPayload};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(platform), Some(Ok(count)), Some(user)) =
        (args.first().and_then(|p| parse_platform(p)), args.get(1).map(|n| n.parse::<u32>()), args.get(2))
    else {
        eprintln!("usage: signed_pushes <harmony|fcm|apns|wns> <count> <user>");
        return ExitCode::from(2);
    };
    let signer = CallSigner::from_seed(&[0x5a; 32]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let jwks = serde_json::json!({ "keys": [signer.public_jwk()] });
    let mut lines = vec![jwks.to_string()];
    for n in 0..count {
        let invite = Invite {
            iss: "callpush-bench".into(),
            aud: user.clone(),
            jti: format!("msg-{n}"),
            iat: now - 1,
            exp: now + 3600,
            v: 1,
            evt: PushEvent::Ring,
            cid: format!("bench-{n}"),
            from: Caller { id: "user-alice".into(), name: Some("Alice Ødegård".into()) },
            video: true,
            reason: None,
            data: BTreeMap::from([("room".into(), "r-42".into())]),
        };
        match encode_push(platform, &invite, &signer) {
            Ok(payload) => lines.push(raw(payload)),
            Err(e) => {
                eprintln!("cannot encode push {n}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn parse_platform(name: &str) -> Option<Platform> {
    Platform::ALL.into_iter().find(|p| p.to_string() == name)
}

/// The push as the app receives it (one line: JSON has no raw newlines).
fn raw(payload: ProviderPayload) -> String {
    match payload {
        ProviderPayload::Harmony { extra_data } => {
            harmony_delivery("sys-call-1", &extra_data, "MAMzLg0123456789aZW")
        }
        ProviderPayload::Fcm { data } => serde_json::to_string(&data).unwrap_or_default(),
        ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
    }
}
