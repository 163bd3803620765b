// Child process of reliability-crash.test.ts: prepares one change (old → new
// configuration) for a class, prints "ready", waits for "go" on stdin, applies
// it, prints "done <ms>" and exits. The parent SIGKILLs it at a random moment,
// or — with a pause index — at a chosen apply point: the child prints
// "paused <k> <point>" when it reaches its k-th fault point and blocks there,
// so the kill lands exactly before that point's operation.
// Every fault point reached is printed as "point <name>".
// argv: class netns iface [pauseAt]
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [cls, netns, iface, pauseArg] = process.argv.slice(2) as [string, string, string, string | undefined];
const pauseAt = pauseArg === undefined ? -1 : Number(pauseArg);

// only the class under test is loaded (startup time is most of a trial's cost)
async function change(): Promise<void> {
  if (cls === 'firewall') {
    const { crashFirewall } = await import('./crash-state.js');
    const r = await crashFirewall(netns, 'new').apply();
    if (r.err) throw r.val;
  } else if (cls === 'throttler') {
    const { Throttler } = await import('../../src/throttle/throttler.js');
    const t = new Throttler({ netns, name: 'crash' });
    // one transaction: IFB device, ingress redirect, HTB tree on the IFB, filters
    const r = await t.limit({ iface, direction: 'ingress', rate: '10mbit', match: { dst: '198.18.1.0/24' } });
    if (r.err) throw r.val;
  } else if (cls === 'xdp') {
    const { XdpBlocklist } = await import('../../src/xdp/xdp-blocklist.js');
    const bl = new XdpBlocklist({ iface, netns, name: 'crash_xdp', backend: 'xdp', maxEntries: 1024 });
    const r = await bl.attach();
    if (r.err) throw r.val;
    (await bl.add(['198.18.7.7', '198.18.8.0/24'])).unwrap();
    bl.close();
  } else if (cls === 'dpi') {
    const { DpiBlocker } = await import('../../src/dpi/dpi-blocker.js');
    const b = new DpiBlocker({ netns, queues: [95, 1], nftQueue: false, failOpen: false }); // fail closed: steering left without a reader would blackhole the traffic checked after repair
    const r = await b.start();
    if (r.err) throw r.val;
  } else if (cls === 'firewall-hc' || cls === 'firewall-hc-fresh') {
    // with a health check: journaled, the existing table snapshotted (restore-table on a crash)
    const { crashFirewall } = await import('./crash-state.js');
    const r = await crashFirewall(netns, 'new').apply({ healthCheck: async () => true });
    if (r.err) throw r.val;
  } else if (cls === 'sp-nftm') {
    const { NFTablesManager } = await import('../../src/integrations/smartproxy.js');
    const { crashRoute } = await import('./crash-state.js');
    const m = new NFTablesManager({ settings: { routes: [] } }, { tableName: 'nf_crsp_new', netns, logger: { error: () => undefined } });
    if (!(await m.provisionRoute(crashRoute('new')))) throw m.lastError ?? new Error('provisionRoute failed');
  } else if (cls === 'sp-nrm') {
    const { NetfenceRouteManager } = await import('../../src/integrations/smartproxy.js');
    const { crashRoute } = await import('./crash-state.js');
    const m = new NetfenceRouteManager({ tableName: 'nf_crsp_new', netns });
    (await m.syncRoutes([crashRoute('new')])).unwrap();
  } else if (cls === 'vm') {
    const { crashVmSpec } = await import('./crash-state.js');
    (await vmFw!.attachVm(crashVmSpec(iface))).unwrap();
  } else throw new Error(`unknown class ${cls}`);
}

// warm-up outside the measured apply: capability probes are cached per process
const preload = { firewall: './crash-state.js', 'firewall-hc': './crash-state.js', 'firewall-hc-fresh': './crash-state.js', 'sp-nftm': '../../src/integrations/smartproxy.js', 'sp-nrm': '../../src/integrations/smartproxy.js', vm: './crash-state.js', throttler: '../../src/throttle/throttler.js', xdp: '../../src/xdp/xdp-blocklist.js', dpi: '../../src/dpi/dpi-blocker.js' }[cls];
if (preload) await import(preload);
// VM firewall: the bridge backends are probed once per Firewall (outside the measured apply)
let vmFw: import('../../src/firewall/firewall.js').Firewall | undefined;
if (cls === 'vm') {
  const { crashVmFirewall } = await import('./crash-state.js');
  vmFw = crashVmFirewall(netns);
  (await (vmFw as unknown as { resolveBackends(): Promise<{ err: boolean }> }).resolveBackends()).err && process.exit(3);
}
if (cls === 'throttler') await new (await import('../../src/throttle/throttler.js')).Throttler({ netns, name: 'crash' }).compile({ iface, direction: 'ingress', rate: '10mbit' });
// "mark": the first fault point that precedes a host change (nft batch, first step, XDP maps), i.e. the first moment the host may change;
// the hook never injects anything, it only tells the parent where the kernel-touching part of the apply begins
const { setFaultHook } = await import('../../src/plan/faults.js');
let t0 = 0;
let marked = false;
let seen = 0;
const forever = new Int32Array(new SharedArrayBuffer(4));
setFaultHook((point) => {
  if (t0 > 0) {
    const k = seen++;
    writeSync(1, `point ${point}\n`);
    if (k === pauseAt) {
      writeSync(1, `paused ${k} ${point}\n`);
      // block right here (the hook is synchronous): the parent's SIGKILL lands before this point's operation
      for (;;) Atomics.wait(forever, 0, 0);
    }
  }
  // dpi-queues only starts the reader processes; the host changes from the steering rules on
  if (!marked && t0 > 0 && point !== 'dpi-queues') {
    marked = true;
    process.stdout.write(`mark ${Math.round(performance.now() - t0)}\n`);
  }
  return false;
});
const rl = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
rl.once('line', () => {
  t0 = performance.now();
  change().then(
    () => {
      process.stdout.write(`done ${Math.round(performance.now() - t0)}\n`);
      // DPI keeps running (its workers are the queue readers) until killed; the others exit
      if (cls !== 'dpi') process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
});
