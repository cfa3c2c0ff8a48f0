//! Ed25519 keys as JWKs: the server's signer and the device's set of trusted keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::WireError;
use crate::model::Jwk;

/// The JWS algorithm name of Ed25519 signatures (RFC 8037).
pub const ALG_EDDSA: &str = "EdDSA";

/// RFC 7638 thumbprint of an Ed25519 public key: the key id callpush gives its keys.
pub fn thumbprint(public: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(public.as_bytes());
    // Members in lexicographic order, no whitespace, as RFC 7638 §3 requires.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public JWK of an Ed25519 key, with `kid`, `alg` and `use` set.
pub fn public_jwk(public: &VerifyingKey, kid: &str) -> Jwk {
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: URL_SAFE_NO_PAD.encode(public.as_bytes()),
        kid: Some(kid.to_owned()),
        alg: Some(ALG_EDDSA.into()),
        use_: Some("sig".into()),
    }
}

/// The server side of the contract: an Ed25519 private key and the key id pushes name.
pub struct CallSigner {
    key: SigningKey,
    kid: String,
}

impl CallSigner {
    /// A signer from a 32-byte Ed25519 seed; the key id is the key's RFC 7638 thumbprint.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let kid = thumbprint(&key.verifying_key());
        CallSigner { key, kid }
    }

    /// The same key under an explicit key id.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// The key id pushes carry in their `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, for the registrar to hand to devices.
    pub fn public_jwk(&self) -> Jwk {
        public_jwk(&self.key.verifying_key(), &self.kid)
    }

    /// The 32-byte seed, for persisting the key. Treat it as a secret.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for CallSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("CallSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A key the device trusts, ready to verify (the curve point is decompressed once, here).
#[derive(Debug, Clone)]
struct TrustedKey {
    kid: String,
    key: VerifyingKey,
    jwk: Jwk,
}

/// The server keys a device trusts, looked up by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<TrustedKey>,
}

impl KeySet {
    /// A key set from public JWKs. A JWK without `kid` is known by its RFC 7638 thumbprint.
    pub fn from_jwks(jwks: &[Jwk]) -> Result<Self, WireError> {
        let mut keys = Vec::with_capacity(jwks.len());
        for jwk in jwks {
            let key = verifying_key(jwk)?;
            let kid = jwk.kid.clone().unwrap_or_else(|| thumbprint(&key));
            if keys.iter().any(|k: &TrustedKey| k.kid == kid) {
                return Err(WireError::InvalidKey(format!("two keys share the key id `{kid}`")));
            }
            keys.push(TrustedKey { kid, key, jwk: jwk.clone() });
        }
        Ok(KeySet { keys })
    }

    /// A key set from JSON text: one JWK, a JWK Set `{"keys": [...]}`, or an array of JWKs
    /// (the `signing_keys` of a registration).
    pub fn from_json(json: &str) -> Result<Self, WireError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| WireError::InvalidKey(format!("the key is not valid JSON: {e}")))?;
        let members = match value {
            serde_json::Value::Array(keys) => keys,
            value => match value.get("keys") {
                Some(serde_json::Value::Array(keys)) => keys.clone(),
                Some(_) => return Err(WireError::InvalidKey("`keys` must be an array of JWKs".into())),
                None => vec![value],
            },
        };
        let mut jwks = Vec::with_capacity(members.len());
        for member in members {
            if member.get("d").is_some() {
                return Err(WireError::InvalidKey(
                    "the JWK holds a private key (`d`); give the public key only".into(),
                ));
            }
            let jwk: Jwk = serde_json::from_value(member)
                .map_err(|e| WireError::InvalidKey(format!("not a JWK: {e}")))?;
            jwks.push(jwk);
        }
        KeySet::from_jwks(&jwks)
    }

    /// The key with id `kid`, if trusted.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| &k.key)
    }

    /// The trusted keys as JWKs, in the order given.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys.iter().map(|k| k.jwk.clone()).collect()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Checks one JWK is an Ed25519 signing key and decodes it.
fn verifying_key(jwk: &Jwk) -> Result<VerifyingKey, WireError> {
    if jwk.crv.is_empty() || jwk.x.is_empty() {
        return Err(WireError::InvalidKey("an Ed25519 JWK needs `kty`, `crv` and `x`".into()));
    }
    if jwk.kty != "OKP" {
        return Err(WireError::InvalidKey(format!("key type `{}` is not OKP", jwk.kty)));
    }
    if jwk.crv != "Ed25519" {
        return Err(WireError::InvalidKey(format!("curve `{}` is not Ed25519", jwk.crv)));
    }
    if let Some(alg) = &jwk.alg {
        // RFC 9864 names the same algorithm `Ed25519`; both mean this key.
        if alg != ALG_EDDSA && alg != "Ed25519" {
            return Err(WireError::InvalidKey(format!("key algorithm `{alg}` is not EdDSA")));
        }
    }
    if let Some(use_) = &jwk.use_ {
        if use_ != "sig" {
            return Err(WireError::InvalidKey(format!("key use `{use_}` is not sig")));
        }
    }
    if jwk.kid.as_deref() == Some("") {
        return Err(WireError::InvalidKey("the key id is empty".into()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(jwk.x.as_bytes())
        .map_err(|_| WireError::InvalidKey("`x` is not base64url without padding".into()))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| WireError::InvalidKey(format!("`x` is {} bytes, not 32", b.len())))?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| WireError::InvalidKey("`x` is not a point on Ed25519".into()))?;
    if key.is_weak() {
        return Err(WireError::InvalidKey("`x` is a weak (small-order) Ed25519 key".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_8037_appendix() {
        // RFC 8037 A.3: the thumbprint of the example key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(thumbprint(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn key_set_reads_a_jwk_or_a_set_and_refuses_private_keys() {
        let signer = CallSigner::from_seed(&[7; 32]);
        let jwk = serde_json::to_string(&signer.public_jwk()).unwrap();
        assert_eq!(KeySet::from_json(&jwk).unwrap().len(), 1);
        let set = format!(r#"{{"keys":[{jwk}]}}"#);
        assert!(KeySet::from_json(&set).unwrap().get(signer.kid()).is_some());
        assert_eq!(KeySet::from_json(&format!("[{jwk}]")).unwrap().len(), 1);
        let private = jwk.replace(r#""kty""#, r#""d":"secret","kty""#);
        assert!(matches!(KeySet::from_json(&private), Err(WireError::InvalidKey(_))));
        let rsa = r#"{"kty":"RSA","n":"x","e":"AQAB"}"#;
        assert!(KeySet::from_json(rsa).is_err());
        assert!(KeySet::from_json("not json").is_err());
        let dup = format!(r#"{{"keys":[{jwk},{jwk}]}}"#);
        assert!(KeySet::from_json(&dup).is_err());
    }
}
