#!/usr/bin/env bash
# Assembles the AAR dev.callpush:callpush-android from what the Maven build compiled, as a Maven
# repository that Gradle (and Maven) consume:
#
#   build-aar.sh (--jni-dir DIR | --host-stand-in) [--out DIR] [--no-build]
#
#   --jni-dir DIR     libcallpush.so per ABI in cargo-ndk's layout, DIR/<abi>/libcallpush.so, for
#                     arm64-v8a, armeabi-v7a and x86_64; from the repository root:
#                       cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 26 -o DIR \
#                           build --profile mobile -p callpush-ffi
#   --host-stand-in   the host library the Maven build loaded (callpush/target/native) in every
#                     ABI slot: an AAR for checking the package (check-package.sh), never for a
#                     device
#   --out DIR         the Maven repository to write (default: target/packages/android/maven of
#                     the repository)
#   --no-build        take the classes the last Maven build left instead of running
#                     `mvn package -DskipTests` first (check-package.sh, right after a build)
#
# The AAR's classes.jar is callpush/target/classes (the generated API and the idiomatic layer)
# and callpush-android/target/classes (the glue), which `mvn -f bindings-kotlin/pom.xml package
# -DskipTests` compiles (cargo builds the host library the Kotlin is generated from; the uniffi
# checksums do not depend on the cargo profile). Written under OUT/dev/callpush/callpush-android/<V>/
# (V from release/version.sh): the .aar, its .pom, a -sources.jar, each with .md5 and .sha1, and
# the artifact's maven-metadata.xml.
#
# The AAR holds what AGP puts in a library's: AndroidManifest.xml (src/main/AndroidManifest.xml
# with the package and <uses-sdk> that AGP adds, namespace and minSdk read from
# callpush-android/build.gradle.kts), classes.jar, R.txt (empty: no resources), proguard.txt
# (consumer-rules.pro), jni/<abi>/libcallpush.so, and META-INF/com/android/build/gradle/
# aar-metadata.properties. Every zip entry gets the same timestamp and mode and entries are
# sorted, so the same inputs give the same bytes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
abis=(arm64-v8a armeabi-v7a x86_64)

die() { echo "build-aar.sh: $*" >&2; exit 1; }

jni_dir=""
stand_in=false
build=true
out="$root/target/packages/android/maven"
while (($#)); do
  case "$1" in
    --jni-dir) jni_dir="${2:?--jni-dir needs a directory}"; shift 2 ;;
    --host-stand-in) stand_in=true; shift ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-build) build=false; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
if [[ -n "$jni_dir" && "$stand_in" == true ]] || [[ -z "$jni_dir" && "$stand_in" == false ]]; then
  die "give exactly one of --jni-dir DIR and --host-stand-in"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# --- Inputs ---------------------------------------------------------------------------------

if [[ "$build" == true ]]; then
  echo "build-aar.sh: mvn package -DskipTests" >&2
  mvn -B -ntp -q -f "$here/pom.xml" package -DskipTests >&2 || die "the Maven build failed"
fi

version="$("$root/release/version.sh")"
group=dev.callpush
artifact=callpush-android

