//! What the client does on its own small runtime while the app is not calling it: long-polls a
//! ringing call so a cancel arrives over the app's own connection, answers verify pushes, and
//! renews the lease to fetch the server's current keys.

use std::sync::{Arc, OnceLock, Weak};

use super::policy::{self, Watch};
use super::{renewal_options, Inner};
use crate::client::calls::REMEMBER_AFTER_DEADLINE;
use crate::client::host::{CallEvent, ErrorKind};
use crate::error::Error;
use crate::model::{CancelReason, Registration, Verification};

/// The runtime long-polls and background renewals run on, made on first use: a current-thread
/// runtime that one thread of its own drives forever, so every task runs on that thread. (A
/// multi-thread runtime with one worker would do the same with more code in the library.)
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    static DRIVEN: OnceLock<bool> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().ok())
        .as_ref()?;
    let driven = DRIVEN.get_or_init(|| {
        std::thread::Builder::new()
            .name("callpush".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .is_ok()
    });
    driven.then_some(runtime)
}

impl Inner {
    /// Long-polls the call's status while it rings, so a cancel arrives over the app's own
    /// connection; ends the call at its deadline.
    pub(super) fn watch(self: &Arc<Self>, call_id: String) {
        if !self.lock().watching.insert(call_id.clone()) {
            return;
        }
        let Some(runtime) = runtime() else {
            self.error(
                ErrorKind::Registrar,
                "no runtime for watching the call; cancels arrive by push only".into(),
                Some(&call_id),
            );
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut failures = 0u32;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let (ringing, deadline) = {
                    let state = inner.lock();
                    (state.book.is_ringing(&call_id), state.book.get(&call_id).and_then(|c| c.expires_at))
                };
                let (wait, remaining) =
                    match policy::watch(ringing, deadline, inner.server_now(), inner.long_poll) {
                        Watch::Poll { wait, remaining } => (wait, remaining),
                        Watch::Wait { remaining } => {
                            drop(inner);
                            tokio::time::sleep(remaining).await;
                            continue;
                        }
                        Watch::Stop => {
                            inner.housekeeping();
                            inner.lock().watching.remove(&call_id);
                            return;
                        }
                    };
                match inner.registrar.call_status(&call_id, wait).await {
                    Ok(status) => {
                        failures = 0;
                        if let Some(reason) = status.ended_for(&inner.installation_id()) {
                            let forget = inner.server_now() + REMEMBER_AFTER_DEADLINE;
                            let ended = inner.lock().book.cancel(&call_id, reason, forget);
                            if let Some(call) = ended {
                                inner.report_state(&call);
                                inner.emit(CallEvent::Cancelled { call: call.clone(), reason });
                                if matches!(reason, CancelReason::CallerCancelled | CancelReason::Timeout) {
                                    inner.missed(&call);
                                }
                            }
                        }
                    }
                    Err(Error::CallNotFound(_)) => {
                        // The server does not track this call (it came over the app's own
                        // connection): nothing to poll, but it still ends at its deadline.
                        drop(inner);
                        tokio::time::sleep(remaining).await;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            inner.error(
                                ErrorKind::Registrar,
                                format!("watching the call: {e}"),
                                Some(&call_id),
                            );
                        }
                        drop(inner);
                        // Until the deadline, keep trying at a gentle pace.
                        tokio::time::sleep(policy::watch_retry_delay(failures)).await;
                    }
                }
            }
        });
    }

    /// Answers a verify push in the background: sends its nonce back over the app's own
    /// connection, proving this device holds the token it registered, so the token moves to
    /// this installation. A push for another installation, or past its deadline, is not
    /// answered.
    pub(super) fn answer_verification(self: &Arc<Self>, verification: Verification) {
        let lease = {
            let state = self.lock();
            let now = self.server_now_with(state.lease.as_ref());
            if verification.installation_id != self.installation_id() || now >= verification.exp {
                return;
            }
            state.lease.clone()
        };
        let Some(lease) = lease else { return };
        let request = match self
            .adapter
            .installation(&lease.app_token, &renewal_options(self.installation_id(), &lease))
        {
            Ok(request) => request,
            Err(e) => return self.error(ErrorKind::Registrar, format!("answering a verify push: {e}"), None),
        };
        let Some(runtime) = runtime() else {
            return self.error(ErrorKind::Registrar, "no runtime for answering a verify push".into(), None);
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            match inner.registrar.verify_installation(&request, &verification.nonce).await {
                Ok(registration) => {
                    if let Err(e) = inner.adopt(registration) {
                        inner.error(ErrorKind::Storage, e.to_string(), None);
                    }
                }
                Err(e) => inner.error(ErrorKind::Registrar, format!("answering a verify push: {e}"), None),
            }
        });
    }

    /// Takes `registration` as the lease's, when it is for the token the lease holds.
    fn adopt(&self, registration: Registration) -> Result<(), Error> {
        let lease = {
            let mut state = self.lock();
            let Some(lease) = state.lease.as_mut() else { return Ok(()) };
            if lease.registration.token != registration.token {
                // Registered anew meanwhile: that registration stands.
                return Ok(());
            }
            lease.registration = registration.clone();
            lease.clone()
        };
        let saved = self.data_dir.save_lease(&lease);
        self.emit(CallEvent::RegistrationChanged { registration });
        saved
    }

    /// A push named an unknown key: the server may have rotated. Renew in the background to
    /// fetch its current keys, at most once a minute.
    pub(super) fn refresh_keys_soon(self: &Arc<Self>) {
        let lease = {
            let mut state = self.lock();
            let now = self.server_now_with(state.lease.as_ref());
            if !policy::may_refresh_keys(self.pinned_keys.is_some(), state.last_key_refresh, now) {
                return;
            }
            state.last_key_refresh = Some(now);
            state.lease.clone()
        };
        let (Some(lease), Some(runtime)) = (lease, runtime()) else { return };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            let opts = renewal_options(inner.installation_id(), &lease);
            if let Err(e) = inner.register(&lease.app_token, &opts).await {
                inner.error(ErrorKind::Registrar, format!("fetching the server's current keys: {e}"), None);
            }
        });
    }
}
