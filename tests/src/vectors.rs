//! The shared test vectors: raw pushes as each platform delivers them, with the decision every
//! implementation must reach.
//!
//! [`generate`] builds them from the real encoder with fixed keys and a fixed clock, so they are
//! byte-for-byte reproducible; the expected decisions are written here by hand, from the
//! contract, never computed by the decoder under test.
//!
//! Wire v2 vectors (`<platform>-v2-<case>`) carry the installation's device key
//! ([`Vector::device_key`]); a decoder given one has switched to v2 and refuses unencrypted
//! pushes as `downgraded`. Their sealing randomness is fixed too.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_client::model::{Caller, CancelReason, Invite, Outcome, Platform, PushEvent, SystemReport};
use callpush_client::wire::{
    encode_push, encode_sealed_push, harmony_delivery, seal, sign_for_sealing, wrap, CallSigner,
    DeviceSecret, ProviderPayload, SealRandomness,
};
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The server key every vector trusts (seed of 32 × 0x11).
pub const TRUSTED_SEED: [u8; 32] = [0x11; 32];
/// A key nobody trusts, used to forge (seed of 32 × 0x22).
pub const FORGER_SEED: [u8; 32] = [0x22; 32];
/// The clock of every vector: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;
/// The installation's X25519 device key of every wire v2 vector (secret of 32 × 0x33).
pub const DEVICE_SECRET: [u8; 32] = [0x33; 32];
/// Another installation's device key: pushes sealed to it never open (secret of 32 × 0x44).
pub const OTHER_DEVICE_SECRET: [u8; 32] = [0x44; 32];

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
    /// Wire v2 only: the installation's device key, a private X25519 JWK (`kty`, `crv`, `kid`,
    /// `x`, `d`) that pushes are sealed to. A decoder given it has switched to v2: it opens
    /// pushes sealed to this key and refuses unencrypted ones (`downgraded`). Absent on v1
    /// vectors, which are decided without any device key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<Value>,
    /// The server clock for the decision, unix seconds.
    pub now: i64,
    /// The decision: what `callpush-dev inspect` prints, with only the `kind` of any error.
    pub expected: Value,
}

impl Vector {
    /// The device key of a wire v2 vector, as the decoder takes it.
    pub fn device_secret(&self) -> Option<DeviceSecret> {
        self.device_key.as_ref().map(|jwk| {
            DeviceSecret::from_private_jwk(&jwk.to_string())
                .unwrap_or_else(|e| panic!("{}: device_key: {e}", self.name))
        })
    }
}

/// What names a vector made by another JOSE implementation (npm `jose`, by
/// `tools/tests/jose/wire-v2.mjs make`) and checked in as it came: no generator of ours can
/// rebuild it, so regenerating keeps it and the drift check leaves it out, while every decoder
/// still runs it.
pub const MADE_ELSEWHERE: &str = "-v2-jose-";

/// Whether the vector `name` was made by another implementation ([`MADE_ELSEWHERE`]).
pub fn made_elsewhere(name: &str) -> bool {
    name.contains(MADE_ELSEWHERE)
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
    /// An already-made JWS (or, wire v2, JWE), wrapped in the platform's envelope without size
    /// checks.
    Jws(String),
    /// An already-encoded payload as the server hands it to the provider.
    Payload(ProviderPayload),
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

/// The randomness of the `n`th sealed push among `platform`'s vectors: fixed, so the files are
/// reproducible, and different for every push, as a real sender's is.
fn randomness(platform: Platform, n: u8) -> SealRandomness {
    let seed = 0x50 + 0x20 * platform.index() as u8 + n;
    SealRandomness { ephemeral: [seed; 32], iv: [seed ^ 0xa5; 12] }
}

/// `jwe` with the JSON text of its protected header changed by `edit` and everything else
/// untouched: the tag, which covers the header, no longer matches.
fn with_header(jwe: &str, edit: impl FnOnce(&str) -> String) -> String {
    let (protected, rest) = jwe.split_once('.').expect("a JWE");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(protected).expect("base64url")).expect("UTF-8");
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changes the header");
    format!("{}.{rest}", b64(edited.as_bytes()))
}

/// An edit of a header's JSON text: the first `from` becomes `to`.
fn replacing<'a>(from: &'a str, to: &'a str) -> impl FnOnce(&str) -> String + 'a {
    move |text| {
        assert!(text.contains(from), "{text} has no {from}");
        text.replacen(from, to, 1)
    }
}

/// `jwe` with its part `index` (0 header … 4 tag) changed by `edit`.
fn with_part(jwe: &str, index: usize, edit: impl FnOnce(&str) -> String) -> String {
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 5, "a JWE");
    parts[index] = edit(&parts[index]);
    parts.join(".")
}

