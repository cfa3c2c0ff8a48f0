//! The per-call state machine and the dedupe set: pure, no I/O, no clock of its own.
//!
//! ```text
//! incoming:  Ringing ──answer──▶ Answered ──media_connected──▶ Active ──hang_up──▶ Ended(HungUp)
//!               │ decline ▶ Ended(Declined)      cancel(reason) ▶ Ended(reason)
//!               └ deadline ▶ Ended(Missed)       UI refused     ▶ Ended(Failed)
//! outgoing:  Dialing ──media_connected──▶ Active ──hang_up──▶ Ended(HungUp)
//! ```
//!
//! The client drives it under a lock and performs the effects (system call UI, events,
//! persistence, network) after releasing the lock.

use std::collections::HashMap;

use crate::error::Error;
use crate::model::{Call, CallDirection, CallState, CancelReason, EndReason, IncomingCall};

/// How long a call id is remembered after its deadline, seconds: retried pushes and late
/// socket messages for the call still count as duplicates within this window.
pub(crate) const REMEMBER_AFTER_DEADLINE: i64 = 600;

/// Ended calls kept so `call()` can still answer for them.
const KEEP_ENDED: usize = 64;

/// Calls on this device and the call ids already seen.
#[derive(Debug, Default)]
pub(crate) struct CallBook {
    calls: HashMap<String, Call>,
    /// Call id → forget after (server clock, unix s).
    seen: HashMap<String, i64>,
    /// Order in which calls ended, oldest first, for pruning.
    ended: Vec<String>,
    /// Earliest deadline of a ringing call, so checking deadlines is O(1) until one passes.
    earliest_deadline: Option<i64>,
    /// Earliest time an entry of `seen` may be forgotten, so pruning runs only when useful.
    earliest_forget: Option<i64>,
}

/// Why a call id cannot start ringing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Duplicate;

impl CallBook {
    /// A book that already knows `seen` call ids (restored from disk).
    pub(crate) fn with_seen(seen: HashMap<String, i64>) -> Self {
        let earliest_forget = seen.values().copied().min();
        CallBook { seen, earliest_forget, ..CallBook::default() }
    }

    /// Whether `call_id` was seen by any path (push, socket, outgoing).
    pub(crate) fn is_known(&self, call_id: &str) -> bool {
        self.seen.contains_key(call_id) || self.calls.contains_key(call_id)
    }

    /// Marks `call_id` seen until `forget_after`; returns whether it is new.
    pub(crate) fn remember(&mut self, call_id: &str, forget_after: i64) -> bool {
        let known = self.is_known(call_id);
        let until = self.seen.entry(call_id.to_owned()).or_insert(forget_after);
        *until = (*until).max(forget_after);
        self.earliest_forget = Some(self.earliest_forget.map_or(*until, |e| e.min(*until)));
        !known
    }

    /// Starts ringing an incoming call, unless its id was already seen.
    pub(crate) fn begin_incoming(&mut self, incoming: &IncomingCall) -> Result<Call, Duplicate> {
        if self.is_known(&incoming.call_id) {
            return Err(Duplicate);
        }
        let call = incoming_call(incoming, CallState::Ringing);
        self.remember(&call.call_id, incoming.expires_at.saturating_add(REMEMBER_AFTER_DEADLINE));
        self.calls.insert(call.call_id.clone(), call.clone());
        self.earliest_deadline =
            Some(self.earliest_deadline.map_or(incoming.expires_at, |e| e.min(incoming.expires_at)));
        Ok(call)
    }

    /// Starts an outgoing call in `Dialing`.
    pub(crate) fn begin_outgoing(&mut self, call: Call, now: i64) -> Result<Call, Error> {
        if self.calls.contains_key(&call.call_id) {
            return Err(Error::InvalidArgument(format!(
                "call `{}` already exists on this device",
                call.call_id
            )));
        }
        self.remember(&call.call_id, now + REMEMBER_AFTER_DEADLINE);
        self.calls.insert(call.call_id.clone(), call.clone());
        Ok(call)
    }

    /// The call `call_id`, if known.
    pub(crate) fn get(&self, call_id: &str) -> Option<&Call> {
        self.calls.get(call_id)
    }

    /// Every known call, live ones first.
    pub(crate) fn all(&self) -> Vec<Call> {
        let mut calls: Vec<Call> = self.calls.values().cloned().collect();
        calls.sort_by_key(|c| (c.state == CallState::Ended, c.call_id.clone()));
        calls
    }

