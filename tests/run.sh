#!/usr/bin/env bash
# Runs every test suite of callpush. This is the README's test command and what CI runs.
#
# It installs what it needs itself, so it works on a fresh machine with only the toolchains
# the README lists. Each stage prints its name and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
stage() {
  printf '\n\033[1m==> %s\033[0m\n' "$*"
  stage_started=$SECONDS
}
done_stage() {
  printf '    (%ss)\n' "$((SECONDS - stage_started))"
}

stage "Rust: formatting"
cargo fmt --all -- --check
done_stage

stage "Rust: lints"
cargo clippy --locked --workspace --all-targets -- -D warnings
done_stage

stage "Rust: unit, property, vector and command tests"
cargo test --locked --workspace
done_stage

stage "Kotlin: generated bindings, JVM tests and the Android glue (Maven)"
command -v mvn >/dev/null || { apt-get update -qq && apt-get install -y -qq maven; }
mvn -B -ntp -f bindings-kotlin/pom.xml verify
done_stage

printf '\n\033[1mAll suites passed in %ss.\033[0m\n' "$((SECONDS - started))"
