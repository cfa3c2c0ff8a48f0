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
server_pid=
cleanup() {
  status=$?
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status != 0 && -s $dir/serve.log ]]; then
    echo "---- the server's log ----" >&2
    cat "$dir/serve.log" >&2
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT

# Only the defaults configure the server and the tour, as for a newcomer: no CALLPUSH_* setting
# (nor CALLPUSH_CONFIG) from the caller's environment; CALLPUSH_LOG, the log filter, may stay.
clean_env=()
while IFS= read -r name; do
  [[ $name == CALLPUSH_LOG ]] || clean_env+=(-u "$name")
done < <(compgen -e | grep '^CALLPUSH_' || true)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
printf '%s\n' "$tour" >"$dir/tour.sh"
# `exec`: the background job is the server itself, so the cleanup stops it (not a subshell).
(cd "$dir" && exec env "${clean_env[@]}" CALLPUSH_LISTEN="127.0.0.1:$port" "$bin/callpush" serve --dev \
  >"$dir/serve.log" 2>&1) &
server_pid=$!
for _ in $(seq 300); do
  kill -0 "$server_pid" 2>/dev/null || { echo "api-tour: the server exited" >&2; exit 1; }
  curl -sf "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$url/healthz" >/dev/null || { echo "api-tour: the server did not come up at $url" >&2; exit 1; }

run_tour() {
  (cd "$dir" && env "${clean_env[@]}" PATH="$bin:$PATH" CALLPUSH_URL="$url" bash -euo pipefail tour.sh)
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
