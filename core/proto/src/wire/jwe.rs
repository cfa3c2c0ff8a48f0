//! Wire v2 (docs/wire-contract.md): the signed call push encrypted to the installation's own
//! key, so the provider carries an opaque blob instead of who calls whom.
//!
//! A compact JWE (RFC 7516): `alg` `ECDH-ES` over X25519 (RFC 7518 §4.6, RFC 8037: direct key
//! agreement, so the encrypted-key part is empty), `enc` `A256GCM`, `kid` the device key's
//! RFC 7638 thumbprint, `cty` `callpush+jwt`. The plaintext is the v1 JWS: sign, then encrypt,
//! so the device still checks the server's signature after decrypting. Pure: the caller passes
//! in the randomness. Nothing here panics on any input.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use super::jws::{is_callpush_typ, truncate, TYP};
use crate::error::WireError;
use crate::model::{Jwk, Rejection, RejectionKind};

/// The JWE key-management algorithm of wire v2: ephemeral-static X25519, direct key agreement.
pub const ALG_ECDH_ES: &str = "ECDH-ES";
/// The JWE content encryption of wire v2.
pub const ENC_A256GCM: &str = "A256GCM";
/// The curve of device keys (RFC 8037).
pub const CRV_X25519: &str = "X25519";

/// Bytes of the AES-GCM nonce (`iv`) and tag.
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// An installation's public X25519 key, as the server stores it and encrypts to it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey {
    public: PublicKey,
    kid: String,
}

impl DeviceKey {
    /// Reads a public X25519 JWK (`kty` `OKP`, `crv` `X25519`, `x`). A given `kid` is ignored:
    /// the key id is always the key's thumbprint, so a device cannot name a key it does not hold.
    /// Refuses keys that would make the shared secret predictable (small-order points).
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, WireError> {
        if jwk.kty != "OKP" || jwk.crv != CRV_X25519 {
            return Err(WireError::InvalidKey(format!(
                "a device key is an X25519 JWK (kty OKP, crv X25519), not kty `{}` crv `{}`",
                truncate(&jwk.kty),
                truncate(&jwk.crv)
            )));
        }
        if jwk.alg.as_deref().is_some_and(|alg| alg != ALG_ECDH_ES) {
            return Err(WireError::InvalidKey(format!("a device key's alg is {ALG_ECDH_ES}")));
        }
        if jwk.use_.as_deref().is_some_and(|use_| use_ != "enc") {
            return Err(WireError::InvalidKey("a device key's use is enc".into()));
        }
        let x = decode_32(&jwk.x).map_err(|why| WireError::InvalidKey(format!("`x` {why}")))?;
        let key = DeviceKey::from_public(PublicKey::from(x));
        if !key.is_contributory() {
            return Err(WireError::InvalidKey("`x` is a small-order X25519 point".into()));
        }
        Ok(key)
    }

    fn from_public(public: PublicKey) -> Self {
        DeviceKey { kid: thumbprint(public.as_bytes()), public }
    }

    /// Whether an agreement with this key depends on the other party's secret.
    fn is_contributory(&self) -> bool {
        StaticSecret::from([1; 32]).diffie_hellman(&self.public).was_contributory()
    }

