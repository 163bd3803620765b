/**
 * The nftables fallback of the XDP blocklist: the same entries in nftables
 * sets of a `netdev` table whose chain hooks the interface's ingress (the
 * earliest nftables hook, still after the driver). Exact addresses go in
 * plain sets, prefixes in interval sets; every set has per-element timeouts
 * and counters; two named counters count passed and dropped packets.
 * Everything goes through `nft -j -f -` (JSON on stdin), one transaction per
 * call, so replace() is atomic here too.
 * @module
 */
import { run } from '../host/run.js';
import type { CommandError } from '../errors.js';
import { Ok, type Result } from '../result.js';
import { listKind, parseEntry, type BlockEntry, type ListKind } from './entries.js';

const SETS: readonly ListKind[] = ['v4', 'v6', 'p4', 'p6'];

/**
 * Apply an nft JSON document (one transaction). A tiny local wrapper over
 * `nft -j -f -` on a real stdin pipe (`run()`), kept local so that it
 * can be switched to the shared src/host/nft.ts helper in one place.
 */
async function nftApply(netns: string | undefined, commands: unknown[], what: string): Promise<Result<void, CommandError>> {
  const r = await run(['nft', '-j', '-f', '-'], { netns, input: JSON.stringify({ nftables: commands }), what, timeoutMs: 300_000 });
  return r.err ? r : Ok(undefined);
}

/** List one table as parsed JSON items. */
async function nftListTable(netns: string | undefined, table: string): Promise<Result<unknown[] | undefined, CommandError>> {
  const r = await run(['nft', '-j', 'list', 'table', 'netdev', table], { netns, what: `list table netdev ${table}`, timeoutMs: 120_000 });
  if (r.err) {
    if (/No such file or directory|does not exist/i.test(r.val.failure.stderr)) return Ok(undefined);
    return r;
  }
  return Ok((JSON.parse(r.val.stdout) as { nftables: unknown[] }).nftables);
}

/** One listed element. */
export interface NftElement {
  entry: BlockEntry;
  hits: number;
  /** Seconds left, when the element has a timeout. */
  expiresS?: number | undefined;
}

/** A blocklist served by nftables sets on one interface. */
export class NftBlocklist {
  constructor(
    readonly table: string,
    readonly iface: string,
    readonly netns: string | undefined,
  ) {}

  private elemExpr(e: BlockEntry, ttlS?: number): unknown {
    const addr = e.text.split('/')[0] as string;
    const val = e.len === (e.family === 4 ? 32 : 128) ? addr : { prefix: { addr, len: e.len } };
    return ttlS ? { elem: { val, timeout: ttlS } } : val;
  }

  private addElems(entries: readonly BlockEntry[], ttlS?: number): unknown[] {
    const by: Record<ListKind, unknown[]> = { v4: [], v6: [], p4: [], p6: [] };
    for (const e of entries) by[listKind(e)].push(this.elemExpr(e, ttlS));
    return SETS.filter((s) => by[s].length).map((s) => ({ add: { element: { family: 'netdev', table: this.table, name: s, elem: by[s] } } }));
  }

  /** Whether the table exists. */
  async exists(): Promise<Result<boolean, CommandError>> {
    const r = await nftListTable(this.netns, this.table);
    return r.err ? r : Ok(r.val !== undefined);
  }

  /** Create the table, sets, counters and chain (when missing). */
  async setup(matchDestination: boolean, comment: string): Promise<Result<void, CommandError>> {
    const ex = await this.exists();
    if (ex.err) return ex;
    if (ex.val) return Ok(undefined);
    return nftApply(this.netns, this.setupCommands(matchDestination, comment), 'create the nftables blocklist');
  }

  /** The nft commands {@link setup} applies (pure: no I/O). */
  setupCommands(matchDestination: boolean, comment: string): unknown[] {
    const t = { family: 'netdev', table: this.table };
    const cmds: unknown[] = [{ add: { table: { family: 'netdev', name: this.table, comment } } }];
    cmds.push({ add: { counter: { ...t, name: 'passed' } } }, { add: { counter: { ...t, name: 'dropped' } } });
    for (const s of SETS) {
      const flags = s.startsWith('p') ? ['interval', 'timeout'] : ['timeout'];
      cmds.push({ add: { set: { ...t, name: s, type: s.endsWith('4') ? 'ipv4_addr' : 'ipv6_addr', flags, stmt: [{ counter: null }] } } });
    }
    cmds.push({ add: { chain: { ...t, name: 'ingress', type: 'filter', hook: 'ingress', dev: this.iface, prio: -500, policy: 'accept' } } });
    const rule = (proto: 'ip' | 'ip6', field: 'saddr' | 'daddr', set: string): unknown => ({
      add: { rule: { ...t, chain: 'ingress', expr: [{ match: { op: '==', left: { payload: { protocol: proto, field } }, right: `@${set}` } }, { counter: 'dropped' }, { drop: null }] } },
    });
    for (const field of matchDestination ? (['saddr', 'daddr'] as const) : (['saddr'] as const)) {
      cmds.push(rule('ip', field, 'v4'), rule('ip', field, 'p4'), rule('ip6', field, 'v6'), rule('ip6', field, 'p6'));
    }
    cmds.push({ add: { rule: { ...t, chain: 'ingress', expr: [{ counter: 'passed' }] } } });
    return cmds;
  }

