/**
 * Throwaway network labs: namespaces ("hosts"), veth links, bridges and
 * addresses from 198.18.0.0/15 and fd00::/8, with unique names, torn down
 * even when the code using them throws. Used by netfence's tests, examples
 * and demo, and exported as `netfence/lab` for users' own tests.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, runOrThrow, runSync, type RunOutput } from '../host/run.js';
import { startProcess, type SpawnedProcess } from '../host/spawn.js';
import { listLinks } from '../host/links.js';
import { IfName } from '../validate.js';
import type { Result } from '../result.js';
import type { CommandError } from '../errors.js';

/** Every lab namespace name starts with this prefix, so leftovers can be found. */
export const LAB_PREFIX = 'nflab-';

const live = new Set<Lab>();
let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const sync = (): void => {
    // Last resort on abrupt exit: delete namespaces synchronously (argv, no shell).
    for (const lab of live) lab.destroySync();
  };
  process.once('exit', sync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      sync();
      process.exit(130);
    });
  }
}

/** A host in a lab: one network namespace. */
export interface LabHost {
  /** Short name given by the test (e.g. `client`). */
  name: string;
  /** The namespace name (unique, starts with {@link LAB_PREFIX}). */
  netns: string;
}

/** Addresses for one end of a link. */
export interface LinkEnd {
  host: LabHost;
  /** Interface name inside the host (default: `eth<N>`). */
  iface?: string;
  /** Addresses with prefix length, e.g. `198.18.0.1/24`, `fd00::1/64`. */
  addrs?: string[];
}

/** A lab: create hosts and links, run commands in them, destroy it all. */
export class Lab {
  /** Unique id of this lab, part of every namespace name. */
  readonly id: string;
  readonly hosts: LabHost[] = [];
  private ifCounter = new Map<string, number>();
  private destroyed = false;
  private children = new Set<SpawnedProcess>();

  private constructor(tag: string) {
    const safe = tag.replace(/[^a-z0-9]/gi, '').slice(0, 12) || 'lab';
    this.id = `${safe}-${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  }

  /** Create an empty lab. Prefer {@link withLab}, which always destroys it. */
  static async create(tag = 'lab'): Promise<Lab> {
    installExitHooks();
    const lab = new Lab(tag);
    live.add(lab);
    return lab;
  }

  /** Add a host (a network namespace with loopback up). */
  async host(name: string): Promise<LabHost> {
    const netns = `${LAB_PREFIX}${this.id}-${name}`.slice(0, 60);
    await runOrThrow(['ip', 'netns', 'add', netns], { what: 'create lab namespace' });
    // A test suite can ask every lab (also in child processes) to record what it
    // creates, so its leak check judges only its own namespaces.
    const registry = process.env.NETFENCE_LAB_REGISTRY;
    if (registry) appendFileSync(join(registry, `${process.pid}.txt`), `${netns}\n`);
    const h: LabHost = { name, netns };
    this.hosts.push(h);
    await runOrThrow(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    // No duplicate address detection in a lab: link-local and global IPv6
    // addresses are usable the moment a link is up (no tentative period that
    // makes the first packets of a test vanish on a busy machine).
    for (const key of ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']) {
      await runOrThrow(['sysctl', '-q', '-w', key], { netns });
    }
    return h;
  }

  private nextIf(h: LabHost): string {
    const n = this.ifCounter.get(h.netns) ?? 0;
    this.ifCounter.set(h.netns, n + 1);
    return `eth${n}`;
  }

  /** Connect two hosts with a veth pair; returns the interface names at each end. */
  async link(a: LinkEnd, b: LinkEnd, options: { mtu?: number } = {}): Promise<{ a: string; b: string }> {
    const ia = IfName.parse(a.iface ?? this.nextIf(a.host));
    const ib = IfName.parse(b.iface ?? this.nextIf(b.host));
    await runOrThrow(['ip', '-n', a.host.netns, 'link', 'add', ia, 'type', 'veth', 'peer', 'name', ib, 'netns', b.host.netns], { what: 'create veth pair' });
    for (const [end, iface] of [[a, ia], [b, ib]] as const) {
      if (options.mtu) await runOrThrow(['ip', '-n', end.host.netns, 'link', 'set', iface, 'mtu', String(options.mtu)]);
      for (const addr of end.addrs ?? []) await this.addr(end.host, iface, addr);
      await runOrThrow(['ip', '-n', end.host.netns, 'link', 'set', iface, 'up']);
    }
    return { a: ia, b: ib };
  }

  /** Add an address (with prefix length) to an interface; IPv6 addresses skip DAD. */
  async addr(h: LabHost, iface: string, addr: string): Promise<void> {
    const argv = ['ip', '-n', h.netns, 'addr', 'add', addr, 'dev', iface];
    if (addr.includes(':')) argv.push('nodad');
    await runOrThrow(argv);
  }

  /**
   * Create a bridge in a host, enslave the given interfaces, add `addrs` and
   * bring it up. With ports, it returns once the bridge's carrier is up
   * (operstate UP, at most 5 s; it throws otherwise), so the first packets and
   * snapshots see a forwarding bridge.
   */
  async bridge(h: LabHost, name: string, ports: string[], addrs: string[] = []): Promise<string> {
    IfName.parse(name);
    await runOrThrow(['ip', '-n', h.netns, 'link', 'add', name, 'type', 'bridge']);
    for (const p of ports) await runOrThrow(['ip', '-n', h.netns, 'link', 'set', p, 'master', name]);
    for (const a of addrs) await this.addr(h, name, a);
    await runOrThrow(['ip', '-n', h.netns, 'link', 'set', name, 'up']);
    // The bridge's carrier comes up a moment after its first port forwards; wait for it so that
    // a snapshot taken right after (e.g. `ip -d link`) does not see the bridge change under it.
    if (ports.length > 0) await this.waitOperUp(h, name);
    return name;
  }

  /** Wait (≤ 5 s) until `iface` in `h` reports operstate UP; throws when it does not. */
  private async waitOperUp(h: LabHost, iface: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const links = (await listLinks({ netns: h.netns, dev: iface })).unwrap();
      if (links[0]?.operstate === 'UP') return;
      if (Date.now() > deadline) throw new Error(`lab: ${iface} in ${h.netns} did not come up within 5 s (operstate ${links[0]?.operstate ?? '?'})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Enable IPv4 and IPv6 forwarding in a host (a router). */
  async forwarding(h: LabHost): Promise<void> {
    await runOrThrow(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], { netns: h.netns });
    await runOrThrow(['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1'], { netns: h.netns });
  }