    /// The key id pushes sealed to this key name: its RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK with its `kid`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: CRV_X25519.into(),
            x: URL_SAFE_NO_PAD.encode(self.public.as_bytes()),
            kid: Some(self.kid.clone()),
            alg: Some(ALG_ECDH_ES.into()),
            use_: Some("enc".into()),
        }
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// RFC 7638 thumbprint of an X25519 public key.
fn thumbprint(x: &[u8; 32]) -> String {
    let canonical = format!(r#"{{"crv":"X25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(x));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// An installation's X25519 key pair: made on the device, its secret never leaves it.
#[derive(Clone)]
pub struct DeviceSecret {
    secret: StaticSecret,
    key: DeviceKey,
}

impl DeviceSecret {
    /// The key pair of a 32-byte secret (from a random source, or as persisted).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let key = DeviceKey::from_public(PublicKey::from(&secret));
        DeviceSecret { secret, key }
    }

    /// The 32-byte secret, for persisting it in private storage.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public half, which the device registers.
    pub fn public(&self) -> &DeviceKey {
        &self.key
    }

    /// Reads a private X25519 JWK (`x` and `d`), as `callpush inspect` and the test vectors
    /// take it. `x`, when given, must match `d`.
    pub fn from_private_jwk(json: &str) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct PrivateJwk {
            kty: String,
            crv: String,
            #[serde(default)]
            x: Option<String>,
            d: String,
        }
        let jwk: PrivateJwk = serde_json::from_str(json).map_err(|_| {
            WireError::InvalidKey(
                "a device key is a private X25519 JWK: {\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\",\"d\"}"
                    .into(),
            )
        })?;
        if jwk.kty != "OKP" || jwk.crv != CRV_X25519 {
            return Err(WireError::InvalidKey("a device key is an X25519 JWK (kty OKP, crv X25519)".into()));
        }
        let d = decode_32(&jwk.d).map_err(|why| WireError::InvalidKey(format!("`d` {why}")))?;
        let secret = DeviceSecret::from_bytes(d);
        if jwk.x.is_some_and(|x| x != URL_SAFE_NO_PAD.encode(secret.key.public.as_bytes())) {
            return Err(WireError::InvalidKey("`x` is not the public key of `d`".into()));
        }
        Ok(secret)
    }

    /// The key pair as a private JWK (`kid`, `x` and `d`). Secret: for tests and tools only.
    pub fn private_jwk(&self) -> String {
        let public = self.key.jwk();
        serde_json::json!({
            "kty": public.kty, "crv": public.crv, "kid": public.kid, "x": public.x,
            "d": URL_SAFE_NO_PAD.encode(self.secret.to_bytes()),
        })
        .to_string()
    }
}

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("DeviceSecret").field("kid", &self.key.kid).finish_non_exhaustive()
    }
}

/// The randomness one sealed push takes: a fresh ephemeral X25519 secret and an AES-GCM nonce.
#[derive(Clone)]
pub struct SealRandomness {
    /// The ephemeral secret; a new one for every push.
    pub ephemeral: [u8; 32],
    /// The AES-GCM nonce.
    pub iv: [u8; IV_LEN],
}

/// The protected header our encoder writes. Member order is fixed, so its length is too.
#[derive(serde::Serialize)]
struct SealHeader<'a> {
    alg: &'a str,
    enc: &'a str,
    kid: &'a str,
    cty: &'a str,
    epk: EphemeralJwk<'a>,
}

#[derive(serde::Serialize)]
struct EphemeralJwk<'a> {
    kty: &'a str,
    crv: &'a str,
    x: &'a str,
}

