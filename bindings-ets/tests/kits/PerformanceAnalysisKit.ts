/**
 * Fake of `@kit.PerformanceAnalysisKit`: `hilog`, formatting like the device does and
 * recording every line so tests can check what the glue logs (and that it never logs a token).
 *
 * hilog formats `%{public}s` / `%{public}d` as given and prints `<private>` for `%{private}…`
 * and for bare `%s` / `%d` (private by default on release devices).
 */

/** One logged line. */
export class LogRecord {
  constructor(
    /** `D`, `I`, `W`, `E` or `F`. */
    readonly level: string,
    /** The domain (0x0000 – 0xFFFF). */
    readonly domain: number,
    /** The tag. */
    readonly tag: string,
    /** The formatted message. */
    readonly message: string,
  ) {}
}

/** What a log argument may be. */
export type LogArg = string | number | boolean | bigint | null | undefined;

const records: LogRecord[] = [];

function format(template: string, args: LogArg[]): string {
  let next = 0;
  return template.replace(/%(\{(public|private)\})?([sdifo])/g, (_match: string, _vis: string, visibility: string | undefined) => {
    const value = next < args.length ? args[next] : undefined;
    next += 1;
    return visibility === 'public' ? String(value) : '<private>';
  });
}

function log(level: string, domain: number, tag: string, template: string, args: LogArg[]): void {
  if (!Number.isInteger(domain) || domain < 0 || domain > 0xffff) {
    throw new TypeError(`hilog domain must be 0x0000 to 0xFFFF, not ${domain}`);
  }
  const record = new LogRecord(level, domain, tag, format(template, args));
  records.push(record);
  if (process.env.CALLPUSH_HILOG === '1') {
    process.stderr.write(`${level} ${tag}: ${record.message}\n`);
  }
}

/** The `hilog` namespace as the SDK declares it. */
export namespace hilog {
  /** Log levels. */
  export enum LogLevel { DEBUG = 3, INFO = 4, WARN = 5, ERROR = 6, FATAL = 7 }
  /** Debug line. */
  export function debug(domain: number, tag: string, format: string, ...args: LogArg[]): void { log('D', domain, tag, format, args); }
  /** Info line. */
  export function info(domain: number, tag: string, format: string, ...args: LogArg[]): void { log('I', domain, tag, format, args); }
  /** Warning line. */
  export function warn(domain: number, tag: string, format: string, ...args: LogArg[]): void { log('W', domain, tag, format, args); }
  /** Error line. */
  export function error(domain: number, tag: string, format: string, ...args: LogArg[]): void { log('E', domain, tag, format, args); }
  /** Fatal line. */
  export function fatal(domain: number, tag: string, format: string, ...args: LogArg[]): void { log('F', domain, tag, format, args); }
  /** Whether a level would be printed (always, here). */
  export function isLoggable(_domain: number, _tag: string, _level: LogLevel): boolean { return true; }
}

/** Test controls: every line logged so far, oldest first. */
export const hilogRecords = {
  /** All records. */
  all(): LogRecord[] { return records.slice(); },
  /** Forgets what was logged. */
  clear(): void { records.length = 0; },
};
