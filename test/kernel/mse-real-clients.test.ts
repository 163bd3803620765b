/**
 * MSE/PE (encrypted BitTorrent) detection on real clients' handshakes, offline:
 * test/kernel/mse-lab.ts captures qBittorrent-nox and transmission-daemon
 * downloading many small torrents from each other in lab namespaces (encryption
 * preferred — each client's default — and forced), plus HTTP, TLS, SSH and DNS
 * between the same hosts; the offline classifier then judges each flow on its own
 * (no peer cache), with its default options.
 *
 * - every answered encrypted handshake: at least 99% called BitTorrent by the MSE
 *   detector, at least 100 of them;
 * - every other flow of the captures (HTTP, TLS, SSH, DNS; the loopback trackers
 *   are not on the captured link): not BitTorrent.
 * The captures go to a temporary directory and are removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureAll, MSE_RUNS, runName } from './mse-lab.js';

describe('MSE/PE detection on real clients (captured in the lab, classified offline)', () => {
  it('>= 99% of 100+ encrypted qBittorrent/transmission handshakes are found by MSE; HTTP, TLS, SSH, DNS are not BitTorrent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netfence-mse-cap-'));
    try {
      const r = await captureAll(dir, 35);
      const enc = r.peers.filter((x) => x.encrypted);
      const found = enc.filter((x) => x.detection === 'mse');
      const missed = enc.filter((x) => x.detection !== 'mse');
      const perRun = Object.fromEntries(
        MSE_RUNS.map(runName).map((n) => {
          const e = enc.filter((x) => x.run === n);
          return [n, { encrypted: e.length, mse: e.filter((x) => x.detection === 'mse').length, plaintext: r.peers.filter((x) => x.run === n && !x.encrypted).length, completed: r.completed[n] }];
        }),
      );
      console.log(
        [
          '=== MSE/PE on real clients ===',
          ...Object.entries(perRun).map(([n, c]) => `${n.padEnd(22)} encrypted ${c.encrypted}, found by MSE ${c.mse}, plaintext ${c.plaintext}, downloads completed ${c.completed}`),
          `total: ${found.length} of ${enc.length} encrypted handshakes found by MSE`,
          ...missed.map((x) => `  missed: ${x.run} ${x.flow}: ${x.reason}`),
          `other flows: ${r.others.length} (${r.others.filter((x) => x.verdict === 'bittorrent').length} called BitTorrent); ordinary clients: ${JSON.stringify(r.ordinary)}`,
        ].join('\n'),
      );
      // The ordinary clients really talked (so their flows are in the capture).
      expect(r.ordinary).toMatchObject({ http: 'hello over http', tls: 'hello over tls', dns: '198.18.9.9', sshStandIn: true });
      expect(r.others.filter((x) => x.verdict === 'bittorrent')).toEqual([]);
      expect(r.others.length).toBeGreaterThanOrEqual(4);
      // Forced runs are encrypted throughout.
      for (const x of r.peers) if (x.run.endsWith('forced')) expect(x.encrypted, `${x.run} ${x.flow}`).toBe(true);
      expect(enc.length).toBeGreaterThanOrEqual(100);
      expect(found.length / enc.length).toBeGreaterThanOrEqual(0.99);
      // Each client dialled and answered encrypted handshakes.
      expect(perRun['tr->qbt preferred']!.mse).toBeGreaterThan(0);
      expect(perRun['qbt->qbt forced']!.mse).toBeGreaterThan(0);
      expect(perRun['qbt->tr forced']!.mse).toBeGreaterThan(0);
      expect(perRun['tr->tr forced']!.mse).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
