/**
 * XdpBlocklist example: a lab with a server and two clients; the server's
 * interface gets an XDP blocklist, one client is blocked (by address, and a
 * whole IPv6 prefix), the other still gets through. Prints the verdicts and
 * the counters, then destroys it (detached, maps removed) and tears the lab down.
 *
 * Run as root: npx tsx examples/xdp-blocklist.ts
 */
import { XdpBlocklist } from '../src/index.js';
import { withLab } from '../src/lab/index.js';

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

    console.log(`before: bad host gets ${await lab.ping(bad, '198.18.10.1', 3)}/3 replies`);
    (await blocklist.add(['198.18.10.66', 'fd00:10::66/128', 'fd00:bad::/32'])).unwrap();
    (await blocklist.add(['198.18.99.0/24'], { ttlMs: 3_600_000 })).unwrap();

    console.log(`after:  bad host gets ${await lab.ping(bad, '198.18.10.1', 3)}/3 replies (IPv4), ${await lab.ping(bad, 'fd00:10::1', 3)}/3 (IPv6)`);
    console.log(`        good host gets ${await lab.ping(good, '198.18.10.1', 3)}/3 replies`);
    console.log(`listed 198.18.10.66? ${(await blocklist.has('198.18.10.66')).unwrap()}`);

    console.log('entries:');
    for (const e of (await blocklist.list()).unwrap()) {
      console.log(`  ${e.entry.padEnd(18)} hits=${e.hits}${e.expiresInMs !== undefined ? ` expires in ${Math.round(e.expiresInMs / 1000)} s` : ''}`);
    }
    const s = (await blocklist.stats()).unwrap();
    console.log(`stats: passed=${s.passed.packets} dropped=${s.dropped.packets} (${s.dropped.bytes} bytes) entries=${s.entries} backend=${s.backend}/${s.mode ?? '-'}`);
  } finally {
    (await blocklist.destroy()).unwrap();
    console.log('destroyed; the interface filters nothing again');
  }
});
