/**
 * The app's notification permission through the whole flow, against the real server and the fakes
 * of Notification Kit (the switch, the system dialog) and Ability Kit (the app's lifecycle):
 * checked and reported (`PUT /v1/installations/{id}/notifications`) after registration and at
 * each foreground when it changed; asked for with `requestEnableNotification` once a window of the
 * app is shown, at most once, never when the app asks itself; a refusal is the user's answer, asked
 * no more; failures are glue errors and never touch a ringing call.
 *
 * The server's route is being built: until it lands the server answers 404 (the client's
 * `CallpushErrorNotRegistered`), after it 204. The tests assert what the app sent and accept either
 * answer, checking that a 404 is raised as `NOTIFICATION_REPORT_FAILED`.
 */
import { strict as assert } from 'node:assert';
import { after, afterEach, before, describe, it } from 'node:test';
import { abilitySystem } from '@kit.AbilityKit';
import { voipCall, voipCallSystem } from '@kit.CallServiceKit';
import { notificationTray } from '@kit.NotificationKit';
import { pushKitDevice } from '@kit.PushKit';
import {
  CallEventIncoming, CallEventMissed, GlueErrorKind, HttpClient, HttpRequest, HttpResponse, NetworkHttpClient,
  NotificationRequestOutcome,
} from '../../callpush/Index';
import { Device, until } from './support/device';
import { CallpushServer } from './support/server';

const server = new CallpushServer();
let device: Device | undefined;
const LIMIT = { timeout: 60_000 };

/**
 * The states the app reported, consecutive repeats collapsed, once they read `expected` and the
 * app is settled. Repeats happen while the server does not store reports (404): each foreground
 * tries again.
 */
async function reported(expected: boolean[]): Promise<string[]> {
  const collapsed = (): boolean[] => {
    const values = device!.notificationReports().filter((r) => !r.endsWith('-1')).map((r) => r.startsWith('true'));
    return values.filter((v, i) => i === 0 || v !== values[i - 1]);
  };
  await until(`notification reports ${expected.join(', ')}`, () =>
    (JSON.stringify(collapsed()) === JSON.stringify(expected) ? true : undefined));
  await device!.callPush().settled();
  const actual = device!.notificationReports();
  assertReports(actual, expected);
  return actual;
}

/**
 * The reports (`enabled → status`) say `expected`, every one stored (204) or every one refused
 * (404, the server's route not there yet); once stored, each state is sent once; every 404 is
 * raised as a failed report.
 */
function assertReports(actual: string[], expected: boolean[]): void {
  const stored = actual.every((r) => r.endsWith(' 204'));
  const unstored = actual.every((r) => r.endsWith(' 404'));
  assert.ok(stored || unstored, `the server answers every report alike: ${actual.join(', ')}`);
  const values = actual.map((r) => r.startsWith('true'));
  assert.deepEqual(values.filter((v, i) => i === 0 || v !== values[i - 1]), expected, actual.join(', '));
  if (stored) assert.deepEqual(values, expected, 'a stored state is not sent again');
  assert.equal(device!.unstoredReports.length, unstored ? actual.length : 0);
  for (const e of device!.unstoredReports) assert.equal(e.kind, GlueErrorKind.NOTIFICATION_REPORT_FAILED);
}

/** An HTTP stack whose notification reports the server refuses (403); everything else goes through. */
class RefusingReports implements HttpClient {
  private readonly real = new NetworkHttpClient();
  send(request: HttpRequest): Promise<HttpResponse> {
    if (request.method === 'PUT' && request.url.endsWith('/notifications')) {
      const body = new TextEncoder().encode('{"error":{"code":"forbidden","message":"no"}}');
      return Promise.resolve(new HttpResponse(403, new Map([['content-type', 'application/json']]), body));
    }
    return this.real.send(request);
  }
}

