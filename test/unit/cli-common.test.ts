/**
 * The CLI's shared helpers, without a kernel: progress rendering on a TTY
 * (a bar redrawn in place) and off one (a line every 10%), the wait and step
 * reporters, tables, one-paragraph errors with what to do, strict option
 * parsing with exit code 2, and every command's usage documenting its exit codes.
 */
import { describe, expect, it, vi } from 'vitest';
import { CommandError, NetfenceError, ValidationError } from '../../src/errors.js';
import { activity, EXIT, fail, hintFor, parseCommand, progress, table, wantProgress, type ProgressStream } from '../../src/cli/commands/common.js';
import { commands } from '../../src/cli/commands/index.js';

/** A stream that records what is written; `isTTY` decides bar vs lines. */
function fakeStream(isTTY: boolean): ProgressStream & { out: string } {
  const s = { isTTY, out: '', write(c: string) { s.out += c; return true; } };
  return s;
}

/** A clock advanced by hand. */
function clock(): { now: () => number; t: number } {
  const c = { t: 1000, now: () => c.t };
  return c;
}

describe('progress', () => {
  it('off a terminal: a line at the start and per 10%, and a final line with the elapsed time, no carriage returns', () => {
    const s = fakeStream(false);
    const c = clock();
    const p = progress('adding 1000 entries', 1000, { stream: s, now: c.now });
    for (let i = 0; i <= 1000; i += 50) p.update(i);
    c.t += 2500;
    p.done('1000 added');
    const lines = s.out.trimEnd().split('\n');
    expect(s.out).not.toContain('\r');
    expect(lines).toEqual([
      ...[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((pct) => `adding 1000 entries: ${pct * 10}/1000 (${pct}%)`),
      'adding 1000 entries: 1000 added in 2.5 s',
    ]);
  });

  it('on a terminal: a bar redrawn in place (\\r), throttled, always drawn at 100%, then a newline and the final line', () => {
    const s = fakeStream(true);
    const c = clock();
    const p = progress('load', 200, { stream: s, now: c.now, redrawMs: 80 });
    p.update(0);
    p.update(50); // within 80 ms: not redrawn
    c.t += 100;
    p.update(100);
    c.t += 10;
    p.done();
    const frames = s.out.split('\r').filter(Boolean);
    expect(frames[0]).toBe(`load [${'.'.repeat(30)}]   0% 0/200`);
    expect(frames[1]).toBe(`load [${'#'.repeat(15)}${'.'.repeat(15)}]  50% 100/200`);
    expect(frames[2]).toBe(`load [${'#'.repeat(30)}] 100% 200/200\nload: done in 0.1 s\n`);
    expect(frames).toHaveLength(3);
  });

  it('a stream in the options, and enabled: false writes nothing', () => {
    const s = fakeStream(false);
    const p = progress('x', 10, { stream: s });
    p.update(10);
    expect(s.out).toBe('x: 10/10 (100%)\n');
    const q = fakeStream(true);
    const off = progress('x', 10, { stream: q, enabled: false });
    off.update(5);
    off.done();
    expect(q.out).toBe('');
  });

  it('wantProgress: on a terminal, or when asked', () => {
    expect(wantProgress(undefined, fakeStream(true))).toBe(true);
    expect(wantProgress(undefined, fakeStream(false))).toBe(false);
    expect(wantProgress(true, fakeStream(false))).toBe(true);
  });
});

describe('activity', () => {
  it('activity: start, notes and end lines off a terminal; seconds ticking in place on one', () => {
    const s = fakeStream(false);
    const c = clock();
    const a = activity('probing', { stream: s, now: c.now });
    a.note('nft');
    c.t += 1200;
    a.done('report ready');
    expect(s.out).toBe('probing…\nprobing: nft\nprobing: report ready in 1.2 s\n');
    vi.useFakeTimers();
    try {
      const t = fakeStream(true);
      const c2 = clock();
      const b = activity('probing', { stream: t, now: c2.now, tickMs: 1000 });
      c2.t += 1000;
      vi.advanceTimersByTime(1000);
      c2.t += 1000;
      vi.advanceTimersByTime(1000);
      b.done();
      expect(t.out).toBe('\rprobing… 0 s\u001b[K\rprobing… 1 s\u001b[K\rprobing… 2 s\u001b[K\r\u001b[Kprobing: done in 2.0 s\n');
      vi.advanceTimersByTime(5000);
      expect(t.out.endsWith('done in 2.0 s\n')).toBe(true); // the ticker stopped
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('tables, errors and option parsing', () => {
  it('table: padded columns, a rule under the header, no trailing spaces', () => {
    expect(table(['ENTRY', 'HITS'], [['198.18.0.1', 5], ['fd00::/8', 12]])).toBe('ENTRY       HITS\n----------  ----\n198.18.0.1  5\nfd00::/8    12');
  });

  it('hintFor names what to do: install the tool, run as root, create the namespace', () => {
    const missing = (tool: string) => new CommandError('x', { argv: [tool, 'list'], stdout: '', stderr: `${tool}: not found` });
    expect(hintFor(missing('nft'))).toBe('install nftables (apt-get install nftables) or point $NETFENCE_NFT at an nft binary');
    expect(hintFor(missing('bpftool'))).toContain('apt-get install bpftool');
    expect(hintFor(missing('tc'))).toContain('apt-get install iproute2');
    expect(hintFor(new CommandError('x', { argv: ['nft', '-f', '-'], stdout: '', stderr: 'Error: Could not process rule: Operation not permitted' }))).toMatch(/^run as root/);
    expect(hintFor(new CommandError('x', { argv: ['nsenter', '--net=/run/netns/q', '--', 'ip', 'link'], netns: 'q', stdout: '', stderr: 'nsenter: cannot open /run/netns/q: No such file or directory' }))).toContain('ip netns add');
    expect(hintFor(new NetfenceError('NOT_FOUND', 'gone', { hint: 'look elsewhere' }))).toBe('look elsewhere');
    expect(hintFor(new Error('plain'))).toBeUndefined();
  });

  it('fail: one paragraph on stderr (first line of the message, then the hint); exit 2 for invalid input, 1 otherwise', () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(fail('xdp add', new ValidationError('entries', [{ path: '0', message: 'bad' }]))).toBe(EXIT.usage);
      expect(fail('xdp add', new CommandError('add', { argv: ['nft', '-f', '-'], stdout: '', stderr: 'Operation not permitted' }))).toBe(EXIT.failed);
      const printed = err.mock.calls.map((c) => String(c[0]));
      expect(printed[0]).toMatch(/^netfence xdp add: VALIDATION: /);
      expect(printed[1]!.split('\n')).toHaveLength(2);
      expect(printed[1]).toMatch(/\nrun as root/);
    } finally {
      err.mockRestore();
    }
  });

  it('parseCommand: strict; an unknown option or an extra argument prints the usage and returns exit code 2', () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(parseCommand('t', 'usage: t', ['--nope'], { json: { type: 'boolean' } })).toBe(2);
      expect(parseCommand('t', 'usage: t', ['extra'], { json: { type: 'boolean' } })).toBe(2);
      expect(String(err.mock.calls[1]?.[0])).toContain('unexpected argument(s): extra');
      const ok = parseCommand('t', 'usage: t', ['--json', 'a'], { json: { type: 'boolean' } }, { max: 1 });
      expect(ok).toEqual({ values: { json: true }, positionals: ['a'] });
    } finally {
      err.mockRestore();
    }
  });

  it('every command documents its exit codes and --json in its usage', () => {
    for (const c of commands) {
      if (c.summary === 'not built yet') continue; // placeholders of other helpers, replaced in this release
      expect(c.usage, c.path.join(' ')).toMatch(/exit codes?:?/i);
      expect(c.usage, c.path.join(' ')).toContain('--json');
      expect(c.usage.startsWith(`usage: netfence ${c.path.join(' ')}`), c.path.join(' ')).toBe(true);
    }
  });
});
