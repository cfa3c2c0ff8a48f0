#!/usr/bin/env bash
# The version of callpush: `version` under [workspace.package] in the root Cargo.toml, the one
# place it is written. Every package (crates, AAR, Swift package, HAR, NuGet, server image)
# carries this number; see RELEASING.md.
#
#   release/version.sh                 prints it
#   release/version.sh --check         fails, naming each place, when a package or its docs differ
#   release/version.sh --set 1.2.0     writes it everywhere (release/versions.py lists the places)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -gt 0 ]; then
  exec python3 "$root/release/versions.py" "$@"
fi
awk '
  /^\[/ { in_section = ($0 == "[workspace.package]") }
  in_section && /^version *= *"/ { sub(/^version *= *"/, ""); sub(/".*$/, ""); print; found = 1; exit }
  END { if (!found) { print "version.sh: no version under [workspace.package] in Cargo.toml" > "/dev/stderr"; exit 1 } }
' "$root/Cargo.toml"
