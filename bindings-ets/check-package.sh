#!/usr/bin/env bash
# Checks the HarmonyOS HAR of callpush against what ohpm and DevEco require of it
# (bindings-ets/README.md, "What ohpm requires of the HAR"), with tests/har/check.js.
#
#   check-package.sh             packs the host stand-in (pack-har.sh --host-stand-in) and checks
#                                it, then checks that mutated copies of it fail: without the
#                                x86_64 library, with another version, without LICENSE
#   check-package.sh <file.har>  checks that .har (e.g. build-har.sh's, or pack-har.sh's), with
#                                each library's ELF machine held to its ABI
#
# ok / FAIL lines, a summary, exit 1 on any failure. Takes seconds once the bridge is built.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
version="$("$root/release/version.sh")"
check=(node "$here/tests/har/check.js" --version "$version")
passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
summary() {
  echo "check-package: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}

indent() { sed 's/^/    /'; }

if [[ $# -gt 0 ]]; then
  [[ -f "$1" ]] || { echo "check-package.sh: no such file $1" >&2; exit 2; }
  # json5, which check.js reads oh-package.json5 with (tests/package.json).
  if ! cmp -s "$here/tests/package-lock.json" "$here/tests/node_modules/.installed-lock.json"; then
    (cd "$here/tests" && npm ci --silent --no-audit --no-fund)
    cp "$here/tests/package-lock.json" "$here/tests/node_modules/.installed-lock.json"
  fi
  if "${check[@]}" "$1" | indent; then ok "$(basename "$1") meets every rule"; else fail "$(basename "$1") breaks a rule (above)"; fi
  summary
  exit
fi

# 1. The package as pack-har.sh lays it out, with the host's library standing in for both ABIs.
if ! har="$("$here/pack-har.sh" --host-stand-in)"; then
  fail "pack-har.sh --host-stand-in could not pack the HAR (above)"
  summary
  exit 1
fi
if "${check[@]}" --host-stand-in "$har" | indent; then
  ok "$(basename "$har") meets every rule"
else
  fail "$(basename "$har") breaks a rule (above)"
fi

# 2. The checker itself: each mutated copy must fail, naming what is wrong.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$har" -C "$work"
mutant() { # <name> <expected FAIL line> <mutation, run in the copy's package/>
  local name="$1" expect="$2" mutation="$3" copy="$work/$1"
  rm -rf "$copy" && mkdir -p "$copy" && cp -r "$work/package" "$copy/"
  (cd "$copy/package" && eval "$mutation")
  tar -C "$copy" -cf - package | gzip -1 >"$copy.har"
  local out status=0
  out="$("${check[@]}" --host-stand-in "$copy.har")" || status=$?
  if [[ $status -ne 0 ]] && grep -qF -- "FAIL $expect" <<<"$out"; then
    ok "a copy $name fails: $(grep -F -- "FAIL $expect" <<<"$out" | head -1 | sed 's/^FAIL //')"
  else
    fail "a copy $name should fail with \"FAIL $expect\" (exit $status):"
    grep '^FAIL' <<<"$out" | indent || true
  fi
}
mutant "without the x86_64 library" "libs/x86_64/libcallpush_napi.so: missing" \
  'rm libs/x86_64/libcallpush_napi.so'
mutant "with version 9.9.9" "version: 9.9.9 is not release/version.sh's $version" \
  'node -e "const f=\"oh-package.json5\",fs=require(\"fs\"),m=JSON.parse(fs.readFileSync(f));m.version=\"9.9.9\";fs.writeFileSync(f,JSON.stringify(m))"'
mutant "without LICENSE" "LICENSE: missing" \
  'rm LICENSE'

summary