  /** Delete the table. */
  async destroy(): Promise<Result<void, CommandError>> {
    const ex = await this.exists();
    if (ex.err) return ex;
    if (!ex.val) return Ok(undefined);
    return nftApply(this.netns, [{ delete: { table: { family: 'netdev', name: this.table } } }], 'delete the nftables blocklist');
  }

  /** Add entries (existing ones get their timeout refreshed). */
  async add(entries: readonly BlockEntry[], ttlS?: number): Promise<Result<void, CommandError>> {
    if (!entries.length) return Ok(undefined);
    // delete-then-add refreshes timeouts of existing elements in the same transaction
    const current = await this.list();
    if (current.err) return current;
    const have = new Set(current.val.map((e) => e.entry.text));
    const again = entries.filter((e) => have.has(e.text));
    return nftApply(this.netns, [...this.deleteElems(again), ...this.addElems(entries, ttlS)], 'add blocklist entries');
  }

  private deleteElems(entries: readonly BlockEntry[]): unknown[] {
    const by: Record<ListKind, unknown[]> = { v4: [], v6: [], p4: [], p6: [] };
    for (const e of entries) by[listKind(e)].push(this.elemExpr(e));
    return SETS.filter((s) => by[s].length).map((s) => ({ delete: { element: { family: 'netdev', table: this.table, name: s, elem: by[s] } } }));
  }

  /** Remove entries; absent ones are ignored. Returns how many were removed. */
  async remove(entries: readonly BlockEntry[]): Promise<Result<number, CommandError>> {
    const current = await this.list();
    if (current.err) return current;
    const have = new Set(current.val.map((e) => e.entry.text));
    const del = entries.filter((e) => have.has(e.text));
    if (!del.length) return Ok(0);
    const r = await nftApply(this.netns, this.deleteElems(del), 'remove blocklist entries');
    return r.err ? r : Ok(del.length);
  }

  /** Replace every entry in one nft transaction. */
  async replace(entries: readonly BlockEntry[], ttlS?: number): Promise<Result<void, CommandError>> {
    const cmds: unknown[] = SETS.map((s) => ({ flush: { set: { family: 'netdev', table: this.table, name: s } } }));
    return nftApply(this.netns, [...cmds, ...this.addElems(entries, ttlS)], 'replace the blocklist');
  }

  /** Every element with its counter and remaining timeout. */
  async list(): Promise<Result<NftElement[], CommandError>> {
    const r = await nftListTable(this.netns, this.table);
    if (r.err) return r;
    const out: NftElement[] = [];
    for (const item of r.val ?? []) {
      const set = (item as { set?: { name: string; elem?: unknown[] } }).set;
      if (!set || !SETS.includes(set.name as ListKind)) continue;
      for (const el of set.elem ?? []) {
        const parsed = parseElem(el);
        if (parsed) out.push(parsed);
      }
    }
    return Ok(out);
  }

  /** Named counters. */
  async counters(): Promise<Result<{ passed: { packets: number; bytes: number }; dropped: { packets: number; bytes: number } }, CommandError>> {
    const r = await run(['nft', '-j', 'list', 'counters', 'table', 'netdev', this.table], { netns: this.netns, what: 'list blocklist counters' });
    if (r.err) return r;
    const res = { passed: { packets: 0, bytes: 0 }, dropped: { packets: 0, bytes: 0 } };
    for (const item of (JSON.parse(r.val.stdout) as { nftables: unknown[] }).nftables) {
      const c = (item as { counter?: { name: string; packets: number; bytes: number } }).counter;
      if (c && (c.name === 'passed' || c.name === 'dropped')) res[c.name] = { packets: c.packets, bytes: c.bytes };
    }
    return Ok(res);
  }
}

function parseElem(el: unknown): NftElement | undefined {
  let val: unknown = el;
  let hits = 0;
  let expiresS: number | undefined;
  if (el && typeof el === 'object' && 'elem' in el) {
    const e = (el as { elem: { val: unknown; expires?: number; timeout?: number; counter?: { packets: number } } }).elem;
    val = e.val;
    hits = e.counter?.packets ?? 0;
    if (e.timeout !== undefined) expiresS = e.expires ?? 0;
  }
  let text: string | undefined;
  if (typeof val === 'string') text = val;
  else if (val && typeof val === 'object' && 'prefix' in val) {
    const p = (val as { prefix: { addr: string; len: number } }).prefix;
    text = `${p.addr}/${p.len}`;
  } else if (val && typeof val === 'object' && 'range' in val) {
    return undefined; // ranges are never written by netfence
  }
  if (!text) return undefined;
  const r = parseEntry(text);
  return r.ok ? { entry: r.val, hits, expiresS } : undefined;
}

