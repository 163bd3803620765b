/**
 * Parsers for the counters behind {@link ThrottleStats}: tc class statistics
 * (`tc -s class show`: iproute2 6.1 prints HTB classes as text even with -j, newer
 * versions may print JSON; both are read), tc action statistics, nft named
 * counters and quotas (`nft -j list counters|quotas table …`).
 * @module
 */
import { listingObjects, parseListingText } from '../nft/listing.js';

/** Counters of one tc class or action. */
export interface TcCounters {
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  backlog: number;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Statistics of class `classid` from `tc -s [-j] class show dev D` output; undefined if absent. */
export function parseTcClassStats(output: string, classid: string): TcCounters | undefined {
  const text = output.trim();
  if (text.startsWith('[')) {
    try {
      const arr = JSON.parse(text) as Record<string, unknown>[];
      const c = arr.find((x) => x.handle === classid || x.classid === classid);
      if (!c) return undefined;
      const s = (c.stats ?? {}) as Record<string, unknown>;
      return { bytes: num(s.bytes), packets: num(s.packets), drops: num(s.drops), overlimits: num(s.overlimits), backlog: num(s.backlog) };
    } catch {
      /* fall through to text */
    }
  }
  const blocks = text.split(/\n(?=class )/);
  const want = new RegExp(`^class \\S+ ${classid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s`);
  const b = blocks.find((x) => want.test(x.trimStart() + ' '));
  if (!b) return undefined;
  return parseSentBlock(b);
}

/** Parse the `Sent … bytes … pkt (dropped …, overlimits …) backlog …b` part of tc's text statistics. */
export function parseSentBlock(b: string): TcCounters | undefined {
  const sent = /Sent (\d+) bytes (\d+) pkts? \(dropped (\d+), overlimits (\d+)/.exec(b);
  if (!sent) return undefined;
  const backlog = /backlog (\d+)b/.exec(b);
  return { bytes: Number(sent[1]), packets: Number(sent[2]), drops: Number(sent[3]), overlimits: Number(sent[4]), backlog: backlog ? Number(backlog[1]) : 0 };
}

/** Statistics of a tc action from `tc -s [-j] actions get action police index N`. */
export function parseTcActionStats(output: string): TcCounters | undefined {
  const text = output.trim();
  if (text.startsWith('[') || text.startsWith('{')) {
    try {
      const j = JSON.parse(text) as unknown;
      const find = (o: unknown): Record<string, unknown> | undefined => {
        if (!o || typeof o !== 'object') return undefined;
        const r = o as Record<string, unknown>;
        if (r.stats && typeof r.stats === 'object') return r.stats as Record<string, unknown>;
        for (const v of Object.values(r)) {
          const f = find(v);
          if (f) return f;
        }
        return undefined;
      };
      const s = find(j);
      if (s) return { bytes: num(s.bytes), packets: num(s.packets), drops: num(s.drops), overlimits: num(s.overlimits), backlog: num(s.backlog) };
    } catch {
      /* text */
    }
  }
  return parseSentBlock(text);
}

/** Named counters (`name → {packets, bytes}`) from `nft -j list counters …`. */
export function parseNftCounters(output: string): Map<string, { packets: number; bytes: number }> {
  const out = new Map<string, { packets: number; bytes: number }>();
  const l = parseListingText(output);
  if (l.err) return out;
  for (const o of listingObjects(l.val)) if (o.kind === 'counter') out.set(o.value.name, { packets: num(o.value.packets), bytes: num(o.value.bytes) });
  return out;
}

/** Named quotas (`name → {bytes, used, inv}`) from `nft -j list quotas …`. */
export function parseNftQuotas(output: string): Map<string, { bytes: number; used: number; inv: boolean }> {
  const out = new Map<string, { bytes: number; used: number; inv: boolean }>();
  const l = parseListingText(output);
  if (l.err) return out;
  for (const o of listingObjects(l.val)) if (o.kind === 'quota') out.set(o.value.name, { bytes: num(o.value.bytes), used: num(o.value.used), inv: o.value.inv === true });
  return out;
}
