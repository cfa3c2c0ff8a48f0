#!/usr/bin/env bash
# Checks server/deploy without Docker or a running systemd (neither is here):
#
#   Dockerfile         hadolint (pinned in requirements.txt, installed into target/deploy-venv)
#                      and check_dockerfile.py: pinned rust:X.Y.Z-bookworm build, a runtime stage
#                      with only the binary, a numeric non-root USER, HEALTHCHECK on /healthz,
#                      VOLUME /var/lib/callpush, EXPOSE, STOPSIGNAL SIGTERM
#   callpush.service   `systemd-analyze verify`, and `systemd-analyze security` exposure at most 2.0
#   the configuration  callpush.production.toml holds no secret; `callpush serve` starts with it
#                      and callpush.env.example (placeholder key files, SQLite instead of
#                      PostgreSQL), the Dockerfile's own HEALTHCHECK command passes against it,
#                      SIGTERM stops it with status 0 within the unit's TimeoutStopSec, and
#                      (traced with strace) it uses no system call or socket family the unit
#                      forbids; a bad key file stops it; its database_url's TLS is possible
#   self-test          mutated files must fail: USER root, no HEALTHCHECK, COPY of the context into
#                      the runtime stage, a misspelt unit setting, an unhardened unit
#
#   server/deploy/check.sh [--bin DIR]
#
#   --bin DIR   the directory holding the `callpush` to run (default: build target/debug with
#               `cargo build --locked -p callpush-server`)
#
# Prints one `ok` or `FAIL` line per check, then `N passed, N failed`; exits 1 if any failed.
# Each step has a time limit; a few seconds once the venv and the binary exist. KEEP=1 keeps its
# scratch directory (the server's logs, the strace output) and prints where it is.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
root=$PWD
deploy=server/deploy
bin_dir=
while (($#)); do
  case $1 in
    --bin) bin_dir=$(cd "$2" && pwd) || exit 2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "deploy/check.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
done

passed=0 failed=0
ok() { printf '    ok    %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf '    FAIL  %s\n' "$*"; failed=$((failed + 1)); }
indent() { sed 's/^/          /'; }
section() { printf '  %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/callpush-deploy.XXXXXX")
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  [[ -n ${listener_pid:-} ]] && kill "$listener_pid" 2>/dev/null
  [[ -n ${KEEP:-} ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- Dockerfile
section "Dockerfile"
venv=target/deploy-venv
hadolint=
if timeout 300 tests/venv.sh "$venv" "$deploy/requirements.txt" >"$tmp/venv.log" 2>&1 \
  && [[ -x $venv/bin/hadolint ]]; then
  hadolint=$root/$venv/bin/hadolint
else
  fail "hadolint could not be installed ($deploy/requirements.txt into $venv)"
  indent <"$tmp/venv.log"
fi
lint() { timeout 60 "$hadolint" --no-color "$1"; }
structure() { timeout 30 python3 "$deploy/check_dockerfile.py" "$1"; }

if [[ -n $hadolint ]]; then
  if out=$(lint "$deploy/Dockerfile" 2>&1); then
    ok "hadolint $("$hadolint" --version | awk '{print $NF}') finds nothing"
  else
    fail "hadolint:"
    indent <<<"$out"
  fi
fi
if out=$(structure "$deploy/Dockerfile" 2>&1); then
  ok "pinned rust build; runtime: only the binary, non-root uid, HEALTHCHECK /healthz, VOLUME, EXPOSE, STOPSIGNAL"
else
  fail "the Dockerfile's structure:"
  indent <<<"$out"
fi

# The ports must agree: EXPOSE, the health check's, the production configuration's `listen`.
expose=$(awk '$1 == "EXPOSE" { print $2 }' "$deploy/Dockerfile" | tail -n 1)
health_cmd=$(python3 - "$deploy/Dockerfile" <<'EOF'
import json, re, sys
text = re.sub(r"\\\n\s*", "", open(sys.argv[1]).read())
line = [l for l in text.splitlines() if l.startswith("HEALTHCHECK")][-1]
cmd = json.loads(line[line.index("CMD") + 3:].strip())
print(cmd[-1])
EOF
)
health_port=$(grep -o '/dev/tcp/127\.0\.0\.1/[0-9]*' <<<"$health_cmd" | awk -F/ '{print $NF}')
listen_port=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["listen"].rsplit(":", 1)[1])' \
  "$deploy/callpush.production.toml")
if [[ -n $expose && $expose == "$health_port" && $expose == "$listen_port" ]]; then
  ok "one port everywhere: EXPOSE, the health check and the production listen address ($expose)"
else
  fail "ports disagree: EXPOSE ${expose:-?}, health check ${health_port:-?}, production listen ${listen_port:-?}"
fi

# Self-test: the checks refuse what they must.
mutate() { # NAME SED-SCRIPT: a mutated copy of the Dockerfile, at $tmp/NAME
  sed "$2" "$deploy/Dockerfile" >"$tmp/$1"
  cmp -s "$deploy/Dockerfile" "$tmp/$1" && { echo "the mutation $1 changed nothing" >&2; return 1; }
  return 0
}
mutate Dockerfile.root 's/^USER .*/USER root/'
if ! structure "$tmp/Dockerfile.root" >/dev/null && { [[ -z $hadolint ]] || ! lint "$tmp/Dockerfile.root" >/dev/null; }; then
  ok "self-test: a runtime stage running as root is refused (both checks)"
else
  fail "self-test: USER root passed"
fi
mutate Dockerfile.nohealth '/^HEALTHCHECK/,/^  CMD/d'
if ! structure "$tmp/Dockerfile.nohealth" >/dev/null; then
  ok "self-test: a runtime stage without HEALTHCHECK is refused"
else
  fail "self-test: no HEALTHCHECK passed"
fi
mutate Dockerfile.context 's|^COPY --from=build .*|&\nCOPY . /src|'
if ! structure "$tmp/Dockerfile.context" >/dev/null; then
  ok "self-test: a runtime stage copying the build context is refused"
else
  fail "self-test: COPY . into the runtime stage passed"
fi

# ---------------------------------------------------------------- the binary
if [[ -z $bin_dir ]]; then
  if timeout 900 cargo build --locked -q -p callpush-server >"$tmp/build.log" 2>&1; then
    bin_dir=$root/target/debug
  else
    fail "cargo build --locked -p callpush-server"
    tail -n 30 "$tmp/build.log" | indent
  fi
fi
bin=${bin_dir:+$bin_dir/callpush}

# ---------------------------------------------------------------- callpush.service
section "callpush.service"
unit=$tmp/unit/callpush.service
mkdir -p "$tmp/unit"
stop_timeout=$(awk -F= '$1 == "TimeoutStopSec" { print $2 }' "$deploy/callpush.service")
verify_unit() { # FILE: systemd-analyze verify with ExecStart's binary replaced by the one built here
  local copy
  copy=$tmp/unit/$(basename "$1")
  [[ $1 == "$copy" ]] || cp "$1" "$copy"
  sed -i "s|^ExecStart=/usr/local/bin/callpush |ExecStart=$bin |" "$copy"
  timeout 60 systemd-analyze verify "$copy" 2>&1
}
security() { timeout 60 systemd-analyze security --offline=true --threshold=20 "$1" 2>&1; }
command -v systemd-analyze >/dev/null || timeout 300 tests/apt-install.sh systemd >"$tmp/apt.log" 2>&1 || true
if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is not installed"
elif [[ -z $bin ]]; then
  fail "no binary to verify the unit with"
else
  # Any message at all (an unknown setting is only a warning to systemd) fails the check.
  if out=$(verify_unit "$deploy/callpush.service") && [[ -z $out ]]; then
    ok "systemd-analyze verify: no message"
  else
    fail "systemd-analyze verify:"
    indent <<<"$out"
  fi
  if out=$(security "$unit"); then
    ok "systemd-analyze security: $(grep -o 'exposure level.*' <<<"$out" | sed 's/ for [^:]*//')"
  else
    fail "systemd-analyze security: exposure above 2.0"
    grep '✗\|exposure' <<<"$out" | indent
  fi
  sed 's/^ProtectSystem=/ProtectSytem=/' "$deploy/callpush.service" >"$tmp/unit/misspelt.service"
  if out=$(verify_unit "$tmp/unit/misspelt.service") && [[ -z $out ]]; then
    fail "self-test: a misspelt setting passed systemd-analyze verify"
  else
    ok "self-test: a misspelt setting is refused"
  fi
  sed '/^# Sandbox/,/^SystemCallErrorNumber/d' "$deploy/callpush.service" >"$tmp/unit/bare.service"
  if security "$tmp/unit/bare.service" >/dev/null; then
    fail "self-test: a unit without its sandbox passed the exposure threshold"
  else
    ok "self-test: a unit without its sandbox is refused"
  fi
fi
drain=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb")).get("ring", {}).get("drain_seconds", 10))' \
  "$deploy/callpush.production.toml")
if [[ ${stop_timeout%s} =~ ^[0-9]+$ ]] && ((${stop_timeout%s} > drain + 5)); then
  ok "TimeoutStopSec=$stop_timeout leaves the drain (ring.drain_seconds = $drain) time to finish"
else
  fail "TimeoutStopSec=${stop_timeout:-?} is not well above ring.drain_seconds = $drain"
fi

# ---------------------------------------------------------------- the production configuration
section "callpush.production.toml"
if out=$(python3 - "$deploy/callpush.production.toml" <<'EOF'
import sys, tomllib, urllib.parse
config = tomllib.load(open(sys.argv[1], "rb"))
problems = []
def walk(node, path):
    for key, value in node.items():
        where = f"{path}{key}"
        if isinstance(value, dict):
            walk(value, where + ".")
        elif ("secret" in key or key in ("api_keys", "password")) and value:
            problems.append(f"{where} is set in the file: secrets belong in the environment file")
walk(config, "")
url = urllib.parse.urlsplit(config.get("database_url", ""))
if url.password:
    problems.append("database_url carries a password: use PGPASSWORD in the environment file")
if config.get("log_format") != "json":
    problems.append("log_format is not json")
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
); then
  ok "no secret in the file (API keys, passwords, client secrets come from the environment); JSON logs"
else
  fail "the production configuration:"
  indent <<<"$out"
fi

if [[ -z $bin ]]; then
  fail "no binary to start with the production configuration"
else
  # The configuration as installed, its key files under $etc/keys instead of /etc/callpush/keys.
  etc=$tmp/etc state=$tmp/state
  mkdir -p "$etc/keys" "$state"
  chmod 0700 "$state"
  sed "s|/etc/callpush/keys/|$etc/keys/|g" "$deploy/callpush.production.toml" >"$etc/callpush.toml"
  python3 - "$root/tests/emulators/test-keys" "$etc/keys" <<'EOF'
import json, os, sys
keys, out = sys.argv[1], sys.argv[2]
pem = lambda name: open(os.path.join(keys, name)).read()
def write(name, text):
    path = os.path.join(out, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as f:
        f.write(text)
# Placeholders in the providers' formats, signed with the emulators' public test keys.
write("agc-service-account.json", json.dumps({
    "project_id": "388421841221234567", "key_id": "placeholder-key-id",
    "sub_account": "placeholder-sub-account", "private_key": pem("harmony-service-account.pem")}))
write("firebase-service-account.json", json.dumps({
    "type": "service_account", "project_id": "my-project", "private_key_id": "placeholder",
    "private_key": pem("fcm-service-account.pem"),
    "client_email": "callpush@my-project.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token"}))
write("AuthKey_ABC123DEFG.p8", pem("apns-AuthKey.p8"))
write("postgres-ca.pem", pem("apns-AuthKey.pub.pem"))  # never read: SQLite below
EOF
  chmod 0750 "$etc/keys"
  cp "$etc/keys/AuthKey_ABC123DEFG.p8" "$tmp/good.p8"
  # As the unit and the image run it: not as root (as root, SQLite also chowns its files). The
  # key files as installed: root:<the server's group> 0640 in a 0750 directory.
  as_user=()
  if [[ $(id -u) == 0 ]]; then
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chmod 0711 "$tmp" "$etc"
    # A copy the server's user can reach wherever the checkout lives (a clone may sit in a
    # 0700 directory).
    install -m 0755 "$bin" "$tmp/callpush"
    bin=$tmp/callpush
    chown -R 65534:65534 "$state"
    chown -R 0:65534 "$etc/keys"
  fi

  # The environment: the example environment file, read as systemd and `docker --env-file` read
  # it (VARIABLE=value lines, taken literally); no CALLPUSH_* setting of the caller's.
  env_args=()
  while IFS= read -r name; do env_args+=(-u "$name"); done < <(compgen -e | grep '^CALLPUSH_\|^PG' || true)
  while IFS= read -r line; do
    [[ $line =~ ^[A-Z_][A-Z0-9_]*= ]] && env_args+=("$line")
  done <"$deploy/callpush.env.example"
  port=$(free_port)
  # Here: SQLite in the state directory (no PostgreSQL with TLS to reach) and a free loopback
  # port; everything else as the file and the environment file say.
  run_env=("${env_args[@]}" CALLPUSH_LISTEN="127.0.0.1:$port" CALLPUSH_DATABASE_URL="sqlite://$state/callpush.db")

  tracer=()
  command -v strace >/dev/null || timeout 300 tests/apt-install.sh strace >"$tmp/apt.log" 2>&1 || true
  if command -v strace >/dev/null && timeout 10 strace -f -qq -o /dev/null true 2>/dev/null; then
    mkdir -p "$tmp/trace"
    [[ -n ${as_user[*]} ]] && chown 65534:65534 "$tmp/trace"
    tracer=(strace -f -qq -o "$tmp/trace/strace.txt")
  else
    fail "strace is not usable here: the unit's system call filter goes unchecked"
  fi
  (cd "$state" && exec env "${run_env[@]}" "${as_user[@]}" "${tracer[@]}" "$bin" serve --config "$etc/callpush.toml" \
    >"$tmp/serve.log" 2>&1) &
  server_pid=$!

  # The Dockerfile's HEALTHCHECK command itself, at this port.
  healthy=
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    kill -0 "$server_pid" 2>/dev/null || break
    if timeout 5 bash -c "${health_cmd//\/dev\/tcp\/127.0.0.1\/$health_port//dev/tcp/127.0.0.1/$port}" 2>/dev/null; then
      healthy=1
      break
    fi
    sleep 0.2
  done
  if [[ -n $healthy ]]; then
    ok "callpush serve starts with the production configuration and callpush.env.example; the Dockerfile's HEALTHCHECK passes"
    base=http://127.0.0.1:$port
    api_key=$(sed -n 's/^CALLPUSH_API_KEYS=\["\(.*\)"\]$/\1/p' "$deploy/callpush.env.example")
    readyz=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/readyz")
    ring=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$base/v1/calls" \
      -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
      -d '{"from": {"id": "alice"}, "to": ["bob"], "video": false}')
    metrics=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/metrics")
    if [[ $readyz == 200 && $ring == 202 && $metrics == 200 ]]; then
      ok "it serves: /readyz 200, a ring with the environment file's API key 202, /metrics 200"
    else
      fail "it does not serve: /readyz $readyz, POST /v1/calls $ring, /metrics $metrics (expected 200, 202, 200)"
    fi
    if head -n 1 "$tmp/serve.log" | python3 -c 'import json, sys; json.loads(sys.stdin.readline())' 2>/dev/null; then
      ok "it logs JSON lines"
    else
      fail "its log is not JSON lines:"
      head -n 3 "$tmp/serve.log" | indent
    fi
    # The pid to signal: the server itself, not strace.
    target=$server_pid
    if ((${#tracer[@]})); then target=$(awk 'NR == 1 { print $1 }' "$tmp/trace/strace.txt"); fi
    started=$SECONDS
    kill -TERM "$target"
    status=
    for _ in $(seq $((${stop_timeout%s} * 10))); do
      kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid"; status=$?; break; }
      sleep 0.1
    done
    if [[ $status == 0 ]]; then
      ok "SIGTERM: drained and exited 0 in $((SECONDS - started)) s (TimeoutStopSec=$stop_timeout)"
    else
      fail "SIGTERM: ${status:+exit status $status}${status:-still running after $stop_timeout}"
      tail -n 5 "$tmp/serve.log" | indent
    fi
    server_pid=
    if ((${#tracer[@]})); then
      if out=$(timeout 60 python3 "$deploy/check_syscalls.py" "$deploy/callpush.service" "$tmp/trace/strace.txt" 2>&1); then
        ok "the unit's sandbox: $out"
      else
        fail "the unit's sandbox would refuse what the server did:"
        indent <<<"$out"
      fi
      sed 's/^SystemCallFilter=~.*/& @network-io/' "$deploy/callpush.service" >"$tmp/unit/no-network.service"
      if timeout 60 python3 "$deploy/check_syscalls.py" "$tmp/unit/no-network.service" "$tmp/trace/strace.txt" >/dev/null 2>&1; then
        fail "self-test: a unit forbidding @network-io passed the system call check"
      else
        ok "self-test: a unit forbidding @network-io is refused by the system call check"
      fi
    fi
  else
    fail "callpush serve did not become healthy within 30 s with the production configuration:"
    tail -n 15 "$tmp/serve.log" | indent
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
  fi

  # A bad key file stops the server at start, naming the file.
  echo "not a key" >"$etc/keys/AuthKey_ABC123DEFG.p8"
  port=$(free_port)
  (cd "$state" && exec timeout 20 env "${env_args[@]}" CALLPUSH_LISTEN="127.0.0.1:$port" \
    CALLPUSH_DATABASE_URL="sqlite://$state/callpush.db" "${as_user[@]}" "$bin" serve --config "$etc/callpush.toml" \
    >"$tmp/bad.log" 2>&1)
  status=$?
  if [[ $status == 2 ]] && grep -q "AuthKey_ABC123DEFG.p8" "$tmp/bad.log"; then
    ok "a bad key file stops it (status 2, the file named)"
  else
    fail "a bad APNs key file: status $status"
    tail -n 3 "$tmp/bad.log" | indent
  fi
  cp "$tmp/good.p8" "$etc/keys/AuthKey_ABC123DEFG.p8"

  # The file's database_url asks for TLS (sslmode=verify-full): the server must be able to speak
  # it. Pointed at a listener that closes every connection, it must fail for that, not for
  # having no TLS at all.
  lport=$(free_port)
  python3 - "$lport" <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
s.settimeout(30)
try:
    while True:
        conn, _ = s.accept()
        conn.close()
except socket.timeout:
    pass
EOF
  listener_pid=$!
  sleep 0.3
  db_url=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["database_url"])' "$etc/callpush.toml" \
    | sed -E "s|@[^/?]+|@127.0.0.1:$lport|")
  port=$(free_port)
  (cd "$state" && exec timeout 20 env "${env_args[@]}" CALLPUSH_LISTEN="127.0.0.1:$port" \
    CALLPUSH_DATABASE_URL="$db_url" "${as_user[@]}" "$bin" serve --config "$etc/callpush.toml" >"$tmp/tls.log" 2>&1)
  kill "$listener_pid" 2>/dev/null
  wait "$listener_pid" 2>/dev/null
  listener_pid=
  if grep -qi "without TLS support" "$tmp/tls.log"; then
    fail "database_url asks for TLS (sslmode=verify-full), and this callpush was built without TLS for PostgreSQL:"
    grep -i "without TLS support" "$tmp/tls.log" | tail -n 1 | indent
  elif grep -q "^callpush: database" "$tmp/tls.log"; then
    ok "database_url's TLS (sslmode=verify-full) is attempted"
  else
    fail "database_url's TLS: unexpected outcome:"
    tail -n 3 "$tmp/tls.log" | indent
  fi
fi

printf '\n%s passed, %s failed\n' "$passed" "$failed"
((failed == 0))
