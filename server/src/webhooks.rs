//! Webhooks: every call state change is posted to the configured URL, signed with HMAC-SHA256,
//! retried with backoff for an hour. They are written to an outbox in the same transaction as
//! the change, and sent by this worker, so they never slow the ring path and survive a crash.
//!
//! Headers: `Callpush-Webhook-Id` (dedupe key), `Callpush-Signature: t=<unix s>,v1=<hex>` where
//! `v1 = HMAC-SHA256(secret, "<t>.<body>")`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::WebhookConfig;
use crate::domain::Webhook;
use crate::metrics::{Metrics, ResultLabels};
use crate::store::Store;
use crate::time::now_ms;

/// Attempts before a webhook is given up.
const MAX_ATTEMPTS: i64 = 12;

/// The `Callpush-Signature` header value for `body` at unix second `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Posts webhooks from the outbox until the process stops.
pub async fn run(store: Store, config: WebhookConfig, metrics: Arc<Metrics>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    loop {
        let batch = match store.claim_webhooks(now_ms(), 60_000, 32).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "claiming webhooks failed");
                Vec::new()
            }
        };
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for webhook in batch {
            let delivered = post(&client, &config, &webhook).await;
            let retry_at = (!delivered && webhook.attempts < MAX_ATTEMPTS)
                .then(|| now_ms() + (1000i64 << webhook.attempts.clamp(1, 11)).min(600_000));
            let result = match (delivered, retry_at) {
                (true, _) => "delivered",
                (false, Some(_)) => "retry",
                (false, None) => "failed",
            };
            metrics.webhooks.get_or_create(&ResultLabels { result: result.into() }).inc();
            if let Err(e) = store.finish_webhook(&webhook.webhook_id, retry_at, delivered).await {
                tracing::error!(error = %e, "recording a webhook result failed");
            }
        }
    }
}

async fn post(client: &reqwest::Client, config: &WebhookConfig, webhook: &Webhook) -> bool {
    let t = now_ms() / 1000;
    let response = client
        .post(&config.url)
        .header("Content-Type", "application/json")
        .header("Callpush-Webhook-Id", &webhook.webhook_id)
        .header("Callpush-Signature", signature(&config.secret, t, &webhook.body))
        .body(webhook.body.clone())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), call = %webhook.call_id, "webhook refused; will retry");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), call = %webhook.call_id, "webhook failed; will retry");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_of_time_and_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            super::signature("secret", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }
}
