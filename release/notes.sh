#!/usr/bin/env bash
# Prints the section of CHANGELOG.md for one version, without its heading: the notes of that
# version's release. Fails, naming the version, when CHANGELOG.md has no such section or it is
# empty, so no release goes out without notes.
#
#   release/notes.sh 0.2.0
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:?usage: release/notes.sh <version>}"
notes="$(awk -v version="$version" '
  /^## \[/ {
    if (printing) exit
    heading = $0
    sub(/^## \[/, "", heading); sub(/\].*$/, "", heading)
    if (heading == version) { printing = 1; next }
  }
  /^\[[^]]+\]: / { if (printing) exit }
  printing { print }
' "$root/CHANGELOG.md")"
# Trim blank lines at both ends; refuse an empty section.
notes="$(printf '%s\n' "$notes" | sed -e '/./,$!d' | tac | sed -e '/./,$!d' | tac)"
if [ -z "$notes" ]; then
  echo "release/notes.sh: CHANGELOG.md has no section \"## [$version]\" with notes under it" >&2
  exit 1
fi
printf '%s\n' "$notes"
