/**
 * Peers learnt from the swarm's own directories: HTTP tracker responses
 * (compact and dictionary `peers`, `peers6`), UDP tracker announce replies and
 * DHT replies (`values`, `nodes`, `nodes6`) put the listed endpoints in the
 * peer cache, so the next flow to one of them is judged BitTorrent at its
 * first packet — random (encrypted-looking) payload or a bare SYN. Then the
 * one peer cache of a DpiBlocker shared by its queue workers, through the
 * main process's relay, in process.
 */
import { describe, expect, it } from 'vitest';
import { createPacketHandler, type DpiHandlerCounters, type DpiHandlerDetection, type DpiHandlerOptions } from '../../src/dpi/blocker-handler.js';
import { DpiEngine } from '../../src/dpi/classifiers/engine.js';
import { PeerCache } from '../../src/dpi/classifiers/peer-cache.js';
import { compactNodes4, compactPeers4, dhtReplyPeers, MAX_LISTED } from '../../src/dpi/classifiers/bittorrent/peer-lists.js';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import type { Flow } from '../../src/dpi/flow.js';
import type { QueuedPacket } from '../../src/dpi/nfqueue/protocol.js';
import type { Decision } from '../../src/dpi/nfqueue/reader.js';
import { decodeFrame, LinkType } from '../../src/dpi/packet.js';
import { MainPeerSync } from '../../src/dpi/peer-sync.js';
import { dpiFamilies } from '../../src/metrics/sources.js';
import { btHandshake, ip4, ip6, ipv4Packet, ipv6Packet, type L4 } from './dpi-fixtures.js';

// ---------------------------------------------------------------------------
// wire helpers

type B = number | string | Uint8Array | B[] | { [k: string]: B };
function benc(v: B): Buffer {
  if (typeof v === 'number') return Buffer.from(`i${v}e`);
  if (typeof v === 'string') return Buffer.concat([Buffer.from(`${Buffer.byteLength(v, 'latin1')}:`), Buffer.from(v, 'latin1')]);
  if (v instanceof Uint8Array) return Buffer.concat([Buffer.from(`${v.length}:`), v]);
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(benc), Buffer.from('e')]);
  return Buffer.concat([Buffer.from('d'), ...Object.keys(v).sort().flatMap((k) => [benc(k), benc(v[k]!)]), Buffer.from('e')]);
}
const be16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const be32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const c4 = (addr: string, port: number) => [...ip4(addr), ...be16(port)];
const c6 = (addr: string, port: number) => [...ip6(addr), ...be16(port)];
const id20 = (n: number) => new Array<number>(20).fill(n);

/** Deterministic bytes that look encrypted (an MSE key exchange's shape: 96 + padding). */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const CLIENT = '198.18.0.10';
const TRACKER = '198.18.1.1';

function ip(src: string, dst: string, l4: L4): number[] {
  return src.includes(':') ? ipv6Packet(src, dst, l4) : ipv4Packet(src, dst, l4);
}

let clock = 1_800_000_000;
/** Feed one packet; returns its flow. */
function send(e: DpiEngine, src: string, dst: string, l4: L4, ts = (clock += 0.01)): Flow {
  const d = decodeFrame(LinkType.RAW, Uint8Array.from(ip(src, dst, l4)));
  expect(d).toBeDefined();
  return e.process(d!, ts)!.flow;
}

