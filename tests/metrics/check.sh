#!/usr/bin/env bash
# Reads the server's /metrics with Prometheus' own parser (prometheus_client, pinned in
# tests/metrics/requirements.txt and installed into target/metrics-venv when that file changed).
#
# Starts a fresh `callpush serve --dev` on a free loopback port in a throwaway directory (as the
# curl tour does), drives a few requests (a registration, a ring, a 1 s long-poll, an answer, a
# read, a 404), fetches /metrics and checks it with check.py: every family parses with its
# declared type (never `unknown`), counters end in `_total`, histograms are complete, process and
# build metrics are there, the long-poll is timed apart, and every name is in server/README.md.
# About 2 s once the venv exists.
#
# Needs the binary built first (`cargo build -p callpush-server`); $CALLPUSH_BIN overrides its
# path, $PYTHON the interpreter the venv is made with (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

bin=${CALLPUSH_BIN:-target/debug/callpush}
venv=target/metrics-venv
python=${PYTHON:-python3}

if [[ ! -x $bin ]]; then
  echo "metrics: $bin is missing; build it first: cargo build -p callpush-server" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

PYTHON=$python tests/venv.sh "$venv" tests/metrics/requirements.txt
py=$root/$venv/bin/python

tmp=$(mktemp -d "${TMPDIR:-/tmp}/callpush-metrics.XXXXXX")
server_pid=
cleanup() {
  local status=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status != 0 && -s $tmp/serve.log ]]; then
    echo "---- last lines of the server log ----" >&2
    tail -n 40 "$tmp/serve.log" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Only the defaults and --dev configure the server: CALLPUSH_* settings from the caller's
# environment would change them.
unset_settings=()
while IFS= read -r name; do
  [[ $name == CALLPUSH_BIN ]] || unset_settings+=(-u "$name")
done < <(compgen -e | grep '^CALLPUSH_' || true)

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
(cd "$tmp" && exec env "${unset_settings[@]}" CALLPUSH_LOG=warn CALLPUSH_LISTEN="127.0.0.1:$port" \
  "$bin" serve --dev >"$tmp/serve.log" 2>&1) &
server_pid=$!
for _ in $(seq 200); do
  curl -sf "$base/healthz" >/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "metrics: the server exited" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "metrics: the server did not come up" >&2; exit 1; }

api_key=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_key"])' \
  "$tmp/callpush-dev-credentials.json")
token=$(cd "$tmp" && env "${unset_settings[@]}" "$bin" token --user bob)
"$py" tests/metrics/check.py "$base" "$api_key" "$token" server/README.md
