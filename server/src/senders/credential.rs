//! The one credential a sender holds for its provider (the APNs provider JWT, the FCM and WNS
//! OAuth access tokens, the Push Kit JWT), shared by concurrent sends: reused until a margin
//! before it expires, made again by one send at a time, and dropped when the provider refuses it.
//!
//! Single flight: a send that finds the credential due for refresh makes the new one while
//! holding the lock; sends that waited meanwhile take what it made, or share its failure. A
//! failure is never cached: the next send after it tries again. Whether to use, share or
//! refresh is decided by [`decide`], a pure function of the cached refresh time and `now`.
//!
//! Times are in whatever unit the sender's clock counts (unix ms here).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::http::attempt_timeout;
use super::SendOutcome;

/// A credential as made, and when it is due for replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued<T> {
    /// The credential.
    pub value: T,
    /// From when it is made afresh rather than reused.
    pub refresh_at: i64,
}

/// A credential handed to a send. Refusals name it, so that a burst of them replaces the
/// credential once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<T> {
    /// The credential.
    pub value: T,
    /// Counts credentials made.
    generation: u64,
}

/// Why a refresh gave no credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError<E> {
    /// The refresh ran and failed: the sends that waited for it share the failure.
    Failed(E),
    /// This send could not refresh (no time left for it): the failure is its own.
    NotTried(E),
}

/// When a credential issued at `issued_at` with `lifetime` left is made afresh: `margin`
/// before it expires (at most its whole lifetime).
pub fn refresh_at(issued_at: i64, lifetime: i64, margin: i64) -> i64 {
    issued_at.saturating_add(lifetime.max(0)).saturating_sub(margin.clamp(0, lifetime.max(0)))
}

/// What a send does about the credential at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Use the cached credential.
    Use,
    /// Take the failure of the refresh this send waited for.
    ShareFailure,
    /// Make a new credential.
    Refresh,
}

/// What a send does at `now`, given when the cached credential (if any) is due for refresh,
/// whether a refresh finished while it waited for the lock, and whether the last one failed.
/// A clock stepped back leaves a cached credential in use.
pub fn decide(
    refresh_at: Option<i64>,
    now: i64,
    refreshed_while_waiting: bool,
    last_failed: bool,
) -> Decision {
    match refresh_at {
        Some(at) if now < at => Decision::Use,
        _ if refreshed_while_waiting && last_failed => Decision::ShareFailure,
        _ => Decision::Refresh,
    }
}

struct State<T, E> {
    current: Option<(Credential<T>, i64)>,
    last_failure: Option<E>,
    made: u64,
}

/// One provider credential, cached and refreshed as the module says.
pub struct CachedCredential<T, E> {
    state: tokio::sync::Mutex<State<T, E>>,
    /// Refreshes finished, so that a send that waited for one can tell.
    refreshes: AtomicU64,
}

impl<T, E> Default for CachedCredential<T, E> {
    fn default() -> Self {
        CachedCredential {
            state: tokio::sync::Mutex::new(State { current: None, last_failure: None, made: 0 }),
            refreshes: AtomicU64::new(0),
        }
    }
}

