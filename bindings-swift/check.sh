#!/usr/bin/env bash
# Checks the Swift binding on a machine without a Swift compiler; the README's test command
# (tests/run.sh) runs it. XCTest, which needs one, runs on macOS (README.md).
#
#   check.sh [checker] [drift] [package] [syntax] [header] [symbols]
#            (default: all but drift, in this order; tools/bindings.sh check runs drift, first,
#            with the other bindings' drift checks)
#
#   checker  builds tools/syntax-check (tree-sitter's Swift, C# and C grammars), checks its
#            formatting and lints, and runs its tests, which prove that a broken Swift file
#            fails the syntax check, with its position
#   drift    generates the bindings afresh from the library (generate.sh into a temporary
#            directory) and fails when the committed ones differ: run generate.sh and commit
#   package  the package's one manifest, Package.swift at the repository root: it parses with
#            the tree-sitter Swift grammar; its tools version has Context.environment (5.6 or
#            later); `let coreVersion` is what release/version.sh prints and `let coreChecksum`
#            64 lower-case hex digits (all zeros before the first release; with
#            CALLPUSH_RELEASED=1, as the release runs it after set-release-core.sh, that fails);
#            the binary target CallPushCore is the release's zip
#            (https://github.com/callpush/callpush/releases/download/v<coreVersion>/
#            CallPushCore.xcframework.zip, checksum coreChecksum), or with CALLPUSH_LOCAL_CORE=1
#            the xcframework build-xcframework.sh writes (git-ignored); every other `path:` is a
#            directory of this repository; the products and targets, with their paths, are those
#            the README lists under "The package"; its platforms are build-xcframework.sh's
#            deployment targets. Then its self-test: copies of the manifest with a wrong path, a
#            version other than release/version.sh's and a short checksum must each fail, with
#            the message that names the fault
#   syntax   parses every .swift file under bindings-swift/ (generated, hand-written and Tests)
#            with the tree-sitter Swift grammar; any ERROR or MISSING node fails, reported as
#            file:line:column (the root Package.swift is the package stage's)
#   header   compiles the generated C header as C11 with the C compiler (-Wall -Wextra -Wpedantic
#            -Werror), and the C target's source that includes it; checks the module map
#   symbols  every function the header declares is defined by the built library (nm), and every
#            FFI function the generated Swift calls is one the header declares
#
# The grammar is not the compiler: a file it accepts may still not type-check. It catches what
# breaks a file's structure (a lost brace or parenthesis, a mangled declaration).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
checker_dir="$root/tools/syntax-check"
checker="$checker_dir/target/release/syntax-check"
# The generated files, as committed (generate.sh writes the same paths under its out dir).
generated=(
  Sources/CallPush/Generated/callpush.swift
  Sources/CallPushFFI/include/CallPushFFI.h
  Sources/CallPushFFI/include/module.modulemap
)
header="$here/Sources/CallPushFFI/include/CallPushFFI.h"
# The package's manifest, at the root so that an app adds the repository by its URL.
manifest="$root/Package.swift"
release_download="https://github.com/callpush/callpush/releases/download"
# Where build-xcframework.sh writes the xcframework, which CALLPUSH_LOCAL_CORE=1 uses.
local_core="bindings-swift/CallPushCore.xcframework"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
drift_checked=0
pass() { echo "    ok    $*"; passed=$((passed + 1)); }
fail() { echo "    FAIL  $*"; failed=$((failed + 1)); }

# The checker's own tests include the negative one: a committed broken Swift file must fail.
check_checker() {
  echo "  checker: building syntax-check (tree-sitter's Swift, C# and C grammars)..."
  local manifest="$checker_dir/Cargo.toml"
  if cargo fmt --manifest-path "$manifest" -- --check >"$scratch/checker.log" 2>&1 \
    && cargo clippy --quiet --locked --release --all-targets --manifest-path "$manifest" -- -D warnings \
      >>"$scratch/checker.log" 2>&1 \
    && cargo test --quiet --locked --release --manifest-path "$manifest" >>"$scratch/checker.log" 2>&1; then
    pass "syntax-check is formatted, lint-free and passes its $(awk '/^test result:/ { n += $4 } END { print n + 0 }' "$scratch/checker.log") tests, which fail a broken Swift file and a broken C# file"
  else
    cat "$scratch/checker.log"
    fail "syntax-check"
    echo "the syntax checker does not build or pass its tests; the other checks need it" >&2
    summary
  fi
}

