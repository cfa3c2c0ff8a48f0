//! `callpush keys` as a user runs it: it writes a key file and prints that file and the key's
//! public JWK, never the private key. (`callpush-dev inspect` decodes pushes signed with such a
//! key: tools/tests/inspect.rs.)

use std::process::Command;

use serde_json::{json, Value};

#[test]
fn keys_writes_a_key_and_prints_its_file_and_public_jwk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_callpush"))
        .args(["keys", "--out", path.to_str().unwrap(), "--json"])
        .output()
        .expect("callpush runs");
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["private_key_path"], json!(std::fs::canonicalize(&path).unwrap()));
    assert!(printed["public_jwk"].get("d").is_none(), "never print the private key");
    // The printed JWK is the public half of the key in the file.
    let signer = callpush_server::signing_key::read(&path).unwrap();
    assert_eq!(printed["public_jwk"], serde_json::to_value(signer.public_jwk()).unwrap());
}
