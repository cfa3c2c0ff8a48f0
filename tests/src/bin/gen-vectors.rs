//! Writes the shared test vectors to `tests/vectors/` (or the directory given).
//!
//! Run through `tests/vectors/generate.sh`. Output is deterministic: fixed keys, fixed clock,
//! deterministic Ed25519 signatures; a test fails if the checked-in files drift from it.

use std::path::PathBuf;

use callpush_tests::vectors;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(vectors::dir);
    std::fs::create_dir_all(&dir)?;
    for stale in std::fs::read_dir(&dir)? {
        let path = stale?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            std::fs::remove_file(path)?;
        }
    }
    let all = vectors::generate();
    for vector in &all {
        std::fs::write(dir.join(format!("{}.json", vector.name)), vectors::to_file_text(vector))?;
    }
    eprintln!("wrote {} vectors to {}", all.len(), dir.display());
    Ok(())
}
