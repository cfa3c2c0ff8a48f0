/**
 * Fake of `@kit.AbilityKit`: `UIAbility` with its context (`filesDir`, `abilityInfo`), `Want`,
 * `AbilityConstant`, and a test control that starts an ability the way the system does — the
 * class is constructed, its context set, and `onCreate(want, launchParam)` called synchronously.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The SDK's `Ability` base class; `pushService.receiveMessage` takes one. */
export class Ability {}

/** What starts an ability. */
export interface Want {
  /** Bundle of the target ability. */
  bundleName?: string;
  /** Name of the target ability. */
  abilityName?: string;
  /** Action, e.g. `action.ohos.push.listener`. */
  action?: string;
}

/** Launch reasons and parameters. */
export namespace AbilityConstant {
  /** Why an ability was started. */
  export enum LaunchReason { UNKNOWN = 0, START_ABILITY = 1, CALL = 2, CONTINUATION = 3, APP_RECOVERY = 4, SHARE = 5, AUTO_STARTUP = 8, INSIGHT_INTENT = 9, PREPARE_CONTINUATION = 10 }
  /** Why the app last exited. */
  export enum LastExitReason { UNKNOWN = 0, NORMAL = 2 }
  /** The parameters of a launch. */
  export interface LaunchParam {
    /** Why. */
    launchReason: LaunchReason;
    /** How the app last exited. */
    lastExitReason: LastExitReason;
    /** The last exit message. */
    lastExitMessage: string;
  }
}

/** Contexts. */
export namespace common {
  /** What `UIAbilityContext.abilityInfo` tells. */
  export class AbilityInfo {
    constructor(
      /** The bundle name. */
      readonly bundleName: string,
      /** The ability's name (as in `module.json5`). */
      readonly name: string,
    ) {}
  }
  /** The context of a UIAbility: the app's sandbox paths and the ability's description. */
  export class UIAbilityContext {
    constructor(
      /** The app's files directory (`/data/storage/el2/base/haps/<module>/files` on a device). */
      readonly filesDir: string,
      /** The ability. */
      readonly abilityInfo: AbilityInfo,
    ) {}
  }
}

/** The SDK's `UIAbility`: apps extend it and override the lifecycle callbacks. */
export class UIAbility extends Ability {
  /** Set by the system before `onCreate`. */
  context: common.UIAbilityContext = new common.UIAbilityContext('', new common.AbilityInfo('', ''));
  /** First callback of the lifecycle; synchronous. */
  onCreate(_want: Want, _launchParam: AbilityConstant.LaunchParam): void {}
  /** Last callback of the lifecycle. */
  onDestroy(): void | Promise<void> {}
}

/** A started ability and where its files live. */
export class StartedAbility<A extends UIAbility> {
  constructor(
    /** The ability, after its `onCreate`. */
    readonly ability: A,
    /** Its files directory. */
    readonly filesDir: string,
  ) {}
}

/**
 * Test control: starts `AbilityClass` as the system does for a push (`launchReason`
 * START_ABILITY, the `action.ohos.push.listener` want), with a fresh files directory unless
 * `filesDir` is given (an app restart keeps its files).
 */
export function startAbility<A extends UIAbility>(
  AbilityClass: new () => A,
  name: string,
  filesDir?: string,
): StartedAbility<A> {
  const dir = filesDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'callpush-ets-files-'));
  fs.mkdirSync(dir, { recursive: true });
  const ability = new AbilityClass();
  ability.context = new common.UIAbilityContext(dir, new common.AbilityInfo('com.example.callpush', name));
  const want: Want = { bundleName: 'com.example.callpush', abilityName: name, action: 'action.ohos.push.listener' };
  ability.onCreate(want, {
    launchReason: AbilityConstant.LaunchReason.START_ABILITY,
    lastExitReason: AbilityConstant.LastExitReason.NORMAL,
    lastExitMessage: '',
  });
  return new StartedAbility(ability, dir);
}
