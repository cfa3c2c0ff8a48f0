"""Checks and sets the one version number of callpush wherever a package or its docs carry it.

The source is `version` under [workspace.package] in the root Cargo.toml (release/version.sh
prints it). Every other place is listed in PLACES below with the pattern that finds it; docs
name the version in the lines that add a package to an app. Run through release/version.sh:

    release/version.sh --check        every place agrees with Cargo.toml, or each one that does not is named
    release/version.sh --set 1.2.0    writes 1.2.0 to Cargo.toml, Cargo.lock and every place

The Swift package's `coreVersion` is not set here: it names a release's xcframework zip together
with that zip's checksum, so bindings-swift/set-release-core.sh writes both (RELEASING.md).
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?"
SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")

# (file, pattern with one group around the version, how many times it must occur, who sets it)
PLACES = [
    ("bindings-ets/callpush/oh-package.json5", r'^  "version": "(' + VERSION + r')",$', 1, "set"),
    ("bindings-csharp/src/Directory.Build.props",
     r"<Version Condition=\"'\$\(Version\)' == ''\">(" + VERSION + r")</Version>", 1, "set"),
    ("bindings-kotlin/pom.xml", r"<artifactId>callpush-parent</artifactId>\s*<version>(" + VERSION + r")</version>", 1, "set"),
    ("bindings-kotlin/callpush/pom.xml",
     r"<artifactId>callpush-parent</artifactId>\s*<version>(" + VERSION + r")</version>", 1, "set"),
    ("bindings-kotlin/callpush-android/pom.xml",
     r"<artifactId>callpush-parent</artifactId>\s*<version>(" + VERSION + r")</version>", 1, "set"),
    ("Package.swift", r'^let coreVersion = "(' + VERSION + r')"$', 1, "bindings-swift/set-release-core.sh"),
]

# The lines of the docs that add a package to an app; every tracked .md file but the changelog,
# and Package.swift's own header.
DOC_PATTERNS = [
    r"dev\.callpush:callpush(?:-android)?:(" + VERSION + r")",
    r'\.package\(url: "https://github\.com/callpush/callpush", from: "(' + VERSION + r')"\)',
    r'"@callpush/callpush": "\^(' + VERSION + r')"',
    r"callpush-(" + VERSION + r")\.har",
    r"dotnet add package Callpush(?:\.Windows)? --version (" + VERSION + r")",
    r"ghcr\.io/callpush/callpush-server:(" + VERSION + r")",
]


def fail(message):
    print(f"version.sh: {message}", file=sys.stderr)
    sys.exit(1)


def workspace_version():
    text = (ROOT / "Cargo.toml").read_text()
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = section and re.search(r'^version = "([^"]+)"$', section.group(1), re.M)
    if not found:
        fail('no `version = "…"` under [workspace.package] in Cargo.toml')
    return found.group(1)


def doc_files():
    listed = subprocess.run(["git", "ls-files", "*.md", "Package.swift"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    return [f for f in listed if f != "CHANGELOG.md" and "node_modules/" not in f]


def occurrences():
    """Every place a version is written: (file, line number, version, span, who sets it)."""
    found = []
    for file, pattern, count, setter in PLACES:
        path = ROOT / file
        if not path.exists():
            fail(f"{file} is missing")
        text = path.read_text()
        matches = list(re.finditer(pattern, text, re.M))
        if len(matches) != count:
            fail(f"{file}: {len(matches)} lines match {pattern!r}, not {count}; update release/versions.py with the file")
        found += [(file, text.count("\n", 0, m.start()) + 1, m.group(1), m.span(1), setter) for m in matches]
    for file in doc_files():
        text = (ROOT / file).read_text()
        for pattern in DOC_PATTERNS:
            found += [(file, text.count("\n", 0, m.start()) + 1, m.group(1), m.span(1), "set")
                      for m in re.finditer(pattern, text)]
    return found


def check():
    version = workspace_version()
    wrong = [o for o in occurrences() if o[2] != version]
    for file, line, seen, _, setter in wrong:
        how = "release/version.sh --set" if setter == "set" else setter
        print(f"version.sh: {file}:{line} says {seen}, not {version} (written by {how})", file=sys.stderr)
    lock = subprocess.run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, capture_output=True, text=True)
    if lock.returncode != 0:
        print(f"version.sh: Cargo.lock does not match the manifests:\n{lock.stderr.strip()}", file=sys.stderr)
    if wrong or lock.returncode != 0:
        sys.exit(1)
    print(f"version {version}: Cargo.toml, Cargo.lock and {len(occurrences())} places in the packages and their docs agree")


def set_version(version):
    if not SEMVER.fullmatch(version):
        fail(f"'{version}' is not a version like 1.2.0 or 1.2.0-rc.1")
    cargo = ROOT / "Cargo.toml"
    text = cargo.read_text()
    section = re.search(r"^\[workspace\.package\]\n.*?^version = \"([^\"]+)\"$", text, re.M | re.S)
    if not section:
        fail('no `version = "…"` under [workspace.package] in Cargo.toml')
    cargo.write_text(text[:section.start(1)] + version + text[section.end(1):])
    subprocess.run(["cargo", "update", "--workspace", "--offline", "--quiet"], cwd=ROOT, check=True)
    edits = {}
    for file, _, _, span, setter in occurrences():
        if setter == "set":
            edits.setdefault(file, []).append(span)
    for file, spans in edits.items():
        path = ROOT / file
        text = path.read_text()
        for start, end in sorted(spans, reverse=True):
            text = text[:start] + version + text[end:]
        path.write_text(text)
    print(f"version {version}: Cargo.toml, Cargo.lock and {sum(map(len, edits.values()))} places in {len(edits)} files;"
          " the Swift package's core is set by bindings-swift/set-release-core.sh")


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check()
    elif len(sys.argv) == 3 and sys.argv[1] == "--set":
        set_version(sys.argv[2])
    else:
        fail("usage: release/version.sh [--check | --set X.Y.Z]")