/** An HTTP tracker exchange: announce, then the response (head and body in separate segments). */
function httpTracker(e: DpiEngine, body: Buffer, sport = 40000, tracker = TRACKER): Flow {
  send(e, CLIENT, tracker, { proto: 'tcp', sport, dport: 80, flags: 0x02, seq: 99 });
  send(e, tracker, CLIENT, { proto: 'tcp', sport: 80, dport: sport, flags: 0x12, seq: 499 });
  const req = `GET /announce?info_hash=${'%aa'.repeat(20)}&peer_id=-qB4630-abcdefghijkl&port=6881&compact=1 HTTP/1.1\r\nHost: ${tracker}\r\nUser-Agent: curl/8\r\n\r\n`;
  send(e, CLIENT, tracker, { proto: 'tcp', sport, dport: 80, payload: req, seq: 100 });
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`;
  send(e, tracker, CLIENT, { proto: 'tcp', sport: 80, dport: sport, payload: head, seq: 500 });
  return send(e, tracker, CLIENT, { proto: 'tcp', sport: 80, dport: sport, payload: body, seq: 500 + head.length });
}

const trackerBody = (peers: B, peers6?: number[]) => benc({ interval: 1800, complete: 3, incomplete: 1, peers, ...(peers6 ? { peers6: Uint8Array.from(peers6) } : {}) });

// ---------------------------------------------------------------------------

describe('peer lists', () => {
  it('reads compact peers and DHT nodes, dropping well-known ports, loopback, multicast and port 0; at most MAX_LISTED per reply', () => {
    const list = Uint8Array.from([...c4('198.18.2.1', 6881), ...c4('198.18.2.2', 443), ...c4('127.0.0.1', 6881), ...c4('224.0.0.5', 6881), ...c4('198.18.2.3', 0), ...c4('198.18.2.4', 51413)]);
    expect(compactPeers4(list)).toEqual([
      { addr: '198.18.2.1', port: 6881 },
      { addr: '198.18.2.4', port: 51413 },
    ]);
    expect(compactNodes4(Uint8Array.from([...id20(1), ...c4('198.18.9.9', 7000)]))).toEqual([{ addr: '198.18.9.9', port: 7000 }]);
    const many = Uint8Array.from(Array.from({ length: 400 }, (_, i) => c4(`198.18.${i >> 8}.${i & 0xff}`, 6881 + (i % 7))).flat());
    expect(compactPeers4(many)).toHaveLength(MAX_LISTED);
  });

  it('a DHT reply must be a whole valid KRPC reply; a query listing nodes is not read', () => {
    const r = { id: Uint8Array.from(id20(3)), nodes: Uint8Array.from([...id20(4), ...c4('198.18.7.1', 6881)]) };
    expect(dhtReplyPeers(benc({ r, t: 'aa', y: 'r' }))?.endpoints).toEqual([{ addr: '198.18.7.1', port: 6881 }]);
    expect(dhtReplyPeers(benc({ a: r, q: 'find_node', t: 'aa', y: 'q' }))).toBeUndefined();
    expect(dhtReplyPeers(benc({ r: { ...r, id: Uint8Array.from([1, 2]) }, t: 'aa', y: 'r' }))).toBeUndefined();
    const whole = benc({ r, t: 'aa', y: 'r' });
    expect(dhtReplyPeers(whole.subarray(0, whole.length - 1))).toBeUndefined();
  });
});

describe('the engine learns peers from tracker and DHT replies', () => {
  it('HTTP tracker, compact peers + peers6: the next flows to them are BitTorrent at their first packet (random payload, bare SYN, IPv6)', () => {
    const e = new DpiEngine();
    const body = trackerBody(Uint8Array.from([...c4('198.18.2.1', 6881), ...c4('198.18.2.2', 51413)]), c6('fd00:2::1', 6881));
    const t = httpTracker(e, body);
    expect(t.verdict).toMatchObject({ verdict: 'bittorrent', detection: 'http-tracker' });
    expect(e.learner!.stats).toEqual({ lists: 1, endpoints: 3 });

    // encrypted-looking first payload packet (the SYN was not queued)
    const f1 = send(e, CLIENT, '198.18.2.1', { proto: 'tcp', sport: 40100, dport: 6881, payload: noise(96 + 211, 7), seq: 1 });
    expect(f1.verdict).toMatchObject({ verdict: 'bittorrent', detection: 'peer-learnt', classifier: 'peer-cache' });
    expect(f1.decidedAtPacket).toBe(1);
    expect(f1.verdict.reason).toMatch(/^peer learnt: 198\.18\.2\.1:6881 was listed \d+\.\d s earlier in a HTTP tracker response \(peers, peers6\) from 198\.18\.1\.1:80$/);
    // a bare SYN
    const f2 = send(e, CLIENT, '198.18.2.2', { proto: 'tcp', sport: 40101, dport: 51413, flags: 0x02, seq: 5 });
    expect(f2.verdict.detection).toBe('peer-learnt');
    expect(f2.decidedAtPacket).toBe(1);
    // IPv6, uTP-sized random datagram
    const f3 = send(e, 'fd00::10', 'fd00:2::1', { proto: 'udp', sport: 6881, dport: 6881, payload: noise(120, 9) });
    expect(f3.verdict.detection).toBe('peer-learnt');
    // the same random payload to an endpoint nobody listed stays undecided
    const ctl = send(e, CLIENT, '198.18.2.1', { proto: 'tcp', sport: 40102, dport: 6882, payload: noise(96 + 211, 7), seq: 1 });
    expect(ctl.verdict.verdict).toBe('undecided');
    expect(e.peerCache!.stats).toMatchObject({ learntHits: 3 });
  });

  it('HTTP tracker, dictionary peers (IPv4 and IPv6 literals; host names and well-known ports ignored), chunked body', () => {
    const e = new DpiEngine();
    const peers = [
      { ip: '198.18.3.1', port: 6881, 'peer id': '-TR3000-aaaaaaaaaaaa' },
      { ip: 'fd00:3::1', port: 7000, 'peer id': '-TR3000-bbbbbbbbbbbb' },
      { ip: 'peer.example', port: 6881, 'peer id': '-TR3000-cccccccccccc' },
      { ip: '198.18.3.2', port: 80, 'peer id': '-TR3000-dddddddddddd' },
    ];
    const body = trackerBody(peers);
    const sport = 40200;
    send(e, CLIENT, TRACKER, { proto: 'tcp', sport, dport: 80, flags: 0x02, seq: 99 });
    send(e, CLIENT, TRACKER, { proto: 'tcp', sport, dport: 80, payload: `GET /announce?info_hash=${'%bb'.repeat(20)} HTTP/1.1\r\nHost: t\r\n\r\n`, seq: 100 });
    const resp = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    // two segments, the second first
    send(e, TRACKER, CLIENT, { proto: 'tcp', sport: 80, dport: sport, payload: resp.subarray(60), seq: 560 });
    send(e, TRACKER, CLIENT, { proto: 'tcp', sport: 80, dport: sport, payload: resp.subarray(0, 60), seq: 500 });
    expect(e.learner!.stats.endpoints).toBe(2);
    expect(send(e, CLIENT, '198.18.3.1', { proto: 'tcp', sport: 40201, dport: 6881, payload: noise(200, 1), seq: 1 }).verdict.detection).toBe('peer-learnt');
    expect(send(e, 'fd00::10', 'fd00:3::1', { proto: 'tcp', sport: 40202, dport: 7000, flags: 0x02 }).verdict.detection).toBe('peer-learnt');
    expect(send(e, CLIENT, '198.18.3.2', { proto: 'tcp', sport: 40203, dport: 80, payload: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', seq: 1 }).verdict.detection).not.toBe('peer-learnt');
  });

  it('DHT reply (values, nodes, nodes6): peers as responders; for UDP also a listed endpoint that initiates; not TCP from an ephemeral port', () => {
    const e = new DpiEngine();
    const node = '198.18.4.1';
    const q = benc({ a: { id: Uint8Array.from(id20(1)), info_hash: Uint8Array.from(id20(2)) }, q: 'get_peers', t: 'ab', y: 'q' });
    const r = benc({
      r: {
        id: Uint8Array.from(id20(5)),
        nodes: Uint8Array.from([...id20(6), ...c4('198.18.5.2', 7003)]),
        nodes6: Uint8Array.from([...id20(7), ...c6('fd00:5::2', 7004)]),
        token: 'tok',
        values: [Uint8Array.from(c4('198.18.5.1', 7001)), Uint8Array.from(c6('fd00:5::1', 7002))],
      },
      t: 'ab',
      y: 'r',
    });
    const f = send(e, CLIENT, node, { proto: 'udp', sport: 6881, dport: 6881, payload: q });
    expect(f.verdict.detection).toBe('dht'); // decided on the query; the reply is still read
    send(e, node, CLIENT, { proto: 'udp', sport: 6881, dport: 6881, payload: r });
    expect(e.learner!.stats).toEqual({ lists: 1, endpoints: 4 });
    const utp = send(e, CLIENT, '198.18.5.1', { proto: 'udp', sport: 6881, dport: 7001, payload: noise(20, 3) });
    expect(utp.verdict).toMatchObject({ detection: 'peer-learnt' });
    expect(utp.verdict.reason).toContain('DHT reply (values, nodes, nodes6) from 198.18.4.1:6881');
    expect(send(e, 'fd00::10', 'fd00:5::1', { proto: 'tcp', sport: 40300, dport: 7002, payload: noise(300, 4), seq: 1 }).verdict.detection).toBe('peer-learnt');
    // a listed node that queries us (UDP, from its listed port)
    // (to another local port: CLIENT:6881 itself is cached as detected, from the DHT flow)
    expect(send(e, '198.18.5.2', CLIENT, { proto: 'udp', sport: 7003, dport: 6889, payload: noise(40, 5) }).verdict.detection).toBe('peer-learnt');
    expect(send(e, 'fd00:5::2', 'fd00::10', { proto: 'tcp', sport: 7004, dport: 6881, flags: 0x02 }).verdict.verdict).toBe('undecided');
    // TCP from a listed address but another (ephemeral) port: not matched
    expect(send(e, '198.18.5.1', CLIENT, { proto: 'tcp', sport: 50000, dport: 6890, payload: noise(300, 6), seq: 1 }).verdict.verdict).toBe('undecided');
  });

  it('UDP tracker announce replies (6-byte IPv4, 18-byte IPv6 entries) only when the transaction id was asked', () => {
    for (const [tracker, client, peer, entry] of [
      ['198.18.1.2', CLIENT, '198.18.6.1', c4('198.18.6.1', 6881)],
      ['fd00:1::2', 'fd00::10', 'fd00:6::1', c6('fd00:6::1', 6881)],
    ] as const) {
      const e = new DpiEngine();
      const u = (src: string, dst: string, sport: number, dport: number, p: number[]) => send(e, src, dst, { proto: 'udp', sport, dport, payload: p });
      const conn = [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, ...be32(0), ...be32(0x1111)];
      u(client, tracker, 40400, 6969, conn);
      u(tracker, client, 6969, 40400, [...be32(0), ...be32(0x1111), 1, 2, 3, 4, 5, 6, 7, 8]);
      const announce = [1, 2, 3, 4, 5, 6, 7, 8, ...be32(1), ...be32(0x2222), ...id20(0xaa), ...id20(0x2d), ...new Array(24).fill(0), ...be32(2), ...be32(0), ...be32(9), ...be32(50), ...be16(6881)];
      expect(announce.length).toBe(98);
      u(client, tracker, 40400, 6969, announce);
      // a reply to another transaction teaches nothing
      u(tracker, client, 6969, 40400, [...be32(1), ...be32(0x3333), ...be32(1800), ...be32(1), ...be32(1), ...c4('198.18.6.9', 6881), ...c4('198.18.6.8', 6881), ...c4('198.18.6.7', 6881)]);
      expect(e.learner!.stats.endpoints).toBe(0);
      u(tracker, client, 6969, 40400, [...be32(1), ...be32(0x2222), ...be32(1800), ...be32(1), ...be32(1), ...entry]);
      expect(e.learner!.stats.endpoints).toBe(1);
      expect(send(e, client, peer, { proto: 'tcp', sport: 40401, dport: 6881, payload: noise(160, 8), seq: 1 }).verdict.detection).toBe('peer-learnt');
    }
  });

  it('learnt entries live in their own bounded tier: hearsay never evicts or overrides a detected peer; own TTL', () => {
    const c = new PeerCache({ maxEntries: 4, maxLearnt: 2, ttlSeconds: 100, learntTtlSeconds: 10 });
    c.add({ addr: '198.18.0.1', port: 6881 }, 'handshake', 0);
    c.add({ addr: '198.18.0.1', port: 6881 }, 'a DHT reply', 1, 'learnt');
    for (let i = 0; i < 5; i++) c.add({ addr: `198.18.1.${i}`, port: 6881 }, 'a DHT reply', 1, 'learnt');
    expect(c.size).toBe(3);
    expect(c.get({ addr: '198.18.0.1', port: 6881 }, 2)).toMatchObject({ source: 'detected', reason: 'handshake' });
    expect(c.get({ addr: '198.18.1.0', port: 6881 }, 2)).toBeUndefined(); // evicted by the learnt bound
    expect(c.get({ addr: '198.18.1.4', port: 6881 }, 2)).toMatchObject({ source: 'learnt' });
    expect(c.get({ addr: '198.18.1.4', port: 6881 }, 12)).toBeUndefined(); // learnt TTL
    expect(c.get({ addr: '198.18.0.1', port: 6881 }, 50)).toBeDefined();
    // detected replaces learnt
    c.add({ addr: '198.18.1.3', port: 6881 }, 'utp', 3);
    expect(c.get({ addr: '198.18.1.3', port: 6881 }, 4)).toMatchObject({ source: 'detected' });
    expect(c.snapshot()).toMatchObject({ size: 2, learntSize: 0, maxEntries: 4, maxLearnt: 2, learntTtlSeconds: 10, evictions: 3 });
    expect(c.records(5).map((r) => `${r.addr}:${r.port} ${r.source}`)).toEqual(['198.18.0.1:6881 detected', '198.18.1.3:6881 detected']);
    expect(c.prune(200)).toBe(2);
  });

  it('peerLearning: false keeps the cache but learns nothing', () => {
    const e = new DpiEngine({ peerLearning: false });
    httpTracker(e, trackerBody(Uint8Array.from(c4('198.18.2.1', 6881))));
    expect(e.learner).toBeUndefined();
    expect(send(e, CLIENT, '198.18.2.1', { proto: 'tcp', sport: 40100, dport: 6881, payload: noise(300, 7), seq: 1 }).verdict.verdict).toBe('undecided');
  });
});

// ---------------------------------------------------------------------------
// workers

function queued(payload: number[], id: number): QueuedPacket {
  return { queue: 1, id, hwProtocol: 0x0800, hook: 2, hookName: 'forward', mark: 0, payload: Buffer.from(payload), length: payload.length } as unknown as QueuedPacket;
}

const dhtQuery = benc({ a: { id: Uint8Array.from(id20(1)), info_hash: Uint8Array.from(id20(2)) }, q: 'get_peers', t: 'cd', y: 'q' });
const dhtReply = (peer: string, port: number) => benc({ r: { id: Uint8Array.from(id20(5)), token: 'x', values: [Uint8Array.from(c4(peer, port))] }, t: 'cd', y: 'r' });
const NODE = '198.18.4.1';

/**
 * Workers as DpiBlocker runs them, in process: each handler's ctx.emit goes to
 * the main side (MainPeerSync, then the test's event list), and the main
 * side's posts reach the handlers' onMessage listeners — both asynchronously,
 * like IPC.
 */
async function workers(options: DpiHandlerOptions, queues: number[], deliver = (_q: number) => true) {
  const listeners = new Map<number, ((d: unknown) => void)[]>(queues.map((q) => [q, []]));
  const events: { queue: number; data: unknown }[] = [];
  const main = new MainPeerSync(
    {},
    (q, data) => {
      const to = q === 'all' ? queues : [q];
      for (const t of to) if (deliver(t)) setImmediate(() => listeners.get(t)!.forEach((l) => l(structuredClone(data))));
      return to.length;
    },
    () => queues,
  );
  const handlers = new Map<number, (p: QueuedPacket) => Decision | Promise<Decision>>();
  for (const q of queues) {
    const ctx = {
      queue: q,
      options,
      failOpen: true,
      emit: (d: unknown) => setImmediate(() => main.onEvent(q, structuredClone(d)) || events.push({ queue: q, data: d })),
      onMessage: (l: (d: unknown) => void) => void listeners.get(q)!.push(l),
    };
    handlers.set(q, await createPacketHandler(ctx));
  }
  main.hello(Date.now() / 1000);
  await new Promise((r) => setImmediate(r));
  let id = 0;
  const feed = (q: number, p: number[]) => handlers.get(q)!(queued(p, ++id));
  const detections = () => events.filter((e) => (e.data as { kind: string }).kind === 'detection').map((e) => ({ queue: e.queue, ...(e.data as DpiHandlerDetection) }));
  const counters = (q: number) => (events.filter((e) => e.queue === q && (e.data as { kind: string }).kind === 'counters').pop()?.data as { counters: DpiHandlerCounters } | undefined)?.counters;
  const tick = () => new Promise((r) => setTimeout(r, 5));
  return { main, feed, detections, counters, tick };
}

const udp4 = (s: string, d: string, sp: number, dp: number, p: Uint8Array | number[]) => ipv4Packet(s, d, { proto: 'udp', sport: sp, dport: dp, payload: p });
const tcpData = (s: string, d: string, sp: number, dp: number, p: Uint8Array | string) => ipv4Packet(s, d, { proto: 'tcp', sport: sp, dport: dp, payload: p, seq: 1 });

describe('one peer cache for all queue workers', () => {
  it('monitor-only: a DHT reply read by worker 200 is let through only once worker 201 knows its peers; 201 then reports the next flow as peer-learnt', async () => {
    const w = await workers({ monitorOnly: true, classifiers: ['bittorrent'] }, [200, 201]);
    // the query decides the flow; monitor-only keeps queueing it (accept) for the reply
    expect(await w.feed(200, udp4(CLIENT, NODE, 6881, 6881, dhtQuery))).toBe('accept');
    const d = w.feed(200, udp4(NODE, CLIENT, 6881, 6881, dhtReply('198.18.8.1', 51413)));
    expect(d).toBeInstanceOf(Promise); // held for the other worker
    // when it is released, worker 201 already judges the listed peer at its first packet
    const next = (d as Promise<Decision>).then((v) => [v, w.feed(201, tcpData(CLIENT, '198.18.8.1', 40500, 51413, noise(400, 11)))]);
    const [v, v2] = await next;
    expect(v).toBe('benign'); // list read: the DHT flow may bypass now
    expect(v2).toBe('benign'); // monitor-only: reported, let through
    await w.tick();
    const det = w.detections();
    expect(det.map((x) => `${x.queue} ${x.detection} ${x.monitored}`)).toEqual(['200 dht true', '201 peer-learnt true']);
    expect(det[1]!.reason).toMatch(/^peer learnt: 198\.18\.8\.1:51413 was listed .* in a DHT reply \(values\) from 198\.18\.4\.1:6881$/);
    // hearsay: the flow is judged, but the address is not offered to the blocklist
    expect(det[1]).toMatchObject({ server: { addr: '198.18.8.1', port: 51413 }, peers: false });
    expect(w.main.cache.snapshot()).toMatchObject({ size: 3, learntSize: 1 }); // the DHT flow's two ends (detected) and the listed peer
    expect(w.counters(201)).toMatchObject({ detections: 1, cacheHits: 1, learntHits: 1 });
    expect(w.counters(200)).toMatchObject({ learntPeers: 1, peerSyncTimeouts: 0 });
  });

  it('blocking: a detection in one worker is known to the others (cache), without holding any verdict', async () => {
    const w = await workers({ monitorOnly: false, classifiers: ['bittorrent'] }, [200, 201, 202]);
    expect(await w.feed(200, tcpData(CLIENT, '198.18.9.1', 40600, 6881, btHandshake()))).toBe('bad');
    // a dropped DHT reply (the client never gets it) is not held, but its peers are still shared
    expect(w.feed(201, udp4(NODE, CLIENT, 6881, 6882, dhtReply('198.18.9.2', 6881)))).toBe('bad');
    await w.tick();
    expect(w.feed(202, tcpData(CLIENT, '198.18.9.1', 40601, 6881, noise(300, 12)))).toBe('bad');
    expect(w.feed(200, ipv4Packet(CLIENT, '198.18.9.2', { proto: 'tcp', sport: 40602, dport: 6881, flags: 0x02 }))).toBe('bad');
    await w.tick();
    expect(w.detections().map((x) => `${x.queue} ${x.detection}`)).toEqual(['200 handshake', '201 dht', '202 cache', '200 peer-learnt']);
  });

  it('a worker that never acknowledges costs at most peerSyncTimeoutMs, counted', async () => {
    const w = await workers({ monitorOnly: true, classifiers: ['bittorrent'], peerSyncTimeoutMs: 30, countersIntervalMs: 1 }, [200, 201], (q) => q !== 201);
    const d = w.feed(200, udp4(NODE, CLIENT, 6881, 6881, dhtReply('198.18.8.2', 6881)));
    expect(d).toBeInstanceOf(Promise);
    expect(await d).toBe('benign');
    for (let i = 0; i < 200 && !w.counters(200)?.peerSyncTimeouts; i++) await w.tick(); // the counters event follows the verdict
    expect(w.counters(200)).toMatchObject({ peerSyncTimeouts: 1, learntPeers: 1 });
  });

  it('without the main process (openQueues alone) a worker neither shares nor waits', async () => {
    const h = await createPacketHandler({ queue: 1, options: { monitorOnly: true, classifiers: ['bittorrent'] }, failOpen: true, emit: () => undefined });
    expect(h(queued(udp4(NODE, CLIENT, 6881, 6881, dhtReply('198.18.8.3', 6881)), 1))).toBe('benign');
    expect(h(queued(tcpData(CLIENT, '198.18.8.3', 40700, 6881, noise(300, 13)), 2))).toBe('benign');
  });
});

describe('DpiBlocker: the peer cache in stats and options', () => {
  type Feed = { onWorkerEvent(queue: number, data: unknown): void };
  it('the main process keeps every worker\'s additions; stats().peerCache reports sizes, bounds and the workers\' hits', async () => {
    const b = new DpiBlocker({ peerCache: { maxLearnt: 1000, learntTtlMs: 600_000 } });
    const now = Date.now() / 1000;
    (b as unknown as Feed).onWorkerEvent(200, { kind: 'peers', seq: 1, sync: false, records: [{ addr: '198.18.1.1', port: 6881, reason: 'utp', ts: now, source: 'detected' }] });
    (b as unknown as Feed).onWorkerEvent(201, {
      kind: 'peers',
      seq: 1,
      sync: false,
      records: [
        { addr: '198.18.2.1', port: 6881, reason: 'a DHT reply', ts: now, source: 'learnt' },
        { addr: '198.18.2.2', port: 6881, reason: 'a DHT reply', ts: now, source: 'learnt' },
      ],
    });
    (b as unknown as Feed).onWorkerEvent(201, { kind: 'counters', counters: { packets: 9, undecodable: 0, flows: 3, detections: 2, cacheHits: 2, learntHits: 1, learntPeers: 2, peerSyncTimeouts: 0, benign: 0, dropped: 2, accepted: 7 } });
    (b as unknown as Feed).onWorkerEvent(200, { kind: 'counters', counters: { packets: 1, undecodable: 0, flows: 1, detections: 0, cacheHits: 0, benign: 1, dropped: 0, accepted: 0 } }); // an older worker's counters
    const s = (await b.stats()).unwrap();
    expect(s.peerCache).toEqual({ size: 3, learnt: 2, maxEntries: 65536, maxLearnt: 1000, ttlMs: 3_600_000, learntTtlMs: 600_000, added: 3, learntAdded: 2, evictions: 0, hits: 2, learntHits: 1, syncTimeouts: 0 });
    expect(s.cacheHits).toBe(2);
    expect(s.engines.find((e) => e.queue === 200)!.counters.learntHits).toBe(0);
    // metrics read the same stats
    const fams = dpiFamilies('r1', s).families();
    const sample = (name: string, labels: Record<string, string | number>) =>
      fams.find((f) => f.name === name)?.samples.find((x) => Object.entries(labels).every(([k, v]) => String(x.labels[k]) === String(v)))?.value;
    expect(sample('netfence_dpi_peer_cache_entries', { tier: 'learnt' })).toBe(2);
    expect(sample('netfence_dpi_peer_cache_entries', { tier: 'detected' })).toBe(1);
    expect(sample('netfence_dpi_peer_cache_added_total', { tier: 'learnt' })).toBe(2);
    expect(sample('netfence_dpi_peer_learnt_detections_total', { queue: 201 })).toBe(1);
    expect(sample('netfence_dpi_peer_learnt_detections_total', { queue: 200 })).toBe(0);
    expect(sample('netfence_dpi_cache_hit_detections_total', { queue: 201 })).toBe(2);
  });

  it('options reach the workers (ms → s); peerCache: false and learnPeers: false', () => {
    const c = new DpiBlocker({ queues: [5, 2], peerCache: { maxEntries: 10, ttlMs: 60_000 }, learnPeers: false }).compile(false);
    if (c.err) throw c.val;
    expect(c.val.handlerOptions).toMatchObject({ peerCache: { maxEntries: 10, ttlSeconds: 60 }, learnPeers: false });
    const off = new DpiBlocker({ peerCache: false });
    const o = off.compile(false);
    if (o.err) throw o.val;
    expect(o.val.handlerOptions.peerCache).toBe(false);
    expect(() => new DpiBlocker({ peerCache: { ttlMs: 5 } })).toThrow(/ttlMs/);
  });

  it('stats().peerCache is undefined with peerCache: false', async () => {
    expect((await new DpiBlocker({ peerCache: false }).stats()).unwrap().peerCache).toBeUndefined();
  });
});
