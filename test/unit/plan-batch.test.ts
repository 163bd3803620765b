import { describe, expect, it } from 'vitest';
import { planBatch } from '../../src/plan/executor.js';
import { ownerMarkName } from '../../src/plan/ownership.js';
import { emptyPlan } from '../../src/plan/types.js';
import type { Command } from '../../src/nft/schema/index.js';

const mark = (table: string) => ({ add: { counter: { family: 'inet', table, name: ownerMarkName('fw:web'), comment: 'netfence:fw:web' } } });

describe('planBatch', () => {
  it('creates and marks every owned table before the plan commands', () => {
    const p = emptyPlan('fw:web');
    p.tables.push({ family: 'inet', name: 'a' }, { family: 'inet', name: 'b' });
    const rule: Command = { add: { chain: { family: 'inet', table: 'a', name: 'c' } } };
    p.nft.push(rule);
    const b = planBatch(p);
    expect(b.commands).toEqual([
      { add: { table: { family: 'inet', name: 'a' } } },
      mark('a'),
      { add: { table: { family: 'inet', name: 'b' } } },
      mark('b'),
      rule,
    ]);
    expect(b.offset).toBe(4);
    expect([...b.expectPresent]).toEqual([['inet a', true], ['inet b', true]]);
  });

  it('re-marks a table the plan replaces, and expects a deleted table to be gone', () => {
    const p = emptyPlan('fw:web');
    p.tables.push({ family: 'inet', name: 'a' }, { family: 'inet', name: 'gone' });
    p.nft.push(
      { delete: { table: { family: 'inet', name: 'a' } } },
      { add: { table: { family: 'inet', name: 'a' } } },
      { delete: { table: { family: 'inet', name: 'gone' } } },
    );
    const b = planBatch(p);
    expect(b.commands.slice(b.offset + 3)).toEqual([mark('a')]);
    expect(b.expectPresent.get('inet a')).toBe(true);
    expect(b.expectPresent.get('inet gone')).toBe(false);
  });

  it('with JSON table comments (tableComment), owned tables are created with netfence:<owner>; the mark stays the counter', () => {
    const p = emptyPlan('fw:web');
    p.tables.push({ family: 'inet', name: 'a' }, { family: 'ip', name: 'b' });
    const foreign: Command = { add: { table: { family: 'inet', name: 'not_in_plan_tables' } } };
    p.nft.push(
      { delete: { table: { family: 'inet', name: 'a' } } },
      { add: { table: { family: 'inet', name: 'a' } } },
      { create: { table: { family: 'ip', name: 'b' } } },
      { add: { table: { family: 'inet', name: 'a', comment: 'chosen by the plan' } } },
      foreign,
      { add: { chain: { family: 'inet', table: 'a', name: 'c' } } },
    );
    const plain = planBatch(p);
    const b = planBatch(p, { tableComment: true });
    const comment = 'netfence:fw:web';
    expect(b.commands.slice(0, b.offset)).toEqual([
      { add: { table: { family: 'inet', name: 'a', comment } } },
      mark('a'),
      { add: { table: { family: 'ip', name: 'b', comment } } },
      { add: { counter: { family: 'ip', table: 'b', name: ownerMarkName('fw:web'), comment } } },
    ]);
    // the re-created table gets the comment too (the kernel keeps the comment a table is created with)
    expect(b.commands.slice(b.offset)).toEqual([
      { delete: { table: { family: 'inet', name: 'a' } } },
      { add: { table: { family: 'inet', name: 'a', comment } } },
      { create: { table: { family: 'ip', name: 'b', comment } } },
      { add: { table: { family: 'inet', name: 'a', comment: 'chosen by the plan' } } },
      foreign,
      { add: { chain: { family: 'inet', table: 'a', name: 'c' } } },
      mark('a'),
    ]);
    // same shape and offsets as without the feature; the plan itself is not modified
    expect(b.offset).toBe(plain.offset);
    expect(b.commands).toHaveLength(plain.commands.length);
    expect(plain.commands).not.toContainEqual(expect.objectContaining({ add: { table: expect.objectContaining({ comment }) } }));
    expect(p.nft[1]).toEqual({ add: { table: { family: 'inet', name: 'a' } } });
  });
});
