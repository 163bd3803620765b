/**
 * Expected failures are returned as values, not thrown: every kernel-touching
 * call returns a {@link Result}. This module re-exports ts-results in a form
 * that works from both ESM and CommonJS (ts-results ships CommonJS only, and
 * Node's ESM loader cannot see its named exports).
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

/** Wrap a success value. */
export const Ok: typeof tsResultsNs.Ok = tsResults.Ok;
/** Wrap an error value. */
export const Err: typeof tsResultsNs.Err = tsResults.Err;
