#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint: workflow syntax,
# expressions, action inputs, runner labels, and the shell of `run:` steps (with shellcheck, when
# it is on PATH).
#
#   tools/lint-workflows.sh
#
# Needs only Go: actionlint is built once with `go install` into target/tools/bin (the version
# pinned below) and reused from there. Prints `ok` and exits 0 when there is nothing to report;
# prints actionlint's findings and exits 1 otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

version=v1.7.12
bin="$root/target/tools/bin"
actionlint="$bin/actionlint"

installed() {
  [ -x "$actionlint" ] && [ "$("$actionlint" -version 2>/dev/null | head -n 1)" = "$version" ]
}
if ! installed; then
  if ! command -v go >/dev/null; then
    echo "lint-workflows.sh needs Go to install actionlint $version (https://go.dev/dl/)" >&2
    exit 2
  fi
  echo "    installing actionlint $version into target/tools/bin"
  mkdir -p "$bin"
  GOBIN="$bin" go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
  installed || { echo "lint-workflows.sh: $actionlint is not actionlint $version after go install" >&2; exit 2; }
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ ${#workflows[@]} -eq 0 ]; then
  echo "no workflows in .github/workflows"
  exit 0
fi
if command -v shellcheck >/dev/null; then
  checks="with shellcheck"
else
  checks="without shellcheck (not installed)"
fi

if "$actionlint" -no-color "${workflows[@]}"; then
  echo "ok    actionlint $version, ${#workflows[@]} workflow(s), $checks"
else
  echo "actionlint $version found problems in the workflows above" >&2
  exit 1
fi
