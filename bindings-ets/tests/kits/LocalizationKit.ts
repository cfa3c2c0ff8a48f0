/**
 * Fake of `@kit.LocalizationKit` `resourceManager`, the part that reads the app's
 * `resources/rawfile` directory by file descriptor, typed from the SDK declaration
 * (`getRawFd(path): Promise<RawFileDescriptor>`, `closeRawFd(path): Promise<void>`;
 * `RawFileDescriptor {fd, offset, length}`), with the app's raw files as a test control
 * (`appResources`).
 *
 * As documented: a path that is not a raw file of the app (or starts with `/`) rejects 9001005
 * (invalid relative path); every fd opened should be closed with `closeRawFd`, and the fake counts
 * the ones still open so tests can see leaks. An fd the fake handed out is what Media Kit's fake
 * AVPlayer accepts as `fdSrc`.
 */
import { FakeBusinessError } from './BasicServicesKit';

/** The `resourceManager` namespace. */
export namespace resourceManager {
  /** Where a raw file lies inside the HAP: its fd, and its offset and length there. */
  export interface RawFileDescriptor {
    /** The HAP's file descriptor. */
    fd: number;
    /** Where the raw file starts, bytes. */
    offset: number;
    /** Its length, bytes. */
    length: number;
  }
  /** The app's resources (`context.resourceManager`). */
  export interface ResourceManager {
    /** Opens the raw file `path` (relative to `resources/rawfile`). */
    getRawFd(path: string): Promise<RawFileDescriptor>;
    /** Closes what `getRawFd(path)` opened. */
    closeRawFd(path: string): Promise<void>;
  }
}

/** The app's raw files and the descriptors open on them, for tests. */
export class AppResources implements resourceManager.ResourceManager {
  private readonly files = new Map<string, number>();
  private readonly open = new Map<number, string>();
  private nextFd = 40;
  private offset = 4096;

  /** Adds a raw file of `length` bytes (packed in the HAP at some offset). */
  addRawFile(path: string, length: number): void {
    this.files.set(path, length);
  }

  getRawFd(path: string): Promise<resourceManager.RawFileDescriptor> {
    if (typeof path !== 'string') return Promise.reject(new FakeBusinessError(401, 'Parameter error: path'));
    const length = this.files.get(path);
    if (path.startsWith('/') || length === undefined) {
      return Promise.reject(new FakeBusinessError(9001005, `Invalid relative path: ${path}`));
    }
    const fd = this.nextFd;
    this.nextFd += 1;
    this.open.set(fd, path);
    this.offset += 1024;
    return Promise.resolve({ fd, offset: this.offset, length });
  }

  closeRawFd(path: string): Promise<void> {
    const fds = [...this.open.entries()].filter(([, p]) => p === path).map(([fd]) => fd);
    if (fds.length === 0) return Promise.reject(new FakeBusinessError(9001005, `Invalid relative path: ${path}`));
    for (const fd of fds) this.open.delete(fd);
    return Promise.resolve();
  }

  /** The raw file an open fd reads, if the fd is open. */
  fileOf(fd: number): string | undefined {
    return this.open.get(fd);
  }

  /** How many descriptors are open. */
  openCount(): number {
    return this.open.size;
  }

  /** No raw files, nothing open. */
  reset(): void {
    this.files.clear();
    this.open.clear();
  }
}

/** The resources of the app under test; `UIAbilityContext.resourceManager` of the fake AbilityKit. */
export const appResources = new AppResources();
