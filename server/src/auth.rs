//! Who is calling: devices present a JWT from the app's identity provider (`sub` is the user),
//! app backends present an API key. Without configured device keys the server makes development
//! credentials once and keeps them in its data directory.
//!
//! Device tokens are verified with the local keys (`hs256_secret`, `public_key_files`,
//! `jwks_file`) first, then with the keys of the identity provider's JWKS URL (`jwks_url`,
//! [`jwks`]); the first key that verifies a token decides. The key always names the algorithm,
//! never the token: a public key is never an HMAC secret, and `alg: none` is never accepted.

pub mod jwks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Config};
use jwks::{JwksPolicy, JwksStatus, RemoteKeys, VerifyKey};

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
    /// The token may be good, but the identity provider's keys could not be fetched yet (the
    /// server just started and the JWKS URL does not answer). The reason is in the log.
    #[error("the identity provider's keys are not available yet")]
    KeysUnavailable,
}

/// Why the verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[error("auth keys: {0}")]
pub struct KeyError(String);

/// Verifies device tokens.
pub struct DeviceAuth {
    /// Keys from the configuration: the HS256 secret, PEM files, the JWKS file.
    keys: Vec<VerifyKey>,
    /// Keys from the identity provider's JWKS URL.
    remote: Option<Arc<RemoteKeys>>,
    validation: Validation,
}

#[derive(Deserialize)]
struct DeviceTokenClaims {
    sub: String,
}

/// What checking a token against the keys held found.
enum Checked {
    /// Valid: its user.
    User(String),
    /// Not valid with the keys held.
    Refused {
        error: AuthError,
        /// Keys from the JWKS URL not held yet might verify it: it names a `kid` none has, or
        /// no key set was ever fetched. The generation of the keys it was checked against.
        unknown_key: Option<u64>,
    },
}

impl DeviceAuth {
    /// A verifier for the configured keys. With a `jwks_url`, the key set is fetched in the
    /// background from now on (inside a tokio runtime; otherwise on the first token).
    pub fn from_config(auth: &AuthConfig) -> Result<DeviceAuth, KeyError> {
        DeviceAuth::with_policy(auth, JwksPolicy::default())
    }

