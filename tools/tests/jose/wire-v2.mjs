// Wire v2 pushes made and opened by an independent JOSE implementation: `jose` (panva, npm),
// pinned by package-lock.json here. Run by tools/tests/independent_jose.rs; nothing of
// callpush runs in this script.
//
//   node wire-v2.mjs make <now>  < nothing
//     Makes its own Ed25519 signing key and X25519 device key, and prints one JSON object:
//     {"keys": {"keys": [<public signing JWK>]}, "device_key": <private X25519 JWK>,
//      "device_kid": <RFC 7638 thumbprint>, "pushes": [{"platform", "case", "raw"}]}
//     `raw` is the push as the platform hands it to the app (docs/wire-contract.md), its
//     `callpush` value a compact JWE: ECDH-ES over X25519, A256GCM, cty callpush+jwt, kid the
//     device key's thumbprint, the plaintext a JWS signed with EdDSA (sign, then encrypt).
//     Some cases are made wrong on purpose; the Rust test holds what each must come to.
//
//   node wire-v2.mjs open  < {"device_key": <private JWK>, "keys": <JWK Set>, "pushes": [<JWE>]}
//     Decrypts each JWE with the device key, verifies the JWS inside with the signing key, and
//     prints one JSON object: {"opened": [{"header", "jws_header", "claims"} | {"error"}]}.

import * as jose from 'jose';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TYP = 'callpush+jwt';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/// A compact JWS of `claims` with `key`, under `kid`.
async function sign(claims, key, kid) {
  return new jose.CompactSign(encoder.encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: TYP })
    .sign(key);
}

/// A compact JWE of `plaintext` to `publicKey`; `header` and `party` (apu/apv) override.
async function encrypt(plaintext, publicKey, kid, header = {}, party = undefined) {
  const jwe = new jose.CompactEncrypt(encoder.encode(plaintext)).setProtectedHeader({
    alg: 'ECDH-ES',
    enc: 'A256GCM',
    kid,
    cty: TYP,
    ...header,
  });
  if (party) jwe.setKeyManagementParameters(party);
  return jwe.encrypt(publicKey);
}

/// The push as `platform` hands it to the app, carrying `token` (docs/wire-contract.md).
function envelope(platform, token) {
  const body = JSON.stringify({ callpush: token });
  switch (platform) {
    case 'harmony':
      return JSON.stringify({ callId: 'sys-jose-1', data: body, header: '{"token":"t"}' });
    case 'fcm':
      return JSON.stringify({ callpush: token, 'google.message_id': '0:1', from: '99' });
    case 'apns':
      return JSON.stringify({ aps: {}, callpush: token });
    case 'wns':
      return ` ${body}\n`;
    default:
      throw new Error(`unknown platform ${platform}`);
  }
}

function claims(evt, now, name = 'Alice') {
  const c = {
    iss: 'jose-server', aud: 'bob', jti: 'j-1', iat: now - 1, exp: now + 29, v: 1, evt,
    cid: 'call-jose-42', from: { id: 'alice', name }, video: true, data: { k: 'v' },
  };
  if (evt === 'cancel') c.reason = 'caller_cancelled';
  return c;
}

/// `jwe` with one character in the middle of its ciphertext changed.
function tamperCiphertext(jwe) {
  const parts = jwe.split('.');
  const c = parts[3];
  const i = Math.floor(c.length / 2);
  parts[3] = c.slice(0, i) + (c[i] === 'A' ? 'B' : 'A') + c.slice(i + 1);
  return parts.join('.');
}

