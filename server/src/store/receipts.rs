//! Push Kit receipts: the nonces of accepted receipt requests (replays are refused across
//! instances) and the delivery a receipt speaks of.

use callpush_proto::model::Platform;

use super::*;
use crate::domain::PushKind;

impl Store {
    /// Records the nonce of a receipt request, remembered until `expires_at` (ms); `false` when
    /// it was seen before and is still remembered at `now`: a replay.
    pub async fn record_receipt_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        // A row whose time is up is reused: its nonce can no longer pass the skew check anyway.
        let done = sqlx::query(
            "INSERT INTO receipt_nonces (nonce, expires_at) VALUES ($1, $2) \
             ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE receipt_nonces.expires_at <= $3",
        )
        .bind(nonce)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets a nonce recorded for a request that could not be processed, so the provider's
    /// retry of the same request is not taken for a replay.
    pub async fn forget_receipt_nonce(&self, nonce: &str) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM receipt_nonces WHERE nonce = $1").bind(nonce).execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes the nonces whose time is up at `now`; returns how many.
    pub async fn purge_receipt_nonces(&self, now: i64) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM receipt_nonces WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The delivery `delivery_id` to `token` of `platform`, as `(call id, delivery id)`, if
    /// any: a push to a wire v2 installation carries its delivery id as its provider tag
    /// (Push Kit `biTag`) instead of the call id, which the provider must not read.
    pub async fn delivery_by_tag(
        &self,
        delivery_id: &str,
        platform: Platform,
        token: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT call_id, delivery_id FROM deliveries WHERE delivery_id = $1 AND platform = $2 AND token = $3",
        )
        .bind(delivery_id)
        .bind(platform.as_str())
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("call_id")?, r.try_get("delivery_id")?))).transpose()
    }

    /// The delivery of `call_id` of `kind` to `token` of `platform`, if any (the latest).
    pub async fn delivery_to_token(
        &self,
        call_id: &str,
        platform: Platform,
        token: &str,
        kind: PushKind,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT delivery_id FROM deliveries WHERE call_id = $1 AND platform = $2 AND token = $3 \
             AND kind = $4 ORDER BY created_at DESC, delivery_id LIMIT 1",
        )
        .bind(call_id)
        .bind(platform.as_str())
        .bind(token)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("delivery_id")).transpose().map_err(Into::into)
    }
}
