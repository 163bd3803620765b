/**
 * The packet-handler module DpiBlocker hands to its queue workers: it runs
 * inside each worker process, decodes every queued packet, feeds it to a
 * {@link DpiEngine} (the built-in BitTorrent classifier and/or classifier
 * modules loaded by path) and answers:
 *
 * - flow judged BitTorrent → `bad` (the steering rules drop the rest of the
 *   flow), or `benign` in monitor-only mode (counted and reported, let through);
 * - flow judged benign → `benign` (the flow bypasses the queue from then on);
 * - not decided yet → `accept` (the next packets are queued too, up to the
 *   steering rules' packet bound).
 *
 * It reports to the main process with `ctx.emit`: a `detection` event per
 * flow judged BitTorrent and a `counters` event (cumulative) after each
 * detection, when asked ({@link COUNTERS_FLUSH}), and otherwise at most every
 * `countersIntervalMs` when something changed.
 *
 * Peer cache: each worker's engine keeps a replica of the blocker's one peer
 * cache; what it adds (detected peers, peers learnt from tracker and DHT
 * replies) is shared with the other workers through the main process
 * (peer-sync.ts), and a packet that listed peers is let through only once
 * every worker knows them. In monitor-only mode a BitTorrent flow that may
 * still carry a peer list (DHT, UDP/HTTP tracker) is answered `accept`
 * rather than `benign`, so that its replies are still queued and read.
 *
 * Built as its own entry (`dist/dpi-handler.js`); loaded by path.
 * @module
 */
import { pathToFileURL } from 'node:url';
import { bittorrentClassifier } from './classifiers/bittorrent.js';
import { DpiEngine } from './classifiers/engine.js';
import { PeerCache, type PeerCacheOptions } from './classifiers/peer-cache.js';
import type { PacketHandlerFactory } from './nfqueue/handler.js';
import type { Decision } from './nfqueue/reader.js';
import { decodeFrame, LinkType } from './packet.js';
import { WorkerPeerSync } from './peer-sync.js';
import type { SettledService } from './steering.js';
import type { Classifier, Endpoint, Transport } from './types.js';

/** A classifier module to load in the worker: absolute path or file: URL, with options for its factory. */
export interface ClassifierModuleSpec {
  /** Absolute path or file: URL of a module exporting `classifier` / `createClassifier` / default. */
  module: string;
  /** Passed to `createClassifier(options)` (structured-cloneable). */
  options?: unknown;
}

/** Options of the DPI handler (structured-cloneable; built by DpiBlocker). */
export interface DpiHandlerOptions {
  /** Report and count detections, but let every flow through. */
  monitorOnly: boolean;
  /** Classifiers in run order: the built-in BitTorrent classifier or a module. */
  classifiers: ('bittorrent' | ClassifierModuleSpec)[];
  /** Payload packets inspected per direction before a flow is judged benign (engine default 10). */
  maxPacketsPerDirection?: number | undefined;
  /** Seconds a peer endpoint stays in the peer cache (shorthand for `peerCache.ttlSeconds`). */
  peerCacheTtl?: number | undefined;
  /** Peer cache bounds and TTLs, or `false` for none (default: the engine's). */
  peerCache?: PeerCacheOptions | false | undefined;
  /** Learn the peers listed by tracker and DHT replies (default true). */
  learnPeers?: boolean | undefined;
  /** Longest wait (ms) for the other workers to know the peers a packet listed before it is let through (default 250). */
  peerSyncTimeoutMs?: number | undefined;
  /** Minimum interval between `counters` events (default 250 ms). */
  countersIntervalMs?: number | undefined;
  /**
   * Report settled services (`{ kind: 'settled' }` events): the server endpoint of a flow identified
   * as a known protocol that is not BitTorrent, at most once per endpoint every `ttlSeconds / 2`.
   */
  settleServices?: { ttlSeconds: number } | undefined;
}

/** A server endpoint the worker saw settled (see {@link DpiHandlerOptions.settleServices}). */
export interface DpiHandlerSettled extends SettledService {
  kind: 'settled';
}

