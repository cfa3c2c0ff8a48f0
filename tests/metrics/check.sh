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
# A fresh `callpush serve --dev` in $tmp on a free port (tests/dev-server.sh): only the defaults
# and --dev configure it, no CALLPUSH_* setting from the caller's environment.
source tests/dev-server.sh
dev_server_name=metrics
dev_server_env=(CALLPUSH_LOG=warn)
dev_server_at_exit 'rm -rf "$tmp"'
start_dev_server "$bin" "$tmp" --dev

token=$(dev_server_token bob)
"$py" tests/metrics/check.py "$DEV_SERVER_URL" "$DEV_SERVER_API_KEY" "$token" server/README.md
