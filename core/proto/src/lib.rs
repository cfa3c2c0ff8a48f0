//! callpush-proto: the vocabulary device and server share, without I/O.
//!
//! - [`api`]: the device side of the HTTP API, for server, client and test fakes alike;
//! - [`ids`]: the rules call and installation ids follow;
//! - [`model`]: platforms, the signed [`model::Invite`], registrations and keys;
//! - [`wire`]: the call-push JWT and each provider's envelope, built on the server and opened on
//!   the device;
//! - [`registration`]: what makes a registration acceptable, on the device and on the server;
//! - [`token`]: what a push token of each platform looks like, and its one normal form;
//! - [`error`]: why a token, a key or a push was refused.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod error;
pub mod ids;
pub mod model;
pub mod registration;
pub mod token;
pub mod wire;

pub use error::{TokenError, WireError};
