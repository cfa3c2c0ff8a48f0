//! The client's timing decisions as pure functions of their inputs and `now`: when a lease is
//! renewed and when it lapsed, when the app should call back, how long a long-poll waits, and
//! how long to wait before trying the registrar again. The I/O around them (files, HTTP,
//! sleeping) lives in the client and the registrar, so these are tested as tables over a
//! virtual clock.
//!
//! Times are unix seconds on the server's clock unless a name says otherwise.

use std::time::Duration;

/// Server clock minus device clock, seconds, from a registration: the server's time is taken
/// as of the middle of the request (`sent_ms` and `received_ms` on the device clock).
pub(crate) fn clock_offset(server_time: i64, sent_ms: i64, received_ms: i64) -> i64 {
    server_time - (sent_ms + received_ms) / 2000
}

/// When a lease of `ttl_seconds` ending at `expires_at` is renewed: between 20 % and 15 % of
/// the lease before its end, placed by `jitter` (any number, usually random) so a fleet of
/// devices registered together spreads its renewals out.
pub(crate) fn renew_at(expires_at: i64, ttl_seconds: u32, jitter: u64) -> i64 {
    let ttl = i64::from(ttl_seconds);
    let spread = (jitter % (u64::from(ttl_seconds) / 20 + 1)) as i64;
    expires_at - ttl / 5 + spread
}

/// What `refresh` does with a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Nothing yet: renewal is due at `renew_at` (server clock).
    NotDue {
        /// When renewal becomes due.
        renew_at: i64,
    },
    /// Register again now.
    Renew,
}

/// Whether a lease due for renewal at `renew_at` is renewed `now`: when it is due, or at once
/// when the app's token changed.
pub(crate) fn refresh(now: i64, renew_at: i64, token_changed: bool) -> Refresh {
    if token_changed || now >= renew_at {
        Refresh::Renew
    } else {
        Refresh::NotDue { renew_at }
    }
}

/// Whether a lease ending at `expires_at` has lapsed `now` and the app has not been told yet.
pub(crate) fn newly_lapsed(now: i64, expires_at: i64, already_told: bool) -> bool {
    now >= expires_at && !already_told
}

/// When the app should next call the client, on the device clock: the earliest of the lease's
/// renewal and a ringing call's deadline (both server clock, `offset` = server − device).
pub(crate) fn next_wakeup(
    renew_at: Option<i64>,
    next_call_deadline: Option<i64>,
    offset: i64,
) -> Option<i64> {
    [renew_at, next_call_deadline].into_iter().flatten().min().map(|at| at - offset)
}

/// Least time between two renewals the client makes by itself to fetch the server's current
/// keys (a push named a key it does not know), seconds.
pub(crate) const KEY_REFRESH_INTERVAL: i64 = 60;

/// Whether a push naming an unknown key may trigger a renewal `now`: never with pinned keys,
/// and at most once per [`KEY_REFRESH_INTERVAL`].
pub(crate) fn may_refresh_keys(pinned: bool, last_refresh: Option<i64>, now: i64) -> bool {
    !pinned && last_refresh.is_none_or(|at| now - at >= KEY_REFRESH_INTERVAL)
}

/// The next step of watching a ringing call over the long-poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watch {
    /// The call stopped ringing or reached its deadline: stop watching.
    Stop,
    /// Ask the server, holding the request up to `wait`.
    Poll {
        /// How long the server may hold the request.
        wait: Duration,
        /// Time left until the deadline.
        remaining: Duration,
    },
    /// The long-poll is off (the app signals calls itself): only end the call at its deadline.
    Wait {
        /// Time left until the deadline.
        remaining: Duration,
    },
}

/// Whether to keep watching a call `now`, and how long the next long-poll may wait: never past
/// the call's deadline, never longer than `longest` (`None`: the app turned the long-poll off).
pub(crate) fn watch(ringing: bool, deadline: Option<i64>, now: i64, longest: Option<Duration>) -> Watch {
    let remaining = deadline.unwrap_or(0) - now;
    if !ringing || remaining <= 0 {
        return Watch::Stop;
    }
    let remaining = Duration::from_secs(remaining as u64);
    match longest {
        Some(longest) => Watch::Poll { wait: longest.min(remaining), remaining },
        None => Watch::Wait { remaining },
    }
}

