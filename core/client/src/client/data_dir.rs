//! What the client keeps in the app's data directory, so nothing is lost on a crash.
//!
//! - `installation-id`: created once, never changed; the server keys the device by it.
//! - `lease.json`: the registration lease, the server's keys and the clock offset. Written whole
//!   to a temporary file, synced, then renamed over the old one, so a crash leaves either the
//!   old lease or the new one, never a torn file.
//! - `device-keys.json`: the installation's X25519 secrets for wire v2 (see `device_keys`),
//!   written like the lease and readable by the app only.
//! - `seen-calls.log`: one line per call id seen (`<forget after> <call id>`), appended when a
//!   call first rings. An append costs microseconds, so `handle_push` stays fast, and a process
//!   crash keeps everything already written. Compacted on load.
//!
//! A corrupt or missing file never stops the client: it starts without what the file held and
//! says so.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::device_keys::{DeviceKeys, StoredDeviceKeys};
use crate::error::Error;
use crate::ids::{CALL_ID, INSTALLATION_ID};
use crate::model::{ApnsEnvironment, Registration};

const INSTALLATION_ID_FILE: &str = "installation-id";
const LEASE_FILE: &str = "lease.json";
const SEEN_FILE: &str = "seen-calls.log";
const DEVICE_KEYS_FILE: &str = "device-keys.json";
/// The lease format; a file of another version is treated as absent.
const LEASE_VERSION: u32 = 1;
/// Compact the seen-calls log on load once it holds this many more lines than live entries.
const COMPACT_SLACK: usize = 256;

/// The registration lease as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    /// Format version, [`LEASE_VERSION`].
    pub version: u32,
    /// What the registrar answered.
    pub registration: Registration,
    /// Server clock minus device clock, seconds, measured at registration.
    pub clock_offset: i64,
    /// When to renew, server clock: between 20 % and 15 % of the TTL before expiry.
    pub renew_at: i64,
    /// The token as the app gave it (before normalisation), to notice a rotation.
    pub app_token: String,
    /// The APNs environment asked for, if any, reused when renewing.
    pub apns_environment: Option<ApnsEnvironment>,
    /// The APNs alert token as the app gave it, if any, sent again when renewing. Absent from
    /// leases written before alert tokens existed.
    #[serde(default)]
    pub apns_alert_token: Option<String>,
}

/// Files in one data directory.
#[derive(Debug)]
pub(crate) struct DataDir {
    dir: PathBuf,
    seen_log: Mutex<Option<File>>,
}