check_drift() {
  echo "  drift: regenerating the bindings from the library"
  local fresh="$scratch/fresh" stale=0 file
  if ! "$here/generate.sh" "$fresh" >"$scratch/generate.log" 2>&1; then
    cat "$scratch/generate.log"
    fail "generate.sh failed"
    return
  fi
  for file in "${generated[@]}"; do
    if [ ! -f "$here/$file" ]; then
      echo "          bindings-swift/$file is not committed"
      stale=1
    elif ! diff -u --label "committed/$file" --label "generated/$file" "$here/$file" "$fresh/$file" \
      >"$scratch/drift.diff"; then
      echo "          bindings-swift/$file differs from what the library generates:"
      head -n 40 "$scratch/drift.diff" | sed 's/^/            /'
      stale=1
    fi
  done
  # Nothing else may sit among the generated files: a stale leftover would be compiled too.
  for file in "$here"/Sources/CallPush/Generated/* "$here"/Sources/CallPushFFI/include/*; do
    case " ${generated[*]} " in
      *" ${file#"$here"/} "*) ;;
      *) echo "          ${file#"$root"/} is not generated by generate.sh"; stale=1 ;;
    esac
  done
  drift_checked=1
  if [ "$stale" = 0 ]; then
    pass "the committed bindings are what the library generates (${#generated[@]} files)"
  else
    fail "the committed Swift bindings are stale: run bindings-swift/generate.sh and commit what it writes"
  fi
}

# The targets and products a manifest declares, one a line: `product NAME`, `target NAME PATH`,
# `test target NAME PATH`, `binary target NAME PATH` (the local xcframework) and
# `binary target NAME url` (the release's zip); PATH is `-` when there is none. Each declaration
# is read from its `.target(` to its closing parenthesis, which may be lines later.
manifest_declarations() {
  awk '
    function opened(s) { return gsub(/\(/, "(", s) - gsub(/\)/, ")", s) }
    function emit(    name, path, words) {
      name = "-"; path = "-"
      if (match(buf, /name: *"[^"]*"/)) { name = substr(buf, RSTART, RLENGTH); sub(/^name: *"/, "", name); sub(/"$/, "", name) }
      if (match(buf, /path: *"[^"]*"/)) { path = substr(buf, RSTART, RLENGTH); sub(/^path: *"/, "", path); sub(/"$/, "", path) }
      else if (buf ~ /url: *"/) path = "url"
      words = kind == "library" ? "product" : kind == "testTarget" ? "test target" : kind == "binaryTarget" ? "binary target" : kind
      if (kind == "library") print words, name
      else print words, name, path
      depth = 0; buf = ""
    }
    /^[ \t]*\/\// { next }
    depth > 0 { buf = buf " " $0; depth += opened($0); if (depth <= 0) emit(); next }
    match($0, /\.(library|executable|plugin|target|testTarget|binaryTarget|executableTarget|systemLibrary|macro)\(/) {
      kind = substr($0, RSTART + 1, RLENGTH - 2)
      buf = substr($0, RSTART)
      depth = opened(buf)
      if (depth <= 0) emit()
    }
  ' "$1"
}

# What the README lists under "The package", in the same form: lines like
#   - target `CallPush`, in `bindings-swift/Sources/CallPush`: ...
readme_declarations() {
  awk '
    /^### The package$/ { on = 1; next }
    on && /^#/ { exit }
    on && match($0, /^- (product|target|test target|binary target) `[A-Za-z0-9_]+`/) {
      head = substr($0, 3, RLENGTH - 2)
      kind = head; sub(/ `.*$/, "", kind)
      name = head; sub(/^[^`]*`/, "", name); sub(/`$/, "", name)
      path = "-"
      rest = substr($0, RLENGTH + 1)
      if (match(rest, /^, in `[^`]+`/)) { path = substr(rest, 7, RLENGTH - 7) }
      if (kind == "product") print kind, name
      else print kind, name, path
    }
  ' "$here/README.md"
}

# Prints what is wrong with a manifest, one fault a line; fails when anything is. Paths in it are
# taken from the repository root, wherever the file is (the self-test checks copies).
manifest_faults() {
  local file="$1" version faults=0
  fault() { echo "$*"; faults=$((faults + 1)); }
  if ! (cd "$(dirname "$file")" && "$checker" swift "$(basename "$file")") >"$scratch/parse.log"; then
    fault "it does not parse as Swift: $(grep -v '^    ok  ' "$scratch/parse.log" | head -n 3 | tr -s ' \n' ' ')"
  fi
  local tools
  tools="$(head -n 1 "$file" | sed -n 's#^// swift-tools-version: *\([0-9][0-9]*\.[0-9][0-9]*\).*#\1#p')"
  if [ -z "$tools" ]; then
    fault "its first line is not // swift-tools-version:X.Y"
  elif [ "$(printf '%s\n5.6\n' "$tools" | sort -t. -k1,1n -k2,2n | head -n 1)" != 5.6 ]; then
    fault "swift-tools-version $tools has no Context.environment (5.6 or later)"
  fi

  if ! version="$("$root/release/version.sh")"; then
    fault "release/version.sh prints no version"
  fi
  local name value count
  for name in coreVersion coreChecksum; do
    count="$(grep -cE "^let $name = \"[^\"]*\"\$" "$file" || true)"
    if [ "$count" != 1 ]; then
      fault "it has $count lines 'let $name = \"…\"', not one (set-release-core.sh rewrites that line)"
    fi
  done
  value="$(sed -n 's/^let coreVersion = "\([^"]*\)"$/\1/p' "$file" | head -n 1)"
  if [ -n "$version" ] && [ "$value" != "$version" ]; then
    fault "coreVersion is \"$value\" but release/version.sh prints $version: the binary target must name this release's zip (set-release-core.sh)"
  fi
  value="$(sed -n 's/^let coreChecksum = "\([^"]*\)"$/\1/p' "$file" | head -n 1)"
  if ! [[ "$value" =~ ^[0-9a-f]{64}$ ]]; then
    fault "coreChecksum \"$value\" is not 64 lower-case hex digits (the zip's SHA-256, as swift package compute-checksum prints it)"
  elif [ "${CALLPUSH_RELEASED:-}" = 1 ] && [[ "$value" =~ ^0{64}$ ]]; then
    fault "coreChecksum is the all-zero placeholder, and CALLPUSH_RELEASED=1: run set-release-core.sh <version> <checksum>"
  fi

  local url_line='url: "'"$release_download"'/v\(coreVersion)/CallPushCore.xcframework.zip",'
  if [ "$(grep -cE '^[[:space:]]*url:' "$file" || true)" != 1 ] \
    || ! grep -qxF "$url_line" <(sed 's/^[[:space:]]*//' "$file"); then
    fault "the binary target's url is not, alone, $url_line"
  fi
  if ! grep -qE '^[[:space:]]*checksum: coreChecksum$' "$file"; then
    fault "the binary target's checksum is not coreChecksum"
  fi
  if ! grep -qF 'Context.environment["CALLPUSH_LOCAL_CORE"] == "1"' "$file"; then
    fault "it does not switch to the local xcframework on Context.environment[\"CALLPUSH_LOCAL_CORE\"] == \"1\""
  fi

  manifest_declarations "$file" >"$scratch/declared.txt"
  local kind rest path
  while read -r kind rest; do
    case "$kind $rest" in
      product\ *) continue ;;
      "binary target "*) name="${rest#target }"; path="${name#* }"; name="${name%% *}" ;;
      "test target "*) name="${rest#target }"; path="${name#* }"; name="${name%% *}" ;;
      *) name="${rest%% *}"; path="${rest#* }" ;;
    esac
    case "$kind $rest" in
      "binary target "*)
        if [ "$path" = url ]; then
          continue
        elif [ "$path" != "$local_core" ]; then
          fault "binary target $name has path \"$path\", not $local_core (where build-xcframework.sh writes it)"
        fi
        ;;
      *)
        if [ "$path" = - ]; then
          fault "target $name has no path: (its sources are under bindings-swift/)"
        elif [[ "$path" = /* || "$path" = *..* || "$path" != bindings-swift/* ]]; then
          fault "target $name has path \"$path\", not one under bindings-swift/"
        elif [ ! -d "$root/$path" ]; then
          fault "target $name has path \"$path\", which does not exist"
        fi
        ;;
    esac
  done <"$scratch/declared.txt"
  if [ "$(grep -c '^binary target CallPushCore ' "$scratch/declared.txt")" != 2 ] \
    || ! grep -qx 'binary target CallPushCore url' "$scratch/declared.txt" \
    || ! grep -qx "binary target CallPushCore $local_core" "$scratch/declared.txt"; then
    fault "CallPushCore is not declared twice, once by url (the release's zip) and once by path ($local_core)"
  fi
  # shellcheck disable=SC2016 # the line of build-xcframework.sh, as written
  if ! grep -qF 'output="$here/CallPushCore.xcframework"' "$here/build-xcframework.sh" \
    || ! grep -qxF '/CallPushCore.xcframework/' "$here/.gitignore"; then
    fault "build-xcframework.sh does not write $local_core, or bindings-swift/.gitignore does not ignore it"
  fi

  # The README's list, against the declarations (the url variant of the binary target is above).
  readme_declarations | sort -u >"$scratch/documented.txt"
  grep -v ' url$' "$scratch/declared.txt" | sort -u >"$scratch/named.txt"
  if [ ! -s "$scratch/documented.txt" ]; then
    fault "bindings-swift/README.md lists no products or targets under \"### The package\""
  elif ! cmp -s "$scratch/documented.txt" "$scratch/named.txt"; then
    fault "the products and targets differ from those bindings-swift/README.md lists under \"The package\": $({
      comm -23 "$scratch/named.txt" "$scratch/documented.txt" | sed 's/^/[manifest only] /'
      comm -13 "$scratch/named.txt" "$scratch/documented.txt" | sed 's/^/[README only] /'
    } | paste -sd ';' - | sed 's/;/; /g')"
  fi

  # The oldest systems: the xcframework is built for them.
  local ios macos
  ios="$(sed -n 's/^export IPHONEOS_DEPLOYMENT_TARGET=\([0-9]*\)\.0$/\1/p' "$here/build-xcframework.sh")"
  macos="$(sed -n 's/^export MACOSX_DEPLOYMENT_TARGET=\([0-9]*\)\.0$/\1/p' "$here/build-xcframework.sh")"
  if ! grep -qF "platforms: [.iOS(.v$ios), .macOS(.v$macos)]," "$file"; then
    fault "its platforms are not [.iOS(.v$ios), .macOS(.v$macos)], build-xcframework.sh's deployment targets"
  fi
  [ "$faults" = 0 ]
}

check_package() {
  echo "  package: the root Package.swift"
  if [ ! -f "$manifest" ]; then
    fail "there is no Package.swift at the repository root"
    return
  fi
  local ok=1
  if ! manifest_faults "$manifest" >"$scratch/faults.log"; then
    sed 's/^/          Package.swift: /' "$scratch/faults.log"
    ok=0
  fi
  local declarations
  declarations="$(wc -l <"$scratch/named.txt")"
  # Its self-test: each mutated copy must fail, with the message that names its fault.
  local mutants=(
    'path|s#path: "bindings-swift/Sources/CallPush"#path: "bindings-swift/Sources/CallPushKit"#|path "bindings-swift/Sources/CallPushKit", which does not exist'
    'version|s#^let coreVersion = ".*"$#let coreVersion = "0.0.0-selftest"#|coreVersion is "0.0.0-selftest" but release/version.sh prints'
    'checksum|s#^let coreChecksum = "\(.*\)."$#let coreChecksum = "\1"#|is not 64 lower-case hex digits'
  )
  local mutant label edit expected copy
  for mutant in "${mutants[@]}"; do
    IFS='|' read -r label edit expected <<<"$mutant"
    copy="$scratch/mutant-$label/Package.swift"
    mkdir -p "$(dirname "$copy")"
    sed "$edit" "$manifest" >"$copy"
    if cmp -s "$manifest" "$copy"; then
      echo "          self-test: the $label edit changed nothing in Package.swift; update the self-test"
      ok=0
    elif manifest_faults "$copy" >"$scratch/mutant.log"; then
      echo "          self-test: a copy with a wrong $label passes the check"
      ok=0
    elif ! grep -qF "$expected" "$scratch/mutant.log"; then
      echo "          self-test: a copy with a wrong $label fails, but not with '$expected':"
      sed 's/^/            /' "$scratch/mutant.log"
      ok=0
    else
      echo "          self-test: a wrong $label fails: $(grep -F "$expected" "$scratch/mutant.log" | head -n 1)"
    fi
  done
  if [ "$ok" = 1 ]; then
    local checksum
    checksum="$(sed -n 's/^let coreChecksum = "\([^"]*\)"$/\1/p' "$manifest")"
    if [[ "$checksum" =~ ^0{64}$ ]]; then
      checksum="the all-zero placeholder: not released yet"
    fi
    pass "Package.swift parses; CallPushCore is v$(sed -n 's/^let coreVersion = "\([^"]*\)"$/\1/p' "$manifest")'s zip ($checksum) or, with CALLPUSH_LOCAL_CORE=1, $local_core; its $declarations products and targets are the README's and their paths exist; ${#mutants[@]} broken copies fail"
  else
    fail "the root Package.swift (above)"
  fi
}

check_syntax() {
  echo "  syntax: every .swift file, with the tree-sitter Swift grammar"
  local files=()
  while IFS= read -r -d '' file; do
    files+=("${file#"$root"/}")
  done < <(find "$here" \( -name .build -o -name .swiftpm \) -prune \
    -o -name '*.swift' -type f -print0 | sort -z)
  if [ "${#files[@]}" -eq 0 ]; then
    fail "no .swift file found under bindings-swift"
    return
  fi
  if (cd "$root" && "$checker" swift "${files[@]}") >"$scratch/syntax.log"; then
    pass "$(tail -n 1 "$scratch/syntax.log" | sed 's/^ *//')"
  else
    grep -v '^    ok  ' "$scratch/syntax.log" || true
    fail "Swift syntax errors (file:line:column above)"
  fi
}

check_header() {
  echo "  header: the generated C header with the C compiler"
  local cc="${CC:-cc}" flags=(-std=c11 -fsyntax-only -Wall -Wextra -Wpedantic -Wstrict-prototypes -Werror)
  # Nullability qualifiers are Clang's (Apple's compilers); for another compiler they are
  # annotations without meaning, so they are defined away.
  if ! "$cc" -dM -E -x c /dev/null | grep -q '__clang__'; then
    flags+=(-D_Nullable= -D_Nonnull= -D_Null_unspecified=)
  fi
  cat >"$scratch/header.c" <<'EOF'
/* The generated header, included twice (it must guard itself), as a C11 program includes it. */
#include "CallPushFFI.h"
#include "CallPushFFI.h"

uint32_t contract_version(void);
uint32_t contract_version(void) {
    return ffi_callpush_client_uniffi_contract_version();
}
EOF
  local ok=1
  local source
  for source in "$scratch/header.c" "$here/Sources/CallPushFFI/CallPushFFI.c"; do
    if ! "$cc" "${flags[@]}" -I "$(dirname "$header")" "$source" 2>"$scratch/cc.log"; then
      echo "          ${source#"$root"/} does not compile (the first errors):"
      head -n 30 "$scratch/cc.log" | sed 's/^/            /'
      ok=0
    fi
  done
  local modulemap="$here/Sources/CallPushFFI/include/module.modulemap"
  if ! grep -q '^module CallPushFFI {' "$modulemap" || ! grep -q 'header "CallPushFFI.h"' "$modulemap"; then
    echo "          module.modulemap does not define module CallPushFFI over CallPushFFI.h"
    ok=0
  fi
  if ! grep -q '^import CallPushFFI$' "$here/Sources/CallPush/Generated/callpush.swift"; then
    echo "          the generated Swift does not import CallPushFFI (see core/client/uniffi.toml)"
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    pass "CallPushFFI.h compiles with $("$cc" --version | head -n 1) (${flags[*]}); the module map names it"
  else
    fail "the generated C header or its module map"
  fi
}

check_symbols() {
  echo "  symbols: the header's functions in the built library"
  local library
  # The drift check just built it; otherwise build it.
  [ "$drift_checked" = 1 ] || (cd "$root" && cargo build --quiet --locked -p callpush-ffi)
  case "$(uname -s)" in
    Darwin)
      library="$root/target/debug/libcallpush.dylib"
      nm -gU "$library" | awk 'NF >= 3 { sub(/^_/, "", $3); print $3 }' | sort -u >"$scratch/defined"
      ;;
    *)
      library="$root/target/debug/libcallpush.so"
      nm -D --defined-only "$library" | awk 'NF >= 3 { print $3 }' | sort -u >"$scratch/defined"
      ;;
  esac
  if ! "$checker" c-functions "$header" | sort -u >"$scratch/declared"; then
    fail "the function prototypes of CallPushFFI.h could not be read"
    return
  fi
  grep -oE '(uniffi|ffi)_callpush_[A-Za-z0-9_]+' "$here/Sources/CallPush/Generated/callpush.swift" \
    | sort -u >"$scratch/called"
  local ok=1
  if ! grep -qx 'ffi_callpush_client_uniffi_contract_version' "$scratch/declared"; then
    echo "          no ffi_callpush_client_uniffi_contract_version among the $(wc -l <"$scratch/declared") functions read from the header"
    ok=0
  fi
  comm -23 "$scratch/declared" "$scratch/defined" >"$scratch/missing"
  if [ -s "$scratch/missing" ]; then
    echo "          declared by CallPushFFI.h but not defined by ${library#"$root"/}:"
    sed 's/^/            /' "$scratch/missing"
    ok=0
  fi
  comm -23 "$scratch/called" "$scratch/declared" >"$scratch/undeclared"
  if [ -s "$scratch/undeclared" ]; then
    echo "          called by the generated Swift but not declared by CallPushFFI.h:"
    sed 's/^/            /' "$scratch/undeclared"
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    pass "the $(wc -l <"$scratch/declared") functions CallPushFFI.h declares are defined by ${library#"$root"/}; the Swift calls $(wc -l <"$scratch/called") of them"
  else
    fail "the header, the library and the generated Swift disagree (run generate.sh)"
  fi
}

summary() {
  echo "swift-checks: $passed passed, $failed failed"
  [ "$failed" = 0 ] || exit 1
  exit 0
}

stages=("$@")
[ "${#stages[@]}" -gt 0 ] || stages=(checker package syntax header symbols)
for stage in "${stages[@]}"; do
  case "$stage" in
    checker | drift | package | syntax | header | symbols) ;;
    *) echo "usage: check.sh [checker] [drift] [package] [syntax] [header] [symbols]" >&2; exit 2 ;;
  esac
done
# package, syntax and symbols run the checker: build it first, even when not asked for.
case " ${stages[*]} " in
  *" checker "*) ;;
  *" package "* | *" syntax "* | *" symbols "*) stages=(checker "${stages[@]}") ;;
esac
for stage in "${stages[@]}"; do
  "check_$stage"
done
summary
