/**
 * The Throttler part of {@link readStatus}, read from the kernel only:
 *
 * - limits with an nft table (`nft-limit`, per-process and quota limits): the
 *   owned table `netfence_throttle_<name>_l<id>` — base chain hook gives the
 *   direction, its `iifname`/`oifname` match the interface, the body chain's
 *   `limit rate over` the rate, the named counters `l<id>_m`/`l<id>_d`/`l<id>_qd`
 *   and quota `l<id>_q` the traffic;
 * - shaped limits (`tc-htb`, `ifb-tc`): HTB classes `1:<0x10+id>` under a root
 *   HTB qdisc `1:` (the Throttler's layout; tc objects carry no ownership mark,
 *   so this is recognised by layout), on the interface or on an IFB `nfb…`
 *   whose interface is the one redirecting its ingress there;
 * - policed limits (`tc-police`): police actions of index `0x4e00 + id`.
 * @module
 */
import { run } from '../host/run.js';
import type { Link } from '../host/links.js';
import { parseRate } from '../throttle/rate.js';
import { parseSentBlock } from '../throttle/stats.js';
import type { LimitStatus, TableStatus } from './types.js';
import type { NftListing } from '../nft/listing.js';
import { listingItems } from '../nft/listing.js';

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const POLICE_BASE = 0x4e00;
const UNIT: Record<string, number> = { bytes: 1, kbytes: 1024, mbytes: 1024 * 1024 };

function directionOfHook(hook: string | undefined): 'egress' | 'ingress' | undefined {
  if (hook === 'postrouting' || hook === 'output') return 'egress';
  if (hook === 'prerouting' || hook === 'input') return 'ingress';
  return undefined;
}

/** The interface a rule matches with `meta iifname|oifname == X`. */
function ifnameOf(expr: unknown): string | undefined {
  if (!Array.isArray(expr)) return undefined;
  for (const s of expr) {
    const m = (s as { match?: { left?: { meta?: { key?: string } }; right?: unknown } }).match;
    const key = m?.left?.meta?.key;
    if ((key === 'iifname' || key === 'oifname') && typeof m?.right === 'string') return m.right;
  }
  return undefined;
}

/** The `limit` statement's rate in bits per second. */
function limitRateOf(expr: unknown): number | undefined {
  if (!Array.isArray(expr)) return undefined;
  for (const s of expr) {
    const l = (s as { limit?: Record<string, unknown> }).limit;
    if (!l || typeof l.rate !== 'number') continue;
    const unit = typeof l.rate_unit === 'string' ? (UNIT[l.rate_unit] ?? 1) : 1;
    if (l.rate_unit === 'packets' || (l.per !== undefined && l.per !== 'second')) continue;
    return l.rate * unit * 8;
  }
  return undefined;
}

/** Limits that have an owned `throttle:` table (pure, from the terse listing and the owned tables). */
export function nftLimitsOf(listing: NftListing, tables: readonly TableStatus[]): LimitStatus[] {
  const out: LimitStatus[] = [];
  const items = listingItems(listing);
  for (const t of tables) {
    if (t.kind !== 'throttle') continue;
    const m = /_l(\d+)$/.exec(t.name);
    if (!m) continue;
    const id = Number(m[1]);
    const base = t.chains.find((c) => c.name === `l${id}`);
    const rules = items.filter((i) => i.kind === 'rule' && i.value.family === t.family && i.value.table === t.name);
    const iface = rules.filter((r) => r.value.chain === `l${id}`).map((r) => ifnameOf(r.value.expr)).find((x) => x !== undefined);
    const rate = rules.filter((r) => r.value.chain === `l${id}_b`).map((r) => limitRateOf(r.value.expr)).find((x) => x !== undefined);
    const counter = (n: string) => t.counters.find((c) => c.source === 'named' && c.name === n) ?? { packets: 0, bytes: 0 };
    const matched = counter(`l${id}_m`);
    const policed = counter(`l${id}_d`);
    const overQuota = counter(`l${id}_qd`);
    const quota = t.quotas.find((q) => q.name === `l${id}_q`);
    const l: LimitStatus = {
      id,
      owner: t.owner,
      backend: 'nft-limit',
      interface: iface,
      direction: directionOfHook(base?.hook),
      rateBps: rate,
      table: t.name,
      bytes: Math.max(0, matched.bytes - policed.bytes - overQuota.bytes),
      packets: Math.max(0, matched.packets - policed.packets - overQuota.packets),
      drops: policed.packets + overQuota.packets,
    };
    if (quota) {
      l.quotaBytes = quota.bytes;
      l.quotaUsed = quota.used;
    }
    out.push(l);
  }
  return out;
}

