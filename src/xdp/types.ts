/**
 * The XdpBlocklist's options, results and counters (types and the zod schema).
 * @module
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { IfName, NetnsName, SafePath } from '../validate.js';
import type { XdpMode } from './loader.js';
import type { XdpProgress } from './maps.js';

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

/** Result of {@link XdpBlocklist.apply}. */
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
  /** Milliseconds after which the entries expire (checked per packet in the kernel; whole seconds, rounded up, on the nft backend). */
  ttlMs?: number;
  /**
   * Seconds after which the entries expire.
   * @deprecated use `ttlMs` (milliseconds); `ttl` is converted once (`ttl * 1000`). Giving both is refused.
   */
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

/** Program flag (nf_cfg[1]) bit: also match destinations. */
export const FLAG_MATCH_DST = 1;

/** Default blocklist name for an interface in a namespace: `<netns or host>_<iface>`, made safe. */
export function defaultName(iface: string, netns?: string): string {
  return `${netns ?? 'host'}_${iface}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(-48).replace(/^-/, '_');
}

/** `ttlMs`, or the deprecated `ttl` (seconds) converted once; both at once is refused. */
export function ttlMsOf(options: XdpAddOptions): Result<number | undefined, ValidationError> {
  if (options.ttlMs !== undefined && options.ttl !== undefined) {
    return Err(new ValidationError('blocklist options', [{ path: 'ttl', message: 'give ttlMs (milliseconds) or the deprecated ttl (seconds), not both' }]));
  }
  if (options.ttl !== undefined) {
    const s = ttlSecondsCheck(options.ttl);
    return s.err ? s : Ok(s.val === undefined ? undefined : s.val * 1000);
  }
  const ms = options.ttlMs;
  if (ms === undefined) return Ok(undefined);
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > 10 * 365 * 86400 * 1000) {
    return Err(new ValidationError('blocklist options', [{ path: 'ttlMs', message: 'must be a number of milliseconds > 0 (at most 10 years)' }]));
  }
  return Ok(ms);
}

/** The deprecated seconds-valued `ttl`: a number of seconds > 0, at most 10 years. */
export function ttlSecondsCheck(ttl: number | undefined): Result<number | undefined, ValidationError> {
  if (ttl === undefined) return Ok(undefined);
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > 10 * 365 * 86400) {
    return Err(new ValidationError('blocklist options', [{ path: 'ttl', message: 'must be a number of seconds > 0 (at most 10 years)' }]));
  }
  return Ok(ttl);
}
