//! callpush: incoming-call pushes for HarmonyOS NEXT, Android, iOS and Windows.
//!
//! Layers, lowest first; a layer never reaches up:
//!
//! - [`model`]: plain data (platforms, the signed [`model::Invite`], outcomes, registrations);
//! - [`wire`]: the call-push JWT and each provider's envelope, shared by server and device;
//! - [`adapter`]: the [`adapter::PushAdapter`] trait (register / handle / unregister) and its
//!   four implementations, one per provider.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapter;
mod error;
pub mod model;
pub mod wire;

pub use error::{Error, TokenError};
