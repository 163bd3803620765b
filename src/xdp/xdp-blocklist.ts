/**
 * XdpBlocklist: drop listed IPv4/IPv6 source addresses and prefixes in the
 * driver, before the network stack, with a prebuilt XDP program fed from
 * Node through bpf(2) — or, when XDP cannot be used, with nftables sets on
 * the interface's ingress hook, behind the same API.
 *
 * See docs/xdp.md for the user guide and the design (A/B maps for atomic
 * replacement, pins, clocks, fallback).
 * @module
 */
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { NetfenceError, UnsupportedError, ValidationError, fromZodIssues } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { withKeyLock } from '../plan/lock.js';
import { IfName, NetnsName, SafePath } from '../validate.js';
import { BpfSyscallError, bpfSyscallNumber, pinnedId } from '../host/bpf.js';
import { covers, parseEntries, parseEntry, type BlockEntry, nestedPrefixIssues } from './entries.js';
import { attachProgram, defaultObjectPath, detachProgram, ensureBpffs, loadProgram, PIN_ROOT, xdpState, type XdpMode } from './loader.js';
import { ALL_MAPS, BlocklistMaps, MapOpError, bootNowNs, type XdpProgress, type Side } from './maps.js';
import { NftBlocklist } from './nft-backend.js';
import { faultAt } from '../plan/faults.js';
import { journalBegin, removeJournalEntries, type XdpJournalEntry } from '../plan/journal.js';

/** Options of {@link XdpBlocklist}, validated with zod. */
export const XdpBlocklistOptionsSchema = z
  .object({
    /** Interface whose incoming packets are filtered. */
    iface: IfName,
    /** Network namespace of the interface (a name under /run/netns). */
    netns: NetnsName.optional(),
    /** XDP attach mode: `native` (driver), `generic` (skb), or `auto` (native, then generic). Default `auto`. */
    mode: z.enum(['native', 'generic', 'auto']).default('auto'),
    /** `xdp` or `nft` forces a backend; `auto` (default) uses XDP and falls back to nftables. */
    backend: z.enum(['auto', 'xdp', 'nft']).default('auto'),
    /**
     * Name of the blocklist: its pins live in /sys/fs/bpf/netfence/<name>/ and its
     * nft fallback table is `netfence_bl_<name>`. Default: `<netns or host>_<iface>`.
     */
    name: z
      .string()
      .min(1)
      .max(48)
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_-]*$/, 'must contain only letters, digits, _ and - (bpffs refuses dots) and not start with -')
      .optional(),
    /** Capacity of each list (IPv4 addresses, IPv6 addresses, IPv4 prefixes, IPv6 prefixes). Default 65536. */
    maxEntries: z.number().int().min(1).max(1 << 24).default(65_536),
    /** Also drop packets whose destination is listed. Default false. */
    matchDestination: z.boolean().default(false),
    /** Path of the BPF object (default: the one shipped in the package, bpf/build/xdp_blocklist.o). */
    objectPath: SafePath.optional(),
  })
  .strict();

/** Options accepted by the {@link XdpBlocklist} constructor. */
export type XdpBlocklistOptions = z.input<typeof XdpBlocklistOptionsSchema>;

/** Which mechanism serves the blocklist. */
export type XdpBlocklistBackend = 'xdp' | 'nft';

/** Result of {@link XdpBlocklist.attach}. */
export interface XdpAttachInfo {
  backend: XdpBlocklistBackend;
  /** XDP mode in force (undefined for the nft backend). */
  mode?: XdpMode | undefined;
  /** Why this backend and mode were chosen (e.g. why XDP was not usable). */
  reason: string;
  /** Whether the blocklist's maps already existed (re-opened with their entries and counters). */
  reopened: boolean;
}

/** Options of {@link XdpBlocklist.add} and {@link XdpBlocklist.replace}. */
export interface XdpAddOptions {
  /** Seconds after which the entries expire (checked per packet in the kernel). */
  ttl?: number;
}

/** One entry as listed by {@link XdpBlocklist.list}. */
export interface XdpBlocklistEntry {
  /** Canonical address or prefix (`198.18.0.1`, `198.18.0.0/15`, `fd00::/8`). */
  entry: string;
  /** Packets dropped because of this entry. */
  hits: number;
  /** Milliseconds until the entry expires; undefined when it never does. */
  expiresInMs?: number | undefined;
}