  /** Add a route in a host, e.g. `route(h, 'default', '198.18.0.1')`. */
  async route(h: LabHost, dest: string, via: string): Promise<void> {
    const fam = via.includes(':') ? '-6' : '-4';
    await runOrThrow(['ip', fam, '-n', h.netns, 'route', 'add', dest, 'via', via]);
  }

  /** Run a command in a host; Err when it exits non-zero. */
  exec(h: LabHost, argv: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<Result<RunOutput, CommandError>> {
    return run(argv, { netns: h.netns, ...options });
  }

  /** Run a command in a host; throws when it exits non-zero. */
  sh(h: LabHost, argv: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunOutput> {
    return runOrThrow(argv, { netns: h.netns, ...options });
  }

  /** Ping `addr` from `h` `count` times; returns how many replies came back. */
  async ping(h: LabHost, addr: string, count = 1, timeoutS = 2): Promise<number> {
    const r = await run(['ping', '-n', '-q', '-c', String(count), '-W', String(timeoutS), '-i', '0.2', addr], { netns: h.netns, timeoutMs: (count * 0.2 + timeoutS + 2) * 1000 });
    const text = r.ok ? r.val.stdout : r.val.failure.stdout;
    const m = /(\d+) (?:packets )?received/.exec(text);
    return m ? Number(m[1]) : 0;
  }

  /**
   * Start a tiny TCP or UDP server in `h` (a child `node` process in the host's
   * namespace) listening on `port` on all IPv4 and IPv6 addresses. TCP answers
   * each connection with `reply` (default `ok <port>`) and closes; UDP echoes
   * `reply` to each datagram. Special replies: `%peer` answers the client's
   * address (as the server sees it), `%bytes:N` sends N bytes (TCP), `%echo`
   * echoes and keeps the connection open (TCP). Resolves once it listens; `stop()` kills it (the
   * lab also kills it on destroy).
   */
  async serve(h: LabHost, proto: 'tcp' | 'udp', port: number, reply?: string): Promise<{ stop: () => void }> {
    const text = reply ?? `ok ${port}`;
    const code =
      proto === 'tcp'
        ? `const T=${JSON.stringify(text)};const s=require('net').createServer(c=>{c.on('error',()=>{});if(T==='%echo'){c.pipe(c);return}if(T.startsWith('%bytes:')){c.end(Buffer.alloc(Number(T.slice(7)),120));return}c.end(T==='%peer'?String(c.remoteAddress).replace(/^::ffff:/,''):T)});s.listen({port:${port},host:'::',ipv6Only:false},()=>console.log('ready'))`
        : `const T=${JSON.stringify(text)};const d=require('dgram');let n=0;for(const [t,a] of [['udp4','0.0.0.0'],['udp6','::']]){const s=d.createSocket(t==='udp6'?{type:t,ipv6Only:true}:{type:t});s.on('message',(m,r)=>s.send(T==='%peer'?r.address:T,r.port,r.address));s.bind(${port},a,()=>{if(++n===2)console.log('ready')})}`;
    const child = startProcess([process.execPath, '-e', code], { netns: h.netns });
    this.children.add(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`lab server ${proto}/${port} in ${h.name} did not start`)), 10_000);
      child.stdout?.on('data', (b: Buffer) => {
        if (b.toString().includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.on('exit', (c) => {
        clearTimeout(t);
        reject(new Error(`lab server ${proto}/${port} in ${h.name} exited with ${c}`));
      });
    });
    return {
      stop: () => {
        child.kill('SIGKILL');
        this.children.delete(child);
      },
    };
  }

  /**
   * Try one TCP connection or one UDP exchange from `h` to `addr`:`port` and say
   * what happened: `open` (the server's reply arrived; `reply` holds it),
   * `refused` (TCP reset or ICMP port unreachable), `unreachable` (ICMP
   * host/net/admin unreachable), or `timeout` (silence: dropped). Bounded by
   * `timeoutMs` (default 1500). `sport` binds the client's source port.
   */
  async probe(h: LabHost, proto: 'tcp' | 'udp', addr: string, port: number, options: { timeoutMs?: number; sport?: number } = {}): Promise<{ result: 'open' | 'refused' | 'unreachable' | 'timeout'; reply: string; error: string }> {
    const ms = options.timeoutMs ?? 1500;
    const lp = options.sport ?? 0;
    const classify = `const cls=e=>{const c=e&&e.code;if(c==='ECONNREFUSED'||c==='ECONNRESET')return 'refused';if(c==='EHOSTUNREACH'||c==='ENETUNREACH'||c==='EACCES'||c==='EPERM')return 'unreachable';return 'error:'+c};const out=(r,x='',e='')=>{console.log(JSON.stringify({result:r,reply:x,error:e}));process.exit(0)};setTimeout(()=>out('timeout'),${ms});`;
    const body =
      proto === 'tcp'
        ? `const s=require('net').connect({host:${JSON.stringify(addr)},port:${port}${lp ? `,localPort:${lp}` : ''}});let b='';s.on('data',d=>b+=d);s.on('end',()=>out('open',b.trim()));s.on('error',e=>out(cls(e),'',String(e.code)));`
        : `const s=require('dgram').createSocket(${JSON.stringify(addr.includes(':') ? 'udp6' : 'udp4')});s.on('error',e=>out(cls(e),'',String(e.code)));s.on('message',m=>out('open',String(m).trim()));s.bind(${lp},()=>s.connect(${port},${JSON.stringify(addr)},()=>{s.send('ping');setTimeout(()=>{try{s.send('ping')}catch(e){}},300)}));`;
    // The process limit only guards against a hang (node may start slowly on an emulated VM); `ms` bounds the probe itself.
    const r = await run([process.execPath, '-e', classify + body], { netns: h.netns, timeoutMs: ms + 30_000 });
    const text = r.ok ? r.val.stdout : r.val.failure.stdout;
    try {
      return JSON.parse(text.trim().split('\n').pop() ?? '') as { result: 'open' | 'refused' | 'unreachable' | 'timeout'; reply: string; error: string };
    } catch {
      throw new Error(`lab probe failed: ${r.ok ? text : r.val.message}`);
    }
  }

  /** Delete every namespace of this lab (and with them their links). Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    for (const h of this.hosts.reverse()) {
      await run(['ip', 'netns', 'pids', h.netns]).then(async (r) => {
        if (r.ok) for (const pid of r.val.stdout.split(/\s+/).filter(Boolean)) await run(['kill', '-9', pid]);
      });
      await run(['ip', 'netns', 'del', h.netns]);
    }
  }

  /** Synchronous teardown for process exit hooks. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) c.kill('SIGKILL');
    for (const h of this.hosts) runSync(['ip', 'netns', 'del', h.netns]);
  }
}

/** Run `fn` with a fresh lab and always destroy it afterwards. */
export async function withLab<T>(tag: string, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.create(tag);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}

/** Namespaces left by labs (of this or earlier processes). */
export async function leftoverLabNamespaces(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list']);
  if (r.err) return [];
  return r.val.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(LAB_PREFIX));
}
