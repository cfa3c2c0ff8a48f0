//! `callpush serve`: run the server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use callpush_server::app;
use callpush_server::auth::{dev_credentials_path, mint_device_token, DevCredentials};
use callpush_server::config::{Config, ConfigError, ConfigSource, LogFormat};

use super::absolute;

/// Arguments of `callpush serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML configuration file (see server/callpush.example.toml); without it, the file
    /// CALLPUSH_CONFIG names, else ./callpush.toml if there is one. `CALLPUSH_*` environment
    /// variables override it. API keys and device-token auth must be configured, unless `--dev`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Development: generate the API key and device-token secret that are not configured, keep
    /// them in `data_dir`, and print them. Only on a loopback `listen` address (see
    /// `--dev-public`). Never in production.
    #[arg(long)]
    dev: bool,
    /// With `--dev`: allow development credentials on a non-loopback `listen` address, where
    /// anyone who can reach it may try them. For a test machine on a private network only.
    #[arg(long, requires = "dev")]
    dev_public: bool,
}

/// Why the server did not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration could not be found or read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// API keys or device-token auth are not configured, and `--dev` was not given.
    #[error("{0}")]
    MissingCredentials(String),
    /// `--dev` would generate credentials for an address others can reach.
    #[error(
        "--dev on {listen}: development credentials are generated only for a loopback address \
         (127.0.0.1, ::1), where only this machine can use them; {listen} is reachable from \
         elsewhere.\n  Configure api_keys and [auth] for it, listen on 127.0.0.1 \
         (CALLPUSH_LISTEN=127.0.0.1:{port}), or add --dev-public to accept development \
         credentials there anyway (never in production).\n  Configuration: {found}"
    )]
    DevOnPublicAddress {
        /// The `listen` address.
        listen: SocketAddr,
        /// Its port.
        port: u16,
        /// Where the configuration was found.
        found: ConfigSource,
    },
    /// The development credentials could not be kept.
    #[error("keeping development credentials in {dir}: {source}")]
    DevCredentials {
        /// `data_dir`.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    /// A provider's credentials are unusable.
    #[error(transparent)]
    Senders(#[from] callpush_server::senders::http::SenderError),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] app::StartError),
}

/// Starts the server and runs it until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> Result<(), ServeError> {
    let (mut config, found) = Config::discover(args.config.as_deref())?;
    init_logging(config.log_format);
    tracing::info!("configuration: {found}");
    if config.api_keys.is_empty() || !config.has_device_auth() {
        if !args.dev {
            return Err(ServeError::MissingCredentials(missing_credentials(&config)));
        }
        if !args.dev_public && !is_loopback(config.listen.ip()) {
            return Err(ServeError::DevOnPublicAddress {
                listen: config.listen,
                port: config.listen.port(),
                found,
            });
        }
        let (creds, made) = DevCredentials::load_or_create(&config.data_dir)
            .map_err(|source| ServeError::DevCredentials { dir: absolute(&config.data_dir), source })?;
        let device_tokens_are_dev = !config.has_device_auth();
        creds.apply(&mut config);
        print_dev_credentials(&config, &creds, made, device_tokens_are_dev);
    }
    let runtime = tokio::runtime::Runtime::new().map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let senders = app::senders_from_config(&config)?;
        let running = app::start(&config, senders).await?;
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    })
}

/// Whether only this machine can reach `ip` (127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
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

/// Logs to stderr, filtered by `CALLPUSH_LOG` (default `info,sqlx=warn`): one JSON object per
/// line with `log_format = "json"`, else compact text, coloured only for a person at a terminal
/// (never in a file or a pipe, nor with `NO_COLOR` set).
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLPUSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Pretty => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            builder.compact().with_ansi(std::io::stderr().is_terminal() && !no_color).try_init()
        }
    };
}

/// Tells a newcomer how to call the API right away. Secrets are printed in full only when they
/// were just made; afterwards the file they are kept in is named instead. With JSON logs stderr
/// belongs to log pipelines: one event names the file, and no secret is printed at all.
fn print_dev_credentials(config: &Config, creds: &DevCredentials, made: bool, device_tokens_are_dev: bool) {
    let path = dev_credentials_path(&config.data_dir);
    let base = format!("http://{}", config.listen);
    if matches!(config.log_format, LogFormat::Json) {
        tracing::warn!(
            credentials_file = %path.display(),
            created = made,
            api = %base,
            openapi = %format!("{base}/openapi.json"),
            "development credentials in use (configure api_keys and [auth] for production); \
             they are kept in the credentials file; `callpush token --user <id>` mints a device token"
        );
        return;
    }
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
