//! Provider envelopes: how the JWS rides in each platform's push, both ways (docs/wire-contract.md).
//!
//! Building: [`encode_push`] signs an invite and wraps it for one provider, refusing anything
//! over the provider's size limit (the caller name is shortened first, never the signature).
//! Opening: [`open_envelope`] finds the JWS in a push exactly as the platform hands it to the
//! app, tolerating what platforms add around it (`google.*` keys, `aps`, whitespace).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::jwe::{self, DeviceKey, SealRandomness};
use super::jws::{self, MAX_JWS_LEN};
use super::keys::CallSigner;
use crate::error::WireError;
use crate::model::{Invite, Platform, RawPush, Rejection, Verification};

/// The key under which every envelope carries the JWS.
pub const PUSH_KEY: &str = "callpush";

/// Bytes of a Push Kit v3 request body that are not the payload: `target` without its tokens
/// and `pushOptions` (`ttl`, a 64-byte `biTag`, `testMessage`). Push Kit's 4096-byte limit
/// counts the body without tokens, so the payload gets what is left.
const HARMONY_REQUEST_FRAMING: usize = 160;

/// Largest raw push `open_envelope` reads: no provider delivers more than twice its limit once
/// the platform has wrapped it (escaping, system fields), so anything larger is refused unread.
const MAX_RAW_PUSH: usize = 2 * MAX_JWS_LEN + 1024;

/// A signed call push, wrapped for one provider: exactly what its sender puts in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderPayload {
    /// Push Kit v3 push-type 10: the `payload.extraData` string.
    Harmony {
        /// `{"callpush":"<jws>"}` as a string.
        extra_data: String,
    },
    /// FCM HTTP v1: `message.data`.
    Fcm {
        /// `{"callpush": "<jws>"}`.
        data: BTreeMap<String, String>,
    },
    /// APNs VoIP: the request body.
    Apns {
        /// `{"callpush":"<jws>"}`.
        body: String,
    },
    /// WNS raw: the request body.
    Wns {
        /// `{"callpush":"<jws>"}`.
        body: String,
    },
}

impl ProviderPayload {
    /// The platform this payload is for.
    pub fn platform(&self) -> Platform {
        match self {
            ProviderPayload::Harmony { .. } => Platform::Harmony,
            ProviderPayload::Fcm { .. } => Platform::Fcm,
            ProviderPayload::Apns { .. } => Platform::Apns,
            ProviderPayload::Wns { .. } => Platform::Wns,
        }
    }

    /// The size the provider counts against its limit, bytes.
    pub fn size(&self) -> usize {
        match self {
            // extraData is a JSON string inside the request body: its quotes get escaped.
            ProviderPayload::Harmony { extra_data } => {
                json_string_len(extra_data) + r#"{"payload":{"extraData":}}"#.len() + HARMONY_REQUEST_FRAMING
            }
            // FCM counts the keys and values of the data map.
            ProviderPayload::Fcm { data } => data.iter().map(|(k, v)| k.len() + v.len()).sum(),
            ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body.len(),
        }
    }
}

fn json_string_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(usize::MAX, |quoted| quoted.len())
}

/// Signs `invite` and wraps it for `platform`, within the provider's size limit.
///
/// When the push is too large the caller name is shortened (ending in `…`), then dropped;
/// if it still does not fit — app data too large — the result is `PayloadTooLarge`.
pub fn encode_push(
    platform: Platform,
    invite: &Invite,
    signer: &CallSigner,
) -> Result<ProviderPayload, WireError> {
    let limit = platform.payload_limit();
    let mut invite = invite.clone();
    loop {
        let payload = wrap(platform, jws::sign(&invite, signer));
        let size = payload.size();
        if size <= limit {
            return Ok(payload);
        }
        // Base64 grows the claims by 4/3; cut at least that much.
        if !shorten_name(&mut invite, (size - limit) * 3 / 4 + 1) {
            return Err(WireError::PayloadTooLarge { platform, size, limit });
        }
    }
}

/// Shortens the caller name of `invite` by at least `excess` bytes of its claims, ending it
/// with `…`, or drops it when that leaves nothing. `false` when there is no name to shorten.
fn shorten_name(invite: &mut Invite, excess: usize) -> bool {
    let Some(name) = invite.from.name.as_mut() else {
        return false;
    };
    // Room for the ellipsis too.
    let excess = excess + '…'.len_utf8();
    let trimmed = name.trim_end_matches('…');
    if excess >= trimmed.len() {
        invite.from.name = None;
    } else {
        let mut cut = trimmed.len() - excess;
        while !trimmed.is_char_boundary(cut) {
            cut -= 1;
        }
        *name = format!("{}…", &trimmed[..cut]);
    }
    true
}

