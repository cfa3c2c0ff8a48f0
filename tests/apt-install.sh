#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet, with
# apt-get: as root directly, otherwise through sudo. Prints what it installs on stderr (stdout
# stays free for the callers that print a result there) and nothing when all are present.
#
#   tests/apt-install.sh postgresql maven
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
[ "${#missing[@]}" -gt 0 ] || exit 0
if ! command -v apt-get >/dev/null; then
  echo "apt-install.sh: ${missing[*]} missing and this is not a Debian-like system (no apt-get); install them and run again" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "apt-install.sh: installing ${missing[*]} needs root or sudo" >&2; exit 1; }
  sudo=(sudo)
fi
echo "    installing ${missing[*]} (apt-get)" >&2
"${sudo[@]}" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
