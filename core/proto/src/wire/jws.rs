//! The call-push JWT (docs/wire-contract.md): JWS compact serialisation, EdDSA, explicit `typ`.
//!
//! Decoding is split in two so a refused push can still be shown: [`Jws::decode`] only frames
//! and parses; [`Jws::verify`] decides whether the push is authentic; [`Jws::claims`] reads the
//! invite. Nothing here panics or allocates more than a small multiple of its input.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signature;
use serde::Deserialize;

use super::keys::{CallSigner, KeySet, ALG_EDDSA};
use crate::ids::{CALL_ID, INSTALLATION_ID};
use crate::model::{
    Caller, CancelReason, Invite, PushEvent, Rejection, RejectionKind, Verification, WIRE_VERSION,
};

/// The `typ` header of every call push.
pub const TYP: &str = "callpush+jwt";

/// Longest JWS accepted, bytes: larger than any provider can carry (APNs VoIP, 5120 B).
pub const MAX_JWS_LEN: usize = 5120;

/// Signs `invite` as a JWS compact string with header `{"alg":"EdDSA","kid":…,"typ":"callpush+jwt"}`.
pub fn sign(invite: &Invite, signer: &CallSigner) -> String {
    sign_claims(invite, signer)
}

/// The JWS [`sign`] makes of `invite` under the key id `kid`, with a blank signature (64 zero
/// bytes) instead of a real one: exactly as long as the signed JWS, so it wraps to a push of the
/// same size. For sizing a push without the cost of signing it; no device accepts it.
pub fn sign_blank(invite: &Invite, kid: &str) -> String {
    jws_with(invite, kid, |_| [0; 64])
}

/// The `evt` of a verify push.
pub const VERIFY_EVENT: &str = "verify";

/// The claims of a verify push as they travel: the usual header claims, `evt` `verify`, the
/// installation (`iid`) and the nonce.
#[derive(serde::Serialize, Deserialize)]
struct VerifyClaims {
    iss: String,
    aud: String,
    jti: String,
    iat: i64,
    exp: i64,
    v: u32,
    evt: String,
    iid: String,
    nonce: String,
}

/// Signs a verify push the way call pushes are signed (same header, same key).
pub fn sign_verification(verification: &Verification, signer: &CallSigner) -> String {
    sign_claims(&verify_claims(verification), signer)
}

fn verify_claims(verification: &Verification) -> VerifyClaims {
    let v = verification.clone();
    VerifyClaims {
        iss: v.iss,
        aud: v.aud,
        jti: v.jti,
        iat: v.iat,
        exp: v.exp,
        v: WIRE_VERSION,
        evt: VERIFY_EVENT.to_owned(),
        iid: v.installation_id,
        nonce: v.nonce,
    }
}

/// Longest nonce a verify push may carry, bytes.
const MAX_NONCE_LEN: usize = 128;

/// Reads the claims of a verify push: `Ok(None)` when `evt` is not `verify` (a call push).
pub fn parse_verification(payload: &[u8]) -> Result<Option<Verification>, Rejection> {
    #[derive(Deserialize)]
    struct Event {
        evt: Option<String>,
    }
    match serde_json::from_slice::<Event>(payload) {
        Ok(Event { evt: Some(evt) }) if evt == VERIFY_EVENT => {}
        _ => return Ok(None),
    }
    let claims: VerifyClaims = serde_json::from_slice(payload).map_err(|e| {
        version_rejection(payload)
            .unwrap_or_else(|| Rejection::malformed(format!("the verify claims are not valid: {e}")))
    })?;
    if claims.v != WIRE_VERSION {
        return Err(unsupported(u64::from(claims.v)));
    }
    if !INSTALLATION_ID.accepts(&claims.iid) {
        return Err(Rejection::malformed(format!("iid must be {}", INSTALLATION_ID.words)));
    }
    if claims.nonce.is_empty()
        || claims.nonce.len() > MAX_NONCE_LEN
        || !claims.nonce.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(Rejection::malformed("nonce must be 1 to 128 bytes of base64url"));
    }
    if claims.iat <= 0 || claims.exp < claims.iat {
        return Err(Rejection::malformed("iat and exp must be positive with exp not before iat"));
    }
    Ok(Some(Verification {
        iss: non_empty(Some(claims.iss), "iss")?,
        aud: non_empty(Some(claims.aud), "aud")?,
        jti: non_empty(Some(claims.jti), "jti")?,
        iat: claims.iat,
        exp: claims.exp,
        installation_id: claims.iid,
        nonce: claims.nonce,
    }))
}

