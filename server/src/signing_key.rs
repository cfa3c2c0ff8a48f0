//! The server's Ed25519 call-push signing key, kept as a PKCS#8 PEM file.
//!
//! PKCS#8 is what `openssl genpkey -algorithm ed25519` writes, so keys can be made, inspected
//! and rotated with standard tools as well as with `callpush keys`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use callpush_proto::wire::CallSigner;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;

/// Why a signing key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists and overwriting it was not asked for.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 PEM private key.
    #[error("{0} is not an Ed25519 private key in PKCS#8 PEM form")]
    NotAKey(PathBuf),
}

/// A new signing key from the operating system's random source.
pub fn generate() -> CallSigner {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    CallSigner::from_seed(&key.to_bytes())
}

/// Writes `signer` to `path` as PKCS#8 PEM, readable by its owner only.
///
/// Refuses to replace an existing file unless `force`; the file is written whole and synced
/// before this returns.
pub fn write(path: &Path, signer: &CallSigner, force: bool) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_owned(), source };
    let pem = SigningKey::from_bytes(&signer.seed())
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|_| KeyFileError::NotAKey(path.to_owned()))?;
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::Exists(path.to_owned()),
        _ => io(e),
    })?;
    file.write_all(pem.as_bytes()).and_then(|()| file.sync_all()).map_err(io)
}

/// Reads a signing key written by [`write`] or by `openssl genpkey -algorithm ed25519`.
pub fn read(path: &Path) -> Result<CallSigner, KeyFileError> {
    let pem =
        std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyFileError::NotAKey(path.to_owned()))?;
    Ok(CallSigner::from_seed(&key.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_is_never_overwritten_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let signer = generate();
        write(&path, &signer, false).unwrap();
        assert_eq!(read(&path).unwrap().public_jwk(), signer.public_jwk());
        assert!(matches!(write(&path, &generate(), false), Err(KeyFileError::Exists(_))));
        write(&path, &generate(), true).unwrap();
        assert_ne!(read(&path).unwrap().public_jwk(), signer.public_jwk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::NotAKey(_))));
    }
}
