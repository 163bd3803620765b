import { inspect, format } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ApplyError, CommandError, NetfenceError, UnsupportedError, ValidationError, type NetfenceErrorCode } from '../../src/errors.js';
import { Err, Ok, type Result } from '../../src/result.js';

const T = 'netfence_big';
const rule = (i: number, chain = 'c') => ({ add: { rule: { family: 'inet', table: T, chain, expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 1000 + i } }, { accept: null }] } } });
const FAILED_TEXT = 'add rule inet netfence_big missing tcp dport 2500 accept';

/** The errors a failed 2,000-command nft batch produces, shaped as nftApply and the executor build them. */
function failedBatch(): ApplyError {
  const prefix = [{ add: { table: { family: 'inet', name: T } } }, { add: { counter: { family: 'inet', table: T, name: 'netfence_owner_4b197c76d99f' } } }];
  const plan = Array.from({ length: 2000 }, (_, i) => rule(i, i === 1500 ? 'missing' : 'c'));
  const commands = [...prefix, ...plan];
  const failure = {
    argv: ['nsenter', '--net=/run/netns/nflab-x-a', '--', 'nft', '-j', '-f', '-'],
    netns: 'nflab-x-a',
    exitCode: 1,
    stdout: '',
    stderr: 'internal:0:0-0: Error: Could not process rule: No such file or directory',
    input: JSON.stringify({ nftables: commands }),
  };
  // nftApply: the batch index; the executor: re-expressed in plan.nft indexes, with the first as cause
  const raw = new CommandError('nft apply', { ...failure, failedIndex: 1502, failedCommand: commands[1502], failedText: FAILED_TEXT });
  const mapped = new CommandError('nft', { ...raw.failure, failedIndex: 1500 }, { cause: raw });
  return new ApplyError('nft', `nft rejected the batch (plan.nft[1500], shown below); nothing was applied (the batch is atomic)\n${mapped.message}`, { restored: true, cause: mapped });
}

const count = (s: string, sub: string) => s.split(sub).length - 1;

