//! Counters per UTC day shared by every instance (Push Kit test messages per project).

use super::*;

impl Store {
    /// Takes `n` from the counter `counter` of day `day` if that keeps it at most `limit`;
    /// whether it did. Atomic across instances: two instances racing for the last slot cannot
    /// both get it.
    pub async fn take_daily(&self, counter: &str, day: i64, n: i64, limit: i64) -> Result<bool, StoreError> {
        if n > limit {
            return Ok(false);
        }
        let _writer = self.writer().await;
        let done = sqlx::query(
            "INSERT INTO daily_counts (counter, day, n) VALUES ($1, $2, $3) \
             ON CONFLICT (counter, day) DO UPDATE SET n = daily_counts.n + excluded.n \
             WHERE daily_counts.n + excluded.n <= $4",
        )
        .bind(counter)
        .bind(day)
        .bind(n)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives back `n` taken from `counter` of day `day` (the push it was taken for was not
    /// accepted).
    pub async fn give_back_daily(&self, counter: &str, day: i64, n: i64) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        sqlx::query("UPDATE daily_counts SET n = n - $1 WHERE counter = $2 AND day = $3 AND n >= $1")
            .bind(n)
            .bind(counter)
            .bind(day)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What `counter` stands at on day `day`.
    pub async fn daily_count(&self, counter: &str, day: i64) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT n FROM daily_counts WHERE counter = $1 AND day = $2")
            .bind(counter)
            .bind(day)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("n")).transpose()?.unwrap_or(0))
    }

    /// Deletes the counts of days before `day`; returns how many.
    pub async fn purge_daily_counts(&self, before_day: i64) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM daily_counts WHERE day < $1")
            .bind(before_day)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
