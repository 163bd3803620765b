/**
 * `FakeHost`: a whole machine in memory for unit tests without root, in the
 * spirit of knftables' Fake. Use it with `withHost(fake, () => ...)` (one
 * async call tree) or `setHost(fake)` (the whole process).
 *
 * - nftables: one {@link FakeNft} per network namespace; `nft.apply/list/
 *   listMany` run netfence's own nft client code (host/nft.ts: batches on
 *   stdin, `nft -c` bisection of a failed batch) against the fake `nft`
 *   command, so the whole path is exercised, not bypassed.
 * - processes: every `run()`/`runSync()` is recorded in {@link FakeHost.calls}
 *   (argv, namespace, stdin, what it answered) and answered by the test's
 *   {@link FakeHost.respond} responders first, then by the default tools of
 *   src/host/fake-tools.ts (ip, tc, sysctl, bpftool, iptables) and here
 *   (`ip netns`, `ip -n`, `ip -batch`, `tee` into /proc/sys or the fake
 *   files, `kill`, `mount`, `modprobe`); anything else exits 127 ("not found"), so a gap in the fake
 *   shows instead of passing silently. Namespaces must exist (`netns` option,
 *   {@link FakeHost.addNetns} or `ip netns add`), as with nsenter.
 * - faults: {@link FakeHost.failNftBatch} fails the n-th committing nft batch,
 *   {@link FakeHost.failRun} the next run() matching argv.
 * - files: {@link FakeFiles} (cgroup2, bpffs, /run), bpf(2): {@link FakeBpf}
 *   (maps and pins live in memory), spawn: {@link FakeProcess} handles the
 *   test drives (`exit()`, `emitMessage()`, `onSpawn()` scripts).
 * @module
 */
