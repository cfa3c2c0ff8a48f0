//! What becomes of a delivery, decided without I/O: whether it may still be sent, and what
//! each provider outcome leads to — retry at a time, finish with a status, forget a dead token.
//! The workers (`dispatch`) send, check the ring gate, prune and write; this module
//! only decides, from the delivery, its deadline, the outcome and `now` (unix ms), so every
//! case can be tested with plain integers for a clock.

use std::time::Duration;

use crate::domain::{CallPhase, CallRecord, Delivery, DeliveryStatus, PushKind, RESULT_UNKNOWN};
use crate::senders::SendOutcome;

/// How long a cancel push matters after the call ended, ms.
pub const CANCEL_WINDOW: i64 = 60_000;
/// How long a missed-call notification is worth retrying, ms.
pub const MISSED_WINDOW: i64 = 3_600_000;
/// First retry delay; doubles per attempt up to [`MAX_BACKOFF`], ms.
pub const BASE_BACKOFF: i64 = 500;
/// Longest retry delay the backoff reaches, ms.
pub const MAX_BACKOFF: i64 = 10_000;

/// When a delivery stops mattering: a ring at the ring deadline, follow-ups a while after the end.
pub fn deadline(d: &Delivery, call: &CallRecord, now: i64) -> i64 {
    match d.kind {
        PushKind::Ring => call.expires_at,
        PushKind::Cancel => call.ended_at.unwrap_or(now) + CANCEL_WINDOW,
        PushKind::Missed => call.ended_at.unwrap_or(now) + MISSED_WINDOW,
    }
}

/// The most a retry after `attempts` attempts waits, ms: the jittered backoff is drawn below it.
pub fn backoff_ceiling(attempts: i64) -> i64 {
    (BASE_BACKOFF << attempts.clamp(1, 8).saturating_sub(1)).min(MAX_BACKOFF)
}

/// How a delivery ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Its final status.
    pub status: DeliveryStatus,
    /// The outcome class for the timeline and metrics.
    pub outcome: &'static str,
    /// Detail for the timeline.
    pub detail: Option<String>,
}

impl Finish {
    fn new(status: DeliveryStatus, outcome: &'static str, detail: Option<String>) -> Self {
        Finish { status, outcome, detail }
    }
}

/// Which token the provider said is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadToken {
    /// The installation's token: prune the installation.
    Installation,
    /// Only its APNs alert token: the VoIP token still rings, so clear the alert token and
    /// keep the installation.
    AlertToken,
}

/// What the workers do next with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It is done.
    Finish(Finish),
    /// Send it again at `at`.
    Retry {
        /// When, unix ms.
        at: i64,
        /// The outcome class of this attempt.
        outcome: &'static str,
        /// What happened.
        detail: String,
    },
    /// Its token is dead: forget it, then finish failed, `invalid_token` (see [`forgotten`]).
    ForgetToken {
        /// Which token.
        token: DeadToken,
        /// What the provider said.
        detail: String,
        /// When the provider saw the token stop working, unix ms, if it said.
        invalid_since: Option<i64>,
    },
    /// The provider took it: finish delivered (see [`delivered`]); for a ring, note whether
    /// the call ended while it was in flight.
    Delivered {
        /// The provider's message id.
        provider_id: Option<String>,
        /// Whether it was a ring.
        ring: bool,
    },
}

/// How a delivery whose call is gone ends.
pub fn call_missing() -> Finish {
    Finish::new(DeliveryStatus::Failed, "call_missing", None)
}

/// How a delivery whose push cannot be built ends.
pub fn unbuildable(detail: String) -> Finish {
    Finish::new(DeliveryStatus::Failed, "bad_request", Some(detail))
}

/// How a ring ends that the ring gate stopped right before it was sent.
pub fn gate_closed() -> Finish {
    let detail = "the call stopped ringing for this device before the push was sent";
    Finish::new(DeliveryStatus::Skipped, "call_ended", Some(detail.into()))
}

/// Whether `d` of `call` may be sent at `now`: its deadline if so, else how it ends.
pub fn before_send(d: &Delivery, call: &CallRecord, now: i64) -> Result<i64, Finish> {
    let deadline = deadline(d, call, now);
    if d.kind == PushKind::Ring && call.state != CallPhase::Ringing {
        return Err(Finish::new(
            DeliveryStatus::Skipped,
            "call_ended",
            Some("the call stopped ringing".into()),
        ));
    }
    if now >= deadline {
        if d.outcome.as_deref() == Some(RESULT_UNKNOWN) {
            let detail = "the instance sending it stopped before recording a result (it may have been \
                          sent); too late to send again";
            return Err(Finish::new(DeliveryStatus::Unknown, RESULT_UNKNOWN, Some(detail.into())));
        }
        return Err(Finish::new(
            DeliveryStatus::Failed,
            "expired",
            Some("the push no longer matters".into()),
        ));
    }
    Ok(deadline)
}

