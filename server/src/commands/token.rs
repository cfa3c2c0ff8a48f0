//! `callpush token`: mint a device token the server accepts, for development and tests.
//!
//! It signs with the server's own HS256 secret: the configured `[auth] hs256_secret`, or the
//! development secret `serve --dev` keeps in `data_dir`. It never makes credentials: a token
//! signed with a secret the server does not have would be refused.

use std::path::PathBuf;

use callpush_server::auth::{check_user_id, dev_credentials_path, AuthError, DevCredentials};
use callpush_server::config::{AuthConfig, Config, ConfigError, ConfigSource};
use serde::Serialize;

use super::absolute;

/// Arguments of `callpush token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user the token is for (its `sub`).
    #[arg(long)]
    user: String,
    /// Validity, seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    /// The server's configuration file; found as `serve` finds it when not given
    /// (CALLPUSH_CONFIG, then ./callpush.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Why no token was printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `--user` is not a valid user id.
    #[error("--user: {0}")]
    User(AuthError),
    /// The configuration could not be found or read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server verifies device tokens with an identity provider's public keys.
    #[error(
        "device tokens come from your identity provider: this server verifies them with public \
         keys ([auth] public_key_files or jwks_file), so there is no secret to sign one with.\n  \
         Configuration: {found}"
    )]
    IdentityProvider {
        /// Where the configuration was found.
        found: ConfigSource,
    },
    /// No `[auth]` and no development credentials where `serve --dev` keeps them.
    #[error(
        "no development credentials at {path}.\n  Configuration: {found}; it has no [auth], so \
         device tokens are signed with the secret `callpush serve --dev` keeps in data_dir.\n  \
         Start `callpush serve --dev` first, with this configuration and working directory (it \
         makes them there), or run this command where that server runs or with its --config."
    )]
    NoDevCredentials {
        /// The file looked for.
        path: PathBuf,
        /// Where the configuration was found.
        found: ConfigSource,
    },
    /// The development credentials file is there but unusable.
    #[error("development credentials {path}: {reason}")]
    UnreadableDevCredentials {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// Signing failed.
    #[error("signing the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Prints a device token signed with the server's HS256 secret (configured or development).
pub fn run(args: Args) -> Result<(), TokenError> {
    check_user_id(&args.user).map_err(TokenError::User)?;
    let (config, found) = Config::discover(args.config.as_deref())?;
    let secret = server_secret(&config, found)?;
    println!("{}", mint(&secret, &config.auth, &args.user, args.ttl)?);
    Ok(())
}

/// The HS256 secret the server verifies device tokens with, never a new one.
fn server_secret(config: &Config, found: ConfigSource) -> Result<String, TokenError> {
    if let Some(secret) = &config.auth.hs256_secret {
        return Ok(secret.clone());
    }
    if config.has_device_auth() {
        return Err(TokenError::IdentityProvider { found });
    }
    let path = absolute(&dev_credentials_path(&config.data_dir));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TokenError::NoDevCredentials { path, found })
        }
        Err(e) => return Err(TokenError::UnreadableDevCredentials { path, reason: e.to_string() }),
    };
    let creds: DevCredentials =
        serde_json::from_str(&text).map_err(|_| TokenError::UnreadableDevCredentials {
            path: path.clone(),
            reason:
                "not the JSON `callpush serve --dev` writes; remove it and start `callpush serve --dev` again"
                    .into(),
        })?;
    Ok(creds.hs256_secret)
}

/// A token as an identity provider would issue it: `sub`, `iat`, `exp`, and the `iss` and `aud`
/// the server requires when `[auth]` names them.
fn mint(
    secret: &str,
    auth: &AuthConfig,
    user: &str,
    ttl: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    #[derive(Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        iat: u64,
        exp: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        iss: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        aud: Option<&'a str>,
    }
    let now = u64::try_from(callpush_server::time::now_secs()).unwrap_or(0);
    let claims = Claims {
        sub: user,
        iat: now,
        exp: now.saturating_add(ttl),
        iss: auth.issuer.as_deref(),
        aud: auth.audience.as_deref(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}
