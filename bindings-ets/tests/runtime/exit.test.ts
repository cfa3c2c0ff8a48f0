// A process may exit at any moment, also while Rust threads are calling into JS (a long-poll
// answering, a future completing): the bridge stops queueing on the thread-safe function before
// the host frees it. Regression test for an abort at exit seen under load.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

test('a process exiting while Rust threads call into JS ends cleanly', () => {
  const child = path.join(__dirname, 'exit-child.js');
  for (let run = 0; run < 12; run++) {
    const exitAfterMs = run * 3;
    const how = run % 2 === 0 ? 'exit' : 'destroy';
    const result = spawnSync(process.execPath, [child, String(exitAfterMs), how], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.signal, null, `run ${run} (${how} after ${exitAfterMs} ms) died by ${result.signal}: ${result.stderr}`);
    assert.equal(result.status, 0, `run ${run} (${how} after ${exitAfterMs} ms): ${result.stderr}`);
  }
});
