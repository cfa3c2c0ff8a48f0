#!/usr/bin/env bash
# The ArkTS suite: builds the N-API bridge for the host, lints every .ets of the HAR with the
# ArkTS linter, compiles the HAR sources and the tests with tsc, and runs the Node tests
# (runtime/ and flow/). Run from anywhere; tests/run.sh calls it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/target/ets-tests"
cd "$root"

step() { printf '    %s\n' "$*"; }

# 1. Node packages (typescript, ohos-typescript), pinned by package-lock.json.
if ! cmp -s "$here/package-lock.json" "$here/node_modules/.installed-lock.json"; then
  step "installing typescript and ohos-typescript into bindings-ets/tests/node_modules"
  (cd "$here" && npm ci --silent --no-audit --no-fund)
  cp "$here/package-lock.json" "$here/node_modules/.installed-lock.json"
fi

# 2. The server the flow tests run against, its emulators, then the bridge for the host as a Node
# addon. The committed generated files were checked against the generator by tools/bindings.sh,
# which the test command runs first.
step "building the server, its emulators (callpush-dev), the bridge (callpush-napi), the library and the generator"
cargo build --quiet --locked -p callpush-server --bin callpush -p callpush-dev --bin callpush-dev
# The library and the bridge in a run of their own: callpush-dev's simulated devices use the
# client's reqwest transport, which the library apps load does not carry.
cargo build --quiet --locked -p callpush-napi -p callpush-ffi -p callpush-bindgen-ets
rm -rf "$build"
mkdir -p "$build/addon"
cp "$root/target/debug/libcallpush_napi.so" "$build/addon/callpush_napi.node"

# 3. The ArkTS linter over every .ets of the HAR.
step "ArkTS linter"
ETS_LINT_CACHE="$build" node "$here/lint.js" "$root/bindings-ets/callpush" | sed 's/^/      /'
test "${PIPESTATUS[0]}" -eq 0

# 4. tsc over the HAR sources (.ets as .ts) and the tests.
step "compiling the HAR sources and the tests with tsc"
mkdir -p "$build/src/tests"
# Everything but the hvigor build scripts, which need DevEco's build system.
(cd "$root/bindings-ets" && find callpush -type f \( -name '*.ets' -o -name '*.ts' \) \
  -not -name 'hvigorfile.ts' -not -path '*/node_modules/*' -not -path '*/oh_modules/*' -print0) |
  while IFS= read -r -d '' f; do
    dest="$build/src/${f%.ets}"
    [ "$f" = "${f%.ets}" ] && dest="$build/src/$f" || dest="$dest.ts"
    mkdir -p "$(dirname "$dest")"
    cp "$root/bindings-ets/$f" "$dest"
  done
for d in runtime flow kits; do
  if [ -d "$here/$d" ]; then cp -r "$here/$d" "$build/src/tests/$d"; fi
done
# The generated module with its runtime exported, for runtime/internals.test.ts.
mkdir -p "$build/src/tests/internals"
{
  cat "$root/bindings-ets/callpush/src/main/ets/generated/callpush.ets"
  echo 'export { UniffiHandleMap, UniffiReader, UniffiWriter, uniffiDurationRead, uniffiDurationWrite,'
  echo '  uniffiTimestampRead, uniffiTimestampWrite, uniffiUtf8Decode, uniffiUtf8Encode };'
} >"$build/src/tests/internals/callpush_internals.ts"
node "$here/node_modules/typescript/bin/tsc" -p "$here/tsconfig.json"

# Module resolution at run time: the native module and the @kit fakes, as node_modules shims.
shim() { mkdir -p "$build/out/node_modules/$1" && printf '%s\n' "$2" >"$build/out/node_modules/$1/index.js"; }
shim libcallpush_napi.so "module.exports = require('$build/addon/callpush_napi.node');"
if [ -d "$build/out/tests/kits" ]; then
  for k in "$build"/out/tests/kits/*.js; do
    name=$(basename "$k" .js)
    shim "@kit.$name" "module.exports = require('$k');"
  done
fi

# 5. The Node tests.
step "node --test (runtime and flow)"
tests=()
for f in "$build"/out/tests/runtime/*.test.js "$build"/out/tests/flow/*.test.js; do
  [ -e "$f" ] && tests+=("$f")
done
CALLPUSH_VECTORS="$root/tests/vectors" CALLPUSH_ETS_ROOT="$root/bindings-ets" \
  CALLPUSH_LIBRARY="$root/target/debug/libcallpush.so" \
  node --test --test-reporter=dot "${tests[@]}"