async function make(now) {
  const signing = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const signingJwk = await jose.exportJWK(signing.publicKey);
  signingJwk.kid = await jose.calculateJwkThumbprint(signingJwk);
  const kid = signingJwk.kid;
  const forger = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });

  const device = await jose.generateKeyPair('ECDH-ES', { crv: 'X25519', extractable: true });
  const devicePublic = await jose.exportJWK(device.publicKey);
  const deviceKid = await jose.calculateJwkThumbprint(devicePublic);
  const devicePrivate = await jose.exportJWK(device.privateKey);
  const other = await jose.generateKeyPair('ECDH-ES', { crv: 'X25519', extractable: true });
  const otherKid = await jose.calculateJwkThumbprint(await jose.exportJWK(other.publicKey));

  const ring = await sign(claims('ring', now), signing.privateKey, kid);
  const cases = {
    ring: () => encrypt(ring, device.publicKey, deviceKid),
    'ring-unicode-name': async () =>
      encrypt(await sign(claims('ring', now, '王小明 Zoë 🚀📞'), signing.privateKey, kid), device.publicKey, deviceKid),
    'ring-apu-apv': () =>
      encrypt(ring, device.publicKey, deviceKid, {}, {
        apu: encoder.encode('callpush-server'),
        apv: encoder.encode(deviceKid),
      }),
    'ring-application-cty': () => encrypt(ring, device.publicKey, deviceKid, { cty: `application/${TYP}` }),
    cancel: async () => encrypt(await sign(claims('cancel', now), signing.privateKey, kid), device.publicKey, deviceKid),
    stale: async () => {
      const c = claims('ring', now);
      c.iat = now - 600;
      c.exp = now - 570;
      return encrypt(await sign(c, signing.privateKey, kid), device.publicKey, deviceKid);
    },
    'tampered-ciphertext': async () => tamperCiphertext(await encrypt(ring, device.publicKey, deviceKid)),
    'wrong-device-key': () => encrypt(ring, other.publicKey, otherKid),
    'wrong-device-key-claiming-kid': () => encrypt(ring, other.publicKey, deviceKid),
    'enc-a128gcm': () => encrypt(ring, device.publicKey, deviceKid, { enc: 'A128GCM' }),
    'alg-ecdh-es-a256kw': () => encrypt(ring, device.publicKey, deviceKid, { alg: 'ECDH-ES+A256KW' }),
    'cty-jwt': () => encrypt(ring, device.publicKey, deviceKid, { cty: 'JWT' }),
    'forged-signature': async () =>
      encrypt(await sign(claims('ring', now), forger.privateKey, kid), device.publicKey, deviceKid),
    'not-encrypted': async () => ring,
  };

  const pushes = [];
  for (const platform of ['harmony', 'fcm', 'apns', 'wns']) {
    for (const [name, build] of Object.entries(cases)) {
      pushes.push({ platform, case: name, raw: envelope(platform, await build()) });
    }
  }
  console.log(JSON.stringify({
    keys: { keys: [signingJwk] },
    device_key: devicePrivate,
    device_kid: deviceKid,
    pushes,
  }));
}

async function open() {
  const input = JSON.parse(await readStdin());
  const deviceKey = await jose.importJWK(input.device_key, 'ECDH-ES');
  const keys = jose.createLocalJWKSet(input.keys);
  const opened = [];
  for (const jwe of input.pushes) {
    try {
      const { plaintext, protectedHeader } = await jose.compactDecrypt(jwe, deviceKey, {
        keyManagementAlgorithms: ['ECDH-ES'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      const jws = decoder.decode(plaintext);
      const verified = await jose.compactVerify(jws, keys, { algorithms: ['EdDSA'] });
      opened.push({
        header: protectedHeader,
        jws_header: verified.protectedHeader,
        claims: JSON.parse(decoder.decode(verified.payload)),
      });
    } catch (e) {
      opened.push({ error: `${e.code ?? e.name}: ${e.message}` });
    }
  }
  console.log(JSON.stringify({ opened }));
}

const [mode, now] = process.argv.slice(2);
if (mode === 'make' && now) {
  await make(Number(now));
} else if (mode === 'open') {
  await open();
} else {
  console.error('usage: node wire-v2.mjs make <now> | open < input.json');
  process.exit(2);
}
