#!/usr/bin/env bash
# Property-based run of the server's HTTP API from its own OpenAPI document, with schemathesis.
#
# Starts `callpush serve` (SQLite, no-op sender) on a free loopback port with a throwaway data
# directory, seeds the installations and the ringing call the document's examples name
# (seed.py), then lets schemathesis generate requests from /openapi.json, once per tag, each
# with that tag's credentials:
#   device      Authorization: Bearer <device token of `bob`, minted with `callpush token`>
#   backend     Authorization: Bearer <API key>   (GET /v1/calls/{call_id} is in both)
#   operations  no credentials
# Phases: the document's examples, coverage (boundaries and invalid values), fuzzing, and for
# device and backend stateful sequences along the document's links. It fails on any 5xx, any
# status the document does not list, any response whose body, content type or documented headers
# do not match it, any request breaking the document's constraints that the server accepts, and
# any unlisted method a documented path answers with something else than 405. A fixed seed and a
# bounded number of examples: the same generated inputs every run, about 25 s on 2 cores.
#
# Needs the binary built first (`cargo build -p callpush-server`); $CALLPUSH_BIN overrides its
# path. Installs schemathesis and its dependencies, pinned in tests/openapi/requirements.txt,
# into target/schemathesis-venv when that file changed since the last install.
#
# Tunables: OPENAPI_MAX_EXAMPLES (examples per operation and phase, default 50), OPENAPI_SEED
# (default 20251122), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

bin=${CALLPUSH_BIN:-target/debug/callpush}
venv=target/schemathesis-venv
max_examples=${OPENAPI_MAX_EXAMPLES:-50}
seed=${OPENAPI_SEED:-20251122}
python=${PYTHON:-python3}
started=$SECONDS

if [[ ! -x $bin ]]; then
  echo "openapi: $bin is missing; build it first: cargo build -p callpush-server" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# ---- schemathesis, pinned, in its own venv ----
PYTHON=$python tests/venv.sh "$venv" tests/openapi/requirements.txt
version=$("$venv/bin/schemathesis" --version | awk '{print $NF}')
st=$root/$venv/bin/schemathesis
py=$root/$venv/bin/python

# ---- the server ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callpush-openapi.XXXXXX")
api_key=openapi-test-api-key-0123456789
# `listen`: a free loopback port, which tests/dev-server.sh sets (CALLPUSH_LISTEN).
cat >"$tmp/callpush.toml" <<EOF
database_url = "sqlite://$tmp/callpush.db"
data_dir = "$tmp"
api_keys = ["$api_key"]
[auth]
hs256_secret = "openapi-test-secret-0123456789abcdef"
[sender]
kind = "noop"
EOF

# Only this file configures the server (tests/dev-server.sh): CALLPUSH_* settings from the
# caller's environment would override it (CALLPUSH_LOG, the log filter, may stay).
st_pid=
source tests/dev-server.sh
dev_server_name=openapi
dev_server_at_exit --before 'if [[ -n $st_pid ]] && kill -0 "$st_pid" 2>/dev/null; then kill "$st_pid" 2>/dev/null; wait "$st_pid" 2>/dev/null; fi'
dev_server_at_exit 'rm -rf "$tmp"'
start_dev_server "$bin" "$tmp" --config "$tmp/callpush.toml"
base=$DEV_SERVER_URL

token=$(dev_server_token bob --config "$tmp/callpush.toml")
"$py" tests/openapi/seed.py "$base" "$token" "$api_key"

# ---- schemathesis ----
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
checks+=,response_schema_conformance,negative_data_rejection,unsupported_method
color=--no-color bold= plain=
if [[ -t 1 ]]; then
  color=--force-color bold=$'\033[1m' plain=$'\033[0m'
fi
report_dir=$root/target/schemathesis-report

passed=0
failed=0
results=()
run_tag() {
  local tag=$1
  shift
  printf '\n%s--> schemathesis: operations tagged `%s`%s\n' "$bold" "$tag" "$plain"
  local tag_started=$SECONDS
  # In the background and waited for, so that a signal stops the run at once (bash runs traps
  # only after a foreground command ends).
  "$st" --config-file "$root/tests/openapi/schemathesis.toml" "$color" run "$base/openapi.json" \
    --include-tag "$tag" "$@" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --generation-database none \
    --workers 1 \
    --request-timeout 10 \
    --report junit --report-junit-path "$report_dir/$tag.xml" &
  st_pid=$!
  if wait "$st_pid"; then
    passed=$((passed + 1))
    results+=("$tag ok in $((SECONDS - tag_started))s")
  else
    failed=$((failed + 1))
    results+=("$tag FAILED in $((SECONDS - tag_started))s")
  fi
}

run_tag device -H "Authorization: Bearer $token"
run_tag backend -H "Authorization: Bearer $api_key"
# No links join these three: the stateful phase has nothing to follow.
run_tag operations --phases examples,coverage,fuzzing

summary=$(printf '%s, ' "${results[@]}")
printf '\nopenapi: %d passed, %d failed (%s; schemathesis %s, seed %s, %s examples per operation, %ss)\n' \
  "$passed" "$failed" "${summary%, }" "$version" "$seed" "$max_examples" "$((SECONDS - started))"
[[ $failed == 0 ]]
