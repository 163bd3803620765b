/**
 * DpiBlocker without the kernel: option validation, the compiled steering
 * plan and worker options, and the worker's handler module fed with packets
 * in process (decisions, detection events, counters, monitor-only, user
 * classifier modules).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COUNTERS_FLUSH, createPacketHandler, type DpiHandlerCounters, type DpiHandlerDetection, type DpiHandlerOptions } from '../../src/dpi/blocker-handler.js';
import { DpiBlocker, dpiHandlerPath } from '../../src/dpi/dpi-blocker.js';
import type { QueuedPacket } from '../../src/dpi/nfqueue/protocol.js';
import type { Decision } from '../../src/dpi/nfqueue/reader.js';
import { ValidationError } from '../../src/errors.js';
import { Err, Ok } from '../../src/result.js';
import { btHandshake, ipv4Packet, ipv6Packet, utp } from './dpi-fixtures.js';

const CUSTOM = fileURLToPath(new URL('../kernel/dpi-custom-classifier.ts', import.meta.url));

describe('DpiBlocker options', () => {
  it('refuses invalid options with a ValidationError naming the field', () => {
    expect(() => new DpiBlocker({ queues: [1, 0] })).toThrow(ValidationError);
    expect(() => new DpiBlocker({ netns: 'bad name' })).toThrow(ValidationError);
    expect(() => new DpiBlocker({ hooks: ['prerouting' as never] })).toThrow(ValidationError);
    expect(() => new DpiBlocker({ classifiers: ['relative/path.js'] })).toThrow(/absolute path/);
    expect(() => new DpiBlocker({ classifiers: [{ name: 'x', inspect: () => undefined } as never] })).toThrow(ValidationError);
    expect(() => new DpiBlocker({ blocklist: {} as never })).toThrow(/add\(entries/);
    expect(() => new DpiBlocker({ blockTtl: -1 })).toThrow(ValidationError);
    expect(() => new DpiBlocker({ bogus: 1 } as never)).toThrow(ValidationError);
  });

  it('compiles the xtables form: first 24 packets queued, fail-open bypass, chain in FORWARD', () => {
    const b = new DpiBlocker({ netns: 'r1', queues: [70, 2] });
    const c = b.compile(false);
    if (c.err) throw c.val;
    expect(c.val.queues).toEqual([70, 2]);
    expect(c.val.failOpen).toBe(true);
    expect(c.val.plan.netns).toBe('r1');
    expect(c.val.plan.queue).toEqual([{ queue: 70, count: 2, via: 'xtables', failOpen: true }]);
    const text = JSON.stringify(c.val.plan.steps);
    expect(text).toContain('--connbytes 0:24');
    expect(text).toContain('--queue-balance 70:71 --queue-bypass');
    expect(text).toContain('-I FORWARD 1 -j NETFENCE-DPI');
    expect(c.val.handlerOptions).toEqual({ monitorOnly: false, classifiers: ['bittorrent'], maxPacketsPerDirection: undefined, settleServices: { ttlSeconds: 60 } });
  });

  it('fail-closed has no bypass; hooks, packets, reset and monitor-only reach plan and workers', () => {
    const b = new DpiBlocker({ queues: [5, 1], failOpen: false, hooks: ['input', 'output'], packets: 8, resetBad: true, monitorOnly: true, classifiers: ['bittorrent', CUSTOM, { module: CUSTOM, options: { word: 'X' } }] });
    const c = b.compile(false);
    if (c.err) throw c.val;
    const text = JSON.stringify(c.val.plan.steps);
    expect(text).not.toContain('--queue-bypass');
    expect(text).toContain('--queue-num 5');
    expect(text).toContain('--connbytes 0:8');
    expect(text).toContain('tcp-reset');
    expect(text).toContain('-I INPUT 1 -j NETFENCE-DPI');
    expect(text).toContain('-I OUTPUT 1 -j NETFENCE-DPI');
    expect(text).not.toContain('FORWARD');
    expect(c.val.handlerOptions.monitorOnly).toBe(true);
    expect(c.val.handlerOptions.classifiers).toEqual(['bittorrent', { module: CUSTOM }, { module: CUSTOM, options: { word: 'X' } }]);
  });

  it('compiles the nft form where the kernel has the queue statement', () => {
    const c = new DpiBlocker({ queues: [9, 1], name: 'bt' }).compile(true);
    if (c.err) throw c.val;
    expect(c.val.plan.tables.map((t) => t.name)).toEqual(['netfence_bt']);
    expect(JSON.stringify(c.val.plan.nft)).toContain('"queue"');
  });

  it('resolves the handler module next to itself (sources: blocker-handler.ts)', () => {
    expect(dpiHandlerPath()).toMatch(/src\/dpi\/blocker-handler\.ts$/);
  });

  it('does nothing before start(): stats are zero, stop() is a no-op, iterators end at stop only', async () => {
    const b = new DpiBlocker();
    const s = (await b.stats()).unwrap();
    expect(s).toMatchObject({ running: false, flowsSeen: 0, detections: 0, bypassed: 0, dropped: 0, queues: [] });
    expect((await b.stop()).ok).toBe(true);
  });
});

describe('DpiBlocker detections (worker events, no kernel)', () => {
  const det = (over: Partial<DpiHandlerDetection> = {}): DpiHandlerDetection => ({
    kind: 'detection',
    transport: 'udp',
    family: 4,
    client: { addr: '198.18.2.2', port: 6881 },
    server: { addr: '198.18.1.2', port: 6881 },
    reason: 'uTP',
    detection: 'utp',
    peers: true,
    atPacket: 3,
    monitored: false,
    ...over,
  });
  type Feed = { onWorkerEvent(queue: number, data: unknown): void };

  it('emits detection events, feeds the iterator and the blocklist (responder, with the TTL), sums counters', async () => {
    const adds: { entries: string[]; ttl?: number }[] = [];
    const blocklist = { add: async (entries: string[], o?: { ttl?: number }) => (adds.push({ entries, ttl: o?.ttl }), Ok({ added: entries.length })) };
    const b = new DpiBlocker({ blocklist, blockTtl: 60 });
    const events: string[] = [];
    b.on('detection', (d) => events.push(`${d.flow.transport} ${d.action} ${d.blocked.join(',')}`));
    const it = b.detections();
    (b as unknown as Feed).onWorkerEvent(3, det());
    (b as unknown as Feed).onWorkerEvent(3, det({ peers: false, detection: 'tracker' }));
    (b as unknown as Feed).onWorkerEvent(3, { kind: 'counters', counters: { packets: 5, undecodable: 0, flows: 2, detections: 2, cacheHits: 0, benign: 1, dropped: 3, accepted: 1 } });
    (b as unknown as Feed).onWorkerEvent(4, { kind: 'counters', counters: { packets: 1, undecodable: 0, flows: 1, detections: 0, cacheHits: 0, benign: 1, dropped: 0, accepted: 1 } });
    expect(events).toEqual(['udp dropped 198.18.1.2', 'udp dropped ']);
    expect((await it.next()).value).toMatchObject({ queue: 3, reason: 'uTP', blocked: ['198.18.1.2'] });
    await new Promise((r) => setTimeout(r, 10));
    expect(adds).toEqual([{ entries: ['198.18.1.2'], ttl: 60 }]);
    expect((await b.stats()).unwrap()).toMatchObject({ flowsSeen: 3, detections: 2, bypassed: 2, dropped: 3, packetsInspected: 6, blocklisted: 1, blocklistErrors: 0 });
  });

  it('blockPeers chooses the addresses; monitor-only detections are never blocked; blocklist errors are counted', async () => {
    const adds: string[][] = [];
    const blocklist = { add: async (entries: string[]) => (adds.push(entries), Err(new Error('map full'))) };
    const b = new DpiBlocker({ blocklist, blockPeers: (d) => [d.flow.client.addr, d.flow.server.addr].filter((a) => !a.startsWith('198.18.1.')) });
    const warnings: string[] = [];
    b.on('warning', (e) => warnings.push(e.message));
    (b as unknown as Feed).onWorkerEvent(1, det());
    (b as unknown as Feed).onWorkerEvent(1, det({ monitored: true }));
    await new Promise((r) => setTimeout(r, 10));
    expect(adds).toEqual([['198.18.2.2']]);
    expect(warnings[0]).toMatch(/map full/);
    expect((await b.stats()).unwrap().blocklistErrors).toBe(1);
    const both = new DpiBlocker({ blocklist: { add: async (e: string[]) => (adds.push(e), Ok(undefined)) }, blockPeers: 'both' });
    (both as unknown as Feed).onWorkerEvent(1, det());
    expect(adds[1]).toEqual(['198.18.1.2', '198.18.2.2']);
  });
});

function queued(payload: number[], id: number): QueuedPacket {
  return { queue: 1, id, hwProtocol: 0x0800, hook: 2, hookName: 'forward', mark: 0, payload: Buffer.from(payload), length: payload.length } as unknown as QueuedPacket;
}

async function handler(options: DpiHandlerOptions) {
  const events: unknown[] = [];
  const h = await createPacketHandler({ queue: 1, options, failOpen: true, emit: (d) => events.push(d) });
  let id = 0;
  const feed = async (p: number[]): Promise<Decision> => (await h({ ...queued(p, ++id) })) as Decision;
  const detections = () => events.filter((e): e is DpiHandlerDetection => (e as { kind: string }).kind === 'detection');
  const settle = () => new Promise((r) => setTimeout(r, 300));
  const counters = () => (events.filter((e) => (e as { kind: string }).kind === 'counters').pop() as { counters: DpiHandlerCounters } | undefined)?.counters;
  return { feed, detections, counters, settle };
}

const A = '198.18.1.2';
const B = '198.18.2.2';
const syn = (s: string, d: string, sp: number, dp: number) => ipv4Packet(s, d, { proto: 'tcp', sport: sp, dport: dp, flags: 0x02, seq: 999 });
const data = (s: string, d: string, sp: number, dp: number, payload: Uint8Array | string, seq = 1000) => ipv4Packet(s, d, { proto: 'tcp', sport: sp, dport: dp, payload, seq });

describe('the worker handler module', () => {
  it('a BitTorrent handshake makes the flow bad: detection with 5-tuple and info-hash, later packets bad too', async () => {
    const h = await handler({ monitorOnly: false, classifiers: ['bittorrent'] });
    expect(await h.feed(syn(A, B, 40000, 6881))).toBe('accept');
    expect(await h.feed(data(A, B, 40000, 6881, btHandshake('aa'.repeat(20))))).toBe('bad');
    expect(await h.feed(data(A, B, 40000, 6881, 'more', 1068))).toBe('bad');
    const d = h.detections();
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ transport: 'tcp', family: 4, client: { addr: A, port: 40000 }, server: { addr: B, port: 6881 }, detection: 'handshake', infoHash: 'aa'.repeat(20), peers: true, monitored: false });
    await h.settle();
    expect(h.counters()).toMatchObject({ flows: 1, detections: 1, dropped: 2, accepted: 1, benign: 0 });
  });

  it('monitor-only reports the detection and answers benign (the flow bypasses the queue, nothing dropped)', async () => {
    const h = await handler({ monitorOnly: true, classifiers: ['bittorrent'] });
    await h.feed(syn(A, B, 40001, 51413));
    expect(await h.feed(data(A, B, 40001, 51413, btHandshake()))).toBe('benign');
    expect(h.detections()[0]).toMatchObject({ monitored: true });
    expect(h.counters()).toMatchObject({ detections: 1, dropped: 0 });
  });

  it('uTP over IPv6 is detected; the peer cache then judges a new flow to that peer at once', async () => {
    const h = await handler({ monitorOnly: false, classifiers: ['bittorrent'] });
    const u = (s: string, d: string, sp: number, dp: number, p: number[]) => ipv6Packet(s, d, { proto: 'udp', sport: sp, dport: dp, payload: p });
    expect(await h.feed(u('fd00:1::2', 'fd00:2::2', 6881, 6881, utp(4, 1000, 5, 100, 0)))).toBe('accept');
    expect(await h.feed(u('fd00:2::2', 'fd00:1::2', 6881, 6881, utp(2, 1000, 6, 200, 100)))).toBe('bad');
    expect(h.detections()[0]).toMatchObject({ transport: 'udp', family: 6, detection: 'utp' });
    // A TCP connection to the same peer endpoint: judged from the cache on its first packet.
    expect(await h.feed(ipv6Packet('fd00:1::2', 'fd00:2::2', { proto: 'tcp', sport: 40100, dport: 6881, flags: 0x02 }))).toBe('bad');
    expect(h.detections()[1]).toMatchObject({ detection: 'cache', transport: 'tcp' });
    expect(h.counters()).toMatchObject({ cacheHits: 1 });
  });

  it('ordinary HTTP is not bad; non-IP payloads are accepted and counted', async () => {
    const h = await handler({ monitorOnly: false, classifiers: ['bittorrent'] });
    await h.feed(syn(A, B, 40002, 80));
    const d = await h.feed(data(A, B, 40002, 80, 'GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: curl/7.88.1\r\n\r\n'));
    expect(['accept', 'benign']).toContain(d);
    expect(await h.feed([0x00, 0x01, 0x02])).toBe('accept');
    expect(h.detections()).toHaveLength(0);
    await h.settle();
    expect(h.counters()).toMatchObject({ undecodable: 1, detections: 0, dropped: 0 });
  });

  it('loads user classifier modules by path, with options, in run order', async () => {
    const h = await handler({ monitorOnly: false, classifiers: [{ module: CUSTOM, options: { word: 'EVIL' } }, 'bittorrent'] });
    await h.feed(syn(A, B, 40003, 8080));
    expect(await h.feed(data(A, B, 40003, 8080, 'EVIL request'))).toBe('bad');
    expect(h.detections()[0]).toMatchObject({ classifier: 'forbidden-word', detection: 'custom', peers: false });
    await h.feed(syn(A, B, 40004, 8080));
    expect(await h.feed(data(A, B, 40004, 8080, 'fine request'))).toBe('benign');
  });

  it('a module without a classifier fails to load with a clear message', async () => {
    await expect(createPacketHandler({ queue: 1, options: { monitorOnly: false, classifiers: [{ module: fileURLToPath(import.meta.url).replace('dpi-blocker.test.ts', 'dpi-fixtures.ts') }] }, failOpen: true, emit: () => undefined })).rejects.toThrow(/exports no classifier/);
  });
});

describe('the worker handler module: counters', () => {
  it('a benign decision is not sent at once (one IPC message per connection); a flush request sends the counters, a detection does at once', async () => {
    const events: { kind: string; counters?: DpiHandlerCounters }[] = [];
    const listeners: ((d: unknown) => void)[] = [];
    const h = await createPacketHandler({ queue: 1, options: { monitorOnly: false, classifiers: ['bittorrent'], countersIntervalMs: 60_000 }, failOpen: true, emit: (d) => events.push(d as never), onMessage: (l) => void listeners.push(l) });
    const syn = (sp: number, dp: number) => ipv4Packet('198.18.1.2', '198.18.2.2', { proto: 'tcp', sport: sp, dport: dp, flags: 0x02, seq: 999 });
    const data = (sp: number, dp: number, payload: Uint8Array | string) => ipv4Packet('198.18.1.2', '198.18.2.2', { proto: 'tcp', sport: sp, dport: dp, payload, seq: 1000, ack: 1 });
    expect(await h(queued(syn(40000, 80), 1))).toBe('accept');
    const first = events.length; // the first packet's counters go out (nothing sent yet)
    expect(await h(queued(data(40000, 80, 'GET / HTTP/1.0\r\n\r\n'), 2))).toBe('benign');
    expect(events.length).toBe(first);
    for (const l of listeners) l({ kind: COUNTERS_FLUSH });
    expect(events.at(-1)).toMatchObject({ kind: 'counters', counters: { flows: 1, benign: 1, packets: 2 } });
    await h(queued(syn(40001, 6881), 3));
    expect(await h(queued(data(40001, 6881, btHandshake()), 4))).toBe('bad');
    expect(events.filter((e) => e.kind === 'counters').at(-1)).toMatchObject({ counters: { flows: 2, detections: 1, benign: 1 } });
  });
});
