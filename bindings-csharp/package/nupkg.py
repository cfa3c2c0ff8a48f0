#!/usr/bin/env python3
"""Packs and checks callpush's NuGet packages; used by bindings-csharp/check-package.sh.

  nupkg.py pack NUSPEC OUTDIR -p KEY=VALUE...
      Packs NUSPEC (Callpush.nuspec) into OUTDIR/<id>.<version>.nupkg as `dotnet pack` lays a
      package out: the nuspec with its $tokens$ replaced and without <files>, each <file> at its
      target, and the OPC parts ([Content_Types].xml, _rels/.rels, the .psmdcp). Only literal
      file entries (no wildcards, no exclude); a missing file, an unreplaced token or two files
      at one path stop it. Deterministic: fixed timestamps and names.

  nupkg.py check NUPKG --version V [--version-from WHERE] [--native pe|standin --standin FILE] [--readme FILE]
                 [--extract DIR] [--skip-uwp]
      Checks a Callpush or Callpush.Windows package against what it must be (the constants
      below, not the nuspec it came from): its nuspec, its entries and nothing else. Native
      libraries: `pe` (a package built on Windows) wants each runtimes/<rid>/native/callpush.dll
      to be a DLL for that machine; `standin` wants each to equal FILE (the host library
      check-package.sh packs in their place). --extract writes the lib/ assemblies to DIR for
      the assembly check. Prints one `ok<TAB>...` or `FAIL<TAB>...` line per check; exits 1
      when any failed.

  nupkg.py sources ROOT --version V
      Checks the package definitions in bindings-csharp/src without building: the tokens of
      Callpush.nuspec and the ones Callpush.csproj passes, the one version literal
      (Directory.Build.props) against V, and Callpush.Windows.csproj's metadata against
      Callpush.nuspec's.

  nupkg.py mutate SRC DST (--drop ENTRY | --add ENTRY | --set VERSION | --license ID)
      Writes a copy of SRC with one thing wrong, for check-package.sh's self-test.
"""

import argparse
import hashlib
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zipfile

NUSPEC_NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"

# What both packages must say.
AUTHORS = "callpush"
LICENSE = "Apache-2.0"
LICENSE_URL = "https://licenses.nuget.org/Apache-2.0"
PROJECT_URL = "https://github.com/callpush/callpush"
README = "README.md"
RIDS = {"win-x64": 0x8664, "win-arm64": 0xAA64, "win-x86": 0x014C}  # PE machine types

# Entries a NuGet client or nuget.org may add to any package.
OPC_ENTRIES = re.compile(
    r"^(\[Content_Types\]\.xml|_rels/\.rels|package/services/metadata/core-properties/[0-9A-Za-z]+\.psmdcp|\.signature\.p7s)$"
)
ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def fail(message):
    print(f"nupkg.py: {message}", file=sys.stderr)
    sys.exit(2)


def local(tag):
    return tag.rsplit("}", 1)[-1]


def child(element, name):
    for c in element:
        if local(c.tag) == name:
            return c
    return None


def text(element, name):
    c = child(element, name)
    return (c.text or "").strip() if c is not None else None


# ---------------------------------------------------------------- pack


