/**
 * Fake of `@kit.AbilityKit`: `UIAbility` with its context (`filesDir`, `abilityInfo`,
 * `resourceManager`, `getApplicationContext()`), `Want`, `AbilityConstant`,
 * `AbilityLifecycleCallback` and the application context's `on/off('abilityLifecycle')`, typed
 * from the SDK declarations, and two test controls: `startAbility` starts an ability the way the
 * system does (the class is constructed, its context set, and `onCreate(want, launchParam)` called
 * synchronously), and `abilitySystem` moves it through the rest of its lifecycle as the system
 * does — window stage created, foreground, window active, background, destroyed — calling the
 * ability's own callbacks and then every registered `AbilityLifecycleCallback`.
 *
 * `abilitySystem` also knows which abilities have their UI loaded and shown (window active), which
 * is what `notificationManager.requestEnableNotification` needs (NotificationKit.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeBusinessError } from './BasicServicesKit';
import { window } from './ArkUI';
import { appResources, resourceManager } from './LocalizationKit';

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
  /** The application's context: the app-wide lifecycle subscriptions. */
  export class ApplicationContext {
    private nextId = 1;
    private readonly callbacks = new Map<number, AbilityLifecycleCallback>();
    /** Subscribes `callback` to every UIAbility of the app; returns its id for `off`. */
    on(type: 'abilityLifecycle', callback: AbilityLifecycleCallback): number {
      if (type !== 'abilityLifecycle' || typeof callback !== 'object' || callback === null) {
        throw new FakeBusinessError(401, 'Parameter error: type and callback');
      }
      const id = this.nextId;
      this.nextId += 1;
      this.callbacks.set(id, callback);
      return id;
    }
    /** Unsubscribes the callback `callbackId` (16000050 when there is none). */
    off(type: 'abilityLifecycle', callbackId: number): Promise<void> {
      if (type !== 'abilityLifecycle' || !this.callbacks.delete(callbackId)) {
        return Promise.reject(new FakeBusinessError(16000050, `Internal error: no lifecycle callback ${callbackId}`));
      }
      return Promise.resolve();
    }
    /** The callbacks subscribed (test side). */
    subscribed(): AbilityLifecycleCallback[] {
      return [...this.callbacks.values()];
    }
    /** The process ended: its subscriptions are gone (test side). */
    clear(): void {
      this.callbacks.clear();
    }
  }
  /** The context of a UIAbility: the app's sandbox paths, resources and the ability's description. */
  export class UIAbilityContext {
    /** The app's resources (its `resources/rawfile` files). */
    readonly resourceManager: resourceManager.ResourceManager = appResources;
    constructor(
      /** The app's files directory (`/data/storage/el2/base/haps/<module>/files` on a device). */
      readonly filesDir: string,
      /** The ability. */
      readonly abilityInfo: AbilityInfo,
    ) {}
    /** The application's context. */
    getApplicationContext(): ApplicationContext {
      return applicationContext;
    }
  }
}

/** The app's one application context. */
const applicationContext = new common.ApplicationContext();

/**
 * What the system calls for every UIAbility of the app once subscribed with
 * `ApplicationContext.on('abilityLifecycle')`. The SDK declares the nine methods below as required
 * (and more, optional ones); subclasses override what they need.
 */
export class AbilityLifecycleCallback {
  /** An ability was created. */
  onAbilityCreate(_ability: UIAbility): void {}
  /** An ability's window stage was created. */
  onWindowStageCreate(_ability: UIAbility, _windowStage: window.WindowStage): void {}
  /** An ability's window stage got focus: it is shown. */
  onWindowStageActive(_ability: UIAbility, _windowStage: window.WindowStage): void {}
  /** An ability's window stage lost focus. */
  onWindowStageInactive(_ability: UIAbility, _windowStage: window.WindowStage): void {}
  /** An ability's window stage was destroyed. */
  onWindowStageDestroy(_ability: UIAbility, _windowStage: window.WindowStage): void {}
  /** An ability was destroyed. */
  onAbilityDestroy(_ability: UIAbility): void {}
  /** An ability came to the foreground. */
  onAbilityForeground(_ability: UIAbility): void {}
  /** An ability went to the background. */
  onAbilityBackground(_ability: UIAbility): void {}
  /** An ability was migrated. */
  onAbilityContinue(_ability: UIAbility): void {}
}

