/**
 * The nftables fallback of the XDP blocklist: the same entries in nftables
 * sets of a `netdev` table whose chain hooks the interface's ingress (the
 * earliest nftables hook, still after the driver). Exact addresses go in
 * plain sets, prefixes in interval sets; every set has per-element timeouts
 * and counters; two named counters count passed and dropped packets.
 *
 * The table is an ordinary owned table: every change is a plan applied by the
 * executor (ownership mark, namespace lock, one transaction), so replace() is
 * atomic here too. Element operations never list the sets (nft 1.0.x loads
 * every element for any listing: minutes next to a 1M set): add() refreshes
 * existing elements with add+delete+add in one batch, has() and remove() ask
 * the kernel with `nft -c` probes.
 * @module
 */
import { CommandError, type NetfenceError } from '../errors.js';
import { nftApply, nftList } from '../host/nft.js';
import { chain, cmd, counter, drop, elem, elements, eq, payload, prefix, rule, set, setRef, table, type TableId } from '../nft/build.js';
import type { Command } from '../nft/schema/commands.js';
import type { SetItem } from '../nft/schema/expressions.js';
import type { SET_FLAGS } from '../nft/schema/objects.js';
import { apply, destroy } from '../plan/executor.js';
import { probeOwnership, OwnershipError, foreignOwner } from '../plan/ownership.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { listKind, parseEntry, type BlockEntry, type ListKind } from './entries.js';

type SetFlag = (typeof SET_FLAGS)[number];

const SETS: readonly ListKind[] = ['v4', 'v6', 'p4', 'p6'];

/** One listed element. */
export interface NftElement {
  entry: BlockEntry;
  hits: number;
  /** Seconds left, when the element has a timeout. */
  expiresS?: number | undefined;
}

/** Plan owner of a blocklist's nft table. */
export function nftBlocklistOwner(name: string): string {
  return `xdp-blocklist:${name}`;
}

/** A blocklist served by nftables sets on one interface. */
export class NftBlocklist {
  /** The owned table. */
  readonly ref: TableRef;
  constructor(
    readonly table: string,
    readonly iface: string,
    readonly netns: string | undefined,
    /** Plan owner (its mark is on the table). */
    readonly owner: string = `xdp-blocklist:${table}`,
  ) {
    this.ref = { family: 'netdev', name: table };
    this.tableId = { family: 'netdev', table };
  }

  /** The owned table, as the nft constructors take it. */
  private readonly tableId: TableId;

  private elemExpr(e: BlockEntry, ttlS?: number): SetItem {
    const addr = e.text.split('/')[0] as string;
    const val = e.len === (e.family === 4 ? 32 : 128) ? addr : prefix(addr, e.len);
    return ttlS ? elem(val, { timeout: ttlS }) : val;
  }

  private elems(verb: 'add' | 'delete', entries: readonly BlockEntry[], ttlS?: number): Command[] {
    const by: Record<ListKind, SetItem[]> = { v4: [], v6: [], p4: [], p6: [] };
    for (const e of entries) by[listKind(e)].push(this.elemExpr(e, ttlS));
    return SETS.filter((s) => by[s].length).map((s) => cmd[verb](elements(this.tableId, s, by[s])));
  }

  private addElems(entries: readonly BlockEntry[], ttlS?: number): Command[] {
    return this.elems('add', entries, ttlS);
  }

  /** A plan on the owned table with `nft` as its commands. */
  plan(nft: Command[]): Plan {
    const p = emptyPlan(this.owner, this.netns);
    p.tables.push(this.ref);
    p.nft.push(...nft);
    return p;
  }

  private async applyNft(nft: Command[]): Promise<Result<void, NetfenceError>> {
    if (nft.length === 0) return Ok(undefined);
    const r = await apply(this.plan(nft));
    return r.err ? Err(r.val) : Ok(undefined);
  }

  /** Whether the table exists (and is ours: a table of the same name without our mark is an OwnershipError). */
  async exists(): Promise<Result<boolean, NetfenceError>> {
    const p = await probeOwnership(this.ref, this.owner, this.netns);
    if (p.err) return p;
    if (p.val === 'not-owned') return Err(new OwnershipError(this.ref, await foreignOwner(this.ref, this.netns), this.owner));
    return Ok(p.val === 'owned');
  }

  /**
   * The plan that creates the table (or brings an existing one to this
   * layout, keeping its elements and counters): pure, no I/O.
   */
  setupPlan(matchDestination: boolean): Plan {
    return this.plan(this.setupCommands(matchDestination));
  }

  /** The nft commands of {@link setupPlan} (pure: no I/O); `comment` names the table where nft keeps table comments. */
  setupCommands(matchDestination: boolean, comment?: string): Command[] {
    const t = this.tableId;
    const cmds: Command[] = [cmd.add(table('netdev', this.table, comment ? { comment } : {}))];
    cmds.push(cmd.add({ counter: { ...t, name: 'passed' } }), cmd.add({ counter: { ...t, name: 'dropped' } }));
    for (const s of SETS) {
      const flags: SetFlag[] = s.startsWith('p') ? ['interval', 'timeout'] : ['timeout'];
      cmds.push(cmd.add(set(t, s, s.endsWith('4') ? 'ipv4_addr' : 'ipv6_addr', { flags, stmt: [counter()] })));
    }
    cmds.push(cmd.add(chain(t, 'ingress', { type: 'filter', hook: 'ingress', dev: this.iface, prio: -500, policy: 'accept' })));
    // an existing table gets its rules again (matchDestination may have changed); sets keep their elements
    cmds.push(cmd.flush({ chain: { ...t, name: 'ingress' } }));
    const dropFrom = (proto: 'ip' | 'ip6', field: 'saddr' | 'daddr', setName: string): Command => cmd.add(rule(t, 'ingress', [eq(payload(proto, field), setRef(setName)), { counter: 'dropped' }, drop()]));
    for (const field of matchDestination ? (['saddr', 'daddr'] as const) : (['saddr'] as const)) {
      cmds.push(dropFrom('ip', field, 'v4'), dropFrom('ip', field, 'p4'), dropFrom('ip6', field, 'v6'), dropFrom('ip6', field, 'p6'));
    }
    cmds.push(cmd.add(rule(t, 'ingress', [{ counter: 'passed' }])));
    return cmds;
  }

