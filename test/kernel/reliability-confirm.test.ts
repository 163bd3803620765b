/**
 * Confirm-or-revert without the applying process (issue 16): a child process
 * (confirm-child.ts) applies a class's NEW configuration with a confirm
 * deadline and is SIGKILLed while it waits. Nobody calls reconcile() to
 * revert: the detached watchdog must have brought the OLD configuration back
 * by the deadline + 1 s — proven with packets. reconcile() called during the
 * wait must leave the plan alone (its watchdog lives, its deadline has not
 * passed). A plan confirmed from another process (confirmApplied, or
 * `netfence confirm ID`) stays after the deadline — packets again — and its
 * watchdog is gone.
 *
 * Topology (lab3): b (198.18.1.2) — a (198.18.1.1 | 198.18.2.1) — c (198.18.2.2);
 * every class is applied in `a`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/host/run.js';
import { NetfenceRouteManager } from '../../src/integrations/smartproxy.js';
import { withLab } from '../../src/lab/index.js';
import { isAlive, monotonicMs, readJournal, readJournalEntry } from '../../src/plan/journal.js';
import { reconcile } from '../../src/plan/reconcile.js';
import { confirmApplied, pendingConfirms } from '../../src/plan/watchdog.js';
import { crashFirewall, crashRoute, lab3 } from './crash-state.js';
import { tcp, transferMbit } from './crash-traffic.js';

/** Long enough for the checks during the wait (a transfer starts a node process in a namespace) on a busy machine. */
const CONFIRM_MS = 8000;
const here = new URL('.', import.meta.url).pathname;
const CLI = [process.execPath, '--import', 'tsx', join(here, '../../src/cli/main.ts')];


interface Applied {
  child: ChildProcess;
  id: string;
  watchdogPid: number;
  /** The deadline on CLOCK_MONOTONIC (ms), as the journal entry says. */
  deadlineMonoMs: number;
  log: string;
  /** The child's apply (ms), watchdog start included. */
  applyMs: number;
}

/** Start confirm-child.ts and wait for its `applied` line. */
async function applyInChild(cls: string, netns: string, iface: string): Promise<Applied> {
  const log = join(tmpdir(), `netfence-watchdog-${process.pid}-${cls}-${Date.now()}.log`);
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'confirm-child.ts'), cls, netns, iface, String(CONFIRM_MS)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NETFENCE_WATCHDOG_LOG: log },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`confirm-child ${cls} exited ${code}: ${stderr}`)));
  });
  expect(line.startsWith('applied '), `${line} ${stderr}`).toBe(true);
  const o = JSON.parse(line.slice('applied '.length)) as { id: string; watchdogPid: number; ms: number; timings: Record<string, number> };
  const e = readJournalEntry(o.id);
  expect(e?.phase).toBe('awaiting-confirm');
  expect(e?.confirm?.watchdog?.pid).toBe(o.watchdogPid);
  expect(isAlive(e!.confirm!.watchdog!)).toBe(true);
  console.log(`[confirm] ${cls}: applied in ${o.ms} ms (watchdog start ${o.timings.watchdog} ms), id ${o.id}, watchdog pid ${o.watchdogPid}`);
  return { child, id: o.id, watchdogPid: o.watchdogPid, deadlineMonoMs: e!.confirm!.deadlineMonoMs, log, applyMs: o.ms };
}

async function sigkill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

const sleepUntil = async (mono: number): Promise<void> => {
  const left = mono - monotonicMs();
  if (left > 0) await new Promise((r) => setTimeout(r, left));
};

