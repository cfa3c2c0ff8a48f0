//! The callpush library apps load: `callpush-client` with its uniffi exports turned on, under
//! the namespace `callpush`. The only crate that builds a library for apps (the N-API bridge
//! of HarmonyOS links this one); nothing here is test-only.
//!
//! Nothing is defined here: the exported types carry their uniffi descriptions where they are
//! defined, behind `callpush-client`'s `uniffi` feature, so each is written once.

#![forbid(unsafe_code)]

pub use callpush_client::*;