/// Signs `invite` for sealing to a device of `platform` (wire v2): padded with a `pad` claim
/// so that, sealed by [`seal_for`], it fills the provider's limit exactly as every other sealed
/// push of that platform does; the provider learns nothing from its size. The caller name is
/// shortened as [`encode_push`] does when app data leaves too little room. One signature
/// serves every device of the callee on `platform`: only the sealing is per device.
pub fn sign_for_sealing(
    platform: Platform,
    invite: &Invite,
    signer: &CallSigner,
) -> Result<String, WireError> {
    let claims_len = sealed_claims_len(platform, signer);
    let mut invite = invite.clone();
    loop {
        if let Some(jws) = jws::sign_invite_padded(&invite, signer, claims_len) {
            return Ok(jws);
        }
        let unpadded = serde_json::to_vec(&invite).map_or(usize::MAX, |c| c.len()) + jws::PAD_CLAIM.len() + 6;
        // JSON escaping may double a character's bytes; cutting the name's bytes by the
        // excess cuts the claims by at least as much.
        if !shorten_name(&mut invite, unpadded - claims_len) {
            let size = platform.payload_limit() + unpadded - claims_len;
            return Err(WireError::PayloadTooLarge { platform, size, limit: platform.payload_limit() });
        }
    }
}

/// Signs a verify push for sealing, padded as [`sign_for_sealing`] pads call pushes, so the
/// provider cannot tell it from a ring either. A few hundred bytes of claims always fit.
pub fn sign_verification_for_sealing(
    platform: Platform,
    verification: &Verification,
    signer: &CallSigner,
) -> String {
    let claims_len = sealed_claims_len(platform, signer);
    jws::sign_verification_padded(verification, signer, claims_len)
        .unwrap_or_else(|| jws::sign_verification(verification, signer))
}

/// Encrypts a JWS from [`sign_for_sealing`] to one device and wraps it for `platform`.
pub fn seal_for(
    platform: Platform,
    jws: &str,
    to: &DeviceKey,
    randomness: &SealRandomness,
) -> ProviderPayload {
    wrap(platform, jwe::seal(jws, to, randomness))
}

/// [`sign_for_sealing`] and [`seal_for`] in one: a wire v2 push for one device.
pub fn encode_sealed_push(
    platform: Platform,
    invite: &Invite,
    signer: &CallSigner,
    to: &DeviceKey,
    randomness: &SealRandomness,
) -> Result<ProviderPayload, WireError> {
    Ok(seal_for(platform, &sign_for_sealing(platform, invite, signer)?, to, randomness))
}

/// The claims length of every sealed push of `platform` under `signer`: the largest whose
/// sealed and wrapped push fits the provider's limit.
fn sealed_claims_len(platform: Platform, signer: &CallSigner) -> usize {
    // Everything but the ciphertext is base64url, which no envelope escapes, so the wrapped
    // size grows by exactly the ciphertext's encoded length.
    let frame = wrap(platform, "x".repeat(jwe::sealed_len(0))).size();
    let room = platform.payload_limit().saturating_sub(frame);
    jws::padded_claims_len(signer.kid(), room * 3 / 4)
}

/// Signs a verify push and wraps it for `platform`. It travels as a call push does (Push Kit
/// push-type 10, a high-priority FCM data message, an APNs VoIP push, WNS raw), since it must
/// reach the same handler; a few hundred bytes, it fits every provider.
pub fn encode_verification(
    platform: Platform,
    verification: &Verification,
    signer: &CallSigner,
) -> ProviderPayload {
    wrap(platform, jws::sign_verification(verification, signer))
}

