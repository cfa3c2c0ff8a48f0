//! The installation's device keys for wire v2: X25519 key pairs made on the device, whose
//! public halves the server encrypts pushes to. Their secrets never leave the device.
//!
//! A registration sends the public half of the *pending* key, made before the request goes out
//! and kept until a registration carrying it succeeds, so a retried registration sends the same
//! key and a push sealed to it before the answer arrives still opens. Once the server confirms
//! it, the pending key becomes the current one, and the one before stays for pushes sealed
//! before the renewal and still in flight; older keys are forgotten. Each renewal makes a new
//! key, so keys rotate with the lease.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::wire::DeviceSecret;

/// How many confirmed keys are kept: the current one and the one before it.
const CONFIRMED_KEPT: usize = 2;

/// The device keys, as held in memory (secrets decoded once) and persisted.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeviceKeys {
    pending: Option<DeviceSecret>,
    confirmed: Vec<DeviceSecret>,
}

/// The persisted form: secrets as base64url. The file is readable by the app only.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StoredDeviceKeys {
    #[serde(default)]
    pending: Option<String>,
    #[serde(default)]
    confirmed: Vec<String>,
}

impl DeviceKeys {
    /// The pending key a registration sends, made from `fresh` random bytes when there is none.
    /// Returns whether a key was made (and must be persisted before it is sent).
    pub(crate) fn for_registration(&mut self, fresh: impl FnOnce() -> [u8; 32]) -> (&DeviceSecret, bool) {
        let made = self.pending.is_none();
        let key = self.pending.get_or_insert_with(|| DeviceSecret::from_bytes(fresh()));
        (key, made)
    }

    /// The server answered a registration: it encrypts to the key `kid` (`None`: it speaks
    /// wire v1 and encrypts nothing). Returns whether the keys changed.
    pub(crate) fn confirm(&mut self, kid: Option<&str>) -> bool {
        match (&self.pending, kid) {
            (Some(pending), Some(kid)) if pending.public().kid() == kid => {
                let pending = self.pending.take();
                self.confirmed.splice(0..0, pending);
                self.confirmed.truncate(CONFIRMED_KEPT);
                true
            }
            _ => false,
        }
    }

    /// Whether the key `kid` is held (`None`: no key is needed, so yes).
    pub(crate) fn holds(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.pending.iter().chain(&self.confirmed).any(|k| k.public().kid() == kid))
    }

    /// Every key a push may be sealed to, pending first.
    pub(crate) fn secrets(&self) -> Vec<DeviceSecret> {
        self.pending.iter().chain(&self.confirmed).cloned().collect()
    }

    /// Forgets every key (after unregistering).
    pub(crate) fn clear(&mut self) {
        *self = DeviceKeys::default();
    }

    pub(crate) fn stored(&self) -> StoredDeviceKeys {
        let encode = |key: &DeviceSecret| URL_SAFE_NO_PAD.encode(key.to_bytes());
        StoredDeviceKeys {
            pending: self.pending.as_ref().map(encode),
            confirmed: self.confirmed.iter().map(encode).collect(),
        }
    }

    /// The keys a file held; an unreadable key is dropped (a push sealed to it cannot ring,
    /// and the next registration sends a new one).
    pub(crate) fn from_stored(stored: &StoredDeviceKeys) -> Self {
        let decode = |text: &String| -> Option<DeviceSecret> {
            let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
            Some(DeviceSecret::from_bytes(bytes))
        };
        DeviceKeys {
            pending: stored.pending.as_ref().and_then(decode),
            confirmed: stored.confirmed.iter().filter_map(decode).take(CONFIRMED_KEPT).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid(keys: &DeviceKeys, i: usize) -> String {
        keys.secrets()[i].public().kid().to_owned()
    }

    #[test]
    fn a_key_is_pending_until_confirmed_and_rotates_with_each_renewal() {
        let mut keys = DeviceKeys::default();
        let (first, made) = keys.for_registration(|| [1; 32]);
        let first = first.public().kid().to_owned();
        assert!(made);
        // A retry sends the same key.
        let (again, made) = keys.for_registration(|| [2; 32]);
        assert_eq!((again.public().kid(), made), (first.as_str(), false));
        // A server speaking v1, or confirming another key, changes nothing.
        assert!(!keys.confirm(None));
        assert!(!keys.confirm(Some("other")));
        assert!(keys.confirm(Some(&first)));
        assert_eq!(keys.secrets().len(), 1);
        // The renewal makes a new key; the old one stays for pushes in flight.
        let second = keys.for_registration(|| [3; 32]).0.public().kid().to_owned();
        assert_eq!([kid(&keys, 0), kid(&keys, 1)], [second.clone(), first.clone()]);
        assert!(keys.confirm(Some(&second)));
        let third = keys.for_registration(|| [4; 32]).0.public().kid().to_owned();
        assert!(keys.confirm(Some(&third)));
        assert_eq!(
            keys.secrets().iter().map(|k| k.public().kid().to_owned()).collect::<Vec<_>>(),
            [third, second]
        );
    }

    #[test]
    fn keys_survive_their_stored_form() {
        let mut keys = DeviceKeys::default();
        let kid = keys.for_registration(|| [5; 32]).0.public().kid().to_owned();
        keys.confirm(Some(&kid));
        keys.for_registration(|| [6; 32]);
        let stored = serde_json::to_string(&keys.stored()).unwrap();
        let back = DeviceKeys::from_stored(&serde_json::from_str(&stored).unwrap());
        assert_eq!(back.secrets().len(), 2);
        assert_eq!(back.secrets()[1].public().kid(), kid);
        let bad = StoredDeviceKeys { pending: Some("not base64!".into()), confirmed: vec![] };
        assert!(DeviceKeys::from_stored(&bad).secrets().is_empty());
    }
}
