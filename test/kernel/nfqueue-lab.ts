/**
 * Shared topology and traffic helpers for the nfqueue kernel tests:
 * client — router — server, the router runs the queue.
 */
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

/** Run a traffic helper mode in a host; resolves to its JSON report (or `{ failed }`). */
export async function traffic<T = Record<string, unknown>>(h: LabHost, args: string[], timeoutMs = 20_000): Promise<T> {
  const r = await run([process.execPath, TRAFFIC, ...args], { netns: h.netns, timeoutMs });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  try {
    return JSON.parse(text.trim().split('\n').pop() ?? '') as T;
  } catch {
    return { failed: r.err ? r.val.message : text } as T;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Start a receiver, give it time to bind, run the sender, return both reports. */
export async function pair<R, S>(recv: () => Promise<R>, send: () => Promise<S>, startMs = 400): Promise<{ recv: R; send: S }> {
  const pr = recv();
  await sleep(startMs);
  const s = await send();
  return { recv: await pr, send: s };
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
