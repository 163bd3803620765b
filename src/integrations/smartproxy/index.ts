/**
 * SmartProxy integration (`netfence/smartproxy`): a drop-in
 * `NFTablesManager` for SmartProxy 21.x routes with
 * `action.forwardingEngine: 'nftables'`, compiled to kernel NAT rules in a
 * netfence-owned `inet` table, and `NetfenceRouteManager`, the same with
 * `Result` values.
 *
 * Each route becomes a few rules (filters, DNAT, masquerade, rate limit,
 * counters) tagged with the route's id in their comments, plus named sets for
 * its IP lists. provision, deprovision, update and sync are one nft
 * transaction each; rules are placed by priority (the higher first) and each
 * route claims its packets, so a lower-priority route's settings never apply
 * to the winner's traffic.
 * @module
 */
import { Err, type Result } from '../../result.js';
import { ValidationError } from '../../errors.js';
import { RouteCore } from './core.js';
import type { CompiledRoute } from './compile.js';
import { NO_FAST_PATH } from './fastpath.js';
import type { IRouteConfig } from './types.js';

export * from './types.js';
export { NFTablesManager, NetfenceRouteManager, type NFTablesManagerOptions } from './manager.js';
export { createNfTablesRoute, createNfTablesTerminateRoute, createCompleteNfTablesHttpsServer, createNfTablesRangeRoute, httpsRedirectHandler, type NfTablesRouteOptions, type NfTablesTerminateRouteOptions, type NfTablesHelperTarget, type NfTablesRoute, type RedirectRoute, type SmartProxyPortRange } from './helpers.js';
export { routeId, parseRate } from './normalize.js';
export { placeRules, structure, SMARTPROXY_CHAINS, type CompiledRoute, type TargetAddresses } from './compile.js';
export { SMARTPROXY_FIELDS, type FieldRule } from './fields.js';
export { parseIpPattern, compileIpList, listContains, type CompiledIpList, type Interval, type ParsedIpPattern } from './ip-patterns.js';
export type { SyncSummary } from './core.js';
export { NetfenceRouteOptionsSchema } from './options.js';
export type { FastPathOption } from './fastpath.js';
/** A rule as listed from the kernel (chain, handle, comment, counters), as {@link placeRules} receives it. */
export type { ListedRule } from '../../firewall/kernel.js';

/**
 * Compile a route to nft commands without touching the kernel (pure). Host
 * names need their addresses in `resolved` (the managers resolve them at
 * provision time).
 */
export function compileRoute(route: IRouteConfig, defaults: { tableName: string; routeLocalnet?: boolean }, resolved: Record<string, string[]> = {}): Result<CompiledRoute, ValidationError> {
  if (defaults === null || typeof defaults !== 'object') return Err(new ValidationError('compileRoute', [{ path: 'defaults', message: 'must be an object' }]));
  const core = new RouteCore({
    tableName: defaults.tableName,
    netns: undefined,
    owner: 'smartproxy',
    engine: 'lenient',
    preserveSourceIP: () => undefined,
    routeLocalnet: defaults.routeLocalnet === true,
    resolve: async () => [],
    fastPath: NO_FAST_PATH,
  });
  return core.compile(route, resolved);
}
