/**
 * Atomicity under faults (issue 7): for each class, a failure is injected at
 * EVERY fault point its apply passes (nft rejects the batch, a tc/ip/iptables
 * action fails half-way, the verification fails, the health check fails, the
 * XDP maps/load/attach are refused, the queue workers do not start), and the
 * host must end exactly as before: nft ruleset text, tc qdiscs, classes and
 * filters, `ip -d link` (XDP attachments), IFB devices, bpffs pins — and no
 * journal entry left behind. The confirm timer's expiry is tested the same way.
 */
import { describe, expect, it } from 'vitest';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { Firewall } from '../../src/firewall/index.js';
import { withLab, type Lab } from '../../src/lab/index.js';
import { apply, type AppliedPlan } from '../../src/plan/executor.js';
import { failNth, setFaultHook } from '../../src/plan/faults.js';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyPlan } from '../../src/plan/types.js';
import { JOURNAL_DIR, journalBegin, processIdentity, readJournal, removeJournalEntry, type ApplyJournalEntry } from '../../src/plan/journal.js';
import { reconcile } from '../../src/plan/reconcile.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { crashRoute, crashVmFirewall, crashVmSpec, hostState, journalOf } from './crash-state.js';
import { NetfenceRouteManager, NFTablesManager } from '../../src/integrations/smartproxy.js';
import { run } from '../../src/host/run.js';

interface Attempt {
  ok: boolean;
  error?: string;
  cleanup?: () => Promise<void>;
}

interface Tally {
  points: string[];
  failed: number;
  absorbed: string[];
}

const totals: Record<string, Tally> = {};

/**
 * Run `attempt` once recording its fault points, then once per point with that
 * point failing; after each, the host state must equal `before`.
 */
async function everyPoint(cls: string, netns: string, attempt: () => Promise<Attempt>, normalizeOnSuccess?: (s: Record<string, string>) => Record<string, string>): Promise<Tally> {
  const before = await hostState(netns);
  const rec = failNth(-1);
  setFaultHook(rec.hook);
  let r0: Attempt;
  try {
    r0 = await attempt();
  } finally {
    setFaultHook(undefined);
  }
  expect(r0.error ?? 'ok').toBe('ok');
  await r0.cleanup?.();
  const same = (s: Record<string, string>, ok: boolean): Record<string, string> => (ok && normalizeOnSuccess ? normalizeOnSuccess(s) : s);
  expect(same(await hostState(netns), r0.ok)).toEqual(same(before, r0.ok));
  const tally: Tally = { points: rec.points, failed: 0, absorbed: [] };
  expect(rec.points.length).toBeGreaterThan(0);
  for (let k = 0; k < rec.points.length; k++) {
    const pre = await hostState(netns); // equals \`before\` (normalized), checked below; exact for the program id a re-attach changed
    expect(same(pre, true)).toEqual(same(before, true));
    const f = failNth(k);
    setFaultHook(f.hook);
    let r: Attempt;
    try {
      r = await attempt();
    } finally {
      setFaultHook(undefined);
    }
    if (r.ok) {
      // the fault was absorbed (e.g. native attach refused, generic accepted): undo and compare
      tally.absorbed.push(f.injected ?? `#${k}`);
      await r.cleanup?.();
    } else tally.failed++;
    expect({ point: f.injected, state: same(await hostState(netns), r.ok) }).toEqual({ point: f.injected, state: same(pre, r.ok) });
    expect(journalOf(process.pid)).toEqual([]);
  }
  const rc = await reconcile({ netns });
  expect(rc.ok && rc.val.found.length).toBe(0);
  const prev = totals[cls];
  totals[cls] = prev ? { points: [...prev.points, ...tally.points], failed: prev.failed + tally.failed, absorbed: [...prev.absorbed, ...tally.absorbed] } : tally;
  console.log(`[faults] ${cls}: ${tally.points.length} points (${tally.points.join(', ')}), ${tally.failed} failed cleanly, ${tally.absorbed.length} absorbed (${tally.absorbed.join(', ') || '-'}), 0 left anything behind`);
  return tally;
}

