#!/usr/bin/env bash
# Packs the HarmonyOS HAR of callpush without hvigor: the module's sources and its native library
# laid out as hvigor packs a source HAR (tests/har/pack.js), in a gzipped tar whose entries all
# sit under `package/`, as every .har is.
#
#   pack-har.sh                  the libraries build-har.sh cross-built, from
#                                callpush/libs/arm64-v8a and callpush/libs/x86_64
#                                -> target/packages/harmony/callpush-<version>.har
#   pack-har.sh --host-stand-in  the host's target/debug/libcallpush_napi.so (built here) standing
#                                in for both ABIs, to check the package's layout on a machine
#                                without the OpenHarmony SDK; never publish it
#                                -> target/packages/harmony/callpush-<version>-host-stand-in.har
#
# The version is release/version.sh's; the script stops when callpush/oh-package.json5 says
# another. README.md is bindings-ets/README.md, CHANGELOG.md and LICENSE the repository's
# (CALLPUSH_PACKAGE_DOCS=<dir> reads those two from another directory). Prints the .har's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out_dir="$root/target/packages/harmony"
docs="${CALLPUSH_PACKAGE_DOCS:-$root}"
mode=cross

case "${1:-}" in
  "") ;;
  --host-stand-in) mode=stand-in ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "pack-har.sh: unknown option $1 (--host-stand-in or nothing)" >&2; exit 2 ;;
esac

fail() { echo "pack-har.sh: $*" >&2; exit 1; }

version="$("$root/release/version.sh")"
declared="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$here/callpush/oh-package.json5")"
[[ "$declared" == "$version" ]] ||
  fail "bindings-ets/callpush/oh-package.json5 says version \"$declared\", release/version.sh says $version"

for f in "$docs/CHANGELOG.md" "$docs/LICENSE"; do
  [[ -s "$f" ]] || fail "$f is missing or empty: ohpm refuses a HAR without a non-empty $(basename "$f")"
done

# json5, which pack.js reads the module's .json5 files with (bindings-ets/tests/package.json).
if ! cmp -s "$here/tests/package-lock.json" "$here/tests/node_modules/.installed-lock.json"; then
  (cd "$here/tests" && npm ci --silent --no-audit --no-fund)
  cp "$here/tests/package-lock.json" "$here/tests/node_modules/.installed-lock.json"
fi

if [[ "$mode" == stand-in ]]; then
  (cd "$root" && cargo build --quiet --locked -p callpush-napi)
  # Without its debug information (26 MB -> 6 MB), where strip is at hand, so packing and
  # checking take seconds; the release profile strips the real ones (`mobile`, strip = true).
  mkdir -p "$out_dir"
  arm64="$out_dir/.libcallpush_napi.host.so"
  cp "$root/target/debug/libcallpush_napi.so" "$arm64"
  if command -v strip >/dev/null 2>&1; then strip --strip-debug "$arm64" 2>/dev/null || true; fi
  x86_64="$arm64"
  har="$out_dir/callpush-$version-host-stand-in.har"
else
  arm64="$here/callpush/libs/arm64-v8a/libcallpush_napi.so"
  x86_64="$here/callpush/libs/x86_64/libcallpush_napi.so"
  for so in "$arm64" "$x86_64"; do
    [[ -f "$so" ]] || fail "$so is missing: run bindings-ets/build-har.sh (OpenHarmony NDK), or pack-har.sh --host-stand-in"
  done
  har="$out_dir/callpush-$version.har"
fi

stage="$out_dir/.stage-$(basename "$har" .har)"
trap 'rm -rf "$stage" "$out_dir/.libcallpush_napi.host.so"' EXIT
mkdir -p "$out_dir"
node "$here/tests/har/pack.js" --ets "$here" --stage "$stage" \
  --readme "$here/README.md" --changelog "$docs/CHANGELOG.md" --license "$docs/LICENSE" \
  --lib "arm64-v8a=$arm64" --lib "x86_64=$x86_64"

# The same bytes for the same inputs where GNU tar allows it.
tar_flags=()
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
  tar_flags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
fi
tar -C "$stage" "${tar_flags[@]}" -cf - package | gzip -9n >"$har.tmp"
mv "$har.tmp" "$har"
echo "$har"