/// The step after the ring gate could not say whether the call still rings (`detail`): retry
/// after `backoff` ms while that is before `deadline`, else fail.
pub fn gate_unsure(detail: String, deadline: i64, now: i64, backoff: i64) -> Step {
    match retry_at(None, deadline, now, backoff) {
        Some(at) => Step::Retry { at, outcome: "transient", detail },
        None => Step::Finish(Finish::new(DeliveryStatus::Failed, "transient", Some(detail))),
    }
}

/// What follows `outcome` for `d`, due by `deadline`, known at `now`; a retry waits `backoff`
/// ms (the jittered backoff of its attempts) or the provider's `Retry-After` if longer, and
/// only while that is before the deadline.
pub fn next_step(d: &Delivery, outcome: SendOutcome, deadline: i64, now: i64, backoff: i64) -> Step {
    let retry = |outcome: &'static str, after: Option<Duration>, detail: String| match retry_at(
        after, deadline, now, backoff,
    ) {
        Some(at) => Step::Retry { at, outcome, detail },
        None => Step::Finish(Finish::new(
            DeliveryStatus::Failed,
            outcome,
            Some(format!("{detail}; no time left to retry")),
        )),
    };
    match outcome {
        SendOutcome::Delivered { provider_id } => {
            Step::Delivered { provider_id, ring: d.kind == PushKind::Ring }
        }
        SendOutcome::InvalidToken { detail, invalid_since } => {
            let token = if d.goes_to_alert_token() { DeadToken::AlertToken } else { DeadToken::Installation };
            Step::ForgetToken { token, detail, invalid_since }
        }
        SendOutcome::RateLimited { retry_after, detail } => retry("rate_limited", retry_after, detail),
        SendOutcome::Transient { detail } => retry("transient", None, detail),
        SendOutcome::BadRequest { detail } => {
            Step::Finish(Finish::new(DeliveryStatus::Failed, "bad_request", Some(detail)))
        }
        SendOutcome::ConfigError { detail } => {
            Step::Finish(Finish::new(DeliveryStatus::Failed, "config_error", Some(detail)))
        }
        // The quota returns at the next UTC midnight, long after any push stopped mattering.
        SendOutcome::QuotaExhausted { detail } => {
            Step::Finish(Finish::new(DeliveryStatus::Failed, "quota_exhausted", Some(detail)))
        }
    }
}

/// When to retry: `backoff` ms from `now`, or `after` if the provider asked for longer; `None`
/// when that is not before `deadline`.
fn retry_at(after: Option<Duration>, deadline: i64, now: i64, backoff: i64) -> Option<i64> {
    let wait = after.map_or(backoff, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(backoff));
    let at = now.saturating_add(wait);
    (at < deadline).then_some(at)
}

/// How a delivered push ends; `ended_in_flight`: a ring whose call ended while it was sent.
pub fn delivered(provider_id: Option<String>, ended_in_flight: bool) -> Finish {
    let detail = if ended_in_flight {
        let note = "the call ended while this push was in flight";
        Some(provider_id.map_or_else(|| note.to_owned(), |id| format!("{id}; {note}")))
    } else {
        provider_id
    };
    Finish::new(DeliveryStatus::Delivered, "delivered", detail)
}

/// How a push to a dead token ends; `cleared`: the dead alert token was cleared.
pub fn forgotten(detail: String, cleared_alert_token: bool) -> Finish {
    let detail = if cleared_alert_token { format!("{detail}; the alert token was cleared") } else { detail };
    Finish::new(DeliveryStatus::Failed, "invalid_token", Some(detail))
}

#[cfg(test)]
mod tests {
    use callpush_proto::model::Platform;

    use super::*;

    const NOW: i64 = 1_000_000;

    fn delivery(platform: Platform, kind: PushKind, attempts: i64) -> Delivery {
        Delivery { kind, attempts, next_attempt_at: NOW, ..Delivery::example(platform) }
    }