describe('errors print short', () => {
  it('a failed 2,000-command batch prints under 1 KB with the failed command once (inspect, console.log, JSON)', () => {
    const e = failedBatch();
    const printed = { inspect: inspect(e), consoleLog: format(e), json: JSON.stringify(e), inArray: inspect([e]), inResult: inspect(Err(e)) };
    for (const [how, s] of Object.entries(printed)) {
      expect(s.length, how).toBeLessThan(1024);
      expect(count(s, FAILED_TEXT), how).toBe(1);
    }
    for (const s of [printed.inspect, printed.json]) {
      expect(s).toContain('APPLY_FAILED');
      expect(s).toContain('COMMAND_FAILED');
      expect(s).toContain('Could not process rule');
    }
    expect(printed.inspect).toContain('{"nftables":[{"add":{"table"'); // a stdin excerpt
    expect(printed.inspect).toContain(`stdin (${Buffer.byteLength((e.cause as CommandError).failure.input!)} bytes`);
    const j = JSON.parse(printed.json) as { code: string; phase: string; restored: boolean; cause: { code: string; message?: string; failure: { failedIndex: number; stdinBytes: number; stdinExcerpt: string } } };
    expect(j).toMatchObject({ code: 'APPLY_FAILED', phase: 'nft', restored: true, cause: { code: 'COMMAND_FAILED', failure: { failedIndex: 1500 } } });
    expect(j.cause.message).toBeUndefined(); // already part of the ApplyError's message
    expect(j.cause.failure).toMatchObject({ stdinBytes: Buffer.byteLength((e.cause as CommandError).failure.input!), stdinExcerpt: expect.stringMatching(/^\{"nftables":\[\{"add":\{"table"/) });
    // what was before: the whole 10 KB+ stdin printed twice, the command five times
    expect(e.cause).toBeInstanceOf(CommandError);
  });

  it('keeps the full data reachable as properties', () => {
    const e = failedBatch();
    const c = e.cause as CommandError;
    expect(c.failure.input!.length).toBeGreaterThan(200_000);
    expect(JSON.parse(c.failure.input!).nftables).toHaveLength(2002);
    expect(c.failure.failedIndex).toBe(1500);
    expect(c.failure.failedText).toBe(FAILED_TEXT);
    expect((c.cause as CommandError).failure.failedCommand).toEqual(rule(1500, 'missing'));
    expect(e.message).toContain(FAILED_TEXT);
    expect(e.stack).toContain('ApplyError');
  });

  it('prints small errors whole: message, code, own fields, hint', () => {
    const u = new UnsupportedError('xdp.native', 'the driver has no native XDP', { hint: 'use mode: "generic"' });
    const s = inspect(u);
    expect(s).toMatch(/^UnsupportedError \[UNSUPPORTED\]: the driver has no native XDP\n {2}hint: use mode: "generic"/);
    expect(s).toContain('capability: "xdp.native"');
    expect(JSON.parse(JSON.stringify(u))).toEqual({ name: 'UnsupportedError', code: 'UNSUPPORTED', message: u.message, capability: 'xdp.native' });
    const v = new ValidationError('limit', Array.from({ length: 500 }, (_, i) => ({ path: `rules.${i}.port`, message: 'must be a port' })));
    expect(inspect(v).length).toBeLessThan(1024);
    expect(inspect(v)).toContain('issues: 500');
    expect(v.issues).toHaveLength(500);
    expect(JSON.parse(JSON.stringify(v))).toMatchObject({ code: 'VALIDATION', issueCount: 500 });
  });

  it('NetfenceErrorCode types the code', () => {
    const code: NetfenceErrorCode = new NetfenceError('NOT_FOUND', 'x').code;
    expect(code).toBe('NOT_FOUND');
    // @ts-expect-error: not a NetfenceErrorCode
    void new NetfenceError('NO_SUCH_CODE', 'x');
  });
});

describe('Result.unwrap()/expect() rethrow the original error', () => {
  const fail = (): Result<number, ApplyError> => Err(failedBatch());

  it('unwrap throws the same typed object', () => {
    const r = fail();
    let caught: unknown;
    try {
      r.unwrap();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBe(r.val);
    expect(caught).toBeInstanceOf(ApplyError);
    expect(caught).toBeInstanceOf(NetfenceError);
    expect((caught as ApplyError).code).toBe('APPLY_FAILED');
    expect((caught as ApplyError).restored).toBe(true);
  });

  it('expect throws the same object with the message in front, once', () => {
    const r = fail();
    if (r.ok) throw new Error('expected an Err');
    const first = r.val.message;
    for (let i = 0; i < 2; i++) {
      let caught: unknown;
      try {
        r.expect('firewall apply');
      } catch (e) {
        caught = e;
      }
      expect(caught).toBe(r.val);
      expect((caught as ApplyError).code).toBe('APPLY_FAILED');
      expect((caught as Error).message).toBe(`firewall apply: ${first}`);
    }
  });

  it('works with and without new, keeps ts-results behaviour for non-errors, mapErr keeps it', () => {
    const a = Err(new UnsupportedError('x', 'y'));
    const b = new Err(new UnsupportedError('x', 'y'));
    for (const r of [a, b]) {
      expect(r.err).toBe(true);
      expect(r).toBeInstanceOf(Err);
      expect(() => r.unwrap()).toThrow(UnsupportedError);
    }
    expect(() => Err('plain').unwrap()).toThrow(/Tried to unwrap Error: plain/);
    expect(() => Err(7).expect('m')).toThrow(/^m - Error: 7/);
    const mapped = Err('text').mapErr((t) => new ValidationError('x', [{ path: 'p', message: t }]));
    expect(() => mapped.unwrap()).toThrow(ValidationError);
    expect(Ok(3).unwrap()).toBe(3);
    expect(Ok(3).expect('no')).toBe(3);
    expect(Err(1).unwrapOr(2)).toBe(2);
    expect(String(Err('s'))).toBe('Err(s)');
  });
});
