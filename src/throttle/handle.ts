/**
 * The Throttler's result types: the limit handle, the host facts its pure
 * `compile` decides with, and its statistics.
 * @module
 */
import type { ApplyError, CommandError, UnsupportedError, ValidationError } from '../errors.js';
import type { Plan } from '../plan/types.js';
import type { Result } from '../result.js';
import type { ThrottleCaps } from './caps.js';
import type { BackendName, LimitSpec, ThrottleStats, UpdateRequest } from './types.js';

/** Errors {@link Throttler.limit} can return. */
export type LimitError = ValidationError | UnsupportedError | ApplyError;

/**
 * The host facts {@link Throttler.compile} decides with, read by
 * {@link Throttler.hostFacts} (or supplied by the caller, e.g. in a test or
 * from a stored capability report). Plain data.
 */
export interface ThrottleHostFacts {
  /** What the namespace's kernel and tools can do. */
  capabilities: ThrottleCaps;
  /** MTU of the limit's interface (for `accounting: 'tcp-payload'`); 1500 when undefined. */
  mtu?: number | undefined;
  /** For a `match.pid` limit: the process's current cgroup v2 path (the `0::` line of /proc/PID/cgroup). */
  pidCgroup?: string | undefined;
}

/** Counters of every limit of a {@link Throttler}, from {@link Throttler.stats}. */
export interface ThrottlerStats {
  limits: {
    /** Number of the limit within its Throttler. */
    id: number;
    backend: BackendName;
    iface: string;
    direction: LimitSpec['direction'];
    stats: ThrottleStats;
  }[];
}

/** An applied limit. */
export interface LimitHandle {
  /** Number of the limit within its Throttler. */
  readonly id: number;
  /** The backend that enforces it. */
  readonly backend: BackendName;
  /** The validated request (rates in bits/s, sizes in bytes). */
  readonly spec: LimitSpec;
  /** Current rate in bits/s as requested (undefined for a quota-only limit). */
  readonly rateBps: number | undefined;
  /** Current rate given to the kernel in bits/s (see `accounting`). */
  readonly kernelRateBps: number | undefined;
  /** Current burst in bytes. */
  readonly burst: number | undefined;
  /** For pid matches: the cgroup v2 directory netfence created. */
  readonly cgroupDir: string | undefined;
  /** The plan that created it. */
  readonly plan: Plan;
  /** Change the rate in place (`tc class change`, `tc actions change`, or a new nft policer rule): no connection is dropped. */
  update(u: UpdateRequest): Promise<Result<void, ValidationError | UnsupportedError | ApplyError>>;
  /** Bytes, packets, drops and backlog of this limit. */
  stats(): Promise<Result<ThrottleStats, CommandError | UnsupportedError>>;
  /** Remove the limit (and the shared qdisc/IFB when it was the last on its interface). */
  remove(): Promise<Result<void, ApplyError>>;
}
