#!/usr/bin/env bash
# Installs the independent JOSE implementation tools/tests/independent_jose.rs runs: the npm
# package jose (panva), pinned by package-lock.json, into tools/tests/jose/node_modules.
# Needs Node.js and npm; does nothing when the installed packages match the lock file.
set -euo pipefail
cd "$(dirname "$0")"
if ! cmp -s package-lock.json node_modules/.installed-lock.json; then
  echo "    installing jose into tools/tests/jose/node_modules" >&2
  npm ci --silent --no-audit --no-fund >&2
  cp package-lock.json node_modules/.installed-lock.json
fi