/// Wraps an already signed JWS for `platform`, without checking its size.
pub fn wrap(platform: Platform, jws: String) -> ProviderPayload {
    match platform {
        Platform::Fcm => ProviderPayload::Fcm { data: BTreeMap::from([(PUSH_KEY.to_owned(), jws)]) },
        _ => {
            let body = if jws.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
                // A compact JWS has nothing JSON escapes: the object as serde_json writes it,
                // without the escaping pass.
                let mut body = String::with_capacity(jws.len() + PUSH_KEY.len() + 7);
                for part in ["{\"", PUSH_KEY, "\":\"", &jws, "\"}"] {
                    body.push_str(part);
                }
                body
            } else {
                Value::Object(Map::from_iter([(PUSH_KEY.to_owned(), Value::String(jws))])).to_string()
            };
            match platform {
                Platform::Harmony => ProviderPayload::Harmony { extra_data: body },
                Platform::Apns => ProviderPayload::Apns { body },
                _ => ProviderPayload::Wns { body },
            }
        }
    }
}

/// The JWS found in a push, with what the platform added that the app needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPush {
    /// The JWS compact string.
    pub jws: String,
    /// HarmonyOS: the system call id from `receiveMessage('VoIP')` (`callId`).
    pub system_call_id: Option<String>,
}

/// Finds the callpush JWS in a push as `platform` hands it to the app.
///
/// `Ok(None)`: the push is not ours (no `callpush` key; for WNS also any non-JSON content,
/// which apps may use for their own raw notifications). `Err`: the push cannot be what the
/// platform delivers (not the platform's JSON shape, larger than the provider allows, or a
/// `callpush` value that is not a string).
pub fn open_envelope(platform: Platform, push: &RawPush) -> Result<Option<OpenedPush>, Rejection> {
    let opened = match push {
        RawPush::Map(map) => {
            check_raw_size(platform, map.iter().map(|(k, v)| k.len() + v.len()).sum())?;
            let object = map.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            open_object(platform, object)?
        }
        RawPush::Text(text) => {
            check_raw_size(platform, text.len())?;
            open_text(platform, text.trim())?
        }
    };
    match opened {
        Some(push) if push.jws.len() > platform.payload_limit() => Err(Rejection::malformed(format!(
            "the push is {} bytes, over the {}-byte limit of {platform}; no provider delivers it",
            push.jws.len(),
            platform.payload_limit()
        ))),
        other => Ok(other),
    }
}

fn check_raw_size(platform: Platform, len: usize) -> Result<(), Rejection> {
    if len > MAX_RAW_PUSH {
        return Err(Rejection::malformed(format!(
            "the push is {len} bytes; {platform} never delivers more than {MAX_RAW_PUSH}"
        )));
    }
    Ok(())
}

fn open_text(platform: Platform, text: &str) -> Result<Option<OpenedPush>, Rejection> {
    let object = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        // WNS raw content is any string the app's servers send; only JSON objects can be ours.
        _ if platform == Platform::Wns => return Ok(None),
        Ok(_) => return Err(Rejection::malformed(format!("a {platform} push must be a JSON object"))),
        Err(e) => return Err(Rejection::malformed(format!("a {platform} push must be JSON: {e}"))),
    };
    open_object(platform, object)
}

fn open_object(platform: Platform, object: Map<String, Value>) -> Result<Option<OpenedPush>, Rejection> {
    match platform {
        Platform::Harmony => open_harmony(object),
        // Some apps pass the whole message (`{"data": {...}}`) rather than its data map.
        Platform::Fcm => match jws_in(&object)? {
            Some(jws) => Ok(Some(OpenedPush { jws, system_call_id: None })),
            None => Ok(object
                .get("data")
                .and_then(value_nested)
                .map(|jws| OpenedPush { jws, system_call_id: None })),
        },
        Platform::Apns | Platform::Wns => {
            Ok(jws_in(&object)?.map(|jws| OpenedPush { jws, system_call_id: None }))
        }
    }
}

/// HarmonyOS: `{"callId": "<system id>", "data": "<extraData>", "header": "..."}`, where
/// extraData is the `{"callpush": "<jws>"}` string the server sent. `header` is never read:
/// Push Kit's interface declares it a string (what devices deliver), older emulators and test
/// kits gave an object, and both (or none) are accepted.
fn open_harmony(object: Map<String, Value>) -> Result<Option<OpenedPush>, Rejection> {
    let system_call_id = match object.get("callId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(_) => return Err(Rejection::malformed("callId must be a non-empty string")),
    };
    let extra = match object.get("data") {
        Some(Value::String(extra)) => match serde_json::from_str::<Value>(extra) {
            Ok(Value::Object(extra)) => extra,
            // extraData that is not a JSON object was sent by someone else.
            _ => return Ok(None),
        },
        Some(Value::Object(extra)) => extra.clone(),
        _ => return Ok(None),
    };
    Ok(jws_in(&extra)?.map(|jws| OpenedPush { jws, system_call_id }))
}

