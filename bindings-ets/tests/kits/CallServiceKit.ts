/**
 * Fake of `@kit.CallServiceKit` `voipCall`, typed from the SDK declaration (API 11/12:
 * `on`/`off('voipCallUiEvent')`, `reportIncomingCall`, `reportOutgoingCall`,
 * `reportCallStateChange`, `reportIncomingCallError`, `reportCallAudioEventChange`) and behaving
 * as the documentation describes, with a recorder and controls for tests (`voipCallSystem`).
 *
 * What it enforces, and where the rule comes from:
 * - Parameters are checked as the SDK does; a bad one throws BusinessError 401.
 * - A VoIP push delivered by Push Kit must be answered with `reportIncomingCall` (or
 *   `reportIncomingCallError`) for its `callId` within 10 s (Push Kit's in-app call messages guide, 推送应用内通话消息: 应用需要在10秒内
 *   调用voipCall.reportIncomingCall()). The guide does not say what the system does otherwise; like
 *   iOS PushKit, whose rule this mirrors, the fake treats the app as misbehaving: it records a
 *   violation, and the system forgets the call id, so a late report answers
 *   `ErrorReason.INVALID_CALL` (an assumption; documented here so tests state it).
 * - A second `reportIncomingCall` for a call the system already shows answers
 *   `ErrorReason.VOIP_CALL_EXISTS`; the guide asks apps to report a duplicate push with
 *   `reportIncomingCallError(callId, ROUTE_BUSY)` instead (线路忙).
 * - State changes for a call id the system does not know throw 1007200001 (invalid parameter
 *   value); after DISCONNECTED the call is gone.
 */
import { Callback, FakeBusinessError } from './BasicServicesKit';
import { image } from './ImageKit';

/** The `voipCall` namespace as the SDK declares it. */
export namespace voipCall {
  /** Voice or video. */
  export enum VoipCallType { VOIP_CALL_VOICE = 0, VOIP_CALL_VIDEO = 1 }
  /** Call states an app reports. */
  export enum VoipCallState {
    VOIP_CALL_STATE_IDLE = 0,
    VOIP_CALL_STATE_RINGING = 1,
    VOIP_CALL_STATE_ACTIVE = 2,
    VOIP_CALL_STATE_HOLDING = 3,
    VOIP_CALL_STATE_DISCONNECTED = 4,
    VOIP_CALL_STATE_DIALING = 5,
    VOIP_CALL_STATE_ANSWERED = 6,
    VOIP_CALL_STATE_DISCONNECTING = 7,
  }
  /** What the user did on the system call UI. */
  export enum VoipCallUiEvent {
    VOIP_CALL_EVENT_NONE = 0,
    VOIP_CALL_EVENT_VOICE_ANSWER = 1,
    VOIP_CALL_EVENT_VIDEO_ANSWER = 2,
    VOIP_CALL_EVENT_REJECT = 3,
    VOIP_CALL_EVENT_HANGUP = 4,
    VOIP_CALL_EVENT_MUTED = 5,
    VOIP_CALL_EVENT_UNMUTED = 6,
    VOIP_CALL_EVENT_SPEAKER_ON = 7,
    VOIP_CALL_EVENT_SPEAKER_OFF = 8,
  }
  /** Why a report was refused. */
  export enum ErrorReason {
    ERROR_NONE = 0,
    CELLULAR_CALL_EXISTS = 1,
    VOIP_CALL_EXISTS = 2,
    INVALID_CALL = 3,
    USER_ANSWER_CELLULAR_FIRST = 4,
  }
  /** Why an incoming call could not be set up (`reportIncomingCallError`). */
  export enum VoipCallFailureCause { OTHER = 0, ROUTE_BUSY = 1, CONNECTION_FAILED = 2 }
  /** Audio events an app reports. */
  export enum CallAudioEvent { AUDIO_EVENT_MUTED = 0, AUDIO_EVENT_UNMUTED = 1, AUDIO_EVENT_SPEAKER_ON = 2, AUDIO_EVENT_SPEAKER_OFF = 3 }
  /** A call as reported to the system. */
  export interface VoipCallAttribute {
    /** The system call id (from `receiveMessage('VoIP')` for pushed calls). */
    callId: string;
    /** Voice or video. */
    voipCallType: VoipCallType;
    /** The other party's name, shown on the banner. */
    userName: string;
    /** The other party's picture. */
    userProfile: image.PixelMap;
    /** The ability the system starts for the call UI. */
    abilityName: string;
    /** RINGING for incoming, DIALING for outgoing. */
    voipCallState: VoipCallState;
    /** Whether the banner shows (default true). */
    showBannerForIncomingCall?: boolean;
  }
  /** One `voipCallUiEvent`. */
  export interface VoipCallUiEventInfo {
    /** The system call id. */
    callId: string;
    /** What the user did. */
    voipCallUiEvent: VoipCallUiEvent;
    /** Set when the event is caused by an error. */
    errorReason: ErrorReason;
  }