/// Encrypts `plaintext` (a signed JWS) to `to` as a compact JWE.
pub fn seal(plaintext: &str, to: &DeviceKey, randomness: &SealRandomness) -> String {
    let ephemeral = StaticSecret::from(randomness.ephemeral);
    let epk = URL_SAFE_NO_PAD.encode(PublicKey::from(&ephemeral).as_bytes());
    let header = SealHeader {
        alg: ALG_ECDH_ES,
        enc: ENC_A256GCM,
        kid: &to.kid,
        cty: TYP,
        epk: EphemeralJwk { kty: "OKP", crv: CRV_X25519, x: &epk },
    };
    // Serialising this plain struct cannot fail.
    let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let shared = ephemeral.diffie_hellman(&to.public);
    let cek = content_key(shared.as_bytes(), &[], &[]);
    // AES-GCM encryption of an in-memory buffer cannot fail below its 64 GiB limit.
    let sealed = Aes256Gcm::new(&cek.into())
        .encrypt(
            Nonce::from_slice(&randomness.iv),
            Payload { msg: plaintext.as_bytes(), aad: protected.as_bytes() },
        )
        .unwrap_or_default();
    let (ciphertext, tag) = sealed.split_at(sealed.len().saturating_sub(TAG_LEN));
    let mut out = String::with_capacity(protected.len() + sealed.len() * 4 / 3 + 48);
    out.push_str(&protected);
    out.push_str("..");
    URL_SAFE_NO_PAD.encode_string(randomness.iv, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(ciphertext, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut out);
    out
}

/// Characters of a device key id (a SHA-256 thumbprint) and of an X25519 key, base64url.
const KEY_B64_LEN: usize = 43;

/// The length of [`seal`]'s output for a plaintext of `len` bytes: the same for every device
/// key, since key ids are thumbprints.
pub fn sealed_len(len: usize) -> usize {
    let x = "x".repeat(KEY_B64_LEN);
    let header = SealHeader {
        alg: ALG_ECDH_ES,
        enc: ENC_A256GCM,
        kid: &x,
        cty: TYP,
        epk: EphemeralJwk { kty: "OKP", crv: CRV_X25519, x: &x },
    };
    let header_len = serde_json::to_vec(&header).map_or(0, |h| h.len());
    b64_len(header_len) + 2 + b64_len(IV_LEN) + 1 + b64_len(len) + 1 + b64_len(TAG_LEN)
}

/// Length of the unpadded base64url encoding of `len` bytes.
pub(crate) fn b64_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

/// Whether `token` is framed as a compact JWE (five parts) rather than a JWS (three).
pub fn is_jwe(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 4
}

/// The protected-header members wire v2 reads; others are ignored, except `crit` and `zip`.
#[derive(Deserialize)]
struct OpenHeader {
    alg: String,
    #[serde(default)]
    enc: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    epk: Option<Jwk>,
    #[serde(default)]
    apu: Option<String>,
    #[serde(default)]
    apv: Option<String>,
    #[serde(default)]
    zip: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Decrypts a compact JWE sealed to one of `secrets` and returns its plaintext, the signed JWS.
/// Any JOSE implementation's output is accepted as long as it is ECDH-ES over X25519 with
/// A256GCM and `cty` `callpush+jwt` (`apu`/`apv` included).
///
/// Refusals: `Malformed` for framing, encoding and header faults; `Undecryptable` when this
/// device cannot open it (another algorithm, a key it does not hold, a tampered or truncated
/// ciphertext).
pub fn open(token: &str, secrets: &[DeviceSecret]) -> Result<String, Rejection> {
    let mut parts = token.split('.');
    let (Some(protected), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::malformed("not a JWE compact string (five base64url parts)"));
    };
    let header: OpenHeader = serde_json::from_slice(&b64(protected, "protected header")?)
        .map_err(|e| Rejection::malformed(format!("the JWE header is not valid: {e}")))?;
    if header.alg != ALG_ECDH_ES {
        return Err(undecryptable(format!("alg `{}` is not {ALG_ECDH_ES}", truncate(&header.alg))));
    }
    match header.enc.as_deref() {
        Some(ENC_A256GCM) => {}
        Some(enc) => return Err(undecryptable(format!("enc `{}` is not {ENC_A256GCM}", truncate(enc)))),
        None => return Err(Rejection::malformed("the JWE header has no enc")),
    }
    if header.zip.is_some() {
        return Err(undecryptable("compressed plaintext (`zip`) is never accepted"));
    }
    if header.crit.is_some() {
        return Err(Rejection::malformed("the header lists critical extensions (`crit`)"));
    }
    match header.cty.as_deref() {
        Some(cty) if is_callpush_typ(cty) => {}
        Some(cty) => return Err(Rejection::malformed(format!("cty `{}` is not `{TYP}`", truncate(cty)))),
        None => return Err(Rejection::malformed(format!("the JWE header has no cty `{TYP}`"))),
    }
    if !encrypted_key.is_empty() {
        return Err(undecryptable("ECDH-ES agrees on the key directly: the encrypted key must be empty"));
    }
    let Some(kid) = header.kid else {
        return Err(undecryptable("the push names no device key (kid)"));
    };
    let Some(secret) = secrets.iter().find(|s| s.key.kid == kid) else {
        return Err(undecryptable(if secrets.is_empty() {
            "the push is encrypted, and this installation holds no device key".to_owned()
        } else {
            format!(
                "the push is encrypted to the key `{}`, which this installation does not hold",
                truncate(&kid)
            )
        }));
    };
    let epk = header.epk.ok_or_else(|| Rejection::malformed("the JWE header has no epk"))?;
    if epk.kty != "OKP" || epk.crv != CRV_X25519 {
        return Err(undecryptable("epk is not an X25519 key"));
    }
    let epk =
        PublicKey::from(decode_32(&epk.x).map_err(|why| Rejection::malformed(format!("epk `x` {why}")))?);
    let iv = b64(iv, "iv")?;
    let tag = b64(tag, "tag")?;
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(Rejection::malformed(format!(
            "iv and tag are {IV_LEN} and {TAG_LEN} bytes, not {} and {}",
            iv.len(),
            tag.len()
        )));
    }
    let mut sealed = b64(ciphertext, "ciphertext")?;
    sealed.extend_from_slice(&tag);
    let apu = header.apu.as_deref().map(|p| b64(p, "apu")).transpose()?.unwrap_or_default();
    let apv = header.apv.as_deref().map(|p| b64(p, "apv")).transpose()?.unwrap_or_default();
    let shared = secret.secret.diffie_hellman(&epk);
    if !shared.was_contributory() {
        return Err(undecryptable("epk is a small-order X25519 point"));
    }
    let cek = content_key(shared.as_bytes(), &apu, &apv);
    let plaintext = Aes256Gcm::new(&cek.into())
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: protected.as_bytes() })
        .map_err(|_| undecryptable("the push does not decrypt: tampered with, or sealed to another key"))?;
    String::from_utf8(plaintext).map_err(|_| Rejection::malformed("the decrypted push is not UTF-8"))
}

