// The API tour through the TypeScript client @hey-api/openapi-ts generated from the server's live
// /openapi.json (tests/openapi-clients/run.sh generates it into ./gen beside a copy of this file,
// compiles both with tsc --strict and runs this).
//
// Every answer goes through the generated SDK, which validates it with the operation's generated
// zod schema. The tour then decodes the raw JSON of each answer with that schema (zod keeps only
// the fields a schema declares) and compares the result with the JSON: the same fields, each with
// its value and JSON type (an int64 the schema turns into a bigint must hold the same integer).
// A device's call status and an API key's call details, which `GET /v1/calls/{call_id}` answers,
// must narrow on `view` to `CallStatus` and `CallDetail` with every delivery and timeline entry:
// tsc checks that the fields read below exist on the narrowed types.
//
// Usage: node out/tour.js BASE_URL API_KEY USER DEVICE_TOKEN
//   DEVICE_TOKEN is USER's, and USER has no installations yet.

import type { z } from 'zod';

import { createClient, createConfig } from './gen/client';
import {
  answerCall,
  cancelCall,
  createCall,
  declineCall,
  deleteInstallation,
  deleteUserInstallations,
  getCall,
  healthz,
  putInstallation,
  putNotifications,
} from './gen/sdk.gen';
import * as s from './gen/zod.gen';

class Dropped extends Error {}

/** Throws Dropped unless `decoded` holds exactly the fields of `raw`, with their values and types. */
function compare(decoded: unknown, raw: unknown, where: string): void {
  if (raw === null) {
    if (decoded !== null) throw new Dropped(`${where}: ${String(decoded)} is not null`);
  } else if (Array.isArray(raw)) {
    if (!Array.isArray(decoded) || decoded.length !== raw.length) {
      throw new Dropped(`${where}: ${JSON.stringify(decoded)} is not the list ${JSON.stringify(raw)}`);
    }
    raw.forEach((item, i) => compare(decoded[i], item, `${where}[${i}]`));
  } else if (typeof raw === 'object') {
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
      throw new Dropped(`${where}: decoded ${String(decoded)} from an object`);
    }
    const got = decoded as Record<string, unknown>;
    const want = raw as Record<string, unknown>;
    for (const key of Object.keys(want)) {
      if (!(key in got)) throw new Dropped(`${where}.${key}: dropped (${JSON.stringify(want[key])})`);
      compare(got[key], want[key], `${where}.${key}`);
    }
    for (const key of Object.keys(got)) {
      if (!(key in want)) throw new Dropped(`${where}.${key}: decoded but not in the JSON`);
    }
  } else if (typeof decoded === 'bigint') {
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || decoded !== BigInt(raw)) {
      throw new Dropped(`${where}: ${decoded} is not ${JSON.stringify(raw)}`);
    }
  } else if (typeof decoded !== typeof raw || decoded !== raw) {
    throw new Dropped(`${where}: ${JSON.stringify(decoded)} (${typeof decoded}) is not ${JSON.stringify(raw)}`);
  }
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

const checked: string[] = [];
/** The raw body of the last answer, as the server sent it. */
let lastRaw = '';

/** The SDK's answer, after decoding its raw JSON with `schema` and comparing the two. */
async function answer<T>(
  name: string,
  call: Promise<Answer<T>>,
  status: number,
  schema: z.ZodType | null,
): Promise<{ data: T; raw: unknown }> {
  const result = await call;
  const raw: unknown = lastRaw === '' ? null : JSON.parse(lastRaw);
  if (result.response.status !== status) {
    throw new Error(`${name}: HTTP ${result.response.status}, not ${status}: ${lastRaw}`);
  }
  if (schema === null) {
    if (raw !== null) throw new Error(`${name}: expected no body, got ${lastRaw}`);
  } else {
    compare(schema.parse(raw), raw, name);
    const sdk = status < 300 ? result.data : result.error;
    compare(sdk, raw, `${name} (as the SDK returned it)`);
  }
  checked.push(`${name} (${status})`);
  return { data: (status < 300 ? result.data : result.error) as T, raw };
}

function check(condition: boolean, what: string, value: unknown): void {
  if (!condition) throw new Error(`${what}: ${JSON.stringify(value)}`);
}

