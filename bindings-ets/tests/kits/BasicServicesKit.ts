/**
 * Fake of `@kit.BasicServicesKit` for Node tests: the part the callpush glue uses,
 * `BusinessError` (declared by the SDK in `@ohos.base` as an interface extending `Error`
 * with a numeric `code` and optional `data`), and the callback types of `@ohos.base`.
 */

/** An error a system API threw or rejected with: the SDK's `BusinessError<T>`. */
export interface BusinessError<T = void> extends Error {
  /** The API's documented error code (401 parameter error, 1007200001 …). */
  code: number;
  /** Extra data some APIs attach. */
  data?: T;
}

/** Signature of the SDK's `Callback<T>` (`@ohos.base`). */
export type Callback<T> = (data: T) => void;

/** Signature of the SDK's `ErrorCallback<T>` (`@ohos.base`). */
export type ErrorCallback<T extends Error = BusinessError> = (err: T) => void;

/** A `BusinessError` the fakes throw, carrying the documented code and message. */
export class FakeBusinessError extends Error implements BusinessError {
  /** The documented error code. */
  code: number;

  constructor(code: number, message: string) {
    super(message);
    this.name = 'BusinessError';
    this.code = code;
  }
}
