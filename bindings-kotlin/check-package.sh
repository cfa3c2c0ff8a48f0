#!/usr/bin/env bash
# Checks the Android package, the AAR dev.callpush:callpush-android, as an app's build would take
# it; runs where there is no Android SDK, Gradle or device.
#
#   check-package.sh [--no-build | --aar-only]
#
#   1. build     mvn package -DskipTests (skipped with --no-build, right after mvn verify), then
#                build-aar.sh --host-stand-in: the host library in every ABI slot. --aar-only
#                builds nothing and checks the AAR build-aar.sh --jni-dir left in
#                target/packages/android/maven as a device build: each jni/<abi>/libcallpush.so
#                must be for its ABI's machine (the release workflow, after build-aar.sh)
#   2. aar       the AAR's entries; classes.jar holds the generated API (every top-level class of
#                the generated Kotlin), the idiomatic layer and the glue (a class for each source
#                file), and neither JNA nor Kotlin; AndroidManifest.xml, parsed: its package and
#                minSdk (those of callpush-android/build.gradle.kts), the ConnectionService with
#                its permission and intent filter, the permissions the glue needs and no other;
#                proguard.txt: the module's consumer rules, with the keep rules for JNA and for the
#                FFI classes of the generated package (read from the generated Kotlin)
#   3. pom       packaging aar, the dependencies with their versions (those of pom.xml), scopes
#                and JNA as its aar; license, scm; the checksums of every file
#   4. consumer  a throwaway Maven project depending on dev.callpush:callpush-android:<V> (type
#                aar) from the file repository resolves it, and JNA's aar from Maven Central
#                (which must carry libjnidispatch.so for the three ABIs), into a local repository
#                of its own under target/
#   5. r8 rules  ProGuard shrinks, optimizes and obfuscates the AAR's classes.jar and JNA with
#                the AAR's proguard.txt, keeping only a small program's main
#                (callpush/src/test/kotlin/dev/callpush/smoke/ShrinkSmoke.kt); the program then
#                inspects a shared vector, creates a client, rings a call through it and awaits
#                the Kotlin callbacks from Rust, all through JNA on the shrunk jar
#   6. gradle    callpush-android/build.gradle.kts agrees with the package: namespace, minSdk,
#                consumer rules, dependency versions, the Kotlin plugin's version
#   7. repro     a second build-aar.sh gives the same bytes (not with --aar-only)
#   8. self-test a copy of the AAR without jni/x86_64/libcallpush.so, one whose manifest lacks
#                the service, and rules without the keep rule for JNA's subclasses each fail,
#                with a message that says what is wrong
#
# Prints `ok ...` per check and a summary; exits 1 if any check failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build=true
assemble=true
case "${1:-}" in
  --no-build) build=false ;;
  --aar-only) build=false; assemble=false ;;
  "") ;;
  *) echo "usage: check-package.sh [--no-build | --aar-only]" >&2; exit 2 ;;
esac

scratch="$here/target/package-check"
mkdir -p "$scratch"
started=$SECONDS
passed=0
failures=()

