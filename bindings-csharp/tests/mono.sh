# shellcheck shell=bash
# Sourced (from the repository's root) by bindings-csharp/tests/run.sh and
# bindings-csharp/check-package.sh: Debian's Mono, and the portable library compiled the way
# the .NET SDK builds Callpush.csproj.

# The Mono packages that compile and run the portable library.
# shellcheck disable=SC2034 # used by the scripts that source this file
csharp_mono_packages=(mono-mcs mono-runtime libmono-system-net-http4.0-cil libmono-system-xml-linq4.0-cil)

# Installs the Debian packages named that are missing (apt-get; root or sudo).
csharp_install_packages() {
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  echo "    installing ${missing[*]}"
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# csharp_compile_callpush OUT [FILE.cs...]: OUT/Callpush.dll and its XML documentation
# OUT/Callpush.xml from every .cs file of bindings-csharp/src/Callpush (and the files named),
# with mcs -langversion:7.2, warnings as errors and the XML documentation checked, as the .NET
# SDK builds Callpush.csproj for netstandard2.0. (tests/run-windows.ps1 compiles the same files,
# by the same rule, with csc on Windows.)
csharp_compile_callpush() {
  local out="$1"
  shift
  local portable
  portable=$(find bindings-csharp/src/Callpush -name '*.cs' | sort)
  # shellcheck disable=SC2086 # one argument per file
  mcs -langversion:7.2 -target:library -warnaserror+ -nologo -doc:"$out/Callpush.xml" \
    -r:System.Net.Http.dll -r:System.Xml.Linq.dll -out:"$out/Callpush.dll" $portable "$@"
  echo "      ok    Callpush.dll ($(echo "$portable" | wc -l) files)"
}
