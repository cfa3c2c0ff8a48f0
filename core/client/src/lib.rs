//! callpush-client: incoming-call pushes on the device, for HarmonyOS NEXT, Android, iOS and
//! Windows.
//!
//! Layers, lowest first; a layer never reaches up:
//!
//! - [`model`] and [`wire`]: the vocabulary shared with the server (from `callpush-proto`), and
//!   what a push means to the app;
//! - [`adapter`]: the [`adapter::PushAdapter`] trait (register / handle / unregister) and its
//!   four implementations, one per provider;
//! - [`client`]: the [`client::Client`] apps hold.
//!
//! With the `uniffi` feature the types apps see carry their uniffi descriptions, under the one
//! namespace `callpush`; the crate `callpush-ffi` turns that on and builds the library apps load.

#![warn(missing_docs)]

pub mod adapter;
pub mod client;
mod error;
pub mod model;
#[cfg(feature = "uniffi")]
mod shared_ffi;

pub use callpush_proto::{api, ids, registration, token, wire};
pub use error::{CallpushError, Error, TokenError, WireError};

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("callpush");

/// Decides what `raw` means on `platform` with the given trusted keys at server time `now`,
/// without a client: the `callpush-dev inspect` command as a function, for debugging payloads
/// and for running the shared test vectors in every binding.
///
/// `device_key_json`, a private X25519 JWK, decodes wire v2 pushes sealed to it; with it the
/// installation counts as switched to v2, so an unencrypted push is refused as `downgraded`.
#[cfg_attr(feature = "uniffi", uniffi::export(default(device_key_json = None)))]
pub fn inspect_push(
    platform: model::Platform,
    raw: String,
    keys_json: String,
    now: i64,
    device_key_json: Option<String>,
) -> Result<model::HandleOutcome, Error> {
    let keys = wire::KeySet::from_json(&keys_json)?;
    let device_keys = device_key_json.as_deref().map(wire::DeviceSecret::from_private_jwk).transpose()?;
    let ctx = adapter::HandleContext {
        keys: &keys,
        now,
        audience: None,
        device_keys: device_keys.as_slice(),
        accepts_v1: device_keys.is_none(),
    };
    Ok(adapter::adapter_for(platform).handle(&model::RawPush::Text(raw), &ctx))
}
