/**
 * One fake HarmonyOS device per test: fresh Push Kit, voipCall, notification tray, media, audio
 * session, vibrator, app resources, display and hilog, the app (`VoipAbility`) started by the
 * system when a VoIP message comes for it, and every event and glue error the app saw.
 */
import * as fs from 'node:fs';
import { abilitySystem, startAbility } from '@kit.AbilityKit';
import { displaySettings } from '@kit.ArkUI';
import { audioSessionSystem } from '@kit.AudioKit';
import { voipCallSystem } from '@kit.CallServiceKit';
import { appResources } from '@kit.LocalizationKit';
import { mediaSystem } from '@kit.MediaKit';
import { notificationTray } from '@kit.NotificationKit';
import { httpStats } from '@kit.NetworkKit';
import { hilogRecords } from '@kit.PerformanceAnalysisKit';
import { pushKitDevice } from '@kit.PushKit';
import { vibratorDevice } from '@kit.SensorServiceKit';
import { CallEvent, CallPush, CallPushOptions, CallState, EndReason, GlueError, GlueErrorKind } from '../../../callpush/Index';
import { AppProcess, ServerTokens, VoipAbility } from './app';
import { CallpushServer } from './server';

/** Polls `check` every 10 ms until it returns a value, or fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Whether `error` is the server refusing a notification report with 404 because its route
 * (`PUT /v1/installations/{id}/notifications`) is not there yet: the client maps that answer to
 * `CallpushErrorNotRegistered`. Flows that are not about notifications tolerate it either way.
 */
export function isUnstoredNotificationReport(error: GlueError): boolean {
  return error.kind === GlueErrorKind.NOTIFICATION_REPORT_FAILED && error.message.includes('CallpushErrorNotRegistered');
}

/** The device of one test. */
export class Device {
  /** Every event of every CallPush the app made, oldest first. */
  readonly events: CallEvent[] = [];
  /** Every glue error but notification reports the server did not store (see `isUnstoredNotificationReport`), oldest first. */
  readonly errors: GlueError[] = [];
  /** Notification reports the server answered 404 (its route is not there yet). */
  readonly unstoredReports: GlueError[] = [];
  /** The running app's push-listener ability. */
  ability: VoipAbility | undefined = undefined;
  /** How many times the system started the app. */
  launches = 0;
  /** The app's files directory (kept across restarts of the app). */
  filesDir: string | undefined = undefined;
  readonly tokens: ServerTokens;

  private constructor(readonly server: CallpushServer, readonly user: string, private readonly extra: Partial<CallPushOptions>) {
    this.tokens = new ServerTokens(() => server.token(user));
  }

  /** A fresh device for `user`, following the server's Push Kit; the app is not running yet. */
  static async open(server: CallpushServer, user = 'bob', extra: Partial<CallPushOptions> = {}): Promise<Device> {
    voipCallSystem.reset();
    await pushKitDevice.reset();
    notificationTray.reset();
    mediaSystem.reset();
    audioSessionSystem.reset();
    vibratorDevice.reset();
    appResources.reset();
    abilitySystem.appStopped();
    displaySettings.densityPixels = 3;
    httpStats.requests.length = 0;
    hilogRecords.clear();
    const device = new Device(server, user, extra);
    pushKitDevice.launcher = () => device.launch();
    pushKitDevice.follow(server.pushKitUrl);
    return device;
  }

  /** Starts the app (the user opening it, or the system for a push). */
  launch(): CallPush {
    this.launches += 1;
    // Short long-polls, so a test's process never ends with a Rust thread waiting on one.
    AppProcess.options = { serverUrl: this.server.url, tokens: this.tokens, longPollSeconds: 2, ...this.extra };
    const started = startAbility(VoipAbility, 'VoipAbility', this.filesDir);
    this.filesDir = started.filesDir;
    this.ability = started.ability;
    const callPush = this.callPush();
    callPush.onEvent((event) => this.events.push(event));
    callPush.onError((error) => (isUnstoredNotificationReport(error) ? this.unstoredReports : this.errors).push(error));
    return callPush;
  }

  /** The user opens the running app: its window stage is created, it comes to the foreground, its window shows. */
  openUi(): void {
    const ability = this.ability;
    if (ability === undefined) throw new Error('the app is not running');
    abilitySystem.open(ability);
  }

  /**
   * The notification reports the app sent (`PUT /v1/installations/{id}/notifications`), as
   * `enabled → status`: 204 once the server stores them, 404 until its route exists.
   */
  notificationReports(): string[] {
    return httpStats.requests
      .filter((r) => r.method === 'PUT' && /\/v1\/installations\/[^/]+\/notifications$/.test(r.url))
      .map((r) => `${(JSON.parse(r.body) as { enabled: boolean }).enabled} → ${r.status}`);
  }

  /** The running app's CallPush. */
  callPush(): CallPush {
    const callPush = AppProcess.callPush;
    if (callPush === undefined) throw new Error('the app is not running');
    return callPush;
  }

  /** Starts the app and waits until its Push Token is registered; returns the installation id. */
  async launchAndRegister(): Promise<string> {
    const callPush = this.launch();
    await until('the push token registration', () => callPush.client.registration());
    return callPush.client.installationId();
  }

  /**
   * The app's process ends (the system reclaims it); its files stay. Calls still live end first
   * and in-flight requests (long-polls) finish, so no Rust thread is inside a call into JS when
   * the client is destroyed — as on a device, where the process and its threads go together.
   */
  async kill(): Promise<void> {
    const callPush = AppProcess.callPush;
    if (callPush === undefined) return;
    for (const call of callPush.client.calls()) {
      if (call.state !== CallState.ENDED) callPush.client.endCall(call.callId, EndReason.FAILED);
    }
    await callPush.settled();
    await until('the in-flight HTTP requests', () => (httpStats.live === 0 ? true : undefined), 15_000);
    callPush.close();
    callPush.client.destroy();
    pushKitDevice.appStopped();
    abilitySystem.appStopped();
    AppProcess.callPush = undefined;
    this.ability = undefined;
  }

  /** Waits for the first event of class `kind` matching `match`. */
  async event<T extends CallEvent>(kind: abstract new (...args: never[]) => T, match: (e: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    return until(`a ${kind.name}`, () => this.events.find((e): e is T => e instanceof kind && match(e)), timeoutMs);
  }

  /** Ends the test's device: the app stops and its files go. */
  async close(): Promise<void> {
    await this.kill();
    await pushKitDevice.stopFollowing();
    if (this.filesDir !== undefined) fs.rmSync(this.filesDir, { recursive: true, force: true });
  }
}