/** HTB classes `1:<hex>` of the Throttler's layout from `tc -s [-j] class show dev D` (text or JSON). */
export function parseHtbClasses(output: string): { id: number; rateBps: number | undefined; bytes: number; packets: number; drops: number; backlog: number }[] {
  const out: { id: number; rateBps: number | undefined; bytes: number; packets: number; drops: number; backlog: number }[] = [];
  const text = output.trim();
  const idOf = (handle: string): number | undefined => {
    const m = /^1:([0-9a-f]+)$/.exec(handle);
    if (!m) return undefined;
    const id = parseInt(m[1] as string, 16) - 0x10;
    return id >= 1 && id <= 4095 ? id : undefined;
  };
  if (text.startsWith('[')) {
    try {
      for (const c of JSON.parse(text) as Record<string, unknown>[]) {
        if (c.class !== 'htb' && c.kind !== 'htb') continue;
        const id = idOf(String(c.handle ?? c.classid ?? ''));
        if (id === undefined) continue;
        const s = (c.stats ?? {}) as Record<string, unknown>;
        const rate = typeof c.rate === 'number' ? c.rate * 8 : undefined;
        out.push({ id, rateBps: rate, bytes: num(s.bytes), packets: num(s.packets), drops: num(s.drops), backlog: num(s.backlog) });
      }
      return out;
    } catch {
      /* text below */
    }
  }
  for (const block of text.split(/\n(?=class )/)) {
    const m = /^class htb (\S+) .*?\brate (\S+)/.exec(block.trimStart());
    if (!m) continue;
    const id = idOf(m[1] as string);
    if (id === undefined) continue;
    const r = parseRate(m[2]);
    const s = parseSentBlock(block);
    out.push({ id, rateBps: typeof r === 'number' ? r : undefined, bytes: s?.bytes ?? 0, packets: s?.packets ?? 0, drops: s?.drops ?? 0, backlog: s?.backlog ?? 0 });
  }
  return out;
}

/** Police actions of the Throttler's index range from `tc -s -j actions ls action police`. */
export function parsePoliceActions(output: string): { id: number; rateBps: number | undefined; bytes: number; packets: number; drops: number }[] {
  const out: { id: number; rateBps: number | undefined; bytes: number; packets: number; drops: number }[] = [];
  let j: unknown;
  try {
    j = JSON.parse(output.trim() || '[]');
  } catch {
    return out;
  }
  const visit = (o: unknown): void => {
    if (!o || typeof o !== 'object') return;
    if (Array.isArray(o)) {
      o.forEach(visit);
      return;
    }
    const r = o as Record<string, unknown>;
    if (r.kind === 'police' && typeof r.index === 'number') {
      const id = r.index - POLICE_BASE;
      if (id >= 1 && id <= 4095) {
        const s = (r.stats ?? {}) as Record<string, unknown>;
        const rate = typeof r.rate === 'number' ? r.rate * 8 : typeof r.rate === 'string' ? parseRate(r.rate) : undefined;
        out.push({ id, rateBps: typeof rate === 'number' ? rate : undefined, bytes: num(s.bytes), packets: num(s.packets), drops: num(s.drops) });
      }
      return;
    }
    for (const v of Object.values(r)) visit(v);
  };
  visit(j);
  return out;
}

/**
 * Every Throttler limit in `netns`: the nft ones from the owned tables, the
 * shaped and policed ones from tc. `warnings` collects what could not be read.
 */
