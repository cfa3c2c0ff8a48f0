// The Client through the generated ArkTS API and the N-API bridge: async calls (Promises) against
// an ArkTS HttpClient, callbacks from Rust threads, synchronous SystemCallUi reports from inside
// handlePush, typed errors both ways, object lifetimes, and values of every kind round-tripping.
import { afterEach, test } from 'node:test';
import * as assert from 'node:assert/strict';

import {
  CallDirection,
  CallEventCancelled,
  CallEventError,
  CallEventIncoming,
  CallEventRegistrationChanged,
  CallEventStateChanged,
  CallState,
  CallpushErrorAccessToken,
  CallpushErrorCallNotFound,
  CallpushErrorInvalidArgument,
  CallpushErrorKind,
  CallpushErrorNetwork,
  CancelReason,
  Client,
  ClientConfig,
  EndReason,
  ErrorKind,
  HttpErrorTimeout,
  IncomingCallError,
  Outcome,
  Platform,
  RefreshOutcomeNotDue,
  RegisterPushOptions,
  SignalledCall,
  SystemReport,
  UniffiObjectDestroyedError,
} from '../../callpush/src/main/ets/generated/callpush';
import { Events, FakeCallUi, FakeRegistrar, FakeTokens, Signer, USER, tempDir, until } from './support';

interface World {
  client: Client;
  http: FakeRegistrar;
  tokens: FakeTokens;
  ui: FakeCallUi;
  events: Events;
  signer: Signer;
}

const open: World[] = [];

function world(): World {
  const signer = new Signer();
  const http = new FakeRegistrar(signer);
  const tokens = new FakeTokens();
  const ui = new FakeCallUi();
  const events = new Events();
  const config = new ClientConfig('https://calls.example.com', tempDir(), Platform.HARMONY, undefined, signer.keysJson(), USER);
  const client = new Client(config, http, tokens, ui, events);
  const w = { client, http, tokens, ui, events, signer };
  open.push(w);
  return w;
}

afterEach(() => {
  for (const w of open.splice(0)) {
    w.http.closed = true;
    w.client.destroy();
  }
});

test('registerPush resolves with the lease, through async HttpClient and AccessTokenProvider calls', async () => {
  const { client, http, events, tokens } = world();
  const registration = await client.registerPush('harmony-push-token-0123456789', new RegisterPushOptions(3600));
  assert.equal(registration.installationId, client.installationId());
  assert.equal(registration.platform, Platform.HARMONY);
  assert.equal(registration.ttlSeconds, 3600);
  assert.equal(typeof registration.expiresAt, 'bigint');
  assert.ok(registration.expiresAt > registration.serverTime);
  assert.equal(registration.userId, USER);
  assert.equal(registration.appId, undefined);
  assert.equal(registration.signingKeys.length, 1);
  assert.equal(registration.signingKeys[0].kty, 'OKP');
  assert.ok(tokens.asked >= 1);
  // The request Rust built: headers as a Map, the body as bytes.
  const put = http.requests.find((r) => r.method === 'PUT');
  assert.ok(put !== undefined);
  assert.equal(put.headers.get('Authorization'), 'Bearer token');
  assert.ok(put.body instanceof Uint8Array);
  const body = JSON.parse(Buffer.from(put.body).toString('utf8')) as Record<string, unknown>;
  assert.equal(body.token, 'harmony-push-token-0123456789');
  assert.equal(body.platform, 'harmony');
  assert.equal(put.timeoutMs, 15000);
  await events.next(CallEventRegistrationChanged);
  assert.deepEqual(client.registration()?.installationId, registration.installationId);
  // refresh: the enum with fields comes back as its variant class.
  const refreshed = await client.refresh(undefined);
  assert.ok(refreshed instanceof RefreshOutcomeNotDue, `got ${refreshed.constructor.name}`);
  assert.equal(typeof refreshed.renewAt, 'bigint');
  assert.equal(typeof client.nextWakeup(), 'bigint');
  await client.unregisterPush();
  assert.equal(client.registration(), undefined);
});

test('an HttpClient failure crosses to Rust as the typed HttpError, and back as CallpushError.Network', async () => {
  const { client, http } = world();
  for (let i = 0; i < 4; i++) http.failures.push(new HttpErrorTimeout(`upstream ${i} timed out`));
  await assert.rejects(client.registerPush('harmony-push-token-0123456789', new RegisterPushOptions()), (e: unknown) => {
    assert.ok(e instanceof CallpushErrorNetwork, `got ${e}`);
    assert.equal(e.kind, CallpushErrorKind.NETWORK);
    assert.match(e.message, /upstream 3 timed out \(after 4 attempts\)/);
    return true;
  });
});

