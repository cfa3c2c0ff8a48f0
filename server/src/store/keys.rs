//! The call-push signing keys.

use super::*;

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

impl Store {
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
}
