//! Who is calling: devices present a JWT from the app's identity provider (`sub` is the user),
//! app backends present an API key. Without configured device keys the server makes development
//! credentials once and keeps them in its data directory.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Config};

/// Longest user id accepted from a token's `sub`.
pub const MAX_USER_ID: usize = 128;

/// Longest bearer value (device token or API key) looked at, bytes: a longer one is refused
/// before any decoding or verification.
pub const MAX_BEARER: usize = 8 * 1024;

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is not valid (signature, expiry, issuer, audience) or not known.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The bearer value is longer than [`MAX_BEARER`].
    #[error("bearer value longer than {MAX_BEARER} bytes")]
    TooLong,
}

/// Why the verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[error("auth keys: {0}")]
pub struct KeyError(String);

/// Verifies device tokens.
pub struct DeviceAuth {
    keys: Vec<(Option<String>, DecodingKey, Algorithm)>,
    validation: Validation,
}

#[derive(Deserialize)]
struct DeviceTokenClaims {
    sub: String,
}

impl DeviceAuth {
    /// A verifier for the configured keys.
    pub fn from_config(auth: &AuthConfig) -> Result<DeviceAuth, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = &auth.hs256_secret {
            keys.push((None, DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256));
        }
        for file in &auth.public_key_files {
            let pem = read(file)?;
            let key = if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                (key, Algorithm::EdDSA)
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                (key, Algorithm::ES256)
            } else if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                (key, Algorithm::RS256)
            } else {
                return Err(KeyError(format!("{}: not an RSA, EC or Ed25519 public key", file.display())));
            };
            keys.push((None, key.0, key.1));
        }
        if let Some(file) = &auth.jwks_file {
            let set: JwkSet = serde_json::from_slice(&read(file)?)
                .map_err(|e| KeyError(format!("{}: not a JWKS: {e}", file.display())))?;
            for jwk in &set.keys {
                let key =
                    DecodingKey::from_jwk(jwk).map_err(|e| KeyError(format!("{}: {e}", file.display())))?;
                let alg = match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => {
                        return Err(KeyError("symmetric keys do not belong in a JWKS file".into()))
                    }
                };
                keys.push((jwk.common.key_id.clone(), key, alg));
            }
        }
        if keys.is_empty() {
            return Err(KeyError("no device token keys configured".into()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // The same leeway for `exp` and `nbf`: clocks of the identity provider and this server.
        validation.leeway = 30;
        validation.validate_nbf = true;
        // A configured issuer or audience must be in the token, not merely match when present.
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &auth.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &auth.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(DeviceAuth { keys, validation })
    }

    /// The user id (`sub`) of a valid token.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        if token.len() > MAX_BEARER {
            return Err(AuthError::TooLong);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("not a JWT".into()))?;
        // `crit` names extensions the token needs understood; this server understands none.
        if header.crit.is_some() {
            return Err(AuthError::Invalid("the token names critical header extensions".into()));
        }
        let mut last = AuthError::Invalid("no configured key fits the token".into());
        for (kid, key, alg) in &self.keys {
            // The algorithm comes from the key, never from the token: no algorithm confusion.
            if *alg != header.alg || (kid.is_some() && header.kid.is_some() && *kid != header.kid) {
                continue;
            }
            let mut validation = self.validation.clone();
            validation.algorithms = vec![*alg];
            match jsonwebtoken::decode::<DeviceTokenClaims>(token, key, &validation) {
                Ok(data) => return check_user_id(&data.claims.sub).map(|()| data.claims.sub),
                Err(e) => last = AuthError::Invalid(e.to_string()),
            }
        }
        Err(last)
    }
}

/// A user id must be 1–128 printable ASCII characters without spaces.
pub fn check_user_id(user: &str) -> Result<(), AuthError> {
    if user.is_empty() || user.len() > MAX_USER_ID || !user.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::Invalid("sub must be 1 to 128 printable ASCII characters".into()));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|e| KeyError(format!("{}: {e}", path.display())))
}