/** Cumulative counters of one worker's engine. */
export interface DpiHandlerCounters {
  /** Packets handed to the engine. */
  packets: number;
  /** Packets that were not TCP/UDP or could not be decoded (accepted). */
  undecodable: number;
  /** Flows seen (created in the flow table). */
  flows: number;
  /** Flows judged BitTorrent (or by a custom classifier: "bad"). */
  detections: number;
  /** Of those, judged at once from the peer endpoint cache. */
  cacheHits: number;
  /** Of those cache hits, endpoints learnt from a tracker or DHT peer list (detection `peer-learnt`). */
  learntHits: number;
  /** Endpoints this worker learnt from tracker and DHT peer lists. */
  learntPeers: number;
  /** Packets that listed peers and were let through after waiting for the other workers' acknowledgement timed out. */
  peerSyncTimeouts: number;
  /** Flows judged benign (marked to bypass the queue). */
  benign: number;
  /** Packets answered `bad` (dropped, with every later packet of their flow by the rules). */
  dropped: number;
  /** Packets answered `accept` while their flow was still undecided. */
  accepted: number;
}

/** What a classifier said about a flow it judged, as workers report it and {@link Detection} carries it. */
export interface DetectionVerdict {
  /** Why, e.g. `TCP peer handshake ("BitTorrent protocol")`. */
  reason: string;
  /** Detection family (`handshake`, `utp`, `dht`, `cache`, ...). */
  detection?: string | undefined;
  /** Classifier that decided. */
  classifier?: string | undefined;
  /** Torrent info-hash (40 hex digits) when the packets carried one. */
  infoHash?: string | undefined;
  /** Peer id when seen. */
  peerId?: string | undefined;
  /** Client software when known. */
  software?: string | undefined;
  /** Packets of the flow (both directions) seen when it was decided. */
  atPacket: number;
}

/** A detection as the worker reports it (the main process adds the queue and time). */
export interface DpiHandlerDetection extends DetectionVerdict {
  kind: 'detection';
  transport: Transport;
  family: 4 | 6;
  client: Endpoint;
  server: Endpoint;
  peers: boolean;
  /** True when the flow was let through (monitor-only). */
  monitored: boolean;
}

/** Load one classifier module: `createClassifier(options)`, a `classifier` object, or a default of either kind. */
async function loadClassifier(spec: ClassifierModuleSpec): Promise<Classifier<any>> {
  const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
  const mod = (await import(url)) as Record<string, unknown>;
  const cand = mod.createClassifier ?? mod.classifier ?? mod.default;
  const c = typeof cand === 'function' ? await (cand as (o: unknown) => unknown)(spec.options) : cand;
  if (!c || typeof c !== 'object' || typeof (c as Classifier).inspect !== 'function' || typeof (c as Classifier).name !== 'string') {
    throw new Error(`${spec.module}: exports no classifier (expected createClassifier(options), classifier, or a default with name and inspect())`);
  }
  return c as Classifier<any>;
}

