/**
 * `FakeProcess`: a process spawned on the `FakeHost`, driven by the test
 * (`exit()`, `emitMessage()`, `kill()` behaviour).
 * @module
 */
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { SpawnedProcess, SpawnExit, SpawnOptions } from './host.js';

/** A spawned child of the fake host, driven by the test. */
export class FakeProcess extends EventEmitter implements SpawnedProcess {
  private static nextPid = 40_000;
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exited: Promise<SpawnExit>;
  private resolveExit!: (e: SpawnExit) => void;
  private done = false;
  released = false;
  /** Messages the parent sent over IPC. */
  readonly sent: unknown[] = [];
  /** What happens on kill(); default: exit by that signal. */
  onKill: (signal: NodeJS.Signals) => void = (signal) => this.exit(null, signal);

  constructor(
    readonly argv: readonly string[],
    readonly options: SpawnOptions,
  ) {
    super();
    this.pid = FakeProcess.nextPid++;
    this.stdin = options.stdin === 'pipe' ? new PassThrough() : null;
    this.stdout = (options.stdout ?? 'pipe') === 'pipe' ? new PassThrough() : null;
    this.stderr = (options.stderr ?? 'pipe') === 'pipe' ? new PassThrough() : null;
    this.exited = new Promise((r) => (this.resolveExit = r));
  }
  get alive(): boolean {
    return !this.done;
  }
  get connected(): boolean {
    return this.options.ipc === true && !this.done;
  }
  /** End the process (as the child would): streams end, `exit` is emitted, `exited` settles. */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.done) return;
    this.done = true;
    (this.stdout as PassThrough | null)?.end();
    (this.stderr as PassThrough | null)?.end();
    this.emit('exit', code, signal);
    this.resolveExit({ code, signal });
  }
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done) return false;
    this.onKill(typeof signal === 'number' ? 'SIGKILL' : signal);
    return true;
  }
  release(): void {
    this.released = true;
  }
  send(message: unknown, callback?: (error: Error | null) => void): boolean {
    if (!this.connected) {
      callback?.(new Error('channel closed'));
      return false;
    }
    this.sent.push(message);
    this.emit('sent', message);
    callback?.(null);
    return true;
  }
  /** The child sends a message to the parent. */
  emitMessage(message: unknown): void {
    this.emit('message', message);
  }
}