test('an HttpClient throwing something else is an unexpected error Rust reports as network', async () => {
  const { client, http } = world();
  for (let i = 0; i < 4; i++) http.failures.push(new TypeError('fetch is broken'));
  await assert.rejects(client.registerPush('harmony-push-token-0123456789', new RegisterPushOptions()), (e: unknown) => {
    assert.ok(e instanceof CallpushErrorNetwork, `got ${e}`);
    assert.match(e.message, /TypeError: fetch is broken/);
    return true;
  });
});

test('an AccessTokenProvider error becomes CallpushError.AccessToken with its detail', async () => {
  const { client, tokens } = world();
  tokens.refuse = 'nobody is signed in';
  await assert.rejects(client.registerPush('harmony-push-token-0123456789', new RegisterPushOptions()), (e: unknown) => {
    assert.ok(e instanceof CallpushErrorAccessToken, `got ${e}`);
    assert.match(e.message, /nobody is signed in/);
    return true;
  });
});

test('handlePush reports to the system call UI on the JS thread before it returns', () => {
  const { client, ui, events, signer } = world();
  const outcome = client.handlePush(signer.harmonyRing('call-sync-1', { name: 'Alice 👋', video: true }));
  assert.equal(outcome.outcome, Outcome.RING);
  assert.equal(outcome.report, SystemReport.RING);
  assert.equal(outcome.call?.callerName, 'Alice 👋');
  assert.equal(outcome.call?.systemCallId, 'sys-call-sync-1');
  // Synchronously: no await between handlePush and these checks.
  assert.equal(ui.reports.length, 1);
  assert.equal(ui.reports[0].method, 'reportIncomingCall');
  const call = ui.reports[0].call;
  assert.ok(call !== undefined);
  assert.equal(call.callId, 'call-sync-1');
  assert.equal(call.state, CallState.RINGING);
  assert.equal(call.direction, CallDirection.INCOMING);
  assert.equal(call.video, true);
  assert.equal(call.peerName, 'Alice 👋');
  const incoming = events.events.find((e) => e instanceof CallEventIncoming);
  assert.ok(incoming instanceof CallEventIncoming);
  assert.equal(incoming.call.callId, 'call-sync-1');
  // The same push again: a duplicate, reported as line busy.
  const again = client.handlePush(signer.harmonyRing('call-sync-1'));
  assert.equal(again.outcome, Outcome.DUPLICATE);
  const busy = ui.reports.find((r) => r.method === 'reportIncomingCallError');
  assert.equal(busy?.reason, IncomingCallError.LINE_BUSY);
  assert.equal(busy?.systemCallId, 'sys-call-sync-1');
});

test('a SystemCallUi error crosses to Rust typed: the call fails and an error event says why', async () => {
  const { client, ui, events, signer } = world();
  ui.refuse = 'the system refused: no VoIP permission';
  client.handlePush(signer.harmonyRing('call-refused-1'));
  const error = await events.next(CallEventError, (e) => e.error.kind === ErrorKind.REPORT_FAILED);
  assert.match(error.error.message, /no VoIP permission/);
  assert.equal(error.error.callId, 'call-refused-1');
  assert.equal(client.call('call-refused-1')?.state, CallState.ENDED);
});

test('a cancel found by the long-poll arrives from a Rust thread: events and reports, no deadlock', async () => {
  const { client, http, ui, events, signer } = world();
  http.calls.set('call-cancel-1', { state: 'cancelled', reason: 'caller_cancelled' });
  client.handlePush(signer.harmonyRing('call-cancel-1'));
  const cancelled = await events.next(CallEventCancelled, (e) => e.call.callId === 'call-cancel-1');
  assert.equal(cancelled.reason, CancelReason.CALLER_CANCELLED);
  assert.equal(cancelled.call.state, CallState.ENDED);
  assert.equal(cancelled.call.endReason, EndReason.CALLER_CANCELLED);
  await until('the ended state reported', () =>
    ui.reports.find((r) => r.method === 'reportCallState' && r.call?.callId === 'call-cancel-1' ? r : undefined),
  );
  // The long-poll request came with its wait and a timeout above it.
  const poll = http.requests.find((r) => r.method === 'GET' && r.url.includes('/v1/calls/call-cancel-1'));
  assert.ok(poll !== undefined && poll.timeoutMs > 10000);
});

test('answer resolves with the answered call; unknown calls are typed errors', async () => {
  const { client, http, events, signer } = world();
  http.calls.set('call-answer-1', { state: 'ringing' });
  client.handlePush(signer.harmonyRing('call-answer-1'));
  const answered = await client.answer('call-answer-1');
  assert.equal(answered.state, CallState.ANSWERED);
  await events.next(CallEventStateChanged, (e) => e.call.state === CallState.ANSWERED);
  assert.equal(client.mediaConnected('call-answer-1').state, CallState.ACTIVE);
  const ended = await client.hangUp('call-answer-1');
  assert.equal(ended.endReason, EndReason.HUNG_UP);
  await assert.rejects(client.answer('call-nobody-knows'), CallpushErrorCallNotFound);
  assert.throws(() => client.endCall('call-nobody-knows', EndReason.FAILED), CallpushErrorCallNotFound);
  assert.throws(
    () => client.reportOutgoingCall('bad id with spaces', 'user-carol', undefined, false),
    (e: unknown) => e instanceof CallpushErrorInvalidArgument && /call_id must be/.test(e.message),
  );
});