async function main(): Promise<void> {
  const [base, apiKey, user, deviceToken] = process.argv.slice(2);
  const client = (token: string) => {
    const c = createClient(createConfig({ baseUrl: base, auth: () => token }));
    c.interceptors.response.use(async (response) => {
      lastRaw = await response.clone().text();
      return response;
    });
    return c;
  };
  const device = client(deviceToken);
  const backend = client(apiKey);

  // Register the user's phone and tablet, report the tablet's notifications off, renew it.
  const phone = { platform: 'fcm' as const, token: 'fcm-token-typescript-0123456789', ttl_seconds: 86400 };
  const lease = await answer(
    'register',
    putInstallation({ client: device, path: { installation_id: 'phone' }, body: phone }),
    200,
    s.zPutInstallationResponse,
  );
  check(lease.data.installation_id === 'phone' && lease.data.signing_keys.length > 0, 'lease', lease.data);
  const tablet = { platform: 'harmony' as const, token: 'MAMzLgTypeScriptTablet0123456' };
  await answer(
    'register tablet',
    putInstallation({ client: device, path: { installation_id: 'tablet' }, body: tablet }),
    200,
    s.zPutInstallationResponse,
  );
  await answer(
    'notifications off',
    putNotifications({ client: device, path: { installation_id: 'tablet' }, body: { enabled: false } }),
    204,
    null,
  );
  const renewed = await answer(
    'renew',
    putInstallation({ client: device, path: { installation_id: 'tablet' }, body: tablet }),
    200,
    s.zPutInstallationResponse,
  );
  check(renewed.data.notifications?.enabled === false, 'notifications', renewed.data);

  // The backend rings the user; the phone long-polls, then answers.
  const ring = { from: { id: 'alice', name: 'Alice' }, to: [user], video: true, ring_seconds: 30 };
  const created = await answer('ring', createCall({ client: backend, body: ring }), 202, s.zCreateCallResponse);
  const callId = created.data.call_id;
  check(created.data.deliveries.length === 2, 'deliveries', created.data);
  const polled = await answer(
    'long-poll',
    getCall({ client: device, path: { call_id: callId }, query: { wait: 1 } }),
    200,
    s.zGetCallResponse,
  );
  if (polled.data.view !== 'status') throw new Error(`a device got ${JSON.stringify(polled.data)}`);
  check(polled.data.state === 'ringing', 'long-poll', polled.data);
  const answered = await answer(
    'answer',
    answerCall({ client: device, path: { call_id: callId }, body: { installation_id: 'phone' } }),
    200,
    s.zAnswerCallResponse,
  );
  check(answered.data.answered_by === 'phone' && answered.data.view === 'status', 'answer', answered.data);
  const refused = await answer(
    'decline too late',
    declineCall({ client: device, path: { call_id: callId }, body: { installation_id: 'tablet' } }),
    409,
    s.zErrorBody,
  );
  const conflict = s.zErrorBody.parse(refused.raw);
  check(conflict.error.code === 'call_not_ringing' && conflict.call?.state === 'answered', 'conflict', conflict);

  // The backend reads the call's details: its deliveries and timeline, once settled.
  let detail = await answer('details', getCall({ client: backend, path: { call_id: callId } }), 200, s.zGetCallResponse);
  for (let i = 0; i < 100; i++) {
    if (detail.data.view !== 'detail') throw new Error(`an API key got ${JSON.stringify(detail.data)}`);
    if (!detail.data.deliveries.some((d) => d.status === 'pending' || d.status === 'sending')) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
    detail = await answer('details', getCall({ client: backend, path: { call_id: callId } }), 200, s.zGetCallResponse);
  }
  const details = detail.data;
  if (details.view !== 'detail') throw new Error(`an API key got ${JSON.stringify(details)}`);
  check(details.state === 'answered' && details.deliveries.length >= 2 && details.timeline.length >= 3, 'details', details);
  check(details.timeline.every((e) => Number.isSafeInteger(e.at_ms)), 'timeline', details.timeline);
  check(details.created_at_ms <= details.timeline[details.timeline.length - 1].at_ms, 'created_at_ms', details);

  // A second call, cancelled by the backend.
  const second = await answer('ring again', createCall({ client: backend, body: ring }), 202, s.zCreateCallResponse);
  const cancelled = await answer(
    'cancel',
    cancelCall({ client: backend, path: { call_id: second.data.call_id }, body: { reason: 'caller_cancelled' } }),
    200,
    s.zCancelCallResponse,
  );
  check(cancelled.data.state === 'cancelled', 'cancel', cancelled.data);
  await answer(
    'cancelled details',
    getCall({ client: backend, path: { call_id: second.data.call_id } }),
    200,
    s.zGetCallResponse,
  );

  // The user signs out on the phone; the backend removes what is left.
  await answer('unregister', deleteInstallation({ client: device, path: { installation_id: 'phone' } }), 204, null);
  await answer(
    'unregister again',
    deleteInstallation({ client: device, path: { installation_id: 'phone' } }),
    404,
    s.zErrorBody,
  );
  const removed = await answer(
    'remove the user',
    deleteUserInstallations({ client: backend, path: { user_id: user } }),
    200,
    s.zDeleteUserInstallationsResponse,
  );
  check(removed.data.removed === 1, 'removed', removed.data);
  await answer('health', healthz({ client: client('') }), 200, s.zHealthzResponse);

  // The comparison is not vacuous: a field the schema does not declare is caught.
  const surprise = { ...(detail.raw as object), surprise: 1 };
  try {
    compare(s.zGetCallResponse.parse(surprise), surprise, 'control');
    throw new Error('the comparison missed a field the client does not declare');
  } catch (e) {
    if (!(e instanceof Dropped)) throw e;
  }

  console.log(`typescript: ${checked.length} answers decoded without losing a field: ${checked.join(', ')}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
