/**
 * Expected failures are returned as values, not thrown: every kernel-touching
 * call returns a {@link Result}. This module re-exports ts-results in a form
 * that works from both ESM and CommonJS (ts-results ships CommonJS only).
 * @module
 */
import tsResults from 'ts-results';
import type { Result as TsResult, Ok as TsOk, Err as TsErr } from 'ts-results';

/** A successful value or an error value. */
export type Result<T, E> = TsResult<T, E>;
/** The success variant of a {@link Result}. */
export type OkResult<T> = TsOk<T>;
/** The failure variant of a {@link Result}. */
export type ErrResult<E> = TsErr<E>;

/** Wrap a success value. */
export const Ok: typeof tsResults.Ok = tsResults.Ok;
/** Wrap an error value. */
export const Err: typeof tsResults.Err = tsResults.Err;