/// The content key of ECDH-ES in direct key agreement mode: Concat KDF over SHA-256 with the
/// `enc` name as algorithm id (RFC 7518 §4.6.2).
fn content_key(shared: &[u8], apu: &[u8], apv: &[u8]) -> [u8; 32] {
    let mut other_info = Vec::with_capacity(32 + apu.len() + apv.len());
    for field in [ENC_A256GCM.as_bytes(), apu, apv] {
        other_info.extend_from_slice(&(field.len() as u32).to_be_bytes());
        other_info.extend_from_slice(field);
    }
    other_info.extend_from_slice(&256u32.to_be_bytes());
    let mut key = [0; 32];
    // Only fails for an output longer than the KDF allows; 32 bytes never is.
    let _ = concat_kdf::derive_key_into::<Sha256>(shared, &other_info, &mut key);
    key
}

fn undecryptable(message: impl Into<String>) -> Rejection {
    Rejection::new(RejectionKind::Undecryptable, message)
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::malformed(format!("the JWE {what} is not base64url without padding")))
}

fn decode_32(x: &str) -> Result<[u8; 32], String> {
    let bytes = URL_SAFE_NO_PAD.decode(x).map_err(|_| "is not base64url without padding".to_owned())?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("is {} bytes, not 32", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceSecret {
        DeviceSecret::from_bytes([9; 32])
    }

    fn randomness() -> SealRandomness {
        SealRandomness { ephemeral: [5; 32], iv: [7; IV_LEN] }
    }

    #[test]
    fn a_sealed_push_opens_with_its_key_only() {
        let jwe = seal("a.b.c", device().public(), &randomness());
        assert!(is_jwe(&jwe));
        assert_eq!(jwe.len(), sealed_len(5));
        assert_eq!(open(&jwe, &[device()]).unwrap(), "a.b.c");
        let other = DeviceSecret::from_bytes([8; 32]);
        assert_eq!(open(&jwe, std::slice::from_ref(&other)).unwrap_err().kind, RejectionKind::Undecryptable);
        assert_eq!(open(&jwe, &[]).unwrap_err().kind, RejectionKind::Undecryptable);
        assert_eq!(open(&jwe, &[other, device()]).unwrap(), "a.b.c");
    }

    #[test]
    fn rfc_7748_agreement_is_what_x25519_dalek_computes() {
        // RFC 7748 §6.1: Alice's and Bob's keys and their shared secret.
        let hex = |s: &str| -> [u8; 32] {
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<_>>()
                .try_into()
                .unwrap()
        };
        let alice =
            StaticSecret::from(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        let bob = PublicKey::from(hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
        let shared = alice.diffie_hellman(&bob);
        assert_eq!(
            shared.as_bytes(),
            &hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }

    #[test]
    fn a_tampered_push_never_opens() {
        let jwe = seal("a.b.c", device().public(), &randomness());
        for i in 0..jwe.len() {
            let mut bytes = jwe.clone().into_bytes();
            if bytes[i] == b'.' {
                continue;
            }
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(open(&tampered, &[device()]).is_err(), "byte {i}");
        }
    }

    #[test]
    fn small_order_keys_are_refused() {
        let zero = Jwk {
            kty: "OKP".into(),
            crv: "X25519".into(),
            x: URL_SAFE_NO_PAD.encode([0; 32]),
            kid: None,
            alg: None,
            use_: None,
        };
        assert!(DeviceKey::from_jwk(&zero).is_err());
        let good = device().public().jwk();
        assert_eq!(DeviceKey::from_jwk(&good).unwrap(), *device().public());
        let private = device().private_jwk();
        assert_eq!(DeviceSecret::from_private_jwk(&private).unwrap().public(), device().public());
    }
}