impl DataDir {
    /// Opens (creating if needed) the data directory.
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|e| storage(dir, &e))?;
        Ok(DataDir { dir: dir.to_owned(), seen_log: Mutex::new(None) })
    }

    /// The installation id, created on first use. Returns whether an unreadable one was replaced.
    pub(crate) fn installation_id(&self) -> Result<(String, Option<String>), Error> {
        let path = self.dir.join(INSTALLATION_ID_FILE);
        let mut problem = None;
        match fs::read_to_string(&path) {
            Ok(id) if INSTALLATION_ID.accepts(id.trim()) => return Ok((id.trim().to_owned(), None)),
            Ok(_) => {
                problem = Some(format!("{} was unreadable; a new installation id was made", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage(&path, &e)),
        }
        let id = new_installation_id()?;
        write_atomically(&path, id.as_bytes())?;
        Ok((id, problem))
    }

    /// Replaces the installation id with a new one and returns it.
    pub(crate) fn replace_installation_id(&self) -> Result<String, Error> {
        let id = new_installation_id()?;
        write_atomically(&self.dir.join(INSTALLATION_ID_FILE), id.as_bytes())?;
        Ok(id)
    }

    /// The persisted lease; `Err` carries a message when the file existed but was unusable.
    pub(crate) fn load_lease(&self) -> Result<Option<Lease>, String> {
        let path = self.dir.join(LEASE_FILE);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        match serde_json::from_slice::<Lease>(&text) {
            Ok(lease) if lease.version == LEASE_VERSION => Ok(Some(lease)),
            Ok(lease) => Err(format!(
                "{} has unknown version {}; starting unregistered",
                path.display(),
                lease.version
            )),
            Err(e) => {
                // Keep the bad file for a bug report, out of the way of the next write.
                let _ = fs::rename(&path, path.with_extension("json.corrupt"));
                Err(format!("{} was corrupt ({e}); starting unregistered", path.display()))
            }
        }
    }

    /// Persists the lease atomically.
    pub(crate) fn save_lease(&self, lease: &Lease) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(lease).map_err(|e| Error::Storage(e.to_string()))?;
        write_atomically(&self.dir.join(LEASE_FILE), &json)
    }

    /// The device keys; `Err` carries a message when the file existed but was unusable.
    pub(crate) fn load_device_keys(&self) -> Result<DeviceKeys, String> {
        let path = self.dir.join(DEVICE_KEYS_FILE);
        match fs::read(&path) {
            Ok(text) => match serde_json::from_slice::<StoredDeviceKeys>(&text) {
                Ok(stored) => Ok(DeviceKeys::from_stored(&stored)),
                Err(e) => {
                    let _ = fs::remove_file(&path);
                    Err(format!(
                        "{} was corrupt ({e}); encrypted pushes sealed to its keys cannot ring",
                        path.display()
                    ))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DeviceKeys::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Persists the device keys atomically, in a file only the app can read.
    pub(crate) fn save_device_keys(&self, keys: &DeviceKeys) -> Result<(), Error> {
        let json = serde_json::to_vec(&keys.stored()).map_err(|e| Error::Storage(e.to_string()))?;
        write_atomically(&self.dir.join(DEVICE_KEYS_FILE), &json)
    }

    /// Forgets the lease (after unregistering).
    pub(crate) fn clear_lease(&self) -> Result<(), Error> {
        let path = self.dir.join(LEASE_FILE);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(storage(&path, &e)),
        }
    }

    /// The call ids seen and still remembered at `now` (server clock); compacts the log.
    pub(crate) fn load_seen(&self, now: i64) -> (HashMap<String, i64>, Option<String>) {
        let path = self.dir.join(SEEN_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (HashMap::new(), None),
            Err(e) => return (HashMap::new(), Some(format!("{}: {e}", path.display()))),
        };
        let mut seen = HashMap::new();
        let mut lines = 0;
        let mut torn = 0;
        for line in text.lines() {
            lines += 1;
            match parse_seen(line) {
                Some((id, until)) if until > now => {
                    let entry = seen.entry(id.to_owned()).or_insert(until);
                    *entry = (*entry).max(until);
                }
                Some(_) => {}
                // A line cut short by a crash mid-append; everything else is intact.
                None => torn += 1,
            }
        }
        if lines > seen.len() + COMPACT_SLACK || torn > 0 {
            let compacted: String = seen.iter().map(|(id, until)| format!("{until} {id}\n")).collect();
            let _ = write_atomically(&path, compacted.as_bytes());
        }
        (seen, None)
    }

    /// Appends one seen call id.
    pub(crate) fn append_seen(&self, call_id: &str, forget_after: i64) -> Result<(), Error> {
        let path = self.dir.join(SEEN_FILE);
        let mut log = self.seen_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.is_none() {
            *log = Some(
                OpenOptions::new().create(true).append(true).open(&path).map_err(|e| storage(&path, &e))?,
            );
        }
        let line = format!("{forget_after} {call_id}\n");
        let result = log.as_mut().map_or(Ok(()), |file| file.write_all(line.as_bytes()));
        result.map_err(|e| {
            *log = None;
            storage(&path, &e)
        })
    }
}

fn parse_seen(line: &str) -> Option<(&str, i64)> {
    let (until, id) = line.split_once(' ')?;
    let until = until.parse().ok()?;
    CALL_ID.accepts(id).then_some((id, until))
}

/// Writes `bytes` to a temporary file, syncs it, renames it over `path` and syncs the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        // Owner-only: the lease names the user and the token, the key file holds secrets. The
        // mode applies only to a new file, so a temporary file left by a crash goes first.
        let _ = fs::remove_file(&tmp);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            // Persist the rename itself; not every platform can open a directory, so best effort.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        storage(path, &e)
    })
}

fn storage(path: &Path, e: &std::io::Error) -> Error {
    Error::Storage(format!("{}: {e}", path.display()))
}

/// A random 128-bit installation id in UUID v4 form.
fn new_installation_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Storage(format!("no randomness for an installation id: {e}")))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// 32 random bytes for a device key's secret.
pub(crate) fn random_key() -> Result<[u8; 32], Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Storage(format!("no randomness for a device key: {e}")))?;
    Ok(bytes)
}

/// A random number for jitter.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Jitter only spreads load; a fixed value is a safe fallback.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installation_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataDir::open(dir.path()).unwrap();
        let (id, problem) = store.installation_id().unwrap();
        assert!(INSTALLATION_ID.accepts(&id) && id.len() == 36 && problem.is_none());
        assert_eq!(DataDir::open(dir.path()).unwrap().installation_id().unwrap().0, id);
        fs::write(dir.path().join(INSTALLATION_ID_FILE), "../../etc").unwrap();
        let (new, problem) = store.installation_id().unwrap();
        assert!(new != id && problem.is_some());
    }

    #[test]
    fn the_seen_log_survives_torn_lines_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataDir::open(dir.path()).unwrap();
        for i in 0..300 {
            store.append_seen(&format!("old-{i}"), 50).unwrap();
        }
        store.append_seen("live", 500).unwrap();
        let mut log = OpenOptions::new().append(true).open(dir.path().join(SEEN_FILE)).unwrap();
        log.write_all(b"9999 half-writ").unwrap();
        log.write_all(b"\n12 \n").unwrap();
        let (seen, problem) = DataDir::open(dir.path()).unwrap().load_seen(100);
        assert_eq!(seen, HashMap::from([("live".to_owned(), 500), ("half-writ".to_owned(), 9999)]));
        assert!(problem.is_none());
        let lines = fs::read_to_string(dir.path().join(SEEN_FILE)).unwrap().lines().count();
        assert_eq!(lines, 2, "compacted");
    }
}
