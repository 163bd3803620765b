/**
 * The peer endpoint cache: host:port pairs known to speak BitTorrent. Once an
 * endpoint is in it, new flows to it (and, for UDP, from it) are judged at once.
 *
 * Two tiers, each a bounded LRU map with a TTL, looked up in O(1):
 * - `detected`: endpoints seen speaking BitTorrent (a flow judged by a
 *   peer-to-peer detection — handshake, uTP, DHT, UDP tracker, MSE);
 * - `learnt`: endpoints other parties *listed* as peers — tracker responses
 *   (HTTP `peers`/`peers6`, UDP announce replies) and DHT replies (`values`,
 *   `nodes`, `nodes6`), see bittorrent/peer-lists.ts. Hearsay, so it has its
 *   own bound: a flood of DHT node contacts never evicts a detected peer.
 *
 * In DpiBlocker every queue worker holds a replica and the main process the
 * authoritative copy: additions made in one worker (`onAdd`) are sent to the
 * main process and merged into the others (`merge`), see blocker-handler.ts.
 * @module
 */
import type { Endpoint } from '../types.js';

/** How an endpoint got into the cache. */
export type PeerSource = 'detected' | 'learnt';

/** Why an endpoint is in the cache. */
export interface PeerCacheEntry {
  /** Short description of the detection (or the peer list) that put it there. */
  reason: string;
  /** Time it was added or last confirmed (seconds). */
  ts: number;
  /** Time it was first added (seconds). */
  since: number;
  /** `detected` (it spoke BitTorrent) or `learnt` (a tracker or DHT reply listed it). */
  source: PeerSource;
}

/** One entry as it travels between processes (structured-cloneable). */
export interface PeerRecord {
  addr: string;
  port: number;
  reason: string;
  ts: number;
  source: PeerSource;
}

/** Options of a {@link PeerCache}. */
export interface PeerCacheOptions {
  /** Most detected endpoints kept (default 65536); the least recently used go first. */
  maxEntries?: number;
  /** Most learnt endpoints kept (default: `maxEntries`), in their own LRU tier. */
  maxLearnt?: number;
  /** Seconds an entry stays valid after it was last confirmed (default 3600). */
  ttlSeconds?: number;
  /** Seconds a learnt entry stays valid (default: `ttlSeconds`). */
  learntTtlSeconds?: number;
}

/** Counters of a {@link PeerCache} (cumulative). */
export interface PeerCacheCounters {
  /** Additions (new or refreshed), both tiers, local and merged. */
  adds: number;
  /** Of those, learnt from peer lists. */
  learnt: number;
  /** Lookups. */
  lookups: number;
  /** Lookups that found a live entry. */
  hits: number;
  /** Of those, in the learnt tier. */
  learntHits: number;
  /** Entries pushed out by the bounds. */
  evictions: number;
  /** Entries found expired (and removed) on lookup. */
  expired: number;
}

/** A snapshot of a cache: its counters, sizes and bounds. */
export interface PeerCacheStats extends PeerCacheCounters {
  /** Endpoints held (both tiers). */
  size: number;
  /** Of those, learnt. */
  learntSize: number;
  maxEntries: number;
  maxLearnt: number;
  ttlSeconds: number;
  learntTtlSeconds: number;
}

class Lru {
  readonly map = new Map<string, PeerCacheEntry>();
  constructor(
    readonly max: number,
    readonly ttl: number,
  ) {}
}

/** Bounded two-tier LRU map of BitTorrent peer endpoints (`addr|port`, transport-independent like nDPI's). */
export class PeerCache {
  private readonly tiers: { detected: Lru; learnt: Lru };
  /** Most detected entries. */
  readonly maxEntries: number;
  /** Entry lifetime in seconds. */
  readonly ttlSeconds: number;
  /** Counters. */
  readonly stats: PeerCacheCounters = { adds: 0, learnt: 0, lookups: 0, hits: 0, learntHits: 0, evictions: 0, expired: 0 };
  /** Called for every local {@link add} (not for {@link merge}): how a worker shares what it found. */
  onAdd: ((record: PeerRecord) => void) | undefined;