    /// Ringing → Answered.
    pub(crate) fn answer(&mut self, call_id: &str) -> Result<Call, Error> {
        self.transition(call_id, "answered", |s| {
            (s == CallState::Ringing).then_some((CallState::Answered, None))
        })
    }

    /// Ringing → Ended(Declined).
    pub(crate) fn decline(&mut self, call_id: &str) -> Result<Call, Error> {
        self.transition(call_id, "declined", |s| {
            (s == CallState::Ringing).then_some((CallState::Ended, Some(EndReason::Declined)))
        })
    }

    /// Answered or Dialing → Active.
    pub(crate) fn media_connected(&mut self, call_id: &str) -> Result<Call, Error> {
        self.transition(call_id, "connected", |s| {
            matches!(s, CallState::Answered | CallState::Dialing).then_some((CallState::Active, None))
        })
    }

    /// Answered, Active or Dialing → Ended(HungUp).
    pub(crate) fn hang_up(&mut self, call_id: &str) -> Result<Call, Error> {
        self.transition(call_id, "hung up", |s| {
            matches!(s, CallState::Answered | CallState::Active | CallState::Dialing)
                .then_some((CallState::Ended, Some(EndReason::HungUp)))
        })
    }

    /// A ringing (or answered, not yet connected) call stopped elsewhere; `None` if it was
    /// not live here. The id is remembered either way, so a late ring for it never rings.
    pub(crate) fn cancel(&mut self, call_id: &str, reason: CancelReason, forget_after: i64) -> Option<Call> {
        self.remember(call_id, forget_after);
        self.end_if(call_id, reason.into(), |s| matches!(s, CallState::Ringing | CallState::Answered))
    }

    /// Ends any live call with `reason`, on this device only.
    pub(crate) fn end(&mut self, call_id: &str, reason: EndReason) -> Result<Call, Error> {
        self.transition(call_id, "ended", |s| {
            (s != CallState::Ended).then_some((CallState::Ended, Some(reason)))
        })
    }

    /// Ends a call that could not be set up.
    pub(crate) fn fail(&mut self, call_id: &str) -> Option<Call> {
        self.end_if(call_id, EndReason::Failed, |s| s != CallState::Ended)
    }

    /// Ends every ringing call whose deadline is at or before `now` (server clock), as missed.
    pub(crate) fn expire(&mut self, now: i64) -> Vec<Call> {
        if self.earliest_forget.is_some_and(|at| at <= now) {
            self.seen.retain(|_, forget_after| *forget_after > now);
            self.earliest_forget = self.seen.values().copied().min();
        }
        if self.earliest_deadline.is_none_or(|at| at > now) {
            return Vec::new();
        }
        let overdue: Vec<String> = self
            .calls
            .values()
            .filter(|c| c.state == CallState::Ringing && c.expires_at.is_some_and(|exp| exp <= now))
            .map(|c| c.call_id.clone())
            .collect();
        let ended = overdue
            .iter()
            .filter_map(|id| self.end_if(id, EndReason::Missed, |s| s == CallState::Ringing))
            .collect();
        self.seen.retain(|_, forget_after| *forget_after > now);
        ended
    }

    /// The earliest deadline of a ringing call, server clock.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.calls.values().filter(|c| c.state == CallState::Ringing).filter_map(|c| c.expires_at).min()
    }

    /// Whether `call_id` is ringing here.
    pub(crate) fn is_ringing(&self, call_id: &str) -> bool {
        self.calls.get(call_id).is_some_and(|c| c.state == CallState::Ringing)
    }

    fn transition(
        &mut self,
        call_id: &str,
        action: &'static str,
        next: impl FnOnce(CallState) -> Option<(CallState, Option<EndReason>)>,
    ) -> Result<Call, Error> {
        let call = self.calls.get_mut(call_id).ok_or_else(|| Error::CallNotFound(call_id.to_owned()))?;
        let (state, end_reason) = next(call.state).ok_or_else(|| Error::InvalidCallState {
            call_id: call_id.to_owned(),
            state: call.state,
            action,
        })?;
        call.state = state;
        call.end_reason = end_reason;
        let call = call.clone();
        if state == CallState::Ended {
            self.note_ended(call_id);
        }
        Ok(call)
    }

    fn end_if(
        &mut self,
        call_id: &str,
        reason: EndReason,
        when: impl FnOnce(CallState) -> bool,
    ) -> Option<Call> {
        let call = self.calls.get_mut(call_id).filter(|c| when(c.state))?;
        call.state = CallState::Ended;
        call.end_reason = Some(reason);
        let call = call.clone();
        self.note_ended(call_id);
        Some(call)
    }

    fn note_ended(&mut self, call_id: &str) {
        self.ended.push(call_id.to_owned());
        while self.ended.len() > KEEP_ENDED {
            let oldest = self.ended.remove(0);
            if self.calls.get(&oldest).is_some_and(|c| c.state == CallState::Ended) {
                self.calls.remove(&oldest);
            }
        }
    }
}