/** The handler factory DpiBlocker's workers load. */
export const createPacketHandler: PacketHandlerFactory = async (ctx) => {
  const o = (ctx.options ?? { monitorOnly: false, classifiers: ['bittorrent'] }) as DpiHandlerOptions;
  const classifiers: Classifier<any>[] = [];
  for (const c of o.classifiers) classifiers.push(c === 'bittorrent' ? bittorrentClassifier() : await loadClassifier(c));
  const counters = zeroHandlerCounters();
  const interval = o.countersIntervalMs ?? 250;
  let dirty = false;
  let lastSent = 0;
  let timer: NodeJS.Timeout | undefined;
  let decided = false;
  const flush = (): void => {
    timer = undefined;
    if (!dirty) return;
    dirty = false;
    lastSent = Date.now();
    ctx.emit({ kind: 'counters', counters: { ...counters } });
  };
  const touch = (now: boolean): void => {
    dirty = true;
    if (now || Date.now() - lastSent >= interval) {
      if (timer) clearTimeout(timer);
      flush();
    } else if (!timer) {
      timer = setTimeout(flush, interval);
      timer.unref();
    }
  };
  const cache = o.peerCache === false ? undefined : new PeerCache({ ...(o.peerCacheTtl ? { ttlSeconds: o.peerCacheTtl } : {}), ...o.peerCache });
  const sync = cache ? new WorkerPeerSync(cache, ctx, o.peerSyncTimeoutMs) : undefined;
  const engine = new DpiEngine({
    classifiers,
    ...(o.maxPacketsPerDirection ? { maxPacketsPerDirection: o.maxPacketsPerDirection } : {}),
    peerCache: cache ?? false,
    peerLearning: o.learnPeers !== false,
    onDecision: (flow) => {
      const v = flow.verdict;
      if (v.verdict === 'bittorrent') {
        counters.detections++;
        if (v.detection === 'cache' || v.detection === 'peer-learnt') counters.cacheHits++;
        if (v.detection === 'peer-learnt') counters.learntHits++;
        const d: DpiHandlerDetection = {
          kind: 'detection',
          transport: flow.transport,
          family: flow.family,
          client: { ...flow.client },
          server: { ...flow.server },
          reason: v.reason,
          detection: v.detection,
          classifier: v.classifier,
          infoHash: v.infoHash,
          peerId: v.peerId,
          software: v.client,
          // a learnt endpoint is hearsay (anyone can list any address): its flow is dropped, its address not blocklisted
          peers: v.peers === true || v.detection === 'cache',
          atPacket: flow.totalPackets(),
          monitored: o.monitorOnly,
        };
        ctx.emit(d);
        decided = true;
      } else if (v.verdict === 'benign') {
        counters.benign++; // counted, sent with the next batch (or on request)
        // identified as a known protocol (not a budget run out), to a server not known as a peer: the service settles
        if (settleEvery && v.detection === 'settled') {
          const now = Date.now() / 1000;
          const { server } = flow;
          const key = `${flow.transport} ${server.addr} ${server.port}`;
          const last = settledAt.get(key);
          if ((last === undefined || now - last >= settleEvery) && !cache?.has(server, now)) {
            if (settledAt.size >= 65_536) settledAt.clear();
            settledAt.set(key, now);
            ctx.emit({ kind: 'settled', family: flow.family, transport: flow.transport, addr: server.addr, port: server.port } satisfies DpiHandlerSettled);
          }
        }
      }
    },
  });
  // the main process asks before reading the counters (DpiBlocker.stats): they are then exact
  ctx.onMessage?.((data) => {
    if ((data as { kind?: unknown } | undefined)?.kind === COUNTERS_FLUSH) {
      if (timer) clearTimeout(timer);
      dirty = true;
      flush();
    }
  });
  const learner = engine.learner;
  // settled services reported, endpoint -> when (seconds); bounded: cleared when it grows past 65,536
  const settledAt = new Map<string, number>();
  const settleEvery = o.settleServices ? o.settleServices.ttlSeconds / 2 : 0;
  const waitFor = (d: Decision, wait: Promise<void>): Promise<Decision> =>
    wait.then(() => {
      if (sync && sync.timeouts !== counters.peerSyncTimeouts) {
        counters.peerSyncTimeouts = sync.timeouts;
        touch(false);
      }
      return d;
    });
  return (packet): Decision | Promise<Decision> => {
    counters.packets++;
    const p = decodeFrame(LinkType.RAW, packet.payload);
    // conntrack's view (queues with conntrack attributes): enum ip_conntrack_info, 3 and up is the reply direction
    if (p && packet.ctInfo !== undefined) p.conntrack = { reply: packet.ctInfo >= IP_CT_IS_REPLY, id: packet.ct?.id };
    const step = p && !p.fragmented ? engine.process(p, Date.now() / 1000) : undefined;
    if (!step) {
      counters.undecodable++;
      touch(false);
      return 'accept';
    }
    if (step.created) counters.flows++;
    const v = step.flow.verdict.verdict;
    let d: Decision;
    if (v === 'bittorrent') {
      // monitor-only: keep queueing a flow whose peer list is still to come
      if (o.monitorOnly) d = learner?.wants(step.flow) ? 'accept' : 'benign';
      else {
        counters.dropped++;
        d = 'bad';
      }
    } else if (v === 'benign') d = 'benign';
    else {
      counters.accepted++;
      d = 'accept';
    }
    // Counters go out at once after a detection, otherwise at most every `countersIntervalMs` (one IPC message per new connection costs more than its verdict).
    // this packet listed peers: counted at once, and (when let through) held until every worker knows them
    const taught = learner !== undefined && learner.stats.endpoints !== counters.learntPeers;
    if (taught) {
      counters.learntPeers = learner.stats.endpoints;
      decided = true;
    }
    touch(decided);
    decided = false;
    const wait = sync?.flush(taught && d !== 'bad');
    return wait ? waitFor(d, wait) : d;
  };
};

/** enum ip_conntrack_info: IP_CT_ESTABLISHED_REPLY, the first value of the reply direction. */
const IP_CT_IS_REPLY = 3;

/** What the main process posts to the workers to have their counters sent at once. */
export const COUNTERS_FLUSH = 'counters-flush';

/** Counters at zero (also fills fields an older worker did not report). */
export function zeroHandlerCounters(): DpiHandlerCounters {
  return { packets: 0, undecodable: 0, flows: 0, detections: 0, cacheHits: 0, learntHits: 0, learntPeers: 0, peerSyncTimeouts: 0, benign: 0, dropped: 0, accepted: 0 };
}

export default createPacketHandler;
