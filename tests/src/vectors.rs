//! The shared test vectors: raw pushes as each platform delivers them, with the decision every
//! implementation must reach.
//!
//! [`generate`] builds them from the real encoder with fixed keys and a fixed clock, so they are
//! byte-for-byte reproducible; the expected decisions are written here by hand, from the
//! contract, never computed by the decoder under test.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_client::model::{Caller, CancelReason, Invite, Outcome, Platform, PushEvent, SystemReport};
use callpush_client::wire::{encode_push, harmony_delivery, wrap, CallSigner, ProviderPayload};
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The server key every vector trusts (seed of 32 × 0x11).
pub const TRUSTED_SEED: [u8; 32] = [0x11; 32];
/// A key nobody trusts, used to forge (seed of 32 × 0x22).
pub const FORGER_SEED: [u8; 32] = [0x22; 32];
/// The clock of every vector: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

/// One vector, as stored in `tests/vectors/<name>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vector {
    /// File name without `.json`: `<platform>-<case>`.
    pub name: String,
    /// What the vector checks, for a reader.
    pub description: String,
    /// The platform the push arrives on.
    pub platform: Platform,
    /// The push exactly as the platform hands it to the app (FCM: the data map as JSON).
    pub raw: String,
    /// The trusted keys, a JWK Set.
    pub keys: Value,
    /// The server clock for the decision, unix seconds.
    pub now: i64,
    /// The decision: what `callpush-dev inspect` prints, with only the `kind` of any error.
    pub expected: Value,
}

/// Reads every `*.json` vector in `dir`, sorted by name.
pub fn load(dir: &Path) -> Vec<Vector> {
    let mut vectors: Vec<Vector> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    vectors
}

/// The directory the vectors are checked in at.
pub fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// A vector file's text: pretty JSON with a final newline.
pub fn to_file_text(vector: &Vector) -> String {
    let mut text = serde_json::to_string_pretty(vector).expect("vectors serialise");
    text.push('\n');
    text
}

/// What the platform's SDK must tell the system call UI for `outcome` (docs/wire-contract.md).
pub fn expected_report(platform: Platform, outcome: Outcome) -> SystemReport {
    match (platform, outcome) {
        (_, Outcome::Ring) => SystemReport::Ring,
        (Platform::Apns, _) => SystemReport::ReportAndEnd,
        (Platform::Harmony, Outcome::Ignore) => SystemReport::None,
        (Platform::Harmony, _) => SystemReport::ReportError,
        _ => SystemReport::None,
    }
}

fn base_invite() -> Invite {
    Invite {
        iss: "callpush-vectors".into(),
        aud: "user-bob".into(),
        jti: "msg-0001".into(),
        iat: NOW - 2,
        exp: NOW + 28,
        v: 1,
        evt: PushEvent::Ring,
        cid: "call-7d3f9a".into(),
        from: Caller { id: "user-alice".into(), name: Some("Alice".into()) },
        video: false,
        reason: None,
        data: BTreeMap::new(),
    }
}

/// How a push is built for one case.
enum Build {
    /// Through the real encoder.
    Encode(Invite),
    /// An already-made JWS, wrapped in the platform's envelope without size checks.
    Jws(String),
    /// Raw text handed to the app as it is.
    Raw(String),
}

struct Case {
    slug: &'static str,
    description: String,
    build: Build,
    now: i64,
    outcome: Outcome,
    /// The call the push describes, when its claims can be read.
    call: Option<Invite>,
    error: Option<&'static str>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWS over any header and claims, signed with the key of `seed` (empty `seed`: unsigned).
fn raw_jws(header: &Value, claims: &Value, seed: Option<[u8; 32]>) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = seed
        .map(|seed| b64(&ed25519_dalek::SigningKey::from_bytes(&seed).sign(input.as_bytes()).to_bytes()))
        .unwrap_or_default();
    format!("{input}.{signature}")
}

fn header(kid: &str, alg: &str) -> Value {
    json!({ "alg": alg, "kid": kid, "typ": "callpush+jwt" })
}

