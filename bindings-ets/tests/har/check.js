#!/usr/bin/env node
// Checks a callpush .har against what ohpm and DevEco require of it (bindings-ets/README.md,
// "What ohpm requires of the HAR"), one `ok` or `FAIL` line per rule; exits 1 on any failure.
//
//   check.js <file.har> --version <release version> [--host-stand-in]
//
// --host-stand-in: pack-har.sh --host-stand-in put the host's library in libs/arm64-v8a too, so
// that library's machine is not checked there.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const JSON5 = require('json5');

const NAME = '@callpush/callpush';
const LIBRARY = 'libcallpush_napi.so';
// The ABI directories of libs/ and the ELF machine each must hold (EM_AARCH64, EM_X86_64).
const ABIS = { 'arm64-v8a': { machine: 183, label: 'aarch64' }, x86_64: { machine: 62, label: 'x86_64' } };
// ArkTS (TypeScript) reserved words, which ohpm refuses as a group or package name.
const RESERVED = new Set(('break case catch class const continue debugger default delete do else enum export extends ' +
  'false finally for function if import in instanceof new null return super switch this throw true try typeof var ' +
  'void while with as implements interface let package private protected public static yield any boolean ' +
  'constructor declare get module require number set string symbol type from of').split(' '));

let passed = 0;
let failed = 0;
// One line per rule: `ok   <subject>: <what holds>` or `FAIL <subject>: <what is wrong>`.
const ok = (subject, fact) => { passed++; console.log(`ok   ${subject}: ${fact}`); };
const fail = (subject, problem) => { failed++; console.log(`FAIL ${subject}: ${problem}`); };
/** `problem` may be a function, called only when the rule fails. */
const rule = (subject, cond, fact, problem) =>
  (cond ? ok(subject, fact) : fail(subject, typeof problem === 'function' ? problem() : problem));

function options() {
  const argv = process.argv.slice(2);
  const out = { har: undefined, version: undefined, standIn: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--version') out.version = argv[++i];
    else if (argv[i] === '--host-stand-in') out.standIn = true;
    else out.har = argv[i];
  }
  if (!out.har || !out.version) {
    console.error('usage: check.js <file.har> --version <release version> [--host-stand-in]');
    process.exit(2);
  }
  return out;
}

/** ohpm's rules for a package name (the module-level oh-package.json5 reference, `name`). */
function nameProblem(name) {
  if (typeof name !== 'string' || name.length < 1 || name.length > 128) return 'must be 1 to 128 characters';
  const m = /^@([^@/]+)\/([^@/]+)$/.exec(name);
  if (!m) return 'must be scoped, @group/packagename, with one "@" and one "/"';
  const [, group, pkg] = m;
  if (!/^[a-z][a-z0-9_-]*$/.test(group) || /[-_]$/.test(group)) {
    return `group "${group}" must start with a lowercase letter, hold only a-z 0-9 - _ and not end in - or _`;
  }
  if (!/^[a-z][a-z0-9._-]*$/.test(pkg) || /[._-]$/.test(pkg)) {
    return `package name "${pkg}" must start with a lowercase letter, hold only a-z 0-9 . - _ and not end in . - or _`;
  }
  if (RESERVED.has(group) || RESERVED.has(pkg)) return 'group and package name must not be ArkTS reserved words';
  return undefined;
}

/** The ELF header's file type and machine, or a reason it is not an ELF file. */
function elf(file) {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(20);
  const n = fs.readSync(fd, head, 0, 20, 0);
  fs.closeSync(fd);
  if (n < 20 || head.readUInt32BE(0) !== 0x7f454c46) return { problem: 'not an ELF file' };
  const le = head[5] === 1;
  const type = le ? head.readUInt16LE(16) : head.readUInt16BE(16);
  const machine = le ? head.readUInt16LE(18) : head.readUInt16BE(18);
  return { type, machine };
}

function tar(args) {
  const r = spawnSync('tar', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() };
}

function files(dir, base = dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p, base) : [path.relative(base, p)];
  });
}

