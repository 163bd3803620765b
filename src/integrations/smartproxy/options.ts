/**
 * netfence's own options of the route managers (not SmartProxy fields): one
 * schema with the defaults, from which the option type is derived.
 * @module
 */
import { z } from 'zod';
import { fromZodIssues, ValidationError, type ValidationIssue } from '../../errors.js';
import { PlanOwner } from '../../plan/ownership.js';
import { NftName, NetnsName } from '../../validate.js';
import { systemResolve } from './core.js';
import { fastPathOptionProblem, type FastPathOption } from './fastpath.js';
import type { RouteLogger } from './types.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Options of a route manager (`NetfenceRouteManager`, `NFTablesManager`'s second argument). */
export const NetfenceRouteOptionsSchema = z.object({
  /** Default table name (default `smartproxy`). */
  tableName: z.custom<string>((v) => NftName.safeParse(v).success, 'invalid table name').default('smartproxy'),
  /** Network namespace; the current one if absent. */
  netns: z.custom<string>((v) => NetnsName.safeParse(v).success, 'invalid namespace name').optional(),
  /** Plan owner recorded in the tables (default `smartproxy`). */
  owner: z.custom<string>((v) => PlanOwner.safeParse(v).success, 'invalid owner (letters, digits and _ . : @ + = / -, at most 100)').default('smartproxy'),
  /**
   * Let remote clients reach loopback targets (`localhost`, 127.0.0.0/8):
   * netfence sets `net.ipv4.conf.all.route_localnet=1` in the namespace
   * (restored by `stop()`). Without it, loopback targets serve clients on this
   * host only and remote clients are rejected (TCP reset / ICMP unreachable).
   * IPv6 `::1` is never reachable from other hosts.
   */
  routeLocalnet: z.custom<boolean>((v) => typeof v === 'boolean', 'must be a boolean').default(false),
  /** Host name resolution (default: the system resolver, `dns.lookup` with `all: true`). */
  resolve: z.custom<(host: string) => Promise<string[]>>((v) => typeof v === 'function', 'must be a function (host) => Promise<string[]>').default(() => systemResolve),
  /** Where failures are logged (default `console`). */
  logger: z.custom<RouteLogger>((v) => isObj(v) && typeof v.error === 'function', 'must have an error(message) method').optional(),
  /**
   * Flowtable fast path for the routes' forwarded connections (netfence's
   * own option, not a SmartProxy field): `'off'` (default), `'auto'` (used
   * when the kernel has flowtables, else recorded as a decision in each
   * route's status), or `'required'` (an `UnsupportedError` when it lacks
   * them); `{ mode, devices }` names the flowtable's interfaces (default:
   * every non-loopback interface). Routes with `maxRate` are never offloaded
   * (the limit must see every packet).
   */
  fastPath: z
    .custom<FastPathOption>()
    .superRefine((v, ctx) => {
      const problem = fastPathOptionProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('off'),
});

/** netfence's options of a route manager (not SmartProxy fields). */
export type NetfenceRouteOptions = z.input<typeof NetfenceRouteOptionsSchema>;
/** {@link NetfenceRouteOptions} validated, defaults filled in. */
export type ResolvedRouteOptions = z.output<typeof NetfenceRouteOptionsSchema>;

const KEYS = Object.keys(NetfenceRouteOptionsSchema.shape);

/** Validate a manager's options; throws a {@link ValidationError} naming each bad option (unknown ones first). */
export function parseRouteOptions(what: string, options: unknown): ResolvedRouteOptions {
  if (!isObj(options)) throw new ValidationError(what, [{ path: 'options', message: 'must be an object' }]);
  const issues: ValidationIssue[] = [];
  for (const k of Object.keys(options)) if (!KEYS.includes(k) && options[k] !== undefined) issues.push({ path: k, message: `unknown option (known: ${KEYS.join(', ')})` });
  const r = NetfenceRouteOptionsSchema.safeParse(options);
  if (!r.success) issues.push(...fromZodIssues(what, r.error.issues).issues);
  if (issues.length) throw new ValidationError(what, issues);
  return r.data as ResolvedRouteOptions;
}
