//! Calls, their callees and their timeline.

use super::deliveries::{bind_delivery, insert_deliveries};
use super::webhooks::insert_webhook;
use super::*;

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
    /// Timeline entries about its deliveries known when it rings (a device whose notifications
    /// are off): `(delivery_id, event, detail)`.
    pub notes: Vec<(String, &'static str, String)>,
}

pub(super) async fn insert_event(
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

pub(super) fn cancel_reason(value: Option<String>) -> Result<Option<CancelReason>, StoreError> {
    value
        .map(|v| {
            CancelReason::ALL
                .into_iter()
                .find(|r| r.as_str() == v)
                .ok_or_else(|| StoreError::Corrupt(format!("cancel reason `{v}`")))
        })
        .transpose()
}

pub(super) fn call_record(r: &AnyRow) -> Result<CallRecord, StoreError> {
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

/// Whether [`Store::create_calls`] may store `calls` in one round trip: a few deliveries in all (a
/// larger fan-out's rows go in prepared chunks, and one round trip more or less is nothing
/// beside them) and no call id twice.
fn fits_one_script(calls: &[NewCallRows]) -> bool {
    let deliveries: usize = calls.iter().map(|c| c.deliveries.len()).sum();
    let ids: std::collections::HashSet<&str> = calls.iter().map(|c| c.call.call_id.as_str()).collect();
    deliveries <= super::ROWS_PER_STATEMENT && ids.len() == calls.len()
}

/// Binds the [`CALL_COLUMNS`] of `call`, in order.
fn bind_call<'q>(query: AnyQuery<'q>, call: &'q CallRecord) -> AnyQuery<'q> {
    query
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
        .bind(call.version)
}

/// Binds a new timeline entry of `call` (`event_id, call_id, delivery_id, at, event, detail`),
/// at the call's creation.
fn bind_event<'q>(
    query: AnyQuery<'q>,
    call: &'q CallRecord,
    delivery_id: Option<&'q str>,
    event: &'q str,
    detail: String,
) -> AnyQuery<'q> {
    query.bind(new_id()).bind(&call.call_id).bind(delivery_id).bind(call.created_at).bind(event).bind(detail)
}

/// The rows new calls add beside their own, in the order [`NewRows::bind`] binds them.
struct NewRows<'a> {
    calls: &'a [NewCallRows],
    /// `(call_id, user_id)`.
    callees: Vec<(&'a str, &'a str)>,
    deliveries: Vec<&'a Delivery>,
    /// `ringing`, then the notes on the call's deliveries: `(call, delivery_id, event, detail)`.
    events: Vec<(&'a CallRecord, Option<&'a str>, &'static str, String)>,
    /// Each with its call's creation time.
    webhooks: Vec<(&'a Webhook, i64)>,
}

impl<'a> NewRows<'a> {
    fn of(calls: &'a [NewCallRows]) -> Self {
        let events = calls
            .iter()
            .flat_map(|c| {
                let detail = crate::api::count(c.deliveries.len() as u64, "device", "devices");
                std::iter::once((&c.call, None, "ringing", detail)).chain(
                    c.notes
                        .iter()
                        .map(|(id, event, detail)| (&c.call, Some(id.as_str()), *event, detail.clone())),
                )
            })
            .collect();
        NewRows {
            calls,
            callees: calls
                .iter()
                .flat_map(|c| c.callees.iter().map(|u| (c.call.call_id.as_str(), u.as_str())))
                .collect(),
            deliveries: calls.iter().flat_map(|c| c.deliveries.iter()).collect(),
            events,
            webhooks: calls.iter().filter_map(|c| Some((c.webhook.as_ref()?, c.call.created_at))).collect(),
        }
    }

    /// A lone ring's statement has a handful of shapes: prepared once per connection and kept.
    fn lone(&self) -> bool {
        self.calls.len() == 1
            && self.deliveries.len() <= 4
            && self.callees.len() <= 4
            && self.events.len() <= 5
    }

    /// Binds calls, callees, deliveries, timeline entries and webhooks (4 values each), in order.
    fn bind<'q>(self, mut query: AnyQuery<'q>) -> AnyQuery<'q>
    where
        'a: 'q,
    {
        for c in self.calls {
            query = bind_call(query, &c.call);
        }
        for (call_id, user) in self.callees {
            query = query.bind(call_id).bind(user);
        }
        for d in self.deliveries {
            query = bind_delivery(query, d);
        }
        for (call, delivery_id, event, detail) in self.events {
            query = bind_event(query, call, delivery_id, event, detail);
        }
        for (webhook, at) in self.webhooks {
            query = query.bind(&webhook.webhook_id).bind(&webhook.call_id).bind(&webhook.body).bind(at);
        }
        query
    }
}

