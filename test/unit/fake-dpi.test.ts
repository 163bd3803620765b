/**
 * DpiBlocker orchestration on a FakeHost: the queue workers are fake
 * processes that answer the IPC protocol (init → ready, close → exit), the
 * steering rules go into the namespace through the executor, destroy takes
 * them back and closes the workers; a worker that cannot bind leaves no rule.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { FakeHost, type FakeProcess } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { primeFakeCapabilities } from './fake-caps.js';

const NS = 'dpi-fake';
let fake: FakeHost;

/** A worker that binds its queue when told to start and exits when told to close. */
function worker(p: FakeProcess, bind = true): void {
  p.on('sent', (m: { type: string; init?: { queue: number } }) => {
    if (m.type === 'init') {
      if (bind) p.emitMessage({ type: 'ready', queue: m.init!.queue, pid: p.pid, connmarkVia: 'ct', rcvbuf: 1 << 20 });
      else p.emitMessage({ type: 'error', message: 'bind: Device or resource busy (another process holds the queue)' });
    }
    if (m.type === 'close') queueMicrotask(() => p.exit(0));
  });
}

beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS] });
  primeFakeCapabilities(NS);
});

const steeringTables = (): string[] => [...fake.nftOf(NS).state.tables.keys()];

describe('DpiBlocker on a FakeHost', () => {
  it('apply: one worker per queue in the namespace, steering rules with nft queue; destroy removes the rules and closes the workers', async () => {
    fake.onSpawn(() => true, (p) => worker(p));
    const d = new DpiBlocker({ netns: NS, name: 'fk', queues: [20, 2], hooks: ['forward'], families: ['ipv4'], protocols: ['tcp'], nftQueue: true });
    await withHost(fake, async () => {
      const r = await d.apply();
      expect(r.err ? r.val.message : 'ok').toBe('ok');
      expect(fake.spawned).toHaveLength(2);
      expect(fake.spawned.every((p) => p.options.netns === NS && p.options.ipc === true)).toBe(true);
      expect(fake.spawned.map((p) => (p.sent[0] as { init: { queue: number } }).init.queue)).toEqual([20, 21]);
      // the first packets of forwarded IPv4 TCP flows go to queues 20-21 (fanout), bypassed when no worker reads
      const steer = fake.nftOf(NS).rules('inet', 'netfence_fk', 'dpi_forward') ?? [];
      expect(steer.some((r) => JSON.stringify(r.expr).includes('{"queue":{"num":{"range":[20,21]}'))).toBe(true);
      expect(steeringTables().length).toBeGreaterThan(0);
      expect(fake.nftOf().state.tables.size).toBe(0);
      expect((await d.destroy()).ok).toBe(true);
    });
    expect(steeringTables()).toEqual([]);
    expect(fake.spawned.every((p) => !p.alive)).toBe(true);
  });

  it('a worker that cannot bind its queue: apply fails, no steering rule is left, no worker keeps running', async () => {
    let n = 0;
    fake.onSpawn(() => true, (p) => worker(p, n++ === 0));
    const d = new DpiBlocker({ netns: NS, name: 'fk', queues: [30, 2], hooks: ['forward'], families: ['ipv4'], protocols: ['tcp'], nftQueue: true });
    const r = await withHost(fake, () => d.apply());
    expect(r.err && r.val.message).toMatch(/queue 31|Device or resource busy/);
    expect(steeringTables()).toEqual([]);
    await new Promise((res) => setTimeout(res, 10));
    expect(fake.spawned.every((p) => !p.alive)).toBe(true);
  });

  it('the rules batch refused by the kernel: apply fails, the workers are closed again', async () => {
    fake.onSpawn(() => true, (p) => worker(p));
    const d = new DpiBlocker({ netns: NS, name: 'fk', queues: [40, 1], hooks: ['forward'], families: ['ipv4'], protocols: ['tcp'], nftQueue: true });
    fake.failNftBatch(1, { netns: NS });
    const r = await withHost(fake, () => d.apply());
    expect(r.err).toBe(true);
    expect(steeringTables()).toEqual([]);
    await new Promise((res) => setTimeout(res, 10));
    expect(fake.spawned.every((p) => !p.alive)).toBe(true);
  });
});
