#!/usr/bin/env bash
# Runs the curl tour of server/README.md exactly as it is written there, so the README cannot
# be wrong while the tests pass: the fenced code block(s) right after a line starting with
# `<!-- tour`, run with `bash -euo pipefail` in the directory of a fresh `callpush serve --dev`
# (a new temporary directory, a free port), with that `callpush` first on PATH and CALLPUSH_URL
# set to its address. There is no other copy of the tour.
#
#   server/examples/api-tour.sh [--bin DIR] [--readme FILE] [--print] [--quiet]
#
#   --bin DIR      the directory holding the `callpush` to run (default: target/debug)
#   --readme FILE  the README to take the tour from (default: server/README.md)
#   --print        print the tour as extracted and exit; fails if there is none
#   --quiet        show what the tour prints only if it fails
#
# tests/run.sh runs it; server/tests/commands.rs runs it too, and checks that a README whose
# tour is broken (or missing) makes it fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/debug
readme=$root/server/README.md
print=
quiet=
while (($#)); do
  case $1 in
    --bin) bin=$(cd "$2" && pwd); shift 2 ;;
    --readme) readme=$2; shift 2 ;;
    --print) print=1; shift ;;
    --quiet) quiet=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "api-tour: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
done

# The marked blocks, in order. A marker not followed by a fenced block is an error, so is a
# README with no marker at all.
tour=$(awk '
  /^<!-- tour/ { marked = 1; markers++; next }
  marked && /^```/ && !inside { inside = 1; marked = 0; blocks++; next }
  marked && !/^[[:space:]]*$/ { printf "a <!-- tour --> marker (line %d) is not followed by a fenced block\n", NR > "/dev/stderr"; bad = 1; exit }
  inside && /^```/ { inside = 0; next }
  inside { print }
  END {
    if (bad) exit 1
    if (inside) { print "the tour block is not closed" > "/dev/stderr"; exit 1 }
    if (markers == 0 || blocks < markers) { print "no fenced block marked <!-- tour -->" > "/dev/stderr"; exit 1 }
  }
' "$readme") || { echo "api-tour: $readme: no tour to run" >&2; exit 1; }
if [[ -z ${tour//[[:space:]]/} ]]; then
  echo "api-tour: $readme: the tour block is empty" >&2
  exit 1
fi
if [[ -n $print ]]; then
  printf '%s\n' "$tour"
  exit 0
fi
[[ -x $bin/callpush ]] || { echo "api-tour: no callpush in $bin (cargo build -p callpush-server)" >&2; exit 1; }

dir=$(mktemp -d)
# The server, on a free port, its log shown whole if the tour fails (tests/dev-server.sh). Only the
# defaults configure the server and the tour, as for a newcomer: no CALLPUSH_* setting (nor
# CALLPUSH_CONFIG) from the caller's environment; CALLPUSH_LOG, the log filter, may stay.
source "$root/tests/dev-server.sh"
dev_server_name=api-tour
DEV_SERVER_LOG_LINES=all
dev_server_at_exit 'rm -rf "$dir"'
printf '%s\n' "$tour" >"$dir/tour.sh"
start_dev_server "$bin/callpush" "$dir" --dev
url=$DEV_SERVER_URL

run_tour() {
  (cd "$dir" && env "${dev_server_clean_env[@]}" PATH="$bin:$PATH" CALLPUSH_URL="$url" bash -euo pipefail tour.sh)
}
if [[ -n $quiet ]]; then
  run_tour >"$dir/tour.log" 2>&1 || { cat "$dir/tour.log" >&2; false; } || failed=1
else
  run_tour || failed=1
fi
if [[ -n ${failed:-} ]]; then
  echo "api-tour: the tour in $readme failed (it ran as written, with bash -euo pipefail)" >&2
  exit 1
fi
echo "api-tour: the tour in $readme ran through against $url"
