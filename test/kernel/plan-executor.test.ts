import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { apply, executorStats } from '../../src/plan/executor.js';
import { emptyPlan, type Plan, type Step } from '../../src/plan/types.js';
import { run } from '../../src/host/run.js';
import type { ApplyError } from '../../src/errors.js';

const T = { family: 'inet' as const, name: 'nf_exec' };
const A = '198.18.30.1';
const B = '198.18.30.2';

async function pair(lab: Lab): Promise<{ a: LabHost; b: LabHost }> {
  const a = await lab.host('a');
  const b = await lab.host('b');
  await lab.link({ host: a, addrs: [`${A}/24`] }, { host: b, addrs: [`${B}/24`] });
  return { a, b };
}

/** On `netns`: drop ICMP arriving at the host. */
function dropIcmp(netns: string): Plan {
  const p = emptyPlan('test:executor', netns);
  p.tables.push(T);
  p.nft.push(
    { add: { chain: { family: 'inet', table: T.name, name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
    { add: { rule: { family: 'inet', table: T.name, chain: 'input', expr: [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'icmp' } }, { drop: null }] } } },
  );
  return p;
}

async function nftText(netns: string): Promise<string> {
  const r = await run(['nft', 'list', 'ruleset'], { netns });
  if (r.err) throw r.val;
  return r.val.stdout;
}

async function sysctl(netns: string | undefined, key: string): Promise<string> {
  const r = await run(['sysctl', '-n', key], { netns });
  if (r.err) throw r.val;
  return r.val.stdout.trim();
}

const addrStep: Step = {
  id: 'ip:addr:lo',
  description: 'add 198.18.77.1/32 on lo',
  do: [{ kind: 'exec', argv: ['ip', 'addr', 'add', '198.18.77.1/32', 'dev', 'lo'] }],
  undo: [{ kind: 'exec', argv: ['ip', 'addr', 'del', '198.18.77.1/32', 'dev', 'lo'] }],
};
const ttlStep: Step = {
  id: 'sysctl:ttl',
  description: 'default TTL 99 (netns-scoped write)',
  do: [{ kind: 'write', path: '/proc/sys/net/ipv4/ip_default_ttl', data: '99\n' }],
  undo: [{ kind: 'write', path: '/proc/sys/net/ipv4/ip_default_ttl', data: '64\n' }],
};
const badTcStep: Step = {
  id: 'tc:qdisc:nonexist0',
  description: 'htb on a device that does not exist',
  do: [{ kind: 'exec', argv: ['tc', 'qdisc', 'add', 'dev', 'nonexist0', 'root', 'handle', '1:', 'htb'] }],
  undo: [{ kind: 'exec', argv: ['tc', 'qdisc', 'del', 'dev', 'nonexist0', 'root'] }],
};

describe('plan executor', () => {
  it('proves apply and rollback with packets: ICMP dropped after apply, back after rollback', async () => {
    await withLab('exepkt', async (lab) => {
      const { a, b } = await pair(lab);
      expect(await lab.ping(a, B, 2)).toBe(2);
      const t0 = performance.now();
      const r = await apply(dropIcmp(b.netns));
      const ms = performance.now() - t0;
      expect(r.ok, r.err ? r.val.message : '').toBe(true);
      console.log(`[plan-executor] apply of a 2-command plan: ${ms.toFixed(1)} ms`, r.unwrap().timings);
      expect(await lab.ping(a, B, 2)).toBe(0);
      const t1 = performance.now();
      expect((await r.unwrap().rollback()).ok).toBe(true);
      console.log(`[plan-executor] rollback: ${(performance.now() - t1).toFixed(1)} ms`);
      expect(r.unwrap().state).toBe('rolled-back');
      expect(await lab.ping(a, B, 2)).toBe(2);
      expect(await nftText(b.netns)).toBe('');
      // rollback twice is a no-op
      expect((await r.unwrap().rollback()).ok).toBe(true);
    });
  });

  it('a step failing half-way undoes the earlier steps and restores nft (new and pre-existing table)', async () => {
    await withLab('exestep', async (lab) => {
      const { b } = await pair(lab);
      const hostTtl = await sysctl(undefined, 'net.ipv4.ip_default_ttl');
      for (const preexisting of [false, true]) {
        if (preexisting) {
          const base = emptyPlan('test:executor', b.netns);
          base.tables.push(T);
          base.nft.push({ add: { set: { family: 'inet', table: T.name, name: 'keep', type: 'ipv4_addr', elem: ['198.18.31.1'] } } });
          expect((await apply(base)).ok).toBe(true);
        }
        const before = await nftText(b.netns);
        const p = dropIcmp(b.netns);
        p.steps.push(addrStep, ttlStep, badTcStep);
        const r = await apply(p);
        expect(r.err).toBe(true);
        const e = r.val as ApplyError;
        expect(e.phase).toBe('tc:qdisc:nonexist0');
        expect(e.restored, e.message).toBe(true);
        expect(e.message).toContain('nonexist0');
        expect(await nftText(b.netns)).toBe(before);
        const lo = await lab.sh(b, ['ip', 'addr', 'show', 'dev', 'lo']);
        expect(lo.stdout).not.toContain('198.18.77.1');
        expect(await sysctl(b.netns, 'net.ipv4.ip_default_ttl')).toBe('64');
      }
      // the netns-scoped write never reached the machine's own namespace
      expect(await sysctl(undefined, 'net.ipv4.ip_default_ttl')).toBe(hostTtl);
      // and the steps do work when nothing fails
      const ok = dropIcmp(b.netns);
      ok.steps.push(addrStep, ttlStep);
      const r = await apply(ok);
      expect(r.ok, r.err ? r.val.message : '').toBe(true);
      expect((await lab.sh(b, ['ip', 'addr', 'show', 'dev', 'lo'])).stdout).toContain('198.18.77.1');
      expect(await sysctl(b.netns, 'net.ipv4.ip_default_ttl')).toBe('99');
      expect(await sysctl(undefined, 'net.ipv4.ip_default_ttl')).toBe(hostTtl);
      expect((await r.unwrap().rollback()).ok).toBe(true);
      expect((await lab.sh(b, ['ip', 'addr', 'show', 'dev', 'lo'])).stdout).not.toContain('198.18.77.1');
      expect(await sysctl(b.netns, 'net.ipv4.ip_default_ttl')).toBe('64');
      // back to the pre-existing table with its set, as before this apply
      const after = await nftText(b.netns);
      expect(after).toContain('198.18.31.1');
      expect(after).not.toContain('icmp');
    });
  });

  it('a failing health check restores the previous state (the check itself sends packets)', async () => {
    await withLab('exehealth', async (lab) => {
      const { a, b } = await pair(lab);
      let called = 0;
      const r = await apply(dropIcmp(b.netns), {
        healthCheck: async () => {
          called++;
          return (await lab.ping(a, B, 1)) === 1;
        },
      });
      expect(called).toBe(1);
      expect(r.err && r.val.phase).toBe('health-check');
      expect(r.err && r.val.restored).toBe(true);
      expect(await nftText(b.netns)).toBe('');
      expect(await lab.ping(a, B, 2)).toBe(2);
      // a throwing health check counts as failed
      const r2 = await apply(dropIcmp(b.netns), { healthCheck: async () => { throw new Error('db unreachable'); } });
      expect(r2.err && r2.val.phase).toBe('health-check');
      expect(r2.err && r2.val.message).toContain('db unreachable');
      expect(await nftText(b.netns)).toBe('');
    });
  });

  it('reverts by itself when not confirmed in time, and keeps the plan when confirmed', async () => {
    await withLab('execonfirm', async (lab) => {
      const { a, b } = await pair(lab);
      // not confirmed → reverted
      let timedOut: ApplyError | undefined;
      // onConfirmTimeout is called once the revert has finished: wait for it, not for a fixed time
      let fired!: () => void;
      const revertDone = new Promise<void>((res) => (fired = res));
      const r = await apply(dropIcmp(b.netns), { confirmWithinMs: 400, onConfirmTimeout: (e) => { timedOut = e; fired(); } });
      expect(r.ok).toBe(true);
      expect(await lab.ping(a, B, 1, 0.2)).toBe(0);
      await revertDone;
      expect(r.unwrap().state).toBe('rolled-back');
      expect(timedOut?.phase).toBe('confirm-timeout');
      expect(timedOut?.restored).toBe(true);
      expect(await lab.ping(a, B, 2)).toBe(2);
      expect(await nftText(b.netns)).toBe('');

      // confirmed in time → kept after the deadline
      const c = await apply(dropIcmp(b.netns), { confirmWithinMs: 400, onConfirmTimeout: () => { throw new Error('must not fire'); } });
      expect(c.ok).toBe(true);
      c.unwrap().confirm();
      expect(c.unwrap().state).toBe('confirmed');
      await new Promise((res) => setTimeout(res, 700));
      expect(c.unwrap().state).toBe('confirmed');
      expect(await lab.ping(a, B, 1, 0.3)).toBe(0);
      // a confirmed plan can still be rolled back explicitly
      expect((await c.unwrap().rollback()).ok).toBe(true);
      expect(await lab.ping(a, B, 2)).toBe(2);
    });
  });

  it("snapshot 'auto' never lists the tables of a pure nft plan; 'always' makes rollback exact", async () => {
    await withLab('exesnap', async (lab) => {
      const { b } = await pair(lab);
      const base = emptyPlan('test:executor', b.netns);
      base.tables.push(T);
      base.nft.push({ add: { set: { family: 'inet', table: T.name, name: 'big', type: 'ipv4_addr', elem: Array.from({ length: 5000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) } } });
      expect((await apply(base)).ok).toBe(true);
      const before = await nftText(b.netns);
      const one = (): Plan => {
        const p = emptyPlan('test:executor', b.netns);
        p.tables.push(T);
        p.nft.push({ add: { element: { family: 'inet', table: T.name, name: 'big', elem: ['10.99.0.1'] } } });
        return p;
      };
      const s0 = executorStats.tablesSnapshotted;
      const auto = await apply(one());
      expect(auto.ok).toBe(true);
      expect(executorStats.tablesSnapshotted).toBe(s0);
      // without a snapshot, rollback cannot restore a table that existed: it says so
      const rb = await auto.unwrap().rollback();
      expect(rb.err).toBe(true);
      expect(rb.err && rb.val.restored).toBe(false);
      expect(rb.err && rb.val.restoreErrors[0]?.code).toBe('NO_SNAPSHOT');
      expect(await nftText(b.netns)).toContain('10.99.0.1');
      // with 'always', rollback puts the 5000-element set back exactly
      await lab.sh(b, ['nft', 'delete', 'element', 'inet', T.name, 'big', '{ 10.99.0.1 }']);
      expect(await nftText(b.netns)).toBe(before);
      const always = await apply(one(), { snapshot: 'always' });
      expect(executorStats.tablesSnapshotted).toBe(s0 + 1);
      expect(await nftText(b.netns)).toContain('10.99.0.1');
      expect((await always.unwrap().rollback()).ok).toBe(true);
      expect(await nftText(b.netns)).toBe(before);
    });
  });

  it('rejects a plan with XDP attachments but no step implementing them, before touching anything', async () => {
    await withLab('exexdp', async (lab) => {
      const { b } = await pair(lab);
      const p = dropIcmp(b.netns);
      p.xdp.push({ iface: 'eth0', object: '/nonexistent/x.o', program: 'xdp_prog', mode: 'generic', pinDir: '/sys/fs/bpf/netfence/x' });
      const r = await apply(p);
      expect(r.err && r.val.phase).toBe('validate');
      expect(await nftText(b.netns)).toBe('');
      // sanity: the host file we compare against in other tests is readable
      expect(readFileSync('/proc/sys/net/ipv4/ip_default_ttl', 'utf8').trim()).toMatch(/^\d+$/);
    });
  });
});