    /// As [`DeviceAuth::from_config`], fetching and keeping the JWKS URL's keys by `policy`
    /// (tests shorten its intervals).
    pub fn with_policy(auth: &AuthConfig, policy: JwksPolicy) -> Result<DeviceAuth, KeyError> {
        auth.check().map_err(|e| KeyError(e.to_string()))?;
        let allowed = &auth.algorithms;
        let mut keys = Vec::new();
        if let Some(secret) = &auth.hs256_secret {
            keys.push(VerifyKey {
                kid: None,
                key: DecodingKey::from_secret(secret.as_bytes()),
                algorithms: vec![Algorithm::HS256],
            });
        }
        for file in &auth.public_key_files {
            let pem = read(file)?;
            let (key, family): (DecodingKey, &[Algorithm]) = if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                (key, &[Algorithm::EdDSA])
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                (key, &[Algorithm::ES256, Algorithm::ES384])
            } else if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                (key, &jwks::RSA_ALGORITHMS)
            } else {
                return Err(KeyError(format!("{}: not an RSA, EC or Ed25519 public key", file.display())));
            };
            let algorithms: Vec<Algorithm> = family.iter().copied().filter(|a| allowed.contains(a)).collect();
            if algorithms.is_empty() {
                return Err(KeyError(format!(
                    "{}: a key for {}, none of which is in [auth] algorithms",
                    file.display(),
                    jwks::names(family)
                )));
            }
            keys.push(VerifyKey { kid: None, key, algorithms });
        }
        if let Some(file) = &auth.jwks_file {
            let set = jwks::parse_key_set(&read(file)?, allowed, JwksPolicy::default().max_keys)
                .map_err(|e| KeyError(format!("{}: {e}", file.display())))?;
            // A file is the operator's own: every key in it must be usable.
            if !set.skipped.is_empty() {
                return Err(KeyError(format!(
                    "{}: {}",
                    file.display(),
                    jwks::describe_skipped(&set.skipped)
                )));
            }
            keys.extend(set.keys);
        }
        let remote = match &auth.jwks_url {
            Some(url) => {
                let client = jwks_client(auth.jwks_ca_file.as_deref(), &policy)?;
                let remote = RemoteKeys::new(url.clone(), client, allowed.clone(), policy);
                remote.start();
                Some(remote)
            }
            None => None,
        };
        if keys.is_empty() && remote.is_none() {
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
        Ok(DeviceAuth { keys, remote, validation })
    }

    /// The user id (`sub`) of a valid token, checked with the keys held now, without waiting
    /// on the network. A token naming a key the JWKS URL has not shown yet is refused, and has
    /// the key set fetched in the background (rate-limited), so the next try can pass.
    /// [`DeviceAuth::authenticate`] waits for that fetch instead.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        let header = token_header(token)?;
        match self.check(token, &header) {
            Checked::User(user) => Ok(user),
            Checked::Refused { error, unknown_key } => {
                if let (Some(remote), Some(seen)) = (&self.remote, unknown_key) {
                    remote.start();
                    remote.refresh_in_background(seen);
                }
                Err(error)
            }
        }
    }

    /// The user id (`sub`) of a valid token. A token naming a key the JWKS URL has not shown
    /// yet (the identity provider rotated its keys) waits for the key set to be fetched again
    /// — or for a fetch already under way — and is checked once more; fetches are
    /// rate-limited, so made-up `kid`s cannot make the server hammer the provider.
    pub async fn authenticate(&self, token: &str) -> Result<String, AuthError> {
        let header = token_header(token)?;
        match self.check(token, &header) {
            Checked::User(user) => Ok(user),
            Checked::Refused { error, unknown_key } => {
                let (Some(remote), Some(seen)) = (&self.remote, unknown_key) else {
                    return Err(error);
                };
                remote.start();
                if !remote.refresh_for_unknown_key(seen).await {
                    return Err(error);
                }
                match self.check(token, &header) {
                    Checked::User(user) => Ok(user),
                    Checked::Refused { error, .. } => Err(error),
                }
            }
        }
    }

    /// What the JWKS URL's cache holds, if one is configured.
    pub fn jwks_status(&self) -> Option<JwksStatus> {
        self.remote.as_ref().map(|remote| remote.status())
    }

    /// `token` checked against the local keys, then the JWKS URL's keys held now.
    fn check(&self, token: &str, header: &Header) -> Checked {
        // The error of the last key tried, if any was.
        let mut last = None;
        for key in &self.keys {
            // A key with a `kid` is tried only for tokens naming it or none.
            if key.kid.is_some() && header.kid.is_some() && key.kid != header.kid {
                continue;
            }
            match self.decode(token, header, key) {
                Some(Ok(user)) => return Checked::User(user),
                Some(Err(e)) => last = Some(e),
                None => {}
            }
        }
        let no_key = || AuthError::Invalid("no configured key fits the token".into());
        let Some(remote) = &self.remote else {
            return Checked::Refused { error: last.unwrap_or_else(no_key), unknown_key: None };
        };
        let held = remote.snapshot();
        let mut named = false;
        for key in held.keys.iter() {
            if header.kid.is_some() && key.kid != header.kid {
                continue;
            }
            named |= header.kid.is_some();
            match self.decode(token, header, key) {
                Some(Ok(user)) => return Checked::User(user),
                Some(Err(e)) => last = Some(e),
                None => {}
            }
        }
        // Fetching again can help only a token whose algorithm a key set may have, naming a key
        // not held — or any such token while no set was ever fetched.
        let unknown = remote.allows(header.alg) && (!held.loaded || (header.kid.is_some() && !named));
        let error = match last {
            _ if unknown && !held.loaded => AuthError::KeysUnavailable,
            Some(error) => error,
            None if unknown => AuthError::Invalid("no key has the token's kid".into()),
            None => no_key(),
        };
        Checked::Refused { error, unknown_key: unknown.then_some(held.generation) }
    }

    /// `token` verified with `key`, if the key verifies the algorithm the token names.
    fn decode(&self, token: &str, header: &Header, key: &VerifyKey) -> Option<Result<String, AuthError>> {
        // The algorithm must be one the key has: it comes from the key, never from the token.
        if !key.algorithms.contains(&header.alg) {
            return None;
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        Some(match jsonwebtoken::decode::<DeviceTokenClaims>(token, &key.key, &validation) {
            Ok(data) => check_user_id(&data.claims.sub).map(|()| data.claims.sub),
            Err(e) => Err(AuthError::Invalid(e.to_string())),
        })
    }
}