fn sign_claims<T: serde::Serialize>(claims: &T, signer: &CallSigner) -> String {
    jws_with(claims, signer.kid(), |signing_input| signer.sign(signing_input))
}

/// The name of the claim that pads a push to be sealed: zeros, never read.
pub const PAD_CLAIM: &str = "pad";

/// Length of the JWS [`sign`] makes when its claims are `claims_len` bytes, under `kid`.
fn jws_len(kid: &str, claims_len: usize) -> usize {
    let header_len = serde_json::to_vec(&serde_json::json!({"alg": ALG_EDDSA, "kid": kid, "typ": TYP}))
        .map_or(0, |h| h.len());
    super::jwe::b64_len(header_len) + 1 + super::jwe::b64_len(claims_len) + 1 + super::jwe::b64_len(64)
}

/// The claims length that makes the longest JWS of at most `max_len` bytes under `kid`.
pub(crate) fn padded_claims_len(kid: &str, max_len: usize) -> usize {
    let fixed = jws_len(kid, 0);
    let mut encoded = max_len.saturating_sub(fixed);
    // No byte count encodes to 4k + 1 characters.
    if encoded % 4 == 1 {
        encoded -= 1;
    }
    encoded * 3 / 4
}

/// Signs `claims` padded to exactly `claims_len` bytes of JSON with a [`PAD_CLAIM`] of zeros,
/// so the JWS has the same length whatever the claims say (who calls, their name's length).
/// `None` when the claims are longer than that.
pub(crate) fn sign_padded<T: serde::Serialize>(
    claims: &T,
    signer: &CallSigner,
    claims_len: usize,
) -> Option<String> {
    let mut json = serde_json::to_vec(claims).ok()?;
    let pad = claims_len.checked_sub(json.len() + PAD_CLAIM.len() + 6)?;
    json.pop();
    json.extend_from_slice(format!(",\"{PAD_CLAIM}\":\"").as_bytes());
    json.resize(json.len() + pad, b'0');
    json.extend_from_slice(b"\"}");
    Some(jws_of(&json, signer.kid(), |signing_input| signer.sign(signing_input)))
}

/// Signs an invite padded as [`sign_padded`] does.
pub(crate) fn sign_invite_padded(invite: &Invite, signer: &CallSigner, claims_len: usize) -> Option<String> {
    sign_padded(invite, signer, claims_len)
}

/// Signs a verify push padded as [`sign_padded`] does.
pub(crate) fn sign_verification_padded(
    verification: &Verification,
    signer: &CallSigner,
    claims_len: usize,
) -> Option<String> {
    sign_padded(&verify_claims(verification), signer, claims_len)
}

/// The compact JWS of `claims` under `kid`, its signature made by `signature` from the signing
/// input.
fn jws_with<T: serde::Serialize>(claims: &T, kid: &str, signature: impl FnOnce(&[u8]) -> [u8; 64]) -> String {
    // Serialising these plain structs cannot fail.
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    jws_of(&claims, kid, signature)
}

/// The compact JWS of the claims JSON `claims` under `kid`.
fn jws_of(claims: &[u8], kid: &str, signature: impl FnOnce(&[u8]) -> [u8; 64]) -> String {
    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'a str,
        kid: &'a str,
        typ: &'a str,
    }
    let header = Header { alg: ALG_EDDSA, kid, typ: TYP };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 90);
    URL_SAFE_NO_PAD.encode_string(&header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut out);
    let signature = signature(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    out
}

