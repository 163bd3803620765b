/**
 * Rates, sizes and the burst arithmetic of the Throttler.
 *
 * Grammar (documented in docs/throttle.md):
 * - a rate is a number of **bits per second**, or a string `<number><unit>` where
 *   the unit is one of `bit kbit mbit gbit tbit` (SI, ×1000), `kibit mibit gibit`
 *   (×1024), or a bytes-per-second form `B/s kB/s KB/s MB/s GB/s KiB/s MiB/s GiB/s`.
 *   Units are case-insensitive for bits; bytes forms need the capital `B`.
 *   tc's own `bps`/`kbps`/`mbps` (which tc reads as BYTES per second) are refused as
 *   ambiguous, with a hint.
 * - a size (burst, quota) is a number of bytes or `<number><unit>` with
 *   `B kB KB MB GB TB` (×1000) or `KiB MiB GiB TiB` (×1024).
 * @module
 */
import { z } from 'zod';

/** Smallest rate accepted: 8 kbit/s (1 kB/s). */
export const MIN_RATE_BPS = 8_000;
/** Largest rate accepted: 100 gbit/s. */
export const MAX_RATE_BPS = 100_000_000_000;
/** Smallest burst accepted (one Ethernet frame). */
export const MIN_BURST_BYTES = 1_514;
/** Largest burst accepted (1 GiB). */
export const MAX_BURST_BYTES = 1024 ** 3;
/** Largest quota accepted (1 PB). */
export const MAX_QUOTA_BYTES = 1e15;

const BIT_UNITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  kibit: 1024,
  mibit: 1024 ** 2,
  gibit: 1024 ** 3,
};
const BYTE_RATE_UNITS: Record<string, number> = {
  'B/s': 8,
  'kB/s': 8e3,
  'KB/s': 8e3,
  'MB/s': 8e6,
  'GB/s': 8e9,
  'KiB/s': 8 * 1024,
  'MiB/s': 8 * 1024 ** 2,
  'GiB/s': 8 * 1024 ** 3,
};
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};
const NUMBER = /^(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z/]*)$/;

/** Parse a rate into bits per second; returns a message string when it is refused. */
export function parseRate(input: unknown): number | string {
  let bps: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return 'must be a finite number of bits per second';
    bps = input;
  } else if (typeof input === 'string') {
    const s = input.trim();
    if (s.length === 0 || s.length > 32) return 'must be a rate such as "10mbit", "1.5MB/s" or a number of bits per second';
    if (s.startsWith('-')) return 'must be positive';
    const m = NUMBER.exec(s);
    if (!m) return `"${input}" is not a rate: write <number><unit>, e.g. "10mbit", "512kbit", "1.5MB/s"`;
    const value = Number(m[1]);
    const unit = m[2] ?? '';
    let mult: number | undefined;
    if (unit === '') return `"${input}" has no unit: write e.g. "${m[1]}mbit", or pass a number of bits per second`;
    if (/^[kmgt]?i?bps$/i.test(unit) || /^[kmgtKMGT]?b\/s$/.test(unit))
      return `"${input}" is ambiguous (tc reads "${unit}" as BYTES per second, most people as bits): write bits as e.g. "${m[1]}mbit" or bytes as e.g. "${m[1]}MB/s"`;
    mult = BIT_UNITS[unit.toLowerCase()] ?? BYTE_RATE_UNITS[unit];
    if (mult === undefined) return `"${input}" has an unknown unit "${unit}": use bit, kbit, mbit, gbit, kibit, mibit, gibit, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s`;
    bps = value * mult;
  } else {
    return 'must be a string such as "10mbit" or a number of bits per second';
  }
  if (Number.isNaN(bps)) return 'must be a number';
  if (bps <= 0) return 'must be greater than zero';
  bps = Math.round(bps);
  if (bps < MIN_RATE_BPS) return `must be at least ${MIN_RATE_BPS} bit/s (8kbit)`;
  if (bps > MAX_RATE_BPS) return `must be at most ${MAX_RATE_BPS} bit/s (100gbit)`;
  return bps;
}

/** Parse a size (burst, quota) into bytes; returns a message string when it is refused. */
export function parseSize(input: unknown, min = 1, max = MAX_QUOTA_BYTES): number | string {
  let bytes: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return 'must be a finite number of bytes';
    bytes = input;
  } else if (typeof input === 'string') {
    const s = input.trim();
    if (s.startsWith('-')) return 'must be positive';
    const m = NUMBER.exec(s);
    if (!m || s.length > 32) return `"${input}" is not a size: write a number of bytes or <number><unit>, e.g. "64KiB", "10MB"`;
    const unit = m[2] ?? '';
    const mult = unit === '' ? 1 : SIZE_UNITS[unit];
    if (mult === undefined) return `"${input}" has an unknown unit "${unit}": use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB`;
    bytes = Number(m[1]) * mult;
  } else {
    return 'must be a number of bytes or a string such as "64KiB"';
  }
  if (Number.isNaN(bytes)) return 'must be a number';
  if (bytes <= 0) return 'must be greater than zero';
  bytes = Math.round(bytes);
  if (bytes < min) return `must be at least ${min} bytes`;
  if (bytes > max) return `must be at most ${max} bytes`;
  return bytes;
}