impl<T: Clone, E: Clone> CachedCredential<T, E> {
    /// The credential to send with at `clock()` (read once the lock is held): the cached one
    /// while fresh, else the one `refresh(now)` makes.
    pub async fn get<F, Fut>(&self, clock: impl Fn() -> i64, refresh: F) -> Result<Credential<T>, E>
    where
        F: FnOnce(i64) -> Fut,
        Fut: Future<Output = Result<Issued<T>, RefreshError<E>>>,
    {
        let seen = self.refreshes.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        let now = clock();
        let waited = self.refreshes.load(Ordering::Acquire) != seen;
        match decide(state.current.as_ref().map(|(_, at)| *at), now, waited, state.last_failure.is_some()) {
            Decision::Use => {
                if let Some((credential, _)) = &state.current {
                    return Ok(credential.clone());
                }
            }
            Decision::ShareFailure => {
                if let Some(failure) = &state.last_failure {
                    return Err(failure.clone());
                }
            }
            Decision::Refresh => {}
        }
        let made = match refresh(now).await {
            Ok(issued) => Ok(issued),
            Err(RefreshError::Failed(failure)) => Err(failure),
            Err(RefreshError::NotTried(failure)) => return Err(failure),
        };
        // Counted once finished (under the lock): sends that read the count before this point
        // waited for this refresh and share its failure; later ones try again.
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        match made {
            Ok(issued) => {
                state.made += 1;
                let credential = Credential { value: issued.value, generation: state.made };
                state.current = Some((credential.clone(), issued.refresh_at));
                state.last_failure = None;
                Ok(credential)
            }
            Err(failure) => {
                state.current = None;
                state.last_failure = Some(failure.clone());
                Err(failure)
            }
        }
    }

    /// [`CachedCredential::get`], after dropping the cached credential if it is `refused`.
    pub async fn get_unless<F, Fut>(
        &self,
        refused: Option<&Credential<T>>,
        clock: impl Fn() -> i64,
        refresh: F,
    ) -> Result<Credential<T>, E>
    where
        F: FnOnce(i64) -> Fut,
        Fut: Future<Output = Result<Issued<T>, RefreshError<E>>>,
    {
        if let Some(refused) = refused {
            self.invalidate(refused).await;
        }
        self.get(clock, refresh).await
    }

    /// Drops the cached credential if it is still `refused` (the provider said it is bad; a
    /// concurrent send may have replaced it already), so that the next send makes a new one.
    pub async fn invalidate(&self, refused: &Credential<T>) {
        let mut state = self.state.lock().await;
        if state.current.as_ref().is_some_and(|(c, _)| c.generation == refused.generation) {
            state.current = None;
        }
    }

    /// Drops the cached credential at once (the sender's clock changed).
    pub fn reset(&mut self) {
        self.state.get_mut().current = None;
    }
}

impl<T: Clone> CachedCredential<T, SendOutcome> {
    /// The credential for a push due by `expires_at` (unix seconds), as
    /// [`CachedCredential::get_unless`] gives it, fetched if need be by `fetch` within the time
    /// [`attempt_timeout`] allows the push. A push out of time makes no fetch, and its lack of
    /// time is not shared.
    pub async fn for_push<F, Fut>(
        &self,
        refused: Option<&Credential<T>>,
        expires_at: i64,
        fetch: F,
    ) -> Result<Credential<T>, SendOutcome>
    where
        F: FnOnce(Duration) -> Fut,
        Fut: Future<Output = Result<Issued<T>, SendOutcome>>,
    {
        let refresh = |now: i64| async move {
            let timeout = attempt_timeout(now, expires_at).map_err(RefreshError::NotTried)?;
            fetch(timeout).await.map_err(RefreshError::Failed)
        };
        self.get_unless(refused, crate::time::now_ms, refresh).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn refresh_is_due_a_margin_before_expiry() {
        // (issued at, lifetime, margin, refresh at)
        let table = [
            (1_000, 3_600, 300, 4_300),
            (1_000, 3_000, 0, 4_000),
            (1_000, 200, 300, 1_000), // a margin longer than the life: refresh at once
            (1_000, -5, 300, 1_000),
            (i64::MAX - 10, 3_600, 300, i64::MAX - 300),
        ];
        for (issued_at, lifetime, margin, at) in table {
            assert_eq!(refresh_at(issued_at, lifetime, margin), at, "{issued_at} {lifetime} {margin}");
        }
    }

    #[test]
    fn a_send_uses_shares_or_refreshes() {
        use Decision::*;
        // (refresh at, now, refreshed while waiting, last failed, decision)
        let table = [
            (Some(100), 99, false, false, Use),
            (Some(100), 100, false, false, Refresh),
            (Some(100), 150, false, false, Refresh),
            (Some(100), -5, false, false, Use), // the clock stepped back
            (Some(100), 50, true, true, Use),
            (None, 50, false, false, Refresh),
            (None, 50, true, true, ShareFailure),
            (None, 50, false, true, Refresh), // a failure before this send waited: try again
            (None, 50, true, false, Refresh),
            (Some(100), 150, true, true, ShareFailure),
        ];
        for (at, now, waited, failed, decision) in table {
            assert_eq!(decide(at, now, waited, failed), decision, "{at:?} {now} {waited} {failed}");
        }
    }

    type Made = Result<Issued<String>, RefreshError<String>>;

    async fn issue(n: &AtomicI64, now: i64, lifetime: i64) -> Made {
        let k = n.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Issued { value: format!("t{k}"), refresh_at: now + lifetime })
    }

