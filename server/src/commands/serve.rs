//! `callpush serve`: run the server.

use std::path::PathBuf;

use callpush_server::app;
use callpush_server::auth::{dev_credentials_path, mint_device_token, DevCredentials};
use callpush_server::config::{Config, LogFormat};

/// Arguments of `callpush serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML configuration file (see server/callpush.example.toml). `CALLPUSH_*` environment
    /// variables override it. API keys and device-token auth must be configured, unless `--dev`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Development: generate the API key and device-token secret that are not configured, keep
    /// them in `data_dir`, and print them. Never in production.
    #[arg(long)]
    dev: bool,
}

/// Starts the server and runs it until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> Result<(), String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    init_logging(config.log_format);
    if config.api_keys.is_empty() || !config.has_device_auth() {
        if !args.dev {
            return Err(missing_credentials(&config));
        }
        let (creds, made) = DevCredentials::load_or_create(&config.data_dir)
            .map_err(|e| format!("keeping development credentials in {}: {e}", config.data_dir.display()))?;
        let device_tokens_are_dev = !config.has_device_auth();
        creds.apply(&mut config);
        print_dev_credentials(&config, &creds, made, device_tokens_are_dev);
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let senders = app::senders_from_config(&config).map_err(|e| e.to_string())?;
        let running = app::start(&config, senders).await.map_err(|e| e.to_string())?;
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    })
}

/// Why the server will not start without `--dev`: what is missing and where to configure it.
fn missing_credentials(config: &Config) -> String {
    let mut missing = Vec::new();
    if config.api_keys.is_empty() {
        missing.push("API keys for app backends: `api_keys` (environment: CALLPUSH_API_KEYS='[\"...\"]')");
    }
    if !config.has_device_auth() {
        missing.push(
            "device-token verification: `[auth] hs256_secret`, `public_key_files` or `jwks_file` \
             (environment: CALLPUSH_AUTH__HS256_SECRET, CALLPUSH_AUTH__PUBLIC_KEY_FILES, CALLPUSH_AUTH__JWKS_FILE)",
        );
    }
    format!(
        "no credentials configured.\n  Missing: {}.\n  Set them in the --config file (see \
         server/callpush.example.toml) or the environment, or run `callpush serve --dev` to use \
         generated development credentials.",
        missing.join(";\n           ")
    )
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLPUSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Tells a newcomer how to call the API right away. Secrets are printed in full only when they
/// were just made; afterwards the file they are kept in is named instead. With JSON logs stderr
/// belongs to log pipelines: one event names the file, and no secret is printed at all.
fn print_dev_credentials(config: &Config, creds: &DevCredentials, made: bool, device_tokens_are_dev: bool) {
    let path = dev_credentials_path(&config.data_dir);
    if matches!(config.log_format, LogFormat::Json) {
        tracing::warn!(
            credentials_file = %path.display(),
            created = made,
            "development credentials in use (configure api_keys and [auth] for production); \
             they are kept in the credentials file"
        );
        return;
    }
    let base = format!("http://{}", config.listen);
    eprintln!();
    eprintln!("  Development credentials (configure api_keys and [auth] for production):");
    if made {
        eprintln!("    API key (app backends):     {}", creds.api_key);
        if device_tokens_are_dev {
            eprintln!("    device-token HS256 secret:  {}", creds.hs256_secret);
            eprintln!(
                "    device token for `alice`:   {}",
                mint_device_token(&creds.hs256_secret, "alice", 86_400)
            );
            eprintln!(
                "    device token for `bob`:     {}",
                mint_device_token(&creds.hs256_secret, "bob", 86_400)
            );
        }
        eprintln!("    (kept in {}; printed only now)", path.display());
    } else {
        eprintln!("    kept in {}", path.display());
    }
    eprintln!("    mint a device token:        callpush token --user bob");
    eprintln!("    API:                        {base}   (OpenAPI: {base}/openapi.json)");
    eprintln!();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