def pack(args):
    properties = {}
    for p in args.property:
        key, sep, value = p.partition("=")
        if not sep or not key:
            fail(f"-p wants KEY=VALUE, not {p!r}")
        properties[key.lower()] = value
    # As NuGet does, over the whole text, comments too.
    source = open(args.nuspec, encoding="utf-8").read()

    def replace(match):
        key = match.group(1).lower()
        if key not in properties:
            fail(f"{args.nuspec}: no value for the token ${match.group(1)}$ (pass -p {match.group(1)}=...)")
        return properties[key]

    body = re.sub(r"\$(\w+)\$", replace, source)
    ET.register_namespace("", NUSPEC_NS)
    root = ET.fromstring(body)
    metadata = child(root, "metadata")
    if metadata is None:
        fail(f"{args.nuspec}: no <metadata>")
    package_id, version = text(metadata, "id"), text(metadata, "version")
    if not package_id or not version:
        fail(f"{args.nuspec}: <id> and <version> are required")

    base = os.path.dirname(os.path.abspath(args.nuspec))
    entries = {}
    files = child(root, "files")
    for f in list(files) if files is not None else []:
        src, target = f.get("src", ""), f.get("target", "")
        if any(ch in src for ch in "*?") or f.get("exclude"):
            fail(f"{args.nuspec}: {src}: wildcards and exclude are not supported here; list each file")
        path = src if os.path.isabs(src) else os.path.join(base, src)
        if not os.path.isfile(path):
            fail(f"{args.nuspec}: file not found: {src} ({os.path.normpath(path)})")
        target = target.replace("\\", "/").strip("/")
        name = os.path.basename(path)
        # NuGet's rule: a target with the source's extension names the file; else a folder.
        if target and os.path.splitext(target)[1].lower() == os.path.splitext(name)[1].lower():
            entry = target
        else:
            entry = f"{target}/{name}" if target else name
        if entry in entries:
            fail(f"{args.nuspec}: two files at {entry}")
        entries[entry] = path
    if files is not None:
        root.remove(files)

    # dotnet pack writes licenseUrl beside a license expression, for older clients.
    license_element = child(metadata, "license")
    if license_element is not None and license_element.get("type") == "expression" and child(metadata, "licenseUrl") is None:
        url = ET.Element(f"{{{NUSPEC_NS}}}licenseUrl")
        url.text = f"https://licenses.nuget.org/{license_element.text.strip()}"
        metadata.insert(list(metadata).index(license_element) + 1, url)
    ET.indent(root, space="  ")
    nuspec = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"

    digest = hashlib.sha256(f"{package_id}.{version}".encode()).hexdigest()[:32]
    psmdcp = f"package/services/metadata/core-properties/{digest}.psmdcp"
    tags = text(metadata, "tags") or ""
    core = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns="http://schemas.openxmlformats.org/package/2006/metadata/core-properties">'
        f"<dc:creator>{esc(text(metadata, 'authors') or '')}</dc:creator>"
        f"<dc:description>{esc(text(metadata, 'description') or '')}</dc:description>"
        f"<dc:identifier>{esc(package_id)}</dc:identifier><version>{esc(version)}</version>"
        f"<keywords>{esc(tags)}</keywords><lastModifiedBy>callpush nupkg.py</lastModifiedBy></coreProperties>"
    )
    rels = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/{package_id}.nuspec" Id="R{digest[:16]}" />'
        '<Relationship Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
        f'Target="/{psmdcp}" Id="R{digest[16:32]}" /></Relationships>'
    )
    extensions = sorted({os.path.splitext(e)[1].lstrip(".").lower() for e in entries} - {"", "rels", "psmdcp", "nuspec"})
    types = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />'
        '<Default Extension="nuspec" ContentType="application/octet" />'
        + "".join(f'<Default Extension="{e}" ContentType="application/octet" />' for e in extensions)
        + '<Default Extension="psmdcp" ContentType="application/vnd.openxmlformats-package.core-properties+xml" />'
        "</Types>"
    )

    os.makedirs(args.outdir, exist_ok=True)
    out = os.path.join(args.outdir, f"{package_id}.{version}.nupkg")
    with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        put(z, "_rels/.rels", rels.encode())
        put(z, f"{package_id}.nuspec", nuspec)
        for entry, path in entries.items():
            with open(path, "rb") as f:
                put(z, entry, f.read())
        put(z, psmdcp, core.encode())
        put(z, "[Content_Types].xml", types.encode())
    os.replace(out + ".tmp", out)
    print(out)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def put(z, name, data):
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    z.writestr(info, data)


# ---------------------------------------------------------------- check


class Report:
    def __init__(self):
        self.failed = 0

    def check(self, good, ok, bad):
        if good:
            print(f"ok\t{ok}")
        else:
            self.failed += 1
            print(f"FAIL\t{bad}")
        return good


def assembly_version(version):
    """The AssemblyVersion the .NET SDK derives from a package version: 0.2.0-beta.1 -> 0.2.0.0."""
    numbers = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    return ".".join(numbers.groups()) + ".0" if numbers else "?"


