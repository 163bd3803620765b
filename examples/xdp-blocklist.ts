/**
 * XdpBlocklist example: a lab with a server and two clients; the server's
 * interface gets an XDP blocklist, one client is blocked (by address, and a
 * whole IPv6 prefix), the other still gets through. Prints the verdicts and
 * the counters, then destroys it (detached, maps removed) and tears the lab down.
 * Every outcome is checked (✔/✘); the example exits with status 1 on a ✘.
 *
 * Run as root: npx tsx examples/xdp-blocklist.ts
 */
import { XdpBlocklist } from '../src/index.js';
import { withLab } from '../src/lab/index.js';
import { check, checkEqual } from './_check.js';

await withLab('xdpexample', async (lab) => {
  const server = await lab.host('server');
  const sw = await lab.host('switch');
  const bad = await lab.host('bad');
  const good = await lab.host('good');
  // server <-> switch (a bridge) <-> clients
  const up = await lab.link({ host: server, addrs: ['198.18.10.1/24', 'fd00:10::1/64'] }, { host: sw });
  const p1 = await lab.link({ host: bad, addrs: ['198.18.10.66/24', 'fd00:10::66/64'] }, { host: sw });
  const p2 = await lab.link({ host: good, addrs: ['198.18.10.7/24', 'fd00:10::7/64'] }, { host: sw });
  await lab.bridge(sw, 'br0', [up.b, p1.b, p2.b]);

  const blocklist = new XdpBlocklist({ iface: up.a, netns: server.netns, name: 'example' });
  blocklist.on('progress', (p) => console.log(`  loading: ${p.done}/${p.total}`));
  try {
    const attached = (await blocklist.apply()).unwrap();
    console.log(`applied: backend=${attached.backend} mode=${attached.mode ?? '-'} (${attached.reason})`);

    checkEqual('before: replies to the bad host (of 3)', await lab.ping(bad, '198.18.10.1', 3), 3);
    (await blocklist.add(['198.18.10.66', 'fd00:10::66/128', 'fd00:bad::/32'])).unwrap();
    (await blocklist.add(['198.18.99.0/24'], { ttlMs: 3_600_000 })).unwrap();

    checkEqual('after: replies to the bad host over IPv4 (of 3)', await lab.ping(bad, '198.18.10.1', 3), 0);
    checkEqual('after: replies to the bad host over IPv6 (of 3)', await lab.ping(bad, 'fd00:10::1', 3), 0);
    checkEqual('after: replies to the good host (of 3)', await lab.ping(good, '198.18.10.1', 3), 3);
    checkEqual('198.18.10.66 is listed', (await blocklist.has('198.18.10.66')).unwrap(), true);

    console.log('entries:');
    for (const e of (await blocklist.list()).unwrap()) {
      console.log(`  ${e.entry.padEnd(18)} hits=${e.hits}${e.expiresInMs !== undefined ? ` expires in ${Math.round(e.expiresInMs / 1000)} s` : ''}`);
    }
    const s = (await blocklist.stats()).unwrap();
    console.log(`stats: passed=${s.passed.packets} dropped=${s.dropped.packets} (${s.dropped.bytes} bytes) entries=${s.entries} backend=${s.backend}/${s.mode ?? '-'}`);
    check('the dropped counter counts the bad host\'s 6 pings', s.dropped.packets >= 6, `${s.dropped.packets} packets`);
  } finally {
    (await blocklist.destroy()).unwrap();
    console.log('destroyed; the interface filters nothing again');
  }
});
