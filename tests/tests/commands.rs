//! `gen-vectors` as a user runs it: `--help` and `-h` print help and write nothing (once, the
//! whole vector set went to a new directory named `--help`); unknown options are refused.

use std::process::Command;

#[test]
fn gen_vectors_help_writes_nothing_and_unknown_options_are_refused() {
    // An empty directory of its own (this crate has no tempfile).
    let dir = std::env::temp_dir().join(format!("gen-vectors-help-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = Cleanup(dir);
    for help in ["--help", "-h"] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_gen-vectors")).arg(help).current_dir(&dir.0).output().unwrap();
        assert!(out.status.success(), "{help}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: gen-vectors"), "{help}");
    }
    let out =
        Command::new(env!("CARGO_BIN_EXE_gen-vectors")).arg("--out").current_dir(&dir.0).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option `--out`"));
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

/// Removes the directory at the end of the test, passed or failed.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
