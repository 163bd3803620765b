/**
 * The confirm watchdog's logic on a FakeHost (no root, no kernel): the
 * watchdog is driven in-process (`runWatchdog`), the applier's death is
 * simulated by rewriting the entry's process to one that does not exist, and
 * the watchdog's life by naming this test process as the watchdog. Judged on
 * the fake kernel's ruleset, as the kernel test (reliability-confirm) judges
 * with packets.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { apply, type AppliedPlan } from '../../src/plan/executor.js';
import { monotonicMs, processIdentity, readJournal, readJournalEntry, removeJournalEntry, rewriteJournalEntry, WATCHDOG_GRACE_MS, type ApplyJournalEntry } from '../../src/plan/journal.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { reconcile } from '../../src/plan/reconcile.js';
import { emptyPlan, type Plan } from '../../src/plan/types.js';
import { confirmApplied, pendingConfirms } from '../../src/plan/watchdog.js';
import { runWatchdog } from '../../src/plan/watchdog-run.js';

const NS = 'wd-fake';
const DEAD = { pid: 4_194_000, startTime: 'gone', pgid: 4_194_000 };
const me = processIdentity(process.pid)!;

function plan(table: string): Plan {
  const p = emptyPlan('test:watchdog', NS);
  const ref = { family: 'inet' as const, name: table };
  p.tables = [ref];
  p.nft = [{ add: { table: ref } }, { add: { chain: { ...ref, table, name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } }] as Plan['nft'];
  return p;
}

let fake: FakeHost;
const open: AppliedPlan[] = [];
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS] });
  // stop the in-process timers of earlier tests (confirm() after the entry is gone only clears the timer)
  for (const a of open.splice(0)) a.confirm();
  for (const e of readJournal()) removeJournalEntry(e.id);
});

/** Apply `table` with a long confirm deadline, then make the entry look like "applier dead, watchdog = this process, deadline in `inMs`". */
async function applied(table: string, inMs: number, watchdog: { pid: number; startTime: string } | undefined = me): Promise<{ a: AppliedPlan; id: string }> {
  const r = await withHost(fake, () => apply(plan(table), { confirmWithinMs: 60_000 }));
  if (r.err) throw r.val;
  const a = r.val;
  open.push(a);
  expect(a.id).toMatch(/^apply-.*\.json$/);
  expect(a.watchdogPid).toBeUndefined(); // FakeHost: no watchdog process by default
  const e = readJournalEntry(a.id!) as ApplyJournalEntry;
  expect(e.phase).toBe('awaiting-confirm');
  expect(e.confirm?.withinMs).toBe(60_000);
  rewriteJournalEntry({ ...e, ...DEAD, confirm: { ...e.confirm!, deadlineMonoMs: monotonicMs() + inMs, watchdog } });
  return { a, id: a.id! };
}

const hasTable = (t: string) => fake.nftOf(NS).table('inet', t) !== undefined;

