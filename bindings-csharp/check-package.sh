#!/usr/bin/env bash
# The Callpush NuGet package, assembled on this machine and its layout checked; or packages built
# on Windows (build-nuget.ps1) checked.
#
#   bindings-csharp/check-package.sh
#       1. checks the package definitions without building (package/nupkg.py sources):
#          Callpush.csproj passes Callpush.nuspec exactly its tokens, the one default version
#          (src/Directory.Build.props) is release/version.sh's, Callpush.Windows.csproj's
#          metadata equals Callpush.nuspec's;
#       2. builds the host library (cargo build -p callpush-ffi) and compiles Callpush.dll and
#          Callpush.xml with mcs as tests/run.sh does, with the assembly attributes the .NET SDK
#          generates for the version;
#       3. packs src/Callpush/Callpush.nuspec as dotnet pack does (package/nupkg.py pack), the
#          host target/debug/libcallpush.so standing in for the three callpush.dll, into
#          target/packages/stand-in/nuget/Callpush.<version>.nupkg (a layout check only: never publish
#          it; the release's packages are build-nuget.ps1's);
#       4. checks it: the nuspec inside (id, version = release/version.sh, authors, license
#          Apache-2.0, projectUrl, repository, readme, description, no dependencies), the
#          entries (lib/netstandard2.0/Callpush.dll and .xml, runtimes/<rid>/native/callpush.dll
#          for win-x64, win-arm64 and win-x86, README.md) and nothing else; and that the
#          Callpush.dll inside is the assembly Callpush of that version (package/AssemblyCheck.cs
#          under Mono);
#       5. self-test: copies with one thing wrong (a runtime missing, another version in the
#          nuspec, a stray file, another license, the host library taken for a Windows DLL, an
#          assembly of another version) must each fail with the message that names it.
#
#   bindings-csharp/check-package.sh [--version V] [--skip-uwp] NUPKG...
#       Checks packages built by build-nuget.ps1 (Callpush, Callpush.Windows) the same way, and
#       each native library to be a Windows DLL for its runtime. --version: the version they
#       must have (default release/version.sh); --skip-uwp: Callpush.Windows may lack its UWP
#       target (build-nuget.ps1 -SkipUwp).
#
# Installs Mono from Debian's packages when missing (apt-get; root or sudo). One ok/FAIL line
# per check, a summary, exit status 1 when any failed. About 20 s once the Rust library is built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
work=target/csharp-package
out=target/packages/stand-in/nuget
nupkg=(python3 bindings-csharp/package/nupkg.py)

version=""
version_from=release/version.sh
skip_uwp=()
packages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="${2:?--version wants a value}"; version_from="check-package.sh --version"; shift 2 ;;
    --skip-uwp) skip_uwp=(--skip-uwp); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "check-package.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    *) packages+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
  esac
done
if [ "${#packages[@]}" -eq 0 ] && { [ -n "$version" ] || [ "${#skip_uwp[@]}" -gt 0 ]; }; then
  echo "check-package.sh: --version and --skip-uwp go with packages to check (--help)" >&2
  exit 2
fi
[ -n "$version" ] || version="$(release/version.sh)"

# shellcheck source=bindings-csharp/tests/mono.sh
. bindings-csharp/tests/mono.sh
csharp_install_packages "${csharp_mono_packages[@]}"
command -v python3 >/dev/null || csharp_install_packages python3

rm -rf "$work"
mkdir -p "$work"
passed=0
failed=0

# Prints and counts the ok/FAIL lines of a log; other lines are shown as they are.
tally() {
  local status message
  while IFS=$'\t' read -r status message; do
    case "$status" in
      ok) passed=$((passed + 1)); printf '      ok    %s\n' "$message" ;;
      FAIL) failed=$((failed + 1)); printf '      FAIL  %s\n' "$message" ;;
      info) printf '            %s\n' "$message" ;;
      *) printf '            %s\n' "$status${message:+ $message}" ;;
    esac
  done <"$1"
}
# Runs a command that prints ok/FAIL lines; one that fails without a FAIL line is a failure too.
run_checks() {
  local log="$work/checks.log" rc=0
  timeout 300 "$@" >"$log" 2>&1 || rc=$?
  tally "$log"
  if [ "$rc" -ne 0 ] && ! grep -q $'^FAIL\t' "$log"; then
    failed=$((failed + 1))
    printf '      FAIL  %s exited with %s\n' "${*:1:3}" "$rc"
  fi
}
ok() { passed=$((passed + 1)); printf '      ok    %s\n' "$*"; }
not_ok() { failed=$((failed + 1)); printf '      FAIL  %s\n' "$*"; }

