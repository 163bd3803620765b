/**
 * Limit one process's upload in a lab and show the measured rate before and after.
 *
 *   npx tsx examples/throttle-process.ts [rate]      (default 10mbit; needs root)
 *
 * Two namespaces `client` and `server` joined by a veth pair. An iperf3 client is
 * started *held* (before it opens a socket), netfence moves its pid into a cgroup v2
 * group and limits that group's upload on the client's interface; then it runs.
 * A second iperf3 client, not in the group, shows that others are not limited.
 * Both are checked (✔/✘); the example exits with status 1 on a ✘.
 */
import { withLab } from '../src/lab/index.js';
import { heldIperf3, iperf3 } from '../src/throttle/measure.js';
import { parseRate } from '../src/throttle/rate.js';
import { Throttler } from '../src/throttle/throttler.js';
import { check } from './_check.js';

const rate = process.argv[2] ?? '10mbit';
const mbit = (bps: number) => `${(bps / 1e6).toFixed(2)} Mbit/s`;
const limitBps = parseRate(rate);
if (typeof limitBps === 'string') throw new Error(`rate ${rate}: ${limitBps}`);

await withLab('thexample', async (lab) => {
  const client = await lab.host('client');
  const server = await lab.host('server');
  const link = await lab.link({ host: client, addrs: ['198.18.40.1/24'] }, { host: server, addrs: ['198.18.40.2/24'] });
  const opts = { serverNetns: server.netns, clientNetns: client.netns, addr: '198.18.40.2' };

  const before = await iperf3(opts);
  if (before.err) throw before.val;
  console.log(`before:            ${mbit(before.val.bps)}`);

  const throttler = new Throttler({ netns: client.netns, name: 'example' });
  const held = heldIperf3(opts);
  try {
    const limit = await throttler.limit({ iface: link.a, direction: 'egress', rate, match: { pid: held.pid } });
    if (limit.err) throw limit.val;
    console.log(`limited pid ${held.pid} to ${rate} with ${limit.val.backend} (cgroup ${limit.val.cgroupDir})`);
    const after = await held.go();
    if (after.err) throw after.val;
    console.log(`after (that pid):  ${mbit(after.val.bps)}`);
    check(`the limited process stays within ${rate} (+20%)`, after.val.bps <= limitBps * 1.2, mbit(after.val.bps));
    const other = await iperf3(opts);
    if (other.err) throw other.val;
    console.log(`other process:     ${mbit(other.val.bps)}`);
    check(`another process is not limited (faster than twice ${rate})`, other.val.bps > limitBps * 2, mbit(other.val.bps));
    const stats = await limit.val.stats();
    if (stats.ok) console.log(`class stats:       ${JSON.stringify(stats.val)}`);
  } finally {
    held.kill();
    const c = await throttler.destroy();
    if (c.err) console.error(c.val.message);
  }
});
