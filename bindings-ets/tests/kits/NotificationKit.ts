/**
 * Fake of `@kit.NotificationKit` `notificationManager` (`publish`, `cancel`,
 * `isNotificationEnabled`, `requestEnableNotification`) over one notification tray that Push
 * Kit's system notifications (push-type 0, see PushKit.ts) share, as on a device.
 *
 * The tray deduplicates by `appMessageId` as Push Kit's in-app call messages guide (推送应用内通话消息) describes for missed calls
 * (通过Notification Kit和Push Kit推送的未接来电通知使用相同的appMessageId，系统会进行通知去重):
 * a notification whose `appMessageId` is already in the tray, from either source, is dropped.
 * A `publish` with the same `id` and `label` as one in the tray replaces it.
 *
 * The permission (`isNotificationEnabled`, `requestEnableNotification`), as the API reference
 * and the "requesting notification authorization" guide describe it: the switch is the tray's
 * `enabled`; `requestEnableNotification(context)` resolves at once when it is on, and otherwise
 * shows the dialog (counted in `dialogs`) — only once the context's ability shows its loaded UI
 * (the reference: callable only after `loadContent`; what the system answers otherwise is not
 * documented, and the fake rejects 1600001, internal error, an assumption); the user's answer is
 * `userAgrees`; a refusal rejects 1600004, and once refused the dialog never shows again, every
 * later request rejecting 1600004 at once.
 */
import { FakeBusinessError } from './BasicServicesKit';
import { abilitySystem, common } from './AbilityKit';

/** The `notificationManager` namespace, the parts apps use for plain notifications. */
export namespace notificationManager {
  /** Notification channels (slots). */
  export enum SlotType {
    UNKNOWN_TYPE = 0,
    SOCIAL_COMMUNICATION = 1,
    SERVICE_INFORMATION = 2,
    CONTENT_INFORMATION = 3,
    LIVE_VIEW = 4,
    CUSTOMER_SERVICE = 5,
    OTHER_TYPES = 0xffff,
  }
  /** Content kinds. */
  export enum ContentType {
    NOTIFICATION_CONTENT_BASIC_TEXT = 0,
    NOTIFICATION_CONTENT_LONG_TEXT = 1,
    NOTIFICATION_CONTENT_PICTURE = 2,
    NOTIFICATION_CONTENT_CONVERSATION = 3,
    NOTIFICATION_CONTENT_MULTILINE = 4,
  }
  /** Title and text. */
  export interface NotificationBasicContent {
    /** Title. */
    title: string;
    /** Text. */
    text: string;
    /** Extra text. */
    additionalText?: string;
  }
  /** What a notification shows. */
  export interface NotificationContent {
    /** The kind (API 11+ name). */
    notificationContentType?: ContentType;
    /** Basic text content. */
    normal?: NotificationBasicContent;
  }
  /** One notification. */
  export interface NotificationRequest {
    /** What it shows. */
    content: NotificationContent;
    /** Its id within the app (default 0). */
    id?: number;
    /** Its channel. */
    notificationSlotType?: SlotType;
    /** With `id`, what identifies it for replacement and `cancel`. */
    label?: string;
    /** The app's id of the message: the system shows one notification per id, whatever sent it. */
    appMessageId?: string;
    /** When it happened, ms since the epoch. */
    deliveryTime?: number;
    /** Whether a tap removes it. */
    tapDismissed?: boolean;
  }

