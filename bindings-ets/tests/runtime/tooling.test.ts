// The suite's own guards fail when they should: the ArkTS linter on a non-ArkTS file, and the
// drift check on a modified generated file.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ets = process.env.CALLPUSH_ETS_ROOT ?? path.resolve(__dirname, '../../../../../bindings-ets');
const library = process.env.CALLPUSH_LIBRARY ?? path.resolve(ets, '../target/debug/libcallpush.so');

test('the ArkTS linter refuses a file outside the ArkTS subset, naming file, line and rule', () => {
  const lint = spawnSync('node', [path.join(ets, 'tests/lint.js'), path.join(ets, 'tests/fixtures/lint-bad.ets')], {
    encoding: 'utf8',
    env: { ...process.env, ETS_LINT_CACHE: fs.mkdtempSync(path.join(os.tmpdir(), 'ets-lint-')) },
  });
  assert.equal(lint.status, 1, lint.stdout + lint.stderr);
  assert.match(lint.stdout, /lint-bad\.ets:3:\d+ arkts-no-any-unknown error/);
  assert.match(lint.stdout, /lint-bad\.ets:4:\d+ arkts-no-untyped-obj-literals error/);
});

test('the drift check passes on the committed files and fails on a modified one', () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ets-drift-'));
  for (const f of [
    'callpush/src/main/ets/generated/callpush.ets',
    'callpush/src/main/cpp/types/libcallpush_napi/index.d.ts',
    'bridge/src/generated.rs',
  ]) {
    fs.mkdirSync(path.dirname(path.join(copy, f)), { recursive: true });
    fs.copyFileSync(path.join(ets, f), path.join(copy, f));
  }
  const check = (): ReturnType<typeof spawnSync> =>
    spawnSync(path.join(ets, 'tests/check-drift.sh'), [library, copy], { encoding: 'utf8' });
  const clean = check();
  assert.equal(clean.status, 0, `${clean.stdout}${clean.stderr}`);
  const edited = path.join(copy, 'callpush/src/main/ets/generated/callpush.ets');
  fs.appendFileSync(edited, '\n// a hand edit\n');
  const drifted = check();
  assert.equal(drifted.status, 1);
  assert.match(
    String(drifted.stderr),
    /bindings-ets\/callpush\/src\/main\/ets\/generated\/callpush\.ets is not what the generator writes: run bindings-ets\/generate\.sh/,
  );
});
