//! `callpush-dev inspect`: what would the SDK do with this push?
//!
//! Reads one raw push on stdin exactly as the platform hands it to the app and prints the
//! decision as one JSON object. Exits 0 whenever a decision was printed, whatever it is. The
//! server's keys come as a JWK (`--jwk`), a JWK Set file (`--jwks`) or the server's own
//! `GET /.well-known/callpush-keys` (`--jwks-url`).
//!
//! Wire v2 pushes are sealed to the installation's X25519 device key: `--device-key` gives its
//! private JWK (inline, or `@FILE`), and then inspect decides as an installation switched to v2
//! does, refusing unencrypted pushes as `downgraded`. The key is secret: no message prints it.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{HandleOutcome, Outcome, Platform, RawPush, Rejection, RejectionKind};
use callpush_client::wire::{DeviceSecret, KeySet};
use callpush_client::WireError;

/// Largest push read from stdin; anything longer is refused without reading the rest.
const MAX_INPUT: u64 = 1 << 20;

/// Largest key set read from a file or fetched from a server.
const MAX_KEYS: u64 = 256 * 1024;

/// Largest device key file read (`--device-key @FILE`); a private JWK is about 200 bytes.
const MAX_DEVICE_KEY: u64 = 64 * 1024;

/// How long fetching `--jwks-url` may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `callpush-dev inspect`. The server's keys come from exactly one of `--jwk`,
/// `--jwks` or `--jwks-url`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("keys").required(true).args(["jwk", "jwks", "jwks_url"])))]
pub struct Args {
    /// The platform the push was received on.
    #[arg(long, value_parser = parse_platform)]
    platform: Platform,
    /// The server's public key as a JWK, or a JWK Set `{"keys": [...]}`.
    #[arg(long, value_name = "JWK")]
    jwk: Option<String>,
    /// A file holding the server's JWK Set, as `GET /.well-known/callpush-keys` answers it.
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// Fetch the server's JWK Set, e.g. http://127.0.0.1:8080/.well-known/callpush-keys.
    #[arg(long, value_name = "URL")]
    jwks_url: Option<String>,
    /// Decide as if the server clock read this unix time (seconds); default: now.
    #[arg(long)]
    now: Option<i64>,
    /// The installation's private X25519 device key (a JWK, or @FILE holding it): decode wire v2
    /// pushes sealed to it, and refuse unencrypted ones as `downgraded`.
    ///
    /// The JWK is {"kty":"OKP","crv":"X25519","x":"…","d":"…"}. With it inspect decides as an
    /// installation switched to wire v2 does; without it, as one that has no device key (wire
    /// v1 only). Prefer @FILE: a key on the command line shows in process lists and shell
    /// history. No message prints the key.
    #[arg(long, value_name = "JWK|@FILE", value_parser = secret_arg)]
    device_key: Option<SecretArg>,
}

/// A secret command-line value: `Debug` never shows it.
#[derive(Clone)]
pub struct SecretArg(String);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(..)")
    }
}

/// Takes any text: the key is read in [`device_key`], whose messages never show it (clap's
/// would quote a refused value).
fn secret_arg(s: &str) -> Result<SecretArg, String> {
    Ok(SecretArg(s.to_owned()))
}

/// Why the server's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The keys given are not usable keys.
    #[error("{origin}: {source}")]
    Invalid {
        /// `--jwk`, `--jwks FILE` or `--jwks-url URL`.
        origin: String,
        /// What is wrong with them.
        source: WireError,
    },
    /// The file could not be read.
    #[error("--jwks {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The URL is not an http(s) URL.
    #[error("--jwks-url {url}: not an http:// or https:// URL")]
    Url {
        /// The URL as given.
        url: String,
    },
    /// The request failed.
    #[error("--jwks-url {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why, with every cause (reqwest's own message rarely says).
        reason: String,
    },
    /// The server answered something other than 2xx.
    #[error("--jwks-url {url}: the server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// Its answer.
        status: reqwest::StatusCode,
    },
    /// The key set is larger than any server's.
    #[error("{origin}: over {MAX_KEYS} bytes; no JWK Set of signing keys is that large")]
    TooLarge {
        /// Where it came from.
        origin: String,
    },
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse().map_err(|e: callpush_client::model::UnknownPlatform| e.to_string())
}

