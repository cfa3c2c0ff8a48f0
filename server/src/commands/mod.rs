//! One module per subcommand, each with its own error type; `main` prints the error and exits 2.
//!
//! Every command finds the server's configuration as `serve` does ([`Config::discover`]) and
//! uses the state `serve` keeps: the development credentials in `data_dir`, the database at
//! `database_url`. Only `serve` creates state; the others refuse, saying where they looked,
//! when it is not there.

use std::path::{Path, PathBuf};

pub mod rotate_key;
pub mod serve;
pub mod token;

/// `path` made absolute against the working directory, for messages: relative paths in the
/// configuration are relative to it.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
