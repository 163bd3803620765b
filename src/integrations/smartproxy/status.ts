/**
 * Route status from the rules listed in the kernel: netfence's counters and
 * SmartProxy's `NfTablesStatus` shape (pure).
 * @module
 */
import type { ListedRule } from '../../firewall/kernel.js';
import type { Provisioned } from './core.js';
import { isOwnedRuleComment, parseOwnedRuleComment } from '../../util/rule-comment.js';
import type { NetfenceNfTablesStatus, NfTablesStatus, RouteStatus } from './types.js';

const kindOf = (comment: string | undefined) => parseOwnedRuleComment(comment)?.kind ?? '';

/** netfence's status of one route. */
export function routeStatus(id: string, p: Provisioned, listed: readonly ListedRule[]): RouteStatus {
  const mine = listed.filter((r) => isOwnedRuleComment(r.comment, id));
  const sum = (kinds: string[], f: 'packets' | 'bytes') => mine.filter((r) => kinds.includes(kindOf(r.comment))).reduce((s, r) => s + r[f], 0);
  return {
    routeId: id,
    name: p.compiled.name,
    table: p.compiled.table,
    packets: sum(['dnat', 'dnat-local'], 'packets'),
    bytes: sum(['dnat', 'dnat-local'], 'bytes'),
    forwarded: { packets: sum(['count'], 'packets'), bytes: sum(['count'], 'bytes') },
    rules: mine.map((r) => ({ comment: r.comment ?? '', chain: r.chain, handle: r.handle })),
    addresses: { ipv4: [...p.compiled.addresses.ipv4], ipv6: [...p.compiled.addresses.ipv6] },
    targetIndex: p.compiled.targetIndex,
    remoteClients: p.compiled.remoteClients,
    decisions: [...p.compiled.decisions],
  };
}

/** SmartProxy's status of one route, with netfence's attached. */
export function smartProxyStatus(rs: RouteStatus, p: Provisioned, listed: readonly ListedRule[]): NetfenceNfTablesStatus {
  const mine = listed.filter((r) => isOwnedRuleComment(r.comment, rs.routeId));
  const sent = mine.filter((r) => kindOf(r.comment) === 'sent').reduce((s, r) => s + r.bytes, 0);
  const status: NfTablesStatus = {
    active: mine.length > 0 && mine.length === p.compiled.rules.length,
    ruleCount: { total: mine.length, added: p.compiled.rules.length, verified: mine.length },
    tablesConfigured: [{ family: 'inet', tableName: p.compiled.table }],
    metrics: { forwardedConnections: rs.packets, bytesForwarded: { sent, received: Math.max(0, rs.forwarded.bytes - sent) } },
    qosEnabled: p.compiled.rateLimited,
    ipSetsConfigured: p.compiled.sets.map((s) => ({ name: s.name, elementCount: s.elements, type: s.type })),
  };
  return { ...status, netfence: rs };
}