/// The wire v2 cases of `platform`, each with whether the installation holds the device key
/// (`device`) the pushes are sealed to.
fn sealed_cases(platform: Platform, trusted: &CallSigner, device: &DeviceSecret) -> Vec<(Case, bool)> {
    let kid = trusted.kid().to_owned();
    let sealed = |invite: &Invite, n: u8| {
        encode_sealed_push(platform, invite, trusted, device.public(), &randomness(platform, n))
            .expect("vector pushes fit")
    };
    let decided =
        |slug: &'static str, description: &str, build: Build, call: Option<Invite>, outcome, error| Case {
            slug,
            description: description.into(),
            build,
            now: NOW,
            outcome,
            call,
            error,
        };
    let mut cases = Vec::new();

    cases.push(decided(
        "v2-ring-audio",
        "A live audio call sealed to the installation's device key (wire v2) rings.",
        Build::Payload(sealed(&base_invite(), 1)),
        Some(base_invite()),
        Outcome::Ring,
        None,
    ));

    let mut video = base_invite();
    video.video = true;
    video.data = BTreeMap::from([("room".into(), "r-42".into()), ("sdp-hint".into(), "opus/vp8".into())]);
    cases.push(decided(
        "v2-ring-video",
        "A sealed video call with app data rings; the data comes through untouched.",
        Build::Payload(sealed(&video, 2)),
        Some(video),
        Outcome::Ring,
        None,
    ));

    let mut unicode = base_invite();
    unicode.from.name = Some("王小明 Zoë Ødegård 🚀📞".into());
    cases.push(decided(
        "v2-ring-unicode-name",
        "A caller name in several scripts and emoji survives signing, padding and sealing.",
        Build::Payload(sealed(&unicode, 3)),
        Some(unicode),
        Outcome::Ring,
        None,
    ));

    let mut cancel = base_invite();
    cancel.evt = PushEvent::Cancel;
    cancel.reason = Some(CancelReason::CallerCancelled);
    cancel.jti = "msg-0002".into();
    cases.push(decided(
        "v2-cancel",
        "A sealed cancel (caller_cancelled) stops the call.",
        Build::Payload(sealed(&cancel, 4)),
        Some(cancel),
        Outcome::Cancel,
        None,
    ));

    let mut stale = base_invite();
    stale.iat = NOW - 600;
    stale.exp = NOW - 570;
    cases.push(decided(
        "v2-stale",
        "A sealed ring whose deadline passed ten minutes ago is stale: never rung, shown as missed.",
        Build::Payload(sealed(&stale, 5)),
        Some(stale),
        Outcome::Stale,
        None,
    ));

    // A genuine sealed ring (signed, padded, sealed), as a JWE string to take apart.
    let genuine = |n: u8| {
        let jws = sign_for_sealing(platform, &base_invite(), trusted).expect("vector pushes fit");
        seal(&jws, device.public(), &randomness(platform, n))
    };

    let tampered = with_part(&genuine(6), 3, |ciphertext| {
        let mut bytes = ciphertext.as_bytes().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("base64url")
    });
    cases.push(decided(
        "v2-tampered-ciphertext",
        "A sealed ring with one character of its ciphertext changed: the tag no longer matches.",
        Build::Jws(tampered),
        None,
        Outcome::Rejected,
        Some("undecryptable"),
    ));

    // The same members in another order: the same meaning, but the header is authenticated
    // byte for byte (it is the additional data of AES-GCM).
    let reordered = with_header(&genuine(7), |text| {
        let rest = text.strip_prefix(r#"{"alg":"ECDH-ES","#).expect("alg first");
        format!(r#"{{{},"alg":"ECDH-ES"}}"#, rest.strip_suffix('}').expect("an object"))
    });
    cases.push(decided(
        "v2-tampered-header",
        "A sealed ring whose protected header was re-encoded after sealing (alg moved last): it \
         means the same, but the header is authenticated byte for byte, so it does not decrypt.",
        Build::Jws(reordered),
        None,
        Outcome::Rejected,
        Some("undecryptable"),
    ));

    let truncated = with_part(&genuine(8), 3, |ciphertext| ciphertext[..ciphertext.len() / 8 * 4].to_owned());
    cases.push(decided(
        "v2-truncated-ciphertext",
        "A sealed ring whose ciphertext was cut to half its length (tag intact) does not decrypt.",
        Build::Jws(truncated),
        None,
        Outcome::Rejected,
        Some("undecryptable"),
    ));

    let no_tag = with_part(&genuine(9), 4, |_| String::new());
    cases.push(decided(
        "v2-tag-missing",
        "A sealed ring cut off after its ciphertext: a JWE without its 16-byte tag is malformed.",
        Build::Jws(no_tag),
        None,
        Outcome::Rejected,
        Some("malformed"),
    ));

    let other = DeviceSecret::from_bytes(OTHER_DEVICE_SECRET);
    let elsewhere =
        encode_sealed_push(platform, &base_invite(), trusted, other.public(), &randomness(platform, 10))
            .expect("vector pushes fit");
    cases.push(decided(
        "v2-wrong-device-key",
        "A genuine ring sealed to another installation's device key cannot be opened here.",
        Build::Payload(elsewhere),
        None,
        Outcome::Rejected,
        Some("undecryptable"),
    ));

    for (slug, description, from, to, n) in [
        (
            "v2-alg-dir",
            "A sealed ring whose header claims alg dir (a pre-shared key) instead of ECDH-ES.",
            r#""alg":"ECDH-ES""#,
            r#""alg":"dir""#,
            11,
        ),
        (
            "v2-alg-ecdh-es-a256kw",
            "A sealed ring whose header claims alg ECDH-ES+A256KW (a wrapped key) instead of ECDH-ES.",
            r#""alg":"ECDH-ES""#,
            r#""alg":"ECDH-ES+A256KW""#,
            12,
        ),
        (
            "v2-enc-a128gcm",
            "A sealed ring whose header claims enc A128GCM instead of A256GCM.",
            r#""enc":"A256GCM""#,
            r#""enc":"A128GCM""#,
            13,
        ),
    ] {
        cases.push(decided(
            slug,
            &format!("{description} Only ECDH-ES with A256GCM is ever opened."),
            Build::Jws(with_header(&genuine(n), replacing(from, to))),
            None,
            Outcome::Rejected,
            Some("undecryptable"),
        ));
    }

    cases.push(decided(
        "v2-wrong-cty",
        "A sealed push whose header says cty JWT, not callpush+jwt, is not a call push.",
        Build::Jws(with_header(&genuine(14), replacing(r#""cty":"callpush+jwt""#, r#""cty":"JWT""#))),
        None,
        Outcome::Rejected,
        Some("malformed"),
    ));

    let claims = serde_json::to_value(base_invite()).expect("invite serialises");
    let forged = raw_jws(&header(&kid, "EdDSA"), &claims, Some(FORGER_SEED));
    cases.push(decided(
        "v2-forged-signature",
        "Sealed correctly to this installation, but the JWS inside is signed by an untrusted key \
         that claims the trusted key id: sign, then encrypt, so the signature is still checked.",
        Build::Payload(callpush_client::wire::seal_for(
            platform,
            &forged,
            device.public(),
            &randomness(platform, 15),
        )),
        Some(base_invite()),
        Outcome::Rejected,
        Some("bad_signature"),
    ));

    let plain = encode_push(platform, &base_invite(), trusted).expect("vector pushes fit");
    cases.push(decided(
        "v2-downgraded",
        "A genuine, correctly signed wire v1 push (not encrypted) reaching an installation that \
         holds a device key: once switched to v2 it refuses unencrypted pushes.",
        Build::Payload(plain),
        Some(base_invite()),
        Outcome::Rejected,
        Some("downgraded"),
    ));

    let mut cases: Vec<(Case, bool)> = cases.into_iter().map(|case| (case, true)).collect();
    cases.push((
        decided(
            "v2-without-device-key",
            "A genuine sealed ring reaching an installation that holds no device key (no device_key \
             in this vector) cannot be opened.",
            Build::Payload(sealed(&base_invite(), 16)),
            None,
            Outcome::Rejected,
            Some("undecryptable"),
        ),
        false,
    ));
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
    let device = DeviceSecret::from_bytes(DEVICE_SECRET);
    let device_key: Value = serde_json::from_str(&device.private_jwk()).expect("a JWK is JSON");
    let mut vectors = Vec::new();
    for platform in Platform::ALL {
        let v1 = cases(platform, &trusted).into_iter().map(|case| (case, false));
        let v2 = sealed_cases(platform, &trusted, &device);
        for (variant, (case, sealed_to_device)) in v1.chain(v2).enumerate() {
            let raw = match case.build {
                Build::Encode(invite) => {
                    let payload = encode_push(platform, &invite, &trusted).expect("vector pushes fit");
                    delivered(payload, variant)
                }
                Build::Jws(jws) => delivered(wrap(platform, jws), variant),
                Build::Payload(payload) => delivered(payload, variant),
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
                device_key: sealed_to_device.then(|| device_key.clone()),
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
