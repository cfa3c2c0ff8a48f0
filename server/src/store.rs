//! Storage: installations, calls, deliveries, the call timeline, signing keys and the webhook
//! outbox, in SQLite (default, zero set-up) or PostgreSQL (several server instances sharing one
//! database). Same schema, same queries; only claiming work differs: PostgreSQL uses
//! `FOR UPDATE SKIP LOCKED` so instances never claim the same delivery.
//!
//! Times are unix milliseconds. Queries use `$n` placeholders in increasing order of first use,
//! which both SQLite and PostgreSQL bind positionally.

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callpush_proto::model::{ApnsEnvironment, CancelReason};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row, TransactionManager};

use crate::domain::{
    new_id, CallEnd, CallEvent, CallPhase, CallRecord, Delivery, DeliveryResult, DeliveryStatus,
    Installation, TokenMove, Webhook, RELEASED, RESULT_UNKNOWN,
};

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

/// How [`Store::put_installation`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Stored and live: it rings.
    Live,
    /// Stored unverified: another user's live installation holds the token and keeps ringing
    /// until the device proves it holds it. `nonce_stored`: the nonce given was stored, so a
    /// verify push carrying it must go out; otherwise an earlier nonce is still live.
    Pending {
        /// Whether the given nonce was stored.
        nonce_stored: bool,
    },
    /// A new installation beyond the user's limit; nothing was stored.
    TooMany,
}

/// The nonce a pending registration waits for, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNonce {
    /// SHA-256 of the nonce, hex: a database reader cannot answer a verify push.
    pub hash: String,
    /// When it expires, ms.
    pub expires_at: i64,
}

impl PendingNonce {
    /// The stored form of `nonce`, expiring at `expires_at`.
    pub fn new(nonce: &str, expires_at: i64) -> Self {
        PendingNonce { hash: nonce_hash(nonce), expires_at }
    }
}

fn nonce_hash(nonce: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(nonce.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `nonce` is the one whose hash is `stored`, in constant time.
fn nonce_matches(nonce: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    nonce_hash(nonce).as_bytes().ct_eq(stored.as_bytes()).into()
}

/// How [`Store::verify_installation`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The installation is live; the token moved from the installations listed.
    Moved {
        /// The installation, now live.
        installation: Installation,
        /// The moves from other users' installations, as recorded.
        moves: Vec<TokenMove>,
    },
    /// The user has no such (unexpired) installation.
    NotFound,
    /// Refused; nothing changed.
    Refused(VerifyRefusal),
}

/// Why a verification was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyRefusal {
    /// The installation waits for no verification (never did, or the nonce was used).
    #[error("this installation waits for no verification; the nonce may have been used already")]
    NotPending,
    /// The nonce expired.
    #[error("the nonce expired; register again to get a new verify push")]
    Expired,
    /// Not the nonce the server sent.
    #[error("the nonce is not the one the server sent")]
    WrongNonce,
}

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// The 32-byte Ed25519 seed.
    pub seed: [u8; 32],
    /// Created, ms.
    pub created_at: i64,
    /// When it starts signing, ms.
    pub activates_at: i64,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; writers queue here instead of spinning in SQLite's
    /// busy handler, which sleeps and backs off and so wastes most of the lock's time.
    sqlite_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How the latest write transactions ended, for the health checks.
    write_health: Arc<WriteHealth>,
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
                                    registered_at, expires_at, alert_token";
const CALL_COLUMNS: &str =
    "call_id, caller_id, caller_name, video, data, state, reason, answered_by, created_at, \
                            expires_at, ended_at, version";