/// Checks an API key in constant time against every configured key.
pub fn is_api_key(keys: &[String], presented: &str) -> bool {
    keys.iter().fold(false, |found, key| found | bool::from(key.as_bytes().ct_eq(presented.as_bytes())))
}

/// The bearer token of an `Authorization` header value; one over [`MAX_BEARER`] bytes is refused
/// here, before anything decodes or verifies it.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Missing);
    }
    let token = token.trim();
    if token.len() > MAX_BEARER {
        return Err(AuthError::TooLong);
    }
    Ok(token)
}

/// Credentials made for development when none are configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevCredentials {
    /// An API key for the backend routes.
    pub api_key: String,
    /// The HS256 secret device tokens are signed with.
    pub hs256_secret: String,
}

/// The file development credentials live in.
pub fn dev_credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("callpush-dev-credentials.json")
}

impl DevCredentials {
    /// The stored credentials, or new ones written to `data_dir` (readable by the owner only).
    /// The flag says whether they were just made.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<(DevCredentials, bool)> {
        let path = dev_credentials_path(data_dir);
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(creds) = serde_json::from_str(&text) {
                return Ok((creds, false));
            }
        }
        let creds =
            DevCredentials { api_key: format!("cpk_{}", random_token()), hs256_secret: random_token() };
        std::fs::create_dir_all(data_dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write;
        let mut file = options.open(&path)?;
        file.write_all(serde_json::to_string_pretty(&creds).unwrap_or_default().as_bytes())?;
        file.sync_all()?;
        Ok((creds, true))
    }

    /// Puts these credentials into `config` where it has none of its own.
    pub fn apply(&self, config: &mut Config) {
        if config.api_keys.is_empty() {
            config.api_keys.push(self.api_key.clone());
        }
        if !config.has_device_auth() {
            config.auth.hs256_secret = Some(self.hs256_secret.clone());
        }
    }
}

/// A device token for `user`, valid `ttl_seconds`, signed with an HS256 `secret`: what an
/// identity provider would issue, for development and tests.
pub fn mint_device_token(secret: &str, user: &str, ttl_seconds: u64) -> String {
    #[derive(Serialize)]
    struct DeviceTokenClaims<'a> {
        sub: &'a str,
        iat: u64,
        exp: u64,
    }
    let now = u64::try_from(crate::time::now_secs()).unwrap_or(0);
    let claims = DeviceTokenClaims { sub: user, iat: now, exp: now + ttl_seconds };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token shortened for logs: enough to tell two apart, never enough to use.
