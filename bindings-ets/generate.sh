#!/usr/bin/env bash
# Regenerates the committed ArkTS bindings of callpush from the component interface of the built
# core library:
#
#   bindings-ets/callpush/src/main/ets/generated/callpush.ets              the ArkTS API
#   bindings-ets/callpush/src/main/cpp/types/libcallpush_napi/index.d.ts   the native module's types
#   bindings-ets/bridge/src/generated.rs                                    the N-API bridge
#
#   generate.sh [<out dir>]
#
# With an out dir, the three files are written there instead (the drift check of tests/run.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --quiet --locked -p callpush-ffi -p callpush-bindgen-ets
library="$root/target/debug/libcallpush.so"
out=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/target/debug/callpush-bindgen-ets" --library "$library" --out-dir "$tmp"
if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$tmp/callpush.ets" "$tmp/index.d.ts" "$tmp/generated.rs" "$out/"
  exit 0
fi
mkdir -p bindings-ets/callpush/src/main/ets/generated bindings-ets/callpush/src/main/cpp/types/libcallpush_napi
cp "$tmp/callpush.ets" bindings-ets/callpush/src/main/ets/generated/callpush.ets
cp "$tmp/index.d.ts" bindings-ets/callpush/src/main/cpp/types/libcallpush_napi/index.d.ts
cp "$tmp/generated.rs" bindings-ets/bridge/src/generated.rs
echo "generated the ArkTS API, the native module declaration and the N-API bridge from $library"
