//! Whether a queued ring may still go out. A fan-out can sit in memory for seconds behind a slow
//! provider; an answer, cancel, decline or the deadline must stop what has not been sent yet.
//!
//! The instance that ends a call knows at once ([`RingGate::call_ended`],
//! [`RingGate::declined`]); calls ended on another instance are seen through the database, read
//! at most once per [`REFRESH`] per call however many rings of it are queued, so the check costs
//! no round trip per push. The database is the truth (an end is committed before the gate
//! hears of it), so the gate is only a cache: a call unchecked for a few seconds is forgotten.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::CallPhase;
use crate::store::{Store, StoreError};
use crate::sync::unpoisoned;

/// How stale a call's state read from the database may be.
pub const REFRESH: Duration = Duration::from_millis(100);
/// How long a call is remembered after its last check: as long as a send attempt may take, so a
/// push in flight at the end is still known to be.
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// How often calls not checked for [`FORGET_AFTER`] are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What the gate knows of one call.
#[derive(Debug, Default)]
struct Known {
    /// The call stopped ringing (here or, as last read, elsewhere).
    ended: bool,
    /// Callees who declined.
    declined: BTreeSet<String>,
    /// When the state was last read from the database; `None`: never.
    read_at: Option<Instant>,
    /// When a ring of this call was last checked.
    used_at: Option<Instant>,
}

/// Whether a ring to `user` may go, given what is known of its call.
fn may_ring(known: &Known, user: &str) -> bool {
    !known.ended && !known.declined.contains(user)
}

/// Whether the database must be read again before deciding.
fn needs_read(known: &Known, now: Instant) -> bool {
    !known.ended && known.read_at.is_none_or(|at| now.duration_since(at) >= REFRESH)
}

/// The gate every ring passes right before it is sent.
#[derive(Default)]
pub struct RingGate {
    calls: Mutex<Calls>,
}

/// The calls the gate knows, and when it last forgot old ones.
#[derive(Default)]
struct Calls {
    known: HashMap<String, Arc<tokio::sync::Mutex<Known>>>,
    pruned_at: Option<Instant>,
}

impl RingGate {
    fn entry(&self, call_id: &str, now: Instant) -> Arc<tokio::sync::Mutex<Known>> {
        let mut calls = unpoisoned(self.calls.lock());
        if calls.pruned_at.is_none_or(|at| now.duration_since(at) >= PRUNE_EVERY) {
            calls.known.retain(|_, known| {
                known
                    .try_lock()
                    .map_or(true, |k| k.used_at.is_some_and(|at| now.duration_since(at) < FORGET_AFTER))
            });
            if calls.known.capacity() > 4 * calls.known.len().max(256) {
                calls.known.shrink_to_fit();
            }
            calls.pruned_at = Some(now);
        }
        calls.known.entry(call_id.to_owned()).or_default().clone()
    }

    /// This instance stored the call, ringing and declined by no one, in a commit that started
    /// after `before`: as good as a read of its state at `before`, so its first rings need not
    /// read it again.
    pub async fn stored(&self, call_id: &str, before: Instant) {
        let now = Instant::now();
        let entry = self.entry(call_id, now);
        let mut known = entry.lock().await;
        known.read_at = known.read_at.or(Some(before));
        known.used_at = Some(now);
    }

    /// This instance ended the call: no ring of it goes out from now on.
    pub async fn call_ended(&self, call_id: &str) {
        let entry = self.entry(call_id, Instant::now());
        let mut known = entry.lock().await;
        known.ended = true;
        known.used_at = Some(Instant::now());
    }

    /// `user` declined the call on this instance: no ring to their devices goes out from now on.
    pub async fn declined(&self, call_id: &str, user: &str) {
        let entry = self.entry(call_id, Instant::now());
        let mut known = entry.lock().await;
        known.declined.insert(user.to_owned());
        known.used_at = Some(Instant::now());
    }

    /// Whether the call is known to have stopped ringing, without asking the database.
    pub async fn known_ended(&self, call_id: &str) -> bool {
        let entry = unpoisoned(self.calls.lock()).known.get(call_id).cloned();
        match entry {
            Some(entry) => entry.lock().await.ended,
            None => false,
        }
    }

    /// Whether a ring of `call_id` to `user` may still be sent.
    pub async fn may_ring(&self, store: &Store, call_id: &str, user: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let entry = self.entry(call_id, now);
        let mut known = entry.lock().await;
        known.used_at = Some(now);
        if needs_read(&known, now) {
            match store.ring_state(call_id).await? {
                Some((state, declined)) => {
                    known.ended |= state != CallPhase::Ringing;
                    known.declined.extend(declined);
                }
                None => known.ended = true,
            }
            known.read_at = Some(now);
        }
        Ok(may_ring(&known, user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_goes_only_while_its_call_rings_and_its_callee_has_not_declined() {
        let mut known = Known::default();
        assert!(may_ring(&known, "bob"));
        known.declined.insert("carol".into());
        assert!(may_ring(&known, "bob"));
        assert!(!may_ring(&known, "carol"));
        known.ended = true;
        assert!(!may_ring(&known, "bob"));
    }

    #[test]
    fn the_database_is_read_once_per_refresh_and_never_after_the_end() {
        let now = Instant::now();
        let mut known = Known::default();
        assert!(needs_read(&known, now), "never read");
        known.read_at = Some(now);
        assert!(!needs_read(&known, now + REFRESH / 2));
        assert!(needs_read(&known, now + REFRESH));
        known.ended = true;
        assert!(!needs_read(&known, now + REFRESH * 10), "an end is final");
    }
}
