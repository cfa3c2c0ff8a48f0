/**
 * Fake of `@kit.SensorServiceKit` `vibrator`: `startVibration(effect, attribute): Promise<void>`
 * and `stopVibration(): Promise<void>` (API 9 / 10), typed from the SDK declaration
 * (`@ohos.vibrator.d.ts`), with the device's vibrator as a test control (`vibratorDevice`).
 *
 * As documented: both need `ohos.permission.VIBRATE` (201 without it — set `permitted` false); a
 * bad effect or attribute (a `time` effect outside (0, 1 800 000] ms, a `usage` that is not one of
 * the SDK's) throws 401; a new vibration replaces the one running; `stopVibration()` stops every
 * kind. The vibrator records every pulse with its usage, so tests see the pattern.
 */
import { FakeBusinessError } from './BasicServicesKit';

/** The `vibrator` namespace, the parts used here. */
export namespace vibrator {
  /** What a vibration is for; the system applies the matching switches (ring, silent mode…). */
  export type Usage = 'unknown' | 'alarm' | 'ring' | 'notification' | 'communication' | 'touch' | 'media' | 'physicalFeedback' | 'simulateReality';
  /** A vibration of a set duration. */
  export interface VibrateTime {
    /** `time`. */
    type: 'time';
    /** How long, ms, in (0, 1 800 000]. */
    duration: number;
  }
  /** A preset effect. */
  export interface VibratePreset {
    /** `preset`. */
    type: 'preset';
    /** The effect's id, e.g. `haptic.clock.timer`. */
    effectId: string;
    /** How many times. */
    count: number;
  }
  /** What to vibrate (the parts faked here). */
  export type VibrateEffect = VibrateTime | VibratePreset;
  /** How to vibrate. */
  export interface VibrateAttribute {
    /** The vibrator (default 0). */
    id?: number;
    /** What for. */
    usage: Usage;
  }
  /** Starts a vibration. */
  export function startVibration(effect: VibrateEffect, attribute: VibrateAttribute): Promise<void> {
    return vibratorDevice.start(effect, attribute);
  }
  /** Stops every vibration. */
  export function stopVibration(): Promise<void> {
    return vibratorDevice.stop();
  }
}

const USAGES: vibrator.Usage[] = ['unknown', 'alarm', 'ring', 'notification', 'communication', 'touch', 'media', 'physicalFeedback', 'simulateReality'];

/** One vibration the app started. */
export class Pulse {
  constructor(
    /** When, ms since the epoch. */
    readonly at: number,
    /** How long, ms. */
    readonly durationMs: number,
    /** What for. */
    readonly usage: vibrator.Usage,
    /** Its place among the vibrator's calls. */
    readonly seq: number,
  ) {}
}

/** The device's vibrator, for tests. */
export class VibratorDevice {
  /** Whether the app holds `ohos.permission.VIBRATE`. */
  permitted = true;
  /** Every vibration started, oldest first. */
  readonly pulses: Pulse[] = [];
  /** How many times `stopVibration` was called. */
  stops = 0;
  /** When `stopVibration` was last called, ms since the epoch (0: never). */
  stoppedAt = 0;
  private until = 0;
  private calls = 0;
  private stopSeq = 0;

  start(effect: vibrator.VibrateEffect, attribute: vibrator.VibrateAttribute): Promise<void> {
    if (typeof attribute !== 'object' || attribute === null || !USAGES.includes(attribute.usage)) {
      throw new FakeBusinessError(401, 'Parameter error: attribute.usage');
    }
    let duration = 0;
    if (effect.type === 'time') {
      if (!Number.isInteger(effect.duration) || effect.duration <= 0 || effect.duration > 1_800_000) {
        throw new FakeBusinessError(401, 'Parameter error: effect.duration');
      }
      duration = effect.duration;
    } else if (effect.type === 'preset') {
      duration = 100 * Math.max(1, effect.count);
    } else {
      throw new FakeBusinessError(401, 'Parameter error: effect.type');
    }
    if (!this.permitted) return Promise.reject(new FakeBusinessError(201, 'Permission denied: ohos.permission.VIBRATE'));
    this.calls += 1;
    this.pulses.push(new Pulse(Date.now(), duration, attribute.usage, this.calls));
    this.until = Date.now() + duration;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (!this.permitted) return Promise.reject(new FakeBusinessError(201, 'Permission denied: ohos.permission.VIBRATE'));
    this.stops += 1;
    this.calls += 1;
    this.stopSeq = this.calls;
    this.stoppedAt = Date.now();
    this.until = 0;
    return Promise.resolve();
  }

  /** Whether it vibrates now. */
  isVibrating(): boolean {
    return Date.now() < this.until;
  }

  /** Whether a pattern runs: some vibration started with `usage` since the last stop. */
  patternRuns(usage: vibrator.Usage): boolean {
    const last = this.pulses[this.pulses.length - 1];
    return last !== undefined && last.usage === usage && last.seq > this.stopSeq;
  }

  /** A fresh device. */
  reset(): void {
    this.permitted = true;
    this.pulses.length = 0;
    this.stops = 0;
    this.stoppedAt = 0;
    this.until = 0;
    this.calls = 0;
    this.stopSeq = 0;
  }
}

/** The vibrator of this fake device. */
export const vibratorDevice = new VibratorDevice();