    fn call(state: CallPhase, expires_at: i64, ended_at: Option<i64>) -> CallRecord {
        CallRecord {
            call_id: "c1".into(),
            caller_id: "alice".into(),
            caller_name: None,
            video: false,
            data: Default::default(),
            state,
            reason: None,
            answered_by: None,
            created_at: 0,
            expires_at,
            ended_at,
            version: 1,
        }
    }

    fn finish(status: DeliveryStatus, outcome: &'static str, detail: Option<&str>) -> Step {
        Step::Finish(Finish::new(status, outcome, detail.map(str::to_owned)))
    }

    fn retry(at: i64, outcome: &'static str, detail: &str) -> Step {
        Step::Retry { at, outcome, detail: detail.into() }
    }

    fn transient() -> SendOutcome {
        SendOutcome::Transient { detail: "503".into() }
    }

    fn limited(after_ms: Option<u64>) -> SendOutcome {
        SendOutcome::RateLimited { retry_after: after_ms.map(Duration::from_millis), detail: "429".into() }
    }

    fn dead(invalid_since: Option<i64>) -> SendOutcome {
        SendOutcome::InvalidToken { detail: "410".into(), invalid_since }
    }

    fn failed(outcome: &'static str, detail: &str) -> Step {
        finish(DeliveryStatus::Failed, outcome, Some(detail))
    }

    fn forget(token: DeadToken, invalid_since: Option<i64>) -> Step {
        Step::ForgetToken { token, detail: "410".into(), invalid_since }
    }

    fn took(provider_id: Option<&str>, ring: bool) -> Step {
        Step::Delivered { provider_id: provider_id.map(str::to_owned), ring }
    }

    fn accepted(provider_id: Option<&str>) -> SendOutcome {
        SendOutcome::Delivered { provider_id: provider_id.map(str::to_owned) }
    }

    fn refused() -> SendOutcome {
        SendOutcome::BadRequest { detail: "400".into() }
    }

    fn exhausted() -> SendOutcome {
        SendOutcome::QuotaExhausted { detail: "1000 a day".into() }
    }

    fn misconfigured() -> SendOutcome {
        SendOutcome::ConfigError { detail: "401".into() }
    }

    #[test]
    fn each_outcome_leads_to_its_step() {
        use DeadToken::{AlertToken, Installation};
        use Platform::{Apns, Fcm, Harmony, Wns};
        use PushKind::{Cancel, Missed, Ring};
        const HOUR: i64 = 3_600_000;
        let late = |outcome, detail: &str| failed(outcome, &format!("{detail}; no time left to retry"));
        // (platform, kind, attempts, ms left before the deadline, backoff, outcome, step)
        let table = [
            (Fcm, Ring, 1, 30_000, 400, transient(), retry(NOW + 400, "transient", "503")),
            (Fcm, Ring, 3, 30_000, 1_900, transient(), retry(NOW + 1_900, "transient", "503")),
            // A retry that would land on or after the deadline is not made.
            (Fcm, Ring, 2, 400, 400, transient(), late("transient", "503")),
            (Wns, Cancel, 1, 401, 400, transient(), retry(NOW + 400, "transient", "503")),
            // Retry-After wins when longer than the backoff, and the backoff when longer.
            (Fcm, Ring, 1, 30_000, 400, limited(Some(5_000)), retry(NOW + 5_000, "rate_limited", "429")),
            (Fcm, Ring, 1, 30_000, 400, limited(Some(100)), retry(NOW + 400, "rate_limited", "429")),
            (Harmony, Missed, 4, HOUR, 900, limited(None), retry(NOW + 900, "rate_limited", "429")),
            (Fcm, Ring, 1, 4_000, 400, limited(Some(5_000)), late("rate_limited", "429")),
            // Never retried: the request or the settings are wrong.
            (Apns, Ring, 1, 30_000, 400, refused(), failed("bad_request", "400")),
            (Wns, Cancel, 1, 30_000, 400, misconfigured(), failed("config_error", "401")),
            // A used-up daily quota returns tomorrow: never retried.
            (Harmony, Ring, 1, 30_000, 400, exhausted(), failed("quota_exhausted", "1000 a day")),
            // A dead token: the installation goes, unless only an APNs alert token died.
            (Fcm, Ring, 1, 30_000, 400, dead(None), forget(Installation, None)),
            (Apns, Ring, 2, 30_000, 400, dead(Some(5)), forget(Installation, Some(5))),
            (Apns, Missed, 1, HOUR, 400, dead(Some(5)), forget(AlertToken, Some(5))),
            (Harmony, Missed, 1, HOUR, 400, dead(None), forget(Installation, None)),
            // Delivered, even with no time left; a ring notes an end in flight.
            (Fcm, Ring, 1, 0, 400, accepted(Some("m1")), took(Some("m1"), true)),
            (Wns, Cancel, 1, 30_000, 400, accepted(None), took(None, false)),
        ];
        for (platform, kind, attempts, left, backoff, outcome, step) in table {
            let d = delivery(platform, kind, attempts);
            let row = format!("{platform:?} {kind:?} attempt {attempts}, {left} ms left, {outcome:?}");
            assert_eq!(next_step(&d, outcome, NOW + left, NOW, backoff), step, "{row}");
        }
    }

