# shellcheck shell=bash disable=SC2034  # sourced; the DEV_SERVER_* variables are for the sourcing script
# Sourced (never run) by the scripts that test against a fresh `callpush serve`: the curl tour
# (server/examples/api-tour.sh), schemathesis (tests/openapi/run.sh), the generated clients
# (tests/openapi-clients/run.sh) and the metrics check (tests/metrics/check.sh).
#
#   source "$root/tests/dev-server.sh"
#   dev_server_name=metrics                        # prefix of its messages (default: the script's name)
#   dev_server_env=(CALLPUSH_LOG=warn)             # more environment for the server (optional)
#   start_dev_server BIN WORK_DIR [SERVE_ARGUMENTS...]   # default arguments: --dev
#
# start_dev_server starts BIN (the `callpush` binary) as `BIN serve SERVE_ARGUMENTS` in WORK_DIR
# (which it creates; the server keeps its database, development credentials and pushes there),
# its output in WORK_DIR/serve.log, on a free loopback port (CALLPUSH_LISTEN), with no CALLPUSH_*
# setting of the caller's environment (CALLPUSH_CONFIG included; CALLPUSH_LOG, the log filter,
# and CALLPUSH_BIN stay): only the defaults, SERVE_ARGUMENTS and dev_server_env configure it. It
# waits up to 30 s for GET /healthz to answer 200 and exits the script with status 1 if the
# server exits or does not come up. Then it sets:
#
#   DEV_SERVER_URL       http://127.0.0.1:PORT
#   DEV_SERVER_PORT      PORT
#   DEV_SERVER_PID       the server's pid (the server itself, not a subshell)
#   DEV_SERVER_LOG       WORK_DIR/serve.log
#   DEV_SERVER_API_KEY   the API key of the development credentials (with --dev; else empty)
#   dev_server_clean_env the `env` arguments of that clean environment: env "${dev_server_clean_env[@]}" …
#
# and dev_server_token USER [ARGUMENTS...] prints a device token for USER (`BIN token --user USER
# ARGUMENTS`, in WORK_DIR, in the clean environment).
#
# Stopping: sourcing installs traps. On EXIT the server is stopped (SIGTERM, waited for); if the
# script is failing, the last 40 lines of its log (DEV_SERVER_LOG_LINES; "all" for the whole log)
# go to stderr; then the commands given to dev_server_at_exit run (e.g. removing a temporary
# directory), and the script exits with its status. INT and TERM exit 130 and 143 through it.
# A script needing more at exit calls dev_server_at_exit [--before] 'COMMAND' (evaluated then, in
# order; with --before, before the server is stopped: to stop a client of it first).

dev_server_name=${dev_server_name:-$(basename "$0" .sh)}
dev_server_env=()
dev_server_clean_env=()
DEV_SERVER_URL='' DEV_SERVER_PORT='' DEV_SERVER_PID='' DEV_SERVER_LOG='' DEV_SERVER_API_KEY=''
DEV_SERVER_LOG_LINES=${DEV_SERVER_LOG_LINES:-40}
_dev_server_bin=
_dev_server_dir=
_dev_server_at_exit=()
_dev_server_before_exit=()

# Adds COMMAND to what runs at exit: after the server is stopped, or with --before, before.
dev_server_at_exit() {
  if [[ $1 == --before ]]; then
    _dev_server_before_exit+=("$2")
  else
    _dev_server_at_exit+=("$1")
  fi
}

_dev_server_exit() {
  local status=$? command
  for command in "${_dev_server_before_exit[@]}"; do
    eval "$command" || true
  done
  if [[ -n $DEV_SERVER_PID ]] && kill -0 "$DEV_SERVER_PID" 2>/dev/null; then
    kill "$DEV_SERVER_PID" 2>/dev/null || true
    wait "$DEV_SERVER_PID" 2>/dev/null || true
  fi
  if [[ $status != 0 && -s $DEV_SERVER_LOG ]]; then
    if [[ $DEV_SERVER_LOG_LINES == all ]]; then
      echo "---- the server's log ----" >&2
      cat "$DEV_SERVER_LOG" >&2
    else
      echo "---- last lines of the server log ----" >&2
      tail -n "$DEV_SERVER_LOG_LINES" "$DEV_SERVER_LOG" >&2
    fi
  fi
  for command in "${_dev_server_at_exit[@]}"; do
    eval "$command" || true
  done
  exit "$status"
}
trap _dev_server_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1.
dev_server_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_dev_server() {
  local bin=$1 dir=$2 name
  shift 2
  (($#)) || set -- --dev
  _dev_server_bin=$bin
  _dev_server_dir=$dir
  mkdir -p "$dir"

  dev_server_clean_env=()
  while IFS= read -r name; do
    [[ $name == CALLPUSH_LOG || $name == CALLPUSH_BIN ]] || dev_server_clean_env+=(-u "$name")
  done < <(compgen -e | grep '^CALLPUSH_' || true)

  DEV_SERVER_PORT=$(dev_server_free_port)
  DEV_SERVER_URL=http://127.0.0.1:$DEV_SERVER_PORT
  DEV_SERVER_LOG=$dir/serve.log
  # `exec`: the background job is the server itself, so stopping it stops the server.
  (cd "$dir" && exec env "${dev_server_clean_env[@]}" "${dev_server_env[@]}" \
    CALLPUSH_LISTEN="127.0.0.1:$DEV_SERVER_PORT" "$bin" serve "$@" >"$DEV_SERVER_LOG" 2>&1) &
  DEV_SERVER_PID=$!

  local deadline=$((SECONDS + 30))
  until curl -sf --max-time 2 "$DEV_SERVER_URL/healthz" >/dev/null 2>&1; do
    if ! kill -0 "$DEV_SERVER_PID" 2>/dev/null; then
      echo "$dev_server_name: the server exited" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$dev_server_name: the server did not come up at $DEV_SERVER_URL within 30 s" >&2
      exit 1
    fi
    sleep 0.1
  done

  DEV_SERVER_API_KEY=
  if [[ -f $dir/callpush-dev-credentials.json ]]; then
    DEV_SERVER_API_KEY=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_key"])' \
      "$dir/callpush-dev-credentials.json")
  fi
}

# A device token for USER, as the server running in WORK_DIR accepts it.
dev_server_token() {
  local user=$1
  shift
  (cd "$_dev_server_dir" && env "${dev_server_clean_env[@]}" "$_dev_server_bin" token --user "$user" "$@")
}