gradle_file="$here/callpush-android/build.gradle.kts"
namespace="$(sed -n 's/^ *namespace *= *"\([^"]*\)".*/\1/p' "$gradle_file")"
min_sdk="$(sed -n 's/^ *minSdk *= *\([0-9][0-9]*\).*/\1/p' "$gradle_file")"
[[ -n "$namespace" && -n "$min_sdk" ]] || die "no namespace or minSdk in $gradle_file"

pom_property() {
  local value
  value="$(sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$here/pom.xml" | head -n 1)"
  [[ -n "$value" ]] || die "no <$1> in $here/pom.xml"
  echo "$value"
}
kotlin_version="$(pom_property kotlin.version)"
coroutines_version="$(pom_property coroutines.version)"
jna_version="$(pom_property jna.version)"

api_classes="$here/callpush/target/classes"
glue_classes="$here/callpush-android/target/classes"
generated="$here/callpush/target/generated-sources/uniffi"
for dir in "$api_classes/dev/callpush" "$glue_classes/dev/callpush/android" "$generated"; do
  [[ -d "$dir" ]] || die "$dir is missing: run mvn -f bindings-kotlin/pom.xml package -DskipTests (or drop --no-build)"
done

# libcallpush.so for each ABI; a device build must be for that ABI (ELF e_machine).
declare -A machine=([arm64-v8a]=183 [armeabi-v7a]=40 [x86_64]=62)
declare -A libs=()
for abi in "${abis[@]}"; do
  if [[ "$stand_in" == true ]]; then
    libs[$abi]="$here/callpush/target/native/libcallpush.so"
    [[ -f "${libs[$abi]}" ]] || die "${libs[$abi]} is missing: run the Maven build first"
  else
    libs[$abi]="$jni_dir/$abi/libcallpush.so"
    [[ -f "${libs[$abi]}" ]] || die "${libs[$abi]} is missing (cargo ndk -t $abi ... -o $jni_dir)"
    [[ "$(head -c 4 "${libs[$abi]}" | od -An -c | tr -d ' ')" == '177ELF' ]] || die "${libs[$abi]} is not an ELF library"
    got="$(od -An -t u2 -j 18 -N 2 "${libs[$abi]}" | tr -d ' ')"
    [[ "$got" == "${machine[$abi]}" ]] || die "${libs[$abi]} is built for ELF machine $got, not $abi (${machine[$abi]})"
  fi
done

# --- Staging --------------------------------------------------------------------------------

work="$here/target/aar"
rm -rf "$work"
mkdir -p "$work/aar" "$work/classes" "$work/sources"
umask 022

# Zips DIR's files into ZIP, sorted, with one fixed timestamp (AGP's own, 1981-01-01 01:01:02 UTC)
# and mode, and no extra fields: the same files give the same bytes.
deterministic_zip() {
  local dir="$1" zip_file="$2"
  rm -f "$zip_file"
  find "$dir" -type d -exec chmod 755 {} + -o -type f -exec chmod 644 {} +
  find "$dir" -exec env TZ=UTC touch -h -t 198101010101.02 {} +
  (cd "$dir" && find . -type f | sed 's:^\./::' | LC_ALL=C sort | TZ=UTC zip -q -X -D -@ "$zip_file")
}

# Copies the files of each SOURCE dir into DEST; a file two of them hold (or two names that a
# case-insensitive file system takes for one) is an error, never an overwrite.
merge_into() {
  local dest="$1" src file relative
  shift
  for src in "$@"; do
    while IFS= read -r -d '' file; do
      relative="${file#"$src"/}"
      [[ ! -e "$dest/$relative" ]] || die "$relative is in more than one of: $*"
      mkdir -p "$dest/$(dirname "$relative")"
      cp "$file" "$dest/$relative"
    done < <(find "$src" -type f -print0)
  done
}

# classes.jar: the generated API, the idiomatic layer and the glue, with their .kotlin_module
# files (the index of top-level functions).
merge_into "$work/classes" "$api_classes" "$glue_classes"
deterministic_zip "$work/classes" "$work/aar/classes.jar"

# The manifest with what AGP adds to a library's: its package (the namespace) and <uses-sdk>;
# without the leading comment, which is about the source file.
manifest="$here/callpush-android/src/main/AndroidManifest.xml"
grep -q '^<manifest xmlns:android="http://schemas.android.com/apk/res/android">$' "$manifest" \
  || die "$manifest: expected the line <manifest xmlns:android=\"http://schemas.android.com/apk/res/android\">"
sed "s|^<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\">\$|<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\"\\
    package=\"$namespace\">\\
\\
    <uses-sdk android:minSdkVersion=\"$min_sdk\" />|; 1,/^-->\$/{/^<!--\$/,/^-->\$/d}" "$manifest" > "$work/aar/AndroidManifest.xml"

cp "$here/callpush-android/consumer-rules.pro" "$work/aar/proguard.txt"
: > "$work/aar/R.txt"
mkdir -p "$work/aar/META-INF/com/android/build/gradle"
cat > "$work/aar/META-INF/com/android/build/gradle/aar-metadata.properties" <<EOF
aarFormatVersion=1.0
aarMetadataVersion=1.0
minCompileSdk=1
minCompileSdkExtension=0
minAndroidGradlePluginVersion=1.0.0
EOF
for abi in "${abis[@]}"; do
  mkdir -p "$work/aar/jni/$abi"
  cp "${libs[$abi]}" "$work/aar/jni/$abi/libcallpush.so"
done

# --- The Maven repository -------------------------------------------------------------------

dest="$out/${group//.//}/$artifact/$version"
rm -rf "$dest"
mkdir -p "$dest"
base="$dest/$artifact-$version"

deterministic_zip "$work/aar" "$base.aar"

merge_into "$work/sources" "$generated" "$here/callpush/src/main/kotlin" "$here/callpush-android/src/main/kotlin"
deterministic_zip "$work/sources" "$base-sources.jar"

# Dependencies as a Gradle build of the module publishes them: what the public API exposes is
# `compile` (Gradle's api). JNA is its Android AAR: its classes and libjnidispatch.so for every
# ABI; Gradle then never adds JNA's plain jar, whose classes would clash with the AAR's.
cat > "$base.pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>$group</groupId>
  <artifactId>$artifact</artifactId>
  <version>$version</version>
  <packaging>aar</packaging>
  <name>callpush for Android</name>
  <description>Incoming-call pushes for Android: the callpush core through uniffi and JNA, CallPush with its events as a Flow, a self-managed Telecom ConnectionService that rings calls, the FCM hand-off and call notifications.</description>
  <url>https://github.com/callpush/callpush</url>
  <licenses>
    <license>
      <name>Apache-2.0</name>
      <url>https://www.apache.org/licenses/LICENSE-2.0.txt</url>
      <distribution>repo</distribution>
    </license>
  </licenses>
  <developers>
    <developer>
      <name>The callpush authors</name>
      <url>https://github.com/callpush/callpush</url>
    </developer>
  </developers>
  <scm>
    <connection>scm:git:https://github.com/callpush/callpush.git</connection>
    <developerConnection>scm:git:ssh://git@github.com/callpush/callpush.git</developerConnection>
    <url>https://github.com/callpush/callpush</url>
  </scm>
  <dependencies>
    <dependency>
      <groupId>org.jetbrains.kotlin</groupId>
      <artifactId>kotlin-stdlib</artifactId>
      <version>$kotlin_version</version>
      <scope>compile</scope>
    </dependency>
    <dependency>
      <groupId>org.jetbrains.kotlinx</groupId>
      <artifactId>kotlinx-coroutines-core-jvm</artifactId>
      <version>$coroutines_version</version>
      <scope>compile</scope>
    </dependency>
    <dependency>
      <groupId>net.java.dev.jna</groupId>
      <artifactId>jna</artifactId>
      <version>$jna_version</version>
      <type>aar</type>
      <scope>compile</scope>
    </dependency>
  </dependencies>
</project>
EOF

cat > "$out/${group//.//}/$artifact/maven-metadata.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>$group</groupId>
  <artifactId>$artifact</artifactId>
  <versioning>
    <latest>$version</latest>
    <release>$version</release>
    <versions>
      <version>$version</version>
    </versions>
  </versioning>
</metadata>
EOF

for file in "$base.aar" "$base.pom" "$base-sources.jar" "$out/${group//.//}/$artifact/maven-metadata.xml"; do
  md5sum "$file" | cut -d' ' -f1 | tr -d '\n' > "$file.md5"
  sha1sum "$file" | cut -d' ' -f1 | tr -d '\n' > "$file.sha1"
done

echo "build-aar.sh: $base.aar ($(du -k "$base.aar" | cut -f1) KiB, sha1 $(cat "$base.aar.sha1"))"
if [[ "$stand_in" == true ]]; then
  echo "build-aar.sh: the host library stands in for every ABI: this AAR is for checks, not for devices" >&2
fi