ok() { echo "ok $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failures+=("$*"); }
# Runs a checker that prints `ok ...`/`FAIL ...` lines, and counts them.
counted() {
  local line status=0 before=${#failures[@]}
  while IFS= read -r line; do
    case "$line" in
      "ok "*) ok "${line#ok }" ;;
      "FAIL "*) fail "${line#FAIL }" ;;
      "exit status "*) status="${line#exit status }" ;;
      *) echo "$line" ;;
    esac
  done < <("$@" 2>&1; echo "exit status $?")
  if [[ "$status" != 0 && ${#failures[@]} == "$before" ]]; then
    fail "the checker itself failed (exit $status; output above)"
  fi
}
stage() { printf '\n== %s\n' "$*"; }

version="$("$root/release/version.sh")"
# The device AAR (--aar-only) where build-aar.sh --jni-dir writes it; a stand-in apart from it,
# so it is never taken for a release's.
if [[ "$assemble" == false ]]; then
  repo="$root/target/packages/android/maven"
else
  repo="$root/target/packages/stand-in/android/maven"
fi
dir="$repo/dev/callpush/callpush-android/$version"
aar="$dir/callpush-android-$version.aar"
pom="$dir/callpush-android-$version.pom"
generated="$here/callpush/target/generated-sources/uniffi/dev/callpush/callpush.kt"
gradle_file="$here/callpush-android/build.gradle.kts"

pom_property() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$here/pom.xml" | head -n 1; }
kotlin_version="$(pom_property kotlin.version)"
coroutines_version="$(pom_property coroutines.version)"
jna_version="$(pom_property jna.version)"
android_all_version="$(sed -n 's:.*<android.all.version>\([^<]*\)</android.all.version>.*:\1:p' "$here/callpush-android/pom.xml")"
namespace="$(sed -n 's/^ *namespace *= *"\([^"]*\)".*/\1/p' "$gradle_file")"
min_sdk="$(sed -n 's/^ *minSdk *= *\([0-9][0-9]*\).*/\1/p' "$gradle_file")"

# --- The checker of an AAR and of its POM (Python: zip and XML without guesswork) ------------

read -r -d '' check_aar_py <<'PY' || true
import io, re, sys, zipfile, xml.etree.ElementTree as ET

aar, generated, api_src, glue_src, rules_src, namespace, min_sdk, device = sys.argv[1:9]
# ELF e_machine of each ABI's library, checked for a device build (not the host stand-in).
MACHINES = {"arm64-v8a": 183, "armeabi-v7a": 40, "x86_64": 62}
ABIS = ["arm64-v8a", "armeabi-v7a", "x86_64"]
A = "{http://schemas.android.com/apk/res/android}"
SERVICE = "dev.callpush.android.CallPushConnectionService"
# What the glue uses: Telecom self-managed calls, the registrar over HTTP, notifications, the
# full-screen ringing notification, the ringer's vibration. Nothing more.
PERMISSIONS = {
    "android.permission.MANAGE_OWN_CALLS",
    "android.permission.INTERNET",
    "android.permission.POST_NOTIFICATIONS",
    "android.permission.USE_FULL_SCREEN_INTENT",
    "android.permission.VIBRATE",
}
failed = 0

def ok(msg):
    print("ok " + msg)

def fail(msg):
    global failed
    failed += 1
    print("FAIL " + msg)

def expect(cond, good, bad):
    ok(good) if cond else fail(bad)

z = zipfile.ZipFile(aar)
names = set(z.namelist())
libs = ["jni/%s/libcallpush.so" % abi for abi in ABIS]
required = ["AndroidManifest.xml", "classes.jar", "R.txt", "proguard.txt"] + libs
allowed = set(required) | {"META-INF/com/android/build/gradle/aar-metadata.properties"}
missing = [n for n in required if n not in names]
expect(not missing, "AAR entries: " + ", ".join(required),
       "the AAR lacks " + ", ".join(missing))
extra = sorted(names - allowed)
expect(not extra, "nothing else in the AAR", "unexpected AAR entries: " + ", ".join(extra))
for lib in libs:
    if lib in names:
        head = z.read(lib)[:20]
        expect(head[:4] == b"\x7fELF" and head[16] == 3, lib + " is an ELF shared library",
               lib + " is not an ELF shared library")
        if device == "device" and head[:4] == b"\x7fELF":
            abi = lib.split("/")[1]
            machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
            expect(machine == MACHINES[abi], "%s is built for %s (ELF machine %d)" % (lib, abi, machine),
                   "%s is built for ELF machine %d, not %s (%d)" % (lib, machine, abi, MACHINES[abi]))
if "META-INF/com/android/build/gradle/aar-metadata.properties" in names:
    meta = z.read("META-INF/com/android/build/gradle/aar-metadata.properties").decode()
    expect("aarFormatVersion=1.0" in meta, "aar-metadata.properties: aarFormatVersion 1.0",
           "aar-metadata.properties has no aarFormatVersion=1.0")

# classes.jar: the three layers, and nothing that comes from a dependency.
text = open(generated, encoding="utf-8").read()
package = re.search(r"^package\s+([\w.]+)", text, re.M).group(1)
pkg_path = package.replace(".", "/")
ffi_objects = re.findall(r"Native\.register\((\w+)::class\.java", text)
if "classes.jar" in names:
    jar = set(zipfile.ZipFile(io.BytesIO(z.read("classes.jar"))).namelist())
    decl = re.compile(r"^(?:(?:public|internal|private|open|data|sealed|enum|abstract|fun|value)\s+)*"
                      r"(?:class|object|interface)\s+`?(\w+)", re.M)
    top_level = sorted(set(decl.findall(text)))
    absent = [c for c in top_level if "%s/%s.class" % (pkg_path, c) not in jar]
    expect(top_level and not absent,
           "classes.jar: the generated API, %d top-level classes of package %s (%s among them)"
           % (len(top_level), package, ", ".join(ffi_objects)),
           "classes.jar lacks generated classes of %s: %s" % (package, ", ".join(absent[:8]) or "none found"))
    for label, src in (("the idiomatic layer", api_src), ("the glue", glue_src)):
        import os
        files = []
        for dirpath, _, filenames in os.walk(src):
            files += [os.path.join(dirpath, f) for f in filenames if f.endswith(".kt")]
        lacking = []
        for f in sorted(files):
            body = open(f, encoding="utf-8").read()
            path = re.search(r"^package\s+([\w.]+)", body, re.M).group(1).replace(".", "/")
            stem = os.path.basename(f)[:-3]
            if "%s/%s.class" % (path, stem) not in jar and "%s/%sKt.class" % (path, stem) not in jar:
                lacking.append(os.path.relpath(f, src))
        expect(files and not lacking,
               "classes.jar: %s, a class for each of %s" % (label, ", ".join(os.path.basename(f) for f in sorted(files))),
               "classes.jar lacks %s: no class for %s" % (label, ", ".join(lacking) or "any source"))
    modules = sorted(n for n in jar if n.endswith(".kotlin_module"))
    expect(modules == ["META-INF/callpush-android.kotlin_module", "META-INF/callpush.kotlin_module"],
           "classes.jar: both modules' .kotlin_module files", "classes.jar's .kotlin_module files: %s" % modules)
    bundled = sorted({n.split("/")[0] + "/" + n.split("/")[1] for n in jar
                      if n.startswith(("com/sun/jna/", "kotlin/", "kotlinx/"))})
    expect(not bundled, "classes.jar bundles no dependency (JNA, Kotlin, coroutines)",
           "classes.jar bundles dependency classes: " + ", ".join(bundled))
    expect(SERVICE.replace(".", "/") + ".class" in jar, "classes.jar holds the manifest's service class",
           "classes.jar lacks " + SERVICE)

# The manifest.
if "AndroidManifest.xml" in names:
    try:
        manifest = ET.fromstring(z.read("AndroidManifest.xml"))
    except ET.ParseError as e:
        manifest = None
        fail("AndroidManifest.xml is not well-formed XML: %s" % e)
    if manifest is not None:
        expect(manifest.tag == "manifest" and manifest.get("package") == namespace,
               "AndroidManifest.xml: package %s (the namespace)" % namespace,
               "AndroidManifest.xml: package %r, not the namespace %s" % (manifest.get("package"), namespace))
        sdk = manifest.find("uses-sdk")
        got = sdk.get(A + "minSdkVersion") if sdk is not None else None
        expect(got == min_sdk, "AndroidManifest.xml: minSdkVersion %s" % min_sdk,
               "AndroidManifest.xml: minSdkVersion %r, not %s (build.gradle.kts)" % (got, min_sdk))
        perms = {p.get(A + "name") for p in manifest.findall("uses-permission")}
        expect(perms == PERMISSIONS, "AndroidManifest.xml: uses-permission " + ", ".join(sorted(p.split(".")[-1] for p in perms)),
               "AndroidManifest.xml permissions: missing %s, unexpected %s"
               % (sorted(PERMISSIONS - perms) or "none", sorted(perms - PERMISSIONS) or "none"))
        services = [s for s in manifest.findall("application/service") if s.get(A + "name") == SERVICE]
        if not services:
            fail("AndroidManifest.xml declares no <service android:name=\"%s\"> in <application>" % SERVICE)
        else:
            s = services[0]
            expect(s.get(A + "exported") == "true"
                   and s.get(A + "permission") == "android.permission.BIND_TELECOM_CONNECTION_SERVICE",
                   "AndroidManifest.xml: %s, exported, permission BIND_TELECOM_CONNECTION_SERVICE" % SERVICE.split(".")[-1],
                   "AndroidManifest.xml: the service must be exported=\"true\" with permission BIND_TELECOM_CONNECTION_SERVICE")
            actions = [a.get(A + "name") for a in s.findall("intent-filter/action")]
            expect("android.telecom.ConnectionService" in actions,
                   "AndroidManifest.xml: the service's intent-filter android.telecom.ConnectionService",
                   "AndroidManifest.xml: the service has no intent-filter action android.telecom.ConnectionService")

# The consumer rules.
if "proguard.txt" in names:
    rules = z.read("proguard.txt").decode()
    expect(rules == open(rules_src, encoding="utf-8").read(), "proguard.txt is callpush-android/consumer-rules.pro",
           "proguard.txt differs from callpush-android/consumer-rules.pro")
    lines = {" ".join(l.split()) for l in rules.splitlines() if l.strip() and not l.lstrip().startswith("#")}
    wanted = ["-keep class com.sun.jna.** { *; }",
              "-keep class * extends com.sun.jna.** { *; }",
              "-keep class * implements com.sun.jna.** { *; }",
              "-keepclasseswithmembers class %s.** { native <methods>; }" % package]
    wanted += ["-keep class %s.%s { *; }" % (package, o) for o in ffi_objects]
    absent = [w for w in wanted if w not in lines]
    keepattributes = [l for l in lines if l.startswith("-keepattributes")]
    if not any("RuntimeVisibleAnnotations" in l for l in keepattributes):
        absent.append("-keepattributes RuntimeVisibleAnnotations")
    expect(not absent, "proguard.txt keeps JNA, its subclasses, %s's FFI classes (%s) and annotations"
           % (package, ", ".join(ffi_objects)), "proguard.txt lacks: " + "; ".join(absent))

sys.exit(1 if failed else 0)
PY

read -r -d '' check_pom_py <<'PY' || true
import hashlib, os, sys, xml.etree.ElementTree as ET

pom, version, kotlin, coroutines, jna = sys.argv[1:6]
M = "{http://maven.apache.org/POM/4.0.0}"
failed = 0

def expect(cond, good, bad):
    global failed
    if cond:
        print("ok " + good)
    else:
        failed += 1
        print("FAIL " + bad)

p = ET.parse(pom).getroot()
def t(path):
    return (p.findtext("/".join(M + part for part in path.split("/"))) or "").strip()
coords = (t("groupId"), t("artifactId"), t("version"), t("packaging"))
expect(coords == ("dev.callpush", "callpush-android", version, "aar"),
       "POM: dev.callpush:callpush-android:%s, packaging aar" % version, "POM coordinates/packaging: %s" % (coords,))
expect(all([t("name"), t("description"), t("url"), t("scm/url"), t("scm/connection")]),
       "POM: name, description, url, scm", "POM lacks name, description, url or scm")
expect(t("licenses/license/name") == "Apache-2.0", "POM: license Apache-2.0", "POM license: %r" % t("licenses/license/name"))
deps = {}
for d in p.findall(M + "dependencies/" + M + "dependency"):
    g = lambda k: (d.findtext(M + k) or "").strip()
    deps[(g("groupId"), g("artifactId"))] = (g("version"), g("type") or "jar", g("scope") or "compile")
want = {
    ("org.jetbrains.kotlin", "kotlin-stdlib"): (kotlin, "jar", "compile"),
    ("org.jetbrains.kotlinx", "kotlinx-coroutines-core-jvm"): (coroutines, "jar", "compile"),
    ("net.java.dev.jna", "jna"): (jna, "aar", "compile"),
}
expect(deps == want, "POM dependencies: kotlin-stdlib %s, kotlinx-coroutines-core-jvm %s, jna %s as aar (compile)"
       % (kotlin, coroutines, jna), "POM dependencies: %s, expected %s" % (deps, want))

base = pom[: -len(".pom")]
for f in (base + ".aar", base + ".pom", base + "-sources.jar", os.path.join(os.path.dirname(os.path.dirname(pom)), "maven-metadata.xml")):
    if not os.path.exists(f):
        expect(False, "", "%s is missing" % f)
        continue
    data = open(f, "rb").read()
    good = all(os.path.exists(f + ext) and open(f + ext).read().strip() == h(data).hexdigest()
               for ext, h in ((".md5", hashlib.md5), (".sha1", hashlib.sha1)))
    expect(good, "%s: .md5 and .sha1 match" % os.path.basename(f), "%s: .md5/.sha1 missing or wrong" % f)
sys.exit(1 if failed else 0)
PY

check_aar() {
  python3 -c "$check_aar_py" "$1" "$generated" "$here/callpush/src/main/kotlin" \
    "$here/callpush-android/src/main/kotlin" "$here/callpush-android/consumer-rules.pro" "$namespace" "$min_sdk" \
    "$([[ "$assemble" == true ]] && echo stand-in || echo device)"
}

# --- 1. build -----------------------------------------------------------------------------

stage "build"
if [[ "$build" == true ]]; then
  if mvn -B -ntp -f "$here/pom.xml" package -DskipTests > "$scratch/mvn-package.log" 2>&1; then
    ok "mvn package -DskipTests"
  else
    tail -n 40 "$scratch/mvn-package.log"
    fail "mvn package -DskipTests failed (the end of its log above; all of it in ${scratch#"$root"/}/mvn-package.log)"
    echo "check-package.sh: nothing to check" >&2
    exit 1
  fi
fi
if [[ "$assemble" == false ]]; then
  if [[ -f "$aar" && -f "$pom" ]]; then
    ok "the AAR build-aar.sh --jni-dir left: ${aar#"$root"/}"
  else
    fail "no ${aar#"$root"/} (or its .pom): run build-aar.sh --jni-dir DIR first"
    echo "check-package.sh: nothing to check" >&2
    exit 1
  fi
elif "$here/build-aar.sh" --host-stand-in --no-build --out "$repo" > "$scratch/build-aar.log" 2>&1; then
  ok "build-aar.sh --host-stand-in: ${aar#"$root"/}"
else
  cat "$scratch/build-aar.log"
  fail "build-aar.sh --host-stand-in failed"
  echo "check-package.sh: nothing to check" >&2
  exit 1
fi

# --- 2. aar, 3. pom -----------------------------------------------------------------------

stage "aar"
counted check_aar "$aar"
stage "pom"
counted python3 -c "$check_pom_py" "$pom" "$version" "$kotlin_version" "$coroutines_version" "$jna_version"

# --- 4. consumer --------------------------------------------------------------------------

stage "consumer (Maven resolves the AAR from the file repository, JNA's aar from Maven Central)"
consumer="$scratch/consumer"
consumer_m2="$scratch/m2"
rm -rf "$consumer" "$consumer_m2/dev/callpush"
mkdir -p "$consumer"
cat > "$consumer/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>check</groupId>
  <artifactId>callpush-consumer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <repository>
      <id>callpush-local</id>
      <url>file://$repo</url>
    </repository>
  </repositories>
  <dependencies>
    <dependency>
      <groupId>dev.callpush</groupId>
      <artifactId>callpush-android</artifactId>
      <version>$version</version>
      <type>aar</type>
    </dependency>
  </dependencies>
</project>
EOF
# A local repository of its own: ~/.m2 would keep serving an AAR resolved by an earlier run.
if (cd "$consumer" && mvn -B -ntp -q -Dmaven.repo.local="$consumer_m2" dependency:tree -DoutputFile=tree.txt \
      && mvn -B -ntp -q -o -Dmaven.repo.local="$consumer_m2" dependency:list -DoutputFile=list.txt \
           -DoutputAbsoluteArtifactFilename=true) > "$consumer/mvn.log" 2>&1; then
  ok "mvn dependency:tree/list resolved dev.callpush:callpush-android:$version:aar"
  sed 's/^/    /' "$consumer/tree.txt"
  list="$consumer/list.txt"
  for want in "dev.callpush:callpush-android:aar:$version:compile" \
              "net.java.dev.jna:jna:aar:$jna_version:compile" \
              "org.jetbrains.kotlin:kotlin-stdlib:jar:$kotlin_version:compile" \
              "org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm:jar:$coroutines_version:compile"; do
    if grep -q " $want" "$list"; then ok "resolved $want"; else fail "not resolved: $want"; fi
  done
  if grep -q "net.java.dev.jna:jna:jar" "$list"; then
    fail "JNA's plain jar is on the consumer's classpath next to its aar"
  else
    ok "no JNA jar next to JNA's aar"
  fi
  jna_aar="$(sed -n "s/.*net.java.dev.jna:jna:aar:$jna_version:compile:\(\/.*\.aar\).*/\1/p" "$list" | head -n 1)"
  if [[ -f "$jna_aar" ]] && missing_jnidispatch="$(for abi in arm64-v8a armeabi-v7a x86_64; do
        unzip -l "$jna_aar" "jni/$abi/libjnidispatch.so" > /dev/null 2>&1 || echo "$abi"; done)" && [[ -z "$missing_jnidispatch" ]]; then
    ok "JNA's aar (from Maven Central) carries jni/<abi>/libjnidispatch.so for arm64-v8a, armeabi-v7a, x86_64"
  else
    fail "JNA's aar ${jna_aar:-(not found)} lacks libjnidispatch.so for: ${missing_jnidispatch:-?}"
  fi
else
  cat "$consumer/mvn.log"
  fail "Maven could not resolve dev.callpush:callpush-android:$version:aar from $repo (log above)"
fi

# --- 5. r8 rules: ProGuard with the AAR's proguard.txt, then the smoke program ------------------

stage "consumer rules (ProGuard shrinks and obfuscates; the program runs through JNA)"
proof="$scratch/proguard"
rm -rf "$proof/in" "$proof"/*.jar "$proof"/*.pro
mkdir -p "$proof/in" "$proof/tool" "$proof/libs"
cat > "$proof/tool/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>check</groupId><artifactId>proguard</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>com.guardsquare</groupId><artifactId>proguard-base</artifactId><version>7.10.0</version></dependency>
  </dependencies>
</project>
EOF
# What an app's R8 sees next to the AAR: JNA (to be shrunk with it), and as libraries the Kotlin
# runtime, coroutines and the Android framework.
cat > "$proof/libs/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>check</groupId><artifactId>proguard-libs</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>net.java.dev.jna</groupId><artifactId>jna</artifactId><version>$jna_version</version></dependency>
    <dependency><groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-stdlib</artifactId><version>$kotlin_version</version></dependency>
    <dependency><groupId>org.jetbrains.kotlinx</groupId><artifactId>kotlinx-coroutines-core-jvm</artifactId><version>$coroutines_version</version></dependency>
    <dependency><groupId>org.robolectric</groupId><artifactId>android-all</artifactId><version>$android_all_version</version></dependency>
  </dependencies>
</project>
EOF
proof_ready=true
for part in tool libs; do
  if ! (cd "$proof/$part" && mvn -B -ntp -q dependency:build-classpath -Dmdep.outputFile=classpath.txt) > "$proof/$part/mvn.log" 2>&1; then
    cat "$proof/$part/mvn.log"
    fail "could not resolve the ProGuard $part"
    proof_ready=false
  fi
done
# The JDK's own classes, as ProGuard reads them (a JRE has no jmods).
jmods="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.home = //p')/jmods"
if [[ ! -f "$jmods/java.base.jmod" ]]; then
  fail "no $jmods/java.base.jmod: ProGuard needs a JDK with jmods"
  proof_ready=false
fi
for needed in "$here/callpush/target/test-classes/dev/callpush/smoke" "$here/callpush/target/native/libcallpush.so"; do
  if [[ ! -e "$needed" ]]; then
    fail "${needed#"$root"/} is missing: run mvn -f bindings-kotlin/pom.xml package -DskipTests (or verify)"
    proof_ready=false
  fi
done

# shrink RULES OUT: ProGuard with RULES as the AAR's proguard.txt; writes OUT (a jar).
shrink() {
  local rules="$1" out="$2" libraries=() entries=() entry
  IFS=: read -r -a entries < "$proof/libs/classpath.txt" || true
  for entry in "${entries[@]}"; do
    case "$entry" in
      */jna-*.jar) jna_jar="$entry" ;;
      */android-all-*.jar) libraries+=("-libraryjars" "$entry(android/**)") ;;
      *) libraries+=("-libraryjars" "$entry") ;;
    esac
  done
  java -cp "$(cat "$proof/tool/classpath.txt")" proguard.ProGuard \
    -injars "$proof/in/classes.jar" -injars "$jna_jar" \
    -injars "$here/callpush/target/test-classes(dev/callpush/smoke/**)" \
    -outjars "$out" \
    -libraryjars "$jmods/java.base.jmod(!**.jar;!module-info.class)" \
    -libraryjars "$jmods/java.logging.jmod(!**.jar;!module-info.class)" \
    -libraryjars "$jmods/java.desktop.jmod(!**.jar;!module-info.class)" \
    "${libraries[@]}" \
    -include "$rules" \
    -keep 'class dev.callpush.smoke.ShrinkSmokeKt { public static void main(java.lang.String[]); }' \
    -dontnote '**'
}

