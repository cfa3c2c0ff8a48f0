#!/usr/bin/env bash
# Points the root Package.swift at a release's xcframework: rewrites its two constants,
#
#   let coreVersion = "<version>"      the binary target's url is .../releases/download/v<version>/
#                                      CallPushCore.xcframework.zip
#   let coreChecksum = "<checksum>"    the SHA-256 of that zip, as `swift package compute-checksum`
#                                      prints it (build-xcframework.sh prints it too)
#
#   set-release-core.sh <version> <checksum>
#
# The release workflow runs it after uploading the zip, then commits "Release <version>" and tags
# that commit v<version>: the tagged manifest names its own zip (README.md, "Releasing"). The
# version is semver (MAJOR.MINOR.PATCH, an optional -pre-release) and must be what
# release/version.sh prints, which `check.sh package` checks; the checksum is 64 hex digits,
# written in lower case. Nothing else in the file changes; it is rewritten whole or not at all.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
manifest="$root/Package.swift"

usage() { echo "usage: set-release-core.sh <version> <checksum>   (see the comment at its top)" >&2; exit 2; }
[ $# -eq 2 ] || usage
version="$1"
checksum="$(printf '%s' "$2" | tr 'A-F' 'a-f')"

# Semantic versioning 2.0.0, less build metadata (a `+` has no place in a tag SwiftPM resolves).
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
if ! [[ "$version" =~ $semver ]]; then
  echo "set-release-core.sh: '$version' is not a version like 1.2.3 or 1.2.3-rc.1" >&2
  exit 1
fi
if ! [[ "$checksum" =~ ^[0-9a-f]{64}$ ]]; then
  echo "set-release-core.sh: '$2' is not a checksum: 64 hex digits, the SHA-256 of the zip" >&2
  exit 1
fi
if [ "$checksum" = "$(printf '0%.0s' {1..64})" ]; then
  echo "set-release-core.sh: all zeros is the placeholder of an unreleased manifest, not a zip's checksum" >&2
  exit 1
fi
expected="$("$root/release/version.sh")"
if [ "$version" != "$expected" ]; then
  echo "set-release-core.sh: release/version.sh prints $expected, not $version: set the version in Cargo.toml first" >&2
  exit 1
fi

# Exactly one line of each, as Package.swift writes them.
for name in coreVersion coreChecksum; do
  count="$(grep -cE "^let $name = \"[^\"]*\"\$" "$manifest" || true)"
  if [ "$count" != 1 ]; then
    echo "set-release-core.sh: Package.swift has $count lines 'let $name = \"…\"', not one" >&2
    exit 1
  fi
done

tmp="$manifest.tmp.$$"
trap 'rm -f "$tmp"' EXIT
awk -v version="$version" -v checksum="$checksum" '
  /^let coreVersion = "[^"]*"$/ { print "let coreVersion = \"" version "\""; next }
  /^let coreChecksum = "[^"]*"$/ { print "let coreChecksum = \"" checksum "\""; next }
  { print }
' "$manifest" >"$tmp"
mv -f "$tmp" "$manifest"
trap - EXIT
echo "Package.swift: CallPushCore is v$version's CallPushCore.xcframework.zip, checksum $checksum"
