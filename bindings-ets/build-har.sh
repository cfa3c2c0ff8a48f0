#!/usr/bin/env bash
# Builds the HarmonyOS HAR of callpush on a machine with the OpenHarmony SDK:
#
#   1. the N-API bridge (bindings-ets/bridge) with the SDK's NDK, for both ABIs a HAR carries:
#        aarch64-unknown-linux-ohos -> callpush/libs/arm64-v8a/libcallpush_napi.so  (devices)
#        x86_64-unknown-linux-ohos  -> callpush/libs/x86_64/libcallpush_napi.so     (the emulator)
#   2. README.md, CHANGELOG.md and LICENSE copied into the module (ohpm requires them in the HAR;
#      callpush/.gitignore keeps the copies out of git);
#   3. `hvigorw assembleHar` (release), its .har copied to
#        target/packages/harmony/callpush-<version>.har
#
# Needs (none of which this repository's CI machine has; see README.md, "For maintainers"):
#   OHOS_NDK_HOME  the SDK's `native` directory (DevEco Studio / command-line tools:
#                  <sdk>/default/openharmony/native; openharmony-rs/setup-ohos-sdk exports it as
#                  OHOS_SDK_NATIVE, which is read when OHOS_NDK_HOME is unset), holding
#                  llvm/bin/clang and sysroot/;
#   rustup target add aarch64-unknown-linux-ohos x86_64-unknown-linux-ohos;
#   hvigorw on PATH (command-line-tools/bin) for step 3. Without it the script stops after
#   step 2 and says so: pack-har.sh then packs a source HAR of the same libraries without hvigor.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile=mobile
ndk="${OHOS_NDK_HOME:-${OHOS_SDK_NATIVE:-}}"
fail() { echo "build-har.sh: $*" >&2; exit 2; }

[[ -n "$ndk" ]] ||
  fail "OHOS_NDK_HOME is not set: set it to the OpenHarmony SDK's native directory (<sdk>/default/openharmony/native, with llvm/bin/clang and sysroot/)"
[[ -x "$ndk/llvm/bin/clang" ]] ||
  fail "$ndk has no llvm/bin/clang: OHOS_NDK_HOME must be the OpenHarmony SDK's native directory (<sdk>/default/openharmony/native)"
[[ -d "$ndk/sysroot" ]] || fail "$ndk/sysroot is missing: OHOS_NDK_HOME must be the SDK's native directory"
missing=()
for target in aarch64-unknown-linux-ohos x86_64-unknown-linux-ohos; do
  rustup target list --installed | grep -qx "$target" || missing+=("$target")
done
[[ ${#missing[@]} -eq 0 ]] || fail "rustup target add ${missing[*]}"

version="$("$root/release/version.sh")"
declared="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$here/callpush/oh-package.json5")"
[[ "$declared" == "$version" ]] ||
  fail "bindings-ets/callpush/oh-package.json5 says version \"$declared\", release/version.sh says $version"
for f in CHANGELOG.md LICENSE; do
  [[ -s "$root/$f" ]] || fail "$f is missing at the repository's root: ohpm refuses a HAR without it"
done

# 1. The library for each ABI. The linker: the NDK's clang for the OHOS musl target, as the Rust
# platform-support page for *-unknown-linux-ohos sets it up.
for pair in aarch64-unknown-linux-ohos:arm64-v8a x86_64-unknown-linux-ohos:x86_64; do
  target="${pair%%:*}"
  abi="${pair#*:}"
  clang_target="${target/-unknown/}"
  wrapper="$root/target/ohos-linker/$target-clang.sh"
  mkdir -p "$(dirname "$wrapper")"
  cat >"$wrapper" <<SH
#!/bin/sh
exec "$ndk/llvm/bin/clang" -target $clang_target --sysroot="$ndk/sysroot" -D__MUSL__ "\$@"
SH
  chmod +x "$wrapper"
  env_target="$(tr 'a-z-' 'A-Z_' <<<"$target")"
  export "CARGO_TARGET_${env_target}_LINKER=$wrapper"
  export "CARGO_TARGET_${env_target}_AR=$ndk/llvm/bin/llvm-ar"
  export "CC_${target//-/_}=$wrapper"
  export "AR_${target//-/_}=$ndk/llvm/bin/llvm-ar"

  (cd "$root" && cargo build --locked -p callpush-napi --target "$target" --profile "$profile")
  so="$root/target/$target/$profile/libcallpush_napi.so"
  mkdir -p "$here/callpush/libs/$abi"
  cp "$so" "$here/callpush/libs/$abi/libcallpush_napi.so"
  echo "build-har.sh: $(du -h "$so" | cut -f1) libcallpush_napi.so ($target) -> bindings-ets/callpush/libs/$abi/"
done

# 2. What ohpm requires in the HAR: one committed copy each, copied in for the build.
cp "$here/README.md" "$here/callpush/README.md"
cp "$root/CHANGELOG.md" "$here/callpush/CHANGELOG.md"
cp "$root/LICENSE" "$here/callpush/LICENSE"

# 3. The HAR.
if ! command -v hvigorw >/dev/null 2>&1; then
  echo "build-har.sh: hvigorw not on PATH (HarmonyOS command-line tools, or DevEco Studio's Build > Make Module 'callpush');" >&2
  echo "build-har.sh: bindings-ets/pack-har.sh packs a source HAR of these libraries without it" >&2
  exit 0
fi
(cd "$here" && hvigorw assembleHar --mode module -p module=callpush@default -p product=default \
  -p buildMode=release --no-daemon)
mkdir -p "$root/target/packages/harmony"
har="$root/target/packages/harmony/callpush-$version.har"
cp "$here/callpush/build/default/outputs/default/callpush.har" "$har"
echo "build-har.sh: $har (check it with bindings-ets/check-package.sh $har)"