/// Reads stdin, decides, prints.
pub fn run(args: Args) -> Result<(), String> {
    let keys = keys(&args).map_err(|e| e.to_string())?;
    let device_keys: Vec<DeviceSecret> =
        args.device_key.as_ref().map(device_key).transpose()?.into_iter().collect();
    let now = args.now.unwrap_or_else(callpush_server::time::now_secs);
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let outcome = decide(args.platform, input, &keys, &device_keys, now);
    println!("{}", serde_json::to_string(&outcome).map_err(|e| e.to_string())?);
    Ok(())
}

/// The keys from whichever of `--jwk`, `--jwks` and `--jwks-url` was given.
fn keys(args: &Args) -> Result<KeySet, KeysError> {
    let (origin, text) = if let Some(jwk) = &args.jwk {
        ("--jwk".to_owned(), jwk.clone())
    } else if let Some(path) = &args.jwks {
        let origin = format!("--jwks {}", path.display());
        let file =
            std::fs::File::open(path).map_err(|source| KeysError::File { path: path.clone(), source })?;
        let mut text = String::new();
        file.take(MAX_KEYS + 1)
            .read_to_string(&mut text)
            .map_err(|source| KeysError::File { path: path.clone(), source })?;
        if text.len() as u64 > MAX_KEYS {
            return Err(KeysError::TooLarge { origin });
        }
        (origin, text)
    } else if let Some(url) = &args.jwks_url {
        (format!("--jwks-url {url}"), fetch(url)?)
    } else {
        // clap requires one of the three.
        unreachable!("clap requires --jwk, --jwks or --jwks-url")
    };
    KeySet::from_json(&text).map_err(|source| KeysError::Invalid { origin, source })
}

/// The device key of `--device-key`: a private X25519 JWK, inline or `@FILE`. No message shows
/// the key or any part of it.
fn device_key(arg: &SecretArg) -> Result<DeviceSecret, String> {
    let (origin, text) = match arg.0.strip_prefix('@') {
        Some(path) => {
            let origin = format!("--device-key @{path}");
            let file = std::fs::File::open(path).map_err(|e| format!("{origin}: {e}"))?;
            let mut text = String::new();
            file.take(MAX_DEVICE_KEY + 1).read_to_string(&mut text).map_err(|e| format!("{origin}: {e}"))?;
            if text.len() as u64 > MAX_DEVICE_KEY {
                return Err(format!("{origin}: over {MAX_DEVICE_KEY} bytes; a private JWK is a few hundred"));
            }
            (origin, text)
        }
        None => ("--device-key".to_owned(), arg.0.clone()),
    };
    DeviceSecret::from_private_jwk(text.trim()).map_err(|e| format!("{origin}: {e}"))
}

/// GETs a JWK Set, at most [`MAX_KEYS`] bytes, within [`FETCH_TIMEOUT`].
fn fetch(url: &str) -> Result<String, KeysError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| KeysError::Url { url: url.to_owned() })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(KeysError::Url { url: url.to_owned() });
    }
    let failed = |e: reqwest::Error| {
        let mut reason = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            reason = format!("{reason}: {c}");
            cause = c.source();
        }
        KeysError::Fetch { url: url.to_owned(), reason }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(KeysError::Runtime)?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(failed)?;
        let mut response = client
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(KeysError::Status { url: url.to_owned(), status: response.status() });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_KEYS {
                return Err(KeysError::TooLarge { origin: format!("--jwks-url {url}") });
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    })
}

/// Decides as an installation holding `device_keys` does: with a device key it has switched to
/// wire v2 and refuses unencrypted pushes; without one it takes wire v1 pushes only.
fn decide(
    platform: Platform,
    input: Vec<u8>,
    keys: &KeySet,
    device_keys: &[DeviceSecret],
    now: i64,
) -> HandleOutcome {
    let adapter = adapter_for(platform);
    let refuse = |message: String| HandleOutcome {
        outcome: Outcome::Rejected,
        report: adapter.report(Outcome::Rejected),
        call: None,
        error: Some(Rejection::new(RejectionKind::Malformed, message)),
    };
    if input.len() as u64 > MAX_INPUT {
        return refuse(format!("the push is over {MAX_INPUT} bytes; no platform delivers that"));
    }
    match String::from_utf8(input) {
        Ok(text) => {
            let ctx =
                HandleContext { keys, now, audience: None, device_keys, accepts_v1: device_keys.is_empty() };
            adapter.handle(&RawPush::Text(text), &ctx)
        }
        Err(_) => refuse("the push is not UTF-8 text; platforms deliver pushes as strings".into()),
    }
}
