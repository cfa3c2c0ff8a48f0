#!/usr/bin/env bash
# The cost of one push (server/benches/push_cost.rs; figures in docs/performance.md, "The cost of
# one push"). Builds the `callpush` to measure with line tables (callgrind names its functions and
# files) in a target directory of its own, so the ordinary release build is untouched; builds the
# emulators (`callpush-dev`, release); runs the bench on SQLite, and on a local PostgreSQL with
# fsync on (started here, as server/bench.sh does) when asked.
#
#   server/bench-push-cost.sh                        # the working tree's server, SQLite
#   server/bench-push-cost.sh --postgres             # … and PostgreSQL
#   server/bench-push-cost.sh --commit f6313ad       # another commit's server (a git worktree
#                                                    # under /tmp); bench and emulators stay this tree's
#
# CALLPUSH_BENCH_BIN=<binary> measures a binary built elsewhere (with
# CARGO_PROFILE_RELEASE_DEBUG=line-tables-only). The bench's other settings (CALLPUSH_BENCH_DEVICES,
# _REPEATS, _CALLGRIND, _RINGS, _SQLITE, _OUT) pass through; see server/benches/push_cost.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
postgres=0
commit=""
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) postgres=1 ;;
    --commit) commit=${2:?--commit needs a commit}; shift ;;
    *) echo "usage: $0 [--postgres] [--commit <commit>]" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${CALLPUSH_BENCH_BIN:-}" ]; then
  if [ -n "$commit" ]; then
    commit=$(git rev-parse --verify "$commit^{commit}")
    src=/tmp/callpush-push-cost-${commit:0:12}
    [ -d "$src" ] || git worktree add --detach "$src" "$commit" >&2
    label="$(git log -1 --format='%h (%s)' "$commit")"
    target=$root/target/push-cost/${commit:0:12}
  else
    src=$root
    label="$(git log -1 --format='%h' HEAD)"
    git diff --quiet HEAD -- server core Cargo.lock || label="$label + uncommitted changes"
    target=$root/target/push-cost/tree
  fi
  (cd "$src" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR="$target" \
    cargo build --locked --release -p callpush-server --bin callpush)
  export CALLPUSH_BENCH_BIN=$target/release/callpush
  export CALLPUSH_BENCH_LABEL=${CALLPUSH_BENCH_LABEL:-$label}
fi

cargo build --locked --release -p callpush-dev
export CALLPUSH_BENCH_EMULATE=$root/target/release/callpush-dev

if [ "$postgres" = 1 ]; then
  export CALLPUSH_PG_DIR=/tmp/callpush-push-cost-pg CALLPUSH_PG_PORT=54331 CALLPUSH_PG_FSYNC=on
  # A cluster left running from an earlier run may have another fsync setting: start afresh.
  tests/postgres.sh stop
  url=$(tests/postgres.sh start)
  trap 'tests/postgres.sh stop' EXIT
  export CALLPUSH_BENCH_POSTGRES_URL=$url
fi

cargo bench --locked -p callpush-server --bench push_cost