/** The SDK's `UIAbility`: apps extend it and override the lifecycle callbacks. */
export class UIAbility extends Ability {
  /** Set by the system before `onCreate`. */
  context: common.UIAbilityContext = new common.UIAbilityContext('', new common.AbilityInfo('', ''));
  /** First callback of the lifecycle; synchronous. */
  onCreate(_want: Want, _launchParam: AbilityConstant.LaunchParam): void {}
  /** The window stage exists: load the UI (`windowStage.loadContent`). */
  onWindowStageCreate(_windowStage: window.WindowStage): void {}
  /** The ability is in the foreground. */
  onForeground(): void {}
  /** The ability went to the background. */
  onBackground(): void {}
  /** Last callback of the lifecycle. */
  onDestroy(): void | Promise<void> {}
}

/** The system's side of the abilities' lifecycle, for tests. */
export class AbilitySystem {
  private readonly stages = new Map<UIAbility, window.WindowStage>();
  private readonly shown = new Set<common.UIAbilityContext>();

  /** The user opens `ability`: window stage created (UI loaded), foreground, window active. */
  open(ability: UIAbility): void {
    this.windowStageCreate(ability);
    this.foreground(ability);
    this.windowActive(ability);
  }

  /** The window stage of `ability` is created; the ability loads its UI in `onWindowStageCreate`. */
  windowStageCreate(ability: UIAbility): window.WindowStage {
    const stage = new window.WindowStage();
    this.stages.set(ability, stage);
    ability.onWindowStageCreate(stage);
    for (const c of applicationContext.subscribed()) c.onWindowStageCreate(ability, stage);
    return stage;
  }

  /** `ability` comes to the foreground. */
  foreground(ability: UIAbility): void {
    ability.onForeground();
    for (const c of applicationContext.subscribed()) c.onAbilityForeground(ability);
  }

  /** The window of `ability` is shown and gets focus: its UI is loaded. */
  windowActive(ability: UIAbility): void {
    const stage = this.stages.get(ability);
    if (stage === undefined) throw new Error('windowActive before windowStageCreate');
    this.shown.add(ability.context);
    for (const c of applicationContext.subscribed()) c.onWindowStageActive(ability, stage);
  }

  /** `ability` goes to the background (its window is no longer shown). */
  background(ability: UIAbility): void {
    const stage = this.stages.get(ability);
    this.shown.delete(ability.context);
    if (stage !== undefined) for (const c of applicationContext.subscribed()) c.onWindowStageInactive(ability, stage);
    ability.onBackground();
    for (const c of applicationContext.subscribed()) c.onAbilityBackground(ability);
  }

  /** `ability` is destroyed (the user closed it, or the system did). */
  destroy(ability: UIAbility): void {
    const stage = this.stages.get(ability);
    this.shown.delete(ability.context);
    this.stages.delete(ability);
    if (stage !== undefined) for (const c of applicationContext.subscribed()) c.onWindowStageDestroy(ability, stage);
    void ability.onDestroy();
    for (const c of applicationContext.subscribed()) c.onAbilityDestroy(ability);
  }

  /** Whether `context`'s ability shows its loaded UI now. */
  hasShownUi(context: common.UIAbilityContext): boolean {
    return this.shown.has(context);
  }

  /** How many lifecycle callbacks the app has subscribed. */
  callbackCount(): number {
    return applicationContext.subscribed().length;
  }

  /** The app's process ended: no windows, no subscriptions. */
  appStopped(): void {
    this.stages.clear();
    this.shown.clear();
    applicationContext.clear();
  }
}

/** The ability lifecycle of this fake device. */
export const abilitySystem = new AbilitySystem();

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
