import { describe, expect, it } from 'vitest';
import { planBatch } from '../../src/plan/executor.js';
import { ownerMarkName } from '../../src/plan/ownership.js';
import { emptyPlan } from '../../src/plan/types.js';

const mark = (table: string) => ({ add: { counter: { family: 'inet', table, name: ownerMarkName('fw:web'), comment: 'netfence:fw:web' } } });

describe('planBatch', () => {
  it('creates and marks every owned table before the plan commands', () => {
    const p = emptyPlan('fw:web');
    p.tables.push({ family: 'inet', name: 'a' }, { family: 'inet', name: 'b' });
    const rule = { add: { chain: { family: 'inet', table: 'a', name: 'c' } } };
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
});
