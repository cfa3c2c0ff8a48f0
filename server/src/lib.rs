//! callpush-server: the reference server behind the `callpush` command.
//!
//! - [`api`]: the HTTP API, described by `/openapi.json`;
//! - [`http_server`]: the accept loop and the limits of the HTTP edge;
//! - [`rings`]: ring orchestration — calls, deliveries, answers, declines, cancels, deadlines;
//! - [`dispatch`]: the delivery workers, their claims, and what they do with each provider outcome;
//! - [`call_push`]: the claims a call push carries;
//! - [`delivery_policy`]: what follows each provider outcome, decided without I/O;
//! - [`ring_gate`]: whether a queued ring may still go out;
//! - [`senders`]: the provider senders behind one trait;
//! - [`domain`]: installations, calls, deliveries and their outcomes, as every module sees them;
//! - [`store`]: SQLite or PostgreSQL, the same schema and queries;
//! - [`keyring`]: the call-push signing keys and their rotation;
//! - [`verification`]: verify pushes, the proof a device holds a token before it moves;
//! - [`receipts`]: Push Kit delivery receipts — their signature, body and what each result does;
//! - [`time`]: the wall clock in unix ms and seconds; [`sync`]: locks that survive a panic;
//! - [`auth`], [`config`], [`metrics`], [`webhooks`], and [`app`], which starts it all.
//!
//! Dependencies go one way: [`api`] → [`rings`] → [`dispatch`] → [`call_push`],
//! [`delivery_policy`] and [`senders`]; everything that speaks of calls and deliveries, the
//! store and the senders included, builds on [`domain`], which depends on nothing here.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod call_push;
pub mod config;
pub mod delivery_policy;
pub mod dispatch;
pub mod domain;
pub mod http_server;
pub mod keyring;
pub mod metrics;
pub mod receipts;
pub mod ring_gate;
pub mod rings;
pub mod senders;
pub mod signing_key;
pub mod store;
pub mod sync;
pub mod time;
pub mod verification;
pub mod webhooks;