const DELIVERY_COLUMNS: &str = "delivery_id, call_id, installation_id, user_id, platform, token, apns_environment, \
                                registered_at, kind, reason, status, attempts, next_attempt_at, claimed_until, \
                                outcome, detail, created_at, updated_at, claimed_by";

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
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
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL syncs at checkpoints,
                        // which WAL keeps crash-safe.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
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
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool, backend, sqlite_writer: Default::default(), write_health: Default::default() })
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

    // ---- installations ----

    /// The installation `id` of `user_id`, expired or not, verified or not.
    pub async fn installation(&self, user_id: &str, id: &str) -> Result<Option<Installation>, StoreError> {
        let sql = format!(
            "SELECT {INSTALLATION_COLUMNS} FROM installations WHERE user_id = $1 AND installation_id = $2"
        );
        let row = sqlx::query(&sql).bind(user_id).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| installation(&r)).transpose()
    }

    /// Creates or renews an installation of its user, as of `inst.registered_at`.
    ///
    /// A new installation past `max_per_user` unexpired ones is refused; a renewal never is.
    /// When another user's live installation holds the token (or the alert token), nothing of
    /// theirs changes: this one is stored unverified with `nonce` (or keeps a still-live nonce
    /// it was given before, so one verify push goes out per nonce lifetime) and waits for
    /// [`Store::verify_installation`]. Otherwise it is live at once and every other
    /// installation holding its token is removed (a token rings one installation only).
    pub async fn put_installation(
        &self,
        inst: &Installation,
        max_per_user: u32,
        nonce: &PendingNonce,
    ) -> Result<Registered, StoreError> {
        let _writer = self.writer().await;
        let now = inst.registered_at;
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(
            "SELECT platform, token, verify_nonce, verify_expires_at FROM installations \
             WHERE user_id = $1 AND installation_id = $2",
        )
        .bind(&inst.user_id)
        .bind(&inst.installation_id)
        .fetch_optional(&mut *tx)
        .await?;
        if existing.is_none() {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM installations WHERE user_id = $1 AND expires_at > $2")
                    .bind(&inst.user_id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
            if row.try_get::<i64, _>("n")? >= i64::from(max_per_user) {
                tx.rollback().await;
                return Ok(Registered::TooMany);
            }
        }
        let held = format!(
            "SELECT COUNT(*) AS n FROM installations WHERE user_id <> $1 AND expires_at > $2 \
             AND verify_nonce IS NULL AND platform = $3 AND (token = $4{})",
            if inst.alert_token.is_some() { " OR alert_token = $5" } else { "" }
        );
        let mut held =
            sqlx::query(&held).bind(&inst.user_id).bind(now).bind(inst.platform.as_str()).bind(&inst.token);
        if let Some(alert_token) = &inst.alert_token {
            held = held.bind(alert_token);
        }
        let held = held.fetch_one(&mut *tx).await?.try_get::<i64, _>("n")? > 0;
        let (verify_nonce, verify_expires_at, outcome) = if held {
            // A nonce already sent for this very token that is still live is kept.
            let kept = match &existing {
                Some(r) => {
                    let same_token = r.try_get::<String, _>("platform")? == inst.platform.as_str()
                        && r.try_get::<String, _>("token")? == inst.token;
                    let hash: Option<String> = r.try_get("verify_nonce")?;
                    let until: Option<i64> = r.try_get("verify_expires_at")?;
                    match (hash, until) {
                        (Some(hash), Some(until)) if same_token && until > now => Some((hash, until)),
                        _ => None,
                    }
                }
                None => None,
            };
            match kept {
                Some((hash, until)) => (Some(hash), Some(until), Registered::Pending { nonce_stored: false }),
                None => (
                    Some(nonce.hash.clone()),
                    Some(nonce.expires_at),
                    Registered::Pending { nonce_stored: true },
                ),
            }
        } else {
            (None, None, Registered::Live)
        };
        let sql = format!(
            "INSERT INTO installations ({INSTALLATION_COLUMNS}, verify_nonce, verify_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (user_id, installation_id) DO UPDATE SET platform = excluded.platform, \
             token = excluded.token, apns_environment = excluded.apns_environment, app_id = excluded.app_id, \
             ttl_seconds = excluded.ttl_seconds, registered_at = excluded.registered_at, \
             expires_at = excluded.expires_at, alert_token = excluded.alert_token, \
             verify_nonce = excluded.verify_nonce, verify_expires_at = excluded.verify_expires_at"
        );
        sqlx::query(&sql)
            .bind(&inst.installation_id)
            .bind(&inst.user_id)
            .bind(inst.platform.as_str())
            .bind(&inst.token)
            .bind(inst.apns_environment.map(|e| e.as_str()))
            .bind(&inst.app_id)
            .bind(inst.ttl_seconds)
            .bind(inst.registered_at)
            .bind(inst.expires_at)
            .bind(&inst.alert_token)
            .bind(verify_nonce)
            .bind(verify_expires_at)
            .execute(&mut *tx)
            .await?;
        if !held {
            take_tokens(&mut tx, inst).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// The device proves it holds the token of `user_id`'s pending installation `id` by
    /// sending back `nonce`: once, before it expires, compared in constant time. The token then
    /// moves: every other installation holding it is removed, and each move from another user
    /// is recorded in `token_moves`.
    pub async fn verify_installation(
        &self,
        user_id: &str,
        id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Verified, StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {INSTALLATION_COLUMNS}, verify_nonce, verify_expires_at FROM installations \
             WHERE user_id = $1 AND installation_id = $2 AND expires_at > $3"
        );
        let Some(row) = sqlx::query(&sql).bind(user_id).bind(id).bind(now).fetch_optional(&mut *tx).await?
        else {
            tx.rollback().await;
            return Ok(Verified::NotFound);
        };
        let inst = installation(&row)?;
        let stored: Option<String> = row.try_get("verify_nonce")?;
        let until: Option<i64> = row.try_get("verify_expires_at")?;
        let (Some(stored), Some(until)) = (stored, until) else {
            tx.rollback().await;
            return Ok(Verified::Refused(VerifyRefusal::NotPending));
        };
        if until <= now {
            tx.rollback().await;
            return Ok(Verified::Refused(VerifyRefusal::Expired));
        }
        if !nonce_matches(nonce, &stored) {
            tx.rollback().await;
            return Ok(Verified::Refused(VerifyRefusal::WrongNonce));
        }
        // Guarded by the nonce itself, so two answers racing cannot both use it.
        let used = sqlx::query(
            "UPDATE installations SET verify_nonce = NULL, verify_expires_at = NULL \
             WHERE user_id = $1 AND installation_id = $2 AND verify_nonce = $3",
        )
        .bind(user_id)
        .bind(id)
        .bind(&stored)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() == 0 {
            tx.rollback().await;
            return Ok(Verified::Refused(VerifyRefusal::NotPending));
        }
        let holders = sqlx::query(
            "SELECT user_id, installation_id FROM installations \
             WHERE platform = $1 AND token = $2 AND user_id <> $3",
        )
        .bind(inst.platform.as_str())
        .bind(&inst.token)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut moves = Vec::with_capacity(holders.len());
        for holder in holders {
            let token_move = TokenMove {
                moved_at: now,
                platform: inst.platform,
                token: crate::auth::redact(&inst.token),
                from_user_id: holder.try_get("user_id")?,
                from_installation: holder.try_get("installation_id")?,
                to_user_id: user_id.to_owned(),
                to_installation: id.to_owned(),
            };
            sqlx::query(
                "INSERT INTO token_moves (move_id, moved_at, platform, token, from_user_id, from_installation, \
                 to_user_id, to_installation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new_id())
            .bind(token_move.moved_at)
            .bind(token_move.platform.as_str())
            .bind(&token_move.token)
            .bind(&token_move.from_user_id)
            .bind(&token_move.from_installation)
            .bind(&token_move.to_user_id)
            .bind(&token_move.to_installation)
            .execute(&mut *tx)
            .await?;
            moves.push(token_move);
        }
        take_tokens(&mut tx, &inst).await?;
        tx.commit().await?;
        Ok(Verified::Moved { installation: inst, moves })
    }

    /// Every recorded token move, oldest first.
    pub async fn token_moves(&self) -> Result<Vec<TokenMove>, StoreError> {
        let rows = sqlx::query(
            "SELECT moved_at, platform, token, from_user_id, from_installation, to_user_id, to_installation \
             FROM token_moves ORDER BY moved_at, move_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenMove {
                    moved_at: r.try_get("moved_at")?,
                    platform: parse(&r.try_get::<String, _>("platform")?, "platform")?,
                    token: r.try_get("token")?,
                    from_user_id: r.try_get("from_user_id")?,
                    from_installation: r.try_get("from_installation")?,
                    to_user_id: r.try_get("to_user_id")?,
                    to_installation: r.try_get("to_installation")?,
                })
            })
            .collect()
    }

    /// Deletes `id` if `user_id` owns it; returns whether it did.
    pub async fn delete_installation(&self, id: &str, user_id: &str) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM installations WHERE installation_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes `user_id`'s installation `id` whose token the provider declared dead, unless it
    /// was re-registered with another token meanwhile (and, when given, only if it was
    /// registered before `registered_before`: the APNs 410 `timestamp` rule).
    pub async fn prune_installation(
        &self,
        user_id: &str,
        id: &str,
        token: &str,
        registered_before: Option<i64>,
    ) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "DELETE FROM installations WHERE user_id = $1 AND installation_id = $2 AND token = $3 \
             AND registered_at < $4",
        )
        .bind(user_id)
        .bind(id)
        .bind(token)
        .bind(registered_before.unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the alert token of `user_id`'s installation `id` that the provider declared
    /// dead, keeping the installation (its VoIP token still rings), unless the alert token
    /// changed meanwhile (and, when given, only if registered before `registered_before`, as
    /// for pruning). Returns whether it did.
    pub async fn clear_alert_token(
        &self,
        user_id: &str,
        id: &str,
        alert_token: &str,
        registered_before: Option<i64>,
    ) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "UPDATE installations SET alert_token = NULL \
             WHERE user_id = $1 AND installation_id = $2 AND alert_token = $3 AND registered_at < $4",
        )
        .bind(user_id)
        .bind(id)
        .bind(alert_token)
        .bind(registered_before.unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every unexpired installation of `users`.
    pub async fn live_installations(
        &self,
        users: &[String],
        now: i64,
    ) -> Result<Vec<Installation>, StoreError> {
        let mut out = Vec::new();
        let sql = format!(
            "SELECT {INSTALLATION_COLUMNS} FROM installations WHERE user_id = $1 AND expires_at > $2 \
             AND verify_nonce IS NULL ORDER BY installation_id"
        );
        for user in users {
            let rows = sqlx::query(&sql).bind(user).bind(now).fetch_all(&self.pool).await?;
            for row in rows {
                out.push(installation(&row)?);
            }
        }
        Ok(out)
    }

    /// Deletes installations that expired before `now`; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM installations WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Number of live installations: unexpired and verified.
    pub async fn count_installations(&self, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM installations WHERE expires_at > $1 AND verify_nonce IS NULL",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    // ---- calls ----

    /// Stores new calls, each with its callees, first deliveries and webhook, in one
    /// transaction, before any push is sent: many calls per commit when many arrive at once.
    /// Returns, per call, whether it was created (`false`: the call id is taken).
    pub async fn create_calls(&self, calls: &[NewCallRows]) -> Result<Vec<bool>, StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        let ids = calls.iter().map(|c| c.call.call_id.as_str());
        let sql = format!(
            "SELECT call_id FROM calls WHERE call_id IN ({})",
            placeholders_list(self.backend, calls.len())
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for id in ids {
            query = query.bind(id);
        }
        let taken: std::collections::HashSet<String> =
            query.fetch_all(&mut *tx).await?.iter().filter_map(|r| r.try_get("call_id").ok()).collect();
        // Keep the first of any id repeated in the batch; the rest are taken.
        let mut fresh = std::collections::HashSet::new();
        let created: Vec<bool> = calls
            .iter()
            .map(|c| !taken.contains(&c.call.call_id) && fresh.insert(c.call.call_id.clone()))
            .collect();
        let new: Vec<&NewCallRows> =
            calls.iter().zip(&created).filter(|(_, ok)| **ok).map(|(c, _)| c).collect();
        if new.is_empty() {
            tx.rollback().await;
            return Ok(created);
        }
        let sql = format!(
            "INSERT INTO calls ({CALL_COLUMNS}) VALUES {}",
            placeholders(self.backend, new.len(), 12)
        );
        let mut insert = sqlx::query(&sql).persistent(false);
        for c in &new {
            let call = &c.call;
            insert = insert
                .bind(&call.call_id)
                .bind(&call.caller_id)
                .bind(&call.caller_name)
                .bind(i64::from(call.video))
                .bind(serde_json::to_string(&call.data).unwrap_or_else(|_| "{}".into()))
                .bind(call.state.as_str())
                .bind(call.reason.map(|r| r.as_str()))
                .bind(&call.answered_by)
                .bind(call.created_at)
                .bind(call.expires_at)
                .bind(call.ended_at)
                .bind(call.version);
        }
        if let Err(e) = insert.execute(&mut *tx).await {
            // Another instance created one of these call ids since the check: retry one by one.
            if is_unique_violation(&e) && calls.len() > 1 {
                tx.rollback().await;
                drop(_writer);
                let mut created = Vec::with_capacity(calls.len());
                for call in calls {
                    created.push(Box::pin(self.create_calls(std::slice::from_ref(call))).await?[0]);
                }
                return Ok(created);
            }
            if is_unique_violation(&e) {
                tx.rollback().await;
                return Ok(vec![false]);
            }
            return Err(e.into());
        }
        let callees: Vec<(&str, &str)> = new
            .iter()
            .flat_map(|c| c.callees.iter().map(|u| (c.call.call_id.as_str(), u.as_str())))
            .collect();
        for chunk in callees.chunks(1000) {
            let sql = format!(
                "INSERT INTO call_callees (call_id, user_id) VALUES {}",
                placeholders(self.backend, chunk.len(), 2)
            );
            let mut insert = sqlx::query(&sql).persistent(false);
            for (call_id, user) in chunk {
                insert = insert.bind(*call_id).bind(*user);
            }
            insert.execute(&mut *tx).await?;
        }
        let deliveries: Vec<Delivery> = new.iter().flat_map(|c| c.deliveries.iter().cloned()).collect();
        insert_deliveries(&mut tx, self.backend, &deliveries).await?;
        for c in &new {
            let detail = format!("{} devices", c.deliveries.len());
            insert_event(&mut tx, &c.call.call_id, None, c.call.created_at, "ringing", Some(&detail)).await?;
            if let Some(webhook) = &c.webhook {
                insert_webhook(&mut tx, webhook, c.call.created_at).await?;
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    /// The call `id`.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE call_id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| call_record(&r)).transpose()
    }

    /// Whether `user` is a callee of `call_id`.
    pub async fn is_callee(&self, call_id: &str, user: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT user_id FROM call_callees WHERE call_id = $1 AND user_id = $2")
            .bind(call_id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The callees of `call_id` and whether each declined.
    pub async fn callees(&self, call_id: &str) -> Result<Vec<(String, bool)>, StoreError> {
        let rows =
            sqlx::query("SELECT user_id, declined_at FROM call_callees WHERE call_id = $1 ORDER BY user_id")
                .bind(call_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get::<Option<i64>, _>("declined_at")?.is_some())))
            .collect()
    }

    /// Moves a ringing call to `state` and records its follow-ups atomically: `followups` are
    /// new deliveries (cancels, missed-call notifications), pending rings are skipped.
    /// Returns `false` when the call was no longer ringing (someone else ended it first).
    pub async fn end_call(
        &self,
        call_id: &str,
        end: &CallEnd,
        followups: &[Delivery],
        webhook: Option<&Webhook>,
    ) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE calls SET state = $1, reason = $2, answered_by = $3, ended_at = $4, version = version + 1 \
             WHERE call_id = $5 AND state = 'ringing'",
        )
        .bind(end.state.as_str())
        .bind(end.reason.map(|r| r.as_str()))
        .bind(&end.answered_by)
        .bind(end.at)
        .bind(call_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', updated_at = $1, detail = 'the call stopped ringing' \
             WHERE call_id = $2 AND kind = 'ring' AND status = 'pending'",
        )
        .bind(end.at)
        .bind(call_id)
        .execute(&mut *tx)
        .await?;
        insert_deliveries(&mut tx, self.backend, followups).await?;
        insert_event(&mut tx, call_id, None, end.at, end.state.as_str(), end.detail.as_deref()).await?;
        if let Some(webhook) = webhook {
            insert_webhook(&mut tx, webhook, end.at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records that `user` declined `call_id` (with follow-up cancels to their other devices);
    /// returns whether every callee has now declined.
    pub async fn decline(
        &self,
        call_id: &str,
        user: &str,
        at: i64,
        followups: &[Delivery],
    ) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE call_callees SET declined_at = $1 WHERE call_id = $2 AND user_id = $3 AND declined_at IS NULL")
            .bind(at)
            .bind(call_id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', updated_at = $1, detail = 'the callee declined' \
             WHERE call_id = $2 AND user_id = $3 AND kind = 'ring' AND status = 'pending'",
        )
        .bind(at)
        .bind(call_id)
        .bind(user)
        .execute(&mut *tx)
        .await?;
        insert_deliveries(&mut tx, self.backend, followups).await?;
        insert_event(&mut tx, call_id, None, at, "declined_by_callee", Some(user)).await?;
        sqlx::query("UPDATE calls SET version = version + 1 WHERE call_id = $1")
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        let left =
            sqlx::query("SELECT COUNT(*) AS n FROM call_callees WHERE call_id = $1 AND declined_at IS NULL")
                .bind(call_id)
                .fetch_one(&mut *tx)
                .await?;
        let left: i64 = left.try_get("n")?;
        tx.commit().await?;
        Ok(left == 0)
    }

    /// Ringing calls whose deadline passed at `now`.
    pub async fn overdue_calls(&self, now: i64, limit: i64) -> Result<Vec<CallRecord>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE state = 'ringing' AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(now).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(call_record).collect()
    }

    /// The call's timeline, oldest first.
    pub async fn events(&self, call_id: &str) -> Result<Vec<CallEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, delivery_id, event, detail FROM call_events WHERE call_id = $1 ORDER BY at, event_id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallEvent {
                    at: r.try_get("at")?,
                    delivery_id: r.try_get("delivery_id")?,
                    event: r.try_get("event")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Adds timeline entries in one transaction: `(call_id, delivery_id, event, detail)` at `at`.
    pub async fn add_events(
        &self,
        at: i64,
        events: &[(String, Option<String>, &str, Option<String>)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        for (call_id, delivery_id, event, detail) in events {
            insert_event(&mut tx, call_id, delivery_id.as_deref(), at, event, detail.as_deref()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds one timeline entry.
    pub async fn add_event(
        &self,
        call_id: &str,
        delivery_id: Option<&str>,
        at: i64,
        event: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, call_id, delivery_id, at, event, detail).await
    }

    // ---- deliveries ----

    /// The deliveries of `call_id`.
    pub async fn deliveries(&self, call_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE call_id = $1 ORDER BY created_at, delivery_id"
        );
        let rows = sqlx::query(&sql).bind(call_id).fetch_all(&self.pool).await?;
        rows.iter().map(delivery).collect()
    }

    /// SQLite only: lapses claims left by a crashed run. A SQLite database has one server
    /// instance, so at start every claim is an orphan: it is taken over at once (as a delivery
    /// whose result is unknown) rather than when its lease runs out. Returns how many.
    pub async fn release_orphaned_claims(&self, now: i64) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let done = sqlx::query("UPDATE deliveries SET claimed_until = $1 WHERE status = 'sending'")
            .bind(now - 1)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "UPDATE webhook_outbox SET status = 'pending', claimed_until = NULL WHERE status = 'sending'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims for `instance`, until `now + lease`, up to `limit` deliveries that are due at `now`
    /// or whose claim by another instance lapsed (it died or lost touch; an instance never takes
    /// its own claims back: it still holds them). A lapsed claim comes back with the outcome
    /// [`RESULT_UNKNOWN`]: it may have been sent.
    pub async fn claim_due(
        &self,
        instance: &str,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let _writer = self.writer().await;
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE deliveries SET status = 'sending', claimed_by = $1, claimed_until = $2, \
                 attempts = attempts + 1, updated_at = $3, \
                 outcome = CASE WHEN status = 'sending' THEN '{RESULT_UNKNOWN}' ELSE outcome END \
             WHERE delivery_id IN (SELECT delivery_id FROM deliveries \
                 WHERE (status = 'pending' AND next_attempt_at <= $3) \
                    OR (status = 'sending' AND claimed_until < $3 AND COALESCE(claimed_by, '') <> $1) \
                 ORDER BY next_attempt_at LIMIT $4 {lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(instance)
            .bind(now + lease)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery).collect()
    }

    /// The heartbeat: extends every claim `instance` holds to `until`. Returns how many.
    pub async fn renew_claims(&self, instance: &str, until: i64) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "UPDATE deliveries SET claimed_until = $1 WHERE claimed_by = $2 AND status = 'sending'",
        )
        .bind(until)
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Lapses every claim `instance` still holds, so other instances take them over at once: the
    /// last step of a drain, for pushes whose result it could not record.
    pub async fn lapse_claims(&self, instance: &str, now: i64) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "UPDATE deliveries SET claimed_until = $1 WHERE claimed_by = $2 AND status = 'sending'",
        )
        .bind(now - 1)
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Where a call's rings stand, for a dispatcher deciding whether a queued ring may still go:
    /// whether it still rings, and which callees declined.
    pub async fn ring_state(&self, call_id: &str) -> Result<Option<(CallPhase, Vec<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.state, cc.user_id FROM calls c \
             LEFT JOIN call_callees cc ON cc.call_id = c.call_id AND cc.declined_at IS NOT NULL \
             WHERE c.call_id = $1",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let state = parse(&first.try_get::<String, _>("state")?, "call state")?;
        let declined =
            rows.iter().filter_map(|r| r.try_get::<Option<String>, _>("user_id").ok().flatten()).collect();
        Ok(Some((state, declined)))
    }

    /// When the next delivery is due (a pending one's next attempt, or a claim's lapse), if any.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE claimed_until + 1 END) AS due \
             FROM deliveries WHERE status = 'pending' OR status = 'sending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Writes a batch of send results of `instance` in one statement (an `UPDATE … FROM
    /// (VALUES …)`) and the timeline entries of attempts that did not deliver, in one
    /// transaction. A result whose claim another instance has taken over meanwhile is dropped:
    /// the delivery is that instance's now. A [`RELEASED`] result hands the delivery back
    /// unattempted.
    pub async fn finish_deliveries(
        &self,
        instance: &str,
        results: &[DeliveryResult],
    ) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        if results.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in results.chunks(500) {
            let sql = format!(
                "UPDATE deliveries SET status = v.column2, outcome = v.column3, detail = v.column4, \
                 next_attempt_at = v.column5, claimed_until = NULL, claimed_by = NULL, updated_at = v.column6, \
                 attempts = CASE WHEN v.column3 = '{RELEASED}' THEN deliveries.attempts - 1 ELSE deliveries.attempts END \
                 FROM (VALUES {}) AS v WHERE deliveries.delivery_id = v.column1 AND deliveries.status = 'sending' \
                 AND deliveries.claimed_by = v.column7",
                placeholders(self.backend, chunk.len(), 7)
            );
            let mut update = sqlx::query(&sql).persistent(false);
            for r in chunk {
                update = update
                    .bind(&r.delivery_id)
                    .bind(r.status.as_str())
                    .bind(&r.outcome)
                    .bind(&r.detail)
                    .bind(r.next_attempt_at)
                    .bind(r.at)
                    .bind(instance);
            }
            update.execute(&mut *tx).await?;
        }
        // A delivered push is on the timeline through its delivery row; only the attempts that
        // did not deliver need their own entries.
        for r in results.iter().filter(|r| r.status != DeliveryStatus::Delivered && r.outcome != RELEASED) {
            let event = format!("delivery_{}", r.outcome);
            insert_event(&mut tx, &r.call_id, Some(&r.delivery_id), r.at, &event, r.detail.as_deref())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- signing keys ----

    /// Every signing key, newest activation first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, seed, created_at, activates_at FROM signing_keys ORDER BY activates_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let seed: String = r.try_get("seed")?;
                let seed = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, seed)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| StoreError::Corrupt("signing key seed".into()))?;
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    seed,
                    created_at: r.try_get("created_at")?,
                    activates_at: r.try_get("activates_at")?,
                })
            })
            .collect()
    }

    /// Adds a signing key. With `only_if_none`, adds it only when there is no key at all (the
    /// first start of a fresh database, possibly racing another instance).
    pub async fn add_signing_key(&self, key: &StoredKey, only_if_none: bool) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        if only_if_none
            && sqlx::query("SELECT kid FROM signing_keys").fetch_optional(&mut *tx).await?.is_some()
        {
            tx.rollback().await;
            return Ok(());
        }
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at, activates_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.seed))
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- webhooks ----

    /// Claims due webhooks until `now + lease`.
    pub async fn claim_webhooks(&self, now: i64, lease: i64, limit: i64) -> Result<Vec<Webhook>, StoreError> {
        let _writer = self.writer().await;
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_outbox SET status = 'sending', claimed_until = $1, attempts = attempts + 1 \
             WHERE webhook_id IN (SELECT webhook_id FROM webhook_outbox \
                 WHERE (status = 'pending' AND next_attempt_at <= $2) OR (status = 'sending' AND claimed_until < $2) \
                 ORDER BY next_attempt_at LIMIT $3 {lock}) \
             RETURNING webhook_id, call_id, body, attempts"
        );
        let rows = sqlx::query(&sql).bind(now + lease).bind(now).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Webhook {
                    webhook_id: r.try_get("webhook_id")?,
                    call_id: r.try_get("call_id")?,
                    body: r.try_get("body")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Marks a webhook delivered, or schedules its retry (`None`: give up).
    pub async fn finish_webhook(
        &self,
        id: &str,
        retry_at: Option<i64>,
        delivered: bool,
    ) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        let status = match (delivered, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        sqlx::query(
            "UPDATE webhook_outbox SET status = $1, next_attempt_at = $2, claimed_until = NULL WHERE webhook_id = $3",
        )
        .bind(status)
        .bind(retry_at.unwrap_or(0))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a webhook on its own (changes outside a call transaction).
    pub async fn add_webhook(&self, webhook: &Webhook, now: i64) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        let mut conn = self.pool.acquire().await?;
        insert_webhook(&mut conn, webhook, now).await
    }
}

