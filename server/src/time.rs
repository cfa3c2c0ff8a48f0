//! The wall clock as the server counts it: unix milliseconds for storage and deadlines, unix
//! seconds for the claims of tokens and pushes. A clock set before 1970 reads 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