/// The header of a token small enough to look at, without extensions this server would have to
/// understand.
fn token_header(token: &str) -> Result<Header, AuthError> {
    if token.len() > MAX_BEARER {
        return Err(AuthError::TooLong);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("not a JWT".into()))?;
    // `crit` names extensions the token needs understood; this server understands none.
    if header.crit.is_some() {
        return Err(AuthError::Invalid("the token names critical header extensions".into()));
    }
    Ok(header)
}

/// The client the JWKS URL is fetched with: the provider senders' (reqwest on rustls, the
/// system's roots plus `ca_file`'s), https only, with the policy's timeouts and few redirects.
fn jwks_client(ca_file: Option<&Path>, policy: &JwksPolicy) -> Result<reqwest::Client, KeyError> {
    let settings = crate::senders::http::HttpSettings::new(ca_file)
        .map_err(|e| KeyError(format!("auth.jwks_ca_file: {e}")))?;
    settings
        .builder()
        .https_only(true)
        .connect_timeout(policy.connect_timeout)
        .timeout(policy.fetch_timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| KeyError(format!("JWKS HTTP client: {e}")))
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

    fn jwks_url_config() -> AuthConfig {
        AuthConfig {
            jwks_url: Some("https://idp.example.com/.well-known/jwks.json".into()),
            issuer: Some("https://idp.example.com/".into()),
            audience: Some("callpush".into()),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn a_jwks_url_needs_https_an_issuer_and_an_audience() {
        assert!(jwks_url_config().check().is_ok());
        let refused = |change: fn(&mut AuthConfig), why: &str| {
            let mut auth = jwks_url_config();
            change(&mut auth);
            let error = auth.check().unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
            // The verifier refuses what the configuration refuses, however it was made.
            assert!(DeviceAuth::from_config(&auth).is_err());
        };
        refused(|a| a.jwks_url = Some("http://idp.example.com/jwks.json".into()), "https://");
        refused(|a| a.jwks_url = Some("idp.example.com/jwks.json".into()), "not a URL");
        refused(|a| a.issuer = None, "needs auth.issuer and auth.audience");
        refused(|a| a.audience = None, "needs auth.issuer and auth.audience");
        refused(|a| a.audience = Some(" ".into()), "auth.audience is empty");
        refused(|a| a.algorithms = vec![Algorithm::RS256, Algorithm::HS256], "HS256 is not for public keys");
        refused(|a| a.algorithms = vec![], "at least one algorithm");
        refused(
            |a| {
                a.jwks_url = None;
                a.hs256_secret = Some("s".repeat(32));
                a.jwks_ca_file = Some("roots.pem".into());
            },
            "only used with auth.jwks_url",
        );
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn algorithms_are_named_in_the_configuration_and_none_is_not_one() {
        figment::Jail::expect_with(|jail| {
            let load = |toml: &str| {
                std::fs::write("auth.toml", toml).unwrap();
                Config::load(Some(Path::new("auth.toml")))
            };
            let config = load("[auth]\nhs256_secret = \"ssssssssssssssssssssssssssssssss\"").unwrap();
            assert_eq!(config.auth.algorithms, [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]);
            let config = load("[auth]\nalgorithms = [\"PS256\", \"ES384\"]").unwrap();
            assert_eq!(config.auth.algorithms, [Algorithm::PS256, Algorithm::ES384]);
            assert!(load("[auth]\nalgorithms = [\"none\"]").is_err());
            assert!(load("[auth]\nalgorithms = [\"HS256\"]").is_err());
            jail.set_env("CALLPUSH_AUTH__JWKS_URL", "https://idp.example.com/jwks.json");
            assert!(load("").is_err(), "a JWKS URL without issuer and audience");
            jail.set_env("CALLPUSH_AUTH__ISSUER", "https://idp.example.com/");
            jail.set_env("CALLPUSH_AUTH__AUDIENCE", "callpush");
            let config = load("").unwrap();
            assert!(config.has_device_auth());
            Ok(())
        });
    }

    /// The example file's Firebase lines, switched on, load as they read.
    #[test]
    #[allow(clippy::result_large_err)]
    fn the_example_auth_section_loads_with_its_jwks_url_example() {
        let example = include_str!("../callpush.example.toml");
        let auth = example.split("\n[auth]\n").nth(1).unwrap().split("\n[").next().unwrap();
        let switched_on: String = auth
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| {
                ["jwks_url = ", "issuer = ", "audience = ", "jwks_ca_file = "]
                    .iter()
                    .any(|k| line.starts_with(k))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        figment::Jail::expect_with(|jail| {
            jail.create_file("auth.toml", &format!("[auth]\n{switched_on}"))?;
            let config = Config::load(Some(Path::new("auth.toml"))).unwrap();
            assert_eq!(
                config.auth.jwks_url.as_deref(),
                Some("https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com")
            );
            assert_eq!(config.auth.issuer.as_deref(), Some("https://securetoken.google.com/my-project"));
            assert_eq!(config.auth.audience.as_deref(), Some("my-project"));
            assert!(config.auth.jwks_ca_file.is_some());
            Ok(())
        });
    }

    #[test]
    fn key_files_must_fit_the_allowed_algorithms() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("rsa.pem");
        std::fs::write(&pem, callpush_emulators::credentials::FCM_PUBLIC_KEY).unwrap();
        let files = AuthConfig { public_key_files: vec![pem], ..AuthConfig::default() };
        assert!(DeviceAuth::from_config(&files).is_ok());
        let es256_only = AuthConfig { algorithms: vec![Algorithm::ES256], ..files };
        let error = DeviceAuth::from_config(&es256_only).err().unwrap().to_string();
        assert!(error.contains("none of which is in [auth] algorithms"), "{error}");

        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, r#"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0c2VjcmV0"}]}"#).unwrap();
        let file = AuthConfig { jwks_file: Some(jwks.clone()), ..AuthConfig::default() };
        let error = DeviceAuth::from_config(&file).err().unwrap().to_string();
        assert!(error.contains("symmetric"), "{error}");
        std::fs::write(&jwks, "not json").unwrap();
        assert!(DeviceAuth::from_config(&file).err().unwrap().to_string().contains("not a JWKS"));
    }

    /// Outside a runtime nothing is fetched: tokens for the JWKS URL's keys wait, the local keys
    /// work alongside.
    #[test]
    fn before_the_key_set_is_fetched_its_tokens_are_refused_and_local_keys_work() {
        let auth =
            DeviceAuth::from_config(&AuthConfig { hs256_secret: Some("s".repeat(32)), ..jwks_url_config() })
                .unwrap();
        let claims = serde_json::json!({"sub": "bob", "exp": now() + 600,
            "iss": "https://idp.example.com/", "aud": "callpush"});
        assert_eq!(auth.verify(&hs256_token(claims.clone())), Ok("bob".into()));
        let rsa =
            EncodingKey::from_rsa_pem(callpush_emulators::credentials::FCM_PRIVATE_KEY.as_bytes()).unwrap();
        let header = Header { kid: Some("k1".into()), ..Header::new(Algorithm::RS256) };
        let token = jsonwebtoken::encode(&header, &claims, &rsa).unwrap();
        assert_eq!(auth.verify(&token), Err(AuthError::KeysUnavailable));
        assert_eq!(auth.jwks_status().map(|s| (s.loaded, s.fetches)), Some((false, 0)));
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
