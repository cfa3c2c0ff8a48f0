/**
 * The whole HarmonyOS call flow through the HAR's glue and the real generated API and N-API
 * bridge, against the real `callpush serve` sending through its Push Kit sender to the Push Kit
 * emulator, and the faithful fakes of `pushService`, `voipCall`, `notificationManager` and `http`
 * (tests/kits): every push the app handles is one the server signed and Push Kit accepted.
 *
 * Flows: ring (cold start by the push), answer → ANSWERED → ACTIVE → hang-up → DISCONNECTED,
 * reject, duplicate push → ROUTE_BUSY, a call learned over the app's own connection first → the
 * push is ROUTE_BUSY, outgoing call, missed call (caller cancelled; rang out) with the local
 * notification and the server's MISS_CALL push collapsing into one, an answer on the user's other
 * device (learned by long-poll, not by push), the 10 s limit (a slow caller picture; a late report;
 * an ability that awaits before registering), caller pictures held to the 100 KB / 32 vp rules,
 * VoIP messages that are not callpush calls, forged pushes, and installing twice.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { startAbility, UIAbility } from '@kit.AbilityKit';
import { displaySettings } from '@kit.ArkUI';
import { BusinessError } from '@kit.BasicServicesKit';
import { image } from '@kit.ImageKit';
import { voipCall, voipCallSystem } from '@kit.CallServiceKit';
import { notificationTray } from '@kit.NotificationKit';
import { hilogRecords } from '@kit.PerformanceAnalysisKit';
import { pushKitDevice, pushService } from '@kit.PushKit';
import {
  Call, CallEventCancelled, CallPush, CallEventError, CallEventIncoming, CallEventMissed, CallState, EndReason, ErrorKind,
  GlueErrorKind, Outcome, SignalledCall, VOIP_REPORT_LIMIT_MS, AVATAR_MAX_BYTES,
} from '../../callpush/Index';
import { ServerTokens } from './support/app';
import { Device, until } from './support/device';
import { CallpushServer } from './support/server';

const server = new CallpushServer();
let device: Device | undefined;
/** Each test's limit: a hang fails the test instead of stalling the suite. */
const LIMIT = { timeout: 60_000 };

/** The system call id Push Kit gave the n-th VoIP message (0-based). */
function delivered(n: number): Promise<string> {
  return until(`VoIP message #${n + 1}`, () => pushKitDevice.delivered[n]?.callId);
}

/** The extraData the server sent, from the n-th VoIP message the app got. */
function extraDataOf(n: number): string {
  return (JSON.parse(pushKitDevice.delivered[n].data) as { data: string }).data;
}

/** A caller-picture source that never answers. */
class StuckAvatars {
  asked = 0;
  avatarFor(_call: Call): Promise<image.PixelMap> {
    this.asked += 1;
    return new Promise<image.PixelMap>(() => undefined);
  }
}

/** Caller pictures of a set side in px per call id, made like an app makes them (RGBA pixels). */
class SizedAvatars {
  constructor(private readonly sides: Map<string, number>) {}
  avatarFor(call: Call): Promise<image.PixelMap> {
    const side = this.sides.get(call.callId) ?? 96;
    return image.createPixelMap(new ArrayBuffer(side * side * 4), { size: { height: side, width: side }, editable: false });
  }
}

/** The side, px, of the picture the report of system call `sys` carried. */
async function reportedSide(sys: string, api = 'reportIncomingCall'): Promise<number> {
  const report = voipCallSystem.reports.find((r) => r.callId === sys && r.api === api);
  const info = await report!.attribute!.userProfile.getImageInfo();
  assert.equal(info.size.width, info.size.height);
  return info.size.width;
}

