//! Storage: installations, calls, deliveries, the call timeline, signing keys and the webhook
//! outbox, in SQLite (default, zero set-up) or PostgreSQL (several server instances sharing one
//! database). Same schema, same queries; only claiming work differs: PostgreSQL uses
//! `FOR UPDATE SKIP LOCKED` so instances never claim the same delivery.
//!
//! Times are unix milliseconds. Queries use `$n` placeholders in increasing order of first use,
//! which both SQLite and PostgreSQL bind positionally.

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callpush_proto::model::{ApnsEnvironment, CancelReason};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row, TransactionManager};

use crate::domain::{
    new_id, CallEnd, CallPhase, CallRecord, Delivery, DeliveryResult, DeliveryStatus, Installation,
    Notifications, TimelineEvent, TokenMove, Webhook, RELEASED, RESULT_UNKNOWN,
};

mod calls;
mod counters;
mod deliveries;
mod installations;
mod keys;
mod receipts;
mod webhooks;

pub use calls::NewCallRows;
pub use installations::{PendingNonce, Registered, Verified, VerifyRefusal};
pub use keys::StoredKey;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not what the schema allows (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A storage failure seen by another task (a group commit), relayed.
    #[error("database: {0}")]
    Unavailable(String),
    /// The URL names a database this server does not speak.
    #[error("unsupported database URL `{0}`: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// The SQLite file could not be created or restricted to its owner.
    #[error("restricting the database file {0} to its owner: {1}")]
    FileMode(String, std::io::Error),
}

/// Which database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: one server instance.
    Sqlite,
    /// PostgreSQL: any number of instances.
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// One connection for new calls: their group commits, and the read before each when it is
    /// free (see [`Store::connect`]).
    ring_pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; writers queue here instead of spinning in SQLite's
    /// busy handler, which sleeps and backs off and so wastes most of the lock's time.
    sqlite_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How the latest write transactions ended, for the health checks.
    write_health: Arc<WriteHealth>,
    /// Stores of new calls under way (committing or waiting to): while there is one, the read
    /// before a new call leaves their connection to them.
    storing_calls: Arc<AtomicUsize>,
}

/// Counts a store of new calls in [`Store::storing_calls`] while it lasts.
struct StoringCalls<'a>(&'a AtomicUsize);

impl<'a> StoringCalls<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        StoringCalls(count)
    }
}

impl Drop for StoringCalls<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a write transaction last committed and last failed (to begin or to commit), unix ms;
/// 0 for never. Written by every write transaction, read by the health checks.
#[derive(Debug, Default)]
struct WriteHealth {
    last_success: AtomicI64,
    last_failure: AtomicI64,
}

impl WriteHealth {
    fn succeeded(&self, at: i64) {
        self.last_success.fetch_max(at, Ordering::Relaxed);
    }

    fn failed(&self, at: i64) {
        self.last_failure.fetch_max(at, Ordering::Relaxed);
    }

    fn outcomes(&self) -> WriteOutcomes {
        let at = |t: &AtomicI64| Some(t.load(Ordering::Relaxed)).filter(|t| *t > 0);
        WriteOutcomes { last_success: at(&self.last_success), last_failure: at(&self.last_failure) }
    }
}

/// When writes last succeeded and last failed, unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcomes {
    /// The last committed write.
    pub last_success: Option<i64>,
    /// The last write that failed to begin or to commit.
    pub last_failure: Option<i64>,
}

/// How long a committed write vouches for the database without a probe, ms.
pub const WRITE_TRUSTED_FOR_MS: i64 = 5_000;

/// The longest a health probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the health check must write to know that writes work at `now`: when no write has
/// succeeded since the last failure, or none in the last [`WRITE_TRUSTED_FOR_MS`].
pub fn needs_write_probe(outcomes: WriteOutcomes, now: i64) -> bool {
    match outcomes.last_success {
        None => true,
        Some(ok) => {
            outcomes.last_failure.is_some_and(|failed| failed >= ok) || now - ok > WRITE_TRUSTED_FOR_MS
        }
    }
}

