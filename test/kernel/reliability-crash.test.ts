/**
 * Crash trials (issue 7): for each class, a child process applies a change
 * (old configuration → new) and is SIGKILLed at a random moment within the
 * measured apply duration. Afterwards the nft part must be old or new (never a
 * mix); then reconcile() runs and the whole host state (nft ruleset, tc
 * qdiscs/classes/filters, XDP attachments, pins, IFB devices) must equal the
 * old or the new reference, with no journal entry of an operation in progress
 * left. Trials per class: NETFENCE_CRASH_TRIALS (default 50, also the minimum:
 * a smaller value fails the file instead of emptying the loop).
 *
 * Issue 16 adds: the SmartProxy integration (NFTablesManager and
 * NetfenceRouteManager), VM bridge firewalls and a journaled Firewall (health
 * check: its table is snapshotted); for every class one more trial per apply
 * point in which the child blocks at that point and is killed there
 * (deterministic, so each reconcile path is reached, not hoped for); a count
 * of the reconcile paths the reports show (undo started steps, restore a
 * table, delete a table, detach XDP, remove DPI steering), each asserted > 0;
 * and after EVERY repair, traffic that proves the host behaves as the old or
 * the new configuration, whichever the kill left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { reconcile, type ReconcileReport } from '../../src/plan/reconcile.js';
import { NFTablesManager } from '../../src/integrations/smartproxy.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { crashFirewall, crashRoute, hostState, journalOf, lab3 } from './crash-state.js';
import { pingFrom, tcp, transferMbit, type Final } from './crash-traffic.js';
import { sizeKnob } from '../lab/knobs.js';
import { timeScale } from '../lab/scale.js';

/** Trials per class: the stated 50, or more with NETFENCE_CRASH_TRIALS (a smaller value fails the file: test/lab/knobs.ts). */
const TRIALS = sizeKnob('NETFENCE_CRASH_TRIALS', 50);
/** Random-moment trials for the classes issue 16 added (on top of one trial per apply point): scaled with TRIALS, 6 at the stated 50. */
const NEW_TRIALS = Math.max(6, Math.round((TRIALS * 6) / 50));
const LOOKAHEAD = 3;
/** Per class: 50 random trials plus one per apply point, each with its state listings and traffic checks, take 4–8 min on a busy 2-core machine. */
const CLASS_TIMEOUT = 900_000 * timeScale;
const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  doneMs: number | undefined;
  done: Promise<number>;
  /** When the first fault point was reached (ms after go): where the host may start to change. */
  mark: Promise<number>;
  exited: Promise<void>;
  stderr: string;
  /** The fault points the child reached, in order. */
  points: string[];
  /** With a pause index: resolves with the point where the child blocked. */
  paused: Promise<string>;
  pauseAt: number | undefined;
}

function spawnChild(cls: string, netns: string, iface: string, pauseAt?: number): Child {
  // own process group (detached): reconcile waits for the tools it started to finish
  const args = [CHILD, cls, netns, iface, ...(pauseAt === undefined ? [] : [String(pauseAt)])];
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const c = { proc, stderr: '', doneMs: undefined, points: [], pauseAt } as unknown as Child;
  let onPaused!: (p: string) => void;
  c.paused = new Promise<string>((r) => (onPaused = r));
  let buf = '';
  let onReady!: () => void;
  let onDone!: (ms: number) => void;
  let onMark!: (ms: number) => void;
  c.mark = new Promise<number>((r) => (onMark = r));
  let onFail!: (e: Error) => void;
  c.ready = new Promise<void>((r, j) => {
    onReady = r;
    onFail = j;
  });
  c.done = new Promise<number>((r) => (onDone = r));
  c.done.catch(() => undefined);
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (;;) {
      const i = buf.indexOf('\n');
      if (i < 0) break;
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'ready') onReady();
      if (line.startsWith('point ')) c.points.push(line.slice(6));
      const pz = /^paused \d+ (.*)$/.exec(line);
      if (pz) onPaused(pz[1]!);
      const mk = /^mark (\d+)$/.exec(line);
      if (mk) onMark(Number(mk[1]));
      const m = /^done (\d+)$/.exec(line);
      if (m) {
        c.doneMs = Number(m[1]);
        onDone(c.doneMs);
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
  c.exited = new Promise<void>((r) => proc.once('exit', () => r()));
  void c.exited.then(() => onFail(new Error(`child exited before ready: ${c.stderr}`)));
  return c;
}

function kill(c: Child): void {
  try {
    process.kill(c.proc.pid!, 'SIGKILL');
  } catch {
    // exited already
  }
}

/** Host state without what legitimately differs between two applies of the same config (MACs, program ids, load times). */
async function norm(netns: string): Promise<Record<string, string>> {
  const s = await hostState(netns);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s)) {
    out[k] = v
      .replace(/link\/ether \S+ brd \S+/g, 'link/ether M')
      .replace(/prog\/xdp .*$/gm, 'prog/xdp (ours)')
      .replace(/^\d+: /gm, 'N: ')
      .replace(/counter packets \d+ bytes \d+/g, 'counter'); // the traffic checks (and ARP/ND) make rule counters tick
  }
  return out;
}

