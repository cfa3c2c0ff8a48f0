//! `callpush token`: mint a development device token.

use std::path::PathBuf;

use callpush_server::auth::{check_user_id, mint_device_token, DevCredentials};
use callpush_server::config::Config;

/// Arguments of `callpush token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user the token is for (its `sub`).
    #[arg(long)]
    user: String,
    /// Validity, seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    /// The server's configuration file, to find its HS256 secret.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Prints a device token signed with the server's HS256 secret (configured or development).
pub fn run(args: Args) -> Result<(), String> {
    check_user_id(&args.user).map_err(|e| e.to_string())?;
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let secret = match &config.auth.hs256_secret {
        Some(secret) => secret.clone(),
        None if config.has_device_auth() => {
            return Err("device tokens come from your identity provider (public keys are configured)".into())
        }
        None => DevCredentials::load_or_create(&config.data_dir).map_err(|e| e.to_string())?.0.hs256_secret,
    };
    println!("{}", mint_device_token(&secret, &args.user, args.ttl));
    Ok(())
}