/// The tracked form of an incoming call.
pub(crate) fn incoming_call(incoming: &IncomingCall, state: CallState) -> Call {
    Call {
        call_id: incoming.call_id.clone(),
        direction: CallDirection::Incoming,
        state,
        end_reason: None,
        peer_id: incoming.caller_id.clone(),
        peer_name: incoming.caller_name.clone(),
        video: incoming.video,
        system_call_id: incoming.system_call_id.clone(),
        expires_at: Some(incoming.expires_at),
        data: incoming.data.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(id: &str, exp: i64) -> IncomingCall {
        IncomingCall {
            call_id: id.into(),
            caller_id: "alice".into(),
            caller_name: None,
            video: false,
            callee: "bob".into(),
            issued_at: exp - 30,
            expires_at: exp,
            reason: None,
            system_call_id: None,
            data: HashMap::new(),
        }
    }

    #[test]
    fn an_answered_call_goes_active_then_ends() {
        let mut book = CallBook::default();
        book.begin_incoming(&incoming("c1", 100)).unwrap();
        assert_eq!(book.answer("c1").unwrap().state, CallState::Answered);
        assert!(matches!(book.answer("c1"), Err(Error::InvalidCallState { state: CallState::Answered, .. })));
        assert_eq!(book.media_connected("c1").unwrap().state, CallState::Active);
        let ended = book.hang_up("c1").unwrap();
        assert_eq!((ended.state, ended.end_reason), (CallState::Ended, Some(EndReason::HungUp)));
        assert!(matches!(book.decline("c1"), Err(Error::InvalidCallState { .. })));
        assert!(matches!(book.answer("nope"), Err(Error::CallNotFound(_))));
    }

    #[test]
    fn a_call_id_rings_once_whatever_the_path_and_order() {
        let mut book = CallBook::default();
        book.begin_incoming(&incoming("c1", 100)).unwrap();
        assert_eq!(book.begin_incoming(&incoming("c1", 100)), Err(Duplicate));
        // A cancel that overtakes its ring keeps the late ring from ringing.
        assert_eq!(book.cancel("c2", CancelReason::CallerCancelled, 700), None);
        assert_eq!(book.begin_incoming(&incoming("c2", 100)), Err(Duplicate));
        // Restored from disk.
        let mut restored = CallBook::with_seen(HashMap::from([("c3".to_owned(), 700)]));
        assert_eq!(restored.begin_incoming(&incoming("c3", 100)), Err(Duplicate));
    }

    #[test]
    fn ringing_calls_end_at_their_deadline_and_ids_are_forgotten_later() {
        let mut book = CallBook::default();
        book.begin_incoming(&incoming("c1", 100)).unwrap();
        book.begin_incoming(&incoming("c2", 200)).unwrap();
        assert_eq!(book.next_deadline(), Some(100));
        assert!(book.expire(99).is_empty());
        let missed = book.expire(100);
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].end_reason, Some(EndReason::Missed));
        assert_eq!(book.next_deadline(), Some(200));
        book.expire(100 + REMEMBER_AFTER_DEADLINE);
        assert!(book.is_known("c1"), "ended calls are still tracked");
        assert!(!book.seen.contains_key("c1"));
    }

    #[test]
    fn cancel_reasons_map_to_end_reasons() {
        let mut book = CallBook::default();
        for (i, reason) in CancelReason::ALL.into_iter().enumerate() {
            let id = format!("c{i}");
            book.begin_incoming(&incoming(&id, 100)).unwrap();
            let call = book.cancel(&id, reason, 700).unwrap();
            assert_eq!(call.end_reason, Some(reason.into()));
            assert_eq!(book.cancel(&id, reason, 700), None, "ends once");
        }
    }

    #[test]
    fn ended_calls_are_pruned_beyond_a_bound() {
        let mut book = CallBook::default();
        for i in 0..200 {
            let id = format!("c{i}");
            book.begin_incoming(&incoming(&id, 100)).unwrap();
            book.decline(&id).unwrap();
        }
        assert!(book.calls.len() <= KEEP_ENDED);
        assert!(book.is_known("c0"), "still deduped by the seen set");
    }
}