import { CommandError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { FakeBpf } from './fake-bpf.js';
import { FakeFiles } from './fake-files.js';
import { FakeProcess } from './fake-process.js';
import type { FakeNftOptions } from './fake-nft.js';
import { runNftArgv } from './fake-nft-cli.js';
import { addLink, bpftool, ipLink, iptables, newNamespace, sysctl, tc, type FakeLink, type FakeNamespace } from './fake-tools.js';
import { withHost, type Host, type HostNft, type RunSyncOptions, type SpawnedProcess, type SpawnExit, type SpawnOptions } from './host.js';
import { nftApplyOnMachine, nftListManyOnMachine, nftListOnMachine } from './nft.js';
import { wrapNetns, type RunOptions, type RunOutput } from './run.js';

export type { FakeLink, FakeNamespace } from './fake-tools.js';
export { FakeProcess } from './fake-process.js';

/** One recorded tool invocation. */
export interface FakeCall {
  argv: string[];
  netns?: string | undefined;
  input?: string | undefined;
  what?: string | undefined;
  /** What the fake answered. */
  output: RunOutput;
  /** Whether it came through runSync(). */
  sync?: boolean;
}

/** What a responder sees. */
export interface FakeRequest {
  argv: readonly string[];
  netns?: string | undefined;
  input?: string | undefined;
}
/** A scripted answer: output (missing fields: empty, exit 0), a function of the request, or undefined to pass. */
export type Responder = (req: FakeRequest, host: FakeHost) => Partial<RunOutput> | undefined | Promise<Partial<RunOutput> | undefined>;
/** Which calls a responder or fault applies to: an argv prefix, or a predicate. */
export type Match = readonly string[] | ((req: FakeRequest) => boolean);

/** Options of {@link FakeHost}. */
export interface FakeHostOptions {
  /** nft behaviour (version, destroy, table comments); see {@link FakeNftOptions}. */
  nft?: FakeNftOptions | undefined;
  /** Network namespaces that exist from the start. */
  netns?: readonly string[] | undefined;
  /** Interfaces to create: `{ '': [...] }` for the host's own namespace, `{ ns1: [...] }` for others. */
  links?: Record<string, (Partial<FakeLink> & { ifname: string })[]> | undefined;
  /** Possible CPUs (per-CPU BPF maps, /sys/devices/system/cpu/possible); default 2. */
  cpus?: number | undefined;
  /** The clock in ms (nft element timeouts; bpf CLOCK_BOOTTIME follows it); default Date.now. */
  now?: (() => number) | undefined;
}

const matches = (m: Match, req: FakeRequest): boolean => (typeof m === 'function' ? m(req) : m.every((w, i) => req.argv[i] === w));
const full = (o: Partial<RunOutput>): RunOutput => ({ stdout: o.stdout ?? '', stderr: o.stderr ?? '', exitCode: o.exitCode ?? 0 });

/** A machine in memory. */
export class FakeHost implements Host {
  readonly name = 'fake';
  readonly files: FakeFiles;
  readonly bpf: FakeBpf;
  /** Every run()/runSync(), in order. */
  readonly calls: FakeCall[] = [];
  /** Every spawned process, in order. */
  readonly spawned: FakeProcess[] = [];
  private readonly namespaces = new Map<string, FakeNamespace>();
  private readonly responders: { match: Match; respond: Responder }[] = [];
  private readonly spawnScripts: { match: Match; script: (p: FakeProcess) => void }[] = [];
  private readonly runFaults: { match: Match; output: RunOutput; times: number }[] = [];
  private nftFaults: { left: number; stderr: string; netns: string | undefined; anyNs: boolean }[] = [];
  /** Committing nft batches seen so far (`nft -j -f -` without `-c`, list-only batches excluded). */
  nftBatches = 0;
  readonly nftOptions: FakeNftOptions;

  constructor(options: FakeHostOptions = {}) {
    const now = options.now ?? Date.now;
    this.nftOptions = { ...options.nft, now };
    this.files = new FakeFiles(options.cpus ?? 2);
    this.bpf = new FakeBpf(this.files, options.cpus ?? 2, () => BigInt(Math.round(now() * 1e6)));
    this.namespaces.set('', newNamespace('', this.nftOptions));
    for (const n of options.netns ?? []) this.addNetns(n);
    for (const [ns, links] of Object.entries(options.links ?? {})) for (const l of links) this.addLink(ns || undefined, l);
  }

  // ------------------------------------------------------------ machine state

  /** A namespace's state (`undefined`: the host's own). Throws when it does not exist. */
  ns(netns?: string): FakeNamespace {
    const n = this.namespaces.get(netns ?? '');
    if (!n) throw new Error(`fake host: no network namespace ${netns ?? ''}`);
    return n;
  }
  /** Whether a namespace exists. */
  hasNetns(netns: string): boolean {
    return this.namespaces.has(netns);
  }
  /** Create a namespace (with `lo`), like `ip netns add`. */
  addNetns(name: string): FakeNamespace {
    if (this.namespaces.has(name)) throw new Error(`fake host: namespace ${name} exists`);
    const n = newNamespace(name, this.nftOptions);
    this.namespaces.set(name, n);
    this.files.put(`/run/netns/${name}`, '');
    return n;
  }
  /** Add an interface to a namespace. */
  addLink(netns: string | undefined, link: Partial<FakeLink> & { ifname: string }): FakeLink {
    return addLink(this.ns(netns), { up: true, ...link });
  }
  /** The nft model of a namespace. */
  nftOf(netns?: string): FakeNamespace['nft'] {
    return this.ns(netns).nft;
  }

  // ------------------------------------------------------------ scripting

  /** Answer calls matching `match` (checked before the default tools; the latest responder first). */
  respond(match: Match, answer: Partial<RunOutput> | Responder): this {
    this.responders.unshift({ match, respond: typeof answer === 'function' ? answer : () => answer });
    return this;
  }
  /**
   * Fail the `n`-th committing nft batch from now (1 = the next one), with
   * nft-like stderr; with `netns` given, only batches of that namespace count
   * (`undefined`: the host's own), else every namespace's (probe namespaces too).
   */
  failNftBatch(n = 1, options: { stderr?: string; netns?: string | undefined } = {}): this {
    this.nftFaults.push({ left: n, stderr: options.stderr ?? 'internal:0:0-0: Error: Could not process rule: Cannot allocate memory (fault injected)', netns: options.netns, anyNs: !('netns' in options) });
    return this;
  }
  /** Fail the next `times` run() calls matching `match`. */
  failRun(match: Match, output: Partial<RunOutput> = {}, times = 1): this {
    this.runFaults.push({ match, output: full({ exitCode: 1, stderr: 'fault injected', ...output }), times });
    return this;
  }
  /**
   * Script spawned processes matching `match`: called synchronously with each
   * new process, before spawn() returns; listen for `sent` (IPC from the
   * parent) and answer with `emitMessage()` / `exit()` (asynchronously, as a
   * child would).
   */
  onSpawn(match: Match, script: (p: FakeProcess) => void): this {
    this.spawnScripts.unshift({ match, script });
    return this;
  }

  // ------------------------------------------------------------ recorded calls

  /** Recorded calls whose argv starts with `prefix`. */
  callsOf(...prefix: string[]): FakeCall[] {
    return this.calls.filter((c) => prefix.every((w, i) => c.argv[i] === w));
  }
  /**
   * The command arrays of the nft batches that committed, in order: all of
   * them, or with `{ netns }` those of one namespace (`netns: undefined`: the
   * host's own).
   */
  committedBatches(where?: { netns: string | undefined }): unknown[][] {
    return this.calls
      .filter((c) => c.argv[0] === 'nft' && c.argv.includes('-f') && !c.argv.includes('-c') && c.argv.includes('-j') && c.output.exitCode === 0 && (where === undefined || c.netns === where.netns))
      .map((c) => (JSON.parse(c.input ?? '{"nftables":[]}') as { nftables: unknown[] }).nftables)
      .filter((cmds) => cmds.some((x) => !(x && typeof x === 'object' && 'list' in x)));
  }

  // ------------------------------------------------------------ Host

  readonly nft: HostNft = {
    apply: (commands, options) => withHost(this, () => nftApplyOnMachine(commands, options)),
    list: (target, options) => withHost(this, () => nftListOnMachine(target, options)),
    listMany: (commands, options) => withHost(this, () => nftListManyOnMachine(commands, options)),
  };

  async run(argv: readonly string[], options: RunOptions = {}): Promise<Result<RunOutput, CommandError>> {
    const req: FakeRequest = { argv, netns: options.netns, input: options.input };
    let output = this.fault(req);
    if (!output) {
      for (const r of this.responders) {
        if (!matches(r.match, req)) continue;
        const o = await r.respond(req, this);
        if (o) {
          output = full(o);
          break;
        }
      }
    }
    output ??= this.answer(req);
    this.calls.push({ argv: [...argv], netns: options.netns, input: options.input, what: options.what, output });
    if (output.exitCode === 0) return Ok(output);
    return Err(
      new CommandError(options.what ?? (argv[0] as string), { argv: wrapNetns(argv, options.netns), netns: options.netns, exitCode: output.exitCode, stdout: output.stdout.trim(), stderr: output.stderr.trim(), input: options.input }),
    );
  }

  runSync(argv: readonly string[], options: RunSyncOptions = {}): RunOutput {
    const req: FakeRequest = { argv, netns: options.netns };
    let output = this.fault(req);
    if (!output) {
      for (const r of this.responders) {
        if (!matches(r.match, req)) continue;
        const o = r.respond(req, this);
        if (o instanceof Promise) throw new Error('fake host: an asynchronous responder answered runSync()');
        if (o) {
          output = full(o);
          break;
        }
      }
    }
    output ??= this.answer(req);
    this.calls.push({ argv: [...argv], netns: options.netns, output, sync: true });
    return output;
  }

  spawn(argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
    const p = new FakeProcess(wrapNetns(argv, options.netns), options);
    this.spawned.push(p);
    const s = this.spawnScripts.find((x) => matches(x.match, { argv, netns: options.netns }));
    if (options.netns !== undefined && !this.namespaces.has(options.netns)) queueMicrotask(() => p.exit(1));
    // synchronously, so the script hears what the parent sends right after spawn() (an IPC init message)
    else if (s) s.script(p);
    return p;
  }

  // ------------------------------------------------------------ defaults

  private fault(req: FakeRequest): RunOutput | undefined {
    const f = this.runFaults.find((x) => x.times > 0 && matches(x.match, req));
    if (f) {
      f.times--;
      return f.output;
    }
    const a = req.argv;
    if (a[0] === 'nft' && a.includes('-f') && a.includes('-j') && !a.includes('-c') && req.input && /"(add|create|insert|replace|delete|destroy|flush|rename|reset)"/.test(req.input)) {
      this.nftBatches++;
      let hit: { stderr: string } | undefined;
      for (const f of this.nftFaults) {
        if (f.left <= 0 || !(f.anyNs || f.netns === req.netns)) continue;
        if (--f.left === 0) hit ??= f;
      }
      if (hit) return { stdout: '', stderr: hit.stderr, exitCode: 1 };
    }
    return undefined;
  }

  private answer(req: FakeRequest): RunOutput {
    const a = req.argv;
    if (a[0] === 'ip' && a[1] === 'netns') return this.ipNetns(a);
    // ip -n NAME ...: that namespace; ip [-force] -batch -: one ip command per line of stdin
    if (a[0] === 'ip' && a[1] === '-n') return this.answer({ argv: ['ip', ...a.slice(3)], netns: a[2], input: req.input });
    if (a[0] === 'ip' && a.includes('-batch')) {
      const force = a.includes('-force');
      const said: string[] = [];
      for (const line of (req.input ?? '').split('\n').map((l) => l.trim()).filter(Boolean)) {
        const o = this.answer({ argv: ['ip', ...line.split(/\s+/)], netns: req.netns });
        if (o.exitCode !== 0) {
          said.push(o.stderr);
          if (!force) return { stdout: '', stderr: `${o.stderr}\nCommand failed -:1`, exitCode: 1 };
        }
      }
      return { stdout: '', stderr: said.join('\n'), exitCode: said.length ? 1 : 0 };
    }
    if (a[0] === 'kill') {
      const pid = Number(a[a.length - 1]);
      const p = this.spawned.find((x) => x.pid === pid && x.alive);
      if (!p) return { stdout: '', stderr: `kill: (${pid}) - No such process`, exitCode: 1 };
      p.kill(a.includes('-9') || a.includes('-KILL') ? 'SIGKILL' : 'SIGTERM');
      return { stdout: '', stderr: '', exitCode: 0 };
    }
    const ns = this.namespaces.get(req.netns ?? '');
    if (!ns) return { stdout: '', stderr: `nsenter: cannot open /run/netns/${req.netns ?? ''}: No such file or directory`, exitCode: 1 };
    switch (a[0]) {
      case 'nft':
        return runNftArgv(ns.nft, a, req.input);
      case 'ip':
        return a.filter((w) => !w.startsWith('-'))[1] === 'link' ? ipLink(ns, a.filter((w) => w !== '-d' && w !== '-details')) : { stdout: '', stderr: `fake host: ip ${a.slice(1).join(' ')} is not modelled`, exitCode: 127 };
      case 'tc':
        return tc(ns, a);
      case 'sysctl':
        return sysctl(ns, a);
      case 'iptables':
      case 'iptables-nft':
      case 'ip6tables':
      case 'ip6tables-nft':
        return iptables(ns, a);
      case 'bpftool':
        return bpftool(ns, a, this.bpf, this.files);
      case 'tee': {
        // the executor writes namespace-scoped /proc/sys files from inside the namespace with tee
        const path = a[a.length - 1] ?? '';
        if (path.startsWith('/proc/sys/')) {
          const key = path.slice('/proc/sys/'.length).replace(/\//g, '.');
          if (!ns.sysctl.has(key)) return { stdout: '', stderr: `tee: ${path}: No such file or directory`, exitCode: 1 };
          ns.sysctl.set(key, (req.input ?? '').trim());
          return { stdout: req.input ?? '', stderr: '', exitCode: 0 };
        }
        try {
          this.files.write(path, req.input ?? '', { append: a.includes('-a') });
        } catch (e) {
          return { stdout: '', stderr: `tee: ${path}: ${(e as Error).message}`, exitCode: 1 };
        }
        return { stdout: req.input ?? '', stderr: '', exitCode: 0 };
      }
      case 'mount': {
        // mount -t TYPE SOURCE TARGET: a line in /proc/self/mountinfo (what files.statfs() reads)
        const t = a.indexOf('-t');
        const [source, target] = a.slice(1).filter((w, i) => !w.startsWith('-') && i !== t);
        if (t > 0 && a[t + 1] && source && target) {
          if (!this.files.isDirectory(target)) return { stdout: '', stderr: `mount: ${target}: mount point does not exist.`, exitCode: 32 };
          this.files.write('/proc/self/mountinfo', `99 1 0:99 / ${target} rw - ${a[t + 1]} ${source} rw\n`, { append: true });
        }
        return { stdout: '', stderr: '', exitCode: 0 };
      }
      case 'modprobe':
        return { stdout: '', stderr: '', exitCode: 0 };
      default:
        return { stdout: '', stderr: `${a[0] ?? ''}: not found (no FakeHost responder for ${a.join(' ')})`, exitCode: 127 };
    }
  }

  private ipNetns(a: readonly string[]): RunOutput {
    const [, , verb, name] = a;
    const ok = (stdout = ''): RunOutput => ({ stdout, stderr: '', exitCode: 0 });
    if (verb === 'list' || verb === undefined) return ok([...this.namespaces.keys()].filter(Boolean).map((n) => n).join('\n'));
    if (!name) return { stdout: '', stderr: 'No netns name specified', exitCode: 1 };
    if (verb === 'add') {
      if (this.namespaces.has(name)) return { stdout: '', stderr: `Cannot create namespace file "/run/netns/${name}": File exists`, exitCode: 1 };
      this.addNetns(name);
      return ok();
    }
    if (verb === 'del' || verb === 'delete') {
      if (!this.namespaces.has(name)) return { stdout: '', stderr: `Cannot remove namespace file "/run/netns/${name}": No such file or directory`, exitCode: 1 };
      this.namespaces.delete(name);
      if (this.files.exists(`/run/netns/${name}`)) this.files.unlink(`/run/netns/${name}`);
      return ok();
    }
    if (verb === 'pids') return ok(this.spawned.filter((p) => p.alive && p.options.netns === name).map((p) => String(p.pid)).join('\n'));
    return { stdout: '', stderr: `Command "${verb}" is unknown, try "ip netns help".`, exitCode: 1 };
  }
}