/// The JOSE header members callpush reads; others are ignored, except `crit`.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A framed but not yet verified JWS.
#[derive(Debug)]
pub struct Jws<'a> {
    signing_input: &'a str,
    header: Header,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes a JWS compact string. Fails with `Malformed` when it is not one.
    pub fn decode(token: &'a str) -> Result<Self, Rejection> {
        if token.len() > MAX_JWS_LEN {
            return Err(Rejection::malformed(format!(
                "the push is {} bytes, more than any provider carries ({MAX_JWS_LEN})",
                token.len()
            )));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::malformed("not a JWS compact string (three base64url parts)"));
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header_json = b64(header, "header")?;
        let header: Header = serde_json::from_slice(&header_json)
            .map_err(|e| Rejection::malformed(format!("the JWS header is not valid: {e}")))?;
        Ok(Jws {
            signing_input,
            header,
            payload: b64(payload, "payload")?,
            signature: b64(signature, "signature")?,
        })
    }

    /// The key id the push names, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// Checks the header and the EdDSA signature against the trusted keys.
    pub fn verify(&self, keys: &KeySet) -> Result<(), Rejection> {
        let alg = self.header.alg.as_str();
        if alg != ALG_EDDSA {
            let why = if alg.eq_ignore_ascii_case("none") {
                "alg `none` (an unsigned push) is never accepted".to_owned()
            } else {
                format!("alg `{}` is not EdDSA", truncate(alg))
            };
            return Err(Rejection::new(RejectionKind::BadSignature, why));
        }
        match self.header.typ.as_deref() {
            Some(typ) if is_callpush_typ(typ) => {}
            Some(typ) => return Err(Rejection::malformed(format!("typ `{}` is not `{TYP}`", truncate(typ)))),
            None => return Err(Rejection::malformed(format!("the header has no typ `{TYP}`"))),
        }
        if self.header.crit.is_some() {
            return Err(Rejection::malformed("the header lists critical extensions (`crit`)"));
        }
        let Some(kid) = self.kid() else {
            return Err(Rejection::new(RejectionKind::UnknownKey, "the push names no key id (kid)"));
        };
        let Some(key) = keys.get(kid) else {
            return Err(Rejection::new(
                RejectionKind::UnknownKey,
                format!("no trusted key has the id `{}`", truncate(kid)),
            ));
        };
        let signature: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| {
            Rejection::new(
                RejectionKind::BadSignature,
                format!("the signature is {} bytes, not 64", self.signature.len()),
            )
        })?;
        key.verify_strict(self.signing_input.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| Rejection::new(RejectionKind::BadSignature, "the signature does not verify"))
    }

    /// Reads and checks the claims. Says nothing about authenticity: call [`Jws::verify`].
    pub fn claims(&self) -> Result<Invite, Rejection> {
        parse_claims(&self.payload)
    }

    /// The claims of a verify push; `Ok(None)` for a call push. Says nothing about
    /// authenticity: call [`Jws::verify`].
    pub fn verification(&self) -> Result<Option<Verification>, Rejection> {
        parse_verification(&self.payload)
    }
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::malformed(format!("the JWS {what} is not base64url without padding")))
}

/// `typ` compares case-insensitively and may carry the `application/` prefix (RFC 7515 §4.1.9).
pub(crate) fn is_callpush_typ(typ: &str) -> bool {
    let typ = typ.get(..12).filter(|p| p.eq_ignore_ascii_case("application/")).map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case(TYP)
}

/// Keeps attacker-chosen strings short in messages.
pub(crate) fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Every claim optional, so a missing claim gets a message naming it.
#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    aud: Option<String>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    v: Option<u64>,
    evt: Option<String>,
    cid: Option<String>,
    from: Option<RawCaller>,
    video: Option<bool>,
    reason: Option<String>,
    data: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RawCaller {
    id: Option<String>,
    name: Option<String>,
}

