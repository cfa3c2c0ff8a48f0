// The runtime the generator writes into callpush.ets, tested directly: a copy of the generated
// module with its internals exported (made by run.sh). Covers the converters core does not use
// today (timestamps, durations) and the buffer format's edge cases.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import {
  UniffiHandleMap,
  UniffiReader,
  UniffiWriter,
  uniffiDurationRead,
  uniffiDurationWrite,
  uniffiTimestampRead,
  uniffiTimestampWrite,
  uniffiUtf8Decode,
  uniffiUtf8Encode,
} from '../internals/callpush_internals';

function roundTrip<T>(write: (w: UniffiWriter, v: T) => void, read: (r: UniffiReader) => T, v: T): T {
  const w = new UniffiWriter();
  write(w, v);
  const r = new UniffiReader(w.finish());
  const out = read(r);
  r.finish();
  return out;
}

test('timestamps: seconds and nanoseconds since the epoch, before and after it, as uniffi writes them', () => {
  // Not -1 ms: uniffi's format puts the sign on the seconds, so (0 s, 1 ms) is +1 ms in Rust too.
  for (const ms of [0, 1, 999, 1767225600123, -1000, -1500, -86400000]) {
    assert.equal(roundTrip(uniffiTimestampWrite, uniffiTimestampRead, new Date(ms)).getTime(), ms);
  }
  const w = new UniffiWriter();
  uniffiTimestampWrite(w, new Date(-1500));
  // uniffi: -1 s and 500 000 000 ns, the sign on the seconds.
  assert.deepEqual([...w.finish()], [255, 255, 255, 255, 255, 255, 255, 255, 29, 205, 101, 0]);
  assert.throws(() => uniffiTimestampWrite(new UniffiWriter(), new Date(Number.NaN)), RangeError);
});

test('durations: milliseconds, with sub-millisecond precision', () => {
  for (const ms of [0, 1, 1.5, 999.999, 86400000]) {
    assert.equal(roundTrip(uniffiDurationWrite, uniffiDurationRead, ms), ms);
  }
  assert.throws(() => uniffiDurationWrite(new UniffiWriter(), -1), RangeError);
});

test('integers are range-checked, 64-bit ones are bigints', () => {
  const w = new UniffiWriter();
  assert.throws(() => w.writeU8(256), RangeError);
  assert.throws(() => w.writeI32(1.5), RangeError);
  assert.throws(() => w.writeU64(-1n), RangeError);
  w.writeU64(18446744073709551615n);
  w.writeI64(-9223372036854775808n);
  w.writeF64(0.1);
  w.writeBool(true);
  const r = new UniffiReader(w.finish());
  assert.equal(r.readU64(), 18446744073709551615n);
  assert.equal(r.readI64(), -9223372036854775808n);
  assert.equal(r.readF64(), 0.1);
  assert.equal(r.readBool(), true);
  r.finish();
  assert.throws(() => new UniffiReader(new Uint8Array([1])).readI32(), /read past the end/);
  assert.throws(() => new UniffiReader(new Uint8Array([1])).finish(), /1 unread bytes/);
});

test('UTF-8 matches Node for every plane, and lone surrogates become U+FFFD', () => {
  for (const s of ['', 'ascii', 'é ñ ß', '€ 中文', '😀 📞 👋🏽', '\u0000']) {
    assert.deepEqual(Buffer.from(uniffiUtf8Encode(s)), Buffer.from(s, 'utf8'));
    assert.equal(uniffiUtf8Decode(Buffer.from(s, 'utf8')), s);
  }
  assert.equal(uniffiUtf8Decode(uniffiUtf8Encode('a\ud800b')), 'a\ufffdb');
});

test('foreign handles are odd, so Rust tells them from its own', () => {
  const map = new UniffiHandleMap<string>();
  const a = map.insert('a');
  const b = map.clone(a);
  assert.equal(a % 2n, 1n);
  assert.equal(b % 2n, 1n);
  assert.notEqual(a, b);
  map.remove(a);
  assert.equal(map.get(b), 'a');
  assert.throws(() => map.get(a), /no object for handle/);
});