# smoke JAR: the program on the shrunk JAR, with the Kotlin runtime and coroutines, on a shared
# vector (tests/vectors/fcm-ring-audio.json).
smoke() {
  local runtime args=()
  runtime="$(tr ':' '\n' < "$proof/libs/classpath.txt" \
    | grep -E '/(kotlin-stdlib|kotlinx-coroutines-core-jvm|annotations)-[^/]*\.jar$' | paste -sd: -)"
  mapfile -d '' args < <(python3 - "$root/tests/vectors/fcm-ring-audio.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
fields = [v["platform"], v["raw"], json.dumps(v["keys"]), str(v["now"]),
          v["expected"]["outcome"], v["expected"]["call"]["call_id"]]
sys.stdout.write("".join(f + "\0" for f in fields))
PY
  )
  java -Djna.library.path="$here/callpush/target/native" -cp "$1:$runtime" dev.callpush.smoke.ShrinkSmokeKt "${args[@]}"
}

if [[ "$proof_ready" == true ]]; then
  unzip -q -o "$aar" classes.jar proguard.txt -d "$proof/in"
  if shrink "$proof/in/proguard.txt" "$proof/shrunk.jar" > "$proof/proguard.log" 2>&1; then
    kept="$(unzip -l "$proof/shrunk.jar" | grep -c 'dev/callpush/.*\.class$' || true)"
    total="$(unzip -l "$proof/in/classes.jar" | grep -c 'dev/callpush/.*\.class$' || true)"
    renamed="$(unzip -l "$proof/shrunk.jar" | grep -cE 'dev/callpush/[a-z]{1,2}(\$[a-z]{1,2})*\.class$' || true)"
    ok "ProGuard with the AAR's proguard.txt: $kept of $total callpush classes left, $renamed of them renamed"
    if smoke "$proof/shrunk.jar" > "$proof/smoke.log" 2>&1; then
      sed -n 's/^smoke: ok /  /p' "$proof/smoke.log"
      ok "the shrunk, obfuscated jar inspects a vector, rings a call and awaits Kotlin callbacks through JNA"
    else
      cat "$proof/smoke.log"
      fail "the program failed on the jar ProGuard shrank with the AAR's proguard.txt: the rules miss what JNA needs (log above)"
    fi
  else
    cat "$proof/proguard.log"
    fail "ProGuard failed with the AAR's proguard.txt (log above)"
  fi
