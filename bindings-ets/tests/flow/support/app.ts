/**
 * A HarmonyOS app as bindings-ets/README.md tells developers to write it: the ability that
 * declares `action.ohos.push.listener` installs callpush first thing in `onCreate`,
 * synchronously. The tests let the fake system start it (on a push, or as the user opening the
 * app), exactly as a device would.
 */
import { AbilityConstant, UIAbility, Want } from '@kit.AbilityKit';
import { hilog } from '@kit.PerformanceAnalysisKit';
import { AccessTokenProvider, CallPush, CallPushOptions } from '../../../callpush/Index';

/** The app's access tokens: here the server's own `callpush token`, as a real app's sign-in would give. */
export class ServerTokens implements AccessTokenProvider {
  /** How many tokens were asked for. */
  asked = 0;
  constructor(private readonly mint: () => string) {}
  accessToken(_forceRefresh: boolean): Promise<string> {
    this.asked += 1;
    return Promise.resolve(this.mint());
  }
}

/** What the next `VoipAbility` is installed with, and the CallPush it made. */
export class AppProcess {
  /** Options of the next install. */
  static options: CallPushOptions | undefined = undefined;
  /** The CallPush of the running process. */
  static callPush: CallPush | undefined = undefined;
}

/** The app's push-listener ability, as in the README. */
export class VoipAbility extends UIAbility {
  onCreate(_want: Want, _launchParam: AbilityConstant.LaunchParam): void {
    const options = AppProcess.options;
    if (options === undefined) throw new Error('AppProcess.options not set');
    // Registers receiveMessage('VoIP') before anything is awaited, then the token in the background.
    AppProcess.callPush = CallPush.install(this, options);
    hilog.info(0x0000, 'app', 'VoipAbility onCreate done');
  }
}