/** The watchdog's own record (it writes it right after removing the entry): ms from the deadline to the end of its revert. */
async function watchdogLate(log: string): Promise<number | undefined> {
  for (let i = 0; i < 100; i++) {
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {
      // not yet written
    }
    const m = /reverted late=(\d+)ms/.exec(text);
    if (m) {
      rmSync(log, { force: true });
      return Number(m[1]);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

const reverts: { cls: string; entryGoneBy: string; watchdogLate: number | undefined; applyMs: number }[] = [];

/**
 * The scenario of one class: old state in force (checked by `check('old')`),
 * the child applies NEW with a confirm deadline, NEW is in force; the child is
 * SIGKILLed; reconcile() during the wait leaves it alone; at the deadline + 1 s
 * the journal entry is gone and packets show OLD. Then the same apply again,
 * confirmed from this process (or the CLI): NEW stays after the deadline.
 */
async function scenario(cls: string, netns: string, iface: string, check: (want: 'old' | 'new') => Promise<void>, confirmVia: 'library' | 'cli'): Promise<void> {
  await check('old');
  // 1. SIGKILL during the wait, nobody calls reconcile() to revert
  const k = await applyInChild(cls, netns, iface);
  await check('new');
  await sigkill(k.child);
  expect(monotonicMs()).toBeLessThan(k.deadlineMonoMs); // killed during the wait
  const rec = (await reconcile({ netns })).unwrap();
  expect(monotonicMs(), 'reconcile() ran during the wait').toBeLessThan(k.deadlineMonoMs);
  expect(rec.found.map((f) => f.entry)).not.toContain(k.id);
  expect(rec.live).toBeGreaterThanOrEqual(1);
  expect(readJournalEntry(k.id)?.phase).toBe('awaiting-confirm');
  expect(pendingConfirms({ netns }).map((p) => p.id)).toEqual([k.id]);
  await check('new'); // reconcile() left it alone
  // poll the journal: when was the entry gone (the watchdog removes it after the kernel state was restored)
  let goneAt: number | undefined;
  while (monotonicMs() < k.deadlineMonoMs + 1000) {
    if (!readJournalEntry(k.id)) {
      goneAt = monotonicMs();
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const late = goneAt !== undefined ? goneAt - k.deadlineMonoMs : undefined;
  const wl = await watchdogLate(k.log);
  reverts.push({ cls, entryGoneBy: late !== undefined ? `${late} ms` : 'NOT within 1 s', watchdogLate: wl, applyMs: k.applyMs });
  console.log(`[confirm] ${cls}: SIGKILLed applier; watchdog reverted ${wl ?? '?'} ms after the deadline, journal entry gone ${late ?? '> 1000'} ms after it`);
  expect(late, 'the host is back (journal entry removed after the restore) within the deadline + 1 s').toBeDefined();
  expect(late!).toBeLessThanOrEqual(1000);
  await check('old');
  expect(readJournal().filter((e) => e.netns === netns)).toEqual([]);
  expect(await waitGone(k.watchdogPid)).toBe(true);

  // 2. confirmed from another process: stays after the deadline, watchdog gone
  const c = await applyInChild(cls, netns, iface);
  await check('new');
  if (confirmVia === 'library') {
    const r = (await confirmApplied(c.id, { netns })).unwrap();
    expect(r.id).toBe(c.id);
    expect(r.watchdogExited).toBe(true);
  } else {
    const cli = await run([...CLI, 'confirm', '--netns', netns, '--json'], { what: 'netfence confirm', timeoutMs: 60_000 });
    if (cli.err) throw cli.val;
    const out = JSON.parse(cli.val.stdout) as { confirmed: boolean; id: string; watchdogExited: boolean };
    expect(out).toMatchObject({ confirmed: true, id: c.id, watchdogExited: true });
    // a second confirm finds nothing: exit 3
    const again = await run([...CLI, 'confirm', c.id], { what: 'netfence confirm again', timeoutMs: 60_000 });
    expect(again.err && again.val.failure.exitCode).toBe(3);
  }
  expect(await waitGone(c.watchdogPid)).toBe(true);
  expect(readJournalEntry(c.id)).toBeUndefined();
  await sigkill(c.child); // the confirmed plan does not depend on its applier either
  await sleepUntil(c.deadlineMonoMs + 1000);
  await check('new');
  expect(readJournal().filter((e) => e.netns === netns)).toEqual([]);
  // confirming again is "nothing to confirm"
  const none = await confirmApplied(c.id);
  expect(none.err && none.val.code).toBe('NOT_FOUND');
}

/** Whether process `pid` is gone (or a zombie) within 2 s. */
async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    let st = '';
    try {
      st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return true;
    }
    if (/\) [ZX] /.test(st)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe('reliability: confirm-or-revert survives the SIGKILL of the applier (detached watchdog)', () => {
  it('Firewall: the old table (snapshot) is back within the deadline + 1 s; a plan confirmed with `netfence confirm` stays', async () => {
    await withLab('cffw', async (lab) => {
      const { a, b, iface } = await lab3(lab);
      await lab.serve(a, 'tcp', 7005);
      (await crashFirewall(a.netns, 'old').apply()).unwrap();
      // old drops TCP 7000-7001, new drops 7000-7039: 7005 is open (old) or dropped (new)
      const check = async (want: 'old' | 'new') => expect(await tcp(lab, b, '198.18.1.1', 7005, 700), `TCP 7005 (${want})`).toBe(want === 'old' ? 'open' : 'timeout');
      await scenario('firewall', a.netns, iface, check, 'cli');
      (await crashFirewall(a.netns, 'old').destroy()).unwrap();
    });
  });

  it('Throttler: the IFB, qdiscs and filters are gone within the deadline + 1 s; a confirmed limit stays', async () => {
    await withLab('cftc', async (lab) => {
      const { a, b, iface } = await lab3(lab);
      // 1 MB: long enough (0.8 s at the limit) that the shaper's burst does not dominate the rate
      const BYTES = 1_000_000;
      await lab.serve(b, 'tcp', 9000, `%bytes:${BYTES}`);
      // new: 10 Mbit/s on a's ingress (b → a); old: no limit
      const check = async (want: 'old' | 'new') => {
        const mbit = await transferMbit(a, '198.18.1.2', 9000, BYTES, 5000);
        expect(mbit, `the 1 MB transfer completed (${want})`).toBeDefined();
        if (want === 'new') expect(mbit!, 'rate with the 10 Mbit/s limit').toBeLessThanOrEqual(15);
        else expect(mbit!, 'rate without a limit').toBeGreaterThan(15);
      };
      await scenario('throttler', a.netns, iface, check, 'library'); // the confirmed limit goes with the namespace
    });
  });

  it('SmartProxy routes: the old route table is back within the deadline + 1 s; a confirmed one stays', async () => {
    await withLab('cfsp', async (lab) => {
      const { a, b, c, iface } = await lab3(lab);
      await lab.serve(c, 'tcp', 80, 'srv');
      const m = new NetfenceRouteManager({ tableName: 'nf_cfsp', netns: a.netns, owner: 'test:confirm-sp' });
      (await m.syncRoutes([crashRoute('old')])).unwrap();
      // old: port 8080 forwarded to c; new: the table holds only the route of port 8081
      const check = async (want: 'old' | 'new') => {
        expect(await tcp(lab, b, '198.18.1.1', 8080), `8080 (${want})`).toBe(want === 'old' ? 'open' : 'refused');
        expect(await tcp(lab, b, '198.18.1.1', 8081), `8081 (${want})`).toBe(want === 'old' ? 'refused' : 'open');
      };
      await scenario('smartproxy', a.netns, iface, check, 'library'); // the confirmed table goes with the namespace
    });
  });

  it('prints the timings', () => {
    console.log('[confirm] | class | applier SIGKILLed during the wait: journal entry gone after the deadline | watchdog: revert done after the deadline | apply incl. watchdog start |');
    for (const r of reverts) console.log(`[confirm] | ${r.cls} | ${r.entryGoneBy} | ${r.watchdogLate ?? '?'} ms | ${r.applyMs} ms |`);
    expect(reverts.map((r) => r.cls)).toEqual(['firewall', 'throttler', 'smartproxy']);
  });
});
