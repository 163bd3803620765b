/**
 * XdpBlocklist: drop listed IPv4/IPv6 source addresses and prefixes in the
 * driver, before the network stack, with a prebuilt XDP program fed from
 * Node through bpf(2) — or, when XDP cannot be used, with nftables sets on
 * the interface's ingress hook, behind the same API.
 *
 * Lifecycle: {@link XdpBlocklist.compile} (pure: host facts in, Plan out) →
 * {@link XdpBlocklist.apply} (the executor applies the plan: XDP steps with
 * inverses, or the nft fallback's owned table) → {@link XdpBlocklist.destroy}.
 * Entries are the data plane: add/remove/has/list/replace/clear/prune/stats
 * go straight to the maps (bpf(2), batched) or to the nft sets (element
 * operations through the executor).
 *
 * See docs/xdp.md for the user guide and the design (A/B maps for atomic
 * replacement, pins, clocks, fallback).
 * @module
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { z } from 'zod';
import { NetfenceError, UnsupportedError, ValidationError, fromZodIssues } from '../errors.js';
import { BpfSyscallError } from '../host/bpf.js';
import { withKeyLock } from '../plan/lock.js';
import { Err, Ok, type Result } from '../result.js';
import { SerialQueue } from '../util/serial.js';
import { compileXdp, gatherXdpFacts, type XdpCompiled, type XdpFacts } from './compile.js';
import { applyXdpPlan, destroyXdpPins } from './lifecycle.js';
import { addEntries, replaceEntries } from './data-plane.js';
import { parseEntries, parseEntry } from './entries.js';
import { findBlocklist } from './find.js';
import { PIN_ROOT, type XdpMode } from './loader.js';
import { ALL_MAPS, BlocklistMaps, type XdpProgress } from './maps.js';
import { mapOp, mapsHas, mapsList, mapsPrune, mapsStats } from './map-ops.js';
import { NftBlocklist, nftBlocklistOwner } from './nft-backend.js';
import { PROGRESS_THRESHOLD, XdpBlocklistOptionsSchema, defaultName, ttlSecondsCheck, type XdpAddOptions, type XdpAttachInfo, type XdpBlocklistBackend, type XdpBlocklistEntry, type XdpBlocklistEvents, type XdpBlocklistOptions, type XdpBlocklistStats } from './types.js';

import { firstLine, notAttached } from './blocklist-util.js';

export { PROGRESS_THRESHOLD, XdpBlocklistOptionsSchema, defaultName } from './types.js';
export type { XdpAddOptions, XdpAttachInfo, XdpBlocklistBackend, XdpBlocklistEntry, XdpBlocklistEvents, XdpBlocklistOptions, XdpBlocklistStats, XdpCounter, XdpProgress, XdpMode } from './types.js';
export type { XdpCompiled, XdpFacts } from './compile.js';

/**
 * A blocklist of IPv4/IPv6 addresses and CIDR prefixes, enforced on one
 * interface by an XDP program (native mode first, then generic) or, when XDP
 * cannot be used, by nftables sets on the ingress hook. The backend in force
 * is in {@link XdpBlocklist.backend}.
 *
 * Its maps are pinned under /sys/fs/bpf/netfence/<name>/, so another process
 * (or this one after a restart) constructing a blocklist with the same name
 * sees the same entries and counters.
 *
 * Invalid options throw a {@link ValidationError}; every method returns a
 * {@link Result} for expected failures.
 *
 * @example
 * ```ts
 * const bl = new XdpBlocklist({ iface: 'eth0' });
 * (await bl.apply()).unwrap();
 * (await bl.add(['198.18.7.7', '198.19.0.0/16', 'fd00:bad::/32'], { ttlMs: 3_600_000 })).unwrap();
 * console.log((await bl.stats()).unwrap());
 * ```
 */
export class XdpBlocklist extends EventEmitter<XdpBlocklistEvents> {
  /** Validated options. */
  readonly options: z.output<typeof XdpBlocklistOptionsSchema>;
  /** Name of the blocklist (pin directory and nft table suffix). */
  readonly name: string;
  /** bpffs directory holding this blocklist's pinned maps and program. */
  readonly pinDir: string;
  private maps: BlocklistMaps | undefined;
  private nft: NftBlocklist | undefined;
  private currentBackend: XdpBlocklistBackend | undefined;
  private currentMode: XdpMode | undefined;
  /** Opened by name ({@link XdpBlocklist.open}) without learning its interface: apply() is refused. */
  private ifaceUnknown = false;
  /** Entry writes (add, remove, replace, clear, prune) of this object, one at a time: a load awaits its batches. */
  private readonly writes = new SerialQueue();

