#!/usr/bin/env bash
# Times HandlePushNotification through C# (Mono) with the release native library, beside the
# Rust handle_push of `cargo bench -p callpush-client --bench handle`; see docs/performance.md.
#
#   bindings-csharp/bench.sh [pushes]      (default 12000 signed pushes)
#
# Needs what bindings-csharp/tests/run.sh installs (Mono, System.Net.Http, System.Xml.Linq).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/target/csharp-bench"
count=${1:-12000}
cd "$root"
mkdir -p "$out"
cargo build --quiet --locked --release -p callpush-ffi
cargo run --quiet --locked --release -p callpush-client --example signed_pushes -- wns "$count" bob >"$out/pushes.txt"
# shellcheck disable=SC2046 # one argument per file
mcs -langversion:7.2 -optimize+ -target:library -nologo -r:System.Net.Http.dll -r:System.Xml.Linq.dll \
  -out:"$out/Callpush.dll" $(find "$here/src/Callpush" -name '*.cs')
mcs -langversion:7.2 -optimize+ -nologo -r:"$out/Callpush.dll" -out:"$out/HandleBenchmark.exe" "$here/bench/HandleBenchmark.cs"
cp target/release/libcallpush.so "$out/"
cd "$out"
LD_LIBRARY_PATH="$out" mono --optimize=all HandleBenchmark.exe pushes.txt
