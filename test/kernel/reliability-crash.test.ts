/**
 * Crash trials (issue 7): for each class, a child process applies a change
 * (old configuration → new) and is SIGKILLed at a random moment within the
 * measured apply duration. Afterwards the nft part must be old or new (never a
 * mix); then reconcile() runs and the whole host state (nft ruleset, tc
 * qdiscs/classes/filters, XDP attachments, pins, IFB devices) must equal the
 * old or the new reference, with no journal entry of an operation in progress
 * left. Trials per class: NETFENCE_CRASH_TRIALS (default 50).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/host/run.js';
import { withLab, type Lab } from '../../src/lab/index.js';
import { reconcile } from '../../src/plan/reconcile.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { crashFirewall, hostState, journalOf } from './crash-state.js';

const TRIALS = Number(process.env.NETFENCE_CRASH_TRIALS ?? 50);
const LOOKAHEAD = 3;
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
}

function spawnChild(cls: string, netns: string, iface: string): Child {
  // own process group (detached): reconcile waits for the tools it started to finish
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, cls, netns, iface], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const c = { proc, stderr: '', doneMs: undefined } as Child;
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
      .replace(/^\d+: /gm, 'N: ');
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
}

async function crashTrials(cls: string, netns: string, iface: string, reset: () => Promise<void>, opts: { finalMustBeOld?: boolean } = {}): Promise<Figures> {
  await reset();
  const old = await norm(netns);
  // reference run: let it finish, measure, record the new state
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
  kill(ref);
  await ref.exited;
  await reconcile({ netns });
  await reset();
  expect(await norm(netns)).toEqual(old);

  const f: Figures = { trials: 0, midApply: 0, nftMixed: 0, mixedBeforeReconcile: 0, repairedByReconcile: 0, finalOld: 0, finalNew: 0, leftovers: 0, applyMs, reconciled: 0 };
  const problems: string[] = [];
  const phases = { ready: 0, apply: 0, state: 0, reconcile: 0, reset: 0 };
  // children start slowly on a busy 2-core machine (tsx): keep LOOKAHEAD of them starting ahead
  const queue: Child[] = [];
  let spawned = 0;
  const refill = (): void => {
    while (queue.length < LOOKAHEAD && spawned < TRIALS) {
      queue.push(spawnChild(cls, netns, iface));
      spawned++;
    }
  };
  refill();
  for (let i = 0; i < TRIALS; i++) {
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
    if (i % 2 === 0) await sleep(Math.random() * applyMs * 1.1); // anywhere in the apply
    else {
      // within the part that touches the host: from the first fault point on
      await Promise.race([c.mark, c.done, c.exited]);
      await sleep(Math.random() * kernelMs * 1.1);
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
    const s2 = await norm(netns);
    const isOld = JSON.stringify(s2) === JSON.stringify(old);
    const isNew = JSON.stringify(s2) === JSON.stringify(neu);
    if (isOld) f.finalOld++;
    if (isNew) f.finalNew++;
    if (mixed && (isOld || isNew)) f.repairedByReconcile++;
    const journal = journalOf(c.proc.pid);
    const bad = (!isOld && !isNew) || (opts.finalMustBeOld && !isOld) || journal.length > 0 || !rc.ok || rc.val.errors.length > 0;
    if (bad) {
      f.leftovers++;
      problems.push(`trial ${i}: ${!isOld && !isNew ? `differs from old in ${diffKeys(old, s2)} and from new in ${diffKeys(neu, s2)}` : ''} journal=${journal} reconcile=${rc.ok ? rc.val.errors.join('; ') : rc.val.message}`);
    }
    lap('state');
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
  // DpiBlocker: its readers died with it, so its queue rules must go; the others keep the completed new configuration
  expect(await norm(netns)).toEqual(opts.finalMustBeOld ? old : neu);
  expect(rcLast.found.length > 0).toBe(opts.finalMustBeOld === true);
  await reset();
  console.log(
    `[crash] ${cls}: ${f.trials} trials, apply ${applyMs} ms (host-touching part ${kernelMs} ms; odd trials are killed within it), ${f.midApply} kills landed mid-apply, nft mixed ${f.nftMixed}, ` +
      `${f.mixedBeforeReconcile} left a mix before reconcile (${f.repairedByReconcile} repaired), reconcile removed a dead process's state in ${f.reconciled}, final old ${f.finalOld} / new ${f.finalNew}, ${f.leftovers} left anything behind`,
  );
  console.log(`[crash] ${cls}: time per trial (ms): ${Object.entries(phases).map(([k, v]) => `${k} ${Math.round(v / Math.max(1, f.trials))}`).join(', ')}`);
  for (const p of problems.slice(0, 5)) console.log(`[crash]   ${p}`);
  expect(f.leftovers).toBe(0);
  expect(f.nftMixed).toBe(0);
  return f;
}

async function sh(netns: string, argv: string[]): Promise<string> {
  const r = await run(argv, { netns });
  return r.ok ? r.val.stdout : '';
}

describe(`reliability: SIGKILL at a random moment during apply (${TRIALS} trials per class)`, () => {
  it('Firewall: the nft batch is atomic — old or new, never a mix', async () => {
    await withLab('crfw', async (lab) => {
      const { netns, iface } = await lab2(lab);
      await crashTrials('firewall', netns, iface, async () => void (await crashFirewall(netns, 'old').apply()).unwrap());
      (await crashFirewall(netns, 'old').destroy()).unwrap();
    });
  });

  it('Throttler: tc qdiscs, classes, filters and IFB devices are old or new after reconcile()', async () => {
    await withLab('crtc', async (lab) => {
      const { netns, iface } = await lab2(lab);
      const reset = async (): Promise<void> => {
        await run(['tc', 'qdisc', 'del', 'dev', iface, 'root'], { netns });
        await run(['tc', 'qdisc', 'del', 'dev', iface, 'ingress'], { netns });
        await run(['tc', 'qdisc', 'del', 'dev', iface, 'clsact'], { netns });
        for (const l of JSON.parse((await sh(netns, ['ip', '-j', 'link', 'show', 'type', 'ifb'])) || '[]') as { ifname: string }[]) await run(['ip', 'link', 'del', l.ifname], { netns });
        const tables = (await sh(netns, ['nft', 'list', 'tables'])).split('\n').filter((t) => t.includes('netfence_throttle'));
        for (const t of tables) await run(['nft', 'delete', ...t.trim().split(/\s+/)], { netns });
      };
      await crashTrials('throttler', netns, iface, reset);
    });
  });

  it('XdpBlocklist: program and pins are old (none) or new (attached) after reconcile()', async () => {
    await withLab('crxdp', async (lab) => {
      const { netns, iface } = await lab2(lab);
      const reset = async (): Promise<void> => {
        const bl = new XdpBlocklist({ iface, netns, name: 'crash_xdp', backend: 'xdp' });
        (await bl.detach()).unwrap();
        bl.close();
      };
      try {
        await crashTrials('xdp', netns, iface, reset);
      } finally {
        await reset();
      }
    });
  });

  it('DpiBlocker: steering rules without a reader are removed by reconcile()', async () => {
    await withLab('crdpi', async (lab) => {
      const { netns, iface } = await lab2(lab);
      for (const tool of ['iptables-nft', 'ip6tables-nft']) await lab.sh(lab.hosts[0]!, [tool, '-A', 'FORWARD', '-i', 'lo', '-j', 'ACCEPT']);
      await crashTrials('dpi', netns, iface, async () => undefined, { finalMustBeOld: true });
    });
  });
});
