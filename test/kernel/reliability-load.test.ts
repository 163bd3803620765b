/**
 * Issue 7, "Load": a long-lived TCP stream through a SmartProxy port forward
 * survives 1,000 updates of other routes; 10,000 concurrent connections
 * through a forwarded port are all served; a 1,000,000-element set is applied
 * with bounded memory. Real traffic between lab namespaces only.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/host/run.js';
import { createNfTablesRoute, NetfenceRouteManager as NFTablesManager, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { LOAD_NET, nsProc } from './load-proc.js';

/** client (198.18.1.2) -- router (198.18.1.1 | 198.18.2.1) -- server (198.18.2.2) */
async function topo(lab: Lab): Promise<{ client: LabHost; router: LabHost; server: LabHost }> {
  const client = await lab.host('client');
  const router = await lab.host('router');
  const server = await lab.host('server');
  await lab.link({ host: client, addrs: ['198.18.1.2/24'] }, { host: router, addrs: ['198.18.1.1/24'] });
  await lab.link({ host: router, addrs: ['198.18.2.1/24'] }, { host: server, addrs: ['198.18.2.2/24'] });
  await lab.forwarding(router);
  await lab.route(client, 'default', '198.18.1.1');
  await lab.route(server, 'default', '198.18.2.1');
  return { client, router, server };
}

const ok = (r: { err: boolean; val: unknown }): string => (r.err ? (r.val as Error).message : 'ok');

