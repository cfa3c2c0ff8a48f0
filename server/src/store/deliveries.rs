//! Deliveries: claims, their renewal and lapse, and results.

use super::calls::cancel_reason;
use super::calls::insert_event;
use super::installations::apns_environment;
use super::*;

pub(super) async fn insert_deliveries(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    deliveries: &[&Delivery],
) -> Result<(), StoreError> {
    static FULL: [std::sync::OnceLock<String>; 2] = [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    // Many rows per statement, each full chunk's statement prepared once per connection.
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let (sql, persistent) = chunk_sql(&FULL, backend, chunk.len(), DELIVERY_COLUMN_COUNT, |values| {
            format!("INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES {values}")
        });
        let mut insert = sqlx::query(&sql).persistent(persistent);
        for d in chunk {
            insert = bind_delivery(insert, d);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Binds the [`DELIVERY_COLUMNS`] of `d`, in order.
pub(super) fn bind_delivery<'q>(query: AnyQuery<'q>, d: &'q Delivery) -> AnyQuery<'q> {
    query
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
        .bind(&d.claimed_by)
        .bind(&d.device_key)
}

pub(super) fn delivery(r: &AnyRow) -> Result<Delivery, StoreError> {
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
        device_key: r.try_get("device_key")?,
    })
}

impl Store {
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

    /// Claims for `instance`, until `now + lease`, those of `ids` (new deliveries this instance
    /// stored) that are still as they were stored: pending, never attempted and due. Others
    /// (claimed by another instance meanwhile) are left alone. Returns the ids claimed: each is
    /// now `Sending`, attempt 1, as [`Store::claim_due`] would have left it.
    pub async fn claim_stored(
        &self,
        instance: &str,
        ids: &[&str],
        now: i64,
        lease: i64,
    ) -> Result<Vec<String>, StoreError> {
        let _writer = self.writer().await;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Placeholders numbered in the order they appear: sqlx binds SQLite's `?` by its own
        // count, whatever number SQLite itself would give it after a `$3`.
        let mut sql = String::with_capacity(400 + ids.len() * 6);
        let mut next = 0;
        let mut placeholder = |sql: &mut String| {
            next += 1;
            push_placeholder(sql, self.backend, next);
        };
        sql.push_str("UPDATE deliveries SET status = 'sending', claimed_by = ");
        placeholder(&mut sql);
        sql.push_str(", claimed_until = ");
        placeholder(&mut sql);
        sql.push_str(", attempts = attempts + 1, updated_at = ");
        placeholder(&mut sql);
        sql.push_str(" WHERE delivery_id IN (");
        for i in 0..ids.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            placeholder(&mut sql);
        }
        // Found by their ids: SQLite would rather scan every pending delivery by `deliveries_due`
        // (a whole fan-out per claim) unless told that `status` and `next_attempt_at` are only
        // checked (`+`).
        let plus = match self.backend {
            Backend::Sqlite => "+",
            Backend::Postgres => "",
        };
        sql.push_str(&format!(
            ") AND {plus}status = 'pending' AND attempts = 0 AND {plus}next_attempt_at <= "
        ));
        placeholder(&mut sql);
        sql.push_str(" RETURNING delivery_id");
        let mut query = sqlx::query(&sql).persistent(false).bind(instance).bind(now + lease).bind(now);
        for id in ids {
            query = query.bind(*id);
        }
        let query = query.bind(now);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("delivery_id")?)).collect()
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
        static FULL: [std::sync::OnceLock<String>; 2] =
            [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
        let mut tx = self.begin_write().await?;
        for chunk in results.chunks(ROWS_PER_STATEMENT) {
            let (sql, persistent) = chunk_sql(&FULL, self.backend, chunk.len(), 7, |values| {
                format!(
                    "UPDATE deliveries SET status = v.column2, outcome = v.column3, detail = v.column4, \
                     next_attempt_at = v.column5, claimed_until = NULL, claimed_by = NULL, updated_at = v.column6, \
                     attempts = CASE WHEN v.column3 = '{RELEASED}' THEN deliveries.attempts - 1 ELSE deliveries.attempts END \
                     FROM (VALUES {values}) AS v WHERE deliveries.delivery_id = v.column1 AND deliveries.status = 'sending' \
                     AND deliveries.claimed_by = v.column7"
                )
            });
            let mut update = sqlx::query(&sql).persistent(persistent);
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
}
