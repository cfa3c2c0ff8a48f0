#!/usr/bin/env bash
# Builds the HarmonyOS HAR of callpush: the N-API bridge for aarch64-unknown-linux-ohos with the
# OpenHarmony NDK, copied into the HAR's libs/arm64-v8a, then `hvigorw assembleHar`.
#
# Needs (none of which this repository's CI machine has, see README.md "Building the HAR"):
#   OHOS_NDK_HOME  the NDK's `native` directory (DevEco Studio / command-line tools:
#                  <sdk>/default/openharmony/native), with llvm/bin/clang and sysroot/;
#   rustup target add aarch64-unknown-linux-ohos;
#   hvigorw on PATH (command-line-tools/bin) to pack the .har; without it the script stops after
#   the .so, which is all the Rust side needs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target=aarch64-unknown-linux-ohos
profile=mobile

if [[ -z "${OHOS_NDK_HOME:-}" || ! -x "${OHOS_NDK_HOME}/llvm/bin/clang" ]]; then
  echo "build-har.sh: set OHOS_NDK_HOME to the OpenHarmony NDK's native directory (llvm/bin/clang not found)" >&2
  exit 2
fi
if ! rustup target list --installed | grep -qx "$target"; then
  echo "build-har.sh: rustup target add $target" >&2
  exit 2
fi

# The linker: the NDK's clang for the OHOS musl target, as .cargo/config.toml in README.md sets it.
wrapper="$root/target/ohos-linker/$target-clang.sh"
mkdir -p "$(dirname "$wrapper")"
cat > "$wrapper" <<SH
#!/bin/sh
exec "$OHOS_NDK_HOME/llvm/bin/clang" -target aarch64-linux-ohos --sysroot="$OHOS_NDK_HOME/sysroot" -D__MUSL__ "\$@"
SH
chmod +x "$wrapper"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_OHOS_LINKER="$wrapper"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_OHOS_AR="$OHOS_NDK_HOME/llvm/bin/llvm-ar"
export CC_aarch64_unknown_linux_ohos="$wrapper"
export AR_aarch64_unknown_linux_ohos="$OHOS_NDK_HOME/llvm/bin/llvm-ar"

(cd "$root" && cargo build --locked -p callpush-napi --target "$target" --profile "$profile")

so="$root/target/$target/$profile/libcallpush_napi.so"
mkdir -p "$here/callpush/libs/arm64-v8a"
cp "$so" "$here/callpush/libs/arm64-v8a/libcallpush_napi.so"
echo "build-har.sh: $(du -h "$so" | cut -f1) libcallpush_napi.so -> bindings-ets/callpush/libs/arm64-v8a/"

if ! command -v hvigorw >/dev/null 2>&1; then
  echo "build-har.sh: hvigorw not on PATH; open bindings-ets/ in DevEco Studio and run Build > Make Module 'callpush'" >&2
  exit 0
fi
(cd "$here" && hvigorw assembleHar --mode module -p module=callpush@default -p product=default --no-daemon)
echo "build-har.sh: bindings-ets/callpush/build/default/outputs/default/callpush.har"
