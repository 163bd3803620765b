/**
 * Expected failures are returned as values, not thrown: every kernel-touching
 * call returns a {@link Result}. This module re-exports ts-results in a form
 * that works from both ESM and CommonJS (ts-results ships CommonJS only, and
 * Node's ESM loader cannot see its named exports).
 *
 * One difference from plain ts-results: `.unwrap()` and `.expect(msg)` on an
 * `Err` holding an `Error` throw **that error object** (ts-results would throw a
 * new plain `Error` with the text), so `instanceof` and `.code` survive:
 *
 * ```ts
 * try {
 *   (await fw.apply()).unwrap();
 * } catch (e) {
 *   if (e instanceof ApplyError && e.code === 'APPLY_FAILED') ...
 * }
 * ```
 * @module
 */
import * as tsResultsNs from 'ts-results';
import type { Result as TsResult, Ok as TsOk, Err as TsErr } from 'ts-results';

type TsResults = typeof tsResultsNs;
// ESM import of a CommonJS module puts module.exports on `default`; a CJS build has the names directly.
const tsResults: TsResults = (tsResultsNs as { Ok?: unknown }).Ok
  ? tsResultsNs
  : (tsResultsNs as unknown as { default: TsResults }).default;

/** A successful value or an error value. */
export type Result<T, E> = TsResult<T, E>;
/** The success variant of a {@link Result}. */
export type OkResult<T> = TsOk<T>;
/** The failure variant of a {@link Result}. */
export type ErrResult<E> = TsErr<E>;

const EXPECTED = Symbol('netfence.expected');

/**
 * ts-results' `ErrImpl` with `unwrap`/`expect` that throw the contained error
 * itself when it is an `Error` (anything else: ts-results' behaviour).
 */
class NetfenceErrImpl<E> extends tsResults.ErrImpl<E> {
  override unwrap(): never {
    if (this.val instanceof Error) throw this.val;
    return super.unwrap();
  }

  /**
   * Throws the contained error; `msg` is put in front of its message (once,
   * however often `expect` is called), the object, class and `code` stay.
   */
  override expect(msg: string): never {
    const e = this.val;
    if (!(e instanceof Error)) return super.expect(msg);
    const holder = e as unknown as Record<symbol, string[] | undefined>;
    const seen = holder[EXPECTED] ?? [];
    if (!holder[EXPECTED]) Object.defineProperty(e, EXPECTED, { value: seen, enumerable: false });
    if (!seen.includes(msg)) {
      seen.push(msg);
      e.message = `${msg}: ${e.message}`;
    }
    throw e;
  }

  /** `console.log(result)`: the error as it prints itself, without ts-results' creation stack. */
  [Symbol.for('nodejs.util.inspect.custom')](_depth: number, options: object, inspect: (v: unknown, o: object) => string): string {
    return `Err { ok: false, err: true, val: ${inspect(this.val, options)} }`;
  }

  override mapErr<E2>(mapper: (err: E) => E2): TsErr<E2> {
    return new NetfenceErrImpl(mapper(this.val));
  }
}

/** Wrap a success value. */
export const Ok: typeof tsResultsNs.Ok = tsResults.Ok;

/**
 * Wrap an error value. Callable with or without `new`, like ts-results' `Err`;
 * its `unwrap()`/`expect()` rethrow the original error (see the module text).
 */
export const Err: typeof tsResultsNs.Err = (() => {
  function Err<E>(this: unknown, val: E): TsErr<E> {
    return new NetfenceErrImpl(val);
  }
  Err.prototype = NetfenceErrImpl.prototype;
  Object.setPrototypeOf(Err, NetfenceErrImpl); // statics (EMPTY) and `instanceof Err`
  return Err as unknown as typeof tsResultsNs.Err;
})();
