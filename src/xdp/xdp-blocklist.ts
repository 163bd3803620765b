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
import { BpfSyscallError, pinnedId } from '../host/bpf.js';
import { hostFiles } from '../host/files.js';
import { listLinks, xdpModeName } from '../host/links.js';
import { nftList } from '../host/nft.js';
import { apply as applyPlan } from '../plan/executor.js';
import { withKeyLock } from '../plan/lock.js';
import { Err, Ok, type Result } from '../result.js';
import { compileXdp, compileXdpDestroy, gatherXdpFacts, type XdpCompiled, type XdpFacts } from './compile.js';
import { parseEntries, parseEntry, type BlockEntry, nestedPrefixIssues } from './entries.js';
import { PIN_ROOT, xdpState, type XdpMode } from './loader.js';
import { ALL_MAPS, BlocklistMaps, bootNowNs, type XdpProgress } from './maps.js';
import { mapOp, mapsHas, mapsList, mapsPrune, mapsReplace, mapsStats } from './map-ops.js';
import { NftBlocklist, nftBlocklistOwner } from './nft-backend.js';
import { PROGRESS_THRESHOLD, XdpBlocklistOptionsSchema, defaultName, ttlMsOf, ttlSecondsCheck, type XdpAddOptions, type XdpAttachInfo, type XdpBlocklistBackend, type XdpBlocklistEntry, type XdpBlocklistEvents, type XdpBlocklistOptions, type XdpBlocklistStats } from './types.js';