pub fn redact(token: &str) -> String {
    let prefix: String = token.chars().take(6).collect();
    format!("{prefix}…({} chars)", token.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs256() -> DeviceAuth {
        DeviceAuth::from_config(&AuthConfig { hs256_secret: Some("s".repeat(32)), ..AuthConfig::default() })
            .unwrap()
    }

    #[test]
    fn device_tokens_name_their_user_and_are_checked() {
        let auth = hs256();
        assert_eq!(auth.verify(&mint_device_token(&"s".repeat(32), "bob", 60)), Ok("bob".into()));
        assert!(auth.verify(&mint_device_token(&"t".repeat(32), "bob", 60)).is_err(), "other secret");
        assert!(auth.verify("not.a.jwt").is_err());
        assert!(auth.verify(&mint_device_token(&"s".repeat(32), "has space", 60)).is_err());
        // Expired beyond the leeway.
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "bob", "exp": 1_000}),
            &EncodingKey::from_secret("s".repeat(32).as_bytes()),
        )
        .unwrap();
        assert!(auth.verify(&expired).is_err());
        // `alg: none` never passes.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"bob","exp":9999999999}"#)
        );
        assert!(auth.verify(&none).is_err());
    }

    fn now() -> u64 {
        u64::try_from(crate::time::now_secs()).unwrap()
    }

    fn signed(header: &Header, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(header, &claims, &EncodingKey::from_secret("s".repeat(32).as_bytes())).unwrap()
    }

    fn hs256_token(claims: serde_json::Value) -> String {
        signed(&Header::new(Algorithm::HS256), claims)
    }

    #[test]
    fn a_configured_issuer_and_audience_must_be_in_the_token() {
        let auth = DeviceAuth::from_config(&AuthConfig {
            hs256_secret: Some("s".repeat(32)),
            issuer: Some("https://id.example.com/".into()),
            audience: Some("callpush".into()),
            ..AuthConfig::default()
        })
        .unwrap();
        let exp = now() + 600;
        let iss = "https://id.example.com/";
        let good = hs256_token(serde_json::json!({"sub": "bob", "exp": exp, "iss": iss, "aud": "callpush"}));
        assert_eq!(auth.verify(&good), Ok("bob".into()));
        for claims in [
            serde_json::json!({"sub": "bob", "exp": exp, "aud": "callpush"}),
            serde_json::json!({"sub": "bob", "exp": exp, "iss": iss}),
            serde_json::json!({"sub": "bob", "exp": exp, "iss": "https://other.example.com/", "aud": "callpush"}),
            serde_json::json!({"sub": "bob", "exp": exp, "iss": iss, "aud": "other"}),
        ] {
            assert!(auth.verify(&hs256_token(claims.clone())).is_err(), "{claims}");
        }
        // Without them configured, tokens need neither.
        assert_eq!(
            hs256().verify(&hs256_token(serde_json::json!({"sub": "bob", "exp": exp}))),
            Ok("bob".into())
        );
    }

    #[test]
    fn not_before_is_honoured_with_the_leeway() {
        let auth = hs256();
        let exp = now() + 600;
        let later = hs256_token(serde_json::json!({"sub": "bob", "exp": exp, "nbf": now() + 120}));
        assert!(auth.verify(&later).is_err(), "not valid for two more minutes");
        let skewed = hs256_token(serde_json::json!({"sub": "bob", "exp": exp, "nbf": now() + 10}));
        assert_eq!(auth.verify(&skewed), Ok("bob".into()), "within the 30 s leeway");
        let past = hs256_token(serde_json::json!({"sub": "bob", "exp": exp, "nbf": now() - 10}));
        assert_eq!(auth.verify(&past), Ok("bob".into()));
    }

    #[test]
    fn a_token_naming_critical_extensions_is_refused() {
        let claims = serde_json::json!({"sub": "bob", "exp": now() + 600});
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec![]] {
            let header = Header { crit: Some(crit.clone()), ..Header::new(Algorithm::HS256) };
            let token = signed(&header, claims.clone());
            assert!(matches!(hs256().verify(&token), Err(AuthError::Invalid(_))), "{crit:?}");
        }
    }

    #[test]
    fn bearer_values_over_8_kib_are_refused_before_decoding() {
        let huge = format!("{}.{}.{}", "e".repeat(4096), "e".repeat(4096), "e".repeat(10));
        assert_eq!(bearer(Some(&format!("Bearer {huge}"))), Err(AuthError::TooLong));
        assert_eq!(hs256().verify(&huge), Err(AuthError::TooLong));
        let key = "k".repeat(MAX_BEARER + 1);
        assert_eq!(bearer(Some(&format!("Bearer {key}"))), Err(AuthError::TooLong), "API keys alike");
        let largest = "k".repeat(MAX_BEARER);
        assert_eq!(bearer(Some(&format!("Bearer {largest}"))), Ok(largest.as_str()));
    }

    #[test]
    fn api_keys_and_bearer_headers() {
        let keys = vec!["key-one-0123456789".to_owned(), "key-two-0123456789".to_owned()];
        assert!(is_api_key(&keys, "key-two-0123456789"));
        assert!(!is_api_key(&keys, "key-two-012345678"));
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(redact("MAMzLg0123456789"), "MAMzLg…(16 chars)");
    }
}
