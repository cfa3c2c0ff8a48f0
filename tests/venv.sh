#!/usr/bin/env bash
# Creates (or refreshes) a Python virtual environment with pinned requirements.
#
# Usage: tests/venv.sh VENV_DIR REQUIREMENTS_FILE
# Reinstalls only when the requirements file changed since the last install, so repeated test
# runs cost nothing. Installs Debian's python3-venv first when the system Python lacks venv.
# $PYTHON overrides the interpreter (default python3).
set -euo pipefail
venv=$1 requirements=$2
python=${PYTHON:-python3}

if cmp -s "$requirements" "$venv/installed-requirements.txt" && [[ -x $venv/bin/python ]]; then
  exit 0
fi
echo "    installing $requirements into $venv"
if ! "$python" -m venv "$venv" 2>/dev/null; then
  # Debian's Python keeps venv (and its pip) in a separate package.
  "$(dirname "$0")/apt-install.sh" python3-venv
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
cp "$requirements" "$venv/installed-requirements.txt"
