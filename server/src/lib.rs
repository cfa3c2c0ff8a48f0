//! callpush-server: the reference server behind the `callpush` command.
//!
//! So far it holds the server's signing key; the registrar, ring orchestrator and provider
//! senders build on it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod signing_key;