  /** Create the table, sets, counters and chain through the executor (an existing table keeps its elements). */
  async setup(matchDestination: boolean): Promise<Result<void, NetfenceError>> {
    const r = await apply(this.setupPlan(matchDestination));
    return r.err ? Err(r.val) : Ok(undefined);
  }

  /** Delete the table (only when it carries our mark). */
  async destroy(): Promise<Result<void, NetfenceError>> {
    const r = await destroy([this.ref], { netns: this.netns, owner: this.owner });
    return r.err ? r : Ok(undefined);
  }

  /**
   * Add entries; existing ones get their timeout refreshed and their counter
   * reset: add (a no-op when present), delete, add again with the timeout,
   * all in one transaction — no listing needed.
   */
  async add(entries: readonly BlockEntry[], ttlS?: number): Promise<Result<void, NetfenceError>> {
    if (!entries.length) return Ok(undefined);
    return this.applyNft([...this.elems('add', entries), ...this.elems('delete', entries), ...this.addElems(entries, ttlS)]);
  }

  /** Whether the kernel accepts `commands` (`nft -c`: nothing is committed); the error when it does not. */
  private async probe(commands: Command[]): Promise<Result<boolean, CommandError> & { stderr?: string }> {
    const r = await nftApply(commands, { netns: this.netns, check: true, noLocalize: true, what: 'nft probe' });
    if (r.ok) return Ok(true);
    const stderr = r.val.failure.stderr;
    if (r.val.failure.timedOut || r.val.failure.exitCode === undefined || r.val.failure.exitCode === 127) return Err(r.val);
    return Object.assign(Ok(false), { stderr });
  }

  /** Which of `entries` are elements now (exact match, expired ones excluded): `nft -c delete element` probes, halved on failure. */
  private async present(entries: readonly BlockEntry[]): Promise<Result<BlockEntry[], CommandError>> {
    if (!entries.length) return Ok([]);
    const p = await this.probe(this.elems('delete', entries));
    if (p.err) return p;
    if (p.val) return Ok([...entries]);
    if (entries.length === 1) return Ok([]);
    const mid = entries.length >> 1;
    const a = await this.present(entries.slice(0, mid));
    if (a.err) return a;
    const b = await this.present(entries.slice(mid));
    if (b.err) return b;
    return Ok([...a.val, ...b.val]);
  }

  /** Remove entries; absent ones are ignored. Returns how many were removed. */
  async remove(entries: readonly BlockEntry[]): Promise<Result<number, NetfenceError>> {
    const have = await this.present(entries);
    if (have.err) return have;
    const r = await this.applyNft(this.elems('delete', have.val));
    return r.err ? r : Ok(have.val.length);
  }

  /**
   * Whether `e` is listed: a prefix must be an element exactly; an address is
   * listed when it is an element of the address set or inside an element of
   * the prefix set (adding it there would overlap, which `nft -c` refuses).
   */
  async has(e: BlockEntry): Promise<Result<boolean, CommandError>> {
    const exact = await this.present([e]);
    if (exact.err) return exact;
    if (exact.val.length) return Ok(true);
    if (e.len !== (e.family === 4 ? 32 : 128)) return Ok(false);
    const set = e.family === 4 ? 'p4' : 'p6';
    const p = await this.probe([cmd.add(elements(this.tableId, set, [e.text]))]);
    if (p.err) return p;
    if (p.val) return Ok(false);
    if (/overlap|exists/i.test(p.stderr ?? '')) return Ok(true);
    return Err(new CommandError('nft probe', { argv: ['nft', '-c', 'add', 'element'], netns: this.netns, stdout: '', stderr: p.stderr ?? '' }));
  }

  /** Replace every entry in one nft transaction. */
  async replace(entries: readonly BlockEntry[], ttlS?: number): Promise<Result<void, NetfenceError>> {
    const cmds = SETS.map((s) => cmd.flush({ set: { ...this.tableId, name: s } }));
    return this.applyNft([...cmds, ...this.addElems(entries, ttlS)]);
  }

  /** Every element with its counter and remaining timeout (lists the table: this is the one call that must). */
  async list(): Promise<Result<NftElement[], CommandError>> {
    const r = await nftList(['table', 'netdev', this.table], { netns: this.netns, timeoutMs: 600_000 });
    if (r.err) return r;
    const out: NftElement[] = [];
    for (const item of r.val.nftables ?? []) {
      const set = (item as unknown as { set?: { name: string; elem?: unknown[] } }).set;
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
    const r = await nftList(['counters', 'table', 'netdev', this.table], { netns: this.netns, timeoutMs: 600_000 });
    if (r.err) return r;
    const res = { passed: { packets: 0, bytes: 0 }, dropped: { packets: 0, bytes: 0 } };
    for (const item of r.val.nftables ?? []) {
      const c = (item as unknown as { counter?: { name: string; packets: number; bytes: number } }).counter;
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
