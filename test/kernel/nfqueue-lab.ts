/**
 * Shared topology and traffic helpers for the nfqueue kernel tests:
 * client — router — server, the router runs the queue.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/host/run.js';
import type { Lab, LabHost } from '../../src/lab/index.js';

export const TRAFFIC = fileURLToPath(new URL('./nfqueue-traffic.mjs', import.meta.url));
export const HANDLER = fileURLToPath(new URL('./nfqueue-fixture-handler.ts', import.meta.url));

export interface Topo {
  c: LabHost;
  r: LabHost;
  s: LabHost;
}

/** client 198.18.1.2 / fd00:1::2 — router — server 198.18.2.2 / fd00:2::2 */
export async function topo(lab: Lab): Promise<Topo> {
  const c = await lab.host('c');
  const r = await lab.host('r');
  const s = await lab.host('s');
  await lab.link({ host: c, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] }, { host: r, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] });
  await lab.link({ host: r, addrs: ['198.18.2.1/24', 'fd00:2::1/64'] }, { host: s, addrs: ['198.18.2.2/24', 'fd00:2::2/64'] });
  await lab.forwarding(r);
  await lab.route(c, 'default', '198.18.1.1');
  await lab.route(s, 'default', '198.18.2.1');
  await lab.route(c, 'default', 'fd00:1::1');
  await lab.route(s, 'default', 'fd00:2::1');
  return { c, r, s };
}

/** Receiver modes that take part in {@link pair}'s handshake. */
const RECEIVERS = new Set(['udp-recv', 'tcp-sink']);
/** Handshake files of the pair() being started (taken by the first receiver started). */
let pendingSync: { ready: string; done: string } | undefined;

/** Run a traffic helper mode in a host; resolves to its JSON report (or `{ failed }`). */
export async function traffic<T = Record<string, unknown>>(h: LabHost, args: string[], timeoutMs = 20_000): Promise<T> {
  const sync = RECEIVERS.has(args[0] ?? '') ? pendingSync : undefined;
  if (sync) pendingSync = undefined;
  const extra = sync ? [`--ready=${sync.ready}`, `--done=${sync.done}`] : [];
  // With the handshake the receiver's window starts when the sender is done, so its limit grows by the sender's time.
  const r = await run([process.execPath, TRAFFIC, ...args, ...extra], { netns: h.netns, timeoutMs: sync ? timeoutMs + 120_000 : timeoutMs });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  try {
    return JSON.parse(text.trim().split('\n').pop() ?? '') as T;
  } catch {
    return { failed: r.err ? r.val.message : text } as T;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Start a receiver, wait until it is listening, run the sender, then let the
 * receiver's window (its MS argument) run from the moment the sender is done,
 * so that a slow machine (an emulated VM) never shortens what a test sees.
 * Receivers that are not traffic-helper modes get `startMs` to bind instead.
 */
export async function pair<R, S>(recv: () => Promise<R>, send: () => Promise<S>, startMs = 400): Promise<{ recv: R; send: S }> {
  const dir = mkdtempSync(join(tmpdir(), 'nfq-pair-'));
  const sync = { ready: join(dir, 'ready'), done: join(dir, 'done') };
  pendingSync = sync;
  const pr = recv();
  const handshake = pendingSync === undefined;
  pendingSync = undefined;
  try {
    if (handshake) {
      const until = Date.now() + 120_000; // a hang guard only
      while (!existsSync(sync.ready) && Date.now() < until) await sleep(20);
    } else await sleep(startMs);
    const s = await send();
    writeFileSync(sync.done, '');
    return { recv: await pr, send: s };
  } finally {
    writeFileSync(sync.done, '');
    await pr.catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface UdpRecv {
  count: number;
  got: { data: string; from: string }[];
}

/** Send `count` UDP datagrams `prefix-i` from client to server port; returns how many arrived. */
export async function udp(t: Topo, port: number, count: number, prefix: string, options: { v6?: boolean; recvMs?: number; src?: string; interval?: number } = {}): Promise<UdpRecv> {
  const dst = options.v6 ? 'fd00:2::2' : '198.18.2.2';
  const { recv } = await pair(
    () => traffic<UdpRecv>(t.s, ['udp-recv', String(port), String(options.recvMs ?? 1500), options.v6 ? '::' : '0.0.0.0']),
    () => traffic(t.c, ['udp-send', dst, String(port), String(count), prefix, options.src ?? '', String(options.interval ?? 0)]),
  );
  return recv;
}

/** Ifname of the interface of `h` that carries `addr`. */
export async function ifaceWith(lab: Lab, h: LabHost, addr: string): Promise<string> {
  const out = await lab.sh(h, ['ip', '-j', 'addr']);
  const links = JSON.parse(out.stdout) as { ifname: string; addr_info: { local: string }[] }[];
  const l = links.find((x) => x.addr_info.some((i) => i.local === addr));
  if (!l) throw new Error(`no interface with ${addr}`);
  return l.ifname;
}

/**
 * {@link topo} with the router's interface names and a second client address
 * (198.18.1.3, for a blocklist entry): the router the CLI status and metrics
 * tests run all four classes on.
 */
export async function routerTopo(lab: Lab): Promise<{ t: Topo; toClient: string; toServer: string }> {
  const t = await topo(lab);
  const toClient = await ifaceWith(lab, t.r, '198.18.1.1');
  const toServer = await ifaceWith(lab, t.r, '198.18.2.1');
  const clientIf = await ifaceWith(lab, t.c, '198.18.1.2');
  await lab.sh(t.c, ['ip', 'addr', 'add', '198.18.1.3/24', 'dev', clientIf]);
  return { t, toClient, toServer };
}