function diffKeys(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
}

async function lab2(lab: Lab): Promise<{ netns: string; iface: string }> {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] }, { host: b, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] });
  return { netns: a.netns, iface: l.a };
}

interface Figures {
  trials: number;
  midApply: number;
  nftMixed: number;
  mixedBeforeReconcile: number;
  repairedByReconcile: number;
  finalOld: number;
  finalNew: number;
  leftovers: number;
  applyMs: number;
  reconciled: number;
  /** Trials killed while blocked at an apply point (one per point of the reference run). */
  pointTrials: number;
  points: string[];
  /** Random-moment trials. */
  randomTrials: number;
  /** Traffic checks after repair that matched the final configuration (old / new). */
  trafficOld: number;
  trafficNew: number;
}

/** The reconcile paths issue 16 asks to see exercised, counted from the reports. */
const PATHS = ['undo-step', 'restore-table', 'delete-table', 'detach-xdp', 'dpi-steering'] as const;
type Path = (typeof PATHS)[number];
const pathTotals: Record<string, Record<Path, number>> = {};
const classFigures: Record<string, Figures> = {};

function countPaths(cls: string, r: ReconcileReport): void {
  const t = (pathTotals[cls] ??= { 'undo-step': 0, 'restore-table': 0, 'delete-table': 0, 'detach-xdp': 0, 'dpi-steering': 0 });
  for (const f of r.found) {
    for (const a of f.actions) {
      if (a.ok && (a.kind === 'undo-step' || a.kind === 'restore-table' || a.kind === 'delete-table')) t[a.kind]++;
    }
  }
  t['detach-xdp'] += r.removed.xdpDetached;
  t['dpi-steering'] += r.removed.queueRuleSets;
}

/**
 * After a repair: packets that show the host behaving as `final` (undefined = ok, else what differed).
 * `finished`: the child printed "done" (the whole change, data-plane entries included, was made).
 */
type Traffic = (final: Final, finished: boolean) => Promise<string | undefined>;

interface TrialOptions {
  /** DpiBlocker: the final state must be the old one (its readers died). */
  finalMustBeOld?: boolean;
  /** Random-moment trials (default TRIALS). */
  trials?: number;
  traffic: Traffic;
}

