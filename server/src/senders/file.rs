//! A sender that appends every push to a file as a JSON line: development without provider
//! accounts, and tests that watch what a server process sends. A line is written when the push
//! "reaches the provider", before any pretended delay, with that moment in `at` (unix ms).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use callpush_proto::wire::ProviderPayload;
use serde_json::json;

use super::{OutgoingPush, SendOutcome, Sender};
use crate::auth::redact;

/// Appends pushes to a JSON-lines file.
pub struct FileSender {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    delay: Duration,
}

impl FileSender {
    /// A sender writing to `path`, pretending each provider answer takes `delay`.
    pub fn new(path: PathBuf, delay: Duration) -> Self {
        FileSender { path, file: Mutex::new(None), delay }
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
        let mut file = crate::sync::unpoisoned(self.file.lock());
        if file.is_none() {
            *file = Some(std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        match file.as_mut() {
            // One write per line, so concurrent appends never interleave within a line.
            Some(f) => f.write_all(line.as_bytes()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Sender for FileSender {
    async fn send(&self, push: &OutgoingPush) -> SendOutcome {
        let payload = push.payload.as_ref().map(|p| match p {
            ProviderPayload::Harmony { extra_data } => json!({ "extraData": extra_data }),
            ProviderPayload::Fcm { data } => json!({ "data": data }),
            ProviderPayload::Apns { body } | ProviderPayload::Wns { body } => json!({ "body": body }),
        });
        let line = json!({
            "at": crate::time::now_ms(),
            "delivery_id": push.delivery_id,
            "call_id": push.call_id,
            "installation_id": push.installation_id,
            "platform": push.platform,
            "token": redact(&push.token),
            "kind": push.kind.as_str(),
            "ttl_seconds": push.ttl_seconds,
            "payload": payload,
            "missed": push.missed.as_ref().map(|m| json!({
                "caller_id": m.caller.as_ref().map(|c| &c.id),
                "caller_name": m.caller.as_ref().and_then(|c| c.name.as_ref()),
                "app_message_id": m.app_message_id,
            })),
        });
        let appended = self.append(&format!("{line}\n"));
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match appended {
            Ok(()) => SendOutcome::Delivered { provider_id: None },
            Err(e) => SendOutcome::Transient { detail: format!("writing {}: {e}", self.path.display()) },
        }
    }
}
