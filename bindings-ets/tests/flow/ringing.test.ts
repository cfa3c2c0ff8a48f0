/**
 * Ringing on the device (the HAR's `Ringer`) through the whole flow, against the real server and
 * the fakes of Media Kit (AVPlayer), Sensor Service Kit (vibrator) and Audio Kit (AudioSession):
 * an incoming call the system accepted rings — the app's ringtone looping on a
 * `STREAM_USAGE_RINGTONE` stream, a vibration pattern with usage `ring`, the audio session
 * active — and ringing stops when the call is answered (the session stays until the call ends),
 * declined, cancelled by the caller, missed at its deadline, answered on another device, and when
 * the ability is destroyed. With `ringer: false` nothing rings. Failures of any of the three are
 * glue errors; the call rings on in the system call UI.
 */
import { strict as assert } from 'node:assert';
import { after, afterEach, before, describe, it } from 'node:test';
import { abilitySystem } from '@kit.AbilityKit';
import { audio, audioSessionSystem } from '@kit.AudioKit';
import { voipCall, voipCallSystem } from '@kit.CallServiceKit';
import { appResources } from '@kit.LocalizationKit';
import { mediaSystem } from '@kit.MediaKit';
import { pushKitDevice } from '@kit.PushKit';
import { vibratorDevice } from '@kit.SensorServiceKit';
import {
  CallEventCancelled, CallEventIncoming, CallEventMissed, CallState, EndReason, GlueErrorKind, RING_VIBRATION_PERIOD_MS,
} from '../../callpush/Index';
import { Device, until } from './support/device';
import { CallpushServer } from './support/server';

const server = new CallpushServer();
let device: Device | undefined;
const LIMIT = { timeout: 60_000 };
const RINGTONE = 'ringtone.mp3';

/** What rings now, in words: `ringtone`, `vibration`, `focus` (the audio session), joined by `+`; `silent` for nothing. */
function ringing(): string {
  const parts: string[] = [];
  const playing = mediaSystem.playing();
  if (playing.some((p) => p.file === RINGTONE && p.loop && p.usage() === audio.StreamUsage.STREAM_USAGE_RINGTONE)) parts.push('ringtone');
  if (vibratorDevice.patternRuns('ring')) parts.push('vibration');
  if (audioSessionSystem.active) parts.push('focus');
  return parts.length === 0 ? 'silent' : parts.join('+');
}

/** A device with the app's ringtone in its rawfile directory, the app registered, and call `callId` ringing. */
async function ringingDevice(callId: string, user = 'bob', options: { to?: string; ringSeconds?: number } = {}): Promise<string> {
  device = await Device.open(server, user, { ringtone: RINGTONE });
  appResources.addRawFile(RINGTONE, 48_000);
  await device.launchAndRegister();
  await server.ring(callId, { to: options.to ?? user, ringSeconds: options.ringSeconds });
  const sys = await until('the VoIP message', () => pushKitDevice.delivered[0]?.callId);
  await device.event(CallEventIncoming);
  await device.callPush().settled();
  assert.equal(ringing(), 'ringtone+vibration+focus', 'the device rings once the call is reported');
  return sys;
}

/** The device rings no more and holds nothing: no player, no open file, no session. */
function assertQuiet(): void {
  assert.equal(ringing(), 'silent');
  assert.deepEqual(mediaSystem.unreleased(), [], 'the player was released');
  assert.equal(appResources.openCount(), 0, 'the ringtone file was closed');
  assert.ok(vibratorDevice.stops >= 1, 'stopVibration was called');
}

