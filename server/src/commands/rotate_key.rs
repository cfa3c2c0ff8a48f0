//! `callpush rotate-key`: add the next call-push signing key to the server's database.
//!
//! Servers read their signing keys from the database, so the key goes where they read it: the
//! `database_url` of the configuration `serve` uses. The command never creates a database: one
//! no server has started on (no SQLite file, or no signing key in it) is refused, saying where
//! it looked.

use std::path::PathBuf;
use std::str::FromStr;

use callpush_server::config::{Config, ConfigError, ConfigSource};
use callpush_server::keyring;
use callpush_server::store::{redact_url, Store, StoreError};
use callpush_server::time::now_ms;
use sqlx::Connection;

use super::absolute;

/// How often a running server re-reads its signing keys, seconds (`app::reload_keys`).
const KEY_RELOAD_SECONDS: u32 = 30;

/// Arguments of `callpush rotate-key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hours until the new key starts signing. Devices learn it when they renew their lease
    /// (daily by default), so give them a day; 0 activates at once.
    #[arg(long, default_value_t = 24)]
    activate_after_hours: u32,
    /// The server's configuration file, to find its database; found as `serve` finds it when
    /// not given (CALLPUSH_CONFIG, then ./callpush.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Why no key was added.
#[derive(Debug, thiserror::Error)]
pub enum RotateKeyError {
    /// The configuration could not be found or read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The SQLite file the configuration names does not exist.
    #[error(
        "no database at {path} (database_url {url}).\n  Configuration: {found}.\n  rotate-key adds \
         a key to the database a server uses and never creates one: run it with that server's \
         configuration (--config or CALLPUSH_CONFIG) and working directory, after the server \
         has started once."
    )]
    NoDatabase {
        /// The SQLite file looked for.
        path: PathBuf,
        /// `database_url`.
        url: String,
        /// Where the configuration was found.
        found: ConfigSource,
    },
    /// The database is there, but no server has started on it.
    #[error(
        "{database} is not a callpush server's database: {reason}.\n  Configuration: {found}.\n  \
         Start `callpush serve` on it first (it makes the first signing key), or point \
         rotate-key at the server's configuration."
    )]
    NotAServerDatabase {
        /// The database (password redacted).
        database: String,
        /// What is missing.
        reason: String,
        /// Where the configuration was found.
        found: ConfigSource,
    },
    /// The database could not be reached.
    #[error("{database}: {source}")]
    Connect {
        /// The database (password redacted).
        database: String,
        /// Why.
        source: sqlx::Error,
    },
    /// Reading or writing the keys failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key was written but is not among the database's keys.
    #[error("the new key {kid} is not among {database}'s signing keys after adding it")]
    NotStored {
        /// The new key's id.
        kid: String,
        /// The database (password redacted).
        database: String,
    },
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Adds the key to the database every instance reads, then says when it is used.
pub fn run(args: Args) -> Result<(), RotateKeyError> {
    let (config, found) = Config::discover(args.config.as_deref())?;
    let url = config.database_url.clone();
    let database = match sqlite_file(&url) {
        Some(path) => {
            let path = absolute(&path);
            if !path.is_file() {
                return Err(RotateKeyError::NoDatabase { path, url: redact_url(&url), found });
            }
            path.display().to_string()
        }
        None => redact_url(&url),
    };
    let runtime = tokio::runtime::Runtime::new().map_err(RotateKeyError::Runtime)?;
    runtime.block_on(async {
        let keys = count_signing_keys(&url)
            .await
            .map_err(|source| RotateKeyError::Connect { database: database.clone(), source })?;
        match keys {
            None => {
                return Err(RotateKeyError::NotAServerDatabase {
                    database,
                    reason: "it has no signing_keys table".into(),
                    found,
                })
            }
            Some(0) => {
                return Err(RotateKeyError::NotAServerDatabase {
                    database,
                    reason: "it has no signing key yet".into(),
                    found,
                })
            }
            Some(_) => {}
        }
        let store = Store::connect(&url, 2).await?;
        let now = now_ms();
        let activates_at = now + i64::from(args.activate_after_hours) * 3_600_000;
        let kid = keyring::rotate(&store, now, activates_at).await?;
        if !store.signing_keys().await?.iter().any(|k| k.kid == kid) {
            return Err(RotateKeyError::NotStored { kid, database });
        }
        println!(
            "new signing key {kid} stored in {database}: published by every server on this database \
             within {KEY_RELOAD_SECONDS} s (devices learn it when they renew their lease), signing from \
             unix ms {activates_at}"
        );
        Ok(())
    })
}

/// The file of a SQLite `database_url`; `None` for PostgreSQL and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains("mode=memory") || url.contains(":memory:") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_owned())
}

/// How many signing keys the database holds, without creating or migrating anything; `None`
/// when it has no `signing_keys` table (no server ever started on it).
async fn count_signing_keys(url: &str) -> Result<Option<i64>, sqlx::Error> {
    const COUNT: &str = "SELECT COUNT(*) FROM signing_keys";
    let counted = if url.starts_with("sqlite:") {
        // `rw`, not `rwc`: the file must be there already (checked above).
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?.create_if_missing(false);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        let counted = sqlx::query_scalar::<_, i64>(COUNT).fetch_one(&mut conn).await;
        conn.close().await?;
        counted
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let counted = sqlx::query_scalar::<_, i64>(COUNT).fetch_one(&mut conn).await;
        conn.close().await?;
        counted
    };
    match counted {
        Ok(n) => Ok(Some(n)),
        Err(sqlx::Error::Database(e)) if is_missing_table(e.as_ref()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// SQLite says "no such table", PostgreSQL `42P01` (undefined_table).
fn is_missing_table(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.code().as_deref() == Some("42P01") || e.message().contains("no such table")
}
