/**
 * Helpers for the load tests: a program started inside a lab namespace
 * (argv only, optionally under `prlimit --nofile`), whose JSON output lines
 * can be awaited, and whose stdin can be written to.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { wrapNetns } from '../../src/host/run.js';
import type { LabHost } from '../../src/lab/index.js';

export const LOAD_NET = fileURLToPath(new URL('./load-net.mjs', import.meta.url));

/** A running program and the JSON lines it printed. */
export interface NsProc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  /** Resolves with the first line for which `pred` holds (rejects after `ms`). */
  line(pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>>;
  write(s: string): void;
  stderr(): string;
  kill(): void;
}

/** Start `argv` in `h` (nsenter execs it); `nofile` raises the file-descriptor limit with prlimit. */
export function nsProc(h: LabHost, argv: string[], options: { nofile?: number } = {}): NsProc {
  const inner = wrapNetns(argv, h.netns);
  const full = options.nofile ? ['prlimit', `--nofile=${options.nofile}:${options.nofile}`, '--', ...inner] : inner;
  const child = spawn(full[0] as string, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as Record<string, unknown>);
      } catch {
        err += `[stdout] ${p}\n`;
      }
    }
    for (const w of waiters) w();
  });
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-10000)));
  child.on('exit', () => {
    for (const w of waiters) w();
  });
  return {
    child,
    lines,
    line: (pred, ms) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const l = lines.find(pred);
          if (l) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(l);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            clearTimeout(t);
            reject(new Error(`${argv.join(' ')} exited (${child.exitCode ?? child.signalCode}) without the awaited line; stderr: ${err}; lines: ${JSON.stringify(lines)}`));
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${argv.join(' ')}: no awaited line within ${ms} ms; stderr: ${err}; lines: ${JSON.stringify(lines)}`));
        }, ms);
        waiters.add(check);
        check();
      }),
    write: (s) => {
      child.stdin?.write(s);
    },
    stderr: () => err,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