  constructor(options: PeerCacheOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 65536);
    this.ttlSeconds = options.ttlSeconds ?? 3600;
    this.tiers = {
      detected: new Lru(this.maxEntries, this.ttlSeconds),
      learnt: new Lru(Math.max(1, options.maxLearnt ?? this.maxEntries), options.learntTtlSeconds ?? this.ttlSeconds),
    };
  }

  /** Number of endpoints held (both tiers). */
  get size(): number {
    return this.tiers.detected.map.size + this.tiers.learnt.map.size;
  }

  /** Record an endpoint as a BitTorrent peer at time `ts` (`learnt`: listed by a tracker or DHT reply). */
  add(ep: Endpoint, reason: string, ts: number, source: PeerSource = 'detected'): void {
    if (this.put(`${ep.addr}|${ep.port}`, reason, ts, source)) this.onAdd?.({ addr: ep.addr, port: ep.port, reason, ts, source });
  }

  /** Add records another process found (no {@link onAdd} call); returns how many were taken. */
  merge(records: readonly PeerRecord[]): number {
    let n = 0;
    for (const r of records) if (this.put(`${r.addr}|${r.port}`, r.reason, r.ts, r.source)) n++;
    return n;
  }

  /** Returns false when nothing changed (a learnt record for an endpoint already detected). */
  private put(key: string, reason: string, ts: number, source: PeerSource): boolean {
    const { detected, learnt } = this.tiers;
    if (source === 'learnt' && detected.map.has(key)) return false; // what was seen beats hearsay
    const tier = source === 'learnt' ? learnt : detected;
    const old = tier.map.get(key);
    if (old) {
      tier.map.delete(key);
      if (old.ts > ts) ts = old.ts; // a late-arriving merge never moves an entry back in time
    }
    if (source === 'detected') learnt.map.delete(key);
    tier.map.set(key, { reason, ts, since: old?.since ?? ts, source });
    this.stats.adds++;
    if (source === 'learnt') this.stats.learnt++;
    while (tier.map.size > tier.max) {
      const first = tier.map.keys().next();
      if (first.done) break;
      tier.map.delete(first.value);
      this.stats.evictions++;
    }
    return true;
  }

  /** Look an endpoint up at time `ts`; a hit refreshes its LRU position (not its TTL). Detected entries first. */
  get(ep: Endpoint, ts: number): PeerCacheEntry | undefined {
    this.stats.lookups++;
    const key = `${ep.addr}|${ep.port}`;
    const e = this.find(this.tiers.detected, key, ts) ?? this.find(this.tiers.learnt, key, ts);
    if (e) {
      this.stats.hits++;
      if (e.source === 'learnt') this.stats.learntHits++;
    }
    return e;
  }

  /** Whether the endpoint is a live entry at `ts`, without counting a lookup or moving it in the LRU order. */
  has(ep: Endpoint, ts: number): boolean {
    const key = `${ep.addr}|${ep.port}`;
    for (const tier of [this.tiers.detected, this.tiers.learnt]) {
      const e = tier.map.get(key);
      if (e && ts - e.ts <= tier.ttl) return true;
    }
    return false;
  }

  private find(tier: Lru, key: string, ts: number): PeerCacheEntry | undefined {
    const e = tier.map.get(key);
    if (!e) return undefined;
    tier.map.delete(key);
    if (ts - e.ts > tier.ttl) {
      this.stats.expired++;
      return undefined;
    }
    tier.map.set(key, e);
    return e;
  }

  /** Remove entries expired at `ts`, oldest first (stops at the first live one of each tier); returns how many. */
  prune(ts: number): number {
    let n = 0;
    for (const tier of [this.tiers.detected, this.tiers.learnt]) {
      for (const [key, e] of tier.map) {
        if (ts - e.ts <= tier.ttl) break;
        tier.map.delete(key);
        n++;
      }
    }
    this.stats.expired += n;
    return n;
  }

  /** Forget everything. */
  clear(): void {
    this.tiers.detected.map.clear();
    this.tiers.learnt.map.clear();
  }

  /** Snapshot of the entries, per tier least recently used first (detected, then learnt). */
  entries(): [string, PeerCacheEntry][] {
    return [...this.tiers.detected.map.entries(), ...this.tiers.learnt.map.entries()];
  }

  /** The entries still live at `ts`, as records (detected, then learnt; least recently used first). */
  records(ts: number): PeerRecord[] {
    const out: PeerRecord[] = [];
    for (const tier of [this.tiers.detected, this.tiers.learnt]) {
      for (const [key, e] of tier.map) {
        if (ts - e.ts > tier.ttl) continue;
        const bar = key.lastIndexOf('|');
        out.push({ addr: key.slice(0, bar), port: Number(key.slice(bar + 1)), reason: e.reason, ts: e.ts, source: e.source });
      }
    }
    return out;
  }

  /** Counters, sizes and bounds. */
  snapshot(): PeerCacheStats {
    const { detected, learnt } = this.tiers;
    return {
      ...this.stats,
      size: this.size,
      learntSize: learnt.map.size,
      maxEntries: detected.max,
      maxLearnt: learnt.max,
      ttlSeconds: detected.ttl,
      learntTtlSeconds: learnt.ttl,
    };
  }
}

/** `addr:port`, IPv6 in brackets. */
export function endpointText(e: Endpoint): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

/**
 * The verdict for a new flow whose endpoint `which` is in the cache: detection
 * `cache` for an endpoint that spoke BitTorrent, `peer-learnt` for one a
 * tracker or DHT reply listed.
 */
export function cacheVerdict(which: Endpoint, hit: PeerCacheEntry, ts: number): { verdict: 'bittorrent'; reason: string; detection: string; classifier: string } {
  const ago = Math.max(0, ts - hit.ts).toFixed(1);
  return hit.source === 'learnt'
    ? { verdict: 'bittorrent', reason: `peer learnt: ${endpointText(which)} was listed ${ago} s earlier in ${hit.reason}`, detection: 'peer-learnt', classifier: 'peer-cache' }
    : { verdict: 'bittorrent', reason: `peer endpoint cache: ${endpointText(which)} spoke BitTorrent ${ago} s earlier (${hit.reason})`, detection: 'cache', classifier: 'peer-cache' };
}