def check(args):
    r = Report()
    name = os.path.basename(args.nupkg)
    try:
        z = zipfile.ZipFile(args.nupkg)
    except (OSError, zipfile.BadZipFile) as e:
        r.check(False, "", f"{name}: not a readable zip ({e})")
        return r
    with z:
        entries = [i.filename for i in z.infolist() if not i.filename.endswith("/")]
        nuspecs = [e for e in entries if "/" not in e and e.endswith(".nuspec")]
        if not r.check(len(nuspecs) == 1, f"{name}: one .nuspec at its root ({nuspecs[0] if nuspecs else ''})",
                       f"{name}: wants one .nuspec at its root, has {nuspecs or 'none'}"):
            return r
        try:
            root = ET.fromstring(z.read(nuspecs[0]))
        except ET.ParseError as e:
            r.check(False, "", f"{nuspecs[0]}: not XML ({e})")
            return r
        metadata = child(root, "metadata")
        if not r.check(metadata is not None, f"{nuspecs[0]}: has <metadata>", f"{nuspecs[0]}: no <metadata>"):
            return r
        package_id = text(metadata, "id")
        r.check(nuspecs[0] == f"{package_id}.nuspec", f"{nuspecs[0]}: named after the id",
                f"{nuspecs[0]}: is not named after the id {package_id!r}")
        if package_id == "Callpush":
            check_core(r, z, entries, metadata, args)
        elif package_id == "Callpush.Windows":
            check_windows(r, z, entries, metadata, args)
        else:
            r.check(False, "", f"{nuspecs[0]}: id {package_id!r} is neither Callpush nor Callpush.Windows")
    return r


def check_metadata(r, metadata, package_id, version, version_from, entries):
    where = f"{package_id}.nuspec"
    got = text(metadata, "version")
    r.check(got == version, f"{where}: version {got} ({version_from})",
            f"{where}: version {got!r}, but the package must be version {version!r} ({version_from})")
    got = text(metadata, "authors")
    r.check(got == AUTHORS, f"{where}: authors {got}", f"{where}: authors {got!r}, not {AUTHORS!r}")
    lic = child(metadata, "license")
    got = (lic.get("type"), (lic.text or "").strip()) if lic is not None else None
    r.check(got == ("expression", LICENSE), f"{where}: license expression {LICENSE}",
            f"{where}: license {got!r}, not <license type=\"expression\">{LICENSE}</license>")
    url = text(metadata, "licenseUrl")
    r.check(url in (None, LICENSE_URL), f"{where}: licenseUrl {url or '(none)'}",
            f"{where}: licenseUrl {url!r}: only {LICENSE_URL} goes with the expression")
    got = text(metadata, "projectUrl")
    r.check(got == PROJECT_URL, f"{where}: projectUrl {got}", f"{where}: projectUrl {got!r}, not {PROJECT_URL}")
    repo = child(metadata, "repository")
    got = (repo.get("type"), repo.get("url")) if repo is not None else None
    r.check(got == ("git", PROJECT_URL), f"{where}: repository git {PROJECT_URL}",
            f"{where}: repository {got!r}, not type git at {PROJECT_URL}")
    got = text(metadata, "readme")
    r.check(got == README and README in entries, f"{where}: readme {README}, in the package",
            f"{where}: readme {got!r}: wants {README}, held at the package's root")
    got = text(metadata, "description")
    r.check(bool(got), f"{where}: description ({len(got or '')} characters)", f"{where}: no description")


def dependency_groups(metadata):
    deps = child(metadata, "dependencies")
    groups = {}
    loose = []
    for c in list(deps) if deps is not None else []:
        if local(c.tag) == "group":
            groups[c.get("targetFramework") or ""] = [(d.get("id"), d.get("version")) for d in c]
        else:
            loose.append((c.get("id"), c.get("version")))
    return groups, loose


def check_core(r, z, entries, metadata, args):
    check_metadata(r, metadata, "Callpush", args.version, args.version_from, entries)
    groups, loose = dependency_groups(metadata)
    r.check(not loose and set(groups) <= {".NETStandard2.0"} and not any(groups.values()),
            "Callpush.nuspec: no dependencies" + (" (an empty .NETStandard2.0 group)" if groups else ""),
            f"Callpush.nuspec: dependencies {groups or loose}: netstandard2.0 needs none (an empty .NETStandard2.0 group)")

    lib = "lib/netstandard2.0"
    natives = [f"runtimes/{rid}/native/callpush.dll" for rid in RIDS]
    wanted = [f"{lib}/Callpush.dll", f"{lib}/Callpush.xml", *natives, README, "Callpush.nuspec"]
    for entry in wanted:
        r.check(entry in entries, f"holds {entry}", f"{entry} is missing" + native_hint(entry))
    stray = [e for e in entries if e not in wanted and not OPC_ENTRIES.match(e)]
    r.check(not stray, "no stray files", f"stray files: {', '.join(stray)}")

    if f"{lib}/Callpush.xml" in entries:
        check_docs(r, z.read(f"{lib}/Callpush.xml"), f"{lib}/Callpush.xml", "Callpush")
    standin = open(args.standin, "rb").read() if args.native == "standin" else None
    for rid, machine in RIDS.items():
        entry = f"runtimes/{rid}/native/callpush.dll"
        if entry not in entries:
            continue
        data = z.read(entry)
        if standin is not None:
            r.check(data == standin, f"{entry}: the stand-in ({len(data)} bytes, the host library)",
                    f"{entry}: differs from the stand-in {args.standin}")
        else:
            check_pe(r, entry, data, machine)
    check_readme(r, z, entries, args)
    extract(z, entries, args, [f"{lib}/Callpush.dll"])