/// A write transaction on a pooled connection of its own; derefs to the connection.
///
/// A connection whose transaction did not end cleanly (its `BEGIN`, a statement or its `COMMIT`
/// failed, or it was dropped unfinished) is closed instead of going back to the pool, so the
/// pool opens a fresh one: after an I/O error such as a full disk SQLite may already have ended
/// the transaction itself, and sqlx would refuse every later `BEGIN` on that connection.
struct WriteTx {
    conn: PoolConnection<Any>,
    /// Committed or rolled back: the connection may go back to the pool.
    finished: bool,
    health: Arc<WriteHealth>,
}

type AnyTransactions = <Any as sqlx::Database>::TransactionManager;

impl WriteTx {
    async fn commit(mut self) -> Result<(), sqlx::Error> {
        let now = crate::time::now_ms();
        match AnyTransactions::commit(&mut self.conn).await {
            Ok(()) => {
                self.finished = true;
                self.health.succeeded(now);
                Ok(())
            }
            Err(e) => {
                self.health.failed(now);
                Err(e)
            }
        }
    }

    /// Ends the transaction without its changes (the connection is closed if that fails).
    async fn rollback(mut self) {
        self.finished = AnyTransactions::rollback(&mut self.conn).await.is_ok();
    }

    /// A script that begins and commits its own transaction ran to its end.
    fn committed(&mut self) {
        self.finished = true;
        self.health.succeeded(crate::time::now_ms());
    }

    /// The write failed for a reason of the database's, not of the data's.
    fn failed(&self) {
        self.health.failed(crate::time::now_ms());
    }

    /// Ends whatever a failed script left open; the connection is closed if that fails (as it
    /// does when the script failed before its `BEGIN`).
    async fn roll_back_script(mut self) {
        self.finished = sqlx::query("ROLLBACK").execute(&mut *self.conn).await.is_ok();
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.finished {
            // Closing the connection ends its transaction too.
            self.conn.close_on_drop();
        }
    }
}

const INSTALLATION_COLUMNS: &str =
    "installation_id, user_id, platform, token, apns_environment, app_id, ttl_seconds, \
                                    registered_at, expires_at, alert_token, device_key, device_key_id";

/// What an installation row adds to [`INSTALLATION_COLUMNS`] when read: its notification state.
const NOTIFICATION_COLUMNS: &str = "notifications_enabled, notifications_source, notifications_at";

const CALL_COLUMNS: &str =
    "call_id, caller_id, caller_name, video, data, state, reason, answered_by, created_at, \
                            expires_at, ended_at, version";

const DELIVERY_COLUMNS: &str = "delivery_id, call_id, installation_id, user_id, platform, token, apns_environment, \
                                registered_at, kind, reason, status, attempts, next_attempt_at, claimed_until, \
                                outcome, detail, created_at, updated_at, claimed_by, device_key";

/// How many [`DELIVERY_COLUMNS`] there are: the values of one delivery row.
const DELIVERY_COLUMN_COUNT: usize = 20;

/// A statement with its arguments, being bound.
type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// `n` placeholders: `$1, $2, …` for PostgreSQL, `?, ?, …` for SQLite. Statements with many
/// values use positional `?` on SQLite because binding `$n` names costs a lookup per value.
fn placeholders_list(backend: Backend, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in 1..=n {
        if i > 1 {
            out.push_str(", ");
        }
        push_placeholder(&mut out, backend, i);
    }
    out
}

/// `rows` groups of `columns` placeholders, numbered in order: `($1, $2), ($3, $4), …`.
/// A statement built with it has a new text for every row count: run it `.persistent(false)`,
/// or every connection's statement cache keeps a prepared copy per row count (SQLite programs
/// of up to hundreds of KiB each, up to 100 per connection: most of the memory a ring burst
/// left behind).
fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    // Written into one string: a fan-out's statement has thousands of placeholders.
    let mut out = String::with_capacity(rows * columns * 7 + rows * 4);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                out.push_str(", ");
            }
            push_placeholder(&mut out, backend, r * columns + c);
        }
        out.push(')');
    }
    out
}

