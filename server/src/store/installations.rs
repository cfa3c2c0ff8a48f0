//! Installations: registration, token moves and their proof, pruning, expiry.

use super::*;

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
        installation: Box<Installation>,
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

/// Gives `inst` its token and alert token alone: every other installation holding the token is
/// removed, and the alert token is cleared from any other (a token rings one installation, an
/// alert token alerts one).
pub(super) async fn take_tokens(
    conn: &mut sqlx::AnyConnection,
    inst: &Installation,
) -> Result<(), StoreError> {
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

pub(super) fn apns_environment(value: Option<String>) -> Result<Option<ApnsEnvironment>, StoreError> {
    match value.as_deref() {
        None => Ok(None),
        Some("sandbox") => Ok(Some(ApnsEnvironment::Sandbox)),
        Some("production") => Ok(Some(ApnsEnvironment::Production)),
        Some(other) => Err(StoreError::Corrupt(format!("apns environment `{other}`"))),
    }
}

pub(super) fn installation(r: &AnyRow) -> Result<Installation, StoreError> {
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
        notifications: notifications(r)?,
        device_key: r.try_get("device_key")?,
        device_key_id: r.try_get("device_key_id")?,
    })
}

/// The notification state of an installation row read with [`NOTIFICATION_COLUMNS`].
fn notifications(r: &AnyRow) -> Result<Option<Notifications>, StoreError> {
    let enabled: Option<i64> = r.try_get("notifications_enabled")?;
    let source: Option<String> = r.try_get("notifications_source")?;
    let at: Option<i64> = r.try_get("notifications_at")?;
    match (enabled, source, at) {
        (Some(enabled), Some(source), Some(at)) => Ok(Some(Notifications {
            enabled: enabled != 0,
            source: parse(&source, "notifications source")?,
            at,
        })),
        _ => Ok(None),
    }
}

impl Store {
    /// The installation `id` of `user_id`, expired or not, verified or not.
    pub async fn installation(&self, user_id: &str, id: &str) -> Result<Option<Installation>, StoreError> {
        let sql = format!(
            "SELECT {INSTALLATION_COLUMNS}, {NOTIFICATION_COLUMNS} FROM installations \
             WHERE user_id = $1 AND installation_id = $2"
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
    /// Either way the registration's device key replaces the stored one: a registration
    /// without one clears it, and the installation is back on wire v1.
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (user_id, installation_id) DO UPDATE SET platform = excluded.platform, \
             token = excluded.token, apns_environment = excluded.apns_environment, app_id = excluded.app_id, \
             ttl_seconds = excluded.ttl_seconds, registered_at = excluded.registered_at, \
             expires_at = excluded.expires_at, alert_token = excluded.alert_token, \
             device_key = excluded.device_key, device_key_id = excluded.device_key_id, \
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
            .bind(&inst.device_key)
            .bind(&inst.device_key_id)
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
            "SELECT {INSTALLATION_COLUMNS}, {NOTIFICATION_COLUMNS}, verify_nonce, verify_expires_at FROM installations \
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
        Ok(Verified::Moved { installation: Box::new(inst), moves })
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

    /// Every unexpired installation of `users`: the read before a new call is stored.
    pub async fn live_installations(
        &self,
        users: &[String],
        now: i64,
    ) -> Result<Vec<Installation>, StoreError> {
        // New calls' connection when no call is being stored and it is free: the commit that
        // follows finds it awake. Under load the read would only hold up the next commit.
        let ring_connection = match self.storing_calls.load(Ordering::Relaxed) {
            0 => self.ring_pool.try_acquire(),
            _ => None,
        };
        if let Some(mut conn) = ring_connection {
            match live_installations_on(&mut conn, users, now).await {
                Ok(found) => return Ok(found),
                // Unlike `acquire`, `try_acquire` does not test the connection first, and one
                // kept for rings may have been closed since (a database restart, an idle
                // timeout of the database or a proxy): read again on a tested one.
                Err(e) => {
                    tracing::debug!(error = %e, "reading on the ring connection failed; reading on the pool");
                    conn.close_on_drop();
                }
            }
        }
        live_installations_on(&mut *self.pool.acquire().await?, users, now).await
    }

    /// Deletes every installation of `user_id`, expired or not, verified or not; returns how
    /// many.
    pub async fn delete_user_installations(&self, user_id: &str) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM installations WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The installations (user id, installation id) holding `token` of `platform`, live or not.
    pub async fn installations_with_token(
        &self,
        platform: callpush_proto::model::Platform,
        token: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, installation_id FROM installations WHERE platform = $1 AND token = $2 \
             ORDER BY user_id, installation_id",
        )
        .bind(platform.as_str())
        .bind(token)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("user_id")?, r.try_get("installation_id")?))).collect()
    }

    /// Records `state` as the notification permission of `user_id`'s installation `id` unless
    /// a later report is stored. `None`: the user has no such installation; otherwise whether
    /// it was recorded.
    pub async fn set_notifications(
        &self,
        user_id: &str,
        id: &str,
        state: Notifications,
    ) -> Result<Option<bool>, StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.begin_write().await?;
        let exists =
            sqlx::query("SELECT 1 AS one FROM installations WHERE user_id = $1 AND installation_id = $2")
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !exists {
            tx.rollback().await;
            return Ok(None);
        }
        let done = sqlx::query(
            "UPDATE installations SET notifications_enabled = $1, notifications_source = $2, \
             notifications_at = $3 WHERE user_id = $4 AND installation_id = $5 \
             AND (notifications_at IS NULL OR notifications_at <= $3)",
        )
        .bind(i64::from(state.enabled))
        .bind(state.source.as_str())
        .bind(state.at)
        .bind(user_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(done.rows_affected() > 0))
    }

    /// Records `state` for every installation holding `token` of `platform`, unless a later
    /// report is stored for it; returns how many changed.
    pub async fn set_notifications_for_token(
        &self,
        platform: callpush_proto::model::Platform,
        token: &str,
        state: Notifications,
    ) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "UPDATE installations SET notifications_enabled = $1, notifications_source = $2, \
             notifications_at = $3 WHERE platform = $4 AND token = $5 \
             AND (notifications_at IS NULL OR notifications_at <= $3)",
        )
        .bind(i64::from(state.enabled))
        .bind(state.source.as_str())
        .bind(state.at)
        .bind(platform.as_str())
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
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
}

/// [`Store::live_installations`] on `conn`.
async fn live_installations_on(
    conn: &mut sqlx::AnyConnection,
    users: &[String],
    now: i64,
) -> Result<Vec<Installation>, StoreError> {
    let sql = format!(
        "SELECT {INSTALLATION_COLUMNS}, {NOTIFICATION_COLUMNS} FROM installations \
         WHERE user_id = $1 AND expires_at > $2 AND verify_nonce IS NULL ORDER BY installation_id"
    );
    let mut out = Vec::new();
    for user in users {
        for row in sqlx::query(&sql).bind(user).bind(now).fetch_all(&mut *conn).await? {
            out.push(installation(&row)?);
        }
    }
    Ok(out)
}
