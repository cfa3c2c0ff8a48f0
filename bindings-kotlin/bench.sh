#!/usr/bin/env bash
# Times handlePush through Kotlin with the release native library; see docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")"
export CALLPUSH_CARGO_PROFILE=${CALLPUSH_CARGO_PROFILE:-release}
mvn -q -B -pl callpush test-compile
classpath=$(mktemp)
mvn -q -B -pl callpush dependency:build-classpath -Dmdep.outputFile="$classpath"
cp=$(cat "$classpath")
exec java -Djna.library.path=callpush/target/native -cp "callpush/target/classes:callpush/target/test-classes:$cp" \
  dev.callpush.bench.HandleBenchmarkKt