/// Rows per statement of the multi-row writes done for every push (deliveries stored, results
/// written): a full chunk has one text per backend, prepared once per connection and kept, so a
/// fan-out's rows are not parsed again for every call; only the rest of a batch, fewer rows,
/// goes unprepared (see [`placeholders`]).
const ROWS_PER_STATEMENT: usize = 32;

/// The SQL of a multi-row statement of `rows` rows from `make(placeholders)`: for a full chunk
/// ([`ROWS_PER_STATEMENT`]) made once per backend and kept in `full`, and to be run persistent.
fn chunk_sql(
    full: &'static [std::sync::OnceLock<String>; 2],
    backend: Backend,
    rows: usize,
    columns: usize,
    make: impl Fn(&str) -> String,
) -> (std::borrow::Cow<'static, str>, bool) {
    if rows == ROWS_PER_STATEMENT {
        let cell = &full[usize::from(backend == Backend::Postgres)];
        let sql = cell.get_or_init(|| make(&placeholders(backend, rows, columns)));
        (std::borrow::Cow::Borrowed(sql.as_str()), true)
    } else {
        (std::borrow::Cow::Owned(make(&placeholders(backend, rows, columns))), false)
    }
}

fn push_placeholder(out: &mut String, backend: Backend, i: usize) {
    match backend {
        Backend::Postgres => {
            use std::fmt::Write as _;
            let _ = write!(out, "${i}");
        }
        Backend::Sqlite => out.push('?'),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn parse<T: FromStr>(value: &str, what: &str) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt(format!("{what} `{value}`")))
}

/// A database URL safe to log: the password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The SQLite database holds the signing seeds and every push token: its file, and the `-wal`
/// and `-shm` files SQLite creates with the database file's mode, are readable by their owner
/// only. Creates the file 0600 before SQLite would create it 0644; tightens an existing one.
fn restrict_sqlite_files(url: &str) -> Result<(), StoreError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename();
    if url.contains("mode=memory") || path.to_string_lossy().starts_with("file:") {
        return Ok(());
    }
    let failed = |e: std::io::Error| StoreError::FileMode(path.display().to_string(), e);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !url.contains("mode=ro") {
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                // A missing directory and the like: SQLite reports it as it would have.
                Err(_) => return Ok(()),
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            let Ok(metadata) = std::fs::metadata(&file) else { continue };
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %file.display(),
                    mode = format!("{mode:o}"),
                    "the database file was readable by others; restricting it to its owner (0600)"
                );
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = failed;
    Ok(())
}

