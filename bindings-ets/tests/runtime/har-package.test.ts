// The HAR as ohpm and DevEco see it: the module's oh-package.json5 and the native module's
// declaration package (bindings-ets/README.md, "What ohpm requires of the HAR"), the version
// written once and equal to release/version.sh's, and check-package.sh on the packed stand-in.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const ets = process.env.CALLPUSH_ETS_ROOT ?? path.resolve(__dirname, '../../../../../bindings-ets');
const root = path.resolve(ets, '..');
const moduleDir = path.join(ets, 'callpush');
// json5 lives in bindings-ets/tests/node_modules, not beside the compiled tests.
const JSON5 = createRequire(path.join(ets, 'tests/package.json'))('json5') as { parse(text: string): unknown };

interface NativeComponent { name: string; compatibleSdkVersion: string; compatibleSdkType: string }
interface OhPackage {
  name: string;
  version: string;
  description?: string;
  author?: string | { name: string };
  repository?: string;
  license: string;
  main: string;
  types?: string;
  dependencies?: Record<string, string>;
  nativeComponents?: NativeComponent[];
}

const readJson5 = <T>(file: string): T => JSON5.parse(fs.readFileSync(file, 'utf8')) as T;
const releaseVersion = (): string => {
  const r = spawnSync(path.join(root, 'release/version.sh'), { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
};

test('oh-package.json5 has what ohpm requires of a HAR with a native library', () => {
  const m = readJson5<OhPackage>(path.join(moduleDir, 'oh-package.json5'));
  assert.equal(m.name, '@callpush/callpush');
  assert.match(m.name, /^@[a-z][a-z0-9_-]*[a-z0-9]\/[a-z][a-z0-9._-]*[a-z0-9]$/);
  assert.equal(m.version, releaseVersion());
  assert.equal(m.license, 'Apache-2.0');
  assert.ok(m.description && m.description.length <= 512);
  assert.ok(m.author);
  assert.match(m.repository ?? '', /^https:\/\//);
  assert.equal(m.main, 'Index.ets');
  assert.ok(fs.existsSync(path.join(moduleDir, m.main)));
  assert.equal(m.types, undefined, 'Index.ets is the typed entry; hvigor adds "types" to a bytecode HAR itself');

  // The native module: a file: dependency on its declaration package, and listed in nativeComponents
  // at the SDK build-profile.json5 builds for.
  assert.equal(m.dependencies?.['libcallpush_napi.so'], 'file:./src/main/cpp/types/libcallpush_napi');
  const types = path.join(moduleDir, 'src/main/cpp/types/libcallpush_napi');
  const d = readJson5<OhPackage>(path.join(types, 'oh-package.json5'));
  assert.equal(d.name, 'libcallpush_napi.so');
  assert.ok(d.types && fs.existsSync(path.join(types, d.types)), `${d.types} is not in ${types}`);
  const product = readJson5<{ app: { products: { compatibleSdkVersion: string; runtimeOS: string }[] } }>(
    path.join(ets, 'build-profile.json5')).app.products[0];
  assert.deepEqual(m.nativeComponents, [{
    name: 'libcallpush_napi.so',
    compatibleSdkVersion: /\((\d+)\)/.exec(product.compatibleSdkVersion)?.[1],
    compatibleSdkType: product.runtimeOS,
  }]);
});

test('the version is written once, on the line the build scripts read', () => {
  const text = fs.readFileSync(path.join(moduleDir, 'oh-package.json5'), 'utf8');
  const lines = text.split('\n').filter((l) => /"version"/.test(l));
  assert.deepEqual(lines, [`  "version": "${releaseVersion()}",`]);
});

test('README.md, CHANGELOG.md and LICENSE are copied into the module, never committed there', () => {
  const ignored = fs.readFileSync(path.join(moduleDir, '.gitignore'), 'utf8').split('\n');
  for (const f of ['/README.md', '/CHANGELOG.md', '/LICENSE', '/libs/']) assert.ok(ignored.includes(f), `${f} is not ignored`);
});

test('the README starts with the line that adds callpush, then the release .har', () => {
  const readme = fs.readFileSync(path.join(ets, 'README.md'), 'utf8').split('\n');
  assert.equal(readme[0], '# callpush for HarmonyOS NEXT');
  const first = readme.slice(1).find((l) => l.trim() !== '' && !l.startsWith('```'));
  assert.equal(first, 'ohpm install @callpush/callpush');
  const text = readme.join('\n');
  assert.ok(text.includes(`"@callpush/callpush": "file:./libs/callpush-${releaseVersion()}.har"`));
});

test('check-package.sh: the packed stand-in meets every rule, and broken copies fail', () => {
  const r = spawnSync(path.join(ets, 'check-package.sh'), { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /check-package: 4 passed, 0 failed/);
  assert.match(r.stdout, /ok {3}a copy without the x86_64 library fails: libs\/x86_64\/libcallpush_napi\.so: missing/);
  assert.match(r.stdout, /ok {3}a copy with version 9\.9\.9 fails: version: 9\.9\.9 is not release\/version\.sh's/);
  assert.match(r.stdout, /ok {3}a copy without LICENSE fails: LICENSE: missing/);
});
