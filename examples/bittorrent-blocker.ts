/**
 * The seed scenario, end to end, in a lab: a leecher and a seeder (real
 * qBittorrent-nox clients, Debian package) on either side of a router that
 * runs DpiBlocker with an XdpBlocklist as its fast path.
 *
 *   leecher 198.18.1.2 ── router (DpiBlocker + XdpBlocklist) ── seeder 198.18.2.2
 *
 * 1. the swarm with DpiBlocker in monitor-only mode: the download completes, the detection is reported;
 * 2. the swarm with DpiBlocker blocking, over TCP and over uTP: no piece arrives, the seeder's address
 *    goes to the XDP blocklist with a TTL (and its later packets are dropped there, before conntrack);
 * 3. ordinary HTTP through the same router still works; destroy() removes every rule.
 *
 * Needs root, qbittorrent-nox, mktorrent, iptables (scripts/ensure-deps.mjs installs them).
 * The BitTorrent lab helpers (tracker on each peer's loopback, qBittorrent profiles, piece
 * comparison) are shared with the kernel tests: test/kernel/dpi-lab.ts.
 *
 * Each outcome is checked (✔/✘); the example exits with status 1 on a ✘.
 *
 * Run as root: npx tsx examples/bittorrent-blocker.ts
 */
import { fileURLToPath } from 'node:url';
import { DpiBlocker, type Detection } from '../src/dpi/dpi-blocker.js';
import { run } from '../src/host/run.js';
import { withLab } from '../src/lab/index.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';
import { bg, makeTorrent, swarm, type BtClient } from '../test/kernel/dpi-lab.js';
import { check } from './_check.js';

const SERVERS = fileURLToPath(new URL('../test/kernel/dpi-servers.mjs', import.meta.url));
const show = (d: Detection): string =>
  `${d.action.toUpperCase()} ${d.flow.transport} ${d.flow.client.addr}:${d.flow.client.port} -> ${d.flow.server.addr}:${d.flow.server.port}: ${d.reason}` +
  `${d.infoHash ? ` info-hash ${d.infoHash}` : ''}${d.software ? ` (${d.software})` : ''}${d.blocked.length ? ` → blocklist ${d.blocked.join(', ')}` : ''}`;

await withLab('btexample', async (lab) => {
  const leecher = await lab.host('leecher');
  const router = await lab.host('router');
  const seeder = await lab.host('seeder');
  await lab.link({ host: leecher, addrs: ['198.18.1.2/24'] }, { host: router, addrs: ['198.18.1.1/24'] });
  const seedLink = await lab.link({ host: router, addrs: ['198.18.2.1/24'] }, { host: seeder, addrs: ['198.18.2.2/24'] });
  await lab.forwarding(router);
  await lab.route(leecher, 'default', '198.18.1.1');
  await lab.route(seeder, 'default', '198.18.2.1');

  const fx = await makeTorrent(4 * 1024 * 1024);
  const web = bg(seeder, [process.execPath, SERVERS, 'http', '8080', '120000', '0.0.0.0']);
  try {
    // 1. Monitor-only.
    const monitor = new DpiBlocker({ netns: router.netns, queues: [100, 1], monitorOnly: true });
    monitor.on('detection', (d) => console.log(`  ${show(d)}`));
    (await monitor.apply()).unwrap();
    console.log('monitor-only, qBittorrent over TCP:');
    const m = await swarm('qbt-tcp', leecher, seeder, fx, 20_000, 'monitor');
    check('monitor-only: the download completes', m.complete, `${m.pieces}/${m.total} pieces in ${m.ms} ms`);
    const ms = (await monitor.stats()).unwrap();
    console.log(`  stats: flows ${ms.flowsSeen}, detections ${ms.detections}, dropped ${ms.dropped}`);
    check('monitor-only: BitTorrent is detected, nothing dropped', ms.detections > 0 && ms.dropped === 0, `${ms.detections} detections, ${ms.dropped} dropped`);
    (await monitor.destroy()).unwrap();

    // 2. Blocking, with the XDP blocklist on the router's seeder-side interface.
    const blocklist = new XdpBlocklist({ iface: seedLink.a, netns: router.netns, name: 'btexample' });
    const at = (await blocklist.apply()).unwrap();
    console.log(`\nblocking (blocklist backend: ${at.backend}):`);
    for (const kind of ['qbt-tcp', 'qbt-utp'] as BtClient[]) {
      // Block the end of a detected flow that is not one of "our customers" (198.18.1.0/24):
      // uTP peers connect in either direction, so "the responder" is not always the remote peer.
      const remote = (d: Detection): string[] => [d.flow.client.addr, d.flow.server.addr].filter((a) => !a.startsWith('198.18.1.'));
      const dpi = new DpiBlocker({ netns: router.netns, queues: [100, 2], blocklist, blockTtlMs: 30_000, blockPeers: remote });
      dpi.on('detection', (d) => console.log(`  ${show(d)}`));
      (await dpi.apply()).unwrap();
      console.log(` qBittorrent over ${kind === 'qbt-tcp' ? 'TCP' : 'uTP only'}:`);
      const r = await swarm(kind, leecher, seeder, fx, 10_000, kind);
      check(`blocking, ${kind}: no piece arrives`, !r.complete && r.pieces === 0, `${r.pieces}/${r.total} pieces, ${r.bytes} non-zero bytes on disk after ${r.ms} ms`);
      const s = (await dpi.stats()).unwrap();
      console.log(`  stats: flows ${s.flowsSeen}, detections ${s.detections}, dropped ${s.dropped}, blocklisted ${s.blocklisted}, steering ${s.steering}`);
      check(`blocking, ${kind}: BitTorrent is detected`, s.detections > 0, `${s.detections} detections`);
      const list = (await blocklist.list()).unwrap();
      const seederListed = list.some((e) => e.entry === '198.18.2.2' || e.entry === '198.18.2.2/32');
      check(`blocking, ${kind}: the seeder is on the XDP blocklist with a TTL`, seederListed && list.every((e) => e.expiresInMs !== undefined), list.map((e) => `${e.entry} (${e.hits} packets dropped, expires in ${Math.round((e.expiresInMs ?? 0) / 1000)} s)`).join(', ') || 'empty');
      const http = await run(['curl', '-s', '--max-time', '3', 'http://198.18.2.2:8080/'], { netns: leecher.netns, timeoutMs: 6000 });
      check(`blocking, ${kind}: ordinary HTTP to the blocklisted seeder's host gets no answer (dropped by XDP)`, !http.ok, http.ok ? http.val.stdout.trim() : 'no answer');
      (await dpi.destroy()).unwrap();
      (await blocklist.remove(list.map((e) => e.entry))).unwrap();
    }
    (await blocklist.destroy()).unwrap();
    const rules = await lab.exec(router, ['iptables-nft', '-S']);
    check('after destroy(): the NETFENCE-DPI chain is gone', rules.ok && !rules.val.stdout.includes('NETFENCE-DPI'), rules.ok ? '' : rules.val.message);
  } finally {
    await web.kill();
    fx.cleanup();
  }
});