/** Packet and byte counts. */
export interface XdpCounter {
  packets: number;
  bytes: number;
}

/** Counters of a blocklist, from {@link XdpBlocklist.stats}. */
export interface XdpBlocklistStats {
  backend: XdpBlocklistBackend;
  mode?: XdpMode | undefined;
  /** Packets seen and let through. */
  passed: XdpCounter;
  /** Packets dropped. */
  dropped: XdpCounter;
  /** Expired entries met (and deleted) by the program; 0 for the nft backend. */
  expired: number;
  /** Live entries. */
  entries: number;
}

/** Events emitted by {@link XdpBlocklist}. */
export interface XdpBlocklistEvents {
  /** Progress of loads and deletions larger than a few thousand entries. */
  progress: [XdpProgress];
}

/** Progress of a bulk operation. */
export type { XdpProgress, XdpMode };

/** Loads above this many entries emit `progress` events. */
export const PROGRESS_THRESHOLD = 4096;

const FLAG_MATCH_DST = 1;

function notAttached(name: string): NetfenceError {
  return new NetfenceError('NOT_ATTACHED', `blocklist ${name} is not attached (no pinned maps, no nft table)`, { hint: 'call attach() first' });
}

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
 * (await bl.attach()).unwrap();
 * (await bl.add(['198.18.7.7', '198.19.0.0/16', 'fd00:bad::/32'], { ttl: 3600 })).unwrap();
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

  constructor(options: XdpBlocklistOptions) {
    super();
    const r = XdpBlocklistOptionsSchema.safeParse(options);
    if (!r.success) throw fromZodIssues('XdpBlocklist options', r.error.issues);
    this.options = r.data;
    this.name = r.data.name ?? defaultName(r.data.iface, r.data.netns);
    this.pinDir = join(PIN_ROOT, this.name);
  }

  /** The backend in force: `xdp` or `nft` (before attach/open: the forced one, else `xdp`). */
  get backend(): XdpBlocklistBackend {
    return this.currentBackend ?? (this.options.backend === 'nft' ? 'nft' : 'xdp');
  }

  /** XDP mode in force after {@link attach} (undefined for nft or before attach). */
  get mode(): XdpMode | undefined {
    return this.currentMode;
  }

  /** nftables table used by the fallback. */
  get nftTable(): string {
    return `netfence_bl_${this.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  }

  private nftBackend(): NftBlocklist {
    this.nft ??= new NftBlocklist(this.nftTable, this.options.iface, this.options.netns);
    return this.nft;
  }

  /**
   * Attach the blocklist to the interface. With backend `auto`, XDP is tried
   * (native, then generic, unless `mode` says otherwise) and nftables is used
   * when XDP cannot be. An existing blocklist of the same name is re-opened
   * with its entries and counters; an attached program of ours is replaced
   * atomically. A foreign XDP program on the interface is never replaced.
   */
  async attach(): Promise<Result<XdpAttachInfo, NetfenceError>> {
    const o = this.options;
    if (o.backend !== 'nft') {
      // pins are machine-wide: serialize attach/detach/replace of one blocklist across processes
      const x = await withKeyLock(`xdp-${this.name}`, `xdp attach ${this.name}`, () => this.attachXdp(), (e) => Err(e));
      if (x.ok) return x;
      if (o.backend === 'xdp' || x.val.code === 'XDP_BUSY' || x.val instanceof ValidationError) return x;
      const n = await this.attachNft(`XDP not usable: ${firstLine(x.val.message)}`);
      return n;
    }
    return this.attachNft('backend nft was requested');
  }

  private async attachNft(reason: string): Promise<Result<XdpAttachInfo, NetfenceError>> {
    const nft = this.nftBackend();
    const ex = await nft.exists();
    if (ex.err) return ex;
    const r = await nft.setup(this.options.matchDestination, `netfence xdp-blocklist ${this.name}`);
    if (r.err) return r;
    this.currentBackend = 'nft';
    this.currentMode = undefined;
    return Ok({ backend: 'nft', reason, reopened: ex.val });
  }

  private async attachXdp(): Promise<Result<XdpAttachInfo, NetfenceError>> {
    const o = this.options;
    if (bpfSyscallNumber() === undefined) return Err(new UnsupportedError('xdp.bpf', `bpf(2) from Node is not supported on ${process.arch}`));
    const objectPath = o.objectPath ?? defaultObjectPath();
    if (!objectPath || !existsSync(objectPath)) return Err(new UnsupportedError('xdp.object', `the prebuilt XDP object was not found${objectPath ? ` at ${objectPath}` : ''}`, { hint: 'run `npm run build:bpf`' }));
    const st0 = await xdpState(o.iface, o.netns);
    if (st0.err) return st0;
    const fs = await ensureBpffs();
    if (fs.err) return fs;
    const progPin = join(this.pinDir, 'prog');
    const ourId = pinnedId(progPin);
    const attached = st0.val.prog;
    if (attached && attached.id !== ourId) {
      return Err(new NetfenceError('XDP_BUSY', `interface ${o.iface} already has an XDP program (id ${attached.id}, ${attached.name || 'unnamed'}) that is not this blocklist's; refusing to replace it`, { hint: 'detach it first, or use backend: "nft"' }));
    }
    // journal: what reconcile() must undo if this process dies before the attach completes
    const mapsExisted = BlocklistMaps.exists(this.pinDir);
    const journal = journalBegin<XdpJournalEntry>({ kind: 'xdp', netns: o.netns, name: this.name, iface: o.iface, pinDir: this.pinDir, mapsExisted, progIdBefore: attached?.id, phase: 'attaching' });
    // maps: re-open or create
    let maps: BlocklistMaps;
    try {
      maps = mapsExisted ? BlocklistMaps.open(this.pinDir) : BlocklistMaps.create(this.pinDir, o.maxEntries, 0);
      if (faultAt('xdp-maps')) {
        maps.close();
        throw new BpfSyscallError('MAP_CREATE (fault injected)', 1);
      }
      maps.setFlags(o.matchDestination ? FLAG_MATCH_DST : 0);
    } catch (e) {
      journal?.remove();
      if (!mapsExisted) this.removePins();
      if (e instanceof BpfSyscallError) return Err(new UnsupportedError('xdp.bpf', `cannot create BPF maps: ${e.message}`, { hint: 'needs root (CAP_BPF, CAP_NET_ADMIN)' }));
      throw e;
    }
    const created = maps.created;
    const fail = (err: NetfenceError): Result<never, NetfenceError> => {
      maps.close();
      if (created) this.removePins();
      journal?.remove();
      return Err(err);
    };
    // load a fresh program bound to the pinned maps
    const nextPin = join(this.pinDir, 'prog_next');
    if (existsSync(nextPin)) unlinkSync(nextPin);
    const ld = faultAt('xdp-load') ? Err(new NetfenceError('FAULT_INJECTED', 'load refused: fault injected')) : await loadProgram(objectPath, this.pinDir, nextPin);
    if (ld.err) return fail(ld.val);
    // attach: same mode as ours in force (atomic replace), else native then generic
    const modes: XdpMode[] = attached ? [attached.mode === 'generic' ? 'generic' : 'native'] : o.mode === 'auto' ? ['native', 'generic'] : [o.mode];
    const errors: string[] = [];
    let mode: XdpMode | undefined;
    for (const m of modes) {
      if (faultAt('xdp-attach')) {
        errors.push(`${m}: refused (fault injected)`);
        continue;
      }
      const a = await attachProgram(o.iface, o.netns, nextPin, m, attached !== undefined);
      if (a.ok) {
        mode = m;
        break;
      }
      errors.push(`${m}: ${firstLine(a.val.failure.stderr)}`);
    }
    if (!mode) {
      if (existsSync(nextPin)) unlinkSync(nextPin);
      return fail(new UnsupportedError('xdp.attach', `interface ${o.iface} refused the XDP program (${errors.join('; ')})`));
    }
    if (existsSync(progPin)) unlinkSync(progPin);
    renameSync(nextPin, progPin);
    const st = await xdpState(o.iface, o.netns);
    if (st.ok && st.val.prog?.mode && (st.val.prog.mode === 'native' || st.val.prog.mode === 'generic')) mode = st.val.prog.mode;
    // done: the attachment outlives this process by design (see docs/xdp.md), so its record becomes persistent
    journal?.update({ phase: 'attached', progId: st.ok ? st.val.prog?.id : undefined });
    removeJournalEntries((e) => e.kind === 'xdp' && e.name === this.name, journal?.entry.id);
    this.maps?.close();
    this.maps = maps;
    this.currentBackend = 'xdp';
    this.currentMode = mode;
    const reason = attached ? `replaced our attached program atomically (${mode})` : errors.length ? `native attach refused (${errors.join('; ')}); generic in force` : `${mode} attach accepted`;
    return Ok({ backend: 'xdp', mode, reason, reopened: !created });
  }

  /**
   * Detach from the interface: the XDP program (or the nft table) is removed
   * and the interface filters nothing again. Unless `keepMaps` is true, the
   * pinned maps (entries and counters) are deleted too.
   */
  async detach(options: { keepMaps?: boolean } = {}): Promise<Result<void, NetfenceError>> {
    return withKeyLock(`xdp-${this.name}`, `xdp detach ${this.name}`, () => this.detachLocked(options), (e) => Err(e));
  }

  private async detachLocked(options: { keepMaps?: boolean }): Promise<Result<void, NetfenceError>> {
    const o = this.options;
    const progPin = join(this.pinDir, 'prog');
    if (existsSync(this.pinDir)) {
      const ourId = pinnedId(progPin);
      const st = await xdpState(o.iface, o.netns);
      if (st.ok && st.val.prog && ourId !== undefined && st.val.prog.id === ourId) {
        const d = await detachProgram(o.iface, o.netns, st.val.prog.mode === 'generic' ? 'generic' : 'native');
        if (d.err) return d;
      }
      this.maps?.close();
      this.maps = undefined;
      if (!options.keepMaps) this.removePins();
      else if (existsSync(progPin)) unlinkSync(progPin);
      removeJournalEntries((e) => e.kind === 'xdp' && e.name === this.name);
    }
    if (o.backend !== 'xdp') {
      const n = await this.nftBackend().destroy();
      if (n.err && this.currentBackend === 'nft') return n;
    }
    this.currentBackend = undefined;
    this.currentMode = undefined;
    return Ok(undefined);
  }

  private removePins(): void {
    if (!existsSync(this.pinDir)) return;
    for (const f of readdirSync(this.pinDir)) {
      try {
        unlinkSync(join(this.pinDir, f));
      } catch {
        // keep going
      }
    }
    try {
      rmdirSync(this.pinDir);
      if (existsSync(PIN_ROOT) && readdirSync(PIN_ROOT).length === 0) rmdirSync(PIN_ROOT);
    } catch {
      // another blocklist may share the root
    }
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
   * Shared start of add() and replace(): validate the entries (nested prefixes
   * are refused on the nft backend, whose interval sets cannot hold them) and
   * the ttl, open the backend, and give the expiry in the form each backend
   * takes (whole seconds for nft, a CLOCK_BOOTTIME deadline for the maps).
   */
  private async prepareLoad(
    entries: readonly string[] | string,
    options: XdpAddOptions,
  ): Promise<Result<{ list: BlockEntry[]; backend: { kind: 'xdp'; maps: BlocklistMaps } | { kind: 'nft'; nft: NftBlocklist }; nftTtl: number | undefined; expires: bigint }, NetfenceError>> {
    const p = parseEntries(entries, 'blocklist entries', { dedupe: this.backend === 'nft' });
    if (p.err) return p;
    const nested = this.backend === 'nft' ? nestedPrefixIssues(p.val) : [];
    if (nested.length) return Err(new ValidationError('blocklist entries', nested));
    const t = this.ttlCheck(options.ttl);
    if (t.err) return t;
    const b = await this.open();
    if (b.err) return b;
    const ttl = t.val;
    return Ok({
      list: p.val,
      backend: b.val,
      nftTtl: ttl === undefined ? undefined : Math.max(1, Math.ceil(ttl)),
      expires: ttl === undefined || b.val.kind === 'nft' ? 0n : bootNowNs() + BigInt(Math.round(ttl * 1e9)),
    });
  }

  private ttlCheck(ttl: number | undefined): Result<number | undefined, ValidationError> {
    if (ttl === undefined) return Ok(undefined);
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > 10 * 365 * 86400) {
      return Err(new ValidationError('blocklist options', [{ path: 'ttl', message: 'must be a number of seconds > 0 (at most 10 years)' }]));
    }
    return Ok(ttl);
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
      const r = await backend.nft.add(uniq(list), nftTtl);
      return r.err ? r : Ok({ added: list.length });
    }
    const maps = backend.maps;
    return this.mapOp(() => {
      maps.upsert(maps.activeSide(), list, expires, 'add', this.progress('add', list.length));
      return { added: list.length };
    });
  }

  private mapOp<T>(fn: () => T): Result<T, NetfenceError> {
    try {
      return Ok(fn());
    } catch (e) {
      if (e instanceof MapOpError) return Err(new NetfenceError(e.errno === 7 || e.errno === 28 ? 'BLOCKLIST_FULL' : 'MAP_FAILED', e.message));
      if (e instanceof BpfSyscallError) return Err(new NetfenceError('MAP_FAILED', e.message));
      throw e;
    }
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
    return this.mapOp(() => ({ removed: maps.delete(maps.activeSide(), p.val, this.progress('remove', p.val.length)) }));
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
    const full = e.val.family === 4 ? 32 : 128;
    if (b.val.kind === 'nft') {
      const l = await b.val.nft.list();
      if (l.err) return l;
      const hit = l.val.some((x) => (e.val.len === full ? covers(x.entry, e.val) : x.entry.text === e.val.text) && (x.expiresS === undefined || x.expiresS > 0));
      return Ok(hit);
    }
    const maps = b.val.maps;
    return this.mapOp(() => {
      const m = maps.lookup(maps.activeSide(), e.val);
      if (!m) return false;
      if (e.val.len !== full && m.entry.text !== e.val.text) return false;
      return m.expiresNs === 0n || m.expiresNs > bootNowNs();
    });
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
    return this.mapOp(() => {
      const now = bootNowNs();
      return maps
        .entries(maps.activeSide())
        .filter((x) => x.expiresNs === 0n || x.expiresNs > now)
        .map((x) => ({ entry: x.entry.text, hits: Number(x.hits), expiresInMs: x.expiresNs === 0n ? undefined : Number((x.expiresNs - now) / 1_000_000n) }));
    });
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
      const r = await backend.nft.replace(uniq(list), nftTtl);
      return r.err ? r : Ok({ count: list.length });
    }
    const maps = backend.maps;
    return withKeyLock(`xdp-${this.name}`, `xdp replace ${this.name}`, async () => this.mapOp(() => {
      const active = maps.activeSide();
      const next: Side = active === 0 ? 1 : 0;
      maps.clearSide(next); // normally empty already
      maps.upsert(next, list, expires, 'replace', this.progress('replace', list.length));
      maps.flip(next);
      maps.clearSide(active);
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
    return this.mapOp(() => {
      const side = maps.activeSide();
      const now = bootNowNs();
      const dead = maps.entries(side).filter((x) => x.expiresNs !== 0n && x.expiresNs <= now);
      return { removed: maps.delete(side, dead.map((x) => x.entry)) };
    });
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
    return this.mapOp(() => {
      const c = maps.counters();
      const now = bootNowNs();
      const entries = maps.entries(maps.activeSide()).filter((x) => x.expiresNs === 0n || x.expiresNs > now).length;
      const n = (x: { packets: bigint; bytes: bigint }): XdpCounter => ({ packets: Number(x.packets), bytes: Number(x.bytes) });
      return { backend: 'xdp' as const, mode: this.currentMode, passed: n(c.pass), dropped: n(c.drop), expired: Number(c.expired.packets), entries };
    });
  }

  /** Release file descriptors held by this object (the blocklist stays attached and pinned). */
  close(): void {
    this.maps?.close();
    this.maps = undefined;
  }
}

function uniq(list: BlockEntry[]): BlockEntry[] {
  const seen = new Set<string>();
  return list.filter((e) => (seen.has(e.text) ? false : (seen.add(e.text), true)));
}

function firstLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = lines.find((l) => l.startsWith('tool said:'));
  return (said ? `${lines[0]?.split(':')[0]}: ${said.slice(10).trim()}` : (lines[0] ?? s)).slice(0, 300);
}

/** Default blocklist name for an interface in a namespace: `<netns or host>_<iface>`, made safe. */
export function defaultName(iface: string, netns?: string): string {
  return `${netns ?? 'host'}_${iface}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(-48).replace(/^-/, '_');
}

/** Names of the maps pinned for every blocklist. */
export const XDP_BLOCKLIST_MAPS: readonly string[] = ALL_MAPS;