/** zod schema: a rate (string or bits per second) → integer bits per second. */
export const Rate = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseRate(v);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** zod schema: a burst size → integer bytes (1514 B .. 1 GiB). */
export const BurstSize = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseSize(v, MIN_BURST_BYTES, MAX_BURST_BYTES);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** zod schema: a quota size → integer bytes. */
export const QuotaSize = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseSize(v, 1, MAX_QUOTA_BYTES);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/**
 * Constants of the burst derivation, chosen by measurement (bench/throttle-accuracy.ts,
 * docs/throttle.md). `*_MS` is how many milliseconds of traffic at the target rate the
 * bucket holds; `*_MIN` is the floor in bytes.
 */
export const BURST = {
  /** HTB: bucket = rate × 10 ms … */
  htbMs: 10,
  /** … but never below 2 × 64 KiB + 1514: a GSO/TSO super-packet (up to 64 KiB) must fit, else HTB undershoots at high rates. */
  htbMin: 2 * 65536 + 1514,
  /**
   * tc police: bucket = rate × 1 s, the bucket nft `limit` has by construction. With
   * 100 ms, TCP through the policer lost whole GSO super-packets at once and
   * reached 0.65 of 100 Mbit/s (Debian 6.1 kernel, matrix VM) …
   */
  policeMs: 1000,
  /** … but never below 4 × 64 KiB: a whole GSO/GRO super-packet must fit in the bucket or it is always dropped. */
  policeMin: 4 * 65536,
  /** nft `limit`: the kernel's bucket already holds one second at the rate (nft_limit: tokens_max = unit × (rate + burst) / rate), so the burst only needs to fit GSO/GRO super-packets. */
  nftMin: 2 * 65536,
  /** HTB leaf queue: 250 ms at the rate … */
  leafQueueMs: 250,
  /** … at least 256 KiB. */
  leafQueueMin: 4 * 65536,
  /**
   * Ingress (IFB) leaf queue floor: one GRO super-packet plus a frame. The sender
   * is remote, so TCP small queues cannot keep it from filling a deep queue: at
   * 1 Mbit/s a 256 KiB queue is 2 s of delay, its tail drops recover one slow
   * RTT at a time and throughput sank to 0.89–0.92 of the target; with this
   * floor it measured 0.97–1.00.
   */
  ingressLeafQueueMin: 65536 + 1514,
} as const;

/** nft `limit` burst (bytes): a constant floor; see {@link BURST}.nftMin. */
export function nftBurst(_rateBps: number): number {
  return BURST.nftMin;
}

/** HTB burst and cburst (bytes) derived from the rate (bits/s). */
export function htbBurst(rateBps: number): number {
  return Math.max(Math.ceil((rateBps / 8) * (BURST.htbMs / 1000)), BURST.htbMin);
}

/** Policer burst (bytes) derived from the rate (bits/s), for nft `limit` and tc `police`. */
export function policeBurst(rateBps: number): number {
  return Math.max(Math.ceil((rateBps / 8) * (BURST.policeMs / 1000)), BURST.policeMin);
}

/**
 * Leaf queue of an HTB class (bytes): 250 ms at the rate, at least 256 KiB (a few
 * GSO super-packets). The default leaf (pfifo, txqueuelen packets) holds up to
 * ~12 s at 1 Mbit/s: bufferbloat, and it made short measurements undershoot.
 */
export function leafQueueBytes(rateBps: number, direction: 'egress' | 'ingress' = 'egress'): number {
  const min = direction === 'ingress' ? BURST.ingressLeafQueueMin : BURST.leafQueueMin;
  return Math.max(Math.ceil((rateBps / 8) * (BURST.leafQueueMs / 1000)), min);
}

/** HTB quantum (bytes): rate/r2q clamped to [1514, 200000] so that tc never warns. */
export function htbQuantum(rateBps: number): number {
  return Math.min(200_000, Math.max(1_514, Math.round(rateBps / 8 / 10)));
}

/** Human form of a rate, e.g. `10mbit`, `1.5mbit`, `800kbit`. */
export function formatRate(bps: number): string {
  for (const [unit, mult] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) {
    if (bps >= mult) return `${+(bps / mult).toFixed(3)}${unit}`;
  }
  return `${bps}bit`;
}

/** TCP/IPv4 header bytes of a full-size segment with timestamps (20 IP + 20 TCP + 12 options). */
export const TCP_IP_HEADERS = 52;
/** Ethernet header bytes tc counts on egress (and on an IFB after the redirect). */
export const ETHERNET_HEADER = 14;

/**
 * Factor from TCP payload rate to the rate the kernel must enforce: a full-size
 * segment carries `mtu - 52` payload bytes in `mtu` IP bytes (nftables counts
 * these) or `mtu + 14` frame bytes (tc counts these).
 */
export function payloadFactor(mtu: number, layer: 'l2' | 'l3'): number {
  const m = Number.isFinite(mtu) && mtu >= 576 ? mtu : 1500;
  return (m + (layer === 'l2' ? ETHERNET_HEADER : 0)) / (m - TCP_IP_HEADERS);
}
