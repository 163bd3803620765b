// Child process of reliability-crash.test.ts: prepares one change (old → new
// configuration) for a class, prints "ready", waits for "go" on stdin, applies
// it, prints "done <ms>" and exits. The parent SIGKILLs it at a random moment.
// argv: class netns iface
import { createInterface } from 'node:readline';

const [cls, netns, iface] = process.argv.slice(2) as [string, string, string];

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
    const b = new DpiBlocker({ netns, queues: [95, 1], nftQueue: false });
    const r = await b.start();
    if (r.err) throw r.val;
  } else throw new Error(`unknown class ${cls}`);
}

// warm-up outside the measured apply: capability probes are cached per process
const preload = { firewall: './crash-state.js', throttler: '../../src/throttle/throttler.js', xdp: '../../src/xdp/xdp-blocklist.js', dpi: '../../src/dpi/dpi-blocker.js' }[cls];
if (preload) await import(preload);
if (cls === 'throttler') await new (await import('../../src/throttle/throttler.js')).Throttler({ netns, name: 'crash' }).compile({ iface, direction: 'ingress', rate: '10mbit' });
// "mark": the first fault point that precedes a host change (nft batch, first step, XDP maps), i.e. the first moment the host may change;
// the hook never injects anything, it only tells the parent where the kernel-touching part of the apply begins
const { setFaultHook } = await import('../../src/plan/faults.js');
let t0 = 0;
let marked = false;
setFaultHook((point) => {
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