import { firstLine, notAttached, uniq } from './blocklist-util.js';

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
    const o = this.options;
    const f = await gatherXdpFacts(o, this.pinDir);
    if (f.err) return f;
    const c = this.compile(f.val);
    if (c.err) return c;
    const r = await applyPlan(c.val.plan);
    if (r.err) return Err(r.val);
    // in force: the program it replaced is no longer needed
    const prev = join(this.pinDir, 'prog_prev');
    if (hostFiles().exists(prev)) hostFiles().unlink(prev);
    const st = await xdpState(o.iface, o.netns);
    const m = st.ok ? st.val.prog?.mode : undefined;
    const mode: XdpMode = m === 'native' || m === 'generic' ? m : (c.val.modes[0] as XdpMode);
    this.maps?.close();
    this.maps = undefined;
    this.currentBackend = 'xdp';
    this.currentMode = mode;
    const reason = c.val.replacing ? `replaced our attached program atomically (${mode})` : c.val.modes.length > 1 && mode === 'generic' ? 'native attach refused; generic in force' : `${mode} attach accepted`;
    return Ok({ backend: 'xdp', mode, reason, reopened: c.val.reopened });
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
    if (hostFiles().exists(this.pinDir)) {
      const st = await xdpState(o.iface, o.netns);
      let ourProgId: number | undefined;
      try {
        ourProgId = pinnedId(join(this.pinDir, 'prog'));
      } catch {
        ourProgId = undefined;
      }
      this.maps?.close();
      this.maps = undefined;
      const plan = compileXdpDestroy(o, this.name, this.pinDir, { attached: st.ok ? st.val.prog : undefined, ourProgId, pinned: true }, options.keepMaps === true);
      const r = await applyPlan(plan);
      if (r.err) return Err(r.val);
    }
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

  /**
   * Shared start of add() and replace(): validate the entries and the ttl,
   * open the backend, then check what only that backend refuses (nested
   * prefixes on the nft backend, whose interval sets cannot hold them), and
   * give the expiry in the form each backend takes (whole seconds for nft, a
   * CLOCK_BOOTTIME deadline for the maps).
   */
  private async prepareLoad(
    entries: readonly string[] | string,
    options: XdpAddOptions,
  ): Promise<Result<{ list: BlockEntry[]; backend: { kind: 'xdp'; maps: BlocklistMaps } | { kind: 'nft'; nft: NftBlocklist }; nftTtl: number | undefined; expires: bigint }, NetfenceError>> {
    const p0 = parseEntries(entries, 'blocklist entries', { dedupe: false });
    if (p0.err) return p0;
    const t = ttlMsOf(options);
    if (t.err) return t;
    const b = await this.open();
    if (b.err) return b;
    const nft = b.val.kind === 'nft';
    const list = nft ? uniq(p0.val) : p0.val;
    const nested = nft ? nestedPrefixIssues(list) : [];
    if (nested.length) return Err(new ValidationError('blocklist entries', nested));
    const ms = t.val;
    return Ok({
      list,
      backend: b.val,
      nftTtl: ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000)),
      expires: ms === undefined || nft ? 0n : bootNowNs() + BigInt(Math.round(ms * 1e6)),
    });
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
    const l = await this.prepareLoad(entries, options);
    if (l.err) return l;
    const { list, backend, nftTtl, expires } = l.val;
    if (backend.kind === 'nft') {
      const r = await backend.nft.add(list, nftTtl);
      return r.err ? r : Ok({ added: list.length });
    }
    const maps = backend.maps;
    return mapOp(() => {
      maps.upsert(maps.activeSide(), list, expires, 'add', this.progress('add', list.length));
      return { added: list.length };
    });
  }

  /** Remove addresses/prefixes (exact entries; absent ones are ignored). */
  async remove(entries: readonly string[] | string): Promise<Result<{ removed: number }, NetfenceError>> {
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
    const l = await this.prepareLoad(entries, options);
    if (l.err) return l;
    const { list, backend, nftTtl, expires } = l.val;
    if (backend.kind === 'nft') {
      const r = await backend.nft.replace(list, nftTtl);
      return r.err ? r : Ok({ count: list.length });
    }
    const maps = backend.maps;
    return withKeyLock(`xdp-${this.name}`, `xdp replace ${this.name}`, async () => mapOp(() => {
      mapsReplace(maps, list, expires, this.progress('replace', list.length));
      return { count: list.length };
    }), (e) => Err(e));
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
    return mapOp(() => ({ removed: mapsPrune(maps) }));
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
    let iface = options.iface;
    let backend: XdpBlocklistBackend | undefined;
    let mode: XdpMode | undefined;
    if (BlocklistMaps.exists(probe.pinDir)) {
      let progId: number | undefined;
      try {
        progId = pinnedId(join(probe.pinDir, 'prog'));
      } catch {
        progId = undefined;
      }
      const links = await listLinks({ netns: options.netns, what: `find blocklist ${name}` });
      if (links.err) return links;
      const at = progId === undefined ? undefined : links.val.find((l) => l.xdp?.prog?.id === progId);
      if (at && (iface === undefined || iface === at.ifname)) {
        iface = at.ifname;
        backend = 'xdp';
        const m = xdpModeName(at.xdp?.mode);
        if (m === 'native' || m === 'generic') mode = m;
      }
    }
    if (!backend) {
      const t = await nftList(['chain', 'netdev', probe.nftTable, 'ingress'], { netns: options.netns });
      if (t.ok) {
        const ch = (t.val.nftables ?? []).map((x) => (x as { chain?: { name?: string; dev?: string | string[] } }).chain).find((c) => c?.name === 'ingress');
        // nft lists the chain's device in JSON from 1.0.7 on; older ones leave it out
        const dev = Array.isArray(ch?.dev) ? ch.dev[0] : ch?.dev;
        if (ch && (iface === undefined || dev === undefined || iface === dev)) {
          iface ??= dev;
          backend = 'nft';
        }
      }
    }
    if (!backend || (backend === 'xdp' && iface === undefined)) {
      const where = options.netns ? `network namespace ${options.netns}` : "the machine's own network namespace";
      return Err(new NetfenceError('NOT_ATTACHED', `blocklist ${name} is not attached in ${where}${options.iface ? ` on ${options.iface}` : ''} (no attached program with its pins, no nft table ${probe.nftTable})`, { hint: 'check the name and --netns, or apply the blocklist first' }));
    }
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