export async function readLimits(netns: string | undefined, listing: NftListing, tables: readonly TableStatus[], links: readonly Link[], warnings: string[]): Promise<LimitStatus[]> {
  const limits = nftLimitsOf(listing, tables);
  const ifbs = links.filter((l) => /^nfb[0-9a-f]{8}$/.test(l.ifname));
  const ifbOwner = new Map<string, string>();
  if (ifbs.length) {
    for (const l of links) {
      if (ifbs.includes(l)) continue;
      const f = await run(['tc', 'filter', 'show', 'dev', l.ifname, 'ingress'], { netns, what: `read ingress filters of ${l.ifname}` });
      if (f.err) continue;
      for (const i of ifbs) if (f.val.stdout.includes(i.ifname)) ifbOwner.set(i.ifname, l.ifname);
    }
  }
  const merge = (x: LimitStatus): void => {
    const same = limits.find((l) => l.id === x.id && (x.interface === undefined || l.interface === undefined || l.interface === x.interface) && l.rateBps === undefined);
    if (same) {
      // a tc-shaped limit with an nft table (per-process or quota): one limit
      Object.assign(same, { backend: x.backend, rateBps: x.rateBps, device: x.device, bytes: x.bytes, packets: x.packets, drops: x.drops + same.drops, backlog: x.backlog });
      same.interface ??= x.interface;
      same.direction ??= x.direction;
    } else limits.push(x);
  };
  // HTB classes 1:<0x10+id> (their parent is the root HTB 1:), on every interface and IFB, read in parallel
  const classes = await Promise.all(links.map((l) => run(['tc', '-s', '-j', 'class', 'show', 'dev', l.ifname], { netns, what: `read tc classes of ${l.ifname}` })));
  links.forEach((l, i) => {
    const c = classes[i];
    if (!c) return;
    if (c.err) {
      if (!/Cannot find device/.test(c.val.failure.stderr)) warnings.push(`tc classes of ${l.ifname}: ${c.val.message.split('\n')[0]}`);
      return;
    }
    const dev = l.ifname;
    const isIfb = ifbs.includes(l);
    for (const k of parseHtbClasses(c.val.stdout)) {
      merge({
        id: k.id,
        backend: isIfb ? 'ifb-tc' : 'tc-htb',
        interface: isIfb ? ifbOwner.get(dev) : dev,
        direction: isIfb ? 'ingress' : 'egress',
        rateBps: k.rateBps,
        device: dev,
        bytes: k.bytes,
        packets: k.packets,
        drops: k.drops,
        backlog: k.backlog,
      });
    }
  });
  // police actions of the Throttler's index range (tc-police); no act_police module or none bound: no limits
  const a = await run(['tc', '-s', '-j', 'actions', 'ls', 'action', 'police'], { netns, what: 'read tc police actions' });
  if (a.ok) {
    for (const p of parsePoliceActions(a.val.stdout)) merge({ id: p.id, backend: 'tc-police', interface: undefined, direction: undefined, rateBps: p.rateBps, bytes: p.bytes, packets: p.packets, drops: p.drops });
    // their interface and direction: the clsact filter that uses the action
    const police = limits.filter((l) => l.backend === 'tc-police' && l.interface === undefined);
    if (police.length) {
      for (const l of links) {
        for (const dir of ['egress', 'ingress'] as const) {
          const f = await run(['tc', 'filter', 'show', 'dev', l.ifname, dir], { netns, what: `read ${dir} filters of ${l.ifname}` });
          if (f.err) continue;
          for (const p of police) {
            if (new RegExp(`\\bindex ${POLICE_BASE + p.id}\\b`).test(f.val.stdout)) {
              p.interface = l.ifname;
              p.direction = dir;
            }
          }
        }
      }
    }
  } else if (!/Failed to load TC action module|No such file or directory|not supported|Cannot find/i.test(a.val.failure.stderr)) warnings.push(`tc police actions: ${a.val.message.split('\n')[0]}`);
  return limits.sort((a, b) => a.id - b.id);
}