  /** Subscribes to the user's actions on the system call UI. */
  export function on(type: 'voipCallUiEvent', callback: Callback<VoipCallUiEventInfo>): void {
    checkType(type);
    if (typeof callback !== 'function') throw new FakeBusinessError(401, 'Parameter error: callback');
    state.listeners.push(callback);
  }
  /** Unsubscribes `callback`, or every subscriber. */
  export function off(type: 'voipCallUiEvent', callback?: Callback<VoipCallUiEventInfo>): void {
    checkType(type);
    state.listeners = callback === undefined ? [] : state.listeners.filter((l) => l !== callback);
  }
  /** Reports an incoming call; the system shows its banner. */
  export function reportIncomingCall(voipCallAttribute: VoipCallAttribute): Promise<ErrorReason> {
    checkAttribute(voipCallAttribute, VoipCallState.VOIP_CALL_STATE_RINGING);
    return system.answerReport('reportIncomingCall', voipCallAttribute);
  }
  /** Reports an outgoing call (API 12). */
  export function reportOutgoingCall(voipCallAttribute: VoipCallAttribute): Promise<ErrorReason> {
    checkAttribute(voipCallAttribute, VoipCallState.VOIP_CALL_STATE_DIALING);
    return system.answerReport('reportOutgoingCall', voipCallAttribute);
  }
  /** Reports a state change of a call the system knows. */
  export function reportCallStateChange(callId: string, callState: VoipCallState): Promise<void> {
    if (typeof callId !== 'string' || callId.length === 0 || !(callState in VoipCallState)) {
      throw new FakeBusinessError(401, 'Parameter error: callId and callState');
    }
    return system.stateChange(callId, callState);
  }
  /** Reports that an incoming call from a push could not be set up. */
  export function reportIncomingCallError(callId: string, voipCallFailureCause: VoipCallFailureCause): Promise<void> {
    if (typeof callId !== 'string' || callId.length === 0 || !(voipCallFailureCause in VoipCallFailureCause)) {
      throw new FakeBusinessError(401, 'Parameter error: callId and voipCallFailureCause');
    }
    system.record(new VoipReport('reportIncomingCallError', callId, VoipCallFailureCause[voipCallFailureCause]));
    system.settle(callId);
    return Promise.resolve();
  }
  /** Reports mute and speaker changes. */
  export function reportCallAudioEventChange(callId: string, callAudioEvent: CallAudioEvent): Promise<void> {
    system.record(new VoipReport('reportCallAudioEventChange', callId, CallAudioEvent[callAudioEvent]));
    return Promise.resolve();
  }

  function checkType(type: string): void {
    if (type !== 'voipCallUiEvent') throw new FakeBusinessError(401, `Parameter error: type ${type}`);
  }

  function checkAttribute(a: VoipCallAttribute, expected: VoipCallState): void {
    const problems: string[] = [];
    if (typeof a !== 'object' || a === null) throw new FakeBusinessError(401, 'Parameter error: voipCallAttribute');
    if (typeof a.callId !== 'string' || a.callId.length === 0) problems.push('callId');
    if (!(a.voipCallType in VoipCallType)) problems.push('voipCallType');
    if (typeof a.userName !== 'string') problems.push('userName');
    if (!image.isPixelMap(a.userProfile)) problems.push('userProfile');
    if (typeof a.abilityName !== 'string' || a.abilityName.length === 0) problems.push('abilityName');
    if (a.voipCallState !== expected) problems.push(`voipCallState (${VoipCallState[expected]} expected)`);
    if (problems.length > 0) throw new FakeBusinessError(401, `Parameter error: ${problems.join(', ')}`);
  }
}

/** One call of the app into `voipCall`, as recorded. */
export class VoipReport {
  /** Milliseconds since the push of this call id was delivered, if it came by push. */
  sincePushMs: number | undefined = undefined;
  constructor(
    /** The function called. */
    readonly api: string,
    /** The system call id. */
    readonly callId: string,
    /** Its argument in words: the state, cause, or `userName` / type for reports. */
    readonly detail: string,
    /** The attribute, for `reportIncomingCall` and `reportOutgoingCall`. */
    readonly attribute?: voipCall.VoipCallAttribute,
    /** What the system answered (`ERROR_NONE`, `VOIP_CALL_EXISTS`, …, or a thrown code). */
    public answer: string = '',
  ) {}
  /** `api callId detail` — handy in assertions. */
  toString(): string {
    return `${this.api} ${this.callId} ${this.detail}${this.answer ? ` → ${this.answer}` : ''}`;
  }
}

/** A time-limit breach: a pushed call id not reported within the limit. */
export class Violation {
  constructor(
    /** The system call id of the push. */
    readonly callId: string,
    /** The limit that was missed, ms. */
    readonly limitMs: number,
    /** What happened. */
    readonly message: string,
  ) {}
}

/** A call the system shows. */
class SystemCall {
  constructor(readonly attribute: voipCall.VoipCallAttribute, public state: voipCall.VoipCallState) {}
}

class State {
  listeners: Callback<voipCall.VoipCallUiEventInfo>[] = [];
}
const state = new State();

/**
 * The system side of `voipCall`, for tests: what the app reported, the 10 s rule, and the user's
 * taps on the banner.
 */
