//! Locks that survive a panic: a holder that panicked leaves the data it guarded usable (every
//! lock in the server guards state each step leaves consistent), so the next holder carries on
//! rather than spreading the panic.

use std::sync::{LockResult, PoisonError};

/// The guard of `locked`, poisoned or not: `unpoisoned(mutex.lock())`, `unpoisoned(rw.read())`.
pub fn unpoisoned<G>(locked: LockResult<G>) -> G {
    locked.unwrap_or_else(PoisonError::into_inner)
}
