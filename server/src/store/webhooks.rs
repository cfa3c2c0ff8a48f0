//! The webhook outbox.

use super::*;

pub(super) async fn insert_webhook(
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

impl Store {
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
