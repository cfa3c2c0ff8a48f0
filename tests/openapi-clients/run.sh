#!/usr/bin/env bash
# Generated OpenAPI clients against the live server: do they decode every answer of the API
# without losing a field?
#
# Starts a fresh `callpush serve --dev` (SQLite, pushes to a file, development credentials) on a
# free loopback port in a throwaway directory, fetches its /openapi.json, generates two clients
# from it, and runs the same tour through each — register two devices, report notifications
# off, renew, ring, long-poll, answer, a late decline (409 with the call), the call's details
# with deliveries and timeline, ring and cancel, unregister, remove the user, health — as a user
# of its own:
#   Python      openapi-python-client (pinned in requirements.txt, venv target/openapi-clients-venv),
#               tour in python/tour.py
#   TypeScript  @hey-api/openapi-ts with its fetch client, SDK and zod schemas (pinned by
#               typescript/package-lock.json, npm ci), compiled with tsc --strict, tour in
#               typescript/tour.ts
# Each tour compares every decoded answer with the raw JSON it came from and fails on any field
# dropped, added or of another type (see the tours' headers for what each compares).
#
# Needs the binary built first (`cargo build -p callpush-server`); $CALLPUSH_BIN overrides its
# path. PYTHON overrides the interpreter the venv is made with (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/tests/openapi-clients
started=$SECONDS

bin=${CALLPUSH_BIN:-target/debug/callpush}
if [[ ! -x $bin ]]; then
  echo "openapi-clients: $bin is missing; build it first: cargo build -p callpush-server" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# ---- the generators, pinned ----
venv=$root/target/openapi-clients-venv
tests/venv.sh "$venv" "$here/requirements.txt"
ts=$here/typescript
if ! cmp -s "$ts/package-lock.json" "$ts/node_modules/.installed-lock.json"; then
  echo "    installing @hey-api/openapi-ts, zod and typescript into $ts/node_modules"
  (cd "$ts" && npm ci --silent --no-audit --no-fund)
  cp "$ts/package-lock.json" "$ts/node_modules/.installed-lock.json"
fi

# ---- the server ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callpush-openapi-clients.XXXXXX")
# A fresh `callpush serve --dev` in $tmp/server on a free port (tests/dev-server.sh): only --dev
# configures it, no CALLPUSH_* setting from the caller's environment.
source tests/dev-server.sh
dev_server_name=openapi-clients
dev_server_env=(CALLPUSH_LOG=warn)
dev_server_at_exit 'rm -rf "$tmp"'
start_dev_server "$bin" "$tmp/server" --dev
base=$DEV_SERVER_URL
api_key=$DEV_SERVER_API_KEY
token() { dev_server_token "$1"; }

py=$venv/bin/python
"$py" -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=10).read())' \
  "$base/openapi.json" "$tmp/openapi.json"

passed=0
failed=0
run() {
  local name=$1
  shift
  printf '\n--> %s\n' "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "openapi-clients: the $name client FAILED" >&2
  fi
}

# ---- Python: openapi-python-client ----
python_tour() {
  mkdir -p "$tmp/python"
  # Its formatting hook runs ruff, from the venv.
  (cd "$tmp/python" && PATH="$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
    --path "$tmp/openapi.json" --meta none --output-path callpush_client >generate.log 2>&1) \
    || { cat "$tmp/python/generate.log" >&2; return 1; }
  if grep -qi warning "$tmp/python/generate.log"; then
    cat "$tmp/python/generate.log" >&2
    echo "openapi-python-client warned: a part of the document was not generated" >&2
    return 1
  fi
  "$py" "$here/python/tour.py" "$tmp/python" "$base" "$api_key" python-user "$(token python-user)"
}
run "Python (openapi-python-client $("$venv/bin/pip" show openapi-python-client | awk '/^Version/ {print $2}'))" python_tour

# ---- TypeScript: @hey-api/openapi-ts ----
typescript_tour() {
  local build=$tmp/typescript
  mkdir -p "$build"
  cp "$ts/tour.ts" "$ts/tsconfig.json" "$build/"
  ln -s "$ts/node_modules" "$build/node_modules"
  (cd "$build" && OPENAPI_DOC="$tmp/openapi.json" OPENAPI_OUT="$build/gen" \
    node_modules/.bin/openapi-ts -f "$ts/openapi-ts.config.mjs" >generate.log 2>&1) \
    || { cat "$build/generate.log" >&2; return 1; }
  (cd "$build" && node_modules/.bin/tsc -p .) || return 1
  node "$build/out/tour.js" "$base" "$api_key" typescript-user "$(token typescript-user)"
}
run "TypeScript (@hey-api/openapi-ts $(node -p "require('$ts/node_modules/@hey-api/openapi-ts/package.json').version"))" typescript_tour

printf '\nopenapi-clients: %d passed, %d failed (%ss)\n' "$passed" "$failed" "$((SECONDS - started))"
[[ $failed == 0 ]]