  constructor(options: XdpBlocklistOptions) {
    super();
    const r = XdpBlocklistOptionsSchema.safeParse(options);
    if (!r.success) throw fromZodIssues('XdpBlocklist options', r.error.issues);
    this.options = r.data;
    this.name = r.data.name ?? defaultName(r.data.iface, r.data.netns);
    this.pinDir = join(PIN_ROOT, this.name);
  }

  /** The backend in force: `xdp` or `nft` (before apply/open: the forced one, else `xdp`). */
  get backend(): XdpBlocklistBackend {
    return this.currentBackend ?? (this.options.backend === 'nft' ? 'nft' : 'xdp');
  }

  /**
   * The interface the blocklist filters; undefined only for a blocklist found
   * by {@link XdpBlocklist.open} on the nft backend when nft does not list the
   * chain's device (nft before 1.0.7) and no `iface` was given.
   */
  get iface(): string | undefined {
    return this.ifaceUnknown ? undefined : this.options.iface;
  }

  /** XDP mode in force after {@link apply} (undefined for nft or before apply). */
  get mode(): XdpMode | undefined {
    return this.currentMode;
  }

  /** nftables table used by the fallback. */
  get nftTable(): string {
    return `netfence_bl_${this.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  }

  private nftBackend(): NftBlocklist {
    this.nft ??= new NftBlocklist(this.nftTable, this.options.iface, this.options.netns, nftBlocklistOwner(this.name));
    return this.nft;
  }

  /**
   * The XDP plan for `facts` (pure, no I/O; facts from the host, see
   * {@link hostFacts}): maps, load, attach, pin swap — each a step with its
   * undo. Err when XDP cannot serve this host (no bpf(2), no object) or a
   * foreign XDP program is attached (`XDP_BUSY`).
   */
  compile(facts: XdpFacts): Result<XdpCompiled, NetfenceError> {
    return compileXdp(this.options, this.name, this.pinDir, facts);
  }

  /** The host facts for {@link compile} (reads only): what is attached to the interface, which of our pins exist, whether bpf(2) and the object are usable. */
  async hostFacts(): Promise<Result<XdpFacts, NetfenceError>> {
    return gatherXdpFacts(this.options, this.pinDir);
  }

  /** The nft fallback's plan (pure): its owned table, sets, counters and chain. */
  compileNft(): Result<XdpCompiled, NetfenceError> {
    return Ok({ plan: this.nftBackend().setupPlan(this.options.matchDestination), reopened: false, replacing: false, modes: [] });
  }

  /**
   * Put the blocklist on the interface. With backend `auto`, XDP is tried
   * (native, then generic, unless `mode` says otherwise) and nftables is used
   * when XDP cannot be. An existing blocklist of the same name is re-opened
   * with its entries and counters; an attached program of ours is replaced
   * atomically. A foreign XDP program on the interface is never replaced.
   * Either way the change is a plan applied by the executor: a failure (or a
   * crash, repaired by `reconcile()`) leaves the previous state.
   */
  async apply(): Promise<Result<XdpAttachInfo, NetfenceError>> {
    const o = this.options;
    if (this.ifaceUnknown) return Err(new ValidationError('XdpBlocklist', [{ path: 'iface', message: `blocklist ${this.name} was opened by name without its interface: give iface to XdpBlocklist.open() to apply it again` }]));
    if (o.backend !== 'nft') {
      // pins are machine-wide: serialize apply/destroy/replace of one blocklist across processes
      const x = await withKeyLock(`xdp-${this.name}`, `xdp apply ${this.name}`, () => this.applyXdp(), (e) => Err(e));
      if (x.ok) return x;
      if (o.backend === 'xdp' || x.val.code === 'XDP_BUSY' || x.val instanceof ValidationError) return x;
      return this.applyNft(`XDP not usable: ${firstLine(x.val.message)}`);
    }
    return this.applyNft('backend nft was requested');
  }

  /** @deprecated use {@link apply} (same behaviour). */
  attach(): Promise<Result<XdpAttachInfo, NetfenceError>> {
    return this.apply();
  }

  private async applyNft(reason: string): Promise<Result<XdpAttachInfo, NetfenceError>> {
    const nft = this.nftBackend();
    const ex = await nft.exists();
    if (ex.err) return ex;
    const r = await nft.setup(this.options.matchDestination);
    if (r.err) return r;
    this.currentBackend = 'nft';
    this.currentMode = undefined;
    return Ok({ backend: 'nft', reason, reopened: ex.val });
  }

  private async applyXdp(): Promise<Result<XdpAttachInfo, NetfenceError>> {
    const r = await applyXdpPlan(this.options, this.name, this.pinDir);
    if (r.err) return r;
    this.maps?.close();
    this.maps = undefined;
    this.currentBackend = 'xdp';
    this.currentMode = r.val.mode;
    return r;
  }

  /**
   * Remove the blocklist from the interface: the XDP program (or the nft
   * table) is removed and the interface filters nothing again. Unless
   * `keepMaps` is true, the pinned maps (entries and counters) are deleted too.
   */
  async destroy(options: { keepMaps?: boolean } = {}): Promise<Result<void, NetfenceError>> {
    return withKeyLock(`xdp-${this.name}`, `xdp destroy ${this.name}`, () => this.destroyLocked(options), (e) => Err(e));
  }

  /** @deprecated use {@link destroy} (same behaviour). */
  detach(options: { keepMaps?: boolean } = {}): Promise<Result<void, NetfenceError>> {
    return this.destroy(options);
  }

  private async destroyLocked(options: { keepMaps?: boolean }): Promise<Result<void, NetfenceError>> {
    const o = this.options;
    this.maps?.close();
    this.maps = undefined;
    const x = await destroyXdpPins(o, this.name, this.pinDir, options.keepMaps === true);
    if (x.err) return x;
    if (o.backend !== 'xdp') {
      const n = await this.nftBackend().destroy();
      if (n.err && this.currentBackend === 'nft') return n;
    }
    this.currentBackend = undefined;
    this.currentMode = undefined;
    return Ok(undefined);
  }

  /** Open the backend: this process's, or the pinned maps / nft table another process left. */
  private async open(): Promise<Result<{ kind: 'xdp'; maps: BlocklistMaps } | { kind: 'nft'; nft: NftBlocklist }, NetfenceError>> {
    if (this.currentBackend === 'nft') return Ok({ kind: 'nft', nft: this.nftBackend() });
    if (this.maps) return Ok({ kind: 'xdp', maps: this.maps });
    if (this.options.backend !== 'nft' && BlocklistMaps.exists(this.pinDir)) {
      try {
        this.maps = BlocklistMaps.open(this.pinDir);
      } catch (e) {
        if (e instanceof BpfSyscallError) return Err(new UnsupportedError('xdp.bpf', `cannot open the pinned maps in ${this.pinDir}: ${e.message}`));
        throw e;
      }
      this.currentBackend = 'xdp';
      return Ok({ kind: 'xdp', maps: this.maps });
    }
    if (this.options.backend !== 'xdp') {
      const ex = await this.nftBackend().exists();
      if (ex.err) return ex;
      if (ex.val) {
        this.currentBackend = 'nft';
        return Ok({ kind: 'nft', nft: this.nftBackend() });
      }
    }
    return Err(notAttached(this.name));
  }

  private progress(op: XdpProgress['op'], total: number): ((p: XdpProgress) => void) | undefined {
    return total > PROGRESS_THRESHOLD ? (p) => this.emit('progress', { ...p, op }) : undefined;
  }

  /** The deprecated seconds-valued `ttl` (also used by the hostile-input harness). */
  private ttlCheck(ttl: number | undefined): Result<number | undefined, ValidationError> {
    return ttlSecondsCheck(ttl);
  }

  /**
   * Add addresses/prefixes. Every entry is validated first; one bad entry
   * refuses the whole call (its index and reason are in the ValidationError)
   * and nothing is applied. With `ttl` (seconds) the entries expire on their
   * own. Adding an existing entry refreshes its expiry and resets its hits.
   * A map that fills up mid-call is rolled back to its previous content.
   */
  async add(entries: readonly string[] | string, options: XdpAddOptions = {}): Promise<Result<{ added: number }, NetfenceError>> {
    return this.writes.run(() => addEntries(() => this.open(), entries, options, (op, total) => this.progress(op, total)));
  }

  /** Remove addresses/prefixes (exact entries; absent ones are ignored). */
  async remove(entries: readonly string[] | string): Promise<Result<{ removed: number }, NetfenceError>> {
    return this.writes.run(() => this.removeNow(entries));
  }

  private async removeNow(entries: readonly string[] | string): Promise<Result<{ removed: number }, NetfenceError>> {
    const p = parseEntries(entries);
    if (p.err) return p;
    const b = await this.open();
    if (b.err) return b;
    if (b.val.kind === 'nft') {
      const r = await b.val.nft.remove(p.val);
      return r.err ? r : Ok({ removed: r.val });
    }
    const maps = b.val.maps;
    return mapOp(() => ({ removed: maps.delete(maps.activeSide(), p.val, this.progress('remove', p.val.length)) }));
  }

  /**
   * Whether packets from `address` are dropped now: an address is checked
   * like the program does (exact entry, then longest prefix); a prefix is
   * checked for an exact entry. Expired entries do not count.
   */
  async has(address: string): Promise<Result<boolean, NetfenceError>> {
    const e = parseEntry(address);
    if (e.err) return Err(new ValidationError('address', [{ path: '', message: e.val }]));
    const b = await this.open();
    if (b.err) return b;
    if (b.val.kind === 'nft') return b.val.nft.has(e.val); // nft -c probes: no listing
    const maps = b.val.maps;
    return mapOp(() => mapsHas(maps, e.val));
  }

  /** Every live entry with its hits and remaining lifetime. */
  async list(): Promise<Result<XdpBlocklistEntry[], NetfenceError>> {
    const b = await this.open();
    if (b.err) return b;
    if (b.val.kind === 'nft') {
      const l = await b.val.nft.list();
      if (l.err) return l;
      return Ok(l.val.map((x) => ({ entry: x.entry.text, hits: x.hits, expiresInMs: x.expiresS === undefined ? undefined : x.expiresS * 1000 })));
    }
    const maps = b.val.maps;
    return mapOp(() => mapsList(maps));
  }

  /**
   * Replace the whole list atomically: the new entries are loaded into the
   * inactive half of the maps, then one map update makes the program read
   * that half. No packet ever sees a half-loaded list. Per-entry hits start
   * from zero; global counters continue.
   */
  async replace(entries: readonly string[] | string, options: XdpAddOptions = {}): Promise<Result<{ count: number }, NetfenceError>> {
    return this.writes.run(() =>
      replaceEntries(() => this.open(), entries, options, (op, total) => this.progress(op, total), (fn) => withKeyLock(`xdp-${this.name}`, `xdp replace ${this.name}`, fn, (e) => Err(e))),
    );
  }

  /** Remove every entry (atomically: an empty list is swapped in). */
  async clear(): Promise<Result<void, NetfenceError>> {
    const r = await this.replace([]);
    return r.err ? r : Ok(undefined);
  }

  /** Delete expired entries that no packet has met yet (the program deletes the ones it meets). */
  async prune(): Promise<Result<{ removed: number }, NetfenceError>> {
    const b = await this.open();
    if (b.err) return b;
    if (b.val.kind === 'nft') return Ok({ removed: 0 }); // nftables expires elements itself
    const maps = b.val.maps;
    return this.writes.run(async () => mapOp(() => ({ removed: mapsPrune(maps) })));
  }

  /** Counters: packets passed and dropped, expired entries met, live entries. */
  async stats(): Promise<Result<XdpBlocklistStats, NetfenceError>> {
    const b = await this.open();
    if (b.err) return b;
    if (b.val.kind === 'nft') {
      const c = await b.val.nft.counters();
      if (c.err) return c;
      const l = await b.val.nft.list();
      if (l.err) return l;
      return Ok({ backend: 'nft', passed: c.val.passed, dropped: c.val.dropped, expired: 0, entries: l.val.length });
    }
    const maps = b.val.maps;
    return mapOp(() => mapsStats(maps, this.currentMode));
  }

  /**
   * Open an existing blocklist by name, from any process: the one that
   * applied it (a library user, `netfence apply`) may be another. The
   * blocklist is found as its pinned maps (/sys/fs/bpf/netfence/<name>/)
   * whose program is attached to an interface of `netns`, or as its nft
   * fallback table `netfence_bl_<name>` in `netns`. The returned object
   * serves the data plane (add/remove/has/list/replace/clear/prune/stats)
   * and destroy(); `iface` is read from the kernel unless given (see
   * {@link XdpBlocklist.iface}; apply() needs it).
   * Err `NOT_ATTACHED` when neither exists there, a ValidationError for a
   * bad name or namespace.
   *
   * @example
   * ```ts
   * const bl = (await XdpBlocklist.open('edge', { netns: 'fw' })).unwrap();
   * (await bl.add(['198.18.7.7'])).unwrap();
   * bl.close();
   * ```
   */
  static async open(name: string, options: { netns?: string | undefined; iface?: string | undefined } = {}): Promise<Result<XdpBlocklist, NetfenceError>> {
    let probe: XdpBlocklist;
    try {
      probe = new XdpBlocklist({ iface: options.iface ?? 'lo', name, ...(options.netns !== undefined ? { netns: options.netns } : {}) });
    } catch (e) {
      if (e instanceof ValidationError) return Err(e);
      throw e;
    }
    const f = await findBlocklist(name, probe.pinDir, probe.nftTable, options);
    if (f.err) return f;
    const { iface, backend, mode } = f.val;
    const bl = new XdpBlocklist({ iface: iface ?? 'lo', name, backend, ...(options.netns !== undefined ? { netns: options.netns } : {}) });
    bl.currentBackend = backend;
    bl.currentMode = mode;
    bl.ifaceUnknown = iface === undefined;
    return Ok(bl);
  }

  /** Release file descriptors held by this object (the blocklist stays attached and pinned). */
  close(): void {
    this.maps?.close();
    this.maps = undefined;
  }
}

/** Names of the maps pinned for every blocklist. */
export const XDP_BLOCKLIST_MAPS: readonly string[] = ALL_MAPS;