describe('HarmonyOS call flow', { concurrency: false }, () => {
  before(async () => {
    await server.start();
  }, LIMIT);
  after(async () => {
    await server.close();
  }, LIMIT);
  afterEach(async () => {
    const closing = device;
    device = undefined;
    await closing?.close();
  }, LIMIT);

  it('rings: Push Kit starts the app, which reports the call under the system callId within 10 s', LIMIT, async () => {
    device = await Device.open(server);
    const installation = await device.launchAndRegister();
    const token = await pushService.getToken();
    assert.equal(device.callPush().client.registration()?.token, token, 'the Push Token from getToken is registered');
    await device.kill();

    assert.deepEqual(await server.ring('call-1'), [installation]);
    const request = await server.awaitPushKitRequest('10', token);
    assert.equal(request.status, 200);
    const systemCallId = await delivered(0);
    const incoming = await device.event(CallEventIncoming);
    assert.equal(device.launches, 2, 'the system started the app for the push');
    assert.deepEqual(pushKitDevice.lost, [], 'the VoIP callback was registered synchronously in onCreate');
    assert.deepEqual(pushKitDevice.callbackErrors, [], 'the VoIP callback never throws');
    assert.equal(incoming.call.callId, 'call-1');
    assert.equal(incoming.call.systemCallId, systemCallId);
    assert.notEqual(systemCallId, 'call-1');
    assert.equal(incoming.call.data.get('room'), 'r-1');

    await device.callPush().settled();
    const report = voipCallSystem.reports.find((r) => r.api === 'reportIncomingCall');
    assert.ok(report?.attribute, 'reportIncomingCall was made');
    assert.equal(report.callId, systemCallId);
    assert.equal(report.attribute.userName, 'Alice Ødegård');
    assert.equal(report.attribute.voipCallType, voipCall.VoipCallType.VOIP_CALL_VIDEO);
    assert.equal(report.attribute.voipCallState, voipCall.VoipCallState.VOIP_CALL_STATE_RINGING);
    assert.equal(report.attribute.abilityName, 'VoipAbility');
    assert.equal(report.answer, 'ERROR_NONE');
    assert.ok((report.sincePushMs ?? Infinity) < 2000, `reported ${report.sincePushMs} ms after the push`);
    assert.equal(voipCallSystem.stateOf(systemCallId), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING);
    assert.deepEqual(voipCallSystem.violations, []);
    assert.equal(device.callPush().voip.callIdOf(systemCallId), 'call-1');
    assert.deepEqual(device.errors, []);
    const leaks = hilogRecords.all().filter((r) => r.message.includes(token) || r.message.includes(server.token('bob')));
    assert.deepEqual(leaks, [], 'no token is logged');
  });

  it('answer on the banner: ANSWERED, then ACTIVE once media connects, hang-up: DISCONNECTED', LIMIT, async () => {
    device = await Device.open(server);
    const installation = await device.launchAndRegister();
    await server.ring('call-2');
    const sys = await delivered(0);
    await device.event(CallEventIncoming);
    const callPush = device.callPush();
    await callPush.settled();

    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_VOICE_ANSWER);
    const answered = await server.awaitCallState('call-2', 'answered');
    assert.equal(answered.answered_by, installation);
    await callPush.settled();
    assert.equal(callPush.client.call('call-2')?.state, CallState.ANSWERED);
    assert.equal(voipCallSystem.stateOf(sys), voipCall.VoipCallState.VOIP_CALL_STATE_ANSWERED);

    assert.equal(callPush.mediaConnected('call-2').state, CallState.ACTIVE);
    await callPush.settled();
    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_HANGUP);
    await until('the hang-up', () => callPush.client.call('call-2')?.state === CallState.ENDED ? true : undefined);
    await callPush.settled();
    assert.equal(callPush.client.call('call-2')?.endReason, EndReason.HUNG_UP);
    assert.deepEqual(voipCallSystem.reportsOf(sys), [
      `reportIncomingCall ${sys} Alice Ødegård VOIP_CALL_VIDEO → ERROR_NONE`,
      `reportCallStateChange ${sys} VOIP_CALL_STATE_ANSWERED`,
      `reportCallStateChange ${sys} VOIP_CALL_STATE_ACTIVE`,
      `reportCallStateChange ${sys} VOIP_CALL_STATE_DISCONNECTED`,
    ]);
    assert.equal(voipCallSystem.stateOf(sys), undefined, 'the system no longer shows the call');
    assert.equal(callPush.voip.callIdOf(sys), undefined);
    assert.deepEqual(device.errors, []);
  });

  it('reject on the banner declines the call on the server and disconnects it', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await server.ring('call-3', { video: false });
    const sys = await delivered(0);
    await device.event(CallEventIncoming);
    await device.callPush().settled();

    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_REJECT);
    await server.awaitCallState('call-3', 'declined');
    await device.callPush().settled();
    assert.equal(device.callPush().client.call('call-3')?.endReason, EndReason.DECLINED);
    assert.deepEqual(voipCallSystem.reportsOf(sys), [
      `reportIncomingCall ${sys} Alice Ødegård VOIP_CALL_VOICE → ERROR_NONE`,
      `reportCallStateChange ${sys} VOIP_CALL_STATE_DISCONNECTED`,
    ]);
  });

  it('a duplicate VoIP message is reported as line busy and the call keeps ringing', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await server.ring('call-4');
    const first = await delivered(0);
    await device.event(CallEventIncoming);

    // Push Kit hands the same message over again, under a new system call id.
    const again = await pushKitDevice.deliverVoip(extraDataOf(0));
    await device.callPush().settled();
    assert.notEqual(again.callId, first);
    assert.deepEqual(voipCallSystem.reportsOf(again.callId), [`reportIncomingCallError ${again.callId} ROUTE_BUSY`]);
    assert.equal(voipCallSystem.stateOf(first), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING);
    assert.equal(device.events.filter((e) => e instanceof CallEventIncoming).length, 1, 'rang once');
    assert.deepEqual(voipCallSystem.violations, []);
  });

  it('a call learned over the app\'s own connection first makes the later push line busy', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    const callPush = device.callPush();
    const outcome = callPush.client.reportIncomingFromSignalling(
      new SignalledCall('call-5', 'alice', 'Alice Ødegård', true, undefined, 'own-5', new Map<string, string>()));
    assert.equal(outcome.outcome, Outcome.RING);
    await callPush.settled();
    assert.deepEqual(voipCallSystem.reportsOf('own-5'), ['reportIncomingCall own-5 Alice Ødegård VOIP_CALL_VIDEO → ERROR_NONE']);

    await server.ring('call-5');
    const sys = await delivered(0);
    await until('the busy report', () => voipCallSystem.reportsOf(sys).length > 0 ? true : undefined);
    assert.deepEqual(voipCallSystem.reportsOf(sys), [`reportIncomingCallError ${sys} ROUTE_BUSY`]);
    assert.equal(voipCallSystem.stateOf('own-5'), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING);
  });

  it('an outgoing call is reported DIALING, then ACTIVE, then DISCONNECTED', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    const callPush = device.callPush();
    const call = callPush.startOutgoingCall('out-6', 'carol', 'Carol', false);
    assert.equal(call.state, CallState.DIALING);
    await callPush.settled();
    const report = voipCallSystem.reports.find((r) => r.api === 'reportOutgoingCall');
    assert.equal(report?.attribute?.voipCallState, voipCall.VoipCallState.VOIP_CALL_STATE_DIALING);
    assert.equal(voipCallSystem.stateOf('out-6'), voipCall.VoipCallState.VOIP_CALL_STATE_DIALING);

    callPush.mediaConnected('out-6');
    assert.equal((await callPush.hangUp('out-6')).endReason, EndReason.HUNG_UP);
    await callPush.settled();
    assert.deepEqual(voipCallSystem.reportsOf('out-6'), [
      'reportOutgoingCall out-6 Carol VOIP_CALL_VOICE → ERROR_NONE',
      'reportCallStateChange out-6 VOIP_CALL_STATE_ACTIVE',
      'reportCallStateChange out-6 VOIP_CALL_STATE_DISCONNECTED',
    ]);
  });

  it('a call the caller cancels is missed: one notification, the local one and the MISS_CALL push collapsed', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await server.ring('call-7', { video: false });
    const sys = await delivered(0);
    await device.event(CallEventIncoming);
    await device.callPush().settled();

    await server.cancel('call-7');
    const missed = await device.event(CallEventMissed);
    const cancelled = await device.event(CallEventCancelled);
    assert.equal(cancelled.call.endReason, EndReason.CALLER_CANCELLED);
    const expectedId = `missed-${crypto.createHash('sha256').update('call-7').digest('hex').slice(0, 32)}`;
    assert.equal(missed.appMessageId, expectedId);

    const push = await server.awaitPushKitRequest('0', expectedId);
    const notification = (JSON.parse(push.body) as { payload: { notification: { category: string; appMessageId: string } } })
      .payload.notification;
    assert.equal(notification.category, 'MISS_CALL');
    assert.equal(notification.appMessageId, expectedId, 'the server uses the same appMessageId');
    await until('both notifications', () =>
      notificationTray.shown.length + notificationTray.deduplicated.length === 2 ? true : undefined);
    const shown = notificationTray.withMessageId(expectedId);
    assert.equal(shown.length, 1, 'the system shows the missed call once');
    assert.equal(notificationTray.shown.length, 1);
    assert.equal(notificationTray.deduplicated.length, 1);
    const local = [...notificationTray.shown, ...notificationTray.deduplicated].find((n) => n.source === 'app');
    assert.equal(local?.title, 'Missed call');
    assert.equal(local?.text, 'Alice Ødegård called');
    assert.equal(local?.slot, 1, 'SOCIAL_COMMUNICATION');
    await device.callPush().settled();
    const reports = voipCallSystem.reportsOf(sys);
    assert.equal(reports[reports.length - 1], `reportCallStateChange ${sys} VOIP_CALL_STATE_DISCONNECTED`);
  });

  it('a call nobody answers rings out at its deadline and is missed', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await server.ring('call-8', { ringSeconds: 5 });
    const sys = await delivered(0);
    await device.event(CallEventIncoming);
    const missed = await device.event(CallEventMissed, () => true, 15_000);
    assert.equal(missed.call.callId, 'call-8');
    assert.equal(device.callPush().client.call('call-8')?.endReason, EndReason.MISSED);
    assert.equal((await server.awaitCallState('call-8', 'missed')).reason, 'timeout');
    await until('the missed-call notification', () => notificationTray.withMessageId(missed.appMessageId).length === 1 ? true : undefined);
    await device.callPush().settled();
    assert.equal(voipCallSystem.stateOf(sys), undefined);
  });

  it('the 10 s limit: a slow caller picture never delays the report past its budget', LIMIT, async () => {
    assert.equal(VOIP_REPORT_LIMIT_MS, 10_000);
    assert.equal(voipCallSystem.reportLimitMs, 10_000, 'the fake system allows what HarmonyOS allows');
    const avatars = new StuckAvatars();
    device = await Device.open(server, 'bob', { avatars, avatarBudgetMs: 200 });
    await device.launchAndRegister();
    await server.ring('call-9');
    const sys = await delivered(0);
    await until('the report', () => voipCallSystem.reportsOf(sys).length > 0 ? true : undefined, 5000);
    const report = voipCallSystem.reports.find((r) => r.callId === sys);
    assert.equal(avatars.asked, 1);
    assert.equal(report?.answer, 'ERROR_NONE');
    assert.ok((report?.sincePushMs ?? 0) >= 150 && (report?.sincePushMs ?? Infinity) < 2000, `${report?.sincePushMs} ms`);
    assert.ok(image.isPixelMap(report?.attribute?.userProfile), 'the plain picture was used');
    assert.deepEqual(voipCallSystem.violations, []);
    assert.ok(hilogRecords.all().some((r) => r.level === 'W' && r.message.includes('using the plain one')));
  });

  it('the 10 s limit: a report later than the system allows is refused, raised, and ends the call', LIMIT, async () => {
    device = await Device.open(server, 'bob', { avatars: new StuckAvatars(), avatarBudgetMs: 700, reportLimitMs: 300 });
    voipCallSystem.reportLimitMs = 300;
    await device.launchAndRegister();
    await server.ring('call-10');
    const sys = await delivered(0);
    await until('the violation', () => voipCallSystem.violations[0]);
    await until('the late report', () => voipCallSystem.reportsOf(sys).length > 0 ? true : undefined, 5000);
    await device.callPush().settled();
    assert.deepEqual(voipCallSystem.reportsOf(sys), [`reportIncomingCall ${sys} Alice Ødegård VOIP_CALL_VIDEO → INVALID_CALL`]);
    assert.deepEqual(device.errors.map((e) => e.kind), [GlueErrorKind.VOIP_REPORT_TOO_SLOW, GlueErrorKind.VOIP_REPORT_REFUSED]);
    assert.equal(device.errors[1].code, voipCall.ErrorReason.INVALID_CALL);
    assert.equal(device.callPush().client.call('call-10')?.endReason, EndReason.FAILED);
  });

  it('caller pictures: over 100 KB replaced by the plain one, not 32 vp used and raised, 32 vp passed as is', LIMIT, async () => {
    assert.equal(AVATAR_MAX_BYTES, 100 * 1024);
    const avatars = new SizedAvatars(new Map([['pic-1', 200], ['pic-2', 64], ['pic-3', 96], ['pic-out', 180]]));
    device = await Device.open(server, 'bob', { avatars });
    await device.launchAndRegister();
    for (const [n, id] of ['pic-1', 'pic-2', 'pic-3'].entries()) {
      await server.ring(id);
      await delivered(n);
      await device.event(CallEventIncoming, (e) => e.call.callId === id);
    }
    await device.callPush().settled();
    const sys = pushKitDevice.delivered.map((d) => d.callId);
    assert.equal(await reportedSide(sys[0]), 96, '200×200 px (160 000 bytes) is over 100 KB: the plain 32 vp picture');
    assert.equal(await reportedSide(sys[1]), 64, '64×64 px is shown, scaled');
    assert.equal(await reportedSide(sys[2]), 96, '32 vp at 3×');
    for (const id of sys) assert.equal(voipCallSystem.stateOf(id), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING, 'every call rings');
    device.callPush().startOutgoingCall('pic-out', 'carol', 'Carol', false);
    await device.callPush().settled();
    assert.equal(await reportedSide('pic-out', 'reportOutgoingCall'), 96, 'the outgoing report follows the same rule');
    assert.deepEqual(device.errors.map((e) => `${e.kind} ${e.callId}`), [
      `${GlueErrorKind.AVATAR_TOO_LARGE} pic-1`, `${GlueErrorKind.AVATAR_NOT_32VP} pic-2`, `${GlueErrorKind.AVATAR_TOO_LARGE} pic-out`,
    ]);
    assert.match(device.errors[0].message, /160000 bytes.*102400/);
    assert.match(device.errors[1].message, /64×64 px.*96×96 px/);
  });

  it('32 vp is measured at the device\'s density: the plain picture and the rule follow it', LIMIT, async () => {
    device = await Device.open(server, 'bob', { avatars: new SizedAvatars(new Map([['pic-4', 96], ['pic-5', 300]])) });
    displaySettings.densityPixels = 4;
    await device.launchAndRegister();
    await server.ring('pic-4');
    await device.event(CallEventIncoming);
    device.callPush().startOutgoingCall('pic-5', 'carol', 'Carol', false);
    await device.callPush().settled();
    assert.equal(await reportedSide(await delivered(0)), 96);
    assert.equal(await reportedSide('pic-5', 'reportOutgoingCall'), 128, 'the plain picture is 32 vp at 4×');
    assert.deepEqual(device.errors.map((e) => e.kind), [GlueErrorKind.AVATAR_NOT_32VP, GlueErrorKind.AVATAR_TOO_LARGE]);
    assert.match(device.errors[0].message, /96×96 px.*128×128 px/, '96 px is 24 vp at 4×');
  });

  it('a VoIP message that is not a callpush call is answered, or handed to the app', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    const plain = await pushKitDevice.deliverVoip('{"scene": "voice"}');
    await device.callPush().settled();
    assert.deepEqual(voipCallSystem.reportsOf(plain.callId), [`reportIncomingCallError ${plain.callId} OTHER`]);
    await device.close();

    const handed: string[] = [];
    device = await Device.open(server, 'bob', { onOtherVoipMessage: (payload) => { handed.push(payload.data); } });
    await device.launchAndRegister();
    const other = await pushKitDevice.deliverVoip('{"scene": "video"}');
    await device.callPush().settled();
    assert.equal(handed.length, 1);
    assert.equal((JSON.parse(handed[0]) as { callId: string }).callId, other.callId);
    assert.deepEqual(voipCallSystem.reportsOf(other.callId), [], 'the app reports its own calls');
  });

  it('an answer on the user\'s other device ends the call here over the app\'s own connection', LIMIT, async () => {
    // A user of their own: every test's device registered an installation for bob.
    device = await Device.open(server, 'carla');
    const here = await device.launchAndRegister();
    await server.registerOtherDevice('carla', 'carlas-tablet');
    assert.deepEqual((await server.ring('call-13', { to: 'carla' })).sort(), [here, 'carlas-tablet'].sort());
    const sys = await delivered(0);
    await device.event(CallEventIncoming);
    await device.callPush().settled();

    await server.answerOnOtherDevice('carla', 'carlas-tablet', 'call-13');
    const cancelled = await device.event(CallEventCancelled);
    assert.equal(cancelled.call.endReason, EndReason.ANSWERED_ELSEWHERE);
    await device.callPush().settled();
    assert.deepEqual(voipCallSystem.reportsOf(sys), [
      `reportIncomingCall ${sys} Alice Ødegård VOIP_CALL_VIDEO → ERROR_NONE`,
      `reportCallStateChange ${sys} VOIP_CALL_STATE_DISCONNECTED`,
    ]);
    assert.equal(device.events.filter((e) => e instanceof CallEventMissed).length, 0, 'answered elsewhere is not missed');
    assert.equal(notificationTray.shown.length, 0);
  });

  it('an ability that awaits before installing loses the VoIP message and misses the limit', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await device.kill();
    voipCallSystem.reportLimitMs = 200;
    // What the guide forbids: onCreate awaits something before registering receiveMessage('VoIP').
    pushKitDevice.launcher = () => {
      void Promise.resolve().then(() => device?.launch());
    };
    await server.ring('call-14');
    const lost = await until('the lost message', () => pushKitDevice.lost[0]);
    await until('the violation', () => voipCallSystem.violations.find((v) => v.callId === lost.callId));
    assert.deepEqual(pushKitDevice.delivered, []);
    assert.equal(device.events.filter((e) => e instanceof CallEventIncoming).length, 0, 'the call never rang');
  });

  it('installing twice in one process is refused by Push Kit and leaves nothing half set up', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    assert.equal(voipCallSystem.listenerCount(), 1);
    const second = startAbility(UIAbility, 'VoipAbility', device.filesDir);
    assert.throws(() => CallPush.install(second.ability, { serverUrl: server.url, tokens: device?.tokens ?? new ServerTokens(() => '') }),
      (e: Error) => (e as BusinessError).code === 1000900005);
    assert.equal(voipCallSystem.listenerCount(), 1, 'the second voipCallUiEvent subscription was withdrawn');
    assert.ok(pushKitDevice.isRegistered('VoIP'), 'the first registration stands');
  });

  it('a forged push never rings: reportIncomingCallError and an error event', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await server.ring('call-12');
    await delivered(0);
    await device.event(CallEventIncoming);
    // The server seals this installation's pushes to its device key (wire v2): a JWE of five parts.
    const genuine = JSON.parse(extraDataOf(0)) as { callpush: string };
    const parts = genuine.callpush.split('.');
    assert.equal(parts.length, 5, 'the server sent a wire v2 push (JWE)');
    const [protectedHeader, encryptedKey, iv, ciphertext, tag] = parts;

    // The genuine push with one bit of its ciphertext flipped: it no longer authenticates.
    const tampered = Buffer.from(ciphertext, 'base64url');
    tampered[0] ^= 0x01;
    const forged = await pushKitDevice.deliverVoip(JSON.stringify({
      callpush: [protectedHeader, encryptedKey, iv, tampered.toString('base64url'), tag].join('.'),
    }));
    await device.callPush().settled();
    assert.deepEqual(voipCallSystem.reportsOf(forged.callId), [`reportIncomingCallError ${forged.callId} OTHER`]);
    const undecryptable = await device.event(CallEventError, (e) => e.error.kind === ErrorKind.UNDECRYPTABLE);
    assert.equal(undecryptable.error.kind, ErrorKind.UNDECRYPTABLE);

    // An unencrypted (wire v1) push to the switched installation, whatever it claims.
    const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const v1 = [
      b64({ alg: 'EdDSA', kid: 'forged', typ: 'callpush+jwt' }),
      b64({ v: 1, evt: 'ring', cid: 'call-12-forged', iat: now, exp: now + 60 }),
      Buffer.alloc(64, 7).toString('base64url'),
    ].join('.');
    const downgraded = await pushKitDevice.deliverVoip(JSON.stringify({ callpush: v1 }));
    await device.callPush().settled();
    assert.deepEqual(voipCallSystem.reportsOf(downgraded.callId), [`reportIncomingCallError ${downgraded.callId} OTHER`]);
    const refused = await device.event(CallEventError, (e) => e.error.kind === ErrorKind.DOWNGRADED);
    assert.equal(refused.error.kind, ErrorKind.DOWNGRADED);
    assert.equal(device.callPush().client.call('call-12-forged'), undefined);
  });
});
