#!/usr/bin/env bash
# Builds the callpush native library and generates its Kotlin bindings with uniffi-bindgen.
#
#   generate.sh <kotlin out dir> <native out dir>
#
# Run by Maven in generate-sources; nothing it writes is committed. CALLPUSH_CARGO_PROFILE picks
# the cargo profile (default: dev, which is what the tests load; `mobile` for release builds).
set -euo pipefail
out=${1:?kotlin output directory}
native=${2:?native library directory}
root="$(cd "$(dirname "$0")/.." && pwd)"
profile=${CALLPUSH_CARGO_PROFILE:-dev}
target_subdir=$([ "$profile" = dev ] && echo debug || echo "$profile")

cd "$root"
cargo build --quiet --locked -p callpush --profile "$profile"
case "$(uname -s)" in
  Darwin) lib=libcallpush.dylib ;;
  *) lib=libcallpush.so ;;
esac
library="$root/target/$target_subdir/$lib"

rm -rf "$out"
mkdir -p "$out" "$native"
cargo run --quiet --locked -p callpush --features bindgen --bin uniffi-bindgen -- \
  generate --library "$library" --language kotlin --out-dir "$out" --no-format
# Replace the library atomically: a process that has the old one loaded keeps its own copy.
cp "$library" "$native/.$lib.tmp"
mv -f "$native/.$lib.tmp" "$native/$lib"
echo "generated Kotlin bindings in $out from $library"