  /** Posts a notification (1600004 when the user disabled the app's notifications). */
  export function publish(request: NotificationRequest): Promise<void> {
    if (typeof request !== 'object' || request === null || typeof request.content !== 'object') {
      return Promise.reject(new FakeBusinessError(401, 'Parameter error: request.content'));
    }
    const normal = request.content.normal;
    if (normal === undefined || typeof normal.title !== 'string' || typeof normal.text !== 'string') {
      return Promise.reject(new FakeBusinessError(401, 'Parameter error: content.normal'));
    }
    if (!notificationTray.enabled) {
      return Promise.reject(new FakeBusinessError(1600004, 'Notification disabled'));
    }
    notificationTray.post(new TrayNotification('app', request.id ?? 0, request.label ?? '', request.appMessageId,
      normal.title, normal.text, request.notificationSlotType ?? SlotType.OTHER_TYPES));
    return Promise.resolve();
  }
  /** Removes the app's notification `id` (and `label`). */
  export function cancel(id: number, label?: string): Promise<void> {
    notificationTray.remove('app', id, label ?? '');
    return Promise.resolve();
  }
  /** Whether the app may post notifications. */
  export function isNotificationEnabled(): Promise<boolean> {
    return Promise.resolve(notificationTray.enabled);
  }
  /** Asks the user to allow notifications with the system dialog (the fake user agrees unless told otherwise). */
  export function requestEnableNotification(context: common.UIAbilityContext): Promise<void> {
    if (!(context instanceof common.UIAbilityContext)) return Promise.reject(new FakeBusinessError(401, 'Parameter error: context'));
    if (notificationTray.enabled) return Promise.resolve();
    if (notificationTray.refused) return Promise.reject(new FakeBusinessError(1600004, 'Notification disabled'));
    if (!abilitySystem.hasShownUi(context)) {
      return Promise.reject(new FakeBusinessError(1600001, 'Internal error: no window to show the dialog in'));
    }
    notificationTray.dialogs += 1;
    if (!notificationTray.userAgrees) {
      notificationTray.refused = true;
      return Promise.reject(new FakeBusinessError(1600004, 'Notification disabled'));
    }
    notificationTray.enabled = true;
    return Promise.resolve();
  }
}

/** A notification in the tray. */
export class TrayNotification {
  constructor(
    /** `app` (Notification Kit) or `push` (a Push Kit notification message). */
    readonly source: 'app' | 'push',
    /** The app's notification id (0 for Push Kit's). */
    readonly id: number,
    /** The label (Push Kit's: the category). */
    readonly label: string,
    /** The id the system deduplicates on. */
    readonly appMessageId: string | undefined,
    /** Title. */
    readonly title: string,
    /** Text. */
    readonly text: string,
    /** The slot it was posted in. */
    readonly slot: notificationManager.SlotType,
  ) {}
}

/** The device's notification tray, shared by Notification Kit and Push Kit. */
export class NotificationTray {
  /** Whether the app's notifications are allowed. */
  enabled = true;
  /** Whether the user agrees to `requestEnableNotification`. */
  userAgrees = true;
  /** Whether the user refused the dialog once (it never shows again). */
  refused = false;
  /** How many times the permission dialog was shown. */
  dialogs = 0;
  /** What is shown. */
  readonly shown: TrayNotification[] = [];
  /** Notifications dropped because their `appMessageId` was shown already. */
  readonly deduplicated: TrayNotification[] = [];

  /** Shows `n` unless its `appMessageId` is shown already; replaces the same id and label. */
  post(n: TrayNotification): void {
    if (n.appMessageId !== undefined && this.shown.some((s) => s.appMessageId === n.appMessageId)) {
      this.deduplicated.push(n);
      return;
    }
    const same = this.shown.findIndex((s) => s.source === n.source && s.id === n.id && s.label === n.label);
    if (same >= 0) this.shown.splice(same, 1);
    this.shown.push(n);
  }

  /** Removes the notification of `source` with `id` and `label`. */
  remove(source: 'app' | 'push', id: number, label: string): void {
    const at = this.shown.findIndex((s) => s.source === source && s.id === id && s.label === label);
    if (at >= 0) this.shown.splice(at, 1);
  }

  /** What is shown for `appMessageId`. */
  withMessageId(appMessageId: string): TrayNotification[] {
    return this.shown.filter((s) => s.appMessageId === appMessageId);
  }

  /** Back to an empty tray with notifications allowed. */
  reset(): void {
    this.shown.length = 0;
    this.deduplicated.length = 0;
    this.enabled = true;
    this.userAgrees = true;
    this.refused = false;
    this.dialogs = 0;
  }
}

/** The tray of this fake device. */
export const notificationTray = new NotificationTray();