/// A new call and everything stored with it.
#[derive(Debug, Clone)]
pub struct NewCallRows {
    /// The call.
    pub call: CallRecord,
    /// Its callees.
    pub callees: Vec<String>,
    /// One ring delivery per live device.
    pub deliveries: Vec<Delivery>,
    /// The `call.ringing` webhook, if webhooks are on.
    pub webhook: Option<Webhook>,
}

async fn insert_deliveries(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    deliveries: &[Delivery],
) -> Result<(), StoreError> {
    // Many rows per statement: one round trip for a whole fan-out (19 values a row keeps a
    // chunk well under both engines' limits on bound values).
    for chunk in deliveries.chunks(500) {
        let sql = format!(
            "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES {}",
            placeholders(backend, chunk.len(), 19)
        );
        let mut insert = sqlx::query(&sql).persistent(false);
        for d in chunk {
            insert = insert
                .bind(&d.delivery_id)
                .bind(&d.call_id)
                .bind(&d.installation_id)
                .bind(&d.user_id)
                .bind(d.platform.as_str())
                .bind(&d.token)
                .bind(d.apns_environment.map(|e| e.as_str()))
                .bind(d.registered_at)
                .bind(d.kind.as_str())
                .bind(d.reason.map(|r| r.as_str()))
                .bind(d.status.as_str())
                .bind(d.attempts)
                .bind(d.next_attempt_at)
                .bind(d.claimed_until)
                .bind(&d.outcome)
                .bind(&d.detail)
                .bind(d.created_at)
                .bind(d.updated_at)
                .bind(&d.claimed_by);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `n` placeholders: `$1, $2, …` for PostgreSQL, `?, ?, …` for SQLite. Statements with many
/// values use positional `?` on SQLite because binding `$n` names costs a lookup per value.
fn placeholders_list(backend: Backend, n: usize) -> String {
    (1..=n).map(|i| placeholder(backend, i)).collect::<Vec<_>>().join(", ")
}

/// `rows` groups of `columns` placeholders, numbered in order: `($1, $2), ($3, $4), …`.
/// A statement built with it has a new text for every row count: run it `.persistent(false)`,
/// or every connection's statement cache keeps a prepared copy per row count (SQLite programs
/// of up to hundreds of KiB each, up to 100 per connection: most of the memory a ring burst
/// left behind).
fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns).map(|c| placeholder(backend, r * columns + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn placeholder(backend: Backend, i: usize) -> String {
    match backend {
        Backend::Postgres => format!("${i}"),
        Backend::Sqlite => "?".to_owned(),
    }
}

async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    call_id: &str,
    delivery_id: Option<&str>,
    at: i64,
    event: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO call_events (event_id, call_id, delivery_id, at, event, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(new_id())
        .bind(call_id)
        .bind(delivery_id)
        .bind(at)
        .bind(event)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_webhook(
    conn: &mut sqlx::AnyConnection,
    webhook: &Webhook,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_outbox (webhook_id, call_id, body, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
    )
    .bind(&webhook.webhook_id)
    .bind(&webhook.call_id)
    .bind(&webhook.body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives `inst` its token and alert token alone: every other installation holding the token is
/// removed, and the alert token is cleared from any other (a token rings one installation, an
/// alert token alerts one).
async fn take_tokens(conn: &mut sqlx::AnyConnection, inst: &Installation) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM installations WHERE platform = $1 AND token = $2 \
         AND NOT (user_id = $3 AND installation_id = $4)",
    )
    .bind(inst.platform.as_str())
    .bind(&inst.token)
    .bind(&inst.user_id)
    .bind(&inst.installation_id)
    .execute(&mut *conn)
    .await?;
    if let Some(alert_token) = &inst.alert_token {
        sqlx::query(
            "UPDATE installations SET alert_token = NULL WHERE platform = $1 AND alert_token = $2 \
             AND NOT (user_id = $3 AND installation_id = $4)",
        )
        .bind(inst.platform.as_str())
        .bind(alert_token)
        .bind(&inst.user_id)
        .bind(&inst.installation_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn parse<T: FromStr>(value: &str, what: &str) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt(format!("{what} `{value}`")))
}

fn apns_environment(value: Option<String>) -> Result<Option<ApnsEnvironment>, StoreError> {
    match value.as_deref() {
        None => Ok(None),
        Some("sandbox") => Ok(Some(ApnsEnvironment::Sandbox)),
        Some("production") => Ok(Some(ApnsEnvironment::Production)),
        Some(other) => Err(StoreError::Corrupt(format!("apns environment `{other}`"))),
    }
}

fn cancel_reason(value: Option<String>) -> Result<Option<CancelReason>, StoreError> {
    value
        .map(|v| {
            CancelReason::ALL
                .into_iter()
                .find(|r| r.as_str() == v)
                .ok_or_else(|| StoreError::Corrupt(format!("cancel reason `{v}`")))
        })
        .transpose()
}

fn installation(r: &AnyRow) -> Result<Installation, StoreError> {
    Ok(Installation {
        installation_id: r.try_get("installation_id")?,
        user_id: r.try_get("user_id")?,
        platform: parse(&r.try_get::<String, _>("platform")?, "platform")?,
        token: r.try_get("token")?,
        apns_environment: apns_environment(r.try_get("apns_environment")?)?,
        app_id: r.try_get("app_id")?,
        alert_token: r.try_get("alert_token")?,
        ttl_seconds: r.try_get("ttl_seconds")?,
        registered_at: r.try_get("registered_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

fn call_record(r: &AnyRow) -> Result<CallRecord, StoreError> {
    let data: String = r.try_get("data")?;
    Ok(CallRecord {
        call_id: r.try_get("call_id")?,
        caller_id: r.try_get("caller_id")?,
        caller_name: r.try_get("caller_name")?,
        video: r.try_get::<i64, _>("video")? != 0,
        data: serde_json::from_str(&data).map_err(|_| StoreError::Corrupt("call data".into()))?,
        state: parse(&r.try_get::<String, _>("state")?, "call state")?,
        reason: cancel_reason(r.try_get("reason")?)?,
        answered_by: r.try_get("answered_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        ended_at: r.try_get("ended_at")?,
        version: r.try_get("version")?,
    })
}

fn delivery(r: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        delivery_id: r.try_get("delivery_id")?,
        call_id: r.try_get("call_id")?,
        installation_id: r.try_get("installation_id")?,
        user_id: r.try_get("user_id")?,
        platform: parse(&r.try_get::<String, _>("platform")?, "platform")?,
        token: r.try_get("token")?,
        apns_environment: apns_environment(r.try_get("apns_environment")?)?,
        registered_at: r.try_get("registered_at")?,
        kind: parse(&r.try_get::<String, _>("kind")?, "push kind")?,
        reason: cancel_reason(r.try_get("reason")?)?,
        status: parse(&r.try_get::<String, _>("status")?, "delivery status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        claimed_until: r.try_get("claimed_until")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        claimed_by: r.try_get("claimed_by")?,
    })
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
