#!/usr/bin/env bash
# Regenerates the shared test vectors from the encoder. Commit the result.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo run --quiet -p callpush-tests --bin gen-vectors -- tests/vectors
