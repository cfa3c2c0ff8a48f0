#!/usr/bin/env bash
# Builds CallPushCore.xcframework, the binary target of the root Package.swift: the Rust core as a
# static library for iOS devices (arm64), the iOS simulator (arm64 and x86_64) and macOS (arm64 and
# x86_64, where `swift test` runs). For maintainers and the release, on macOS with Xcode and
# rustup; see README.md.
#
#   build-xcframework.sh [--profile mobile|release|dev] [--skip-drift-check]
#
# --profile   the cargo profile (default: mobile, the size-optimised one apps ship; dev builds
#             fastest, for running the tests)
#
# First it checks that the committed bindings are those of this library (check.sh drift; skip
# with --skip-drift-check): an xcframework of another library than the Swift was generated from
# fails at run time, with a checksum mismatch, not at build time.
#
# The library is built as a staticlib (`cargo rustc --crate-type staticlib`: core/ builds a
# cdylib for the other bindings) for each target, the simulator and macOS slices are joined with
# lipo, and xcodebuild puts the three libraries into bindings-swift/CallPushCore.xcframework,
# which `CALLPUSH_LOCAL_CORE=1 swift test` (from the repository root) uses.
#
# Then it zips that for a release, as SwiftPM expects a binary target's archive (the
# .xcframework directory at the zip's top, `ditto -c -k --keepParent`), into
# target/packages/swift/CallPushCore.xcframework.zip, and prints the zip's checksum
# (`swift package compute-checksum`: its SHA-256, checked against `shasum -a 256`), which it also
# writes to target/packages/swift/CallPushCore.xcframework.zip.sha256. The release uploads the zip
# and runs set-release-core.sh <version> <checksum>.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

profile=mobile
drift_check=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    --skip-drift-check) drift_check=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  dev) profile_dir=debug ;;
  release | mobile) profile_dir="$profile" ;;
  *) echo "--profile must be mobile, release or dev, not $profile" >&2; exit 2 ;;
esac

if [ "$(uname -s)" != Darwin ]; then
  echo "build-xcframework.sh runs on macOS, with Xcode (xcodebuild, lipo); on Linux, check.sh checks the bindings" >&2
  exit 1
fi
for tool in cargo rustup xcodebuild lipo ditto swift shasum; do
  command -v "$tool" >/dev/null || { echo "build-xcframework.sh needs $tool" >&2; exit 1; }
done

if [ "$drift_check" = 1 ]; then
  "$here/check.sh" drift
fi

device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)
macs=(aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "$device" "${simulators[@]}" "${macs[@]}"

# The oldest systems the root Package.swift supports: code built for newer ones fails to link there.
export IPHONEOS_DEPLOYMENT_TARGET=15.0
export MACOSX_DEPLOYMENT_TARGET=12.0

cd "$root"
for target in "$device" "${simulators[@]}" "${macs[@]}"; do
  echo "==> libcallpush.a for $target ($profile)"
  # strip = true (the mobile profile) would strip the archive's symbols, which the app's link
  # needs; the app's own build strips the final binary.
  cargo rustc --quiet --locked -p callpush-ffi --lib --crate-type staticlib --target "$target" \
    --profile "$profile" --config "profile.$profile.strip=\"debuginfo\""
done
library() { echo "$root/target/$1/$profile_dir/libcallpush.a"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ios" "$work/ios-simulator" "$work/macos"
cp "$(library "$device")" "$work/ios/libcallpush.a"
lipo -create "$(library "${simulators[0]}")" "$(library "${simulators[1]}")" \
  -output "$work/ios-simulator/libcallpush.a"
lipo -create "$(library "${macs[0]}")" "$(library "${macs[1]}")" -output "$work/macos/libcallpush.a"

output="$here/CallPushCore.xcframework"
rm -rf "$output"
xcodebuild -create-xcframework \
  -library "$work/ios/libcallpush.a" \
  -library "$work/ios-simulator/libcallpush.a" \
  -library "$work/macos/libcallpush.a" \
  -output "$output"

echo "built $output ($profile):"
for slice in "$output"/*/; do
  echo "  $(basename "$slice"): $(lipo -archs "$slice/libcallpush.a")"
done

packages="$root/target/packages/swift"
zip="$packages/CallPushCore.xcframework.zip"
mkdir -p "$packages"
rm -f "$zip" "$zip.sha256"
ditto -c -k --keepParent "$output" "$zip"
checksum="$(cd "$root" && swift package compute-checksum "$zip")"
if [ "$checksum" != "$(shasum -a 256 "$zip" | awk '{ print $1 }')" ]; then
  echo "swift package compute-checksum printed $checksum, which is not the SHA-256 of $zip" >&2
  exit 1
fi
echo "$checksum" >"$zip.sha256"
echo "zipped for a release: ${zip#"$root"/} ($profile, $(du -h "$zip" | awk '{ print $1 }'))"
echo "checksum: $checksum"
