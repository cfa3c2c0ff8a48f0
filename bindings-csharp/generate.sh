#!/usr/bin/env bash
# Regenerates the committed C# binding of callpush from the component interface of the built core
# library:
#
#   bindings-csharp/src/Callpush/Generated/Callpush.g.cs   the P/Invoke declarations and the .NET API
#
#   generate.sh [<out dir>]
#
# With an out dir, the file is written there instead (the drift check of tools/bindings.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --quiet --locked -p callpush-ffi -p callpush-bindgen-cs
case "$(uname -s)" in
  Darwin) library="$root/target/debug/libcallpush.dylib" ;;
  *) library="$root/target/debug/libcallpush.so" ;;
esac
out=${1:-$root/bindings-csharp/src/Callpush/Generated}
mkdir -p "$out"
"$root/target/debug/callpush-bindgen-cs" --library "$library" --out-dir "$out"
[ -n "${1:-}" ] || echo "generated the C# binding from $library"
