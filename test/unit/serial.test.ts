import { describe, expect, it } from 'vitest';
import { KeyedSerialQueue, SerialQueue } from '../../src/util/serial.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('SerialQueue', () => {
  it('runs jobs one at a time, in call order', async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const job = (name: string, ticks: number) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      for (let i = 0; i < ticks; i++) await tick();
      log.push(`end ${name}`);
      running--;
      return name;
    };
    const results = await Promise.all([q.run(job('a', 3)), q.run(job('b', 0)), q.run(job('c', 1))]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(q.pending).toBe(0);
  });

  it('a failed job fails its caller only; the next one runs', async () => {
    const q = new SerialQueue();
    const rejected = q.run(async () => {
      throw new Error('boom');
    });
    const thrown = q.run((() => {
      throw new Error('sync boom');
    }) as () => Promise<never>);
    const after = q.run(async () => 'next');
    await expect(rejected).rejects.toThrow('boom');
    await expect(thrown).rejects.toThrow('sync boom');
    await expect(after).resolves.toBe('next');
  });

  it('reentrant: a job queued from inside a job runs at once', async () => {
    const q = new SerialQueue({ reentrant: true });
    const log: string[] = [];
    const outer = q.run(async () => {
      log.push('outer');
      const inner = await q.run(async () => {
        log.push('inner');
        return 1;
      });
      return inner + 1;
    });
    const later = q.run(async () => log.push('later'));
    expect(await outer).toBe(2);
    await later;
    expect(log).toEqual(['outer', 'inner', 'later']);
  });

  it('not reentrant: a job queued from inside a job waits for it', async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let inner: Promise<unknown> | undefined;
    await q.run(async () => {
      inner = q.run(async () => log.push('inner'));
      await tick();
      log.push('outer done');
    });
    await inner;
    expect(log).toEqual(['outer done', 'inner']);
  });
});

describe('KeyedSerialQueue', () => {
  it('serializes per key, runs keys independently, forgets idle keys', async () => {
    const q = new KeyedSerialQueue();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a1 = q.run('a', async () => {
      await gate;
      log.push('a1');
    });
    const a2 = q.run('a', async () => log.push('a2'));
    const b1 = q.run('b', async () => log.push('b1'));
    await b1;
    expect(log).toEqual(['b1']); // b did not wait for a
    release();
    await Promise.all([a1, a2]);
    expect(log).toEqual(['b1', 'a1', 'a2']);
    await tick();
    expect(q.size).toBe(0);
    const failed = q.run('a', async () => {
      throw new Error('x');
    });
    await expect(failed).rejects.toThrow('x');
    await expect(q.run('a', async () => 'ok')).resolves.toBe('ok');
    await tick();
    expect(q.size).toBe(0);
  });
});
