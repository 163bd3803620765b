/**
 * The contract every throttling backend implements: what it can do, whether this
 * host supports it (and why not), and the plan steps it contributes.
 * @module
 */
import type { Step } from '../../plan/types.js';
import type { Feature, ThrottleCaps } from '../caps.js';
import type { BackendName, Direction, LimitSpec } from '../types.js';
import type { U32Filter } from '../u32.js';

/** The shared per-interface structure of a backend (root qdisc, IFB, clsact). */
export interface SiteInfo {
  iface: string;
  direction: Direction;
  /** IFB device name (ifb-tc). */
  ifb?: string | undefined;
}

/** Everything a backend needs to compile one limit. */
export interface LimitCtx {
  id: number;
  spec: LimitSpec;
  site: SiteInfo;
  /** Target rate in bits/s (undefined: quota only). */
  rateBps: number | undefined;
  /** Burst in bytes (derived unless given). */
  burst: number | undefined;
  /** HTB class id, e.g. `1:1a`. */
  classid: string;
  /** u32 filters and the tc prio of each. */
  filters: (U32Filter & { prio: number })[];
  /** tc police action index. */
  policeIndex: number;
}

/** A throttling backend. */
export interface ThrottleBackend {
  name: BackendName;
  priority: number;
  kind: 'shaping' | 'policing';
  directions: Direction[];
  matches: string;
  limitations: string[];
  /** Whether the backend can be used at all on this host. */
  availability(caps: ThrottleCaps): Feature;
  /** Why this backend cannot serve `spec` (undefined: it can). */
  refuses(spec: LimitSpec, caps: ThrottleCaps): string | undefined;
  /** Whether the rate is enforced by the nft body chain (policing in nftables). */
  policesInNft: boolean;
  /** Device where this backend's tc objects for `site` live. */
  dev(site: SiteInfo): string;
  /** Steps creating the shared per-interface structure (first limit on that interface). */
  siteSteps(site: SiteInfo): Step[];
  /** Steps creating one limit (classes, filters, actions). */
  limitSteps(ctx: LimitCtx): Step[];
  /** Steps changing the rate of a limit in place. */
  updateSteps(ctx: LimitCtx, old: { rateBps: number; burst: number }): Step[];
}

/** An `exec` action. */
export function exec(argv: string[], ignoreFailure = false): { kind: 'exec'; argv: string[]; ignoreFailure?: boolean } {
  return ignoreFailure ? { kind: 'exec', argv, ignoreFailure } : { kind: 'exec', argv };
}
