/**
 * The options of {@link DpiBlocker}: one zod schema, defaults defined there
 * once; the option type is the schema's input type. Options that only shape
 * the steering rules (hooks, families, protocols, packets, resetBad, name,
 * marks) pass through to {@link compileSteering}, whose schema holds their
 * defaults.
 * @module
 */
import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import type { Result } from '../result.js';
import { NetnsName, SafePath } from '../validate.js';
import type { ClassifierModuleSpec, DpiHandlerOptions } from './blocker-handler.js';
import type { PeerCacheOptions } from './classifiers/peer-cache.js';
import type { Detection } from './blocker-types.js';
import { FlowMarksSchema } from './nfqueue/marks.js';

/**
 * Where detected peers go: anything with an `add(entries, { ttl })` returning
 * a Result — an `XdpBlocklist` (XDP fast path or its nft-set fallback), or
 * your own.
 */
export interface DetectionBlocklist {
  /** Add addresses (text form) for `ttl` seconds. */
  add(entries: string[], options?: { ttl?: number }): Promise<Result<unknown, unknown>>;
}

/**
 * A classifier for DpiBlocker. Classifiers run inside the queue worker
 * processes, so they are given as modules, not objects:
 * - `'bittorrent'`: the built-in BitTorrent classifier;
 * - an absolute path (or file: URL) of a module exporting `createClassifier(options)`,
 *   `classifier`, or a default of either — returning a `Classifier` (src/dpi/types.ts);
 * - `{ module, options }`: the same with options for `createClassifier` (structured-cloneable).
 * A flow a classifier judges `bittorrent` is treated as bad (dropped, reported).
 */
export type DpiClassifierSpec = 'bittorrent' | string | ClassifierModuleSpec;

const ModulePath = SafePath.refine((s) => s === 'bittorrent' || s.startsWith('file:') || isAbsolute(s), "must be 'bittorrent', an absolute path or a file: URL");

/** The default queue range: `[200, min(cores, 4)]`. */
const defaultQueues = (): [number, number] => [200, Math.max(1, Math.min(availableParallelism(), 4))];

