#!/usr/bin/env bash
# Installs the independent provider clients the provider tests run against the emulators:
# the Python ones (tests/clients/requirements.txt) into target/clients-venv and the APNs one
# (@parse/node-apn, pinned by its package-lock.json) into server/tests/provider_apns/node_modules.
# Prints the Python interpreter to use as CALLPUSH_TEST_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/venv.sh target/clients-venv tests/clients/requirements.txt >&2
apn=server/tests/provider_apns
if ! cmp -s "$apn/package-lock.json" "$apn/node_modules/.installed-lock.json"; then
  echo "    installing @parse/node-apn into $apn/node_modules" >&2
  (cd "$apn" && npm ci --silent --no-audit --no-fund) >&2
  cp "$apn/package-lock.json" "$apn/node_modules/.installed-lock.json"
fi
echo "$PWD/target/clients-venv/bin/python"