function main() {
  const o = options();
  const har = path.resolve(o.har);

  // The container: a gzipped tar whose entries all sit under package/ (npm's tarball layout,
  // which .har files share).
  const head = Buffer.alloc(2);
  const fd = fs.openSync(har, 'r');
  fs.readSync(fd, head, 0, 2, 0);
  fs.closeSync(fd);
  if (head[0] !== 0x1f || head[1] !== 0x8b) {
    fail(path.basename(har), 'not gzip-compressed (a .har is a gzipped tar)');
    return;
  }
  const list = tar(['-tzf', har]);
  if (!list.ok) {
    fail(path.basename(har), `not a tar archive: ${list.err}`);
    return;
  }
  const entries = list.out.split('\n').filter(Boolean);
  const stray = entries.filter((e) => e !== 'package/' && !e.startsWith('package/'));
  rule(path.basename(har), stray.length === 0, 'a gzipped tar, every entry under package/',
    () => `entries outside package/: ${stray.slice(0, 5).join(', ')}`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'callpush-har-'));
  try {
    const x = tar(['-xzf', har, '-C', tmp]);
    if (!x.ok) {
      fail('extracting', x.err);
      return;
    }
    checkPackage(path.join(tmp, 'package'), o);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function checkPackage(pkg, o) {
  const at = (rel) => path.join(pkg, rel);
  const isFile = (rel) => fs.existsSync(at(rel)) && fs.statSync(at(rel)).isFile();

  // oh-package.json5, parsed as JSON5 as ohpm does.
  let m;
  try {
    m = JSON5.parse(fs.readFileSync(at('oh-package.json5'), 'utf8'));
    ok('oh-package.json5', 'parses as JSON5');
  } catch (e) {
    fail('oh-package.json5', fs.existsSync(at('oh-package.json5')) ? `not JSON5: ${e.message}` : 'missing');
    m = {};
  }

  const np = nameProblem(m.name);
  rule('name', !np && m.name === NAME, `${m.name}, a valid scoped ohpm name`,
    () => `${JSON.stringify(m.name)} ${np ?? `is not ${NAME}`}`);
  const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
  if (typeof m.version !== 'string' || !semver.test(m.version)) {
    fail('version', `${JSON.stringify(m.version)} is not a semver X.Y.Z version`);
  } else {
    rule('version', m.version === o.version, `${m.version}, release/version.sh's`,
      `${m.version} is not release/version.sh's ${o.version}`);
  }
  rule('license', m.license === 'Apache-2.0', 'Apache-2.0 (SPDX)', `${JSON.stringify(m.license)} is not "Apache-2.0"`);
  const described = typeof m.description === 'string' && m.description.trim().length > 0;
  rule('description', described && m.description.length <= 512, `${described ? m.description.length : 0} characters`,
    described ? 'longer than 512 characters' : 'missing');
  const author = typeof m.author === 'string' ? m.author : m.author?.name;
  rule('author', typeof author === 'string' && author.trim().length > 0, `${author}`, 'missing');
  const repo = typeof m.repository === 'string' ? m.repository : m.repository?.url;
  rule('repository', typeof repo === 'string' && /^https:\/\//.test(repo), `${repo}`,
    `${JSON.stringify(m.repository)} is not an https URL`);

  // Entry points.
  rule('main', typeof m.main === 'string' && isFile(m.main), `${m.main}, in the package`,
    typeof m.main === 'string' ? `${m.main} is not in the package` : 'missing');
  if (m.types !== undefined) {
    rule('types', typeof m.types === 'string' && isFile(m.types), `${m.types}, in the package`, `${m.types} is not in the package`);
  }
  const deps = m.dependencies ?? {};
  rule('dependencies', LIBRARY in deps, `declare ${LIBRARY}`, `no "${LIBRARY}" for \`import native from '${LIBRARY}'\``);
  for (const [dep, spec] of Object.entries(deps)) {
    if (typeof spec !== 'string' || !spec.startsWith('file:./')) {
      fail(`dependency ${dep}`, `${JSON.stringify(spec)} is not a file:./ path inside the package`);
      continue;
    }
    const dir = spec.slice('file:'.length);
    let d;
    try {
      d = JSON5.parse(fs.readFileSync(path.join(at(dir), 'oh-package.json5'), 'utf8'));
    } catch (e) {
      fail(`dependency ${dep}`, `${dir}/oh-package.json5 is missing or not JSON5`);
      continue;
    }
    const types = typeof d.types === 'string' ? path.join(dir, d.types) : undefined;
    if (d.name !== dep) fail(`dependency ${dep}`, `${dir}/oh-package.json5 names it ${JSON.stringify(d.name)}`);
    else if (!types || !isFile(types)) fail(`dependency ${dep}`, `its types ${JSON.stringify(d.types)} are not in ${dir}`);
    else ok(`dependency ${dep}`, `${spec}, its declaration ${types} in the package`);
  }

  // What ohpm checks at prepublish and publish (filled by hvigor, or by pack-har.sh).
  rule('compatibility fields', m.compatibleSdkVersion !== undefined && String(m.compatibleSdkVersion).length > 0 &&
    typeof m.compatibleSdkType === 'string' && typeof m.obfuscated === 'boolean',
    `compatibleSdkVersion ${m.compatibleSdkVersion}, compatibleSdkType ${m.compatibleSdkType}, obfuscated ${m.obfuscated}`,
    'compatibleSdkVersion, compatibleSdkType and obfuscated must all be set (hvigor fills them)');

  // The three files ohpm requires, not empty.
  for (const f of ['README.md', 'CHANGELOG.md', 'LICENSE']) {
    rule(f, isFile(f) && fs.statSync(at(f)).size > 0, 'there, not empty', () => (isFile(f) ? 'empty' : 'missing'));
  }
  const text = (f) => (isFile(f) ? fs.readFileSync(at(f), 'utf8') : '');
  rule('README.md', text('README.md').includes(`ohpm install ${NAME}`), `says \`ohpm install ${NAME}\``,
    `does not say \`ohpm install ${NAME}\`, which ohpm's review requires`);
  // The versions its examples name: the release's .har file, and the dependency ohpm writes.
  const readme = text('README.md');
  const named = [...readme.matchAll(/callpush-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+?)?)(?:-host-stand-in)?\.har/g),
    ...readme.matchAll(/"@callpush\/callpush":\s*"[\^~]?(\d+\.\d+\.\d+[^"]*)"/g)].map((x) => x[1]);
  const stale = named.filter((v) => v !== o.version);
  rule('README.md', stale.length === 0, `its ${named.length} examples name version ${o.version}`,
    () => `an example names version ${stale[0]}, not ${o.version}`);
  rule('LICENSE', /Apache License\s+Version 2\.0/.test(text('LICENSE')), 'the Apache License, Version 2.0, as the license field says',
    isFile('LICENSE') ? 'not the Apache License, Version 2.0, which the license field names' : 'missing');
  const v = o.version.replace(/\./g, '\\.');
  rule('CHANGELOG.md', new RegExp(`^##\\s*\\[?v?${v}\\]?`, 'm').test(text('CHANGELOG.md')), `has a section for ${o.version}`,
    `no "## [${o.version}]" section`);

  // The native library, one per ABI, each an ELF shared object of its ABI's machine.
  for (const [abi, want] of Object.entries(ABIS)) {
    const rel = `libs/${abi}/${LIBRARY}`;
    if (!isFile(rel)) {
      fail(rel, 'missing');
      continue;
    }
    const e = elf(at(rel));
    if (e.problem) fail(rel, e.problem);
    else if (e.type !== 3) fail(rel, `ELF type ${e.type}, not a shared object (ET_DYN)`);
    else if (o.standIn && abi !== 'x86_64') ok(rel, 'an ELF shared object (the host\'s stand-in: its machine is not checked)');
    else rule(rel, e.machine === want.machine, `an ELF shared object for ${want.label}`,
      `ELF machine ${e.machine}, not ${want.label} (${want.machine})`);
  }
  const libs = fs.existsSync(at('libs')) ? files(at('libs')) : [];
  const unknown = libs.filter((f) => !/^(arm64-v8a|armeabi-v7a|x86_64)\/[^/]+\.so$/.test(f.split(path.sep).join('/')));
  rule('libs/', unknown.length === 0, 'only <abi>/<library>.so', () => `unexpected: ${unknown.join(', ')}`);
  const native = new Set((m.nativeComponents ?? []).map((c) => c.name));
  const unlisted = [...new Set(libs.map((f) => path.basename(f)))].filter((n) => !native.has(n));
  const sdkOff = (m.nativeComponents ?? []).filter((c) =>
    String(c.compatibleSdkVersion) !== String(m.compatibleSdkVersion) || c.compatibleSdkType !== m.compatibleSdkType);
  rule('nativeComponents', unlisted.length === 0 && sdkOff.length === 0, 'every library under libs/, at the package\'s SDK',
    () => (unlisted.length ? `not listed: ${unlisted.join(', ')}`
      : `${sdkOff[0].name} says ${sdkOff[0].compatibleSdkVersion}/${sdkOff[0].compatibleSdkType}`));

  // The module: a HAR (module.json as hvigor packs it; module.json5 in a source layout).
  const moduleFile = ['src/main/module.json', 'src/main/module.json5'].find(isFile);
  let moduleType;
  try {
    moduleType = moduleFile ? JSON5.parse(text(moduleFile)).module?.type : undefined;
  } catch (e) {
    moduleType = `unparsable (${e.message})`;
  }
  rule(moduleFile ?? 'src/main/module.json', moduleType === 'har', 'type "har"',
    moduleFile ? `type ${JSON.stringify(moduleType)}, not "har"` : 'missing');

  // What Index.ets exports, and what the ArkTS sources import, is there.
  const exported = [...text(m.main ?? 'Index.ets').matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)].map((x) => x[1]);
  const missing = exported.filter((rel) => !['', '.ets', '.ts', '.js'].some((ext) => isFile(path.join(path.dirname(m.main ?? ''), rel + ext))));
  rule(`${m.main} exports`, exported.length > 0 && missing.length === 0, `the ${exported.length} files it exports from are in the package`,
    () => (exported.length ? `missing: ${missing.join(', ')}` : 'nothing exported'));
  const sources = files(pkg).filter((f) => f.endsWith('.ets'));
  const foreign = new Set();
  for (const f of sources) {
    for (const x of text(f).matchAll(/^\s*(?:import|export)\b[^;]*?from\s+'([^']+)'/gm)) {
      const spec = x[1];
      if (!spec.startsWith('.') && !spec.startsWith('@kit.') && !spec.startsWith('@ohos.') && !(spec in deps)) foreign.add(spec);
    }
  }
  rule('imports', foreign.size === 0, `the ${sources.length} .ets files import only each other, system kits and dependencies`,
    () => `not declared in dependencies: ${[...foreign].join(', ')}`);
}

main();
console.log(`check-har: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