    #[test]
    fn a_delivery_is_sent_only_while_it_matters() {
        use CallPhase::{Answered, Missed as MissedCall, Ringing};
        use DeliveryStatus::{Failed, Skipped, Unknown};
        use PushKind::{Cancel, Missed, Ring};
        let taken_over =
            |kind| Delivery { outcome: Some(RESULT_UNKNOWN.into()), ..delivery(Platform::Fcm, kind, 2) };
        let unknown =
            "the instance sending it stopped before recording a result (it may have been sent); too \
                       late to send again";
        // (delivery, call, result)
        let table = [
            (
                delivery(Platform::Fcm, Ring, 1),
                (call(Answered, NOW + 10_000, Some(NOW - 1))),
                Err(Finish::new(Skipped, "call_ended", Some("the call stopped ringing".into()))),
            ),
            (delivery(Platform::Fcm, Ring, 1), (call(Ringing, NOW + 10_000, None)), Ok(NOW + 10_000)),
            (
                delivery(Platform::Fcm, Ring, 3),
                (call(Ringing, NOW, None)),
                Err(Finish::new(Failed, "expired", Some("the push no longer matters".into()))),
            ),
            (taken_over(Ring), (call(Ringing, NOW + 1, None)), Ok(NOW + 1)),
            (
                taken_over(Ring),
                (call(Ringing, NOW - 1, None)),
                Err(Finish::new(Unknown, RESULT_UNKNOWN, Some(unknown.into()))),
            ),
            // Follow-ups go out after the call ended, for a while.
            (
                delivery(Platform::Wns, Cancel, 1),
                (call(Answered, NOW - 5_000, Some(NOW - 5_000))),
                Ok(NOW - 5_000 + CANCEL_WINDOW),
            ),
            (
                delivery(Platform::Wns, Cancel, 1),
                (call(Answered, NOW - 70_000, Some(NOW - CANCEL_WINDOW))),
                Err(Finish::new(Failed, "expired", Some("the push no longer matters".into()))),
            ),
            (
                delivery(Platform::Apns, Missed, 1),
                (call(MissedCall, NOW - 1_000, Some(NOW - 1_000))),
                Ok(NOW - 1_000 + MISSED_WINDOW),
            ),
        ];
        for (d, call, result) in table {
            assert_eq!(before_send(&d, &call, NOW), result, "{:?} {:?}", d.kind, call);
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_the_gate_is_retried_in_time() {
        let table = [(0, 500), (1, 500), (2, 1_000), (3, 2_000), (5, 8_000), (6, 10_000), (100, 10_000)];
        for (attempts, ceiling) in table {
            assert_eq!(backoff_ceiling(attempts), ceiling, "{attempts}");
        }
        assert_eq!(gate_unsure("down".into(), NOW + 501, NOW, 500), retry(NOW + 500, "transient", "down"));
        assert_eq!(
            gate_unsure("down".into(), NOW + 500, NOW, 500),
            finish(DeliveryStatus::Failed, "transient", Some("down"))
        );
    }

    #[test]
    fn finishes_say_what_happened_to_the_push_and_the_token() {
        let note = "the call ended while this push was in flight";
        assert_eq!(delivered(Some("m1".into()), false).detail.as_deref(), Some("m1"));
        assert_eq!(delivered(Some("m1".into()), true).detail, Some(format!("m1; {note}")));
        assert_eq!(delivered(None, true).detail.as_deref(), Some(note));
        assert_eq!(delivered(None, false), Finish::new(DeliveryStatus::Delivered, "delivered", None));
        assert_eq!(forgotten("410".into(), false).detail.as_deref(), Some("410"));
        assert_eq!(
            forgotten("410".into(), true),
            Finish::new(
                DeliveryStatus::Failed,
                "invalid_token",
                Some("410; the alert token was cleared".into())
            )
        );
    }
}
