/**
 * Fake of `@kit.AudioKit` `audio`: the stream usages and renderer info an AVPlayer takes, and the
 * app's audio session (`getAudioManager().getSessionManager()`, API 12:
 * `activateAudioSession(strategy)`, `deactivateAudioSession()`, `isAudioSessionActivated()`,
 * `on/off('audioSessionDeactivated')`), typed from the SDK declaration
 * (`@ohos.multimedia.audio.d.ts`), with a recorder for tests (`audioSessionSystem`).
 *
 * As documented: activating an active session re-applies its strategy; deactivating a session that
 * is not active rejects 6800301 (the session does not exist); the system may deactivate a session
 * itself (focus taken by a higher priority, or a timeout), telling its `audioSessionDeactivated`
 * listeners; `failNextActivation` makes the next activation reject 6800301 (focus preemption
 * failure).
 */
import { Callback, FakeBusinessError } from './BasicServicesKit';

/** The `audio` namespace, the parts used here. */
export namespace audio {
  /** What a stream is for; the system's focus and volume rules follow it. */
  export enum StreamUsage {
    STREAM_USAGE_UNKNOWN = 0,
    STREAM_USAGE_MUSIC = 1,
    STREAM_USAGE_VOICE_COMMUNICATION = 2,
    STREAM_USAGE_VOICE_ASSISTANT = 3,
    STREAM_USAGE_ALARM = 4,
    STREAM_USAGE_VOICE_MESSAGE = 5,
    STREAM_USAGE_RINGTONE = 6,
    STREAM_USAGE_NOTIFICATION = 7,
    STREAM_USAGE_ACCESSIBILITY = 8,
    STREAM_USAGE_MOVIE = 10,
    STREAM_USAGE_GAME = 11,
    STREAM_USAGE_AUDIOBOOK = 12,
    STREAM_USAGE_NAVIGATION = 13,
    STREAM_USAGE_VIDEO_COMMUNICATION = 17,
  }
  /** How a renderer plays. */
  export interface AudioRendererInfo {
    /** The stream's usage. */
    usage: StreamUsage;
    /** Set to 0. */
    rendererFlags: number;
  }
  /** How the session's streams mix with others. */
  export enum AudioConcurrencyMode {
    CONCURRENCY_DEFAULT = 0,
    CONCURRENCY_MIX_WITH_OTHERS = 1,
    CONCURRENCY_DUCK_OTHERS = 2,
    CONCURRENCY_PAUSE_OTHERS = 3,
  }
  /** The strategy a session is activated with. */
  export interface AudioSessionStrategy {
    /** The concurrency mode. */
    concurrencyMode: AudioConcurrencyMode;
  }
  /** Why the system deactivated a session. */
  export enum AudioSessionDeactivatedReason { DEACTIVATED_LOWER_PRIORITY = 0, DEACTIVATED_TIMEOUT = 1 }
  /** What `audioSessionDeactivated` listeners get. */
  export interface AudioSessionDeactivatedEvent {
    /** Why. */
    reason: AudioSessionDeactivatedReason;
  }
  /** The app's audio session. */
  export interface AudioSessionManager {
    /** Activates it. */
    activateAudioSession(strategy: AudioSessionStrategy): Promise<void>;
    /** Deactivates it. */
    deactivateAudioSession(): Promise<void>;
    /** Whether it is active. */
    isAudioSessionActivated(): boolean;
    /** Subscribes to the system deactivating it. */
    on(type: 'audioSessionDeactivated', callback: Callback<AudioSessionDeactivatedEvent>): void;
    /** Unsubscribes. */
    off(type: 'audioSessionDeactivated', callback?: Callback<AudioSessionDeactivatedEvent>): void;
  }
  /** The audio manager, the part used here. */
  export interface AudioManager {
    /** The session manager (API 12). */
    getSessionManager(): AudioSessionManager;
  }
  /** The audio manager. */
  export function getAudioManager(): AudioManager {
    return manager;
  }
}

/** The app's audio session as the system sees it, for tests. */
export class AudioSessionSystem implements audio.AudioSessionManager {
  /** Whether the session is active. */
  active = false;
  /** The strategy of every activation, in order. */
  readonly activations: audio.AudioSessionStrategy[] = [];
  /** How many times the app deactivated it. */
  deactivations = 0;
  /** Makes the next activation fail (6800301). */
  failNextActivation = false;
  private readonly listeners: Callback<audio.AudioSessionDeactivatedEvent>[] = [];

  activateAudioSession(strategy: audio.AudioSessionStrategy): Promise<void> {
    if (typeof strategy !== 'object' || strategy === null || !(strategy.concurrencyMode in audio.AudioConcurrencyMode)) {
      return Promise.reject(new FakeBusinessError(6800101, 'Parameter verification failed: strategy'));
    }
    if (this.failNextActivation) {
      this.failNextActivation = false;
      return Promise.reject(new FakeBusinessError(6800301, 'System error: focus preemption failure'));
    }
    this.activations.push({ concurrencyMode: strategy.concurrencyMode });
    this.active = true;
    return Promise.resolve();
  }

  deactivateAudioSession(): Promise<void> {
    if (!this.active) return Promise.reject(new FakeBusinessError(6800301, 'System error: the audio session does not exist'));
    this.active = false;
    this.deactivations += 1;
    return Promise.resolve();
  }

  isAudioSessionActivated(): boolean {
    return this.active;
  }

  on(type: 'audioSessionDeactivated', callback: Callback<audio.AudioSessionDeactivatedEvent>): void {
    if (type !== 'audioSessionDeactivated') throw new FakeBusinessError(401, `Parameter error: type ${String(type)}`);
    this.listeners.push(callback);
  }

  off(type: 'audioSessionDeactivated', callback?: Callback<audio.AudioSessionDeactivatedEvent>): void {
    for (let i = this.listeners.length - 1; i >= 0; i--) if (callback === undefined || this.listeners[i] === callback) this.listeners.splice(i, 1);
  }

  /** The system ends the session (e.g. a carrier call takes focus). */
  systemDeactivates(reason: audio.AudioSessionDeactivatedReason): void {
    if (!this.active) return;
    this.active = false;
    for (const listener of this.listeners.slice()) listener({ reason });
  }

  /** A fresh device. */
  reset(): void {
    this.active = false;
    this.activations.length = 0;
    this.deactivations = 0;
    this.failNextActivation = false;
    this.listeners.length = 0;
  }
}

/** The audio session of the app under test. */
export const audioSessionSystem = new AudioSessionSystem();
const manager: audio.AudioManager = { getSessionManager: () => audioSessionSystem };
