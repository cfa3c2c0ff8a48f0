#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the test suites and prints its URL on stdout.
#
#   url=$(tests/postgres.sh start)   # installs PostgreSQL with apt if it is missing
#   tests/postgres.sh stop
#
# The cluster lives in $CALLPUSH_PG_DIR (default /tmp/callpush-test-pg), listens on loopback
# port $CALLPUSH_PG_PORT (default 54329) and trusts local connections: for tests only. It runs
# with fsync off, for the tests' speed; CALLPUSH_PG_FSYNC=on keeps it on (the benchmarks measure
# the real thing).
set -euo pipefail
dir=${CALLPUSH_PG_DIR:-/tmp/callpush-test-pg}
port=${CALLPUSH_PG_PORT:-54329}

bin_dir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] && command -v pg_ctl >/dev/null; then found=$(dirname "$(readlink -f "$(command -v pg_ctl)")"); fi
  echo "$found"
}

# PostgreSQL refuses to run as root; run it as its own user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    bin=$(bin_dir)
    if [ -z "$bin" ]; then
      "$(dirname "$0")/apt-install.sh" postgresql
      bin=$(bin_dir)
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
    fi
    if [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      echo "postgres://postgres@127.0.0.1:$port/postgres"
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${CALLPUSH_PG_FSYNC:-off} -c max_connections=400" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(bin_dir)
    [ -n "$bin" ] && [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