test('values round-trip: maps, optionals, bigints, sequences and unicode strings', () => {
  const { client } = world();
  const data = new Map<string, string>([
    ['room', 'r-1'],
    ['emoji', '📞 ☎️'],
    ['empty', ''],
  ]);
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 60);
  const outcome = client.reportIncomingFromSignalling(
    new SignalledCall('call-signal-1', 'user-carol', 'Carol — ζ', true, expiresAt, undefined, data),
  );
  assert.equal(outcome.outcome, Outcome.RING);
  const call = outcome.call;
  assert.ok(call !== undefined);
  assert.deepEqual(call.data, data);
  assert.equal(call.callerName, 'Carol — ζ');
  assert.equal(call.expiresAt, expiresAt);
  assert.equal(call.systemCallId, 'call-signal-1');
  assert.equal(call.reason, undefined);
  const calls = client.calls();
  assert.ok(Array.isArray(calls));
  assert.deepEqual(calls.map((c) => c.callId), ['call-signal-1']);
  assert.deepEqual(client.call('call-signal-1')?.data, data);
  assert.equal(client.call('call-unknown'), undefined);
  const outgoing = client.reportOutgoingCall('call-out-1', 'user-dave', undefined, false);
  assert.equal(outgoing.state, CallState.DIALING);
  assert.equal(outgoing.peerName, undefined);
  assert.equal(outgoing.data.size, 0);
  // A map in: FCM data as the platform delivers it (not a callpush push: ignored).
  const ignored = client.handlePushData(new Map([['hello', 'world']]));
  assert.equal(ignored.outcome, Outcome.IGNORE);
});

test('lifetimes: destroy is idempotent, later calls throw a clear error, async ones reject', async () => {
  const { client } = world();
  const id = client.installationId();
  assert.match(id, /\S/);
  client.destroy();
  client.destroy();
  assert.throws(() => client.installationId(), UniffiObjectDestroyedError);
  assert.throws(() => client.installationId(), /Client was used after destroy\(\)/);
  await assert.rejects(client.answer('x'), UniffiObjectDestroyedError);
});

test('a constructor error is typed, and the handed-in ArkTS objects are released', () => {
  const signer = new Signer();
  assert.throws(
    () =>
      new Client(
        new ClientConfig('https://calls.example.com', '  ', Platform.HARMONY),
        new FakeRegistrar(signer),
        new FakeTokens(),
        new FakeCallUi(),
        new Events(),
      ),
    (e: unknown) => e instanceof CallpushErrorInvalidArgument && /data_dir is empty/.test(e.message),
  );
  assert.throws(
    () =>
      new Client(
        new ClientConfig('ftp://nope', tempDir(), Platform.HARMONY),
        new FakeRegistrar(signer),
        new FakeTokens(),
        new FakeCallUi(),
        new Events(),
      ),
    CallpushErrorInvalidArgument,
  );
});

test('a CallListener that throws is logged, and the Rust call it interrupted still completes', (t) => {
  const signer = new Signer();
  const logged: string[] = [];
  t.mock.method(console, 'error', (message: string) => {
    logged.push(message);
  });
  const throwing = new (class extends Events {
    override onEvent(): void {
      throw new Error('listener bug');
    }
  })();
  const config = new ClientConfig('https://calls.example.com', tempDir(), Platform.HARMONY, undefined, signer.keysJson(), USER);
  const http = new FakeRegistrar(signer);
  const client = new Client(config, http, new FakeTokens(), new FakeCallUi(), throwing);
  open.push({ client, http, tokens: new FakeTokens(), ui: new FakeCallUi(), events: throwing, signer });
  const outcome = client.handlePush(signer.harmonyRing('call-listener-bug'));
  assert.equal(outcome.outcome, Outcome.RING);
  assert.ok(logged.some((m) => /CallListener\.onEvent threw: Error: listener bug/.test(m)), logged.join('\n'));
});

test('many concurrent async calls, answered out of order, each resolve with their own result', async () => {
  const { client, http } = world();
  http.delayMs = () => Math.floor(Math.random() * 20);
  const tokens = Array.from({ length: 12 }, (_, i) => `harmony-push-token-${String(i).padStart(4, '0')}-abcdef`);
  const registrations = await Promise.all(tokens.map((t) => client.registerPush(t, new RegisterPushOptions())));
  assert.deepEqual(
    registrations.map((r) => r.token),
    tokens,
  );
  assert.equal(http.requests.filter((r) => r.method === 'PUT').length, tokens.length);
});