def native_hint(entry):
    m = re.match(r"^runtimes/([^/]+)/native/", entry)
    return f": apps on {m.group(1)} would not find callpush.dll" if m else ""


def check_pe(r, entry, data, machine):
    got = None
    if data[:2] == b"MZ" and len(data) > 0x40:
        offset = struct.unpack_from("<I", data, 0x3C)[0]
        if data[offset:offset + 4] == b"PE\0\0" and len(data) >= offset + 24:
            got_machine, = struct.unpack_from("<H", data, offset + 4)
            characteristics, = struct.unpack_from("<H", data, offset + 22)
            got = (got_machine, bool(characteristics & 0x2000))
    r.check(got == (machine, True), f"{entry}: a Windows DLL for machine 0x{machine:04x}",
            f"{entry}: " + ("not a Windows DLL (no PE header)" if got is None else
                            f"a PE file for machine 0x{got[0]:04x}{'' if got[1] else ', not a DLL'}, not 0x{machine:04x}"))


def check_docs(r, data, entry, assembly):
    try:
        doc = ET.fromstring(data)
        name = (doc.findtext("assembly/name") or "").strip()
        members = len(doc.findall("members/member"))
    except ET.ParseError as e:
        r.check(False, "", f"{entry}: not XML ({e})")
        return
    r.check(local(doc.tag) == "doc" and name == assembly and members > 0,
            f"{entry}: XML documentation of {assembly} ({members} members)",
            f"{entry}: not the XML documentation of {assembly} (assembly {name!r}, {members} members)")


def check_readme(r, z, entries, args):
    if README not in entries:
        return
    data = z.read(README)
    if args.readme:
        r.check(data == open(args.readme, "rb").read(), f"{README}: bindings-csharp/README.md",
                f"{README}: differs from {args.readme}")
    else:
        r.check(data.startswith(b"# "), f"{README}: a Markdown page ({len(data)} bytes)",
                f"{README}: does not start with a Markdown title")


def extract(z, entries, args, names):
    if not args.extract:
        return
    for entry in names:
        if entry in entries:
            path = os.path.join(args.extract, entry)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(z.read(entry))


WINDOWS_TFMS = {"appsdk": r"net6\.0-windows10\.0\.19041(\.0)?", "uwp": r"uap10\.0\.17763(\.0)?"}