async function crashTrials(cls: string, netns: string, iface: string, reset: () => Promise<void>, opts: TrialOptions): Promise<Figures> {
  const random = opts.trials ?? TRIALS;
  await reset();
  const oldTraffic = await opts.traffic('old', false);
  expect(oldTraffic, `${cls}: traffic before any change`).toBeUndefined();
  const old = await norm(netns);
  // reference run: let it finish, measure, record the new state and the apply points it passes
  const ref = spawnChild(cls, netns, iface);
  await ref.ready;
  ref.proc.stdin!.write('go\n');
  const applyMs = await Promise.race([ref.done, ref.exited.then(() => -1)]);
  expect(applyMs, ref.stderr).toBeGreaterThanOrEqual(0);
  const markMs = await Promise.race([ref.mark, sleep(1).then(() => -1)]);
  expect(markMs).toBeGreaterThanOrEqual(0);
  const kernelMs = Math.max(1, applyMs - markMs); // the part of the apply that touches the host
  const neu = await norm(netns);
  expect(diffKeys(old, neu).length).toBeGreaterThan(0);
  expect(await opts.traffic('new', true), `${cls}: traffic with the new configuration applied`).toBeUndefined();
  const points = [...ref.points];
  expect(points.length).toBeGreaterThan(0);
  kill(ref);
  await ref.exited;
  await reconcile({ netns });
  await reset();
  expect(await norm(netns)).toEqual(old);

  const f: Figures = {
    trials: 0, midApply: 0, nftMixed: 0, mixedBeforeReconcile: 0, repairedByReconcile: 0, finalOld: 0, finalNew: 0, leftovers: 0, applyMs, reconciled: 0,
    pointTrials: 0, points, randomTrials: 0, trafficOld: 0, trafficNew: 0,
  };
  const problems: string[] = [];
  const phases = { ready: 0, apply: 0, state: 0, reconcile: 0, traffic: 0, reset: 0 };
  // one trial killed at each apply point (blocked there), then `random` trials killed at a random moment
  const plan: (number | undefined)[] = [...points.map((_, k) => k), ...Array.from({ length: random }, () => undefined)];
  // children start slowly on a busy 2-core machine (tsx): keep LOOKAHEAD of them starting ahead
  const queue: Child[] = [];
  let spawned = 0;
  const refill = (): void => {
    while (queue.length < LOOKAHEAD && spawned < plan.length) {
      queue.push(spawnChild(cls, netns, iface, plan[spawned]));
      spawned++;
    }
  };
  refill();
  for (let i = 0; i < plan.length; i++) {
    const c: Child = queue.shift()!;
    let tt = performance.now();
    const lap = (k: keyof typeof phases): void => {
      const now = performance.now();
      phases[k] += now - tt;
      tt = now;
    };
    await c.ready;
    lap('ready');
    c.proc.stdin!.write('go\n');
    let pausedAt: string | undefined;
    if (c.pauseAt !== undefined) {
      // deterministic: the child blocks at its k-th apply point; the kill lands right there
      pausedAt = await Promise.race([c.paused, c.done.then(() => undefined), c.exited.then(() => undefined)]);
      f.pointTrials++;
      if (pausedAt !== points[c.pauseAt]) problems.push(`trial ${i}: expected to stop at point ${c.pauseAt} (${points[c.pauseAt]}), stopped at ${pausedAt ?? '(never)'} ${c.stderr}`);
    } else {
      f.randomTrials++;
      if (f.randomTrials % 2 === 1) await sleep(Math.random() * applyMs * 1.1); // anywhere in the apply
      else {
        // within the part that touches the host: from the first fault point on
        await Promise.race([c.mark, c.done, c.exited]);
        await sleep(Math.random() * kernelMs * 1.1);
      }
    }
    const finished = c.doneMs !== undefined;
    kill(c);
    await c.exited;
    lap('apply');
    refill(); // start the next child while this trial is checked
    f.trials++;
    if (!finished) f.midApply++;
    const s1 = await norm(netns);
    if (s1.nft !== old.nft && s1.nft !== neu.nft && cls === 'firewall') f.nftMixed++;
    const before = JSON.stringify(s1);
    const mixed = before !== JSON.stringify(old) && before !== JSON.stringify(neu);
    if (mixed) f.mixedBeforeReconcile++;
    lap('state');
    const rc = await reconcile({ netns });
    lap('reconcile');
    if (rc.ok && rc.val.found.length > 0) f.reconciled++;
    if (rc.ok) countPaths(cls, rc.val);
    const s2 = await norm(netns);
    const isOld = JSON.stringify(s2) === JSON.stringify(old);
    const isNew = JSON.stringify(s2) === JSON.stringify(neu);
    if (isOld) f.finalOld++;
    if (isNew) f.finalNew++;
    if (mixed && (isOld || isNew)) f.repairedByReconcile++;
    const journal = journalOf(c.proc.pid);
    lap('state');
    // packets: the host behaves as the configuration it is in
    const final: Final | undefined = isOld ? 'old' : isNew ? 'new' : undefined;
    const traffic = final ? await opts.traffic(final, finished) : 'not checked: the state is neither old nor new';
    if (final && traffic === undefined) f[final === 'old' ? 'trafficOld' : 'trafficNew']++;
    lap('traffic');
    const where = pausedAt !== undefined ? ` (killed at ${pausedAt})` : '';
    const bad = (!isOld && !isNew) || (opts.finalMustBeOld && !isOld) || journal.length > 0 || !rc.ok || rc.val.errors.length > 0 || traffic !== undefined;
    if (bad) {
      f.leftovers++;
      problems.push(`trial ${i}${where}: ${!isOld && !isNew ? `differs from old in ${diffKeys(old, s2)} and from new in ${diffKeys(neu, s2)}` : ''} journal=${journal} reconcile=${rc.ok ? rc.val.errors.join('; ') : rc.val.message} traffic=${traffic ?? 'ok'}`);
    }
    await reset();
    lap('reset');
  }
  // and one deterministic trial killed right after the apply completed
  const last = spawnChild(cls, netns, iface);
  await last.ready;
  last.proc.stdin!.write('go\n');
  await Promise.race([last.done, last.exited]);
  expect(last.doneMs, last.stderr).toBeDefined();
  kill(last);
  await last.exited;
  const rcLast = (await reconcile({ netns })).unwrap();
  countPaths(cls, rcLast);
  // DpiBlocker: its readers died with it, so its queue rules must go; the others keep the completed new configuration
  expect(await norm(netns)).toEqual(opts.finalMustBeOld ? old : neu);
  expect(rcLast.found.length > 0).toBe(opts.finalMustBeOld === true);
  const lastFinal: Final = opts.finalMustBeOld ? 'old' : 'new';
  expect(await opts.traffic(lastFinal, true), `${cls}: traffic after the kill that followed a completed apply`).toBeUndefined();
  f[lastFinal === 'old' ? 'trafficOld' : 'trafficNew']++;
  await reset();
  const pt = pathTotals[cls];
  console.log(
    `[crash] ${cls}: ${f.trials} trials (${f.pointTrials} killed at each of the ${points.length} apply points [${points.join(', ')}], ${f.randomTrials} at a random moment), apply ${applyMs} ms (host-touching part ${kernelMs} ms; every other random trial is killed within it), ${f.midApply} kills landed mid-apply, nft mixed ${f.nftMixed}, ` +
      `${f.mixedBeforeReconcile} left a mix before reconcile (${f.repairedByReconcile} repaired), reconcile removed a dead process's state in ${f.reconciled}, final old ${f.finalOld} / new ${f.finalNew}, ${f.leftovers} left anything behind or misbehaved`,
  );
  console.log(`[crash] ${cls}: reconcile paths ${PATHS.map((p) => `${p} ${pt?.[p] ?? 0}`).join(', ')}; traffic after repair matched old ${f.trafficOld} / new ${f.trafficNew} (incl. the kill after a completed apply)`);
  console.log(`[crash] ${cls}: time per trial (ms): ${Object.entries(phases).map(([k, v]) => `${k} ${Math.round(v / Math.max(1, f.trials))}`).join(', ')}`);
  for (const p of problems.slice(0, 5)) console.log(`[crash]   ${p}`);
  expect(problems).toEqual([]);
  expect(f.leftovers).toBe(0);
  expect(f.nftMixed).toBe(0);
  classFigures[cls] = f;
  return f;
}