# The AssemblyVersion the .NET SDK derives from a package version (0.2.0-beta.1 -> 0.2.0.0).
assembly_version() {
  local numbers="${1%%[-+]*}"
  echo "$numbers.0"
}

echo "    compiling the assembly check (package/AssemblyCheck.cs)"
mcs -langversion:7.2 -warnaserror+ -nologo -out:"$work/AssemblyCheck.exe" bindings-csharp/package/AssemblyCheck.cs
assembly_check() { # FILE NAME PACKAGE_VERSION LABEL
  run_checks mono "$work/AssemblyCheck.exe" "$1" "$2" "$(assembly_version "$3")" "$3" "$4"
}

summary() {
  echo "    check-package: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

if [ "${#packages[@]}" -gt 0 ]; then
  for package in "${packages[@]}"; do
    echo "    checking $package (version $version)"
    extracted="$work/extracted/$(basename "$package")"
    run_checks "${nupkg[@]}" check "$package" --version "$version" --version-from "$version_from" --native pe \
      "${skip_uwp[@]}" --extract "$extracted"
    while IFS= read -r dll; do
      assembly_check "$dll" "$(basename "$dll" .dll)" "$version" "${dll#"$extracted"/}"
    done < <(find "$extracted" -name '*.dll' 2>/dev/null | sort)
  done
  summary
  exit
fi

echo "    the package definitions (Callpush.nuspec, the csproj files, Directory.Build.props)"
run_checks "${nupkg[@]}" sources "$root" --version "$version"

echo "    building the host library and compiling Callpush.dll $version"
cargo build --quiet --locked -p callpush-ffi
case "$(uname -s)" in
  Darwin) library="target/debug/libcallpush.dylib" ;;
  *) library="target/debug/libcallpush.so" ;;
esac
mkdir -p "$work/bin"
# What the .NET SDK generates from the version (GenerateAssemblyInfo).
cat >"$work/AssemblyInfo.g.cs" <<EOF
[assembly: System.Reflection.AssemblyTitle("Callpush")]
[assembly: System.Reflection.AssemblyProduct("Callpush")]
[assembly: System.Reflection.AssemblyVersion("$(assembly_version "$version")")]
[assembly: System.Reflection.AssemblyFileVersion("$(assembly_version "$version")")]
[assembly: System.Reflection.AssemblyInformationalVersion("$version")]
EOF
csharp_compile_callpush "$work/bin" "$work/AssemblyInfo.g.cs"
for rid in win-x64 win-arm64 win-x86; do
  mkdir -p "$work/native/$rid"
  cp "$library" "$work/native/$rid/callpush.dll"
done

echo "    packing src/Callpush/Callpush.nuspec (the host library standing in for callpush.dll)"
rm -f "$out/Callpush.$version.nupkg"
if package=$("${nupkg[@]}" pack bindings-csharp/src/Callpush/Callpush.nuspec "$out" \
  -p "version=$version" -p "bin=$root/$work/bin" -p "native=$root/$work/native" 2>"$work/pack.log"); then
  ok "packed $package ($(wc -c <"$package") bytes)"
else
  not_ok "packing failed: $(cat "$work/pack.log")"
  summary
  exit 1
fi

echo "    checking $package"
run_checks "${nupkg[@]}" check "$package" --version "$version" --native standin --standin "$library" \
  --readme bindings-csharp/README.md --extract "$work/extracted"
assembly_check "$work/extracted/lib/netstandard2.0/Callpush.dll" Callpush "$version" lib/netstandard2.0/Callpush.dll

echo "    a NuGet client installs it from a folder feed (Debian's nuget 2.8.7; a nuget.config as the README's)"
csharp_install_packages nuget
feed="$work/feed"
mkdir -p "$feed/packages"
cp "$package" "$feed/packages/"
cat >"$feed/nuget.config" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="callpush-local" value="packages" />
  </packageSources>