fn cases(platform: Platform, trusted: &CallSigner) -> Vec<Case> {
    let kid = trusted.kid().to_owned();
    let ring = |description: &str, invite: Invite| Case {
        slug: "",
        description: description.into(),
        call: Some(invite.clone()),
        build: Build::Encode(invite),
        now: NOW,
        outcome: Outcome::Ring,
        error: None,
    };
    let mut cases = Vec::new();

    let mut c = ring("A live audio call rings.", base_invite());
    c.slug = "ring-audio";
    cases.push(c);

    let mut video = base_invite();
    video.video = true;
    video.data = BTreeMap::from([("room".into(), "r-42".into()), ("sdp-hint".into(), "opus/vp8".into())]);
    let mut c = ring("A live video call with app data rings; the data comes through untouched.", video);
    c.slug = "ring-video";
    cases.push(c);

    let mut unicode = base_invite();
    unicode.from.name = Some("王小明 Zoë Ødegård 🚀📞".into());
    let mut c = ring("A caller name in several scripts and emoji survives encoding.", unicode);
    c.slug = "ring-unicode-name";
    cases.push(c);

    let mut anonymous = base_invite();
    anonymous.from.name = None;
    let mut c = ring("A caller without a display name rings with caller_name null.", anonymous);
    c.slug = "ring-no-name";
    cases.push(c);

    for reason in CancelReason::ALL {
        let mut cancel = base_invite();
        cancel.evt = PushEvent::Cancel;
        cancel.reason = Some(reason);
        cancel.jti = "msg-0002".into();
        cases.push(Case {
            slug: match reason {
                CancelReason::CallerCancelled => "cancel-caller-cancelled",
                CancelReason::AnsweredElsewhere => "cancel-answered-elsewhere",
                CancelReason::DeclinedElsewhere => "cancel-declined-elsewhere",
                CancelReason::Timeout => "cancel-timeout",
            },
            description: format!("A cancel with reason {reason} stops the call."),
            call: Some(cancel.clone()),
            build: Build::Encode(cancel),
            now: NOW,
            outcome: Outcome::Cancel,
            error: None,
        });
    }

    let mut stale = base_invite();
    stale.iat = NOW - 600;
    stale.exp = NOW - 570;
    cases.push(Case {
        slug: "stale",
        description: "A ring whose deadline passed ten minutes ago is stale: never rung, shown as missed."
            .into(),
        call: Some(stale.clone()),
        build: Build::Encode(stale),
        now: NOW,
        outcome: Outcome::Stale,
        error: None,
    });

    let claims = serde_json::to_value(base_invite()).expect("invite serialises");
    cases.push(Case {
        slug: "forged-signature",
        description: "Signed by an untrusted key that claims the trusted key id.".into(),
        build: Build::Jws(raw_jws(&header(&kid, "EdDSA"), &claims, Some(FORGER_SEED))),
        call: Some(base_invite()),
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("bad_signature"),
    });

    let stranger = CallSigner::from_seed(&FORGER_SEED);
    cases.push(Case {
        slug: "unknown-kid",
        description: "Correctly signed by a key the device does not trust.".into(),
        build: Build::Jws(callpush_client::wire::sign(&base_invite(), &stranger)),
        call: Some(base_invite()),
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("unknown_key"),
    });

    let genuine = callpush_client::wire::sign(&base_invite(), trusted);
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let mut tampered_invite = base_invite();
    tampered_invite.from.name = Some("Your Bank".into());
    let tampered_claims = b64(serde_json::to_string(&tampered_invite).expect("serialises").as_bytes());
    parts[1] = &tampered_claims;
    cases.push(Case {
        slug: "tampered-claims",
        description: "A genuine push whose caller name was changed after signing.".into(),
        build: Build::Jws(parts.join(".")),
        call: Some(tampered_invite),
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("bad_signature"),
    });

    cases.push(Case {
        slug: "alg-none",
        description: "An unsigned push (alg none) is never accepted.".into(),
        build: Build::Jws(raw_jws(&header(&kid, "none"), &claims, None)),
        call: Some(base_invite()),
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("bad_signature"),
    });

    let mut missing = claims.clone();
    missing.as_object_mut().expect("object").remove("cid");
    cases.push(Case {
        slug: "missing-claims",
        description: "Correctly signed, but without the required call id.".into(),
        build: Build::Jws(raw_jws(&header(&kid, "EdDSA"), &missing, Some(TRUSTED_SEED))),
        call: None,
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("malformed"),
    });

    let mut v2 = claims.clone();
    v2["v"] = json!(2);
    v2["enc"] = json!("A256GCM");
    cases.push(Case {
        slug: "unsupported-version",
        description: "Correctly signed with wire version 2, which this library does not speak.".into(),
        build: Build::Jws(raw_jws(&header(&kid, "EdDSA"), &v2, Some(TRUSTED_SEED))),
        call: None,
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("unsupported_version"),
    });

    let not_ours = match platform {
        Platform::Harmony => harmony_delivery("sys-call-9", r#"{"scene":"voice"}"#, "MAMzLg0123456789aZW"),
        Platform::Fcm => {
            r#"{"google.message_id":"0:1767225600%abc","from":"1234567890","type":"chat","body":"hi"}"#.into()
        }
        Platform::Apns => r#"{"aps":{"alert":"hi"},"type":"chat"}"#.into(),
        Platform::Wns => r#"{"type":"sync","mailbox":"inbox"}"#.into(),
    };
    cases.push(Case {
        slug: "not-ours",
        description: "A push of the same app without a callpush key belongs to someone else.".into(),
        build: Build::Raw(not_ours),
        call: None,
        now: NOW,
        outcome: Outcome::Ignore,
        error: None,
    });

    let garbage = "\u{1}\u{7f}<<not a push>> ]}{".to_owned();
    let (outcome, error, description) = match platform {
        Platform::Wns => (
            Outcome::Ignore,
            None,
            "Raw WNS content that is not JSON is the app's own notification, not a call.",
        ),
        _ => (
            Outcome::Rejected,
            Some("malformed"),
            "Text the platform never delivers (not its JSON shape) is refused, never guessed at.",
        ),
    };
    cases.push(Case {
        slug: "garbage",
        description: description.into(),
        build: Build::Raw(garbage),
        call: None,
        now: NOW,
        outcome,
        error,
    });

    let mut oversized = base_invite();
    oversized.data.insert("blob".into(), "x".repeat(platform.payload_limit()));
    cases.push(Case {
        slug: "oversized",
        description: format!(
            "A correctly signed push larger than the {}-byte limit of the provider cannot have come through it.",
            platform.payload_limit()
        ),
        build: Build::Jws(callpush_client::wire::sign(&oversized, trusted)),
        call: None,
        now: NOW,
        outcome: Outcome::Rejected,
        error: Some("malformed"),
    });

    let mut early = base_invite();
    early.cid = "call-deadline".into();
    cases.push(Case {
        slug: "ring-just-before-deadline",
        description: "One second before its deadline a ring is still live.".into(),
        call: Some(early.clone()),
        now: early.exp - 1,
        build: Build::Encode(early),
        outcome: Outcome::Ring,
        error: None,
    });

    if platform == Platform::Harmony {
        // HarmonyOS hands `header` over as a string (every other Harmony vector); earlier test
        // kits gave an object, which must still open the same.
        if let Ok(ProviderPayload::Harmony { extra_data }) = encode_push(platform, &base_invite(), trusted) {
            let raw = json!({
                "callId": "sys-call-9",
                "data": extra_data,
                "header": { "token": "MAMzLg0123456789aZW" },
            });
            cases.push(Case {
                slug: "ring-header-object",
                description:
                    "A ring whose receiveMessage header is an object rather than the string HarmonyOS \
                              delivers still rings: the header is never read."
                        .into(),
                call: Some(base_invite()),
                build: Build::Raw(raw.to_string()),
                now: NOW,
                outcome: Outcome::Ring,
                error: None,
            });
        }
    }

    cases
}

/// The raw push the platform hands the app for a server-side `payload`; odd variants add
/// what some senders put around it (`aps`, whitespace).
fn delivered(payload: ProviderPayload, variant: usize) -> String {
    match payload {
        ProviderPayload::Harmony { extra_data } => {
            harmony_delivery("sys-call-9", &extra_data, "MAMzLg0123456789aZW")
        }
        ProviderPayload::Fcm { mut data } => {
            // What RemoteMessage.getData() holds: our key among FCM's own.
            data.insert("google.message_id".into(), "0:1767225600000000%31bd1c9631bd1c96".into());
            data.insert("google.sent_time".into(), "1767225598000".into());
            data.insert("google.ttl".into(), "30".into());
            data.insert("from".into(), "1234567890".into());
            serde_json::to_string(&data).expect("serialises")
        }
        ProviderPayload::Apns { body } if variant % 2 == 1 => {
            // Some providers' tooling adds an aps dictionary even to VoIP pushes.
            let mut object: serde_json::Map<String, Value> =
                serde_json::from_str(&body).expect("body is JSON");
            object.insert("aps".into(), json!({ "content-available": 1 }));
            Value::Object(object).to_string()
        }
        ProviderPayload::Apns { body } => body,
        ProviderPayload::Wns { body } if variant % 2 == 1 => format!("\r\n  {body}\n\t"),
        ProviderPayload::Wns { body } => body,
    }
}

/// Every vector, deterministically.
pub fn generate() -> Vec<Vector> {
    let trusted = CallSigner::from_seed(&TRUSTED_SEED);
    let keys = json!({ "keys": [trusted.public_jwk()] });
    let mut vectors = Vec::new();
    for platform in Platform::ALL {
        for (variant, case) in cases(platform, &trusted).into_iter().enumerate() {
            let raw = match case.build {
                Build::Encode(invite) => {
                    let payload = encode_push(platform, &invite, &trusted).expect("vector pushes fit");
                    delivered(payload, variant)
                }
                Build::Jws(jws) => delivered(wrap(platform, jws), variant),
                Build::Raw(raw) => raw,
            };
            let mut expected = json!({
                "outcome": case.outcome,
                "report": expected_report(platform, case.outcome),
            });
            if let Some(invite) = case.call {
                expected["call"] = expected_call(platform, &invite);
            }
            if let Some(kind) = case.error {
                expected["error"] = json!({ "kind": kind });
            }
            vectors.push(Vector {
                name: format!("{platform}-{}", case.slug),
                description: case.description,
                platform,
                raw,
                keys: keys.clone(),
                now: case.now,
                expected,
            });
        }
    }
    vectors
}

/// The `call` object of the inspect contract for `invite`, written out field by field.
fn expected_call(platform: Platform, invite: &Invite) -> Value {
    json!({
        "call_id": invite.cid,
        "caller_id": invite.from.id,
        "caller_name": invite.from.name,
        "video": invite.video,
        "callee": invite.aud,
        "issued_at": invite.iat,
        "expires_at": invite.exp,
        "reason": if invite.evt == PushEvent::Cancel { json!(invite.reason) } else { Value::Null },
        "system_call_id": if platform == Platform::Harmony { json!("sys-call-9") } else { Value::Null },
        "data": invite.data,
    })
}

/// Compares an actual decision (inspect's JSON) with a vector's expectation: every expected
/// member must match, the error by kind only, and no member may be present that is not expected.
pub fn check(vector: &Vector, actual: &Value) -> Result<(), String> {
    let mut actual = actual.clone();
    if let Some(error) = actual.get_mut("error").and_then(Value::as_object_mut) {
        if error.get("message").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(format!("{}: the error has no message", vector.name));
        }
        error.remove("message");
    }
    if actual == vector.expected {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n  expected {}\n  actual   {}",
            vector.name, vector.description, vector.expected, actual
        ))
    }
}