fn jws_in(object: &Map<String, Value>) -> Result<Option<String>, Rejection> {
    match object.get(PUSH_KEY) {
        None => Ok(None),
        Some(Value::String(jws)) => Ok(Some(jws.clone())),
        Some(_) => Err(Rejection::malformed(format!("`{PUSH_KEY}` must be a string"))),
    }
}

fn nested(data: &str) -> Option<String> {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(object)) => jws_in(&object).ok().flatten(),
        _ => None,
    }
}

fn value_nested(data: &Value) -> Option<String> {
    match data {
        Value::Object(object) => jws_in(object).ok().flatten(),
        Value::String(text) => nested(text),
        _ => None,
    }
}

/// What a HarmonyOS device hands the app for a Push Kit push-type 10 message carrying
/// `extra_data`: the `data` string of `receiveMessage('VoIP')`, whose `header` is a string as
/// Push Kit's interface declares it (`header: string`; what it holds is not documented, so this
/// one holds the token as JSON text). Used by emulators and tests.
pub fn harmony_delivery(system_call_id: &str, extra_data: &str, token: &str) -> String {
    serde_json::json!({
        "callId": system_call_id,
        "data": extra_data,
        "header": serde_json::json!({ "token": token }).to_string(),
    })
    .to_string()
}

/// The notification id of a call's missed-call notification, the same on server and device.
///
/// HarmonyOS collapses a Push Kit notification and a local one that share an `appMessageId`,
/// and iOS a remote notification whose `apns-collapse-id` matches a local one's identifier, so
/// a missed call shows once however many paths report it.
pub fn missed_call_message_id(call_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(call_id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("missed-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery of `{"callpush":"a.b.c"}` with `header` as given (`None`: no header).
    fn delivery(header: Option<Value>) -> String {
        let mut object = Map::new();
        object.insert("callId".into(), "sys-1".into());
        object.insert("data".into(), r#"{"callpush":"a.b.c"}"#.into());
        if let Some(header) = header {
            object.insert("header".into(), header);
        }
        Value::Object(object).to_string()
    }

    #[test]
    fn harmony_deliveries_open_whatever_their_header() {
        let expected = OpenedPush { jws: "a.b.c".into(), system_call_id: Some("sys-1".into()) };
        for header in [
            // What devices deliver: the interface declares `header: string`.
            Some(Value::String(r#"{"token":"MAMzLg0123456789"}"#.into())),
            Some(Value::String(String::new())),
            // What earlier emulators and test kits delivered, and still open.
            Some(serde_json::json!({"token": "MAMzLg0123456789"})),
            Some(Value::Null),
            None,
        ] {
            let raw = RawPush::from(delivery(header.clone()).as_str());
            assert_eq!(open_envelope(Platform::Harmony, &raw), Ok(Some(expected.clone())), "{header:?}");
        }
    }

    #[test]
    fn a_wrapped_jws_is_the_json_object_serde_json_writes() {
        for jws in ["a.b.c", "eyJhbGciOiJFZERTQSJ9.eyJ2IjoxfQ.c2lnLV8", "not \"a\" jws\n", ""] {
            let expected =
                Value::Object(Map::from_iter([(PUSH_KEY.to_owned(), Value::String(jws.into()))])).to_string();
            for platform in [Platform::Harmony, Platform::Apns, Platform::Wns] {
                let body = match wrap(platform, jws.to_owned()) {
                    ProviderPayload::Harmony { extra_data } => extra_data,
                    ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => body,
                    ProviderPayload::Fcm { .. } => unreachable!(),
                };
                assert_eq!(body, expected, "{platform}");
            }
        }
    }

    #[test]
    fn harmony_delivery_gives_the_header_as_a_string() {
        let raw: Value =
            serde_json::from_str(&harmony_delivery("sys-1", r#"{"callpush":"a.b.c"}"#, "tok")).unwrap();
        assert_eq!(raw["header"], Value::String(r#"{"token":"tok"}"#.into()));
        assert_eq!(raw["data"], r#"{"callpush":"a.b.c"}"#);
        assert_eq!(raw["callId"], "sys-1");
    }
}