def check_windows(r, z, entries, metadata, args):
    check_metadata(r, metadata, "Callpush.Windows", args.version, args.version_from, entries)
    libs = {}
    for kind, pattern in WINDOWS_TFMS.items():
        folders = sorted({e.split("/")[1] for e in entries if re.match(rf"^lib/{pattern}/", e)})
        libs[kind] = folders[0] if len(folders) == 1 else None
    wanted_kinds = ["appsdk"] + ([] if args.skip_uwp else ["uwp"])
    for kind in wanted_kinds:
        folder = libs[kind]
        label = {"appsdk": "the Windows App SDK: lib/net6.0-windows10.0.19041/", "uwp": "UWP: lib/uap10.0.17763/"}[kind]
        r.check(folder is not None, f"holds lib/{folder}/", f"no lib/ folder for {label}")
        if folder:
            for ext in ("dll", "xml"):
                entry = f"lib/{folder}/Callpush.Windows.{ext}"
                r.check(entry in entries, f"holds {entry}", f"{entry} is missing")
            if f"lib/{folder}/Callpush.Windows.xml" in entries:
                check_docs(r, z.read(f"lib/{folder}/Callpush.Windows.xml"), f"lib/{folder}/Callpush.Windows.xml",
                           "Callpush.Windows")
    r.check(README in entries, f"holds {README}", f"{README} is missing")
    folders = {f for f in libs.values() if f}
    stray = [e for e in entries if not (e in (README, "Callpush.Windows.nuspec") or OPC_ENTRIES.match(e)
                                        or (e.count("/") == 2 and e.split("/")[1] in folders
                                            and e.split("/")[2].startswith("Callpush.Windows.")))]
    r.check(not stray, "no stray files", f"stray files: {', '.join(stray)}")

    groups, loose = dependency_groups(metadata)
    r.check(not loose, "dependencies by target framework", f"dependencies outside a group: {loose}")
    for kind, folder in libs.items():
        if not folder:
            continue
        group = [deps for tfm, deps in groups.items() if re.fullmatch(WINDOWS_TFMS[kind], tfm, re.I)]
        deps = dict(group[0]) if group else {}
        callpush = deps.get("Callpush")
        r.check(callpush is not None and callpush.strip("[]() ").split(",")[0].strip() == args.version,
                f"{folder}: depends on Callpush {args.version}",
                f"{folder}: depends on Callpush {callpush!r}, not {args.version} (the same release)")
        if kind == "appsdk":
            r.check("Microsoft.WindowsAppSDK" in deps, f"{folder}: depends on Microsoft.WindowsAppSDK {deps.get('Microsoft.WindowsAppSDK')}",
                    f"{folder}: no dependency on Microsoft.WindowsAppSDK")
    check_readme(r, z, entries, args)
    extract(z, entries, args, [f"lib/{f}/Callpush.Windows.dll" for f in sorted(folders)])


# ---------------------------------------------------------------- sources


def sources(args):
    r = Report()
    src = os.path.join(args.root, "bindings-csharp", "src")
    nuspec_path = os.path.join(src, "Callpush", "Callpush.nuspec")
    nuspec_text = open(nuspec_path, encoding="utf-8").read()
    tokens = sorted({t.lower() for t in re.findall(r"\$(\w+)\$", nuspec_text)})  # comments too, as NuGet
    metadata = child(ET.fromstring(nuspec_text), "metadata")

    core = ET.parse(os.path.join(src, "Callpush", "Callpush.csproj")).getroot()
    props = {local(p.tag): (p.text or "").strip() for g in core.iter() if local(g.tag) == "PropertyGroup" for p in g}
    r.check(props.get("NuspecFile") == "Callpush.nuspec", "Callpush.csproj: packs Callpush.nuspec",
            f"Callpush.csproj: NuspecFile is {props.get('NuspecFile')!r}, not Callpush.nuspec")
    passed = sorted(k.strip().lower() for k in
                    (pair.partition("=")[0] for pair in props.get("NuspecProperties", "").split(";")) if k.strip())
    r.check(passed == tokens, f"Callpush.csproj passes the nuspec's tokens: {', '.join(tokens)}",
            f"Callpush.nuspec uses the tokens {tokens}, but Callpush.csproj's NuspecProperties passes {passed}")
    dead = sorted(set(props) & {"PackageId", "Authors", "Description", "PackageTags", "PackageLicenseExpression",
                                "PackageProjectUrl", "RepositoryUrl", "RepositoryType", "PackageReadmeFile"})
    r.check(not dead, "Callpush.csproj: no package metadata beside the nuspec",
            f"Callpush.csproj sets {', '.join(dead)}, which dotnet pack ignores with a NuspecFile: put it in Callpush.nuspec")

    build_props = ET.parse(os.path.join(src, "Directory.Build.props")).getroot()
    literals = [(p.text or "").strip() for p in build_props.iter() if local(p.tag) == "Version"]
    r.check(literals == [args.version], f"Directory.Build.props: default version {args.version} (release/version.sh)",
            f"Directory.Build.props: default version {', '.join(literals) or '(none)'}, but release/version.sh says {args.version}")
    for project in ("Callpush/Callpush.csproj", "Callpush.Windows/Callpush.Windows.csproj"):
        tree = ET.parse(os.path.join(src, project)).getroot()
        versions = [local(p.tag) for p in tree.iter() if local(p.tag) in ("Version", "PackageVersion", "VersionPrefix")]
        r.check(not versions, f"{project}: no version of its own (Directory.Build.props)",
                f"{project}: sets {', '.join(versions)}: the version is Directory.Build.props' or passed in")

    windows = ET.parse(os.path.join(src, "Callpush.Windows", "Callpush.Windows.csproj")).getroot()
    wprops = {local(p.tag): (p.text or "").strip() for g in windows.iter() if local(g.tag) == "PropertyGroup" for p in g}
    repo = child(metadata, "repository")
    lic = child(metadata, "license")
    same = {
        "PackageId": "Callpush.Windows",
        "Authors": text(metadata, "authors"),
        "PackageLicenseExpression": (lic.text or "").strip() if lic is not None else None,
        "PackageProjectUrl": text(metadata, "projectUrl"),
        "RepositoryUrl": repo.get("url") if repo is not None else None,
        "RepositoryType": repo.get("type") if repo is not None else None,
        "PackageReadmeFile": text(metadata, "readme"),
    }
    for key, want in same.items():
        r.check(wprops.get(key) == want, f"Callpush.Windows.csproj: {key} {want}",
                f"Callpush.Windows.csproj: {key} is {wprops.get(key)!r}, Callpush.nuspec says {want!r}")
    r.check(bool(wprops.get("Description")), "Callpush.Windows.csproj: a description", "Callpush.Windows.csproj: no Description")
    items = [(local(i.tag), i.attrib) for g in windows.iter() if local(g.tag) == "ItemGroup" for i in g]
    readme = [a for t, a in items if t == "None" and a.get("Include", "").replace("\\", "/").endswith("../../README.md")
              and a.get("Pack") == "true" and a.get("PackagePath") == "/"]
    r.check(bool(readme), "Callpush.Windows.csproj: packs bindings-csharp/README.md at the root",
            "Callpush.Windows.csproj: no <None Include=\"...../../README.md\" Pack=\"true\" PackagePath=\"/\" />")
    refs = [a.get("Include", "").replace("\\", "/") for t, a in items if t == "ProjectReference"]
    r.check(refs == ["../Callpush/Callpush.csproj"], "Callpush.Windows.csproj: references Callpush (a dependency at the same version)",
            f"Callpush.Windows.csproj: project references {refs}, not ../Callpush/Callpush.csproj alone")
    sdk = [a.get("Version") for t, a in items if t == "PackageReference" and a.get("Include") == "Microsoft.WindowsAppSDK"]
    r.check(len(sdk) == 1, f"Callpush.Windows.csproj: references Microsoft.WindowsAppSDK {sdk[0] if sdk else ''}",
            "Callpush.Windows.csproj: no PackageReference to Microsoft.WindowsAppSDK")
    return r


