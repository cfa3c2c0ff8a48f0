#!/usr/bin/env bash
# Checks what a release is made of, on this machine, as the README's test command's "Packages"
# stage:
#
#   versions   every package and the docs that add it carry release/version.sh's version
#              (release/version.sh --check), and `--set` in a scratch copy of the tree changes all
#              of them and nothing else, the Swift core left to set-release-core.sh
#   notes      CHANGELOG.md has notes for this version (release/notes.sh) and the license is the
#              Apache License 2.0 that every manifest names
#   android    bindings-kotlin/check-package.sh: the AAR and its POM, the host library standing
#              in for the device ABIs
#   nuget      bindings-csharp/check-package.sh: the Callpush package's layout, stand-ins likewise
#   server     server/deploy/check.sh: the Dockerfile linted, the systemd unit verified, the
#              production configuration accepted by the server
#
# The Swift package's manifest (bindings-swift/check.sh package) and the HAR
# (bindings-ets/check-package.sh) are checked in their platforms' stages.
#
#   release/check.sh [versions] [notes] [android] [nuget] [server]   (default: all, in this order)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

passed=0
failed=0
pass() { echo "    ok    $*"; passed=$((passed + 1)); }
fail() { echo "    FAIL  $*"; failed=$((failed + 1)); }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

check_versions() {
  echo "  versions"
  if release/version.sh --check >"$scratch/check.log" 2>&1; then
    pass "$(cat "$scratch/check.log")"
  else
    sed 's/^/          /' "$scratch/check.log"
    fail "the packages disagree on the version: release/version.sh --set $(release/version.sh)"
    return
  fi
  # --set in a copy of the working tree (tracked and new files), as release-prepare runs it.
  local copy="$scratch/tree" next=0.0.0-dryrun.1 log="$scratch/set.log"
  mkdir -p "$copy"
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [ -e "$file" ] && printf '%s\0' "$file"
  done | tar --null -T - -cf - | tar -C "$copy" -xf -
  (cd "$copy" && git init -q && git add -A && git -c user.name=check -c user.email=check@localhost commit -qm tree) >/dev/null
  if ! (cd "$copy" && release/version.sh --set "$next") >"$log" 2>&1; then
    sed 's/^/          /' "$log"
    fail "release/version.sh --set $next"
    return
  fi
  local changed
  changed="$(cd "$copy" && git status --porcelain | awk '{ print $2 }' | sort | tr '\n' ' ')"
  # Before the Swift core is set, --check must name Package.swift, and only it.
  if (cd "$copy" && release/version.sh --check) >"$log" 2>&1 \
    || ! grep -q 'Package.swift' "$log" || grep -v 'Package.swift' "$log" | grep -q .; then
    sed 's/^/          /' "$log"
    fail "after --set, --check must fail on Package.swift's core alone (set-release-core.sh sets it)"
    return
  fi
  if ! (cd "$copy" && bindings-swift/set-release-core.sh "$next" "$(printf 'ab%.0s' {1..32})" \
    && release/version.sh --check) >"$log" 2>&1; then
    sed 's/^/          /' "$log"
    fail "after --set and set-release-core.sh, --check must pass"
    return
  fi
  local file
  for file in Cargo.toml Cargo.lock bindings-ets/callpush/oh-package.json5 bindings-csharp/src/Directory.Build.props \
    bindings-kotlin/pom.xml bindings-kotlin/callpush/pom.xml bindings-kotlin/callpush-android/pom.xml; do
    case " $changed " in
      *" $file "*) ;;
      *) fail "release/version.sh --set did not change $file"; return ;;
    esac
  done
  pass "--set $next in a copy changed $(wc -w <<<"$changed") files ($changed); then --check named only Package.swift until set-release-core.sh ran"
}

check_notes() {
  echo "  notes and license"
  local version
  version="$(release/version.sh)"
  if release/notes.sh "$version" >"$scratch/notes.md" 2>"$scratch/notes.log"; then
    pass "CHANGELOG.md has $(wc -l <"$scratch/notes.md") lines of notes for $version"
  else
    cat "$scratch/notes.log"
    fail "CHANGELOG.md has no notes for $version"
  fi
  # The text of https://www.apache.org/licenses/LICENSE-2.0.txt, byte for byte.
  if [ "$(sha256sum LICENSE | cut -d' ' -f1)" = a60eea817514531668d7e00765731449fe14d059d3249e0bc93b36de45f759f2 ]; then
    pass "LICENSE is the Apache License 2.0, as every manifest says"
  else
    fail "LICENSE is not the Apache License 2.0's text"
  fi
}

run_check() {
  local name="$1"
  shift
  echo "  $name: $*"
  if "$@" >"$scratch/$name.log" 2>&1; then
    pass "$name: $(grep -E '[0-9]+ (checks )?passed' "$scratch/$name.log" | tail -n 1 | sed 's/^ *//')"
  else
    tail -n 40 "$scratch/$name.log" | sed 's/^/          /'
    fail "$*"
  fi
}

# Right after the test command's Kotlin stage the Maven build is there to reuse.
check_android() {
  if compgen -G "bindings-kotlin/callpush-android/target/callpush-android-*.jar" >/dev/null; then
    run_check android bindings-kotlin/check-package.sh --no-build
  else
    run_check android bindings-kotlin/check-package.sh
  fi
}
check_nuget() { run_check nuget bindings-csharp/check-package.sh; }
check_server() { run_check server server/deploy/check.sh --bin target/debug; }

stages=("$@")
[ "${#stages[@]}" -gt 0 ] || stages=(versions notes android nuget server)
for stage in "${stages[@]}"; do
  case "$stage" in
    versions | notes | android | nuget | server) "check_$stage" ;;
    *) echo "usage: release/check.sh [versions] [notes] [android] [nuget] [server]" >&2; exit 2 ;;
  esac
done
echo "release-checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
