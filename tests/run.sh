#!/usr/bin/env bash
# Runs every test suite of callpush. This is the README's test command and what CI runs.
#
# It installs what it needs itself, so it works on a fresh machine with only the toolchains
# the README lists. Each stage prints its name and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

# One full build: incremental state would only take disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

started=$SECONDS
stage() {
  printf '\n\033[1m==> %s\033[0m\n' "$*"
  stage_started=$SECONDS
}
done_stage() {
  printf '    (%ss)\n' "$((SECONDS - stage_started))"
}

stage "Bindings: Swift, ArkTS, C# and Kotlin generate from the library; the committed ones are current"
tools/bindings.sh check
done_stage

stage "Rust: formatting"
cargo fmt --all -- --check
done_stage

stage "Rust: lints"
cargo clippy --locked --workspace --all-targets -- -D warnings
done_stage

stage "Workflows: actionlint over .github/workflows"
tools/lint-workflows.sh
done_stage

stage "PostgreSQL for the storage tests"
CALLPUSH_TEST_POSTGRES_URL=$(tests/postgres.sh start)
export CALLPUSH_TEST_POSTGRES_URL CALLPUSH_REQUIRE_POSTGRES=1
trap 'tests/postgres.sh stop' EXIT
echo "    $CALLPUSH_TEST_POSTGRES_URL"
done_stage

stage "Independent provider clients (Firebase Admin, django-push-notifications, PyJWT, node-apn)"
CALLPUSH_TEST_PYTHON=$(tests/clients/install.sh)
export CALLPUSH_TEST_PYTHON CALLPUSH_REQUIRE_INDEPENDENT_CLIENT=1
done_stage

stage "Independent JOSE implementation (jose, npm) for the wire v2 test (tools/tests/independent_jose.rs)"
tools/tests/jose/install.sh
done_stage

stage "Rust: unit, property, vector, client, server (SQLite and PostgreSQL), provider emulator and command (callpush, callpush-dev) tests"
cargo test --locked --workspace
done_stage

stage "Server: the curl tour of server/README.md, run as written against a fresh server (callpush serve --dev)"
# Extracts the block marked <!-- tour --> and runs it with bash -euo pipefail; fails if the
# block is missing or any line of it fails. (server/tests/commands.rs checks that it does.)
server/examples/api-tour.sh --bin target/debug --quiet
done_stage

stage "Server: property-based run of the API from its OpenAPI document (schemathesis)"
tests/openapi/run.sh
done_stage

stage "Server: generated OpenAPI clients (Python, TypeScript) decode a full tour without losing a field"
tests/openapi-clients/run.sh
done_stage

stage "Server: /metrics read by Prometheus' own parser (prometheus_client, tests/metrics)"
tests/metrics/check.sh
done_stage

stage "Swift: the root Package.swift, syntax, C header and symbols (no Swift compiler here)"
bindings-swift/check.sh
done_stage

stage "Kotlin: generated bindings, JVM tests and the Android glue (Maven)"
command -v mvn >/dev/null || tests/apt-install.sh maven
mvn -B -ntp -f bindings-kotlin/pom.xml verify
done_stage

stage "ArkTS: lint, tsc and the Node suite (bridge, vectors, flows, the HAR packed and checked)"
bindings-ets/tests/run.sh
done_stage

stage "C#: the binding under Mono (warnings as errors), NUnit (vectors, callbacks, toasts, flows) and the Windows-only files' syntax"
bindings-csharp/tests/run.sh
done_stage

stage "Packages: one version everywhere, the notes and license, the AAR and its POM, the NuGet layout, the server's image, unit and configuration (release/check.sh)"
release/check.sh
done_stage

printf '\n\033[1mAll suites passed in %ss.\033[0m\n' "$((SECONDS - started))"