describe('reliability under load', () => {
  it('a long-lived TCP stream through a port forward survives 1,000 updates of other routes (no reset, no stall over 1 s)', async () => {
    await withLab('ldstream', async (lab) => {
      const { client, router, server } = await topo(lab);
      const m = new NFTablesManager({ tableName: 'nf_load', netns: router.netns });
      const streamRoute = createNfTablesRoute('stream', 9000, { host: '198.18.2.2', port: 7000 });
      expect(ok(await m.provisionRoute(streamRoute))).toBe('ok');
      // a few resident routes, so that the table is not trivially small
      for (let i = 0; i < 10; i++) expect(ok(await m.provisionRoute(createNfTablesRoute(`resident${i}`, 9100 + i, { host: '198.18.2.2', port: 7100 }, { ipBlockList: [`198.18.${100 + i}.0/24`] })))).toBe('ok');

      const srv = nsProc(server, [process.execPath, LOAD_NET, 'stream-server', '7000', '300000']);
      let cli: ReturnType<typeof nsProc> | undefined;
      try {
        await srv.line((l) => 'listening' in l, 10_000);
        cli = nsProc(client, [process.execPath, LOAD_NET, 'stream-client', '198.18.1.1', '9000', '10', '300000']);
        await cli.line((l) => 'connected' in l, 10_000);
        // 1,000 operations on other routes: provision, update (new target port and block list), deprovision
        const UPDATES = 1000;
        const t0 = Date.now();
        let done = 0;
        for (let k = 0; done < UPDATES; k++) {
          const a: IRouteConfig = createNfTablesRoute(`churn${k % 25}`, 9500 + (k % 25), { host: '198.18.2.2', port: 7200 });
          const b: IRouteConfig = createNfTablesRoute(`churn${k % 25}`, 9500 + (k % 25), { host: '198.18.2.2', port: 7201 }, { ipBlockList: ['198.18.200.0/24'] });
          expect(ok(await m.provisionRoute(a))).toBe('ok');
          if (++done === UPDATES) break;
          expect(ok(await m.updateRoute(a, b))).toBe('ok');
          if (++done === UPDATES) break;
          expect(ok(await m.deprovisionRoute(b))).toBe('ok');
          done++;
        }
        const ms = Date.now() - t0;
        // the stream kept going: stop the client, read both sides' figures
        cli.write('stop\n');
        const c = await cli.line((l) => 'sent' in l, 10_000);
        const s = await srv.line((l) => 'chunks' in l, 10_000);
        const perS = Math.round((UPDATES / ms) * 1000 * 10) / 10;
        console.log(
          `stream during ${UPDATES} route operations in ${ms} ms (${perS}/s): sent ${String(c.sent)} chunks, received ${String(s.chunks)}, ` +
            `max gap at the receiver ${String(s.maxGapMs)} ms (sender's own max gap between writes ${String(c.maxSendGapMs)} ms), errors: client ${String(c.error)}, server ${String(s.error)}`,
        );
        expect(c.error).toBeNull();
        expect(s.error).toBeNull();
        expect(s.chunks).toBe(c.sent);
        expect(s.outOfOrder).toBe(0);
        expect(s.maxGapMs as number).toBeLessThan(1000);
        // and the stream's route was never touched: its rules are still the first ones provisioned
        const st = await m.getStatus();
        expect(st.ok).toBe(true);
        if (st.ok) {
          const sr = Object.values(st.val).find((r) => r.name === 'stream');
          expect(sr?.packets).toBe(1); // one new connection, DNATed once
          expect(Object.keys(st.val).length).toBe(11 + (done % 3 === 0 ? 0 : 1));
        }
      } finally {
        srv.kill();
        cli?.kill();
        await m.stop();
      }
    });
  }, 280_000);

  it('10,000 concurrent connections through a forwarded port are all served', async () => {
    await withLab('ldconns', async (lab) => {
      const { client, router, server } = await topo(lab);
      // room for 10,000 source ports on the client and 10,000 NATed ones on the router
      await lab.sh(client, ['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=10000 65000']);
      await lab.sh(server, ['sysctl', '-q', '-w', 'net.core.somaxconn=8192']);
      const ctMax = await run(['sysctl', '-n', 'net.netfilter.nf_conntrack_max'], { netns: router.netns });
      const m = new NFTablesManager({ tableName: 'nf_load', netns: router.netns });
      expect(ok(await m.provisionRoute(createNfTablesRoute('many', 8080, { host: '198.18.2.2', port: 80 })))).toBe('ok');
      const N = 10_000;
      // raise the fd limit of both programs to the hard limit (root without CAP_SYS_RESOURCE cannot go above it)
      const hard = /^Max open files\s+\d+\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '65536';
      const nofile = hard === 'unlimited' ? 65536 : Math.min(65536, Number(hard));
      expect(nofile).toBeGreaterThan(N + 100);
      const srv = nsProc(server, [process.execPath, LOAD_NET, 'conn-server', '80', '240000'], { nofile });
      try {
        await srv.line((l) => 'listening' in l, 10_000);
        const t0 = Date.now();
        const cli = nsProc(client, [process.execPath, LOAD_NET, 'conn-client', '198.18.1.1', '8080', String(N), '400', '150000'], { nofile });
        // the client reports once every connection got its reply, all still open; ask the server before it exits
        const c = await cli.line((l) => 'served' in l, 170_000);
        srv.write('count\n');
        const s = await srv.line((l) => 'accepted' in l, 10_000);
        const ct = await run(['sysctl', '-n', 'net.netfilter.nf_conntrack_count'], { netns: router.netns });
        console.log(
          `${N} connections: ${String(c.served)} served in ${String(c.establishMs)} ms (wall ${Date.now() - t0} ms), failed ${String(c.failed)}, closed early ${String(c.closedEarly)}, errors ${JSON.stringify(c.errors)}, ` +
            `open at the end ${String(c.openAtEnd)}; server: accepted ${String(s.accepted)}, distinct peers ${String(s.distinct)}, max open at once ${String(s.maxOpen)}; ` +
            `router conntrack entries ${ct.ok ? ct.val.stdout : '?'} (nf_conntrack_max ${ctMax.ok ? ctMax.val.stdout : '?'})`,
        );
        expect(c.served).toBe(N);
        expect(c.failed).toBe(0);
        expect(c.closedEarly).toBe(0);
        expect(c.openAtEnd).toBe(N);
        expect(s.accepted).toBe(N);
        expect(s.distinct).toBe(N);
        expect(s.maxOpen).toBe(N);
        const st = await m.getStatus();
        if (st.ok) expect(Object.values(st.val)[0]?.packets).toBe(N); // each connection DNATed once
        cli.kill();
      } finally {
        srv.kill();
        await m.stop();
      }
    });
  }, 280_000);

  it('a 1,000,000-element set is applied with bounded memory', async () => {
    await withLab('ldbigset', async (lab) => {
      const h = await lab.host('fw');
      const child = fileURLToPath(new URL('./load-bigset.ts', import.meta.url));
      const r = await run([process.execPath, '--import', 'tsx', child, h.netns, '1000000'], { timeoutMs: 240_000 });
      const text = r.ok ? r.val.stdout : `${r.val.failure.stdout}\n${r.val.failure.stderr}`;
      const line = text.trim().split('\n').pop() ?? '';
      let out: Record<string, unknown>;
      try {
        out = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`big-set child failed: ${text.slice(-3000)}`);
      }
      const mib = (k: unknown) => Math.round((k as number) / 1024);
      console.log(
        `1,000,000-element set (ipv4_addr . inet_service) applied in ${String(out.applyMs)} ms: Node peak RSS ${mib(out.nodeHwmKiB)} MiB (before building the elements ${mib(out.baseKiB)} MiB), ` +
          `nft peak RSS ${mib(out.nftPeakKiB)} MiB over ${(out.nftProcs as number[]).length} nft process(es) [${(out.nftProcs as number[]).map(mib).join(', ')}] MiB; ` +
          `building the elements ${String(out.buildMs)} ms, probe chain + two connections ${String(out.getMs)} ms, destroy ${String(out.destroyMs)} ms`,
      );
      expect(out.error).toBeUndefined();
      expect(out.ok).toBe(true);
      expect(out.present).toBe(true); // the last element is in the kernel's set
      expect(out.absent).toBe(true); // and the next one is not
      expect(out.destroyed).toBe(true);
      // Bounds (see docs/reliability.md, "Load"): the Node side holds the elements, the plan and one JSON document.
      expect(out.nodeHwmKiB as number).toBeLessThan(1.5 * 1024 * 1024);
      expect(out.nftPeakKiB as number).toBeGreaterThan(0);
      expect(out.nftPeakKiB as number).toBeLessThan(2 * 1024 * 1024);
    });
  }, 280_000);
});