export class VoipCallSystem {
  /** How long the app has to report a pushed call, ms (10 000 on devices). */
  reportLimitMs = 10_000;
  /** Answers `reportIncomingCall` with CELLULAR_CALL_EXISTS while set (a carrier call is up). */
  cellularCallActive = false;
  /** Every call into `voipCall`, in order. */
  readonly reports: VoipReport[] = [];
  /** Pushed call ids not reported in time. */
  readonly violations: Violation[] = [];
  private readonly calls = new Map<string, SystemCall>();
  private readonly pending = new Map<string, { deliveredAt: number; timer: NodeJS.Timeout }>();
  private readonly delivered = new Map<string, number>();
  private readonly expired = new Set<string>();

  /** Push Kit delivered a VoIP message for `callId` now: the report clock starts. */
  pushDelivered(callId: string): void {
    const deliveredAt = Date.now();
    this.delivered.set(callId, deliveredAt);
    const timer = setTimeout(() => {
      this.pending.delete(callId);
      this.expired.add(callId);
      this.violations.push(new Violation(callId, this.reportLimitMs,
        `the VoIP push of ${callId} was not reported to voipCall within ${this.reportLimitMs} ms`));
    }, this.reportLimitMs);
    timer.unref();
    this.pending.set(callId, { deliveredAt, timer });
  }

  /** The app answered the push of `callId` (reported it, or reported an error). */
  settle(callId: string): void {
    const pending = this.pending.get(callId);
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      this.pending.delete(callId);
    }
  }

  /** Records one call into `voipCall`. */
  record(report: VoipReport): VoipReport {
    const at = this.delivered.get(report.callId);
    report.sincePushMs = at === undefined ? undefined : Date.now() - at;
    this.reports.push(report);
    return report;
  }

  /** What the system answers a report (incoming or outgoing). */
  answerReport(api: string, attribute: voipCall.VoipCallAttribute): Promise<voipCall.ErrorReason> {
    const report = this.record(new VoipReport(api, attribute.callId,
      `${attribute.userName} ${voipCall.VoipCallType[attribute.voipCallType]}`, attribute));
    let answer = voipCall.ErrorReason.ERROR_NONE;
    if (this.expired.has(attribute.callId)) {
      answer = voipCall.ErrorReason.INVALID_CALL;
    } else if (this.calls.has(attribute.callId)) {
      answer = voipCall.ErrorReason.VOIP_CALL_EXISTS;
    } else if (api === 'reportIncomingCall' && this.cellularCallActive) {
      answer = voipCall.ErrorReason.CELLULAR_CALL_EXISTS;
    }
    this.settle(attribute.callId);
    if (answer === voipCall.ErrorReason.ERROR_NONE) {
      this.calls.set(attribute.callId, new SystemCall(attribute, attribute.voipCallState));
    }
    report.answer = voipCall.ErrorReason[answer];
    return Promise.resolve(answer);
  }

  /** A state change of a known call. */
  stateChange(callId: string, callState: voipCall.VoipCallState): Promise<void> {
    const report = this.record(new VoipReport('reportCallStateChange', callId, voipCall.VoipCallState[callState]));
    const call = this.calls.get(callId);
    if (call === undefined) {
      report.answer = '1007200001';
      return Promise.reject(new FakeBusinessError(1007200001, `Invalid parameter value: no call ${callId}`));
    }
    call.state = callState;
    if (callState === voipCall.VoipCallState.VOIP_CALL_STATE_DISCONNECTED) this.calls.delete(callId);
    return Promise.resolve();
  }

  /** The user tapped `event` on the banner of `callId` (or the system hung it up). */
  userAction(callId: string, event: voipCall.VoipCallUiEvent): void {
    if (!this.calls.has(callId)) throw new Error(`the system shows no call ${callId}`);
    const info: voipCall.VoipCallUiEventInfo = { callId, voipCallUiEvent: event, errorReason: voipCall.ErrorReason.ERROR_NONE };
    if (state.listeners.length === 0) throw new Error(`nobody listens to voipCallUiEvent; ${callId} cannot be answered`);
    for (const listener of state.listeners.slice()) listener(info);
  }

  /** Whether the system shows `callId`, and in which state. */
  stateOf(callId: string): voipCall.VoipCallState | undefined {
    return this.calls.get(callId)?.state;
  }

  /** The reports about `callId`, as strings (`api callId detail → answer`). */
  reportsOf(callId: string): string[] {
    return this.reports.filter((r) => r.callId === callId).map((r) => r.toString());
  }

  /** How many `voipCallUiEvent` listeners are subscribed. */
  listenerCount(): number {
    return state.listeners.length;
  }

  /** Back to a fresh device. */
  reset(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.delivered.clear();
    this.expired.clear();
    this.calls.clear();
    this.reports.length = 0;
    this.violations.length = 0;
    this.cellularCallActive = false;
    this.reportLimitMs = 10_000;
    state.listeners = [];
  }
}

/** The one system of this fake device. */
export const voipCallSystem = new VoipCallSystem();
const system = voipCallSystem;
