#!/usr/bin/env node
// Lays out the HAR's `package/` directory from the module's sources the way hvigor packs a
// source HAR (artifactType "original"), for pack-har.sh to tar and gzip:
//
//   package/oh-package.json5     the module's, as JSON, with the fields hvigor fills in
//                                (compatibleSdkVersion, compatibleSdkType, obfuscated, artifactType)
//   package/Index.ets            the entry (`main`)
//   package/src/main/module.json the module's module.json5, as JSON
//   package/src/main/ets/...     the ArkTS sources
//   package/src/main/cpp/types/libcallpush_napi/   the native module's declaration package
//   package/libs/<abi>/libcallpush_napi.so          one per --lib
//   package/README.md, CHANGELOG.md, LICENSE        what ohpm requires
//
//   pack.js --ets <bindings-ets> --stage <dir> --readme <f> --changelog <f> --license <f>
//           --lib arm64-v8a=<so> --lib x86_64=<so>
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const JSON5 = require('json5');

function args() {
  const out = { lib: [] };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`pack.js: ${argv[i]} needs a value`);
    if (key === 'lib') out.lib.push(value);
    else out[key] = value;
  }
  for (const k of ['ets', 'stage', 'readme', 'changelog', 'license']) {
    if (!out[k]) throw new Error(`pack.js: --${k} is required`);
  }
  return out;
}

function copyTree(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.isFile()) fs.copyFileSync(src, dst);
  }
}

const readJson5 = (file) => JSON5.parse(fs.readFileSync(file, 'utf8'));

function main() {
  const a = args();
  const module = path.join(a.ets, 'callpush');
  const pkg = path.join(a.stage, 'package');
  fs.rmSync(a.stage, { recursive: true, force: true });
  fs.mkdirSync(pkg, { recursive: true });

  // oh-package.json5: hvigor fills compatibleSdkVersion / compatibleSdkType from the product in
  // the project's build-profile.json5, and obfuscated / artifactType from the build.
  const manifest = readJson5(path.join(module, 'oh-package.json5'));
  const product = readJson5(path.join(a.ets, 'build-profile.json5')).app.products[0];
  const api = /\((\d+)\)/.exec(product.compatibleSdkVersion);
  if (!api) throw new Error(`pack.js: no API level in compatibleSdkVersion "${product.compatibleSdkVersion}"`);
  manifest.compatibleSdkVersion = Number(api[1]);
  manifest.compatibleSdkType = product.runtimeOS;
  manifest.obfuscated = false;
  manifest.artifactType = 'original';
  fs.writeFileSync(path.join(pkg, 'oh-package.json5'), `${JSON.stringify(manifest, null, 2)}\n`);

  fs.copyFileSync(path.join(module, manifest.main), path.join(pkg, manifest.main));
  fs.mkdirSync(path.join(pkg, 'src/main'), { recursive: true });
  const moduleJson = readJson5(path.join(module, 'src/main/module.json5'));
  fs.writeFileSync(path.join(pkg, 'src/main/module.json'), `${JSON.stringify(moduleJson, null, 2)}\n`);
  copyTree(path.join(module, 'src/main/ets'), path.join(pkg, 'src/main/ets'));
  // Every local dependency inside the module (the native module's declaration package).
  for (const spec of Object.values(manifest.dependencies ?? {})) {
    if (typeof spec === 'string' && spec.startsWith('file:./')) {
      const rel = spec.slice('file:'.length);
      copyTree(path.join(module, rel), path.join(pkg, rel));
    }
  }

  for (const lib of a.lib) {
    const [abi, file] = lib.split('=');
    if (!abi || !file) throw new Error(`pack.js: --lib wants <abi>=<path>, not "${lib}"`);
    fs.mkdirSync(path.join(pkg, 'libs', abi), { recursive: true });
    fs.copyFileSync(file, path.join(pkg, 'libs', abi, 'libcallpush_napi.so'));
  }

  fs.copyFileSync(a.readme, path.join(pkg, 'README.md'));
  fs.copyFileSync(a.changelog, path.join(pkg, 'CHANGELOG.md'));
  fs.copyFileSync(a.license, path.join(pkg, 'LICENSE'));
}

try {
  main();
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
}
