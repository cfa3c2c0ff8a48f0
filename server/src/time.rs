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

/// The UTC day of unix milliseconds `ms`: days since 1970-01-01.
pub fn utc_day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_turn_at_utc_midnight() {
        // 2026-01-01T00:00:00Z is day 20454.
        assert_eq!(utc_day(1_767_225_600_000), 20_454);
        assert_eq!(utc_day(1_767_225_600_000 - 1), 20_453);
        assert_eq!(utc_day(1_767_225_600_000 + 86_399_999), 20_454);
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(-1), -1);
    }
}