/// The longest long-poll for `configured` seconds: 25 s by default, 0 turns the long-poll off,
/// anything else within 1..=120 s.
pub(crate) fn long_poll(configured: Option<u32>) -> Option<Duration> {
    match configured {
        Some(0) => None,
        other => Some(Duration::from_secs(other.unwrap_or(25).clamp(1, 120).into())),
    }
}

/// How long to wait before polling again after `failures` failed polls in a row: one second
/// more each time, at most five, so a ringing call keeps being watched at a gentle pace.
pub(crate) fn watch_retry_delay(failures: u32) -> Duration {
    Duration::from_secs(u64::from(failures.clamp(1, 5)))
}

/// How hard the client tries the registrar before giving up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest delay between attempts (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 4, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(8) }
    }
}

/// After a transient failure: try again after a delay, or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Wait this long, then try again.
    After(Duration),
    /// The attempts are used up.
    GiveUp,
}

impl RetryPolicy {
    /// What follows the failed attempt number `attempt` (1 for the first): the server's
    /// `Retry-After` when it gave one, else full jitter — a delay picked by `jitter` (any
    /// number, usually random) up to base × 2^(attempt−1); both capped at `max_delay`.
    pub(crate) fn after_failure(&self, attempt: u32, retry_after: Option<Duration>, jitter: u64) -> Retry {
        if attempt >= self.attempts {
            return Retry::GiveUp;
        }
        let delay = retry_after.unwrap_or_else(|| {
            let ceiling =
                self.base_delay.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(self.max_delay);
            let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
            Duration::from_millis(jitter % millis + 1)
        });
        Retry::After(delay.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u32 = 86_400;

    #[test]
    fn renewal_falls_between_20_and_15_percent_before_the_end() {
        // (expires_at, ttl, jitter) → renew_at
        let table = [
            (1_000_000, DAY, 0, 1_000_000 - 17_280),
            (1_000_000, DAY, 4_320, 1_000_000 - 17_280 + 4_320),
            (1_000_000, DAY, 4_321, 1_000_000 - 17_280), // wraps: never past 15 %
            (1_000_000, DAY, u64::MAX, 1_000_000 - 17_280 + (u64::MAX % 4_321) as i64),
            (10_000, 300, 0, 10_000 - 60),
            (10_000, 300, 15, 10_000 - 45),
        ];
        for (expires_at, ttl, jitter, expected) in table {
            assert_eq!(renew_at(expires_at, ttl, jitter), expected, "{expires_at} {ttl} {jitter}");
            let before_end = expires_at - expected;
            assert!(
                before_end <= i64::from(ttl) / 5 && before_end >= i64::from(ttl) * 3 / 20,
                "{before_end}"
            );
        }
    }

    #[test]
    fn the_clock_offset_is_taken_at_the_middle_of_the_request() {
        // (server_time, sent_ms, received_ms) → offset
        let table = [
            (1_000, 1_000_000, 1_000_000, 0),
            (1_010, 1_000_000, 1_000_000, 10),
            (1_000, 1_000_000, 1_004_000, -2),
            (990, 1_000_000, 1_000_000, -10),
        ];
        for (server_time, sent, received, expected) in table {
            assert_eq!(clock_offset(server_time, sent, received), expected);
        }
    }

    #[test]
    fn a_lease_is_renewed_when_due_or_when_the_token_changed() {
        // (now, renew_at, token_changed) → decision
        let table = [
            (99, 100, false, Refresh::NotDue { renew_at: 100 }),
            (100, 100, false, Refresh::Renew),
            (5_000, 100, false, Refresh::Renew),
            (0, 100, true, Refresh::Renew),
        ];
        for (now, at, changed, expected) in table {
            assert_eq!(refresh(now, at, changed), expected, "{now} {at} {changed}");
        }
    }

    #[test]
    fn a_lapse_is_told_once() {
        // (now, expires_at, already_told) → tell now
        let table = [(99, 100, false, false), (100, 100, false, true), (101, 100, true, false)];
        for (now, expires_at, told, expected) in table {
            assert_eq!(newly_lapsed(now, expires_at, told), expected);
        }
    }

    #[test]
    fn the_next_wakeup_is_the_earliest_of_renewal_and_deadline_on_the_device_clock() {
        // (renew_at, deadline, offset) → wakeup
        let table = [
            (None, None, 0, None),
            (Some(500), None, 0, Some(500)),
            (None, Some(40), 0, Some(40)),
            (Some(500), Some(40), 0, Some(40)),
            (Some(500), Some(40), 10, Some(30)),
            (Some(30), Some(40), -5, Some(35)),
        ];
        for (renew, deadline, offset, expected) in table {
            assert_eq!(next_wakeup(renew, deadline, offset), expected);
        }
    }

    #[test]
    fn keys_are_refreshed_at_most_once_a_minute_and_never_when_pinned() {
        // (pinned, last, now) → allowed
        let table = [
            (false, None, 0, true),
            (true, None, 0, false),
            (false, Some(100), 159, false),
            (false, Some(100), 160, true),
            (true, Some(100), 1_000, false),
        ];
        for (pinned, last, now, expected) in table {
            assert_eq!(may_refresh_keys(pinned, last, now), expected, "{pinned} {last:?} {now}");
        }
    }

    #[test]
    fn a_long_poll_never_waits_past_the_deadline() {
        let secs = Duration::from_secs;
        let longest = secs(25);
        // (ringing, deadline, now) → step
        let table = [
            (true, Some(130), 100, Watch::Poll { wait: secs(25), remaining: secs(30) }),
            (true, Some(110), 100, Watch::Poll { wait: secs(10), remaining: secs(10) }),
            (true, Some(101), 100, Watch::Poll { wait: secs(1), remaining: secs(1) }),
            (true, Some(100), 100, Watch::Stop),
            (true, Some(90), 100, Watch::Stop),
            (true, None, 100, Watch::Stop),
            (false, Some(130), 100, Watch::Stop),
        ];
        for (ringing, deadline, now, expected) in table {
            assert_eq!(
                watch(ringing, deadline, now, Some(longest)),
                expected,
                "{ringing} {deadline:?} {now}"
            );
        }
    }

    #[test]
    fn with_the_long_poll_off_a_call_only_waits_for_its_deadline() {
        let secs = Duration::from_secs;
        assert_eq!(watch(true, Some(130), 100, None), Watch::Wait { remaining: secs(30) });
        assert_eq!(watch(true, Some(100), 100, None), Watch::Stop);
        assert_eq!(watch(false, Some(130), 100, None), Watch::Stop);
        assert_eq!(long_poll(Some(0)), None);
        assert_eq!(long_poll(None), Some(secs(25)));
        assert_eq!(long_poll(Some(500)), Some(secs(120)));
        assert_eq!(long_poll(Some(7)), Some(secs(7)));
    }

    #[test]
    fn failed_polls_back_off_by_a_second_up_to_five() {
        let delays: Vec<u64> = (1..=8).map(|f| watch_retry_delay(f).as_secs()).collect();
        assert_eq!(delays, [1, 2, 3, 4, 5, 5, 5, 5]);
    }

    #[test]
    fn registrar_retries_use_retry_after_or_full_jitter_and_stop_after_the_last_attempt() {
        let policy = RetryPolicy::default();
        let ms = Duration::from_millis;
        // (attempt, Retry-After, jitter) → what follows
        let table = [
            (1, None, 0, Retry::After(ms(1))),
            (1, None, 249, Retry::After(ms(250))),
            (1, None, 250, Retry::After(ms(1))), // within 250 ms after the first failure
            (2, None, 499, Retry::After(ms(500))),
            (3, None, 999, Retry::After(ms(1_000))),
            (1, Some(Duration::from_secs(3)), 0, Retry::After(ms(3_000))),
            (1, Some(Duration::from_secs(60)), 0, Retry::After(ms(8_000))), // capped
            (4, None, 0, Retry::GiveUp),
            (4, Some(Duration::from_secs(1)), 0, Retry::GiveUp),
        ];
        for (attempt, retry_after, jitter, expected) in table {
            assert_eq!(
                policy.after_failure(attempt, retry_after, jitter),
                expected,
                "{attempt} {retry_after:?}"
            );
        }
        let long = RetryPolicy { attempts: 30, ..policy };
        for jitter in [0, 7_999, u64::MAX] {
            let Retry::After(delay) = long.after_failure(20, None, jitter) else { panic!("gave up") };
            assert!(delay >= ms(1) && delay <= ms(8_000), "{delay:?}");
        }
    }
}