async function twoHosts(lab: Lab): Promise<{ netns: string; iface: string; peer: string }> {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] }, { host: b, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] });
  return { netns: a.netns, iface: l.a, peer: b.netns };
}

function firewall(netns: string, version: number): Firewall {
  const fw = new Firewall({ table: 'nf_rel', family: 'inet', netns }).chain('input', { hook: 'input', priority: 0, policy: 'accept' });
  for (let i = 0; i < version; i++) fw.rule('input', { id: `r${i}`, protocol: 'tcp', dport: 7000 + i, action: 'drop' });
  return fw;
}

/** Wait until the confirm timer of `r` has reverted it. */
function timedOut(): { options: { confirmWithinMs: number; onConfirmTimeout: () => void }; done: Promise<void> } {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return { options: { confirmWithinMs: 50, onConfirmTimeout: () => resolve() }, done };
}

describe('reliability: a fault at any point of apply leaves the host exactly as before', () => {
  it('Firewall: nft rejects, verify fails, health check fails, confirm timer expires', async () => {
    await withLab('rfw', async (lab) => {
      const { netns } = await twoHosts(lab);
      expect((await firewall(netns, 2).apply()).ok).toBe(true); // the old configuration
      await everyPoint('Firewall', netns, async () => {
        const r = await firewall(netns, 5).apply({ healthCheck: async () => true });
        if (r.err) return { ok: false };
        const applied = r.val as AppliedPlan;
        return { ok: true, cleanup: async () => void (await applied.rollback()).unwrap() };
      });
      // confirm timer expires: reverted by itself
      const before = await hostState(netns);
      const t = timedOut();
      const r = await firewall(netns, 5).apply(t.options);
      expect(r.ok).toBe(true);
      await t.done;
      expect(await hostState(netns)).toEqual(before);
      expect(journalOf(process.pid)).toEqual([]);
      totals.Firewall!.failed++;
      totals.Firewall!.points.push('confirm-timeout');
      await firewall(netns, 0).destroy();
    });
  });

  it('Throttler: tc fails half-way (every action of every step), IFB creation fails, health check, confirm timer', async () => {
    await withLab('rtc', async (lab) => {
      const { netns, iface } = await twoHosts(lab);
      const t = new Throttler({ netns, name: 'rel' });
      // egress (htb) and ingress (ifb + htb): every step and action of both
      for (const direction of ['egress', 'ingress'] as const) {
        await everyPoint('Throttler', netns, async () => {
          const r = await t.limit({ iface, direction, rate: '10mbit', match: { dst: '198.18.1.0/24' } });
          if (r.err) return { ok: false };
          return { ok: true, cleanup: async () => void (await r.val.remove()).unwrap() };
        });
      }
      // the same plans through apply() with a health check and with a confirm timer
      const plan = (await t.compile({ iface, direction: 'ingress', rate: '10mbit' })).unwrap();
      await everyPoint('Throttler', netns, async () => {
        const r = await apply(plan, { healthCheck: async () => true });
        if (r.err) return { ok: false };
        return { ok: true, cleanup: async () => void (await r.val.rollback()).unwrap() };
      });
      const before = await hostState(netns);
      const to = timedOut();
      expect((await apply(plan, to.options)).ok).toBe(true);
      await to.done;
      expect(await hostState(netns)).toEqual(before);
      expect(journalOf(process.pid)).toEqual([]);
      totals.Throttler!.failed++;
      totals.Throttler!.points.push('confirm-timeout');
      expect((await t.clear()).ok).toBe(true);
    });
  });

  it('XdpBlocklist: maps, load and attach refused — first attach and re-attach over our own program', async () => {
    await withLab('rxdp', async (lab) => {
      const { netns, iface } = await twoHosts(lab);
      const name = `relf_${process.pid}`;
      await everyPoint('XdpBlocklist', netns, async () => {
        const bl = new XdpBlocklist({ iface, netns, name, backend: 'xdp', maxEntries: 1024 });
        const r = await bl.attach();
        if (r.err) {
          bl.close();
          return { ok: false };
        }
        (await bl.add(['198.18.7.7'])).unwrap();
        return { ok: true, cleanup: async () => void (await bl.detach()).unwrap() };
      });
      // re-attach: the program in force must stay in force
      const first = new XdpBlocklist({ iface, netns, name, backend: 'xdp', maxEntries: 1024 });
      expect((await first.attach()).ok).toBe(true);
      (await first.add(['198.18.7.7'])).unwrap();
      try {
      // a successful re-attach swaps in a new program (new id, same pins): compared without program ids;
      // a failed one must leave everything exactly as it was, program id included
      const noIds = (st: Record<string, string>): Record<string, string> => ({ ...st, links: (st.links ?? '').replace(/prog\/xdp .*$/gm, 'prog/xdp (ours)') });
      await everyPoint('XdpBlocklist', netns, async () => {
        const bl = new XdpBlocklist({ iface, netns, name, backend: 'xdp', maxEntries: 1024 });
        const r = await bl.attach();
        bl.close();
        return { ok: r.ok };
      }, noIds);
      } finally {
        expect((await first.detach()).ok).toBe(true);
        first.close();
      }
    });
  });

  it('DpiBlocker: queues do not start, steering steps fail half-way, verify fails', async () => {
    await withLab('rdpi', async (lab) => {
      const { netns } = await twoHosts(lab);
      // A host with iptables rules of its own (a neighbour that must stay byte-identical). Without
      // them, xtables steering leaves empty \`ip filter\`/\`ip6 filter\` tables behind (reported).
      for (const tool of ['iptables-nft', 'ip6tables-nft']) await lab.sh(lab.hosts[0]!, [tool, '-A', 'FORWARD', '-i', 'lo', '-j', 'ACCEPT']);
      await everyPoint('DpiBlocker', netns, async () => {
        const b = new DpiBlocker({ netns, queues: [90, 1], nftQueue: false });
        const r = await b.start();
        if (r.err) return { ok: false };
        return { ok: true, cleanup: async () => void (await b.stop()).unwrap() };
      });
    });
  });

  it('reconcile(): dry run changes nothing; a reused pid counts as dead; live entries and unmarked tables are never touched', async () => {
    await withLab('rrec', async (lab) => {
      const { netns } = await twoHosts(lab);
      const h = lab.hosts[0]!;
      await lab.sh(h, ['nft', 'add', 'table', 'inet', 'rec_foreign']);
      await lab.sh(h, ['nft', 'add', 'chain', 'inet', 'rec_foreign', 'c']);
      for (const name of ['rec_dead', 'rec_live']) {
        const p = emptyPlan('test:rec', netns);
        p.tables.push({ family: 'inet', name });
        expect((await apply(p)).ok).toBe(true);
      }
      const before = await hostState(netns);
      const me = processIdentity(process.pid)!;
      // an entry "written" by a process whose pid is ours but whose start time differs: pid reuse, so dead
      const id = `apply-${process.pid}-1-999999.json`;
      const dead: ApplyJournalEntry = {
        version: 1, id, kind: 'apply', pid: process.pid, startTime: '1', pgid: 0, createdAt: new Date().toISOString(), owner: 'test:rec', netns,
        tables: [{ table: { family: 'inet', name: 'rec_dead' }, existed: false }, { table: { family: 'inet', name: 'rec_foreign' }, existed: false }],
        steps: [], stepsStarted: 0, phase: 'prepared',
      };
      writeFileSync(join(JOURNAL_DIR, id), JSON.stringify(dead));
      // a tampered entry: its undo would run a shell — validated like a plan, refused, left alone
      const badId = `apply-${process.pid}-1-999998.json`;
      const bad: ApplyJournalEntry = { ...dead, id: badId, tables: [], stepsStarted: 1, steps: [{ id: 'x', description: 'x', do: [], undo: [{ kind: 'exec', argv: ['sh', '-c', 'touch /tmp/netfence-pwned'] }] }] };
      writeFileSync(join(JOURNAL_DIR, badId), JSON.stringify(bad));
      // a live entry (this process) on another table
      const live = journalBegin<ApplyJournalEntry>({ kind: 'apply', owner: 'test:rec', netns, tables: [{ table: { family: 'inet', name: 'rec_live' }, existed: false }], steps: [], stepsStarted: 0, phase: 'steps' });
      expect(live?.entry.startTime).toBe(me.startTime);
      try {
        const dry = (await reconcile({ netns, dryRun: true })).unwrap();
        expect(dry.live).toBe(1);
        expect(dry.found.map((f) => f.entry)).toEqual([id]);
        expect(dry.errors.join('\n')).toContain(`entry ${badId}: refused`);
        expect(dry.found[0]!.actions.map((a) => `${a.kind} ${a.target}`)).toEqual(['keep-table inet rec_foreign', 'delete-table inet rec_dead', `remove-journal ${id}`]);
        expect(await hostState(netns)).toEqual(before);
        expect(readJournal().some((e) => e.id === id)).toBe(true);
        const real = (await reconcile({ netns })).unwrap();
        expect(real.removed.tablesDeleted).toBe(1);
        const after = await hostState(netns);
        expect(after.nft).not.toContain('rec_dead');
        expect(after.nft).toContain('table inet rec_live');
        expect(after.nft).toContain('table inet rec_foreign {\n\tchain c {');
        expect(readJournal().some((e) => e.id === id)).toBe(false);
        expect(readJournal().some((e) => e.id === badId)).toBe(true);
        expect(existsSync('/tmp/netfence-pwned')).toBe(false);
        expect(readJournal().some((e) => e.id === live?.entry.id)).toBe(true);
        console.log(`[faults] reconcile: dry run changed nothing; pid reuse detected; 1 live entry and 1 unmarked table left alone`);
      } finally {
        live?.remove();
        removeJournalEntry(badId);
      }
    });
  });

  it('SmartProxy NFTablesManager: nft rejects, verify fails — provision and deprovision', async () => {
    await withLab('rsp', async (lab) => {
      const { netns } = await twoHosts(lab);
      // the old configuration: a route for 8080; each attempt adds the 8081 route (and its cleanup removes it)
      const quiet = { error: () => undefined };
      const m = new NFTablesManager({ settings: { routes: [] } }, { tableName: 'nf_relsp', netns, logger: quiet });
      expect(await m.provisionRoute(crashRoute('old'))).toBe(true);
      await everyPoint('NFTablesManager', netns, async () => {
        if (!(await m.provisionRoute(crashRoute('new')))) return { ok: false };
        return { ok: true, cleanup: async () => void expect(await m.deprovisionRoute(crashRoute('new'))).toBe(true) };
      });
      // and the other way round: removing the provisioned route fails at every point and leaves it in place
      expect(await m.provisionRoute(crashRoute('new'))).toBe(true);
      await everyPoint('NFTablesManager', netns, async () => {
        if (!(await m.deprovisionRoute(crashRoute('new')))) return { ok: false };
        return { ok: true, cleanup: async () => void expect(await m.provisionRoute(crashRoute('new'))).toBe(true) };
      });
      await m.stop(); // SmartProxy's stop() returns nothing: the table must be gone
      expect((await hostState(netns)).nft).not.toContain('nf_relsp');
    });
  });

  it('SmartProxy NetfenceRouteManager: nft rejects, verify fails — syncRoutes', async () => {
    await withLab('rsp2', async (lab) => {
      const { netns } = await twoHosts(lab);
      const n = new NetfenceRouteManager({ tableName: 'nf_relsp2', netns });
      (await n.syncRoutes([crashRoute('old')])).unwrap();
      await everyPoint('NetfenceRouteManager', netns, async () => {
        const r = await n.syncRoutes([crashRoute('old'), crashRoute('new')]);
        if (r.err) return { ok: false };
        return { ok: true, cleanup: async () => void (await n.syncRoutes([crashRoute('old')])).unwrap() };
      });
      (await n.stop()).unwrap();
    });
  });

  it('VM bridge firewall: nft rejects, verify fails — attach, update and detach of a VM', async () => {
    await withLab('rvm', async (lab) => {
      const hv = await lab.host('hv');
      for (const i of [1, 2]) {
        const vm = await lab.host(`vm${i}`);
        await lab.link({ host: hv, iface: `tap${i}` }, { host: vm, iface: 'eth0', addrs: [`198.18.5.${i}/24`] });
      }
      await lab.bridge(hv, 'br0', ['tap1', 'tap2'], ['198.18.5.254/24']);
      const fw = crashVmFirewall(hv.netns);
      // the old configuration: vm2 has a firewall; each attempt attaches vm1 (and its cleanup detaches it)
      (await fw.attachVm({ ...crashVmSpec('tap2'), vmId: 'vm2' })).unwrap();
      await everyPoint('VmFirewall', hv.netns, async () => {
        const r = await fw.attachVm(crashVmSpec('tap1'));
        if (r.err) return { ok: false };
        return { ok: true, cleanup: async () => void (await fw.detachVm('vm1')).unwrap() };
      });
      // update and detach of an attached VM fail at every point and leave its firewall as it was
      (await fw.attachVm(crashVmSpec('tap1'))).unwrap();
      const other = crashVmSpec('tap1');
      const updated = { ...other, rules: [...other.rules, { ...other.rules[0]!, id: 'no-telnet', name: 'no-telnet', dstPortStart: 23 }] };
      await everyPoint('VmFirewall', hv.netns, async () => {
        const r = await fw.updateVm(updated);
        if (r.err) return { ok: false };
        return { ok: true, cleanup: async () => void (await fw.updateVm(crashVmSpec('tap1'))).unwrap() };
      });
      await everyPoint('VmFirewall', hv.netns, async () => {
        const r = await fw.detachVm('vm1');
        if (r.err) return { ok: false };
        return { ok: true, cleanup: async () => void (await fw.attachVm(crashVmSpec('tap1'))).unwrap() };
      });
      (await fw.destroy()).unwrap();
    });
  });

  it('prints the totals', () => {
    let points = 0;
    for (const [cls, t] of Object.entries(totals)) {
      points += t.points.length;
      console.log(`[faults] total ${cls}: ${t.points.length} faults injected, ${t.failed} apply failures, ${t.absorbed.length} absorbed, 0 leftovers`);
    }
    console.log(`[faults] all classes: ${points} faults injected, 0 leftovers`);
    expect(Object.keys(totals).sort()).toEqual(['DpiBlocker', 'Firewall', 'NFTablesManager', 'NetfenceRouteManager', 'Throttler', 'VmFirewall', 'XdpBlocklist']);
  });
});

describe('reconcile: capability-probe namespaces of dead processes', () => {
  it('removes nfcap namespaces whose creator is dead and keeps those of live processes', async () => {
    // A pid that is not running: the highest pid number cannot be in use by both checks at once.
    let dead = 4_194_000;
    while (existsSync(`/proc/${dead}`)) dead--;
    const deadNs = `nfcap-${dead.toString(36)}-0badc0de`;
    const liveNs = `nfcap-${process.pid.toString(36)}-0badc0de`;
    for (const ns of [deadNs, liveNs]) expect((await run(['ip', 'netns', 'add', ns])).ok).toBe(true);
    try {
      const r = await reconcile({ waitMs: 0 });
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.val.found.map((f) => f.entry)).toContain(deadNs);
      const list = await run(['ip', 'netns', 'list']);
      const names = list.ok ? list.val.stdout : '';
      expect(names).not.toContain(deadNs);
      expect(names).toContain(liveNs);
    } finally {
      for (const ns of [deadNs, liveNs]) await run(['ip', 'netns', 'del', ns]);
    }
  });
});