fi

# --- 6. gradle: the module agrees with the package ---------------------------------------

stage "gradle module (callpush-android/build.gradle.kts; Gradle does not run here)"
gradle_root="$here/build.gradle.kts"
# check CONDITION-COMMAND... : ok GOOD or fail BAD.
check() {
  local good="$1" bad="$2"
  shift 2
  if "$@"; then ok "$good"; else fail "$bad"; fi
}
plugin_kotlin="$(sed -n 's/.*id("org.jetbrains.kotlin.android") version "\([^"]*\)".*/\1/p' "$gradle_root")"
check "Kotlin plugin $plugin_kotlin is pom.xml's kotlin.version" \
  "build.gradle.kts applies Kotlin plugin ${plugin_kotlin:-?}, pom.xml has kotlin.version $kotlin_version" \
  test "$plugin_kotlin" == "$kotlin_version"
check "namespace $namespace, minSdk $min_sdk (what build-aar.sh writes into the AAR's manifest)" \
  "build.gradle.kts: namespace '$namespace', minSdk '$min_sdk'" \
  test "$namespace" == "dev.callpush.android" -a -n "$min_sdk"
# shellcheck disable=SC2016 # Kotlin, not shell
for needle in 'consumerProguardFiles("consumer-rules.pro")' 'pomProperty("coroutines.version")' \
              'net.java.dev.jna:jna:${pomProperty("jna.version")}@aar' 'jniLibs.srcDir(jniDir)' \
              'bindings.resolve("callpush/src/main/kotlin")' 'bindings.resolve("generate.sh")'; do
  check "build.gradle.kts: $needle" "build.gradle.kts lacks $needle" grep -qF "$needle" "$gradle_file"
done
check "settings.gradle.kts includes :callpush-android" "settings.gradle.kts does not include :callpush-android" \
  grep -q '^include(":callpush-android")$' "$here/settings.gradle.kts"
check "src/main/AndroidManifest.xml leaves package and minSdk to build.gradle.kts, as AGP requires" \
  "src/main/AndroidManifest.xml declares a package or <uses-sdk>, which AGP refuses in a module's manifest" \
  python3 -c 'import sys, xml.etree.ElementTree as ET
m = ET.parse(sys.argv[1]).getroot()
sys.exit(0 if m.get("package") is None and m.find("uses-sdk") is None else 1)' "$here/callpush-android/src/main/AndroidManifest.xml"

# --- 7. repro -----------------------------------------------------------------------------

stage "reproducible"
if [[ "$assemble" == false ]]; then
  echo "(skipped with --aar-only)"
elif "$here/build-aar.sh" --host-stand-in --no-build --out "$scratch/repro" > "$scratch/repro.log" 2>&1; then
  again="$scratch/repro/dev/callpush/callpush-android/$version/callpush-android-$version"
  same=true
  for ext in .aar -sources.jar .pom; do
    cmp -s "${aar%.aar}$ext" "$again$ext" || { same=false; fail "a second build-aar.sh gave a different callpush-android-$version$ext"; }
  done
  [[ "$same" == true ]] && ok "a second build-aar.sh gives the same .aar, -sources.jar and .pom, byte for byte"
else
  cat "$scratch/repro.log"
  fail "the second build-aar.sh failed"
fi

# --- 8. self-test: what the checks must catch -------------------------------------------------

stage "self-test (broken packages must fail)"
mutants="$scratch/mutants"
rm -rf "$mutants"
mkdir -p "$mutants"
# mutate AAR OUT MODE: a copy without jni/x86_64/libcallpush.so (no-jni), or whose manifest has no
# service (no-service).
mutate() {
  python3 - "$@" <<'PY'
import re, sys, zipfile
src, out, mode = sys.argv[1:4]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as o:
    for info in z.infolist():
        data = z.read(info)
        if mode == "no-jni" and info.filename == "jni/x86_64/libcallpush.so":
            continue
        if mode == "no-service" and info.filename == "AndroidManifest.xml":
            data = re.sub(rb"<service\b.*?</service>", b"", data, flags=re.S)
        o.writestr(info, data)
PY
}
# expect_failure LABEL MESSAGE COMMAND...: COMMAND must fail and say MESSAGE.
expect_failure() {
  local label="$1" message="$2" output
  shift 2
  if output="$("$@" 2>&1)"; then
    fail "self-test: $label passed the checks"
  elif grep -qF -- "$message" <<<"$output"; then
    ok "self-test: $label fails: $(grep -F -- "$message" <<<"$output" | head -n 1 | sed 's/^FAIL //; s/^smoke: FAILED: //')"
  else
    echo "$output" | tail -n 5
    fail "self-test: $label failed without saying '$message'"
  fi
}
mutate "$aar" "$mutants/no-jni.aar" no-jni
expect_failure "an AAR without jni/x86_64/libcallpush.so" "the AAR lacks jni/x86_64/libcallpush.so" check_aar "$mutants/no-jni.aar"
mutate "$aar" "$mutants/no-service.aar" no-service
expect_failure "an AAR whose manifest lacks the ConnectionService" \
  'AndroidManifest.xml declares no <service android:name="dev.callpush.android.CallPushConnectionService">' \
  check_aar "$mutants/no-service.aar"
if [[ "$proof_ready" == true && -f "$proof/in/proguard.txt" ]]; then
  grep -vE '^-keep class \* (extends|implements) com\.sun\.jna' "$proof/in/proguard.txt" > "$mutants/proguard-no-subclasses.txt"
  shrink_and_smoke() { shrink "$1" "$mutants/shrunk-weak.jar" > "$mutants/proguard.log" 2>&1 && smoke "$mutants/shrunk-weak.jar"; }
  expect_failure "rules without the keep rule for JNA's subclasses (Structure, Callback)" "smoke: FAILED" \
    shrink_and_smoke "$mutants/proguard-no-subclasses.txt"
fi

# --- summary --------------------------------------------------------------------------------

echo
if ((${#failures[@]})); then
  echo "check-package.sh: ${#failures[@]} failed, $passed passed ($((SECONDS - started)) s):"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "check-package.sh: all $passed checks passed ($((SECONDS - started)) s); the AAR: ${aar#"$root"/}"
