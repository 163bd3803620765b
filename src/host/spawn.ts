/**
 * Long-running children: NFQUEUE workers, lab servers, held traffic
 * generators. `startProcess()` starts one through the current host; `spawnOnMachine`
 * is the real implementation (node:child_process with argv arrays, never a
 * shell, `nsenter --net=` for a namespace so that the pid is the program's).
 * @module
 */
import { spawn as nodeSpawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { currentHost, type SpawnedProcess, type SpawnExit, type SpawnOptions } from './host.js';
import { checkArgv, nftProgram, wrapNetns } from './run.js';

export type { SpawnedProcess, SpawnExit, SpawnOptions } from './host.js';

/**
 * Start `argv` as a long-running child through the current host. Invalid argv
 * or namespace names are thrown as a ValidationError (bugs in the caller).
 * A program that cannot be started is reported by `exited` (with `error`) and
 * the `error` event, never thrown.
 */
export function startProcess(argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
  const bad = checkArgv(argv, options.netns);
  if (bad) throw bad;
  return currentHost().spawn(argv, options);
}

/**
 * Start `argv` DETACHED through the current host: in its own session and
 * process group (a signal to the caller's group, a closed terminal or the
 * caller's death do not reach it), its standard input and error closed, and
 * not keeping the caller's event loop alive. Its standard output stays a pipe
 * so that the caller can wait for a "ready" line; destroy `stdout` afterwards.
 * Meant for processes that must outlive their starter (the confirm watchdog).
 */
export function startDetached(argv: readonly string[], options: Pick<SpawnOptions, 'env' | 'netns'> = {}): SpawnedProcess {
  return startProcess(argv, { ...options, detached: true, unref: true, stdin: 'ignore', stdout: 'pipe', stderr: 'ignore' });
}

/**
 * The launcher of a held process: waits for one line on stdin, then runs its
 * argv to completion, passes the output through and exits with its status.
 */
const HOLD_LAUNCHER = `
const { spawnSync } = require('node:child_process');
process.stdin.once('data', () => {
  const t = Number(process.env.NF_HOLD_TIMEOUT_MS);
  const r = spawnSync(process.argv[1], process.argv.slice(2), { encoding: 'utf8', timeout: t > 0 ? t : undefined });
  process.stdout.write(r.stdout || '');
  process.stderr.write(r.stderr || '');
  process.exit(r.status === null ? 1 : r.status);
});`;

class Spawned extends EventEmitter implements SpawnedProcess {
  readonly exited: Promise<SpawnExit>;
  private done = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly argv: readonly string[],
    private readonly held: boolean,
    killAfterMs: number | undefined,
  ) {
    super();
    this.exited = new Promise<SpawnExit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.finish();
        resolve({ code, signal });
      });
      child.once('error', (error) => {
        // An 'error' without a pid means the program never started (no 'exit' follows).
        if (child.pid === undefined) {
          this.finish();
          resolve({ code: null, signal: null, error });
        }
      });
    });
    child.on('exit', (code, signal) => this.emit('exit', code, signal));
    child.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    child.on('message', (m) => this.emit('message', m));
    if (killAfterMs !== undefined) {
      this.timer = setTimeout(() => this.kill('SIGKILL'), killAfterMs);
      this.timer.unref();
    }
  }

  private finish(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get stdin() {
    return this.held ? null : this.child.stdin;
  }
  get stdout() {
    return this.child.stdout;
  }
  get stderr() {
    return this.child.stderr;
  }
  get alive(): boolean {
    return !this.done && this.child.pid !== undefined;
  }
  get connected(): boolean {
    return this.child.connected;
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done) return false;
    return this.child.kill(signal);
  }

  release(): void {
    if (!this.held) throw new Error('release(): this process was not started with hold: true');
    this.child.stdin?.write('go\n');
  }

  send(message: unknown, callback?: (error: Error | null) => void): boolean {
    if (!this.child.connected) return false;
    return this.child.send(message as never, callback);
  }
}

/** {@link spawn} on this machine (the real host's `spawn`). */
export function spawnOnMachine(argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
  const bad = checkArgv(argv, options.netns);
  if (bad) throw bad;
  const nft = argv[0] === 'nft' ? nftProgram() : undefined;
  const program = nft ? [nft.program, ...argv.slice(1)] : [...argv];
  const held = options.hold === true;
  const inner = held ? [process.execPath, '-e', HOLD_LAUNCHER, ...program] : program;
  const full = wrapNetns(inner, options.netns);
  const [file, ...args] = full as [string, ...string[]];
  const stdio: StdioOptions = [held ? 'pipe' : (options.stdin ?? 'ignore'), options.stdout ?? 'pipe', options.stderr ?? 'pipe'];
  if (options.ipc) stdio.push('ipc');
  const env = options.env || held ? { ...process.env, ...options.env, ...(held && options.timeoutMs !== undefined ? { NF_HOLD_TIMEOUT_MS: String(options.timeoutMs) } : {}) } : undefined;
  const child = nodeSpawn(file, args, {
    stdio,
    shell: false,
    ...(env ? { env } : {}),
    ...(options.ipc ? { serialization: 'advanced' as const } : {}),
    ...(options.detached ? { detached: true } : {}),
  });
  if (options.unref) child.unref();
  // A held process's time limit runs from release (inside the launcher); otherwise from now.
  return new Spawned(child, full, held, held ? undefined : options.timeoutMs);
}