/// Inserts pending webhooks from `values`, rows of (webhook id, call id, body, time), `join`ed
/// to what decides which are inserted.
fn webhooks_insert(values: &str, join: &str) -> String {
    format!(
        "INSERT INTO webhook_outbox (webhook_id, call_id, body, status, attempts, next_attempt_at, created_at) \
         SELECT v.column1, v.column2, v.column3, 'pending', 0, v.column4, v.column4 FROM (VALUES {values}) AS v {join}"
    )
}

impl Store {
    /// Stores new calls, each with its callees, first deliveries and webhook, in one
    /// transaction, before any push is sent: many calls per commit when many arrive at once.
    /// Returns, per call, whether it was created (`false`: the call id is taken).
    pub async fn create_calls(&self, calls: &[NewCallRows]) -> Result<Vec<bool>, StoreError> {
        let _storing = StoringCalls::start(&self.storing_calls);
        let _writer = self.writer().await;
        if fits_one_script(calls) {
            match self.backend {
                Backend::Postgres => return self.create_calls_in_one_statement(calls).await,
                Backend::Sqlite => match self.create_calls_in_one_script(calls).await {
                    Ok(()) => return Ok(vec![true; calls.len()]),
                    // A call id is taken: find out which, below.
                    Err(e) if is_unique_violation(&e) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
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
            insert = bind_call(insert, &c.call);
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
        let deliveries: Vec<&Delivery> = new.iter().flat_map(|c| c.deliveries.iter()).collect();
        insert_deliveries(&mut tx, self.backend, &deliveries).await?;
        for c in &new {
            let detail = crate::api::count(c.deliveries.len() as u64, "device", "devices");
            insert_event(&mut tx, &c.call.call_id, None, c.call.created_at, "ringing", Some(&detail)).await?;
            for (delivery_id, event, detail) in &c.notes {
                insert_event(
                    &mut tx,
                    &c.call.call_id,
                    Some(delivery_id),
                    c.call.created_at,
                    event,
                    Some(detail),
                )
                .await?;
            }
            if let Some(webhook) = &c.webhook {
                insert_webhook(&mut tx, webhook, c.call.created_at).await?;
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    /// SQLite: stores `calls` (see [`fits_one_script`]) as one script, `BEGIN IMMEDIATE` to
    /// `COMMIT`, sent to SQLite's thread at once. sqlx runs each statement as a round trip to that
    /// thread, 40 to 90 µs apiece on a small machine, and a lone ring's transaction is eight of
    /// them: most of the time from `POST /v1/calls` to the push. Fails with a unique violation,
    /// changing nothing, when a call id is taken.
    async fn create_calls_in_one_script(&self, calls: &[NewCallRows]) -> Result<(), sqlx::Error> {
        let rows = NewRows::of(calls);
        let values = |n: usize, columns: usize| placeholders(Backend::Sqlite, n, columns);
        let mut sql = format!(
            "BEGIN IMMEDIATE; INSERT INTO calls ({CALL_COLUMNS}) VALUES {}; \
             INSERT INTO call_callees (call_id, user_id) VALUES {};",
            values(calls.len(), 12),
            values(rows.callees.len(), 2)
        );
        if !rows.deliveries.is_empty() {
            sql += &format!(
                " INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES {};",
                values(rows.deliveries.len(), DELIVERY_COLUMN_COUNT)
            );
        }
        sql += &format!(
            " INSERT INTO call_events (event_id, call_id, delivery_id, at, event, detail) VALUES {};",
            values(rows.events.len(), 6)
        );
        if !rows.webhooks.is_empty() {
            sql += &format!(" {};", webhooks_insert(&values(rows.webhooks.len(), 4), ""));
        }
        sql += " COMMIT;";
        let lone = rows.lone();
        let script = rows.bind(sqlx::query(&sql).persistent(lone));
        let mut tx = self.write_script(&self.ring_pool).await?;
        match script.execute(&mut *tx).await {
            Ok(_) => {
                tx.committed();
                Ok(())
            }
            Err(e) => {
                if !is_unique_violation(&e) {
                    tx.failed();
                }
                tx.roll_back_script().await;
                Err(e)
            }
        }
    }

    /// PostgreSQL: stores `calls` (see [`fits_one_script`]) with one statement, whose parts
    /// insert a call's other rows only if its own insert did (a call id may be taken): one round
    /// trip and one commit instead of eight round trips. Returns, per call, whether it was
    /// created.
    async fn create_calls_in_one_statement(&self, calls: &[NewCallRows]) -> Result<Vec<bool>, StoreError> {
        let rows = NewRows::of(calls);
        // `$n` numbered in the order of the text, which is the order of the binds.
        let mut next = 0;
        let mut values = |rows: usize, columns: usize| {
            let mut out = String::new();
            for r in 0..rows {
                out.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..columns {
                    next += 1;
                    out.push_str(&format!("{}${next}", if c == 0 { "" } else { ", " }));
                }
                out.push(')');
            }
            out
        };
        let mut sql = format!(
            "WITH c AS (INSERT INTO calls ({CALL_COLUMNS}) VALUES {} ON CONFLICT (call_id) DO NOTHING \
             RETURNING call_id), \
             callees AS (INSERT INTO call_callees (call_id, user_id) SELECT v.* FROM (VALUES {}) AS v \
             JOIN c ON c.call_id = v.column1)",
            values(calls.len(), 12),
            values(rows.callees.len(), 2)
        );
        if !rows.deliveries.is_empty() {
            sql += &format!(
                ", d AS (INSERT INTO deliveries ({DELIVERY_COLUMNS}) SELECT v.* FROM (VALUES {}) AS v \
                 JOIN c ON c.call_id = v.column2)",
                values(rows.deliveries.len(), DELIVERY_COLUMN_COUNT)
            );
        }
        sql += &format!(
            ", e AS (INSERT INTO call_events (event_id, call_id, delivery_id, at, event, detail) \
             SELECT v.* FROM (VALUES {}) AS v JOIN c ON c.call_id = v.column2)",
            values(rows.events.len(), 6)
        );
        if !rows.webhooks.is_empty() {
            let insert = webhooks_insert(&values(rows.webhooks.len(), 4), "JOIN c ON c.call_id = v.column2");
            sql += &format!(", w AS ({insert})");
        }
        sql += " SELECT call_id FROM c";
        let lone = rows.lone();
        let statement = rows.bind(sqlx::query(&sql).persistent(lone));
        let now = crate::time::now_ms();
        let created = match statement.fetch_all(&self.ring_pool).await {
            Ok(created) => {
                self.write_health.succeeded(now);
                created
            }
            Err(e) => {
                self.write_health.failed(now);
                return Err(e.into());
            }
        };
        let created: std::collections::HashSet<String> =
            created.iter().filter_map(|r| r.try_get("call_id").ok()).collect();
        Ok(calls.iter().map(|c| created.contains(&c.call.call_id)).collect())
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
        insert_deliveries(&mut tx, self.backend, &followups.iter().collect::<Vec<_>>()).await?;
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
        insert_deliveries(&mut tx, self.backend, &followups.iter().collect::<Vec<_>>()).await?;
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
    pub async fn events(&self, call_id: &str) -> Result<Vec<TimelineEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, delivery_id, event, detail FROM call_events WHERE call_id = $1 ORDER BY at, event_id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineEvent {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CallPhase, DeliveryStatus, PushKind};
    use callpush_proto::model::Platform;

    fn call(id: &str, devices: usize, webhook: bool) -> NewCallRows {
        let call = CallRecord {
            call_id: id.into(),
            caller_id: "alice".into(),
            caller_name: Some("Alice".into()),
            video: true,
            data: [("room".to_string(), "r-1".to_string())].into(),
            state: CallPhase::Ringing,
            reason: None,
            answered_by: None,
            created_at: 1_000,
            expires_at: 31_000,
            ended_at: None,
            version: 1,
        };
        let deliveries = (0..devices)
            .map(|i| Delivery {
                delivery_id: format!("{id}-d{i}"),
                call_id: id.into(),
                installation_id: format!("bob-{i}"),
                user_id: "bob".into(),
                platform: Platform::Fcm,
                token: format!("token-{i}"),
                apns_environment: None,
                registered_at: 500,
                device_key: (i == 1).then(|| "x".repeat(43)),
                kind: PushKind::Ring,
                reason: None,
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: 1_000,
                claimed_until: None,
                claimed_by: None,
                outcome: None,
                detail: None,
                created_at: 1_000,
                updated_at: 1_000,
            })
            .collect();
        let webhook = webhook.then(|| Webhook {
            webhook_id: format!("{id}-w"),
            call_id: id.into(),
            body: "{}".into(),
            attempts: 0,
        });
        let notes = vec![(format!("{id}-d0"), "notifications_off", "off since 900".to_string())];
        NewCallRows { call, callees: vec!["bob".into(), "carol".into()], deliveries, webhook, notes }
    }

    /// A fresh SQLite store, and a fresh PostgreSQL one when the tests have a server
    /// (`CALLPUSH_TEST_POSTGRES_URL`, as the integration tests).
    async fn stores() -> Vec<(tempfile::TempDir, Store)> {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("calls.db").display());
        let mut stores = vec![(dir, Store::connect(&url, 4).await.unwrap())];
        if let Some(admin) = std::env::var("CALLPUSH_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
            sqlx::any::install_default_drivers();
            let name = format!("callpush_test_{}", new_id());
            let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            let url = format!("{base}/{name}");
            stores.push((tempfile::tempdir().unwrap(), Store::connect(&url, 4).await.unwrap()));
        }
        stores
    }

    /// What a call left in the database, as comparable values.
    async fn stored(
        store: &Store,
        id: &str,
    ) -> (Option<CallRecord>, Vec<Delivery>, Vec<(Option<String>, String)>) {
        // Entries of one instant come in no set order.
        let mut events: Vec<_> =
            store.events(id).await.unwrap().into_iter().map(|e| (e.delivery_id, e.event)).collect();
        events.sort();
        (store.call(id).await.unwrap(), store.deliveries(id).await.unwrap(), events)
    }

    #[tokio::test]
    async fn a_ring_survives_its_kept_connection_being_closed() {
        for (_dir, store) in stores().await {
            let users = ["bob".to_string()];
            store.live_installations(&users, 1_000).await.unwrap();
            if store.backend != Backend::Postgres {
                continue;
            }
            // What a database restart or an idle timeout does: every session but this one ends,
            // the connection kept for rings among them.
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .execute(&mut *store.pool.acquire().await.unwrap())
            .await
            .unwrap();
            store.live_installations(&users, 1_000).await.unwrap();
            assert_eq!(store.create_calls(&[call("k", 1, false)]).await.unwrap(), [true]);
        }
    }

    #[tokio::test]
    async fn one_round_trip_stores_what_the_statement_by_statement_path_stores() {
        for (_dir, store) in stores().await {
            // Two calls of 2 devices fit one script; 40 devices do not.
            let small = [call("a", 2, true), call("b", 2, false)];
            assert!(fits_one_script(&small));
            assert_eq!(store.create_calls(&small).await.unwrap(), [true, true]);
            let large = [call("c", 40, true)];
            assert!(!fits_one_script(&large));
            assert_eq!(store.create_calls(&large).await.unwrap(), [true]);

            for (rows, id) in [(&small[0], "a"), (&large[0], "c")] {
                let (record, deliveries, events) = stored(&store, id).await;
                assert_eq!(record.as_ref(), Some(&rows.call));
                assert_eq!(deliveries.len(), rows.deliveries.len());
                assert_eq!(deliveries[0], rows.deliveries[0]);
                // One with a device key (wire v2) keeps it.
                assert_eq!(deliveries[1], rows.deliveries[1]);
                assert!(deliveries[1].device_key.is_some());
                assert_eq!(
                    events,
                    [(None, "ringing".into()), (Some(format!("{id}-d0")), "notifications_off".into())]
                );
                assert!(store.is_callee(id, "carol").await.unwrap());
            }
            let webhooks: Vec<String> = store
                .claim_webhooks(1_000, 1_000, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|w| w.webhook_id)
                .collect();
            assert_eq!(webhooks.len(), 2);
            assert!(webhooks.contains(&"a-w".to_string()) && webhooks.contains(&"c-w".to_string()));
        }
    }

    #[tokio::test]
    async fn a_taken_call_id_stores_nothing_of_its_call_and_the_rest_is_stored() {
        for (_dir, store) in stores().await {
            assert_eq!(store.create_calls(&[call("a", 1, false)]).await.unwrap(), [true]);
            let before = stored(&store, "a").await;
            let mut again = call("a", 3, true);
            again.call.caller_id = "mallory".into();
            assert_eq!(store.create_calls(&[call("b", 1, false), again]).await.unwrap(), [true, false]);
            assert_eq!(stored(&store, "a").await, before, "the taken call is as it was");
            assert_eq!(stored(&store, "b").await.1.len(), 1);
            // The connection the failed script used works on.
            for _ in 0..8 {
                assert!(store.create_calls(&[call(&new_id(), 1, false)]).await.unwrap()[0]);
            }
            assert!(store.claim_webhooks(1_000, 1_000, 10).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn claim_stored_claims_every_id_it_is_given() {
        for (_dir, store) in stores().await {
            store.create_calls(&[call("a", 40, false)]).await.unwrap();
            let ids: Vec<String> = (0..40).map(|i| format!("a-d{i}")).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut claimed = store.claim_stored("me", &ids, 2_000, 10_000).await.unwrap();
            claimed.sort_by_key(|id| id[3..].parse::<u32>().unwrap());
            assert_eq!(claimed, ids);
            let deliveries = store.deliveries("a").await.unwrap();
            assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Sending
                && d.claimed_by.as_deref() == Some("me")
                && d.claimed_until == Some(12_000)
                && d.attempts == 1));
            assert!(store.claim_stored("other", &ids, 2_000, 10_000).await.unwrap().is_empty());
        }
    }
}
