//! `callpush-dev inspect`: what would the SDK do with this push?
//!
//! Reads one raw push on stdin exactly as the platform hands it to the app and prints the
//! decision as one JSON object. Exits 0 whenever a decision was printed, whatever it is. The
//! server's keys come as a JWK (`--jwk`), a JWK Set file (`--jwks`) or the server's own
//! `GET /.well-known/callpush-keys` (`--jwks-url`).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{HandleOutcome, Outcome, Platform, RawPush, Rejection, RejectionKind};
use callpush_client::wire::KeySet;
use callpush_client::WireError;

/// Largest push read from stdin; anything longer is refused without reading the rest.
const MAX_INPUT: u64 = 1 << 20;

/// Largest key set read from a file or fetched from a server.
const MAX_KEYS: u64 = 256 * 1024;

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
    let now = args.now.unwrap_or_else(callpush_server::time::now_secs);
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let outcome = decide(args.platform, input, &keys, now);
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

fn decide(platform: Platform, input: Vec<u8>, keys: &KeySet, now: i64) -> HandleOutcome {
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
        Ok(text) => adapter.handle(&RawPush::Text(text), &HandleContext { keys, now, audience: None }),
        Err(_) => refuse("the push is not UTF-8 text; platforms deliver pushes as strings".into()),
    }
}
