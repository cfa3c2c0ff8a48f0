//! The server's call-push signing keys: which key signs now, and which keys devices must trust.
//!
//! Keys live in the database so every instance signs with the same key. A rotation adds a key
//! that activates later: it is published at once (devices learn it when they renew their lease,
//! and fetch it at the first push they cannot verify), and the old key stays published for
//! [`RETIRED_KEY_GRACE`] after the new one activates, so no push in flight goes unverifiable.

use std::sync::{Arc, RwLock};

use callpush_proto::model::Jwk;
use callpush_proto::wire::CallSigner;

use crate::store::{Store, StoreError, StoredKey};
use crate::sync::unpoisoned;

/// How long a key stays published after its successor activates, ms: longer than any push it
/// signed can live (ring ≤ 120 s, cancel 60 s).
pub const RETIRED_KEY_GRACE: i64 = 3600 * 1000;

struct Keys {
    signer: Arc<CallSigner>,
    published: Vec<Jwk>,
}

/// The current signer and published key set, reloaded from the database.
pub struct Keyring {
    store: Store,
    keys: RwLock<Keys>,
}

impl Keyring {
    /// Loads the keys, making the first one on a fresh database.
    pub async fn load(store: Store, now: i64) -> Result<Keyring, StoreError> {
        if store.signing_keys().await?.is_empty() {
            store.add_signing_key(&new_key(now, now), true).await?;
        }
        let keys = select(&store.signing_keys().await?, now)
            .ok_or_else(|| StoreError::Corrupt("no signing key is active".into()))?;
        Ok(Keyring { store, keys: RwLock::new(keys) })
    }

    /// Re-reads the keys (another instance may have rotated).
    pub async fn reload(&self, now: i64) -> Result<(), StoreError> {
        if let Some(keys) = select(&self.store.signing_keys().await?, now) {
            *unpoisoned(self.keys.write()) = keys;
        }
        Ok(())
    }

    /// The key that signs now.
    pub fn signer(&self) -> Arc<CallSigner> {
        unpoisoned(self.keys.read()).signer.clone()
    }

    /// The keys devices must trust.
    pub fn published(&self) -> Vec<Jwk> {
        unpoisoned(self.keys.read()).published.clone()
    }
}

/// Adds a key that starts signing at `activates_at`; returns its key id.
pub async fn rotate(store: &Store, now: i64, activates_at: i64) -> Result<String, StoreError> {
    let key = new_key(now, activates_at);
    store.add_signing_key(&key, false).await?;
    Ok(key.kid)
}

fn new_key(now: i64, activates_at: i64) -> StoredKey {
    let signer = crate::signing_key::generate();
    StoredKey { kid: signer.kid().to_owned(), seed: signer.seed(), created_at: now, activates_at }
}

/// The active key (newest activated) and the published set, from keys sorted newest first.
fn select(keys: &[StoredKey], now: i64) -> Option<Keys> {
    let active = keys.iter().position(|k| k.activates_at <= now)?;
    let signer = |k: &StoredKey| CallSigner::from_seed(&k.seed).with_kid(k.kid.clone());
    let mut published: Vec<Jwk> = keys[..=active].iter().map(|k| signer(k).public_jwk()).collect();
    // Older keys stay while their successor activated less than the grace ago.
    for pair in keys[active..].windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        if now - newer.activates_at < RETIRED_KEY_GRACE {
            published.push(signer(older).public_jwk());
        }
    }
    Some(Keys { signer: Arc::new(signer(&keys[active])), published })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8, activates_at: i64) -> StoredKey {
        let signer = CallSigner::from_seed(&[seed; 32]);
        StoredKey { kid: signer.kid().to_owned(), seed: [seed; 32], created_at: 0, activates_at }
    }

    #[test]
    fn the_newest_activated_key_signs_and_neighbours_stay_published() {
        // Newest first: one upcoming, one active, one retired recently, one retired long ago.
        let keys = [key(4, 10_000_000), key(3, 5_000_000), key(2, 1_000_000), key(1, 0)];
        let now = 5_000_000 + RETIRED_KEY_GRACE / 2;
        let selected = select(&keys, now).unwrap();
        assert_eq!(selected.signer.kid(), keys[1].kid);
        let kids: Vec<_> = selected.published.iter().map(|j| j.kid.clone().unwrap()).collect();
        assert_eq!(kids, vec![keys[0].kid.clone(), keys[1].kid.clone(), keys[2].kid.clone()]);
        assert!(select(&[key(1, 100)], 50).is_none(), "nothing active yet");
    }
}
