// Child process of test/kernel/reliability-load.test.ts: applies a Firewall
// holding a set of N elements in a lab namespace and prints, as JSON, how long
// it took and the peak memory of this process and of the nft processes it
// started (polled from /proc/<pid>/status VmHWM while they run).
// argv: netns n
// The elements are `ipv4_addr . inet_service` pairs: 198.18.0.0/15 holds only
// 131,072 addresses, so 1,000,000 distinct elements that stay inside the test
// range pair each address with one of 8 ports.
import { readdirSync, readFileSync } from 'node:fs';
import { Firewall } from '../../src/index.js';
import { nftApply } from '../../src/host/nft.js';
import { run } from '../../src/host/run.js';

const [netns, nS] = process.argv.slice(2) as [string, string];
const n = Number(nS);

const kib = (status: string, key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
const self = () => readFileSync('/proc/self/status', 'utf8');

// Poll our child nft processes (nsenter execs nft, so their parent is us).
const nftPeak = new Map<number, number>();
const poll = setInterval(() => {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/status`, 'utf8');
      if (!/^Name:\s+nft$/m.test(st) || Number(/^PPid:\s+(\d+)/m.exec(st)?.[1]) !== process.pid) continue;
      nftPeak.set(Number(d), Math.max(nftPeak.get(Number(d)) ?? 0, kib(st, 'VmHWM')));
    } catch {
      /* exited meanwhile */
    }
  }
}, 20);

const tStart = Date.now();
const baseKiB = kib(self(), 'VmRSS');
const ip = (i: number) => {
  const a = i % 131072;
  return `198.${18 + (a >> 16)}.${(a >> 8) & 255}.${a & 255}`;
};
const elements: [string, number][] = new Array(n);
for (let i = 0; i < n; i++) elements[i] = [ip(i), 1000 + Math.floor(i / 131072)];
const fw = new Firewall({ table: 'nfbig', family: 'inet', netns }).set('big', { type: ['ipv4_addr', 'inet_service'], elements });
const t0 = Date.now();
const r = await fw.apply();
const applyMs = Date.now() - t0;
clearInterval(poll);
const tGet = Date.now();
// Prove the set with packets, without listing it (nft 1.0.6 loads all 1M elements for
// `get element`): a probe chain drops TCP to (daddr . dport) in @big, then one connection
// to the last element (dropped: silence) and one to the element after it (refused: RST).
const last = n - 1;
const inSet = { addr: ip(last), port: 1000 + Math.floor(last / 131072) };
const notInSet = { addr: ip(n), port: 1000 + Math.floor(n / 131072) };
for (const a of [inSet.addr, notInSet.addr]) await run(['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo'], { netns });
const probeChain = await nftApply(
  [
    { add: { chain: { family: 'inet', table: 'nfbig', name: 'probe', type: 'filter', hook: 'output', prio: 0, policy: 'accept' } } },
    { add: { rule: { family: 'inet', table: 'nfbig', chain: 'probe', expr: [{ match: { op: '==', left: { concat: [{ payload: { protocol: 'ip', field: 'daddr' } }, { payload: { protocol: 'tcp', field: 'dport' } }] }, right: '@big' } }, { drop: null }] } } },
  ],
  { netns },
);
const connect = async (t: { addr: string; port: number }) => {
  const code = `const s=require('net').connect(${t.port},'${t.addr}');s.on('connect',()=>{console.log('open');process.exit()});s.on('error',e=>{console.log(e.code);process.exit()});setTimeout(()=>{console.log('timeout');process.exit()},1500)`;
  const r = await run([process.execPath, '-e', code], { netns, timeoutMs: 10_000 });
  return r.ok ? r.val.stdout.trim() : `failed: ${r.val.message}`;
};
const present = { ok: probeChain.ok && (await connect(inSet)) === 'timeout' };
const absent = { err: probeChain.ok && (await connect(notInSet)) === 'ECONNREFUSED' };
const getMs = Date.now() - tGet;
const st = self();
const out = {
  n,
  ok: r.ok,
  error: r.err ? r.val.message.slice(0, 2000) : undefined,
  applyMs,
  baseKiB,
  nodeHwmKiB: kib(st, 'VmHWM'),
  nodeMaxRssKiB: process.resourceUsage().maxRSS,
  nftPeakKiB: Math.max(0, ...nftPeak.values()),
  nftProcs: [...nftPeak.values()],
  present: present.ok,
  probeChain: probeChain.ok ? 'ok' : probeChain.val.message.slice(0, 500),
  absent: absent.err,
};
const tDestroy = Date.now();
const d = await fw.destroy();
console.log(JSON.stringify({ ...out, buildMs: t0 - tStart, getMs, destroyMs: Date.now() - tDestroy, destroyed: d.ok }));
