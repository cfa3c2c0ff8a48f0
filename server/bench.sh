#!/usr/bin/env bash
# Runs the server load benchmark on SQLite and on a local PostgreSQL (started here, with the
# durability settings of a real server: fsync on). Figures go to docs/performance.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLPUSH_PG_DIR=/tmp/callpush-bench-pg CALLPUSH_PG_PORT=54330 CALLPUSH_PG_FSYNC=on
tests/postgres.sh stop
url=$(tests/postgres.sh start)
trap 'tests/postgres.sh stop' EXIT
psql -q -h 127.0.0.1 -p 54330 -U postgres -c "CREATE DATABASE callpush_bench" >/dev/null
CALLPUSH_BENCH_POSTGRES_URL="${url%/*}/callpush_bench" cargo bench -p callpush-server --bench load
