/**
 * Throwaway network namespaces for probes that must really commit something
 * (tc qdiscs, nft commits, iptables-nft rules, XDP attach). The machine's own
 * namespace is never modified: probes only run `nft -c` there. Each probe
 * namespace is named `nfcap-<pid>-<random>` and deleted when detection ends, also
 * on throw and (synchronously) on process exit.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { run, runSync, type RunOutput } from '../host/run.js';
import type { CommandError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { processIdentity } from '../plan/journal.js';

/** Every probe namespace name starts with this prefix. */
export const PROBE_NS_PREFIX = 'nfcap-';

const live = new Set<string>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const ns of live) runSync(['ip', 'netns', 'del', ns]);
  });
}

/** A throwaway namespace with a few veth pairs and an IFB device ready for probes. */
export interface ProbeNamespace {
  name: string;
  /** Set once {@link destroyProbeNamespace} ran. */
  destroyed?: boolean;
  /** What `ip -batch` said when some setup line (a veth pair, ...) failed. */
  setupError?: string;
}

/** Create `nfcap-<pid>-<random>` and run `ip -batch` setup lines inside it. */
export async function createProbeNamespace(setup: string[]): Promise<Result<ProbeNamespace, CommandError>> {
  const name = `${PROBE_NS_PREFIX}${process.pid.toString(36)}-${randomBytes(4).toString('hex')}`;
  hookExit();
  const add = await run(['ip', 'netns', 'add', name], { what: 'create a throwaway probe namespace', timeoutMs: PROBE_TIMEOUT_MS });
  if (add.err) return add;
  live.add(name);
  const lines = ['link set lo up', ...setup];
  const b = await run(['ip', '-n', name, '-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, what: 'set up the probe namespace', timeoutMs: PROBE_TIMEOUT_MS });
  // -force keeps going after a failed line; probes that need a missing device quote this.
  return Ok(b.ok ? { name } : { name, setupError: reasonOf(b.val) });
}

/** Delete a probe namespace (killing anything left inside it). */
export async function destroyProbeNamespace(ns: ProbeNamespace): Promise<void> {
  if (ns.destroyed) return;
  ns.destroyed = true;
  const pids = await run(['ip', 'netns', 'pids', ns.name], { timeoutMs: PROBE_TIMEOUT_MS });
  if (pids.ok) for (const pid of pids.val.stdout.split(/\s+/).filter(Boolean)) await run(['kill', '-9', pid]);
  const r = await run(['ip', 'netns', 'del', ns.name], { timeoutMs: PROBE_TIMEOUT_MS });
  if (r.ok || !(await namespaceExists(ns.name))) live.delete(ns.name);
}

/**
 * The pid of the process that created a probe namespace (`nfcap-<pid base 36>-<random>`),
 * or undefined for names of another form. A process killed with SIGKILL during
 * detection cannot delete its probe namespace; `reconcile()` removes those of
 * dead processes.
 */
export function probeNamespaceOwner(name: string): number | undefined {
  const m = /^nfcap-([0-9a-z]{1,8})-[0-9a-f]{8}$/.exec(name);
  if (!m) return undefined;
  const pid = parseInt(m[1]!, 36);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether /run/netns/NAME exists (per `ip netns list`). */
export async function namespaceExists(name: string): Promise<boolean> {
  const r = await run(['ip', 'netns', 'list'], { timeoutMs: PROBE_TIMEOUT_MS });
  if (r.err) return false;
  return r.val.stdout.split('\n').some((l) => l.split(/\s+/)[0] === name);
}

/**
 * Probe namespaces present on the machine that nobody is probing in any more:
 * this process's, and those of processes that are gone (the name carries the
 * creator's pid). Another running process's probe namespace is its own
 * business, not a leak. For leak checks.
 */
export async function leftoverProbeNamespaces(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list'], { timeoutMs: PROBE_TIMEOUT_MS });
  if (r.err) return [];
  return r.val.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(PROBE_NS_PREFIX))
    .filter((n) => {
      const pid = parseInt(n.slice(PROBE_NS_PREFIX.length).split('-')[0] ?? '', 36);
      return !Number.isSafeInteger(pid) || pid === process.pid || processIdentity(pid) === undefined;
    });
}

/** Run at most `n` async tasks at a time. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  const next = (): void => {
    if (active >= n) return;
    const go = queue.shift();
    if (go) {
      active++;
      go();
    }
  };
  return <T>(task: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        task().then(resolve, reject).finally(() => {
          active--;
          next();
        });
      });
      next();
    });
}

/** A short, single-paragraph reason from a failed command: what the tool said, without nft's caret lines. */
export function reasonOf(e: CommandError): string {
  const f = e.failure;
  const text = (f.stderr || f.stdout || (f.timedOut ? 'timed out' : `exit code ${f.exitCode ?? 'unknown'}`))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^\^+$/.test(l) && !/^[\s^~]+$/.test(l));
  // nft prints "file:line:col: Error: msg" followed by the offending line; keep the errors.
  const errors = text.filter((l) => /Error:|error:|Cannot|not found|No such|failed|Operation not permitted|Permission denied|unknown|Unknown|Illegal|invalid|Invalid/.test(l));
  const keep = (errors.length ? errors : text).map((l) => l.replace(/^(?:\/dev\/stdin|internal):\d+:\d+-\d+:\s*/, ''));
  const uniq = [...new Set(keep)];
  const joined = uniq.join('; ');
  return joined.length > 300 ? `${joined.slice(0, 297)}...` : joined || 'failed';
}

/**
 * `run` that folds a failure into its reason text. Input goes through a real
 * pipe (`run()` gives tools a real stdin pipe): nft 1.0.x opens /dev/stdin by path in JSON mode,
 * which fails on the socketpair Node gives children as stdin.
 */
/** The least time a probe's tool gets before it counts as hung. */
export const PROBE_TIMEOUT_MS = 60_000;

export async function attempt(argv: string[], options: { netns?: string | undefined; input?: string; timeoutMs?: number } = {}): Promise<Result<RunOutput, string>> {
  const { input, timeoutMs, ...rest } = options;
  // A probe's time limit only guards against a hung tool. A short one turned
  // slow machines (emulated VMs, busy hosts) into false "no" answers, so every
  // probe gets at least PROBE_TIMEOUT_MS.
  const r = await run(argv, { ...rest, timeoutMs: Math.max(timeoutMs ?? 0, PROBE_TIMEOUT_MS), input });
  return r.ok ? Ok(r.val) : Err(reasonOf(r.val));
}
