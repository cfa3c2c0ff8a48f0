//! Verify pushes: before a push token moves to one user's installation from another user's, the
//! server pushes a nonce to the token and waits for the device to send it back over the app's
//! own connection (`POST /v1/installations/{id}/verify`). Only the device holding the token
//! can; until it does, the other installation keeps ringing.
//!
//! The push is sent here, outside the delivery pipeline: it belongs to no call, and it is
//! worth a few quick retries only. If it is lost the device gets another when it registers
//! again after the nonce expired.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_proto::model::Verification;
use callpush_proto::wire::{encode_verification, seal_for, sign_verification_for_sealing};

use crate::auth::redact;
use crate::call_push::{device_key, fresh_randomness};
use crate::domain::{new_id, Installation, PushKind};
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::senders::{OutgoingPush, SendOutcome, Senders};
use crate::store::Store;

/// How long a nonce can be answered, ms: long enough for a push to arrive on a sleeping
/// device, short enough that a leaked one is soon worthless.
pub const NONCE_LIFETIME: i64 = 300_000;
/// Most sends of one verify push.
const ATTEMPTS: u32 = 3;

/// A new nonce: 32 random bytes, base64url.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sends verify pushes.
pub struct Verifier {
    senders: Senders,
    keyring: Arc<Keyring>,
    server_id: String,
    store: Store,
    metrics: Arc<Metrics>,
}

impl Verifier {
    /// A verifier signing with `keyring` as `server_id`, sending through `senders`; providers'
    /// daily quotas are counted in `store`.
    pub fn new(
        senders: Senders,
        keyring: Arc<Keyring>,
        server_id: String,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Self {
        Verifier { senders, keyring, server_id, store, metrics }
    }

    /// The push asking the device holding `inst`'s token to send back `nonce` before
    /// `expires_at` (ms). A registration with a device key (wire v2) gets it sealed to that key,
    /// padded as its call pushes are; `None` when that key cannot be used (it was checked when
    /// registered, so never in practice): a verify push is never sent readable to it.
    pub fn push(&self, inst: &Installation, nonce: &str, expires_at: i64, now: i64) -> Option<OutgoingPush> {
        let jti = new_id();
        let verification = Verification {
            iss: self.server_id.clone(),
            aud: inst.user_id.clone(),
            jti: jti.clone(),
            iat: now / 1000,
            exp: expires_at / 1000,
            installation_id: inst.installation_id.clone(),
            nonce: nonce.to_owned(),
        };
        let signer = self.keyring.signer();
        let payload = match &inst.device_key {
            None => encode_verification(inst.platform, &verification, &signer),
            Some(x) => {
                let key = device_key(x).ok()?;
                let jws = sign_verification_for_sealing(inst.platform, &verification, &signer);
                seal_for(inst.platform, &jws, &key, &fresh_randomness())
            }
        };
        Some(OutgoingPush {
            // Providers key collapsing on it (FCM collapse_key, Push Kit biTag): one per push.
            // A sealed push's senders use a hash of it, or the delivery id, instead.
            call_id: format!("verify-{jti}"),
            delivery_id: jti,
            installation_id: inst.installation_id.clone(),
            platform: inst.platform,
            token: inst.token.clone(),
            apns_environment: inst.apns_environment,
            // It travels exactly as a ring does, to reach the same handler on the device.
            kind: PushKind::Ring,
            payload: Some(payload),
            missed: None,
            ttl_seconds: u32::try_from((expires_at - now).max(1000) / 1000).unwrap_or(u32::MAX),
            expires_at: expires_at / 1000,
        })
    }

    /// Sends the verify push for `inst` in the background, retrying passing failures a few
    /// times while the nonce lives.
    pub fn send(self: &Arc<Self>, inst: &Installation, nonce: &str, expires_at: i64, now: i64) {
        let Some(push) = self.push(inst, nonce, expires_at, now) else {
            tracing::warn!(installation = %inst.installation_id, platform = %inst.platform,
                           "no verify push: the registration's device key cannot be used");
            return;
        };
        let sender = self.senders.for_platform(inst.platform).clone();
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        tokio::spawn(async move {
            let token = redact(&push.token);
            for attempt in 1..=ATTEMPTS {
                let outcome = crate::dispatch::send_within_quota(
                    &store,
                    &metrics,
                    sender.as_ref(),
                    &push,
                    crate::time::now_ms(),
                )
                .await;
                let retry = match &outcome {
                    SendOutcome::Transient { .. } => Some(None),
                    SendOutcome::RateLimited { retry_after, .. } => Some(*retry_after),
                    _ => None,
                };
                let wait = retry.map(|after| after.unwrap_or(Duration::from_millis(500 << attempt)));
                let last = attempt == ATTEMPTS
                    || wait.is_none_or(|w| crate::time::now_ms() + w.as_millis() as i64 >= expires_at);
                if matches!(outcome, SendOutcome::Delivered { .. }) {
                    tracing::info!(installation = %push.installation_id, platform = %push.platform, %token,
                                   "sent a verify push");
                    return;
                }
                if last {
                    tracing::warn!(installation = %push.installation_id, platform = %push.platform, %token,
                                   outcome = outcome.class(), "a verify push was not sent; the device gets \
                                   another when it registers again after the nonce expires");
                    return;
                }
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
            }
        });
    }
}
