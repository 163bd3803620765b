/**
 * The flowtable fast path of the route managers (netfence's `fastPath`
 * option, not a SmartProxy field). Decided once per manager from the
 * capability report: `required` fails clearly when the kernel lacks
 * flowtables, `auto` records the decision either way.
 * @module
 */
import { NetfenceError, UnsupportedError } from '../../errors.js';
import { Err, Ok, type Result } from '../../result.js';

/** What the compiler and the core need from the fast-path decision. */
export interface FastPath {
  /** Name of the flowtable in each route table, when offloading. */
  flowtable: string | undefined;
  /** Commands creating the flowtable in a table (after its chains). */
  structure(table: string): unknown[];
  /** Decisions to report in each route's status. */
  decisions: { subject: string; chosen: string; reason: string }[];
}

/** No fast path. */
export const NO_FAST_PATH: FastPath = { flowtable: undefined, structure: () => [], decisions: [] };

/** The fast path for a manager's `fastPath` option. */
export async function decideFastPath(mode: 'off' | 'auto' | 'required', _netns: string | undefined): Promise<Result<FastPath, NetfenceError>> {
  if (mode === 'off') return Ok(NO_FAST_PATH);
  return Err(new UnsupportedError('nft.features.flowtable', 'the SmartProxy fast path is not available yet'));
}
