import { describe, expect, it } from 'vitest';
import { ApplyError, CommandError } from '../../src/errors.js';
import { applyEcho, failedAtStaleHandle } from '../../src/firewall/live-rules.js';
import { routeKey } from '../../src/integrations/smartproxy/core.js';
import { createNfTablesRoute } from '../../src/integrations/smartproxy.js';

const rule = (chain: string, handle: number, comment: string) => ({ chain, handle, comment, packets: 0, bytes: 0 });
const R = (verb: string, chain: string, extra: Record<string, unknown>) => ({ [verb]: { rule: { family: 'inet', table: 't', chain, ...extra } } });

describe('live rules kept from nft echo', () => {
  const before = [rule('a', 1, 'nf:x'), rule('a', 2, 'nf:y'), rule('b', 3, 'nf:z')];

  it('follows deletes, appends and inserts before an anchor', () => {
    const sent = [R('delete', 'a', { handle: 1 }), R('add', 'a', { comment: 'nf:new' }), R('insert', 'a', { handle: 2, comment: 'nf:first' }), R('add', 'b', { comment: 'nf:b2' })];
    const echo = [sent[0], R('add', 'a', { comment: 'nf:new', handle: 10 }), R('insert', 'a', { handle: 11, comment: 'nf:first' }), R('add', 'b', { comment: 'nf:b2', handle: 12 })];
    expect(applyEcho(before, 't', sent, echo)?.map((r) => [r.chain, r.handle, r.comment])).toEqual([
      ['a', 11, 'nf:first'],
      ['a', 2, 'nf:y'],
      ['b', 3, 'nf:z'],
      ['a', 10, 'nf:new'],
      ['b', 12, 'nf:b2'],
    ]);
  });

  it('gives up (the caller lists again) on a missing echo, a rule without its handle, an unknown anchor or a flushed chain', () => {
    const add = [R('add', 'a', { comment: 'nf:n' })];
    expect(applyEcho(before, 't', add, undefined)).toBeUndefined();
    expect(applyEcho(before, 't', add, [])).toBeUndefined();
    expect(applyEcho(before, 't', add, add)).toBeUndefined();
    expect(applyEcho(before, 't', [R('insert', 'a', { handle: 99 })], [R('insert', 'a', { handle: 100 })])).toBeUndefined();
    const flush = [{ flush: { chain: { family: 'inet', table: 't', name: 'a' } } }];
    expect(applyEcho(before, 't', flush, flush)).toBeUndefined();
    // other tables and chains not kept are ignored
    const other = [{ add: { rule: { family: 'inet', table: 'u', chain: 'a' } } }];
    expect(applyEcho(before, 't', other, other)).toEqual(before);
    expect(applyEcho(before, 't', [R('add', 'c', {})], [R('add', 'c', { handle: 5 })], new Set(['a', 'b']))).toEqual(before);
  });

  it('retries only a refusal at a rule command naming a handle that does not exist', () => {
    const failure = (cmd: unknown, stderr: string) =>
      new ApplyError('nft', 'x', { restored: true, cause: new CommandError('nft', { argv: ['nft'], stdout: '', stderr, failedIndex: 0, failedCommand: cmd }) });
    expect(failedAtStaleHandle(failure(R('delete', 'a', { handle: 7 }), 'Error: Could not process rule: No such file or directory'))).toBe(true);
    expect(failedAtStaleHandle(failure(R('insert', 'a', { handle: 7 }), 'Error: Could not process rule: No such file or directory'))).toBe(true);
    expect(failedAtStaleHandle(failure(R('add', 'a', {}), 'Error: Could not process rule: No such file or directory'))).toBe(false);
    expect(failedAtStaleHandle(failure(R('delete', 'a', { handle: 7 }), 'Error: Operation not supported'))).toBe(false);
    expect(failedAtStaleHandle(new ApplyError('verify', 'x', { restored: true }))).toBe(false);
  });
});

describe('routeKey (syncRoutes reuses routes equal to provisioned ones)', () => {
  it('is equal for equal plain routes and undefined for anything JSON would not keep exactly', () => {
    const a = createNfTablesRoute('r', { host: '198.18.2.2', port: 80 }, { ports: 8080 });
    const b = createNfTablesRoute('r', { host: '198.18.2.2', port: 80 }, { ports: 8080 });
    expect(routeKey(a, 's')).toBe(routeKey(b, 's'));
    expect(routeKey(a, 's')).not.toBe(routeKey(a, 't'));
    expect(routeKey(createNfTablesRoute('r', { host: '198.18.2.2', port: 81 }, { ports: 8080 }), 's')).not.toBe(routeKey(a, 's'));
    expect(routeKey({ ...a, extra: () => 1 } as never, 's')).toBeUndefined();
    expect(routeKey({ ...a, when: new Date(0) } as never, 's')).toBeUndefined();
    expect(routeKey({ ...a, n: Number.NaN } as never, 's')).toBeUndefined();
    expect(routeKey({ ...a, l: [1, undefined] } as never, 's')).toBeUndefined();
  });
});
