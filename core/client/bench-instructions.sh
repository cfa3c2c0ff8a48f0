#!/usr/bin/env bash
# Instructions per `handle` of one push, counted by callgrind: the same from run to run, so the
# ratios to the floor hold on a noisy machine where the criterion times move by a third.
#
#   core/client/bench-instructions.sh [platform ...]     (default: all four)
#
# For each platform it counts the cases of benches/handle.rs — `handle` and its floor `bare`
# (wire v1), `handle_v2` and `bare_v2` (wire v2) — each run 1 and 201 times in its own process,
# and prints the difference divided by 200: the instructions of one call, without the set-up.
# Needs valgrind. Figures go to docs/performance.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
platforms=("$@")
[ ${#platforms[@]} -gt 0 ] || platforms=(harmony fcm apns wns)

echo "building the bench (release)" >&2
bench=$(cargo bench --locked -q -p callpush-client --bench handle --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "handle" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Instructions of `case` run `n` times, the whole process.
count() {
  local case=$1 n=$2 out="$work/callgrind.out"
  CALLPUSH_BENCH_COUNT="$case:$n" valgrind --tool=callgrind --callgrind-out-file="$out" "$bench" --bench >/dev/null 2>&1
  awk '/^summary:/ { print $2 }' "$out"
}

per_call() {
  local one many
  one=$(count "$1" 1)
  many=$(count "$1" 201)
  echo $(((many - one) / 200))
}

printf '| platform | handle | bare | handle / bare | handle_v2 | bare_v2 | handle_v2 / bare_v2 |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for platform in "${platforms[@]}"; do
  echo "counting $platform" >&2
  h=$(per_call "handle/$platform"); b=$(per_call "bare/$platform")
  h2=$(per_call "handle_v2/$platform"); b2=$(per_call "bare_v2/$platform")
  printf '| %s | %d | %d | %s | %d | %d | %s |\n' "$platform" "$h" "$b" \
    "$(python3 -c "print(f'{$h / $b:.2f}')")" "$h2" "$b2" "$(python3 -c "print(f'{$h2 / $b2:.2f}')")"
done