    #[tokio::test]
    async fn the_credential_is_reused_until_due_then_made_again() {
        let cache = CachedCredential::<String, String>::default();
        let made = AtomicI64::new(0);
        let get = |now: i64| cache.get(move || now, |now| issue(&made, now, 100));
        assert_eq!(get(0).await.unwrap().value, "t1");
        assert_eq!(get(99).await.unwrap().value, "t1");
        assert_eq!(get(100).await.unwrap().value, "t2");
        assert_eq!(get(150).await.unwrap().value, "t2");
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_credential_is_replaced_once() {
        let cache = CachedCredential::<String, String>::default();
        let made = AtomicI64::new(0);
        let first = cache.get(|| 0, |now| issue(&made, now, 100)).await.unwrap();
        cache.invalidate(&first).await;
        let second = cache.get(|| 1, |now| issue(&made, now, 100)).await.unwrap();
        assert_eq!(second.value, "t2");
        // A late refusal of the first one leaves the second in place.
        cache.invalidate(&first).await;
        assert_eq!(cache.get(|| 2, |now| issue(&made, now, 100)).await.unwrap().value, "t2");
        cache.invalidate(&second).await;
        assert_eq!(cache.get(|| 3, |now| issue(&made, now, 100)).await.unwrap().value, "t3");
    }

    #[tokio::test]
    async fn a_failure_is_not_cached_and_not_tried_is_not_counted() {
        let cache = CachedCredential::<String, String>::default();
        let failed: Made = Err(RefreshError::Failed("down".into()));
        assert_eq!(cache.get(|| 0, |_| async { failed }).await, Err("down".into()));
        let skipped: Made = Err(RefreshError::NotTried("no time".into()));
        assert_eq!(cache.get(|| 1, |_| async { skipped }).await, Err("no time".into()));
        let made = AtomicI64::new(0);
        assert_eq!(cache.get(|| 2, |now| issue(&made, now, 100)).await.unwrap().value, "t1");
    }

    #[tokio::test]
    async fn one_refresh_at_a_time_and_waiters_share_its_result() {
        let cache = Arc::new(CachedCredential::<String, String>::default());
        let calls = Arc::new(AtomicI64::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let refresh = |fail: bool| {
            let (calls, mut wait) = (calls.clone(), wait.clone());
            move |now: i64| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = wait.wait_for(|go| *go).await;
                if fail {
                    Err(RefreshError::Failed("down".to_owned()))
                } else {
                    Ok(Issued { value: "t".to_owned(), refresh_at: now + 100 })
                }
            }
        };
        for fail in [true, false] {
            calls.store(0, Ordering::SeqCst);
            let _ = release.send(false);
            let sends: Vec<_> = (0..4)
                .map(|_| {
                    let (cache, refresh) = (cache.clone(), refresh(fail));
                    tokio::spawn(async move { cache.get(|| 0, refresh).await.map(|c| c.value) })
                })
                .collect();
            tokio::task::yield_now().await;
            let _ = release.send(true);
            for send in sends {
                let expected = if fail { Err("down".to_owned()) } else { Ok("t".to_owned()) };
                assert_eq!(send.await.unwrap(), expected);
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "one refresh for four sends (failing: {fail})");
        }
    }
}
