//! Where registrations go: the [`Registrar`] trait and an in-memory implementation.
//!
//! The server's HTTP registrar (server/README.md) implements the same trait in the client layer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::client::{Clock as _, SystemClock};
use crate::error::Error;
use crate::model::{InstallationRequest, Jwk, Registration};

/// Stores installations: `PUT` and `DELETE /v1/installations/{id}` of the registrar API.
#[async_trait]
pub trait Registrar: Send + Sync {
    /// Creates or replaces the installation (idempotent) and returns the lease.
    async fn put_installation(&self, request: &InstallationRequest) -> Result<Registration, Error>;
    /// Removes the installation, so its token is never rung again.
    async fn delete_installation(&self, installation_id: &str) -> Result<(), Error>;
}

type UnixSeconds = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A registrar in memory: for tests, examples and apps that keep registrations themselves.
#[derive(Clone)]
pub struct InMemoryRegistrar {
    installations: Arc<Mutex<HashMap<String, Registration>>>,
    signing_keys: Vec<Jwk>,
    clock: UnixSeconds,
}

impl InMemoryRegistrar {
    /// A registrar that hands out `signing_keys` and reads the system clock.
    pub fn new(signing_keys: Vec<Jwk>) -> Self {
        InMemoryRegistrar {
            installations: Arc::default(),
            signing_keys,
            clock: Arc::new(|| SystemClock.now_millis() / 1000),
        }
    }

    /// The same registrar reading time (unix seconds) from `clock`.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The installation with `installation_id`, if registered and not expired.
    pub fn installation(&self, installation_id: &str) -> Option<Registration> {
        let now = (self.clock)();
        self.lock().get(installation_id).filter(|r| r.expires_at > now).cloned()
    }

    /// Number of live (unexpired) installations.
    pub fn len(&self) -> usize {
        let now = (self.clock)();
        self.lock().values().filter(|r| r.expires_at > now).count()
    }

    /// Whether no installation is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Registration>> {
        // The map stays consistent even if a holder panicked: every write is one insert/remove.
        self.installations.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Registrar for InMemoryRegistrar {
    async fn put_installation(&self, request: &InstallationRequest) -> Result<Registration, Error> {
        let now = (self.clock)();
        let registration = Registration {
            installation_id: request.installation_id.clone(),
            platform: request.platform,
            token: request.token.clone(),
            ttl_seconds: request.ttl_seconds,
            apns_environment: request.apns_environment,
            app_id: request.app_id.clone(),
            apns_alert_token: request.apns_alert_token.clone(),
            expires_at: now + i64::from(request.ttl_seconds),
            server_time: now,
            signing_keys: self.signing_keys.clone(),
            user_id: None,
            verification_pending: false,
            device_key_id: request.device_key.as_ref().and_then(|jwk| {
                callpush_proto::wire::DeviceKey::from_jwk(jwk).ok().map(|key| key.kid().to_owned())
            }),
        };
        self.lock().insert(request.installation_id.clone(), registration.clone());
        Ok(registration)
    }

    async fn delete_installation(&self, installation_id: &str) -> Result<(), Error> {
        match self.lock().remove(installation_id) {
            Some(_) => Ok(()),
            None => Err(Error::NotRegistered(installation_id.to_owned())),
        }
    }
}
