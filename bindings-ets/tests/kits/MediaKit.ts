/**
 * Fake of `@kit.MediaKit` `media`: `createAVPlayer()` and the `AVPlayer` playing an audio file
 * given by fd, typed from the SDK declaration (`@ohos.multimedia.media.d.ts`), with a recorder
 * for tests (`mediaSystem`).
 *
 * The state machine is the documented one, and the fake refuses what the device refuses:
 * - `fdSrc` is taken in `idle` only; the player then reaches `initialized` asynchronously (a
 *   `stateChange` event), or `error` (with an `error` event, 5400103 I/O error) when the fd is not
 *   one the app's resource manager opened;
 * - `audioRendererInfo` is taken in `initialized` only, `loop` in prepared / playing / paused /
 *   completed only; set elsewhere they are ignored with an `error` event 5400102 (operation not
 *   allowed), the state unchanged — the documented "intercepted call";
 * - `prepare()` from initialized or stopped, `play()` from prepared, paused or completed, `stop()`
 *   from prepared, playing, paused or completed; elsewhere they reject 5400102;
 * - `release()` from any state ends in `released`.
 * What was playing, with which `usage` and whether looping, is what tests read.
 */
import { ErrorCallback, FakeBusinessError } from './BasicServicesKit';
import { audio } from './AudioKit';
import { appResources } from './LocalizationKit';

/** The `media` namespace. */
export namespace media {
  /** An AVPlayer's state. */
  export type AVPlayerState = 'idle' | 'initialized' | 'prepared' | 'playing' | 'paused' | 'completed' | 'stopped' | 'released' | 'error';
  /** Why the state changed. */
  export enum StateChangeReason { USER = 1, BACKGROUND = 2 }
  /** A media file by descriptor: the fd, and where in it the media lies. */
  export interface AVFileDescriptor {
    /** The file descriptor. */
    fd: number;
    /** Where the media starts, bytes (default 0). */
    offset?: number;
    /** Its length, bytes (default: to the end). */
    length?: number;
  }
  /** The `stateChange` callback. */
  export type OnAVPlayerStateChangeHandle = (state: AVPlayerState, reason: StateChangeReason) => void;
  /** A media player. */
  export interface AVPlayer {
    /** The current state. */
    readonly state: AVPlayerState;
    /** A media file by descriptor; idle only. */
    fdSrc?: AVFileDescriptor;
    /** Whether playback loops; prepared, playing, paused or completed only. */
    loop: boolean;
    /** The audio stream's usage; initialized only, before `prepare`. */
    audioRendererInfo?: audio.AudioRendererInfo;
    /** Prepares playback. */
    prepare(): Promise<void>;
    /** Starts playing. */
    play(): Promise<void>;
    /** Pauses. */
    pause(): Promise<void>;
    /** Stops. */
    stop(): Promise<void>;
    /** Back to idle. */
    reset(): Promise<void>;
    /** Frees the player; final. */
    release(): Promise<void>;
    /** Subscribes to state changes. */
    on(type: 'stateChange', callback: OnAVPlayerStateChangeHandle): void;
    /** Subscribes to errors. */
    on(type: 'error', callback: ErrorCallback): void;
    /** Unsubscribes from state changes. */
    off(type: 'stateChange', callback?: OnAVPlayerStateChangeHandle): void;
    /** Unsubscribes from errors. */
    off(type: 'error', callback?: ErrorCallback): void;
  }
  /** A new player, in `idle`. */
  export function createAVPlayer(): Promise<AVPlayer> {
    const player = new FakeAVPlayer();
    mediaSystem.players.push(player);
    return Promise.resolve(player);
  }
}

/** A fake AVPlayer, readable by tests. */
export class FakeAVPlayer implements media.AVPlayer {
  private current: media.AVPlayerState = 'idle';
  private source: media.AVFileDescriptor | undefined = undefined;
  private looping = false;
  private renderer: audio.AudioRendererInfo | undefined = undefined;
  private readonly stateListeners: media.OnAVPlayerStateChangeHandle[] = [];
  private readonly errorListeners: ErrorCallback[] = [];
  /** The raw file the player reads, once `fdSrc` was accepted. */
  file: string | undefined = undefined;
  /** Every state it went through, in order. */
  readonly states: media.AVPlayerState[] = ['idle'];
  /** Every intercepted call (error event without a state change). */
  readonly refusals: string[] = [];

  get state(): media.AVPlayerState { return this.current; }

