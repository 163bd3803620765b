import { describe, expect, it } from 'vitest';
import { listingToCommands, restoreCommands } from '../../src/plan/snapshot.js';
import { parseListingText } from '../../src/nft/listing.js';
import { commandTarget, isOwned, ownerMarkName, ownerOf, ownershipCommands } from '../../src/plan/ownership.js';

const MARK = ownerMarkName('fw:web');

const T = { family: 'inet' as const, name: 't1' };

/** A listing as nft 1.0.6 prints it (`nft -j list table inet t1`): note the map before the chain it jumps to. */
const raw = {
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'inet', name: 't1', handle: 6 } },
    { counter: { family: 'inet', name: MARK, table: 't1', handle: 1, comment: 'netfence:fw:web', packets: 0, bytes: 0 } },
    { set: { family: 'inet', name: 's', table: 't1', type: 'ipv4_addr', handle: 2, flags: ['timeout'], elem: [{ elem: { val: '1.2.3.4', timeout: 3600, expires: 3599 } }] } },
    { map: { family: 'inet', name: 'vm', table: 't1', type: 'ipv4_addr', handle: 4, map: 'verdict', elem: [['1.1.1.1', { jump: { target: 'c2' } }]] } },
    { chain: { family: 'inet', table: 't1', name: 'c2', handle: 3 } },
    { chain: { family: 'inet', table: 't1', name: 'input', handle: 5, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
    { rule: { family: 'inet', table: 't1', chain: 'input', handle: 7, expr: [{ vmap: { key: { payload: { protocol: 'ip', field: 'saddr' } }, data: '@vm' } }] } },
    { rule: { family: 'inet', table: 't1', chain: 'input', handle: 8, comment: 'second', expr: [{ accept: null }] } },
    { table: { family: 'ip', name: 'other', handle: 9 } },
    { chain: { family: 'ip', table: 'other', name: 'x', handle: 1 } },
  ],
};
/** Read through the listing module, as nftList() does (tolerant schema). */
const listing = parseListingText(raw).unwrap();

describe('snapshot → restore commands', () => {
  it('re-creates a table from its listing: no handles, chains before maps, rules last in order', () => {
    const cmds = listingToCommands(listing, T) as Record<string, Record<string, Record<string, unknown>>>[];
    const shape = cmds.map((c) => {
      const [verb] = Object.keys(c);
      const [kind] = Object.keys(c[verb as string] as object);
      return `${verb} ${kind} ${String((c[verb as string] as Record<string, Record<string, unknown>>)[kind as string]?.name ?? '')}`;
    });
    expect(shape).toEqual(['add table t1', 'add chain c2', 'add chain input', `add counter ${MARK}`, 'add set s', 'add map vm', 'add rule ', 'add rule ']);
    expect(JSON.stringify(cmds)).not.toContain('"handle"');
    // remaining timeouts are kept (nft accepts "expires" on input)
    expect(JSON.stringify(cmds)).toContain('"expires":3599');
    // the other table in the listing is ignored
    expect(JSON.stringify(cmds)).not.toContain('"other"');
    expect((cmds[7] as { add: { rule: { comment: string } } }).add.rule.comment).toBe('second');
  });

  it('restores in one batch: new tables deleted, existing ones replaced, unknown ones reported', () => {
    const { commands, unrestorable } = restoreCommands([
      { table: { family: 'inet', name: 'new1' }, existed: false },
      { table: T, existed: true, listing },
      { table: { family: 'ip', name: 'nosnap' }, existed: true },
    ]);
    expect(unrestorable).toEqual([{ family: 'ip', name: 'nosnap' }]);
    expect(commands.slice(0, 4)).toEqual([
      { add: { table: { family: 'inet', name: 'new1' } } },
      { delete: { table: { family: 'inet', name: 'new1' } } },
      { add: { table: { family: 'inet', name: 't1' } } },
      { delete: { table: { family: 'inet', name: 't1' } } },
    ]);
    expect(commands).toHaveLength(4 + 8);
    expect(JSON.stringify(commands)).not.toContain('nosnap');
  });

  it('with destroy, a table is removed by one destroy (delete if it exists) instead of add + delete', () => {
    const { commands } = restoreCommands(
      [
        { table: { family: 'inet', name: 'new1' }, existed: false },
        { table: T, existed: true, listing },
      ],
      { destroy: true },
    );
    expect(commands.slice(0, 2)).toEqual([{ destroy: { table: { family: 'inet', name: 'new1' } } }, { destroy: { table: { family: 'inet', name: 't1' } } }]);
    expect(commands).toHaveLength(2 + 8);
    expect(commands.slice(2)).toEqual(restoreCommands([{ table: T, existed: true, listing }]).commands.slice(2));
  });
});

describe('ownership marks', () => {
  it('creates the table and its marker; recognizes owner and table', () => {
    expect(ownershipCommands(T, 'fw:web')).toEqual([
      { add: { table: { family: 'inet', name: 't1' } } },
      { add: { counter: { family: 'inet', table: 't1', name: MARK, comment: 'netfence:fw:web' } } },
    ]);
    // where the nft keeps JSON table comments, the table also says who owns it
    expect(ownershipCommands(T, 'fw:web', { tableComment: true })).toEqual([
      { add: { table: { family: 'inet', name: 't1', comment: 'netfence:fw:web' } } },
      { add: { counter: { family: 'inet', table: 't1', name: MARK, comment: 'netfence:fw:web' } } },
    ]);
    expect(ownerOf(listing, T)).toBe('fw:web');
    expect(isOwned(listing, 'fw:web', T)).toBe(true);
    expect(isOwned(listing, 'fw:other', T)).toBe(false);
    expect(isOwned(listing.nftables)).toBe(true);
    expect(isOwned(listing, undefined, { family: 'ip', name: 'other' })).toBe(false);
    expect(MARK).toMatch(/^netfence_owner_[0-9a-f]{12}$/);
    expect(ownerMarkName('fw:other')).not.toBe(MARK);
    // name and comment must agree: a copied name with another comment, or a foreign comment, is not a mark
    expect(isOwned([{ counter: { family: 'inet', table: 't1', name: MARK, comment: 'netfence:fw:other' } }])).toBe(false);
    expect(isOwned([{ counter: { family: 'inet', table: 't1', name: MARK, comment: 'mine' } }])).toBe(false);
    expect(isOwned([{ table: { family: 'ip', name: 'filter', handle: 1 } }])).toBe(false);
  });

  it('finds the table each command targets', () => {
    expect(commandTarget({ add: { table: { family: 'inet', name: 'x' } } })).toEqual({ ok: true, target: { verb: 'add', object: 'table', table: { family: 'inet', name: 'x' } } });
    expect(commandTarget({ delete: { element: { family: 'ip', table: 'y', name: 's', elem: ['1.2.3.4'] } } })).toEqual({ ok: true, target: { verb: 'delete', object: 'element', table: { family: 'ip', name: 'y' } } });
    expect(commandTarget({ add: { 'ct helper': { family: 'inet', table: 'z', name: 'h' } } }).ok).toBe(true);
    expect(commandTarget({ flush: { ruleset: null } }).ok).toBe(false);
    expect(commandTarget({ add: { chain: { family: 'inet6', table: 'x', name: 'c' } } }).ok).toBe(false);
  });
});
