//! callpush: incoming-call pushes for HarmonyOS NEXT, Android, iOS and Windows.
//!
//! Layers, lowest first; a layer never reaches up:
//!
//! - [`model`]: plain data (platforms, the signed [`model::Invite`], outcomes, registrations);
//! - [`wire`]: the call-push JWT and each provider's envelope, shared by server and device;
//! - [`adapter`]: the [`adapter::PushAdapter`] trait (register / handle / unregister) and its
//!   four implementations, one per provider;
//! - [`client`]: the [`client::Client`] apps hold, exported to Kotlin, Swift and ArkTS through
//!   uniffi.

#![warn(missing_docs)]

pub mod adapter;
pub mod client;
mod error;
pub mod model;
pub mod wire;

pub use error::{CallpushError, Error, TokenError};

uniffi::setup_scaffolding!();

/// Decides what `raw` means on `platform` with the given trusted keys at server time `now`,
/// without a client: the `callpush inspect` command as a function, for debugging payloads and
/// for running the shared test vectors in every binding.
#[uniffi::export]
pub fn inspect_push(
    platform: model::Platform,
    raw: String,
    keys_json: String,
    now: i64,
) -> Result<model::HandleOutcome, Error> {
    let keys = wire::KeySet::from_json(&keys_json)?;
    let ctx = adapter::HandleContext { keys: &keys, now, audience: None };
    Ok(adapter::adapter_for(platform).handle(&model::RawPush::Text(raw), &ctx))
}
