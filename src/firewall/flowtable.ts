/**
 * The forwarding fast path, as pure constructors: an nftables flowtable over
 * a list of devices, the forward chain and rule that offload established
 * flows to it, the commands that flush its offloaded flows, and the
 * capability decision. No I/O. The Firewall uses them (`fastPath()`), and so
 * can any other module that owns an ip, ip6 or inet table (e.g. the
 * SmartProxy integration for its routes).
 *
 * Why a chain of its own: `flow add @ft` is not a verdict, so a packet that a
 * later rule drops would already have created the flowtable entry, and every
 * further packet of that flow would bypass the forward chain. The offload
 * rule therefore sits in a base chain of the forward hook whose priority is
 * greater than every forward chain of the table: netfilter runs it only for
 * packets that all earlier forward chains accepted (a drop is final).
 *
 * Why flush on change: an offloaded flow never meets the forward chains
 * again, so a rule change cannot stop it. Deleting the flowtable tears its
 * flows down (the kernel hands them back to the normal path, conntrack entry
 * kept); {@link fastPathRefreshCommands} re-creates it in the same nft
 * transaction as the change, so the first packet after the commit goes
 * through the new rules. A whole-table replacement (`add; delete; add table`)
 * does the same by itself.
 * @module
 */
import { UnsupportedError } from '../errors.js';
import type { PlanDecision } from '../plan/types.js';
import { ruleComment } from '../util/rule-comment.js';
import * as x from '../nft/build.js';
import type { Command, Flowtable, Statement } from '../nft/schema/index.js';

/** Key of the capability a fast path needs, as in the capability report. */
export const FASTPATH_CAPABILITY = 'nft.features.flowtable';
/** Default name of the flowtable and of its offload chain. */
export const DEFAULT_FASTPATH_NAME = 'fastpath';
/** Default priority of the offload chain: after every chain a Firewall can declare (at most 1000). */
export const DEFAULT_FASTPATH_PRIORITY = 1001;
/** Families that have flowtables. */
export const FASTPATH_FAMILIES = ['ip', 'ip6', 'inet'] as const;

/** Where a fast path lives and what it covers (already validated). */
export interface FastPathTarget {
  family: (typeof FASTPATH_FAMILIES)[number];
  table: string;
  /** Flowtable name; the offload chain has the same name. */
  name: string;
  devices: readonly string[];
  /** Priority of the offload chain in the forward hook. */
  priority: number;
}

/** The part of a capability report a fast path decision reads (a full `CapabilityReport` fits). */
export interface FlowtableCapabilitySource {
  nft: { features: { flowtable: { available: boolean; reason?: string | undefined; detail?: { json?: boolean | undefined } | Record<string, unknown> | undefined } } };
}

/** Id (comment `nf:<id>`) of the offload rule of fast path `name`. */
export function offloadRuleId(name: string): string {
  return `${name}:offload`;
}

/** The flowtable object: `flowtable <name> { hook ingress priority 0; devices = { ... } }`. */
export function flowtableObject(t: FastPathTarget): Flowtable {
  return x.flowtable(t, t.name, { prio: 0, dev: [...t.devices] }).flowtable;
}

/** `add flowtable`. */
export function flowtableCommand(t: FastPathTarget): Command {
  return x.cmd.add({ flowtable: flowtableObject(t) });
}

/**
 * The offload rule's statements: `ct state established meta l4proto { tcp,
 * udp } iifname { devs } oifname { devs } counter flow add @<name>`. Both
 * interfaces must be flowtable devices, otherwise only one direction would be
 * offloaded.
 */
export function offloadStatements(t: FastPathTarget): Statement[] {
  const devs = t.devices.length === 1 ? (t.devices[0] as string) : x.anonSet([...t.devices]);
  return [
    x.match(x.ct('state'), 'in', 'established'),
    x.eq(x.meta('l4proto'), x.anonSet(['tcp', 'udp'])),
    x.eq(x.meta('iifname'), devs),
    x.eq(x.meta('oifname'), devs),
    x.counter(),
    { flow: { op: 'add', flowtable: `@${t.name}` } },
  ];
}