async function sh(netns: string, argv: string[]): Promise<string> {
  const r = await run(argv, { netns });
  return r.ok ? r.val.stdout : '';
}


/** Tables of `netns` whose name contains `part`, deleted (a reset between trials). */
async function dropTables(netns: string, part: string): Promise<void> {
  const tables = (await sh(netns, ['nft', 'list', 'tables'])).split('\n').filter((t) => t.includes(part));
  for (const t of tables) await run(['nft', 'delete', ...t.trim().split(/\s+/)], { netns });
}

/** `want` vs what a probe got, as a problem text (undefined when equal). */
const expectProbe = (what: string, want: string, got: string): string | undefined => (got === want ? undefined : `${what}: ${got}, expected ${want}`);

/** Firewall traffic: new drops TCP 7000–7039, old only 7000–7001, so TCP 7005 is open with old and dropped with new. */
function firewallTraffic(lab: Lab, b: LabHost): Traffic {
  return async (final) => expectProbe('TCP 198.18.1.1:7005', final === 'old' ? 'open' : 'timeout', await tcp(lab, b, '198.18.1.1', 7005));
}

describe(`reliability: SIGKILL at a random moment during apply (${TRIALS} trials per class)`, () => {
  it('Firewall: the nft batch is atomic — old or new, never a mix', async () => {
    await withLab('crfw', async (lab) => {
      const { netns, iface, a, b } = await lab3(lab);
      await lab.serve(a, 'tcp', 7005);
      await crashTrials('firewall', netns, iface, async () => void (await crashFirewall(netns, 'old').apply()).unwrap(), { traffic: firewallTraffic(lab, b) });
      (await crashFirewall(netns, 'old').destroy()).unwrap();
    });
  }, CLASS_TIMEOUT);

  it('Firewall with a health check (journaled, table snapshotted): reconcile() restores the old table', async () => {
    await withLab('crfwh', async (lab) => {
      const { netns, iface, a, b } = await lab3(lab);
      await lab.serve(a, 'tcp', 7005);
      await crashTrials('firewall-hc', netns, iface, async () => void (await crashFirewall(netns, 'old').apply()).unwrap(), { trials: NEW_TRIALS, traffic: firewallTraffic(lab, b) });
      (await crashFirewall(netns, 'old').destroy()).unwrap();
    });
  }, CLASS_TIMEOUT);

  it('Firewall with a health check on a host without its table: reconcile() deletes the table', async () => {
    await withLab('crfwn', async (lab) => {
      const { netns, iface, a, b } = await lab3(lab);
      await lab.serve(a, 'tcp', 7005);
      await crashTrials('firewall-hc-fresh', netns, iface, async () => dropTables(netns, 'nf_crash'), { trials: NEW_TRIALS, traffic: firewallTraffic(lab, b) });
    });
  }, CLASS_TIMEOUT);

  it('Throttler: tc qdiscs, classes, filters and IFB devices are old or new after reconcile()', async () => {
    await withLab('crtc', async (lab) => {
      const { netns, iface, a, b } = await lab3(lab);
      const reset = async (): Promise<void> => {
        await run(['tc', 'qdisc', 'del', 'dev', iface, 'root'], { netns });
        await run(['tc', 'qdisc', 'del', 'dev', iface, 'ingress'], { netns });
        await run(['tc', 'qdisc', 'del', 'dev', iface, 'clsact'], { netns });
        for (const l of JSON.parse((await sh(netns, ['ip', '-j', 'link', 'show', 'type', 'ifb'])) || '[]') as { ifname: string }[]) await run(['ip', 'link', 'del', l.ifname], { netns });
        await dropTables(netns, 'netfence_throttle');
      };
      // 400 kB from b into a (shaped on a's ingress at 10 Mbit/s when new: ≥ 0.32 s; unshaped over a veth: a few ms)
      const BYTES = 400_000;
      await lab.serve(b, 'tcp', 9000, `%bytes:${BYTES}`);
      const rates: Record<Final, number[]> = { old: [], new: [] };
      const traffic: Traffic = async (final) => {
        const mbit = await transferMbit(a, '198.18.1.2', 9000, BYTES);
        if (mbit === undefined) return 'the 400 kB transfer did not complete within 3 s';
        rates[final].push(mbit);
        // the limit is 10 Mbit/s: the steady rate (after the first quarter) must stay under 1.5x it when new, exceed it when old
        return final === 'new' ? (mbit <= 15 ? undefined : `rate ${mbit.toFixed(1)} Mbit/s with the 10 Mbit/s limit in force`) : mbit > 15 ? undefined : `rate ${mbit.toFixed(1)} Mbit/s with no limit`;
      };
      await crashTrials('throttler', netns, iface, reset, { traffic });
      const range = (v: number[]): string => (v.length ? `${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)} Mbit/s (${v.length})` : '-');
      console.log(`[crash] throttler: transfer rates after repair: old ${range(rates.old)}, new ${range(rates.new)}`);
    });
  }, CLASS_TIMEOUT);

  it('XdpBlocklist: program and pins are old (none) or new (attached) after reconcile()', async () => {
    await withLab('crxdp', async (lab) => {
      const { netns, iface, a, b, bIface } = await lab3(lab);
      // b also sends from a listed address (198.18.8.2, in the new blocklist's 198.18.8.0/24)
      await lab.addr(b, bIface, '198.18.8.2/32');
      await lab.sh(a, ['ip', 'route', 'add', '198.18.8.0/24', 'dev', iface]);
      const reset = async (): Promise<void> => {
        const bl = new XdpBlocklist({ iface, netns, name: 'crash_xdp', backend: 'xdp' });
        (await bl.detach()).unwrap();
        bl.close();
      };
      let entriesUnchecked = 0;
      const traffic: Traffic = async (final, finished) => {
        // never a blackhole: an unlisted source is answered in both states
        if (!(await pingFrom(b, '198.18.1.2', '198.18.1.1'))) return 'ping from the unlisted 198.18.1.2 dropped';
        const listed = await pingFrom(b, '198.18.8.2', '198.18.1.1');
        if (final === 'old') return listed ? undefined : 'ping from 198.18.8.2 dropped with no program attached';
        // the entries are added after attach (map data, outside the plan): only a completed change must drop them
        if (!finished) {
          entriesUnchecked++;
          return undefined;
        }
        return listed ? 'ping from the listed 198.18.8.2 answered with the program attached' : undefined;
      };
      try {
        await crashTrials('xdp', netns, iface, reset, { traffic });
      } finally {
        await reset();
      }
      console.log(`[crash] xdp: ${entriesUnchecked} trials ended attached before the child had added its entries (only the unlisted ping was checked there)`);
    });
  }, CLASS_TIMEOUT);

  it('DpiBlocker: steering rules without a reader are removed by reconcile()', async () => {
    await withLab('crdpi', async (lab) => {
      const { netns, iface, b, c } = await lab3(lab);
      for (const tool of ['iptables-nft', 'ip6tables-nft']) await lab.sh(lab.hosts[0]!, [tool, '-A', 'FORWARD', '-i', 'lo', '-j', 'ACCEPT']);
      await lab.serve(c, 'tcp', 80, 'srv');
      // forwarded b → c: steered to the queue (fail closed) while the blocker lives; after repair it must pass with no reader left
      const traffic: Traffic = async () => expectProbe('TCP b → 198.18.2.2:80 through a', 'open', await tcp(lab, b, '198.18.2.2', 80, 1500));
      await crashTrials('dpi', netns, iface, async () => undefined, { finalMustBeOld: true, traffic });
    });
  }, CLASS_TIMEOUT);

  for (const [cls, name] of [['sp-nftm', 'NFTablesManager'], ['sp-nrm', 'NetfenceRouteManager']] as const) {
    it(`SmartProxy ${name}: the forwarded port works (new) or not (old) after reconcile()`, async () => {
      await withLab(`cr${cls.slice(3)}`, async (lab) => {
        const { netns, iface, b, c } = await lab3(lab);
        await lab.serve(c, 'tcp', 80, 'srv');
        // old: a route for 8080 (another manager's table, never touched by the trials); new adds 8081 in nf_crsp_new
        const base = new NFTablesManager({ settings: { routes: [] } }, { tableName: 'nf_crsp', netns });
        expect(await base.provisionRoute(crashRoute('old'))).toBe(true);
        const traffic: Traffic = async (final) =>
          expectProbe('TCP 198.18.1.1:8080', 'open', await tcp(lab, b, '198.18.1.1', 8080)) ??
          expectProbe('TCP 198.18.1.1:8081', final === 'new' ? 'open' : 'refused', await tcp(lab, b, '198.18.1.1', 8081));
        await crashTrials(cls, netns, iface, async () => dropTables(netns, 'nf_crsp_new'), { trials: NEW_TRIALS, traffic });
        await base.stop();
      });
    }, CLASS_TIMEOUT);
  }

  it('VM bridge firewall: traffic between the VMs on the bridge is old or new after reconcile()', async () => {
    await withLab('crvm', async (lab) => {
      const hv = await lab.host('hv');
      const vm1 = await lab.host('vm1');
      const vm2 = await lab.host('vm2');
      await lab.link({ host: hv, iface: 'tap1' }, { host: vm1, iface: 'eth0', addrs: ['198.18.5.1/24', 'fd00:5::1/64'] });
      await lab.link({ host: hv, iface: 'tap2' }, { host: vm2, iface: 'eth0', addrs: ['198.18.5.2/24', 'fd00:5::2/64'] });
      await lab.bridge(hv, 'br0', ['tap1', 'tap2'], ['198.18.5.254/24', 'fd00:5::fe/64']);
      for (const p of [22, 80]) await lab.serve(vm1, 'tcp', p);
      // the bridge gets its carrier a moment after its ports: compare states only once it is up
      for (let i = 0; i < 100 && !(await sh(hv.netns, ['ip', 'link', 'show', 'br0'])).includes('state UP'); i++) await sleep(100);
      expect(await sh(hv.netns, ['ip', 'link', 'show', 'br0'])).toContain('state UP');
      // new: TCP 22 towards vm1 dropped on the bridge; everything else passes in both
      const traffic: Traffic = async (final) =>
        expectProbe('TCP vm2 → vm1:80', 'open', await tcp(lab, vm2, '198.18.5.1', 80)) ??
        expectProbe('TCP vm2 → vm1:22', final === 'new' ? 'timeout' : 'open', await tcp(lab, vm2, '198.18.5.1', 22));
      await crashTrials('vm', hv.netns, 'tap1', async () => dropTables(hv.netns, 'nf_crvm'), { trials: NEW_TRIALS, traffic });
    });
  }, CLASS_TIMEOUT);

  it('prints the totals: every reconcile path was exercised, traffic checked after every repair', () => {
    const sum = (p: Path): number => Object.values(pathTotals).reduce((n, t) => n + t[p], 0);
    console.log('[crash] | class | crash trials (at each apply point + random) | final old / new | reconcile paths exercised | traffic after repair (old / new) |');
    for (const [cls, f] of Object.entries(classFigures)) {
      const t = pathTotals[cls];
      const paths = PATHS.filter((p) => (t?.[p] ?? 0) > 0).map((p) => `${p} ${t![p]}`).join(', ') || 'none needed (atomic nft batch)';
      console.log(`[crash] | ${cls} | ${f.trials + 1} (${f.pointTrials} + ${f.randomTrials}, +1 after a completed apply) | ${f.finalOld} / ${f.finalNew} | ${paths} | ${f.trafficOld} / ${f.trafficNew} |`);
    }
    console.log(`[crash] all classes: reconcile paths ${PATHS.map((p) => `${p} ${sum(p)}`).join(', ')}`);
    expect(Object.keys(classFigures).sort()).toEqual(['dpi', 'firewall', 'firewall-hc', 'firewall-hc-fresh', 'sp-nftm', 'sp-nrm', 'throttler', 'vm', 'xdp']);
    for (const p of PATHS) expect({ path: p, count: sum(p) > 0 }).toEqual({ path: p, count: true });
  });
});