describe('confirm watchdog (FakeHost)', () => {
  it('holds the entry while it lives: reconcile() leaves it alone; at the deadline it reverts through the repair path', async () => {
    const { id } = await applied('wd1', 300);
    expect(hasTable('wd1')).toBe(true);
    const rec = await withHost(fake, () => reconcile({ netns: NS }));
    expect(rec.unwrap().live).toBe(1);
    expect(rec.unwrap().found).toEqual([]);
    expect(hasTable('wd1')).toBe(true);
    expect(pendingConfirms({ netns: NS }).map((p) => [p.id, p.applier.alive, p.watchdog?.alive])).toEqual([[id, false, true]]);
    const t0 = monotonicMs();
    const w = await withHost(fake, () => runWatchdog(id, { pollMs: 10 }));
    expect(w.outcome).toBe('reverted');
    expect(monotonicMs() - t0).toBeGreaterThanOrEqual(290); // not before the deadline
    expect(hasTable('wd1')).toBe(false); // a new table: deleted
    expect(readJournalEntry(id)).toBeUndefined();
  });

  it('disarms when confirmed from another process (confirmApplied): the plan stays, the watchdog returns at once', async () => {
    const { id } = await applied('wd2', 5_000);
    const w = withHost(fake, () => runWatchdog(id, { pollMs: 10 }));
    const c = await confirmApplied(undefined, { netns: NS });
    expect(c.unwrap().id).toBe(id);
    const t0 = monotonicMs();
    expect((await w).outcome).toBe('disarmed');
    expect(monotonicMs() - t0).toBeLessThan(1000);
    expect(hasTable('wd2')).toBe(true);
    expect(pendingConfirms()).toEqual([]);
  });

  it('the applier\'s own confirm() disarms it too; the applier\'s timer and the watchdog: whoever comes first wins', async () => {
    const { a, id } = await applied('wd3', 5_000);
    const w = withHost(fake, () => runWatchdog(id, { pollMs: 10 }));
    a.confirm();
    expect(a.state).toBe('confirmed');
    expect((await w).outcome).toBe('disarmed');
    expect(hasTable('wd3')).toBe(true);
    // the applier rolled back first: the watchdog finds nothing to do
    const b = await applied('wd4', 200);
    expect((await withHost(fake, () => b.a.rollback())).ok).toBe(true);
    expect((await withHost(fake, () => runWatchdog(b.id, { pollMs: 10 }))).outcome).toBe('disarmed');
    expect(hasTable('wd4')).toBe(false);
  });

  it('confirmApplied: nothing pending, several pending, deadline passed, unknown id', async () => {
    const none = await confirmApplied();
    expect(none.err && none.val.code).toBe('NOT_FOUND');
    const x = await applied('wd5', 5_000);
    await applied('wd6', 5_000);
    const amb = await confirmApplied(undefined, { netns: NS });
    expect(amb.err && amb.val.code).toBe('CONFIRM_AMBIGUOUS');
    expect(amb.err && amb.val.message).toContain(x.id);
    const e = readJournalEntry(x.id)!;
    rewriteJournalEntry({ ...e, confirm: { ...e.confirm!, deadlineMonoMs: monotonicMs() - 1 } });
    const late = await confirmApplied(x.id);
    expect(late.err && late.val.code).toBe('CONFIRM_EXPIRED');
    expect(readJournalEntry(x.id)).toBeDefined(); // left for the watchdog
    const unknown = await confirmApplied('apply-1-2-3.json');
    expect(unknown.err && unknown.val.code).toBe('NOT_FOUND');
    const bad = await confirmApplied('../etc/passwd');
    expect(bad.err && bad.val.code).toBe('VALIDATION');
    // the other one is now the only one still open
    expect((await confirmApplied(undefined, { netns: NS })).ok).toBe(true);
  });

  it('reconcile() reverts when nobody holds the entry: watchdog dead, or alive past the deadline plus the grace', async () => {
    const { id } = await applied('wd7', 60_000, DEAD);
    let rec = (await withHost(fake, () => reconcile({ netns: NS }))).unwrap();
    expect(rec.found.map((f) => f.entry)).toEqual([id]);
    expect(hasTable('wd7')).toBe(false);
    const stuck = await applied('wd8', -WATCHDOG_GRACE_MS - 1);
    rec = (await withHost(fake, () => reconcile({ netns: NS }))).unwrap();
    expect(rec.found.map((f) => f.entry)).toEqual([stuck.id]);
    expect(hasTable('wd8')).toBe(false);
    expect(readJournal()).toEqual([]);
  });

  it('reverts at once when the applier died before writing the deadline', async () => {
    const r = await withHost(fake, () => apply(plan('wd9'), { confirmWithinMs: 60_000 }));
    const a = r.unwrap();
    open.push(a);
    const e = readJournalEntry(a.id!)!;
    rewriteJournalEntry({ ...e, ...DEAD, confirm: undefined });
    expect((await withHost(fake, () => runWatchdog(a.id!, { pollMs: 10 }))).outcome).toBe('reverted');
    expect(hasTable('wd9')).toBe(false);
  });
});
