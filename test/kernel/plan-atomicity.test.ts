import { describe, expect, it } from 'vitest';
import { withLab } from '../../src/lab/index.js';
import { apply, check } from '../../src/plan/executor.js';
import { emptyPlan, type Plan } from '../../src/plan/types.js';
import { run } from '../../src/host/run.js';
import { ApplyError, CommandError, ValidationError } from '../../src/errors.js';
import type { Command } from '../../src/nft/schema/index.js';

const T = { family: 'inet' as const, name: 'nf_atomic' };
const chain = (name: string): Command => ({ add: { chain: { family: 'inet', table: T.name, name } } });
const elem = (a: string): Command => ({ add: { element: { family: 'inet', table: T.name, name: 'blocked', elem: [a] } } });
const rule = (c: string, addr: string): Command => ({
  add: { rule: { family: 'inet', table: T.name, chain: c, expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: addr } }, { drop: null }] } },
});

/**
 * Three kinds of invalid command: caught by the kernel, by nft's evaluation, and one nft's JSON
 * parser would refuse, which the executor's strict schema check refuses first (nothing is sent).
 */
const INVALID: Record<'kernel' | 'evaluation' | 'parser', Command> = {
  kernel: rule('no_such_chain', '198.18.0.1'),
  evaluation: { add: { element: { family: 'inet', table: T.name, name: 'blocked', elem: ['fd00::1'] } } },
  parser: { add: { rule: { family: 'inet', table: T.name, chain: 'input', expr: [{ bogus: null }] } } } as unknown as Command,
};

async function listings(netns: string): Promise<{ text: string; json: string }> {
  const t = await run(['nft', 'list', 'ruleset'], { netns });
  const j = await run(['nft', '-j', 'list', 'ruleset'], { netns });
  if (t.err) throw t.val;
  if (j.err) throw j.val;
  return { text: t.val.stdout, json: j.val.stdout };
}

function bigPlan(netns: string): Plan {
  const p = emptyPlan('test:atomic', netns);
  p.tables.push(T);
  p.nft.push(
    chain('extra1'),
    ...Array.from({ length: 8 }, (_, i) => elem(`198.18.20.${i + 1}`)),
    rule('input', '198.18.21.1'),
    chain('extra2'),
    ...Array.from({ length: 8 }, (_, i) => elem(`198.18.22.${i + 1}`)),
    rule('extra1', '198.18.23.1'),
  );
  return p;
}

describe('atomicity: a plan with one invalid command changes nothing', () => {
  it('leaves the previous ruleset exactly as it was for k = first, middle, last, and names k', async () => {
    await withLab('atomic', async (lab) => {
      const h = await lab.host('a');
      // previous state: one owned table with content, one foreign table
      const base = emptyPlan('test:atomic', h.netns);
      base.tables.push(T);
      base.nft.push(
        { add: { chain: { family: 'inet', table: T.name, name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
        { add: { set: { family: 'inet', table: T.name, name: 'blocked', type: 'ipv4_addr' } } },
        elem('198.18.10.1'),
        rule('input', '198.18.10.2'),
      );
      expect((await apply(base)).ok).toBe(true);
      await lab.sh(h, ['nft', 'add', 'table', 'ip', 'other']);
      await lab.sh(h, ['nft', 'add', 'chain', 'ip', 'other', 'c']);
      const before = await listings(h.netns);

      const n = bigPlan(h.netns).nft.length;
      let cases = 0;
      for (const [kind, bad] of Object.entries(INVALID)) {
        for (const k of [0, Math.floor(n / 2), n]) {
          const p = bigPlan(h.netns);
          p.nft.splice(k, 0, bad);
          const label = `${kind} error at k=${k} of ${p.nft.length}`;
          for (const mode of ['check', 'apply'] as const) {
            const r = mode === 'check' ? await check(p) : await apply(p, { snapshot: 'never' });
            expect(r.err, label).toBe(true);
            if (r.ok) continue;
            if (kind === 'parser') {
              // refused by validation, naming the command's index in the plan; nothing reached nft
              const v = (mode === 'check' ? r.val : r.val.cause) as ValidationError;
              expect(v, label).toBeInstanceOf(ValidationError);
              expect(v.issues.map((i) => i.path).some((p) => p.startsWith(`nft.${k}.add.rule.expr.0`)), `${label} (${mode}): ${v.message}`).toBe(true);
              if (mode === 'apply') {
                expect((r.val as unknown as ApplyError).phase).toBe('validate');
                expect((r.val as unknown as ApplyError).restored).toBe(true);
              }
              expect(await listings(h.netns), `${label} (${mode})`).toEqual(before);
              cases++;
              continue;
            }
            const cmdErr = (mode === 'check' ? r.val : r.val.cause) as CommandError;
            expect(cmdErr, label).toBeInstanceOf(CommandError);
            expect(cmdErr.failure.failedIndex, `${label} (${mode})`).toBe(k);
            expect(cmdErr.failure.failedCommand, label).toEqual(bad);
            if (mode === 'apply') {
              expect((r.val as unknown as ApplyError).phase).toBe('nft');
              expect((r.val as unknown as ApplyError).restored).toBe(true);
            }
            expect(await listings(h.netns), `${label} (${mode})`).toEqual(before);
            cases++;
          }
        }
      }
      expect(cases).toBe(18);
      // and the same plan without the invalid command does apply
      const good = await apply(bigPlan(h.netns), { snapshot: 'never' });
      expect(good.ok, good.err ? good.val.message : '').toBe(true);
      expect((await listings(h.netns)).text).toContain('198.18.23.1');
    });
  });
});
