#!/usr/bin/env bash
# The C# suite, under Mono against the host library; a stage of tests/run.sh.
#
#   1. installs Mono's C# compiler and runtime, the assemblies the binding uses and NUnit 2.6
#      from Debian's packages when missing (apt-get; root or sudo)
#   2. builds callpush's library alone (so no feature of another crate is unified into it),
#      then the server and callpush-dev for the flow tests, and the C# syntax checker
#   3. compiles the binding (the generated Callpush.g.cs and the portable library) with
#      mcs -langversion:7.2, warnings as errors and XML docs checked, as the .NET SDK builds it
#      for netstandard2.0; then the tests
#   4. parses every Windows-only .cs file (Callpush.Windows) with tree-sitter's C# grammar, and
#      proves that check fails on a broken file
#   5. runs the NUnit tests (bindings-csharp/tests) with the library next to the assemblies
#
# Output goes to target/csharp-tests. About a minute once the Rust build is done.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/csharp-tests"
cd "$root"

# shellcheck source=bindings-csharp/tests/mono.sh
. bindings-csharp/tests/mono.sh
csharp_install_packages "${csharp_mono_packages[@]}" libmono-system-json4.0-cil nunit-console \
  libnunit-framework2.6.3-cil
nunit_framework=/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll
[ -f "$nunit_framework" ] || { echo "NUnit 2.6 framework not found at $nunit_framework" >&2; exit 1; }

echo "    building the library, the server, callpush-dev and the C# syntax checker"
cargo build --quiet --locked -p callpush-ffi
cargo build --quiet --locked -p callpush-server -p callpush-dev
cargo build --quiet --locked --release --manifest-path tools/syntax-check/Cargo.toml
case "$(uname -s)" in
  Darwin) library="$root/target/debug/libcallpush.dylib" ;;
  *) library="$root/target/debug/libcallpush.so" ;;
esac

rm -rf "$out"
mkdir -p "$out"
windows=$(find bindings-csharp/src/Callpush.Windows -name '*.cs' | sort)
# Every .cs file under tests/: tests/run-windows.ps1 compiles the same ones, by the same rule.
tests=$(find bindings-csharp/tests -name '*.cs' | sort)

echo "    compiling the binding: mcs -langversion:7.2, warnings as errors, XML docs"
csharp_compile_callpush "$out"

echo "    compiling the tests"
# shellcheck disable=SC2086
mcs -langversion:7.2 -target:library -warnaserror+ -nologo -r:"$out/Callpush.dll" -r:"$nunit_framework" \
  -r:System.Net.Http.dll -r:System.Json.dll -r:System.Xml.Linq.dll \
  -out:"$out/Callpush.Tests.dll" $tests

echo "    parsing the Windows-only files with tree-sitter's C# grammar"
checker="$root/tools/syntax-check/target/release/syntax-check"
# shellcheck disable=SC2086
"$checker" csharp $windows | sed 's/^/  /'
if "$checker" csharp tools/syntax-check/tests/fixtures/broken.cs >"$out/broken.log" 2>&1; then
  echo "the syntax check passed a broken C# file" >&2
  exit 1
fi
echo "      ok    and it fails a broken file: $(grep -m1 'broken.cs:' "$out/broken.log")"

echo "    running the NUnit tests under Mono"
cp "$library" "$out/"
cp "$nunit_framework" "$out/"
(cd "$out" && LD_LIBRARY_PATH="$out" MONO_ENV_OPTIONS=--debug \
  nunit-console -nologo -noshadow -domain:None -labels -xml="$out/results.xml" Callpush.Tests.dll >"$out/nunit.log" 2>&1) || {
  cat "$out/nunit.log"
  exit 1
}
grep -E '^Tests run:' "$out/nunit.log" | sed 's/^/      /'
