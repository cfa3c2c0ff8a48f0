//! The command as the binding checks run it, on committed fixtures: a broken Swift or C# file
//! fails the check with its position, a valid one passes, and a header's functions are listed.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syntax-check")).args(args).output().expect("the command runs")
}

#[test]
fn a_broken_swift_file_fails_with_its_position() {
    let broken = fixture("broken.swift");
    let valid = fixture("valid.swift");
    let out = run(&["swift", &valid, &broken]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("{broken}:6:78: missing `)`")), "{stdout}");
    assert!(stdout.contains(&format!("  FAIL  {broken}")), "{stdout}");
    assert!(stdout.contains(&format!("    ok  {valid}")), "{stdout}");
    assert!(stdout.contains("2 Swift files (") && stdout.contains("1 with syntax errors"), "{stdout}");
}

#[test]
fn valid_swift_passes_despite_the_known_misreadings() {
    let out = run(&["swift", &fixture("valid.swift")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_broken_csharp_file_fails_with_its_position() {
    let broken = fixture("broken.cs");
    let valid = fixture("valid.cs");
    let out = run(&["csharp", &valid, &broken]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("{broken}:10:62: missing `)`")), "{stdout}");
    assert!(stdout.contains(&format!("  FAIL  {broken}")), "{stdout}");
    assert!(stdout.contains(&format!("    ok  {valid}")), "{stdout}");
    assert!(stdout.contains("2 C# files (") && stdout.contains("1 with syntax errors"), "{stdout}");
}

#[test]
fn valid_csharp_with_preprocessor_branches_passes() {
    let out = run(&["csharp", &fixture("valid.cs")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("1 C# files (") && stdout.contains("0 with syntax errors"), "{stdout}");
}

#[test]
fn an_unreadable_file_fails() {
    for (lang, file) in [("swift", "no-such-file.swift"), ("csharp", "no-such-file.cs")] {
        let out = run(&[lang, &fixture(file)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    }
}

#[test]
fn the_functions_a_header_declares_are_listed() {
    let out = run(&["c-functions", &fixture("header.h")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(),
        ["ffi_demo_rustbuffer_alloc", "ffi_demo_rust_future_poll_u8", "ffi_demo_uniffi_contract_version"]
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&["swift"]).status.code(), Some(2));
    assert_eq!(run(&["csharp"]).status.code(), Some(2));
    assert_eq!(run(&["kotlin", "a.kt"]).status.code(), Some(2));
    assert_eq!(run(&["c-functions"]).status.code(), Some(2));
}
