//! Writes the shared test vectors to `tests/vectors/` (or the directory given).
//!
//! Run through `tests/vectors/generate.sh`. Output is deterministic: fixed keys, fixed clock,
//! deterministic Ed25519 signatures; a test fails if the checked-in files drift from it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use callpush_tests::vectors;

const USAGE: &str = "\
gen-vectors: write the shared test vectors (deterministic) as <name>.json files

Usage: gen-vectors [DIR]

Arguments:
  [DIR]  where to write them (created if missing; its stale .json files are removed, except those
         made by another JOSE implementation, `*-v2-jose-*`)
         [default: tests/vectors of this checkout]

Options:
  -h, --help  print this help and write nothing";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Print the usage; write nothing.
    Help,
    /// Write the vectors to this directory.
    Write(PathBuf),
}

/// Reads the arguments (without the program name). Anything that looks like an option and is
/// not `-h`/`--help` is an error, never a directory name.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Action, String> {
    let mut dir = None;
    let mut options_ended = false;
    for arg in args {
        let text = arg.to_string_lossy();
        if !options_ended && (text == "-h" || text == "--help") {
            return Ok(Action::Help);
        }
        if !options_ended && text == "--" {
            options_ended = true;
            continue;
        }
        if !options_ended && text.starts_with('-') && text != "-" {
            return Err(format!("unknown option `{text}`"));
        }
        if dir.replace(PathBuf::from(arg)).is_some() {
            return Err("one directory at most".into());
        }
    }
    Ok(Action::Write(dir.unwrap_or_else(vectors::dir)))
}

fn write(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    for stale in std::fs::read_dir(dir)? {
        let path = stale?.path();
        let elsewhere = path.file_stem().and_then(|s| s.to_str()).is_some_and(vectors::made_elsewhere);
        if path.extension().is_some_and(|ext| ext == "json") && !elsewhere {
            std::fs::remove_file(path)?;
        }
    }
    let all = vectors::generate();
    for vector in &all {
        std::fs::write(dir.join(format!("{}.json", vector.name)), vectors::to_file_text(vector))?;
    }
    Ok(all.len())
}

fn main() -> ExitCode {
    match parse(std::env::args_os().skip(1)) {
        Ok(Action::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Action::Write(dir)) => match write(&dir) {
            Ok(n) => {
                eprintln!("wrote {n} vectors to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen-vectors: writing to {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("gen-vectors: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Action, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn help_is_help_and_options_are_never_directories() {
        for help in [&["--help"][..], &["-h"], &["out", "--help"], &["-h", "--bogus"]] {
            assert_eq!(parsed(help), Ok(Action::Help), "{help:?}");
        }
        assert_eq!(parsed(&[]), Ok(Action::Write(vectors::dir())));
        assert_eq!(parsed(&["out"]), Ok(Action::Write("out".into())));
        assert_eq!(parsed(&["--", "--help"]), Ok(Action::Write("--help".into())), "after `--`, a name");
        for bad in [&["--out"][..], &["-x"], &["a", "b"]] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
    }
}
