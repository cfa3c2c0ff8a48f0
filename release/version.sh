#!/usr/bin/env bash
# Prints the version of callpush: `version` under [workspace.package] in the root Cargo.toml, the
# one place it is written. Every package (crates, AAR, Swift package, HAR, NuGet, server image)
# carries this number; see RELEASING.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
awk '
  /^\[/ { in_section = ($0 == "[workspace.package]") }
  in_section && /^version *= *"/ { sub(/^version *= *"/, ""); sub(/".*$/, ""); print; found = 1; exit }
  END { if (!found) { print "version.sh: no version under [workspace.package] in Cargo.toml" > "/dev/stderr"; exit 1 } }
' "$root/Cargo.toml"
