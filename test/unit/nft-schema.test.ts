import { describe, expect, it } from 'vitest';
import { nft } from '../../src/advanced.js';
import type { ValidationError } from '../../src/index.js';

const T = { family: 'inet', table: 'nf' } as const;
const goodDoc = () =>
  nft.document([
    nft.cmd.add(nft.table('inet', 'nf', { comment: 'netfence owner=test' })),
    nft.cmd.add(nft.chain(T, 'input', { type: 'filter', hook: 'input', prio: 0, policy: 'drop' })),
    nft.cmd.add(nft.set(T, 'blocked', 'ipv4_addr', { flags: ['interval'] })),
    nft.cmd.add(nft.elements(T, 'blocked', [nft.prefix('198.18.0.0', 24), '198.19.0.1'])),
    nft.cmd.add(
      nft.rule(T, 'input', [
        nft.match(nft.payload('ip', 'saddr'), '==', nft.setRef('blocked')),
        nft.counter(),
        nft.drop(),
      ]),
    ),
    nft.cmd.add(nft.rule(T, 'input', [nft.match(nft.payload('tcp', 'dport'), '==', nft.anonSet([22, 80])), nft.accept()])),
  ]);

/** Paths of the issues of a failed parse. */
function paths(r: { ok: boolean; val: unknown }): string[] {
  expect(r.ok).toBe(false);
  return (r.val as ValidationError).issues.map((i: { path: string }) => i.path);
}

describe('nft schemas: strict, tolerant, emit', () => {
  it('accepts a document built with the constructors, in every mode', () => {
    const doc = goodDoc();
    for (const mode of ['strict', 'tolerant', 'emit'] as const) {
      const r = nft.parseDocument(doc, { mode });
      expect(r.ok, mode).toBe(true);
      if (r.ok) expect(JSON.parse(JSON.stringify(r.val))).toEqual(doc);
    }
    expect(nft.parseDocument(JSON.stringify(doc)).ok).toBe(true);
  });

  it('rejects a misspelled field with a path naming it', () => {
    const r = nft.parseCommand({ add: { rule: { family: 'inet', table: 't', chain: 'c', expr: [{ match: { left: { payload: { protocol: 'tcp', feild: 'dport' } }, op: '==', right: 22 } }] } } });
    // unknown keys are named themselves (fromZodIssues), not only their parent object
    expect(paths(r)).toContain('add.rule.expr.0.match.left.payload.feild');
  });

  it('rejects a bad family, op, verdict target and statement kind with paths', () => {
    expect(paths(nft.parseCommand({ add: { table: { family: 'inet6', name: 't' } } }))).toEqual(['add.table.family']);
    expect(paths(nft.parseStatements([{ match: { left: { meta: { key: 'mark' } }, op: '=~', right: 1 } }]))).toEqual(['0.match.op']);
    expect(paths(nft.parseStatements([{ accept: null }, { jump: {} }]))).toEqual(['1.jump.target']);
    expect(paths(nft.parseStatements([{ acept: null }]))).toEqual(['0.acept']);
    expect(paths(nft.parseStatements([{ accept: null, drop: null }]))).toEqual(['0']);
  });

  it('rejects missing required fields and unknown commands', () => {
    expect(paths(nft.parseCommand({ add: { rule: { family: 'ip', table: 't', chain: 'c' } } }))).toEqual(['add.rule.expr']);
    expect(paths(nft.parseCommand({ replace: { rule: { family: 'ip', table: 't', chain: 'c', expr: [] } } }))).toEqual(['replace.rule.handle']);
    expect(paths(nft.parseCommand({ delete: { chain: { family: 'ip', table: 't' } } }))).toEqual(['delete.chain']);
    expect(paths(nft.parseCommand({ create: { rule: { family: 'ip', table: 't', chain: 'c', expr: [] } } }))).toEqual(['create.rule']);
    expect(paths(nft.parseCommand({ frobnicate: { table: { family: 'ip', name: 't' } } }))).toEqual(['frobnicate']);
  });

  it('refuses half-specified base chains and unknown vocabulary in strict mode only', () => {
    const half = { add: { chain: { family: 'ip', table: 't', name: 'c', hook: 'input', prio: 0 } } };
    expect(nft.parseCommand(half).ok).toBe(false);
    expect(nft.parseCommand(half, { mode: 'tolerant' }).ok).toBe(true);
    const newKey = [{ match: { left: { meta: { key: 'futurekey' } }, op: '==', right: 1 } }];
    expect(paths(nft.parseStatements(newKey))).toEqual(['0.match.left.meta.key']);
    expect(nft.parseStatements(newKey, { mode: 'tolerant' }).ok).toBe(true);
  });

  it('reads listings tolerantly: unknown keys kept, unknown kinds opaque and counted', () => {
    const listing = {
      nftables: [
        { metainfo: { version: '1.9.9', release_name: 'Future', json_schema_version: 1, future_field: true } },
        { table: { family: 'inet', name: 'x', handle: 1, newprop: 'kept' } },
        { rule: { family: 'inet', table: 'x', chain: 'c', handle: 4, expr: [{ teleport: { to: 'moon' } }, { match: { left: { quantum: {} }, op: '==', right: 1 } }, { accept: null }] } },
        { gizmo: { family: 'inet', name: 'g' } },
      ],
    };
    const r = nft.parseListing(listing);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect((r.val.nftables[1] as unknown as { table: Record<string, unknown> }).table.newprop).toBe('kept');
    const opaque = nft.findOpaque(r.val);
    expect(opaque.map((o) => o.kind).sort()).toEqual(['gizmo', 'quantum', 'teleport']);
    expect(opaque.map((o) => o.path)).toContain('nftables.2.rule.expr.0');
    expect(JSON.parse(JSON.stringify(r.val))).toEqual(listing);
    expect(nft.parseDocument(listing).ok).toBe(false);
  });

  it('refuses xt (iptables-nft compat) on input but models it in listings', () => {
    const xt = [{ xt: { type: 'match', name: 'conntrack' } }];
    expect(paths(nft.parseStatements(xt))).toEqual(['0.xt']);
    const r = nft.parseStatements(xt, { mode: 'tolerant' });
    expect(r.ok && nft.findOpaque(r.val)).toEqual([]);
  });

  it('emit mode refuses names, comments and strings netfence must never send', () => {
    const bad = nft.document([
      nft.cmd.add(nft.table('inet', 'x; flush ruleset')),
      nft.cmd.add(nft.chain({ family: 'inet', table: 'ok' }, 'c', { type: 'filter', hook: 'input', prio: 0, dev: 'eth0"$(id)' })),
      nft.cmd.add(nft.rule({ family: 'inet', table: 'ok' }, 'c', [nft.jump('a b'), nft.log({ prefix: 'a"b' })], { comment: 'line\nbreak' })),
    ]);
    expect(nft.parseDocument(bad, { mode: 'strict' }).ok).toBe(true);
    const r = nft.parseDocument(bad, { mode: 'emit' });
    expect(paths(r).sort()).toEqual([
      'nftables.0.add.table.name',
      'nftables.1.add.chain.dev',
      'nftables.1.add.chain.dev',
      'nftables.2.add.rule.comment',
      'nftables.2.add.rule.comment',
      'nftables.2.add.rule.expr.0.jump.target',
      'nftables.2.add.rule.expr.1.log.prefix',
    ]);
  });

  it('reports invalid JSON text as a validation error', () => {
    const r = nft.parseDocument('{"nftables": [');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.val.message).toMatch(/not valid JSON/);
  });
});