</configuration>
EOF
# Its own config and data folders, so nothing is written to the user's.
if XDG_CONFIG_HOME="$root/$feed/xdg-config" XDG_DATA_HOME="$root/$feed/xdg-data" timeout 300 \
  nuget install Callpush -Version "$version" -ConfigFile "$feed/nuget.config" -OutputDirectory "$feed/installed" \
  -NonInteractive >"$feed/install.log" 2>&1; then
  installed="$feed/installed/Callpush.$version"
  differs=()
  for file in lib/netstandard2.0/Callpush.dll:"$work/bin/Callpush.dll" lib/netstandard2.0/Callpush.xml:"$work/bin/Callpush.xml" \
    runtimes/win-x64/native/callpush.dll:"$library" runtimes/win-arm64/native/callpush.dll:"$library" \
    runtimes/win-x86/native/callpush.dll:"$library" README.md:bindings-csharp/README.md; do
    cmp -s "$installed/${file%%:*}" "${file#*:}" || differs+=("${file%%:*}")
  done
  if [ "${#differs[@]}" -eq 0 ]; then
    ok "nuget install Callpush -Version $version from the feed: the six files, as built"
  else
    not_ok "nuget install Callpush -Version $version from the feed: ${differs[*]} missing or not as built"
  fi
else
  not_ok "nuget install Callpush -Version $version from the feed failed: $(tr '\n' ' ' <"$feed/install.log" | cut -c1-400)"
fi

echo "    self-test: packages with one thing wrong fail, each with its message"
mkdir -p "$work/mutants"
# expect_failure WHAT MESSAGE COMMAND...: the command must fail and print a FAIL line holding MESSAGE.
expect_failure() {
  local what="$1" message="$2" log="$work/mutants/check.log" rc=0
  shift 2
  timeout 300 "$@" >"$log" 2>&1 || rc=$?
  local line
  line=$(grep -F -m1 -- "$message" "$log" | grep -m1 $'^FAIL\t' || true)
  if [ "$rc" -eq 1 ] && [ -n "$line" ]; then
    ok "$what fails: ${line#FAIL$'\t'}"
  else
    not_ok "$what: wanted a failure saying '$message', got exit $rc: $(tr '\n' ' ' <"$log" | cut -c1-400)"
  fi
}
mutant() { # NAME MUTATION...: a copy of the package with one thing wrong
  "${nupkg[@]}" mutate "$package" "$work/mutants/$1.nupkg" "${@:2}"
  echo "$work/mutants/$1.nupkg"
}
check_standin=(--version "$version" --native standin --standin "$library")
expect_failure "a package without runtimes/win-arm64/native/callpush.dll" \
  "runtimes/win-arm64/native/callpush.dll is missing" \
  "${nupkg[@]}" check "$(mutant no-arm64 --drop runtimes/win-arm64/native/callpush.dll)" "${check_standin[@]}"
expect_failure "a nuspec saying version 0.0.0-wrong" "must be version '$version'" \
  "${nupkg[@]}" check "$(mutant wrong-version --set 0.0.0-wrong)" "${check_standin[@]}"
expect_failure "a stray lib/netstandard2.0/Callpush.pdb" "stray files: lib/netstandard2.0/Callpush.pdb" \
  "${nupkg[@]}" check "$(mutant stray --add lib/netstandard2.0/Callpush.pdb)" "${check_standin[@]}"
expect_failure "a nuspec with the license MIT" "license ('expression', 'MIT')" \
  "${nupkg[@]}" check "$(mutant mit --license MIT)" "${check_standin[@]}"
expect_failure "the host library checked as a Windows DLL (a package built on Windows)" \
  "runtimes/win-x64/native/callpush.dll: not a Windows DLL" \
  "${nupkg[@]}" check "$package" --version "$version" --native pe
expect_failure "Callpush.dll checked as version 9.9.9" "assembly version $(assembly_version "$version"), not 9.9.9.0" \
  mono "$work/AssemblyCheck.exe" "$work/extracted/lib/netstandard2.0/Callpush.dll" Callpush 9.9.9.0 9.9.9

summary
