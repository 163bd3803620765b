import { describe, expect, it } from 'vitest';
import { withLab } from '../../src/lab/index.js';
import { nftApply, nftList, nftListMany, nftStats, listingObjects } from '../../src/host/nft.js';
import { nftProgram, run } from '../../src/host/run.js';
import { libraryFor, nftApplyPreferInProcess } from '../../src/host/libnftables.js';

const T = 'nf_runner';
const table = { add: { table: { family: 'inet', name: T } } };
const chain = (name: string) => ({ add: { chain: { family: 'inet', table: T, name } } });
const set = { add: { set: { family: 'inet', table: T, name: 'blocked', type: 'ipv4_addr', flags: ['interval'] } } };
const elem = (a: string) => ({ add: { element: { family: 'inet', table: T, name: 'blocked', elem: [a] } } });
const rule = (c: string) => ({ add: { rule: { family: 'inet', table: T, chain: c, expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@blocked' } }, { drop: null }] } } });

async function ruleset(netns: string): Promise<string> {
  const r = await run(['nft', 'list', 'ruleset'], { netns });
  if (r.err) throw r.val;
  return r.val.stdout;
}

describe('nft runner', () => {
  it('applies a batch through a real pipe (nft 1.0.x opens /dev/stdin) and lists it back', async () => {
    await withLab('nftrun', async (lab) => {
      const h = await lab.host('a');
      const before = { ...nftStats };
      // a small commit would run in-process through libnftables (live-changes.test.ts proves that path): keep this one in the nft process
      const saved = process.env.NETFENCE_LIBNFTABLES;
      process.env.NETFENCE_LIBNFTABLES = 'off';
      const r = await nftApply([table, chain('c'), set, { add: { element: { family: 'inet', table: T, name: 'blocked', elem: [{ prefix: { addr: '198.18.5.0', len: 24 } }] } } }, rule('c')], { netns: h.netns }).finally(() => {
        if (saved === undefined) delete process.env.NETFENCE_LIBNFTABLES;
        else process.env.NETFENCE_LIBNFTABLES = saved;
      });
      expect(r.ok, r.err ? r.val.message : '').toBe(true);
      // the success path starts exactly one process
      expect(nftStats.applies - before.applies).toBe(1);
      expect(nftStats.bisectChecks - before.bisectChecks).toBe(0);
      const l = await nftList(['table', 'inet', T], { netns: h.netns });
      expect(l.ok).toBe(true);
      const kinds = listingObjects(l.unwrap()).map((o) => o.kind);
      // nft 1.0.x lists sets before chains, 1.1.x chains before sets: the order of kinds is nft's business
      expect(kinds[0]).toBe('table');
      expect([...kinds].sort()).toEqual(['chain', 'rule', 'set', 'table']);
      const many = await nftListMany([{ list: { tables: null } }, { list: { set: { family: 'inet', table: T, name: 'blocked' } } }], { netns: h.netns });
      expect(many.ok).toBe(true);
      expect(many.unwrap()).toHaveLength(2);
      expect(await ruleset(h.netns)).toContain('198.18.5.0/24');
    });
  });

  it('check mode (-c) validates with the kernel and commits nothing', async () => {
    await withLab('nftchk', async (lab) => {
      const h = await lab.host('a');
      const ok = await nftApply([table, chain('c'), rule('nochain-yet')].slice(0, 2), { netns: h.netns, check: true });
      expect(ok.ok).toBe(true);
      expect(await ruleset(h.netns)).toBe('');
      // a rule in a chain that does not exist: only the kernel knows
      const bad = await nftApply([table, chain('c'), rule('missing')], { netns: h.netns, check: true });
      expect(bad.err).toBe(true);
      expect(bad.err && bad.val.failure.failedIndex).toBe(2);
      expect(await ruleset(h.netns)).toBe('');
    });
  });

  it('names the failed command of a batch, for every position', async () => {
    await withLab('nftbis', async (lab) => {
      const h = await lab.host('a');
      const good = [table, chain('c'), set, ...Array.from({ length: 12 }, (_, i) => elem(`198.18.6.${i}`)), rule('c')];
      for (const k of [0, 1, 7, good.length - 1, good.length]) {
        const cmds = [...good];
        // kernel-level error (no parser index in nft's message): a rule for a chain that does not exist
        cmds.splice(k, 0, rule('missing'));
        const r = await nftApply(cmds, { netns: h.netns, render: (c) => `RENDERED ${JSON.stringify(c).length}` });
        expect(r.err).toBe(true);
        if (r.ok) continue;
        expect(r.val.failure.failedIndex).toBe(k);
        expect(r.val.failure.failedCommand).toEqual(rule('missing'));
        expect(r.val.failure.failedText).toMatch(/^RENDERED /);
        expect(r.val.message).toContain(`failed command #${k}`);
        expect(await ruleset(h.netns)).toBe('');
      }
      // parser-level error: nft says the index itself, no bisection needed
      const before = nftStats.bisectChecks;
      const cmds: unknown[] = [...good];
      cmds.splice(5, 0, { add: { rule: { family: 'inet', table: T, chain: 'c', expr: [{ bogus: null }] } } });
      const r = await nftApply(cmds, { netns: h.netns });
      expect(r.err && r.val.failure.failedIndex).toBe(5);
      expect(r.err && r.val.failure.failedText).toContain('bogus');
      expect(nftStats.bisectChecks).toBe(before);
    });
  });

  it('handles a large batch (100k elements, 1.4 MB of JSON) in one transaction', async () => {
    await withLab('nftbig', async (lab) => {
      const h = await lab.host('a');
      const elems: string[] = [];
      for (let i = 0; i < 100_000; i++) elems.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      const cmds = [table, { add: { set: { family: 'inet', table: T, name: 'big', type: 'ipv4_addr' } } }, { add: { element: { family: 'inet', table: T, name: 'big', elem: elems } } }];
      const t0 = performance.now();
      const r = await nftApply(cmds, { netns: h.netns });
      const ms = performance.now() - t0;
      expect(r.ok, r.err ? r.val.message : '').toBe(true);
      console.log(`[nft-runner] 100k elements applied in ${ms.toFixed(0)} ms (${(JSON.stringify(cmds).length / 1e6).toFixed(1)} MB JSON)`);
      const l = await nftList(['set', 'inet', T, 'big'], { netns: h.netns });
      const set0 = listingObjects(l.unwrap()).find((o) => o.kind === 'set');
      expect((set0?.value.elem as unknown[]).length).toBe(100_000);
    });
  });

  it('streams a big batch to nft in pieces and still names the failed command after it', async () => {
    await withLab('nftstream', async (lab) => {
      const h = await lab.host('a');
      // 60,000 IPv6 elements: ~1.2 MB of JSON, written in slices and pieces (src/nft/document.ts)
      const elems = Array.from({ length: 60_000 }, (_, i) => `fd00::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`);
      const big = { add: { set: { family: 'inet', table: T, name: 'big6', type: 'ipv6_addr', elem: elems, flags: ['timeout'] } } };
      const good = [table, chain('c'), set, big, rule('c'), rule('c')];
      const bad = [...good.slice(0, 5), rule('missing'), ...good.slice(5)];
      const r = await nftApply(bad, { netns: h.netns, streamAboveChars: 0 }); // streamed whatever its size
      expect(r.err).toBe(true);
      expect(r.err && r.val.failure.failedIndex).toBe(5);
      expect(r.err && r.val.failure.failedCommand).toEqual(rule('missing'));
      expect(r.err && r.val.failure.input?.length).toBe(JSON.stringify({ nftables: bad }).length); // the whole document, for the error
      expect(await ruleset(h.netns)).toBe('');
      const ok = await nftApply(good, { netns: h.netns, streamAboveChars: 0 });
      expect(ok.ok, ok.err ? ok.val.message : '').toBe(true);
      const l = await nftList(['set', 'inet', T, 'big6'], { netns: h.netns });
      const s = listingObjects(l.unwrap()).find((o) => o.kind === 'set');
      expect((s?.value.elem as unknown[]).length).toBe(60_000);
    });
  });

  it('commits a batch too big for the event loop on the libnftables thread, in the right namespace, and a refused one through the process', async () => {
    await withLab('nftthr', async (lab) => {
      const a = await lab.host('a');
      const b = await lab.host('b');
      // 40,000 IPv4 elements: ~0.6 MB of JSON, above the in-process limit, below the streaming limit
      const uniq = Array.from({ length: 40_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      const big = { add: { set: { family: 'inet', table: T, name: 'big', type: 'ipv4_addr', elem: uniq } } };
      const before = { ...nftStats };
      let ticks = 0;
      const timer = setInterval(() => ticks++, 2);
      const bigRule = { add: { rule: { family: 'inet', table: T, chain: 'c', expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@big' } }, { drop: null }] } } };
      const r = await nftApplyPreferInProcess([table, chain('c'), big, bigRule], { netns: a.netns }).finally(() => clearInterval(timer));
      expect(r.ok, r.err ? r.val.message : '').toBe(true);
      // where the host's nft has its library, the thread committed it (no nft process); otherwise one process did
      const expectThread = libraryFor(nftProgram().program) !== undefined && process.env.NETFENCE_LIBNFTABLES !== 'off';
      expect(nftStats.threadApplies - before.threadApplies).toBe(expectThread ? 1 : 0);
      expect(nftStats.applies - before.applies).toBe(1);
      if (expectThread) expect(ticks).toBeGreaterThan(0); // the event loop ran while the batch was committed
      const inA = listingObjects((await nftList(['set', 'inet', T, 'big'], { netns: a.netns })).unwrap()).find((o) => o.kind === 'set');
      expect((inA?.value.elem as unknown[]).length).toBe(uniq.length);
      // the thread went back to its own namespace: the next batch lands in b, and a is unchanged
      const r2 = await nftApplyPreferInProcess([table, { add: { set: { family: 'inet', table: T, name: 'other', type: 'ipv4_addr', elem: uniq } } }], { netns: b.netns });
      expect(r2.ok, r2.err ? r2.val.message : '').toBe(true);
      expect(await ruleset(b.netns)).toContain('set other');
      expect(await ruleset(a.netns)).not.toContain('set other');
      // a refused batch changes nothing, and the failed command is named (by the process path)
      const bad = [{ delete: { table: { family: 'inet', name: T } } }, table, chain('c'), { add: { set: { ...big.add.set, name: 'big2' } } }, rule('missing')];
      const r3 = await nftApplyPreferInProcess(bad, { netns: a.netns });
      expect(r3.err).toBe(true);
      expect(r3.err && r3.val.failure.failedIndex).toBe(4);
      expect(r3.err && r3.val.failure.failedCommand).toEqual(rule('missing'));
      expect(await ruleset(a.netns)).not.toContain('big2');
      expect(await ruleset(a.netns)).toContain('set big');
    });
  });

  it('refuses list targets that are not plain words', async () => {
    const r = await nftList(['table', 'inet', 'x; flush ruleset']);
    expect(r.err).toBe(true);
    expect(r.err && r.val.message).toContain('refused');
  });
});
