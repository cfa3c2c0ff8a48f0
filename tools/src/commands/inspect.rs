//! `callpush-dev inspect`: what would the SDK do with this push?
//!
//! Reads one raw push on stdin exactly as the platform hands it to the app and prints the
//! decision as one JSON object. Exits 0 whenever a decision was printed, whatever it is.

use std::io::Read;

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{HandleOutcome, Outcome, Platform, RawPush, Rejection, RejectionKind};
use callpush_client::wire::KeySet;

/// Largest push read from stdin; anything longer is refused without reading the rest.
const MAX_INPUT: u64 = 1 << 20;

/// Arguments of `callpush-dev inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The platform the push was received on.
    #[arg(long, value_parser = parse_platform)]
    platform: Platform,
    /// The server's public key as a JWK, or a JWK Set `{"keys": [...]}`.
    #[arg(long)]
    jwk: String,
    /// Decide as if the server clock read this unix time (seconds); default: now.
    #[arg(long)]
    now: Option<i64>,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse().map_err(|e: callpush_client::model::UnknownPlatform| e.to_string())
}

/// Reads stdin, decides, prints.
pub fn run(args: Args) -> Result<(), String> {
    let keys = KeySet::from_json(&args.jwk).map_err(|e| format!("--jwk: {e}"))?;
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
