//! An in-process sender for tests: records every push and answers with scripted outcomes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use callpush_server::senders::{OutgoingPush, SendOutcome, Sender};

/// Records pushes; answers each with the next scripted outcome, else `Delivered`.
#[derive(Clone, Default)]
pub struct RecordingSender {
    sent: Arc<Mutex<Vec<OutgoingPush>>>,
    script: Arc<Mutex<VecDeque<SendOutcome>>>,
    notify: Arc<tokio::sync::Notify>,
}

impl RecordingSender {
    /// A sender with nothing sent and nothing scripted.
    pub fn new() -> Self {
        RecordingSender::default()
    }

    /// Answers the next sends with `outcomes`, in order.
    pub fn script(&self, outcomes: impl IntoIterator<Item = SendOutcome>) {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).extend(outcomes);
    }

    /// Everything sent so far.
    pub fn sent(&self) -> Vec<OutgoingPush> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until at least `n` pushes were sent (or `timeout` passes) and returns them.
    pub async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> Vec<OutgoingPush> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            let sent = self.sent();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

#[async_trait]
impl Sender for RecordingSender {
    async fn send(&self, push: &OutgoingPush) -> SendOutcome {
        let outcome = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(SendOutcome::Delivered { provider_id: None });
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(push.clone());
        self.notify.notify_waiters();
        outcome
    }
}