/** `add rule` of the offload rule (comment `nf:<name>:offload`). */
export function offloadRuleCommand(t: FastPathTarget): Command {
  return x.cmd.add({ rule: { family: t.family, table: t.table, chain: t.name, comment: ruleComment(offloadRuleId(t.name)), expr: offloadStatements(t) } });
}

/** `add chain`: the offload chain, a filter chain of the forward hook with policy accept (it never drops). */
export function offloadChainCommand(t: FastPathTarget): Command {
  return x.cmd.add({ chain: { family: t.family, table: t.table, name: t.name, type: 'filter', hook: 'forward', prio: t.priority, policy: 'accept' } });
}

/** Everything a fast path adds to a table being built: flowtable, offload chain, offload rule. */
export function fastPathCommands(t: FastPathTarget): Command[] {
  return [flowtableCommand(t), offloadChainCommand(t), offloadRuleCommand(t)];
}

/**
 * Commands that drop every offloaded flow of the fast path, to append to the
 * same transaction as a rule or element change: the offload rule is removed,
 * the flowtable deleted and re-created, the rule added again. The leading
 * `add`s make it valid whether or not the fast path exists (adding an
 * identical existing object changes nothing).
 */
export function fastPathRefreshCommands(t: FastPathTarget): Command[] {
  const ref = { family: t.family, table: t.table, name: t.name };
  return [offloadChainCommand(t), x.cmd.flush({ chain: ref }), flowtableCommand(t), x.cmd.delete({ flowtable: ref }), flowtableCommand(t), offloadRuleCommand(t)];
}

/** What a fast path request comes to on a given kernel. */
export type FastPathDecision =
  | { ok: true; enabled: boolean; decision: PlanDecision }
  | { ok: false; error: UnsupportedError };

/**
 * Decide from the capability report: a flowtable when the kernel has one
 * (and this nft takes it as JSON); otherwise no fast path and a recorded
 * reason (`auto`), or an {@link UnsupportedError} naming the capability and
 * its reason (`required`).
 */
export function decideFastPath(caps: FlowtableCapabilitySource, mode: 'auto' | 'required', t: Pick<FastPathTarget, 'name' | 'devices' | 'priority'>): FastPathDecision {
  const entry = caps.nft.features.flowtable;
  const detail = (entry.detail ?? {}) as { json?: unknown };
  let reason: string | undefined;
  if (!entry.available) reason = entry.reason ?? 'no reason given';
  else if (detail.json === false) reason = 'this nft accepts flowtables only in its text syntax, and netfence emits JSON';
  if (reason === undefined) {
    return {
      ok: true,
      enabled: true,
      decision: {
        subject: 'fastPath',
        chosen: 'flowtable',
        reason: `${FASTPATH_CAPABILITY} is available: established TCP/UDP flows between ${t.devices.join(', ')} are offloaded to flowtable ${t.name} after the forward chains below priority ${t.priority} accepted them`,
      },
    };
  }
  if (mode === 'required') {
    return {
      ok: false,
      error: new UnsupportedError(FASTPATH_CAPABILITY, `fastPath (mode 'required') needs nft flowtables, and ${FASTPATH_CAPABILITY} is not available on this host: ${reason}`, {
        hint: "use mode 'auto' to forward through the normal path instead, or a kernel with CONFIG_NF_FLOW_TABLE, CONFIG_NF_FLOW_TABLE_INET and CONFIG_NFT_FLOW_OFFLOAD",
      }),
    };
  }
  return {
    ok: true,
    enabled: false,
    decision: { subject: 'fastPath', chosen: 'none', reason: `${FASTPATH_CAPABILITY} is not available (${reason}): no flowtable, forwarded flows take the normal forward path` },
  };
}