describe('Ringing on the device', { concurrency: false }, () => {
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

  it('rings after the report as the guide asks; an answer stops ringing and keeps the audio session until hang-up', LIMIT, async () => {
    const sys = await ringingDevice('ring-1');
    const callPush = device!.callPush();
    assert.equal(voipCallSystem.reports[0].api, 'reportIncomingCall', 'reported before anything rang');
    const [player] = mediaSystem.players;
    assert.deepEqual(player.states, ['idle', 'initialized', 'prepared', 'playing'], 'one player, set up in the documented order');
    assert.deepEqual(player.refusals, [], 'no property set in a state that refuses it');
    assert.deepEqual(audioSessionSystem.activations, [{ concurrencyMode: audio.AudioConcurrencyMode.CONCURRENCY_DEFAULT }]);
    assert.ok(vibratorDevice.pulses.every((p) => p.usage === 'ring' && p.durationMs === 1000));

    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_VOICE_ANSWER);
    await server.awaitCallState('ring-1', 'answered');
    await callPush.settled();
    assert.equal(ringing(), 'focus', 'answered: ringtone and vibration stop, the session stays for the call');
    assert.deepEqual(mediaSystem.unreleased(), []);
    assert.equal(appResources.openCount(), 0);
    const pulses = vibratorDevice.pulses.length;
    await new Promise((resolve) => setTimeout(resolve, RING_VIBRATION_PERIOD_MS + 300));
    assert.equal(vibratorDevice.pulses.length, pulses, 'the vibration pattern ended');

    callPush.mediaConnected('ring-1');
    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_HANGUP);
    await until('the hang-up', () => (callPush.client.call('ring-1')?.state === CallState.ENDED ? true : undefined));
    await callPush.settled();
    assertQuiet();
    assert.equal(audioSessionSystem.deactivations, 1);
    assert.deepEqual(device!.errors, []);
  });

  it('declining on the banner stops ringing and releases the audio session', LIMIT, async () => {
    const sys = await ringingDevice('ring-2');
    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_REJECT);
    await server.awaitCallState('ring-2', 'declined');
    await device!.callPush().settled();
    assert.equal(device!.callPush().client.call('ring-2')?.endReason, EndReason.DECLINED);
    assertQuiet();
    assert.deepEqual(device!.errors, []);
  });

  it('the caller cancelling stops ringing', LIMIT, async () => {
    await ringingDevice('ring-3');
    await server.cancel('ring-3');
    const cancelled = await device!.event(CallEventCancelled);
    assert.equal(cancelled.call.endReason, EndReason.CALLER_CANCELLED);
    await device!.callPush().settled();
    assertQuiet();
  });

  it('a call that rings out at its deadline (missed) stops ringing', LIMIT, async () => {
    await ringingDevice('ring-4', 'bob', { ringSeconds: 5 });
    await device!.event(CallEventMissed, () => true, 15_000);
    assert.equal(device!.callPush().client.call('ring-4')?.endReason, EndReason.MISSED);
    await device!.callPush().settled();
    assertQuiet();
  });

  it('an answer on the user\'s other device stops ringing here', LIMIT, async () => {
    await ringingDevice('ring-5', 'rita');
    await server.registerOtherDevice('rita', 'ritas-tablet');
    await server.answerOnOtherDevice('rita', 'ritas-tablet', 'ring-5');
    const cancelled = await device!.event(CallEventCancelled);
    assert.equal(cancelled.call.endReason, EndReason.ANSWERED_ELSEWHERE);
    await device!.callPush().settled();
    assertQuiet();
  });

  it('the ability being destroyed stops ringing; the call still shows in the system call UI', LIMIT, async () => {
    const sys = await ringingDevice('ring-6');
    abilitySystem.destroy(device!.ability!);
    await device!.callPush().settled();
    assertQuiet();
    assert.equal(voipCallSystem.stateOf(sys), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING);
  });

  it('with ringer: false the HAR never rings: the app does', LIMIT, async () => {
    device = await Device.open(server, 'bob', { ringer: false, ringtone: RINGTONE });
    appResources.addRawFile(RINGTONE, 48_000);
    await device.launchAndRegister();
    await server.ring('ring-7');
    await device.event(CallEventIncoming);
    await device.callPush().settled();
    assert.equal(device.callPush().ringer, undefined);
    const sys = pushKitDevice.delivered[0].callId;
    assert.equal(voipCallSystem.stateOf(sys), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING, 'the call shows');
    await server.cancel('ring-7');
    await device.event(CallEventCancelled);
    await device.callPush().settled();
    assert.deepEqual(mediaSystem.players, [], 'no player was made');
    assert.deepEqual(vibratorDevice.pulses, [], 'nothing vibrated');
    assert.deepEqual(audioSessionSystem.activations, [], 'the audio session was never touched');
    assert.equal(vibratorDevice.stops, 0);
  });

  it('ringing is idempotent: a duplicate push, a repeated ring and repeated ends start and stop it once', LIMIT, async () => {
    const sys = await ringingDevice('ring-8');
    const callPush = device!.callPush();
    const again = await pushKitDevice.deliverVoip((JSON.parse(pushKitDevice.delivered[0].data) as { data: string }).data);
    await callPush.settled();
    assert.deepEqual(voipCallSystem.reportsOf(again.callId), [`reportIncomingCallError ${again.callId} ROUTE_BUSY`]);
    callPush.ringer?.ring('ring-8');
    await callPush.settled();
    assert.equal(mediaSystem.players.length, 1, 'one ringtone player');
    assert.equal(audioSessionSystem.activations.length, 1, 'one activation');

    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_REJECT);
    await server.awaitCallState('ring-8', 'declined');
    callPush.ringer?.ended('ring-8');
    callPush.ringer?.stopAll();
    callPush.ringer?.ring('ring-8');
    await callPush.settled();
    assertQuiet();
    assert.equal(mediaSystem.players.length, 1, 'an ended call never rings again');
    assert.equal(audioSessionSystem.deactivations, 1, 'one deactivation');
    assert.deepEqual(device!.errors, []);
  });

  it('a missing ringtone, a refused vibration and a refused audio session are glue errors; the call rings on', LIMIT, async () => {
    device = await Device.open(server, 'bob', { ringtone: 'not-there.mp3' });
    vibratorDevice.permitted = false;
    audioSessionSystem.failNextActivation = true;
    await device.launchAndRegister();
    await server.ring('ring-9');
    await device.event(CallEventIncoming);
    await device.callPush().settled();
    const sys = pushKitDevice.delivered[0].callId;
    assert.equal(voipCallSystem.stateOf(sys), voipCall.VoipCallState.VOIP_CALL_STATE_RINGING, 'the call shows');
    const failures = device.errors.filter((e) => e.kind === GlueErrorKind.RINGING_FAILED);
    assert.equal(failures.length, 3, failures.map((e) => e.message).join('\n'));
    assert.deepEqual(failures.map((e) => e.code).sort(), [201, 6800301, 9001005]);
    assert.equal(ringing(), 'silent');

    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_VOICE_ANSWER);
    await server.awaitCallState('ring-9', 'answered');
    await device.callPush().settled();
    assert.equal(device.callPush().client.call('ring-9')?.state, CallState.ANSWERED, 'the call went on');
    assert.deepEqual(mediaSystem.unreleased(), []);
    assert.equal(appResources.openCount(), 0);
  });

  it('without a ringtone the device vibrates only', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await server.ring('ring-10');
    await device.event(CallEventIncoming);
    await device.callPush().settled();
    assert.equal(ringing(), 'vibration+focus');
    assert.deepEqual(mediaSystem.players, []);
    await server.cancel('ring-10');
    await device.event(CallEventCancelled);
    await device.callPush().settled();
    assert.equal(ringing(), 'silent');
    assert.deepEqual(device.errors, []);
  });
});