# ---------------------------------------------------------------- mutate


def mutate(args):
    with zipfile.ZipFile(args.src) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    if args.drop and args.drop not in [n for n, _ in items]:
        fail(f"{args.src} has no {args.drop} to drop")
    with zipfile.ZipFile(args.dst, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in items:
            if name == args.drop:
                continue
            if name.endswith(".nuspec") and "/" not in name:
                if args.set:
                    data = re.sub(rb"<version>[^<]*</version>", f"<version>{args.set}</version>".encode(), data, count=1)
                if args.license:
                    data = re.sub(rb"(<license[^>]*>)[^<]*(</license>)", rb"\g<1>" + args.license.encode() + rb"\g<2>", data)
            put(out, name, data)
        if args.add:
            put(out, args.add, b"stray\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("nuspec")
    p.add_argument("outdir")
    p.add_argument("-p", "--property", action="append", default=[])
    c = sub.add_parser("check")
    c.add_argument("nupkg")
    c.add_argument("--version", required=True)
    c.add_argument("--version-from", default="release/version.sh", help="where the version comes from, for the messages")
    c.add_argument("--native", choices=["pe", "standin"], default="pe")
    c.add_argument("--standin")
    c.add_argument("--readme")
    c.add_argument("--extract")
    c.add_argument("--skip-uwp", action="store_true")
    s = sub.add_parser("sources")
    s.add_argument("root")
    s.add_argument("--version", required=True)
    m = sub.add_parser("mutate")
    m.add_argument("src")
    m.add_argument("dst")
    group = m.add_mutually_exclusive_group(required=True)
    group.add_argument("--drop")
    group.add_argument("--add")
    group.add_argument("--set")
    group.add_argument("--license")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args)
    elif args.command == "mutate":
        mutate(args)
    else:
        if args.command == "check" and args.native == "standin" and not args.standin:
            fail("--native standin wants --standin FILE")
        report = check(args) if args.command == "check" else sources(args)
        sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
