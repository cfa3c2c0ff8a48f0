//! callpush-server: the reference server behind the `callpush` command.
//!
//! - [`api`]: the HTTP API, described by `/openapi.json`;
//! - [`http_server`]: the accept loop and the limits of the HTTP edge;
//! - [`rings`]: ring orchestration — calls, deliveries, answers, declines, cancels, deadlines;
//! - [`dispatch`]: the delivery workers, their claims, and what they do with each provider outcome;
//! - [`ring_gate`]: whether a queued ring may still go out;
//! - [`senders`]: the provider senders behind one trait;
//! - [`store`]: SQLite or PostgreSQL, the same schema and queries;
//! - [`keyring`]: the call-push signing keys and their rotation;
//! - [`verification`]: verify pushes, the proof a device holds a token before it moves;
//! - [`auth`], [`config`], [`metrics`], [`webhooks`], and [`app`], which starts it all.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod dispatch;
pub mod http_server;
pub mod keyring;
pub mod metrics;
pub mod ring_gate;
pub mod rings;
pub mod senders;
pub mod signing_key;
pub mod store;
pub mod verification;
pub mod webhooks;