  get fdSrc(): media.AVFileDescriptor | undefined { return this.source; }
  set fdSrc(value: media.AVFileDescriptor | undefined) {
    if (this.current !== 'idle' || value === undefined) {
      this.refuse(`fdSrc in ${this.current}`);
      return;
    }
    this.source = value;
    const file = appResources.fileOf(value.fd);
    setImmediate(() => {
      if (this.current !== 'idle') return;
      if (file === undefined) {
        this.to('error');
        this.emitError(new FakeBusinessError(5400103, `IO error: fd ${value.fd} is not open`));
        return;
      }
      this.file = file;
      this.to('initialized');
    });
  }

  get loop(): boolean { return this.looping; }
  set loop(value: boolean) {
    if (!['prepared', 'playing', 'paused', 'completed'].includes(this.current)) {
      this.refuse(`loop in ${this.current}`);
      return;
    }
    this.looping = value;
  }

  get audioRendererInfo(): audio.AudioRendererInfo | undefined { return this.renderer; }
  set audioRendererInfo(value: audio.AudioRendererInfo | undefined) {
    if (this.current !== 'initialized') {
      this.refuse(`audioRendererInfo in ${this.current}`);
      return;
    }
    this.renderer = value;
  }

  /** The usage it plays with: STREAM_USAGE_MUSIC unless set (audio files). */
  usage(): audio.StreamUsage {
    return this.renderer?.usage ?? audio.StreamUsage.STREAM_USAGE_MUSIC;
  }

  prepare(): Promise<void> { return this.step(['initialized', 'stopped'], 'prepared', 'prepare'); }
  play(): Promise<void> { return this.step(['prepared', 'paused', 'completed'], 'playing', 'play'); }
  pause(): Promise<void> { return this.step(['playing'], 'paused', 'pause'); }
  stop(): Promise<void> { return this.step(['prepared', 'playing', 'paused', 'completed'], 'stopped', 'stop'); }
  reset(): Promise<void> {
    if (this.current === 'released') return Promise.reject(new FakeBusinessError(5400102, 'Operation not allowed: reset in released'));
    this.source = undefined;
    this.looping = false;
    this.to('idle');
    return Promise.resolve();
  }
  release(): Promise<void> {
    if (this.current !== 'released') this.to('released');
    return Promise.resolve();
  }

  on(type: 'stateChange' | 'error', callback: media.OnAVPlayerStateChangeHandle | ErrorCallback): void {
    if (type === 'stateChange') this.stateListeners.push(callback as media.OnAVPlayerStateChangeHandle);
    else if (type === 'error') this.errorListeners.push(callback as ErrorCallback);
    else throw new FakeBusinessError(401, `Parameter error: type ${String(type)}`);
  }

  off(type: 'stateChange' | 'error', callback?: media.OnAVPlayerStateChangeHandle | ErrorCallback): void {
    const list: Function[] = type === 'stateChange' ? this.stateListeners : this.errorListeners;
    for (let i = list.length - 1; i >= 0; i--) if (callback === undefined || list[i] === callback) list.splice(i, 1);
  }

  /** Whether it is playing now. */
  isPlaying(): boolean {
    return this.current === 'playing';
  }

  private step(from: media.AVPlayerState[], to: media.AVPlayerState, api: string): Promise<void> {
    if (!from.includes(this.current)) {
      return Promise.reject(new FakeBusinessError(5400102, `Operation not allowed: ${api} in ${this.current}`));
    }
    this.to(to);
    return Promise.resolve();
  }

  private to(state: media.AVPlayerState): void {
    this.current = state;
    this.states.push(state);
    for (const listener of this.stateListeners.slice()) listener(state, media.StateChangeReason.USER);
  }

  private refuse(what: string): void {
    this.refusals.push(what);
    this.emitError(new FakeBusinessError(5400102, `Operation not allowed: ${what}`));
  }

  private emitError(error: FakeBusinessError): void {
    for (const listener of this.errorListeners.slice()) listener(error);
  }
}

/** The players the app made, for tests. */
export class MediaSystem {
  /** Every player created, oldest first. */
  readonly players: FakeAVPlayer[] = [];

  /** The players playing now. */
  playing(): FakeAVPlayer[] {
    return this.players.filter((p) => p.isPlaying());
  }

  /** Players neither released nor in error: what the app still holds. */
  unreleased(): FakeAVPlayer[] {
    return this.players.filter((p) => p.state !== 'released');
  }

  /** Forgets every player. */
  reset(): void {
    this.players.length = 0;
  }
}

/** The media system of this fake device. */
export const mediaSystem = new MediaSystem();
