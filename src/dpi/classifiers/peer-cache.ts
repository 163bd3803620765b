/**
 * The peer endpoint cache: host:port pairs known to speak BitTorrent. Once an
 * endpoint is in it, new flows to it (and, for UDP, from it) are judged at once.
 * Bounded, least-recently-used eviction, entries expire after a TTL.
 * @module
 */
import type { Endpoint } from '../types.js';

/** Why an endpoint is in the cache. */
export interface PeerCacheEntry {
  /** Short description of the detection that put it there. */
  reason: string;
  /** Time it was added or last confirmed (seconds). */
  ts: number;
  /** Time it was first added (seconds). */
  since: number;
}

/** Options of a {@link PeerCache}. */
export interface PeerCacheOptions {
  /** Most endpoints kept (default 65536); the least recently used go first. */
  maxEntries?: number;
  /** Seconds an entry stays valid after it was last confirmed (default 3600). */
  ttlSeconds?: number;
}

/** Bounded LRU map of BitTorrent peer endpoints (`addr|port`, transport-independent like nDPI's). */
export class PeerCache {
  private readonly map = new Map<string, PeerCacheEntry>();
  /** Most entries. */
  readonly maxEntries: number;
  /** Entry lifetime in seconds. */
  readonly ttlSeconds: number;
  /** Counters: adds, lookups, hits, evictions. */
  readonly stats = { adds: 0, lookups: 0, hits: 0, evictions: 0 };

  constructor(options: PeerCacheOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 65536);
    this.ttlSeconds = options.ttlSeconds ?? 3600;
  }

  /** Number of endpoints held. */
  get size(): number {
    return this.map.size;
  }

  /** Record an endpoint as a BitTorrent peer at time `ts`. */
  add(ep: Endpoint, reason: string, ts: number): void {
    const key = `${ep.addr}|${ep.port}`;
    const old = this.map.get(key);
    if (old) this.map.delete(key);
    this.map.set(key, { reason, ts, since: old?.since ?? ts });
    this.stats.adds++;
    while (this.map.size > this.maxEntries) {
      const first = this.map.keys().next();
      if (first.done) break;
      this.map.delete(first.value);
      this.stats.evictions++;
    }
  }

  /** Look an endpoint up at time `ts`; a hit refreshes its LRU position (not its TTL). */
  get(ep: Endpoint, ts: number): PeerCacheEntry | undefined {
    this.stats.lookups++;
    const key = `${ep.addr}|${ep.port}`;
    const e = this.map.get(key);
    if (!e) return undefined;
    if (ts - e.ts > this.ttlSeconds) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    this.stats.hits++;
    return e;
  }

  /** Forget everything. */
  clear(): void {
    this.map.clear();
  }

  /** Snapshot of the entries, least recently used first. */
  entries(): [string, PeerCacheEntry][] {
    return [...this.map.entries()];
  }
}