/// How long the connection kept for new calls may idle and still be used untested.
const RING_CONNECTION_TESTED_AFTER: Duration = Duration::from_secs(1);

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date, with at
    /// most `max_connections` connections (two at least), one of them kept for new calls.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        if backend == Backend::Sqlite {
            restrict_sqlite_files(&url)?;
        }
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file handle in this process: nothing can break it while
            // it idles, and a ping before every use would cost a round trip to SQLite's thread.
            // A PostgreSQL one may have been dropped by the server or the network.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer. FULL syncs the log at every
                        // commit: a call is stored before its pushes go, and must still be there
                        // after a power loss, not only after a crash of this process (NORMAL
                        // would sync at checkpoints only).
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        // Checkpoints run in the background (Store::checkpoint), not inside
                        // whichever commit crosses the threshold, where they stall a ring.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *conn).await?;
                        // Each connection keeps its own page cache: 1 MiB each (SQLite's default is
                        // 2 MiB) bounds them at 16 MiB for 16 connections; the OS caches the file.
                        sqlx::query("PRAGMA cache_size = -1024").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        let pool =
            options.clone().max_connections(max_connections.saturating_sub(1).max(1)).connect(&url).await?;
        // New calls get a connection of their own, kept open: a pool hands out the connection
        // idle longest, whose thread (SQLite) or backend process (PostgreSQL) must first be
        // woken from a long sleep; a ring read and then committed through this one wakes it
        // once, and on SQLite its page cache holds what the last commit of a call touched.
        let ring_pool = options
            .max_connections(1)
            .min_connections(1)
            // The read before a call has just used it (a PostgreSQL round trip saved on every
            // lone ring); a connection idle for a second is tested as the pool's are.
            .test_before_acquire(false)
            .before_acquire(move |conn, connection| {
                Box::pin(async move {
                    if backend == Backend::Postgres && connection.idle_for >= RING_CONNECTION_TESTED_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store {
            pool,
            ring_pool,
            backend,
            sqlite_writer: Default::default(),
            write_health: Default::default(),
            storing_calls: Default::default(),
        })
    }

    /// Waits for this process's turn to write (SQLite only).
    async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Begins a transaction that will write. SQLite takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a transaction that reads first and writes later could otherwise fail when
    /// another writer commits in between, which no busy timeout can wait out.
    /// Every write transaction goes through here and [`WriteTx`], which keeps a connection
    /// whose transaction failed out of the pool.
    async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let failed = |e: sqlx::Error| {
            self.write_health.failed(crate::time::now_ms());
            e
        };
        let conn = self.pool.acquire().await.map_err(failed)?;
        let mut tx = WriteTx { conn, finished: false, health: self.write_health.clone() };
        let statement = match self.backend {
            Backend::Sqlite => Some("BEGIN IMMEDIATE".into()),
            Backend::Postgres => None,
        };
        AnyTransactions::begin(&mut tx.conn, statement).await.map_err(failed)?;
        Ok(tx)
    }

    /// A connection of `pool` for a script that begins and commits its own transaction
    /// (SQLite); as a [`WriteTx`], so that one left unfinished is closed rather than pooled.
    async fn write_script(&self, pool: &AnyPool) -> Result<WriteTx, sqlx::Error> {
        let conn = pool.acquire().await.inspect_err(|_| self.write_health.failed(crate::time::now_ms()))?;
        Ok(WriteTx { conn, finished: false, health: self.write_health.clone() })
    }

    /// How the latest write transactions ended.
    pub fn write_outcomes(&self) -> WriteOutcomes {
        self.write_health.outcomes()
    }

    /// Liveness of storage: `Ok` when writes work at `now`. Trusts a recent committed write;
    /// otherwise (after a failure, or when idle) proves it with a write of its own.
    pub async fn check_writes(&self, now: i64) -> Result<(), StoreError> {
        if !needs_write_probe(self.write_outcomes(), now) {
            return Ok(());
        }
        let probe = async {
            let _writer = self.writer().await;
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE health SET probed_at = $1 WHERE id = 1").bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        };
        let result = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable("the write probe timed out".into())),
        };
        if result.is_err() {
            self.write_health.failed(now);
        }
        result
    }

    /// Readiness of storage: reads and writes work at `now`.
    pub async fn check_reads_and_writes(&self, now: i64) -> Result<(), StoreError> {
        let read = sqlx::query("SELECT probed_at FROM health WHERE id = 1").fetch_optional(&self.pool);
        match tokio::time::timeout(PROBE_TIMEOUT, read).await {
            Ok(row) => row?,
            Err(_) => return Err(StoreError::Unavailable("the read probe timed out".into())),
        };
        self.check_writes(now).await
    }

    /// SQLite: copies the write-ahead log back into the database without blocking writers.
    /// The server runs it every second; PostgreSQL checkpoints on its own.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_on_postgres_and_positional_on_sqlite() {
        assert_eq!(placeholders(Backend::Postgres, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholders(Backend::Postgres, 1, 1), "($1)");
        assert_eq!(placeholders_list(Backend::Postgres, 3), "$1, $2, $3");
        assert_eq!(placeholders_list(Backend::Sqlite, 2), "?, ?");
        assert_eq!(placeholders_list(Backend::Sqlite, 0), "");
    }
}
