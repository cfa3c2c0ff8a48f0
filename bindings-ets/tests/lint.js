#!/usr/bin/env node
// Runs the ArkTS linter (ohos-typescript's ArkTSLinter_1_1, as DevEco Studio does) over .ets files.
//
//   node lint.js <file.ets or directory>...
//
// Directories are searched for .ets files. Prints `file:line:col rule message` per problem and
// exits 1 when there is any error. `libcallpush_napi.so` resolves to the generated declaration of
// the native module and `@kit.<Name>` to the typed fakes in tests/kits.
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require('ohos-typescript');

const here = __dirname;
const root = path.resolve(here, '..');

function etsFiles(p) {
  const stat = fs.statSync(p);
  if (stat.isFile()) return [path.resolve(p)];
  return fs
    .readdirSync(p, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => {
      const child = path.join(p, e.name);
      if (e.isDirectory()) return e.name === 'node_modules' ? [] : etsFiles(child);
      return e.name.endsWith('.ets') ? [path.resolve(child)] : [];
    });
}

const targets = process.argv.slice(2);
if (targets.length === 0) {
  console.error('usage: node lint.js <file.ets or directory>...');
  process.exit(2);
}
const files = targets.flatMap(etsFiles);
if (files.length === 0) {
  console.error(`no .ets files in ${targets.join(' ')}`);
  process.exit(2);
}

const options = {
  target: ts.ScriptTarget.ES2021,
  module: ts.ModuleKind.ES2020,
  moduleResolution: ts.ModuleResolutionKind.NodeJs,
  strict: true,
  noEmit: true,
  allowSyntheticDefaultImports: true,
  esModuleInterop: true,
  baseUrl: root,
  paths: {
    'libcallpush_napi.so': ['callpush/src/main/cpp/types/libcallpush_napi/index.d.ts'],
    '@kit.*': ['tests/kits/*'],
  },
  incremental: true,
  tsBuildInfoFile: path.join(process.env.ETS_LINT_CACHE || path.join(root, '..', 'target'), 'ets-lint.tsbuildinfo'),
};
const host = ts.createIncrementalCompilerHost(options);
const program = ts.createIncrementalProgramForArkTs({ rootNames: files, options, host });
const diagnostics = ts.ArkTSLinter_1_1.runArkTSLinter(program, undefined, undefined, 'ArkTS_1_1');

let errors = 0;
for (const d of diagnostics) {
  const where = d.file
    ? (() => {
        const p = d.file.getLineAndCharacterOfPosition(d.start || 0);
        return `${path.relative(process.cwd(), d.file.fileName)}:${p.line + 1}:${p.character + 1}`;
      })()
    : '<program>';
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  const rule = (message.match(/\((arkts-[a-z0-9-]+)\)/) || [])[1] || 'arkts';
  const level = d.category === ts.DiagnosticCategory.Error ? 'error' : 'warning';
  if (level === 'error') errors++;
  console.log(`${where} ${rule} ${level}: ${message}`);
}
console.log(`ArkTS linter: ${files.length} file(s), ${errors} error(s), ${diagnostics.length - errors} warning(s)`);
process.exit(errors > 0 ? 1 : 0);
