/**
 * nftables JSON for the Throttler's owned table: per limit one base chain (the
 * header match), an optional socket chain (per-process: `socket cgroupv2`, added as
 * text because nft 1.0.x JSON cannot express it), and a body chain holding the
 * named counters, the quota and the policer (`limit rate over … drop`).
 * @module
 */
import * as x from '../nft/build.js';
import type { Command, Statement } from '../nft/schema/index.js';
import { parsePrefix } from '../validate.js';
import type { Direction, Match } from './types.js';

/** Mask of the fwmark bits netfence uses to tag per-process traffic for tc. */
export const MARK_MASK = 0x0fff0000;
/** The fwmark value of limit `id` (within {@link MARK_MASK}). */
export function markOf(id: number): number {
  return ((id & 0xfff) << 16) >>> 0;
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };

/** Names of the nft objects of limit `id`. */
export function nftNames(id: number): { base: string; sock: string; body: string; matched: string; dropped: string; quota: string; overQuota: string } {
  const p = `l${id}`;
  return { base: p, sock: `${p}_s`, body: `${p}_b`, matched: `${p}_m`, dropped: `${p}_d`, quota: `${p}_q`, overQuota: `${p}_qd` };
}

/** Which hook a limit's base chain uses: socket matches need output/input, the rest postrouting/prerouting. */
export function nftHook(direction: Direction, perProcess: boolean): 'output' | 'input' | 'postrouting' | 'prerouting' {
  if (direction === 'egress') return perProcess ? 'output' : 'postrouting';
  return perProcess ? 'input' : 'prerouting';
}

/** nft JSON match expressions for the header part of a match, plus the interface. */
export function nftMatchExprs(iface: string, direction: Direction, m: Match | undefined): Statement[] {
  const out: Statement[] = [x.eq(x.meta(direction === 'egress' ? 'oifname' : 'iifname'), iface)];
  if (!m) return out;
  for (const [field, v] of [['saddr', m.src], ['daddr', m.dst]] as const) {
    if (v === undefined) continue;
    const p = parsePrefix(v)!;
    const right = p.len === (p.family === 4 ? 32 : 128) ? p.address : x.prefix(p.address, p.len);
    out.push(x.eq(x.payload(p.family === 4 ? 'ip' : 'ip6', field), right));
  }
  const ports = m.sport !== undefined || m.dport !== undefined;
  if (m.protocol) out.push(x.eq(x.meta('l4proto'), PROTO[m.protocol] as number));
  else if (ports) out.push(x.eq(x.meta('l4proto'), x.anonSet([6, 17])));
  if (m.sport !== undefined) out.push(x.eq(x.payload('th', 'sport'), m.sport));
  if (m.dport !== undefined) out.push(x.eq(x.payload('th', 'dport'), m.dport));
  return out;
}

/** What goes into a limit's body chain. */
export interface BodyOptions {
  table: string;
  id: number;
  /** Set this fwmark (within MARK_MASK) so that a tc filter can classify the packet. */
  mark?: number | undefined;
  /** Police at this rate (bytes/s) with this burst (bytes). */
  police?: { bytesPerSecond: number; burst: number } | undefined;
  /** Quota mode, when there is a quota object. */
  quota?: 'drop' | 'log' | undefined;
}

/** Rules of the body chain (`add rule` commands), in order. */
export function bodyRules(o: BodyOptions): Command[] {
  const n = nftNames(o.id);
  const t = { family: 'inet', table: o.table } as const;
  const rule = (expr: Statement[]) => x.cmd.add(x.rule(t, n.body, expr));
  const rules: Command[] = [];
  const first: Statement[] = [{ counter: n.matched }];
  if (o.mark !== undefined) first.push(x.mangle(x.meta('mark'), x.or(x.and(x.meta('mark'), (~MARK_MASK) >>> 0), o.mark)));
  rules.push(rule(first));
  if (o.quota === 'drop') rules.push(rule([{ quota: n.quota }, { counter: n.overQuota }, x.drop()]));
  if (o.quota === 'log')
    rules.push(rule([{ quota: n.quota }, { counter: n.overQuota }, { limit: { rate: 10, per: 'minute' } }, x.log({ prefix: `netfence quota ${n.base}: ` })]));
  if (o.police)
    rules.push(
      rule([
        { limit: { rate: o.police.bytesPerSecond, rate_unit: 'bytes', per: 'second', burst: o.police.burst, burst_unit: 'bytes', inv: true } },
        { counter: n.dropped },
        x.drop(),
      ]),
    );
  return rules;
}

/** Everything `add`ed for a limit in the nft transaction (the socket rule comes later, as a text step). */
export function nftLimitCommands(o: BodyOptions & { iface: string; direction: Direction; match: Match | undefined; perProcess: boolean; quotaBytes?: number | undefined }): Command[] {
  const n = nftNames(o.id);
  const t = { family: 'inet', table: o.table } as const;
  const hook = nftHook(o.direction, o.perProcess);
  const cmds: Command[] = [
    x.cmd.add(x.table(t.family, t.table)),
    x.cmd.add({ counter: { ...t, name: n.matched } }),
    x.cmd.add({ counter: { ...t, name: n.dropped } }),
    x.cmd.add({ counter: { ...t, name: n.overQuota } }),
  ];
  if (o.quotaBytes !== undefined) cmds.push(x.cmd.add({ quota: { ...t, name: n.quota, bytes: o.quotaBytes, inv: true } }));
  cmds.push(x.cmd.add(x.chain(t, n.body)));
  if (o.perProcess) cmds.push(x.cmd.add(x.chain(t, n.sock)));
  cmds.push(x.cmd.add(x.chain(t, n.base, { type: 'filter', hook, prio: 0, policy: 'accept' })));
  cmds.push(...bodyRules(o));
  cmds.push(x.cmd.add(x.rule(t, n.base, [...nftMatchExprs(o.iface, o.direction, o.match), x.jump(o.perProcess ? n.sock : n.body)])));
  return cmds;
}

/** The text rule (for `nft -f -`) that sends sockets of a cgroup to the body chain. */
export function socketRuleText(table: string, id: number, cgroup: { path: string; level: number }): string {
  const n = nftNames(id);
  return `add rule inet ${table} ${n.sock} socket cgroupv2 level ${cgroup.level} "${cgroup.path}" jump ${n.body}\n`;
}
