/**
 * Fake of `@kit.ArkUI`, the two parts the glue names: `window.WindowStage` (which the
 * `AbilityLifecycleCallback` methods receive) and `display.getDefaultDisplaySync()` (its
 * `densityPixels` turns 32 vp into pixels), typed from the SDK declarations (`@ohos.window`,
 * `@ohos.display`). `displaySettings` sets the density of the fake screen (3, a 480 dpi phone, by
 * default).
 */

/** The `window` namespace, the part used here. */
export namespace window {
  /** An ability's window stage. */
  export class WindowStage {
    /** The page loaded, once `loadContent` was called. */
    loaded: string | undefined = undefined;
    /** Loads a page into the main window. */
    loadContent(path: string): Promise<void> {
      this.loaded = path;
      return Promise.resolve();
    }
  }
}

/** The `display` namespace, the part used here. */
export namespace display {
  /** A display. */
  export interface Display {
    /** Its id. */
    id: number;
    /** Width, px. */
    width: number;
    /** Height, px. */
    height: number;
    /** Dots per inch. */
    densityDPI: number;
    /** Pixels per vp (dpi / 160). */
    densityPixels: number;
  }
  /** The default display. */
  export function getDefaultDisplaySync(): Display {
    const density = displaySettings.densityPixels;
    return { id: 0, width: 1260, height: 2720, densityDPI: density * 160, densityPixels: density };
  }
}

/** The fake screen. */
export const displaySettings = {
  /** Pixels per vp. */
  densityPixels: 3,
};