/** zod schema of {@link DpiBlockerOptions} (defaults applied by parsing). */
export const DpiBlockerOptionsSchema = z
  .object({
    /** Network namespace of the router (a name under /run/netns); the current one if undefined. */
    netns: NetnsName.optional(),
    /** Queues `[first, count]`; one worker process per queue (default `[200, min(cores, 4)]`). */
    queues: z.tuple([z.number().int().min(0).max(65535), z.number().int().min(1).max(64)]).default(defaultQueues),
    /** Hooks to inspect (default `['forward']`: traffic routed through this host). */
    hooks: z.array(z.enum(['forward', 'input', 'output'])).min(1).optional(),
    /** Report and count detections but accept everything (default false). */
    monitorOnly: z.boolean().default(false),
    /** Detected peers are added here (not in monitor-only mode). */
    blocklist: z.custom<DetectionBlocklist>((v) => typeof v === 'object' && v !== null && typeof (v as DetectionBlocklist).add === 'function', 'must have an add(entries, { ttl }) method').optional(),
    /** Milliseconds a detected peer stays on the blocklist (default 3,600,000: one hour; handed to the blocklist as `ttl` in seconds). */
    blockTtlMs: z.number().positive().max(10 * 365 * 86400 * 1000).optional(),
    /** @deprecated Seconds; use `blockTtlMs`. */
    blockTtl: z.number().positive().max(10 * 365 * 86400).optional(),
    /**
     * Which end of a detected flow is blocked: `responder` (default: the peer that
     * was connected to — on a router, the remote peer of an outgoing connection),
     * `both`, or a function choosing the addresses (e.g. "the end that is not in my
     * customers' prefix" — uTP peers connect in either direction). Only flows where
     * both ends are known BitTorrent peers are blocked (not trackers, DNS or TLS
     * hostname detections).
     */
    blockPeers: z.union([z.enum(['responder', 'both']), z.custom<(d: Detection) => string[]>((v) => typeof v === 'function', 'a function')]).default('responder'),
    /**
     * What happens to the packets that would be inspected when no reader is there
     * (worker died, not started) or the queue is full: accepted (true, default) or dropped (false).
     * Flows already judged keep their treatment either way.
     */
    failOpen: z.boolean().default(true),
    /** Classifiers in run order (default `['bittorrent']`). */
    classifiers: z
      .array(
        z.union([
          ModulePath,
          z.object({ module: ModulePath.refine((s) => s !== 'bittorrent', 'a module path'), options: z.unknown().optional() }).strict(),
          z.custom<never>(() => false, 'classifier objects cannot be passed: classifiers run in the worker processes, give a module path'),
        ]),
      )
      .min(1)
      .default(['bittorrent']),
    /** Packets of each flow (both directions, handshake included) that are inspected (default: {@link advanced!compileSteering}'s, 24). */
    packets: z.number().int().min(1).max(1000).optional(),
    /** Answer later TCP packets of a bad flow with a reset instead of dropping silently (default false). */
    resetBad: z.boolean().optional(),
    /** IP families (default both). */
    families: z.array(z.enum(['ipv4', 'ipv6'])).min(1).optional(),
    /** Transports inspected (default tcp and udp). */
    protocols: z.array(z.enum(['tcp', 'udp'])).min(1).optional(),
    /** Use the nft `queue` statement: `auto` (default) follows the capability report; false forces the xtables NFQUEUE form. */
    nftQueue: z.union([z.boolean(), z.literal('auto')]).default('auto'),
    /** Instance name, part of the chain/table name (default `dpi`). */
    name: z.string().regex(/^[A-Za-z0-9_]{1,16}$/, 'letters, digits and _, at most 16').optional(),
    /** Flow marks shared by rules and readers (default DEFAULT_FLOW_MARKS). */
    marks: FlowMarksSchema.optional(),
    /** Payload packets per direction inspected before a flow is judged benign (default 10). */
    maxPacketsPerDirection: z.number().int().min(1).max(1000).optional(),
    /**
     * The peer endpoint cache, one for the whole blocker (each worker holds a
     * replica kept in step through this process): bounds and lifetimes, or
     * `false` for none. Defaults: 65536 detected + 65536 learnt endpoints, one hour.
     */
    peerCache: z
      .union([
        z.literal(false),
        z
          .object({
            /** Most endpoints seen speaking BitTorrent. */
            maxEntries: z.number().int().min(1).max(1 << 24).optional(),
            /** Most endpoints learnt from tracker and DHT peer lists (their own LRU tier). */
            maxLearnt: z.number().int().min(1).max(1 << 24).optional(),
            /** Milliseconds an entry lives after it was last confirmed. */
            ttlMs: z.number().int().min(1000).max(30 * 86400 * 1000).optional(),
            /** Milliseconds a learnt entry lives (default: `ttlMs`). */
            learntTtlMs: z.number().int().min(1000).max(30 * 86400 * 1000).optional(),
          })
          .strict(),
      ])
      .optional(),
    /**
     * Put the endpoints that tracker responses (HTTP `peers`/`peers6`, UDP announce
     * replies) and DHT replies (`values`, `nodes`, `nodes6`) list into the peer cache,
     * so that the next flow to one of them is judged at its first packet (default true).
     */
    learnPeers: z.boolean().default(true),
    /**
     * Settled services: once a flow to a server endpoint (address, protocol, port) was identified
     * as a known protocol that is not BitTorrent (a plain HTTP request, a TLS ClientHello with
     * hostname rules), new connections to that endpoint pass as benign in the kernel, without
     * crossing userspace, until the entry times out (`ttlMs`, default 60000); the next connection
     * after that is inspected again. An endpoint that shows up as a BitTorrent peer (detected, or
     * listed by a tracker or DHT reply) leaves the set at once. At most `maxEntries` endpoints per
     * IP family (default 65536). `false`: inspect every new connection. Needs nft `ct mark set`
     * and set timeouts (capability report `nft.features`); without them it is off and the plan's
     * decision `dpi settled services` says why.
     */
    settleServices: z
      .union([
        z.literal(false),
        z
          .object({
            ttlMs: z.number().int().min(1000).max(86400 * 1000).default(60_000),
            maxEntries: z.number().int().min(1).max(1 << 24).default(65_536),
          })
          .strict(),
      ])
      .default({ ttlMs: 60_000, maxEntries: 65_536 }),
    /** How long to wait for the workers to bind (ms, default 120000: a hang guard). */
    startTimeoutMs: z.number().int().min(100).max(600_000).default(120_000),
    /**
     * Packets each queue may hold waiting for a verdict before the kernel stops
     * queueing (default 4096). Beyond it, packets follow `failOpen`: accepted
     * without inspection, or dropped (counted as `queueDropped` in the queue's
     * kernel statistics).
     */
    queueMaxLen: z.number().int().min(1).max(1 << 20).optional(),
  })
  .strict()
  .refine((o) => o.blockTtl === undefined || o.blockTtlMs === undefined, { message: 'give blockTtlMs or the deprecated blockTtl, not both', path: ['blockTtl'] })
  .transform(({ blockTtl, ...o }) => ({ ...o, blockTtlMs: o.blockTtlMs ?? (blockTtl !== undefined ? blockTtl * 1000 : 3_600_000) }));

/** Options of {@link DpiBlocker} (every field optional; defaults in {@link DpiBlockerOptionsSchema}). */
export type DpiBlockerOptions = z.input<typeof DpiBlockerOptionsSchema>;

/** {@link DpiBlockerOptions} after validation, defaults filled in. */
export type DpiBlockerSettings = z.output<typeof DpiBlockerOptionsSchema>;

/** The peer-cache fields of the workers' handler options (empty for the defaults). */
export function peerHandlerOptions(o: Pick<DpiBlockerSettings, 'peerCache' | 'learnPeers'>): Pick<DpiHandlerOptions, 'peerCache' | 'learnPeers'> {
  const out: Pick<DpiHandlerOptions, 'peerCache' | 'learnPeers'> = {};
  if (o.peerCache === false) out.peerCache = false;
  else if (o.peerCache) out.peerCache = peerCacheOptions(o.peerCache);
  if (!o.learnPeers) out.learnPeers = false;
  return out;
}

/** {@link PeerCacheOptions} (seconds) of the `peerCache` option (milliseconds). */
export function peerCacheOptions(p: Exclude<DpiBlockerSettings['peerCache'], false>): PeerCacheOptions {
  const out: PeerCacheOptions = {};
  if (p?.maxEntries !== undefined) out.maxEntries = p.maxEntries;
  if (p?.maxLearnt !== undefined) out.maxLearnt = p.maxLearnt;
  if (p?.ttlMs !== undefined) out.ttlSeconds = p.ttlMs / 1000;
  if (p?.learntTtlMs !== undefined) out.learntTtlSeconds = p.learntTtlMs / 1000;
  return out;
}