describe('Notification permission', { concurrency: false }, () => {
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

  it('enabled: reported after registration, no dialog, not reported again at a foreground that changed nothing', LIMIT, async () => {
    device = await Device.open(server);
    await device.launchAndRegister();
    await reported([true]);
    device.openUi();
    await device.callPush().settled();
    assertReports(device.notificationReports(), [true]);
    assert.equal(notificationTray.dialogs, 0);
    assert.deepEqual(device.errors, []);
  });

  it('disabled, and the app asks itself: reported disabled, no dialog; the missed call then cannot post (1600004)', LIMIT, async () => {
    device = await Device.open(server, 'bob', { requestNotificationPermission: false });
    notificationTray.enabled = false;
    await device.launchAndRegister();
    await reported([false]);
    device.openUi();
    await device.callPush().settled();
    assert.equal(notificationTray.dialogs, 0, 'the glue does not ask');

    await server.ring('note-2', { video: false });
    await device.event(CallEventIncoming);
    await server.cancel('note-2');
    await device.event(CallEventMissed);
    const failed = await until('the failed notification', () => device!.errors.find((e) => e.kind === GlueErrorKind.NOTIFICATION_FAILED));
    assert.equal(failed.code, 1600004);
  });

  it('disabled, asked when the window shows, granted: one dialog, reported disabled then enabled', LIMIT, async () => {
    device = await Device.open(server);
    notificationTray.enabled = false;
    await device.launchAndRegister();
    await reported([false]);
    assert.equal(notificationTray.dialogs, 0, 'no dialog without a window');
    device.openUi();
    await reported([false, true]);
    assert.equal(notificationTray.dialogs, 1);
    assert.ok(notificationTray.enabled);
    assert.deepEqual(device.errors, []);
  });

  it('disabled, asked, refused: one dialog, never asked again; enabled later in the settings, reported at the next foreground', LIMIT, async () => {
    device = await Device.open(server);
    notificationTray.enabled = false;
    notificationTray.userAgrees = false;
    await device.launchAndRegister();
    await reported([false]);
    device.openUi();
    await device.callPush().settled();
    assert.equal(notificationTray.dialogs, 1);
    const ability = device.ability!;
    abilitySystem.background(ability);
    abilitySystem.foreground(ability);
    abilitySystem.windowActive(ability);
    await device.callPush().settled();
    assert.equal(notificationTray.dialogs, 1, 'a refusal is final');
    assertReports(device.notificationReports(), [false]);
    assert.deepEqual(device.errors, [], 'a refusal is an answer, not a failure');

    notificationTray.enabled = true; // the user turns it on in the settings
    abilitySystem.background(ability);
    abilitySystem.foreground(ability);
    await reported([false, true]);
  });

  it('an ability started by a push shows no window: nothing is asked until its window is active', LIMIT, async () => {
    device = await Device.open(server);
    notificationTray.enabled = false;
    await device.launchAndRegister();
    const ability = device.ability!;
    abilitySystem.windowStageCreate(ability);
    abilitySystem.foreground(ability);
    await device.callPush().settled();
    assert.equal(notificationTray.dialogs, 0, 'the UI is not shown yet');
    abilitySystem.windowActive(ability);
    await device.callPush().settled();
    assert.equal(notificationTray.dialogs, 1);
    assert.deepEqual(device.errors, []);
  });

  it('the app asks itself from its loadContent callback with requestNotificationPermission', LIMIT, async () => {
    device = await Device.open(server, 'bob', { requestNotificationPermission: false });
    notificationTray.enabled = false;
    await device.launchAndRegister();
    device.openUi();
    const callPush = device.callPush();
    assert.equal(await callPush.requestNotificationPermission(device.ability!.context), NotificationRequestOutcome.GRANTED);
    assert.equal(await callPush.requestNotificationPermission(), NotificationRequestOutcome.ALREADY_ENABLED);
    assert.equal(notificationTray.dialogs, 1);
    assert.equal(await callPush.notificationsEnabled(), true);
    await reported([false, true]);
  });

  it('a failed request and a failed report are glue errors; the call rings and is answered all the same', LIMIT, async () => {
    device = await Device.open(server, 'bob', { http: new RefusingReports(), requestNotificationPermission: false });
    notificationTray.enabled = false;
    await device.launchAndRegister();
    await until('the failed report', () => device!.errors.find((e) => e.kind === GlueErrorKind.NOTIFICATION_REPORT_FAILED));
    // Asked before any window shows: the system cannot show its dialog.
    assert.equal(await device.callPush().requestNotificationPermission(), NotificationRequestOutcome.NOT_ASKED);
    const kinds = device.errors.map((e) => e.kind);
    assert.deepEqual(kinds, [GlueErrorKind.NOTIFICATION_REPORT_FAILED, GlueErrorKind.NOTIFICATION_PERMISSION_FAILED]);
    assert.equal(device.errors[1].code, 1600001);

    await server.ring('note-7');
    await device.event(CallEventIncoming);
    await device.callPush().settled();
    const sys = pushKitDevice.delivered[0].callId;
    voipCallSystem.userAction(sys, voipCall.VoipCallUiEvent.VOIP_CALL_EVENT_VOICE_ANSWER);
    await server.awaitCallState('note-7', 'answered');
  });
});
