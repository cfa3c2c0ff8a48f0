// Every shared vector in tests/vectors, through the generated ArkTS API as HarmonyOS apps call it
// (inspectPush), the same check as bindings-kotlin's VectorsTest.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  CallpushError,
  CallpushErrorInvalidKey,
  CallpushErrorKind,
  CancelReason,
  HandleOutcome,
  Outcome,
  Platform,
  RejectionKind,
  SystemReport,
  inspectPush,
} from '../../callpush/src/main/ets/generated/callpush';

const dir = process.env.CALLPUSH_VECTORS ?? path.resolve(__dirname, '../../../../../tests/vectors');

interface Vector {
  name: string;
  platform: string;
  raw: string;
  keys: object;
  now: number;
  /** The private X25519 JWK a wire v2 push is sealed to; absent on v1 vectors. */
  device_key?: object;
  expected: object;
}

/** The decision in the shape of the vectors (the `inspect` JSON, errors by kind). */
function toJson(d: HandleOutcome): object {
  const out: Record<string, unknown> = {
    outcome: Outcome[d.outcome].toLowerCase(),
    report: SystemReport[d.report].toLowerCase(),
  };
  if (d.call !== undefined) {
    const c = d.call;
    out.call = {
      call_id: c.callId,
      caller_id: c.callerId,
      caller_name: c.callerName ?? null,
      video: c.video,
      callee: c.callee,
      issued_at: Number(c.issuedAt),
      expires_at: Number(c.expiresAt),
      reason: c.reason === undefined ? null : CancelReason[c.reason].toLowerCase(),
      system_call_id: c.systemCallId ?? null,
      data: Object.fromEntries(c.data),
    };
  }
  if (d.error !== undefined) {
    assert.ok(d.error.message.length > 0, 'errors carry a message');
    out.error = { kind: RejectionKind[d.error.kind].toLowerCase() };
  }
  return out;
}

/** Key order does not matter in the vectors: compare sorted. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

test('every vector reaches its expected decision', () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length >= 145, `vectors found in ${dir}: ${files.length}`);
  const failures: string[] = [];
  for (const file of files) {
    const v = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Vector;
    const platform = Platform[v.platform.toUpperCase() as keyof typeof Platform];
    assert.notEqual(platform, undefined, `${file}: platform ${v.platform}`);
    const deviceKey = v.device_key === undefined ? undefined : JSON.stringify(v.device_key);
    const decision = inspectPush(platform, v.raw, JSON.stringify(v.keys), BigInt(v.now), deviceKey);
    const actual = canonical(toJson(decision));
    const expected = canonical(v.expected);
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      failures.push(`${file}:\n  expected ${JSON.stringify(expected)}\n  actual   ${JSON.stringify(actual)}`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${files.length} vectors failed`);
});

test('an unusable key set is a typed error', () => {
  assert.throws(
    () => inspectPush(Platform.FCM, '{}', '{"kty":"RSA"}', 0n),
    (e: unknown) => {
      assert.ok(e instanceof CallpushErrorInvalidKey, `got ${e}`);
      assert.ok(e instanceof CallpushError);
      assert.ok(e instanceof Error);
      assert.equal(e.kind, CallpushErrorKind.INVALID_KEY);
      assert.match(e.message, /invalid key/);
      return true;
    },
  );
});
