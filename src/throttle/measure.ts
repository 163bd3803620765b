/**
 * Throughput measurement with iperf3 between network namespaces, for the
 * Throttler's kernel tests, benchmark and example (and for users who want to
 * verify a limit in their own lab). Bounded: every run has a timeout.
 *
 * {@link heldIperf3} starts a client *held* before it opens any socket, so that its
 * pid can be put in a cgroup first: a socket's cgroup is fixed when the socket is
 * created, so moving a process later does not move the sockets it already has.
 * @module
 */
import { CommandError } from '../errors.js';
import { run } from '../host/run.js';
import { startProcess } from '../host/spawn.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';

/** Options of {@link iperf3}. */
export interface IperfOptions {
  /** Namespace of the server. */
  serverNetns: string;
  /** Namespace of the client. */
  clientNetns: string;
  /** Address the server binds and the client connects to. */
  addr: string;
  /** TCP port (default: random 20000-29999). */
  port?: number;
  /** Measured seconds (default 2). */
  seconds?: number;
  /** Seconds omitted at the start (slow start, policer buckets; default 1). */
  omit?: number;
  /** Server sends, client receives (download for the client). */
  reverse?: boolean;
  /** Client binds this source address. */
  bind?: string;
}

/** Result of one iperf3 run. */
export interface IperfResult {
  /** Received bits per second over the measured interval. */
  bps: number;
  /** Bytes received in the measured interval. */
  bytes: number;
}

function clientArgs(o: IperfOptions, port: number): string[] {
  const a = ['iperf3', '-c', o.addr, '-p', String(port), '-t', String(o.seconds ?? 2), '-O', String(o.omit ?? 1), '-J'];
  if (o.reverse) a.push('-R');
  if (o.bind) a.push('-B', o.bind);
  return a;
}

function parse(stdout: string): IperfResult | string {
  try {
    const j = JSON.parse(stdout) as { error?: string; end?: { sum_received?: { bits_per_second?: number; bytes?: number } } };
    if (j.error) return j.error;
    const s = j.end?.sum_received;
    if (!s || typeof s.bits_per_second !== 'number') return 'iperf3 printed no sum_received';
    return { bps: s.bits_per_second, bytes: s.bytes ?? 0 };
  } catch {
    return `iperf3 printed no JSON: ${stdout.slice(0, 200)}`;
  }
}

async function withServer<T>(o: IperfOptions, port: number, client: () => Promise<Result<T, CommandError>>): Promise<Result<T, CommandError>> {
  const total = (o.seconds ?? 2) + (o.omit ?? 1);
  const server = run(['iperf3', '-s', '-1', '-B', o.addr, '-p', String(port)], { netns: o.serverNetns, timeoutMs: (total + 10) * 1000, what: 'iperf3 server' });
  await new Promise((r) => setTimeout(r, 250));
  let r = await client();
  if (r.err && /refused|unable to connect/i.test(r.val.message)) {
    await new Promise((res) => setTimeout(res, 500));
    r = await client();
  }
  await server;
  return r;
}

/** Measure TCP throughput from client to server (or back with `reverse`). */
export async function iperf3(o: IperfOptions): Promise<Result<IperfResult, CommandError>> {
  const port = o.port ?? 20000 + Math.floor(Math.random() * 10000);
  const total = (o.seconds ?? 2) + (o.omit ?? 1);
  return withServer(o, port, async () => {
    const c = await run(clientArgs(o, port), { netns: o.clientNetns, timeoutMs: (total + 8) * 1000, what: 'iperf3 client' });
    const out = c.ok ? c.val.stdout : c.val.failure.stdout;
    const p = parse(out);
    if (typeof p === 'string') return Err(c.err ? c.val : new CommandError('iperf3 client', { argv: clientArgs(o, port), netns: o.clientNetns, stdout: out, stderr: p }));
    return Ok(p);
  });
}

/** A client process that waits until {@link HeldClient.go} before it starts iperf3. */
export interface HeldClient {
  /** Its pid: put it in a cgroup (e.g. `Throttler.limit({ match: { pid } })`) before `go()`. */
  pid: number;
  /** Start the measurement (the server is started too) and wait for the result. */
  go(): Promise<Result<IperfResult, CommandError>>;
  /** Kill it without measuring. */
  kill(): void;
}

/** Start an iperf3 client held before its first socket (see the module comment). */
export function heldIperf3(o: IperfOptions): HeldClient {
  NetnsName.parse(o.clientNetns);
  const port = o.port ?? 20000 + Math.floor(Math.random() * 10000);
  const total = (o.seconds ?? 2) + (o.omit ?? 1);
  const argv = clientArgs(o, port);
  // Held (host/spawn.ts): the launcher's pid exists before iperf3 opens a socket.
  const child = startProcess(argv, { netns: o.clientNetns, hold: true, timeoutMs: (total + 8) * 1000 });
  let stdout = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  const exited = child.exited.then((e) => e.code);
  const killTimer = setTimeout(() => child.kill('SIGKILL'), (total + 30) * 1000);
  return {
    pid: child.pid ?? -1,
    kill: () => {
      clearTimeout(killTimer);
      child.kill('SIGKILL');
    },
    go: () =>
      withServer(o, port, async () => {
        child.release();
        const code = await exited;
        clearTimeout(killTimer);
        const p = parse(stdout);
        if (typeof p === 'string') return Err(new CommandError('iperf3 client (held)', { argv, netns: o.clientNetns, exitCode: code ?? undefined, stdout, stderr: p }));
        return Ok(p);
      }),
  };
}
