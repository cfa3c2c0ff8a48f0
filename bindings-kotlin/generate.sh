#!/usr/bin/env bash
# Builds the callpush native library and generates its Kotlin bindings with uniffi-bindgen; builds
# the callpush server the JVM tests run against.
#
#   generate.sh <kotlin out dir> <native out dir> [<server out dir>]
#
# Run by Maven in generate-sources; nothing it writes is committed. CALLPUSH_CARGO_PROFILE picks
# the cargo profile (default: dev, which is what the tests load; `mobile` for release builds).
# With a server out dir, the `callpush` server binary is built with the same profile and copied
# there (LifecycleTest starts it with `callpush serve`).
set -euo pipefail
out=${1:?kotlin output directory}
native=${2:?native library directory}
server_out=${3:-}
root="$(cd "$(dirname "$0")/.." && pwd)"
profile=${CALLPUSH_CARGO_PROFILE:-dev}
target_subdir=$([ "$profile" = dev ] && echo debug || echo "$profile")

cd "$root"
# The library, and the server when asked for, in one cargo run: the server depends on
# callpush-proto alone, so nothing of its HTTP stack reaches the library.
if [ -n "$server_out" ]; then
  cargo build --quiet --locked -p callpush-ffi -p callpush-server --lib --bin callpush --profile "$profile"
else
  cargo build --quiet --locked -p callpush-ffi --profile "$profile"
fi
case "$(uname -s)" in
  Darwin) lib=libcallpush.dylib ;;
  *) lib=libcallpush.so ;;
esac
library="$root/target/$target_subdir/$lib"

rm -rf "$out"
mkdir -p "$out" "$native"
cargo run --quiet --locked -p callpush-ffi --features bindgen --bin uniffi-bindgen -- \
  generate --library "$library" --language kotlin --out-dir "$out" --no-format
# Replace the library atomically: a process that has the old one loaded keeps its own copy.
cp "$library" "$native/.$lib.tmp"
mv -f "$native/.$lib.tmp" "$native/$lib"
echo "generated Kotlin bindings in $out from $library"

if [ -n "$server_out" ]; then
  # Atomically too: a server still running from the last test run keeps its own copy, and a
  # cargo build of the workspace racing this one never leaves the tests a half-written binary.
  mkdir -p "$server_out"
  cp "$root/target/$target_subdir/callpush" "$server_out/.callpush.tmp"
  mv -f "$server_out/.callpush.tmp" "$server_out/callpush"
  echo "copied the callpush server to $server_out"
fi
