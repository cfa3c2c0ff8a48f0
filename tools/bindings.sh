#!/usr/bin/env bash
# Every binding from one library build: generates them, or checks the committed ones.
#
#   tools/bindings.sh generate   writes the committed generated files: Swift (bindings-swift/
#                                Sources/…/Generated, the C header and module map), ArkTS (the
#                                API, the native module's types, the N-API bridge) and C#
#                                (bindings-csharp/src/Callpush/Generated/Callpush.g.cs)
#   tools/bindings.sh check      regenerates all of them into temporary directories and fails,
#                                naming the file, when a committed one differs; generates the
#                                Kotlin bindings too, which are not committed (Maven makes them
#                                at build time), so a generator failure shows here first
#
# The test command runs `check` as its first stage: a stale binding is reported before any suite
# runs against it. The library is built once, with the bindgen commands, in one cargo run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mode=${1:-}
case "$mode" in
  generate | check) ;;
  *) echo "usage: tools/bindings.sh generate|check" >&2; exit 2 ;;
esac

echo "    building the library (callpush-ffi) and the generators"
cargo build --quiet --locked -p callpush-ffi -p callpush-bindgen-ets -p callpush-bindgen-cs
cargo build --quiet --locked -p callpush-ffi --features bindgen --bin uniffi-bindgen
case "$(uname -s)" in
  Darwin) library="$root/target/debug/libcallpush.dylib" ;;
  *) library="$root/target/debug/libcallpush.so" ;;
esac

if [ "$mode" = generate ]; then
  bindings-swift/generate.sh
  bindings-ets/generate.sh
  bindings-csharp/generate.sh
  exit 0
fi

status=0
echo "    Swift: the committed bindings against the library"
bindings-swift/check.sh drift | sed 's/^/  /'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "    ArkTS: the committed API, module types and bridge against the generator"
if bindings-ets/tests/check-drift.sh "$library"; then
  echo "      ok    the three generated files are what the generator writes"
else
  status=1
fi
echo "    C#: the committed binding against the generator"
csharp=$(mktemp -d)
if bindings-csharp/generate.sh "$csharp" && cmp -s "$csharp/Callpush.g.cs" bindings-csharp/src/Callpush/Generated/Callpush.g.cs; then
  echo "      ok    Callpush.g.cs is what the generator writes"
else
  echo "      FAIL  bindings-csharp/src/Callpush/Generated/Callpush.g.cs is not what the generator writes"
  status=1
fi
rm -rf "$csharp"
echo "    Kotlin: generating (not committed)"
kotlin=$(mktemp -d)
trap 'rm -rf "$kotlin"' EXIT
if target/debug/uniffi-bindgen generate --library "$library" --language kotlin --out-dir "$kotlin" \
  --no-format >"$kotlin/log" 2>&1; then
  echo "      ok    $(find "$kotlin" -name '*.kt' | wc -l) Kotlin file(s) generated"
else
  cat "$kotlin/log"
  status=1
fi
if [ "$status" != 0 ]; then
  echo "the committed bindings are stale or do not generate: run tools/bindings.sh generate and commit" >&2
fi
exit $status