/// Parses and checks the claims of wire contract v1.
pub fn parse_claims(payload: &[u8]) -> Result<Invite, Rejection> {
    let raw: RawClaims = match serde_json::from_slice(payload) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(version_rejection(payload)
                .unwrap_or_else(|| Rejection::malformed(format!("the claims are not valid: {e}"))))
        }
    };
    let v = raw.v.ok_or_else(|| missing("v"))?;
    if v != u64::from(WIRE_VERSION) {
        return Err(unsupported(v));
    }
    let evt = match raw.evt.as_deref() {
        Some("ring") => PushEvent::Ring,
        Some("cancel") => PushEvent::Cancel,
        Some(other) => {
            return Err(Rejection::malformed(format!("evt `{}` is neither ring nor cancel", truncate(other))))
        }
        None => return Err(missing("evt")),
    };
    let reason = match (evt, raw.reason.as_deref()) {
        (PushEvent::Cancel, Some(reason)) => {
            Some(CancelReason::ALL.into_iter().find(|r| r.as_str() == reason).ok_or_else(|| {
                Rejection::malformed(format!("unknown cancel reason `{}`", truncate(reason)))
            })?)
        }
        (PushEvent::Cancel, None) => return Err(missing("reason")),
        // A ring has no reason; one sent anyway means nothing.
        (PushEvent::Ring, _) => None,
    };
    let cid = non_empty(raw.cid, "cid")?;
    if !CALL_ID.accepts(&cid) {
        return Err(Rejection::malformed(format!("cid must be {}", CALL_ID.words)));
    }
    let from = raw.from.ok_or_else(|| missing("from"))?;
    let iat = raw.iat.ok_or_else(|| missing("iat"))?;
    let exp = raw.exp.ok_or_else(|| missing("exp"))?;
    if iat <= 0 || exp < iat {
        return Err(Rejection::malformed("iat and exp must be positive with exp not before iat"));
    }
    Ok(Invite {
        iss: non_empty(raw.iss, "iss")?,
        aud: non_empty(raw.aud, "aud")?,
        jti: non_empty(raw.jti, "jti")?,
        iat,
        exp,
        v: WIRE_VERSION,
        evt,
        cid,
        from: Caller { id: non_empty(from.id, "from.id")?, name: from.name },
        video: raw.video.ok_or_else(|| missing("video"))?,
        reason,
        data: raw.data.unwrap_or_default(),
    })
}

/// When claims do not parse, a `v` other than 1 explains why better than the parse error.
fn version_rejection(payload: &[u8]) -> Option<Rejection> {
    #[derive(Deserialize)]
    struct Version {
        v: Option<serde_json::Value>,
    }
    let v = serde_json::from_slice::<Version>(payload).ok()?.v?.as_u64()?;
    (v != u64::from(WIRE_VERSION)).then(|| unsupported(v))
}

fn unsupported(v: u64) -> Rejection {
    Rejection::new(
        RejectionKind::UnsupportedVersion,
        format!("wire version {v} is not supported; this library speaks version {WIRE_VERSION}"),
    )
}

fn missing(claim: &str) -> Rejection {
    Rejection::malformed(format!("the required claim `{claim}` is missing"))
}

fn non_empty(value: Option<String>, claim: &str) -> Result<String, Rejection> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(Rejection::malformed(format!("the claim `{claim}` is empty"))),
        None => Err(missing(claim)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_signed_jws_is_the_signed_one_but_for_its_signature() {
        let signer = CallSigner::from_seed(&[3; 32]);
        let invite = Invite {
            iss: "srv".into(),
            aud: "bob".into(),
            jti: "d-1".into(),
            iat: 1_000,
            exp: 1_030,
            v: WIRE_VERSION,
            evt: PushEvent::Ring,
            cid: "c-1".into(),
            from: Caller { id: "alice".into(), name: Some("Alice \"A\" ✓".into()) },
            video: true,
            reason: None,
            data: BTreeMap::from([("room".to_owned(), "r-1".to_owned())]),
        };
        let (signed, blank) = (sign(&invite, &signer), sign_blank(&invite, signer.kid()));
        assert_eq!(signed.len(), blank.len());
        let (signed_input, _) = signed.rsplit_once('.').unwrap();
        let (blank_input, signature) = blank.rsplit_once('.').unwrap();
        assert_eq!(signed_input, blank_input);
        assert_eq!(URL_SAFE_NO_PAD.decode(signature).unwrap(), [0; 64]);
    }
}
