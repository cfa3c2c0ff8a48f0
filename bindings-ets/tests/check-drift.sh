#!/usr/bin/env bash
# Fails when the committed generated files differ from what the generator writes for <library>.
#
#   check-drift.sh <libcallpush.so> [<bindings-ets dir>]
#
# The second argument lets the tests point it at a modified copy.
set -euo pipefail
library=${1:?path to libcallpush.so}
here="$(cd "$(dirname "$0")" && pwd)"
ets=${2:-"$(cd "$here/.." && pwd)"}
root="$(cd "$here/../.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/target/debug/callpush-bindgen-ets" --library "$library" --out-dir "$tmp"
status=0
for pair in \
  "callpush.ets:callpush/src/main/ets/generated/callpush.ets" \
  "index.d.ts:callpush/src/main/cpp/types/libcallpush_napi/index.d.ts" \
  "generated.rs:bridge/src/generated.rs"; do
  if ! diff -q "$tmp/${pair%%:*}" "$ets/${pair#*:}" >/dev/null 2>&1; then
    echo "bindings-ets/${pair#*:} is not what the generator writes: run bindings-ets/generate.sh" >&2
    status=1
  fi
done
exit $status
