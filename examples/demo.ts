/**
 * netfence demo — `npm run demo` (as root).
 *
 * Builds a throwaway lab (client ── router ── server, three network
 * namespaces), detects what the kernel can do, applies a real plan on the
 * router (a firewall with a named set of blocked addresses and a DNAT port
 * forward), shows traffic allowed and blocked, rolls the plan back, shows
 * traffic restored, and tears the lab down. Nothing outside the lab's
 * namespaces is touched. Each traffic outcome is checked against what the
 * plan should do (✔/✘); the demo exits with status 1 on a ✘.
 */
import { capabilityRows, detectCapabilities } from '../src/capabilities/index.js';
import { run } from '../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../src/lab/index.js';
import { renderCommand } from '../src/nft/render.js';
import { apply, check } from '../src/plan/executor.js';
import { emptyPlan, type Plan } from '../src/plan/types.js';
import { check as verify } from './_check.js';

const CLIENT = '198.18.40.2';
const CLIENT_BLOCKED = '198.18.40.3'; // a second address on the client, put in the blocked set
const ROUTER_OUT = '198.18.40.1';
const ROUTER_IN = '198.18.41.1';
const SERVER = '198.18.41.2';
const FORWARD_PORT = 8080; // router port forwarded to SERVER:80

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const ok = (s: string): string => (process.stdout.isTTY ? `\x1b[32m${s}\x1b[0m` : s);
const no = (s: string): string => (process.stdout.isTTY ? `\x1b[31m${s}\x1b[0m` : s);
const step = (s: string): void => console.log(`\n${bold(`▶ ${s}`)}`);

/** The plan: everything in one table `netfence_demo` on the router. */
function demoPlan(router: LabHost, family: 'inet' | 'ip'): Plan {
  const t = 'netfence_demo';
  const plan = emptyPlan('demo:router', router.netns);
  plan.tables.push({ family, name: t });
  plan.decisions.push({ subject: 'table family', chosen: family, reason: family === 'inet' ? 'kernel supports NAT in inet tables' : 'no inet NAT on this kernel: ip family' });
  const saddr = { payload: { protocol: 'ip', field: 'saddr' } };
  plan.nft.push(
    { add: { set: { family, table: t, name: 'blocked', type: 'ipv4_addr', flags: ['interval'] } } },
    { add: { element: { family, table: t, name: 'blocked', elem: [CLIENT_BLOCKED] } } },
    { add: { chain: { family, table: t, name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } } },
    { add: { rule: { family, table: t, chain: 'forward', expr: [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }] } } },
    { add: { rule: { family, table: t, chain: 'forward', expr: [{ match: { op: '==', left: saddr, right: '@blocked' } }, { counter: null }, { drop: null }], comment: 'blocked set' } } },
    { add: { chain: { family, table: t, name: 'prerouting', type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' } } },
    {
      add: {
        rule: {
          family,
          table: t,
          chain: 'prerouting',
          expr: [
            { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: ROUTER_OUT } },
            { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: FORWARD_PORT } },
            { counter: null },
            { dnat: family === 'inet' ? { family: 'ip', addr: SERVER, port: 80 } : { addr: SERVER, port: 80 } },
          ],
          comment: 'port forward',
        },
      },
    },
  );
  return plan;
}

/** A tiny TCP server in a namespace: greets and closes; exits by itself after `seconds`. */
function startServer(host: LabHost, port: number, seconds: number): void {
  const code = `
    const net = require('node:net');
    const [port] = process.argv.slice(1).map(Number);
    net.createServer((s) => { s.end('hello from the server, port ' + port + '\\n'); }).listen(port, '0.0.0.0');
    setTimeout(() => process.exit(0), ${seconds * 1000});`;
  // Not awaited: it runs in the background, bounded by its own timer and the run timeout,
  // and the lab kills every process left in its namespaces when it is torn down.
  void run([process.execPath, '-e', code, String(port)], { netns: host.netns, timeoutMs: (seconds + 5) * 1000 });
}

async function tcp(lab: Lab, from: LabHost, addr: string, port: number): Promise<string | undefined> {
  const r = await lab.exec(from, ['nc', '-w', '2', addr, String(port)], { timeoutMs: 5000 });
  return r.ok && r.val.stdout.trim() ? r.val.stdout.trim() : undefined;
}

async function pingFrom(lab: Lab, from: LabHost, src: string, addr: string): Promise<boolean> {
  const r = await lab.exec(from, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-I', src, addr], { timeoutMs: 4000 });
  return r.ok;
}

/** Send the four probes from the client; `withPlan`: whether the plan is in force (the blocked source and the port forward depend on it). */
async function showTraffic(lab: Lab, client: LabHost, withPlan: boolean): Promise<void> {
  // ✔ when the outcome is the expected one (a blocked ping that fails is a ✔), ✘ (exit status 1) otherwise
  const show = (works: boolean, expected: boolean, what: string): void => {
    const line = `${works ? 'works' : 'fails'}  ${what}${works === expected ? '' : ` — expected it to ${expected ? 'work' : 'fail'}`}`;
    verify(works === expected ? ok(line) : no(line), works === expected);
  };
  show(await pingFrom(lab, client, CLIENT, SERVER), true, `ping ${CLIENT} → ${SERVER}`);
  show(await pingFrom(lab, client, CLIENT_BLOCKED, SERVER), !withPlan, `ping ${CLIENT_BLOCKED} → ${SERVER} (source in the blocked set)`);
  const direct = await tcp(lab, client, SERVER, 80);
  show(direct !== undefined, true, `tcp ${CLIENT} → ${SERVER}:80${direct ? `  "${direct}"` : ''}`);
  const fwd = await tcp(lab, client, ROUTER_OUT, FORWARD_PORT);
  show(fwd !== undefined, withPlan, `tcp ${CLIENT} → ${ROUTER_OUT}:${FORWARD_PORT} (port forward to ${SERVER}:80)${fwd ? `  "${fwd}"` : ''}`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('the demo creates network namespaces: run it as root (sudo npm run demo)');
    process.exit(1);
  }
  await withLab('demo', async (lab) => {
    step('Building a lab: client ── router ── server (three network namespaces)');
    const client = await lab.host('client');
    const router = await lab.host('router');
    const server = await lab.host('server');
    await lab.link({ host: client, addrs: [`${CLIENT}/24`, `${CLIENT_BLOCKED}/24`] }, { host: router, addrs: [`${ROUTER_OUT}/24`] });
    await lab.link({ host: router, addrs: [`${ROUTER_IN}/24`] }, { host: server, addrs: [`${SERVER}/24`] });
    await lab.forwarding(router);
    await lab.route(client, 'default', ROUTER_OUT);
    await lab.route(server, 'default', ROUTER_IN);
    startServer(server, 80, 60);
    for (let i = 0; i < 20 && !(await tcp(lab, router, SERVER, 80)); i++) await new Promise((r) => setTimeout(r, 100));
    console.log(`   client ${CLIENT} (+${CLIENT_BLOCKED}) ── ${ROUTER_OUT} router ${ROUTER_IN} ── ${SERVER} server (TCP :80)`);

    step('Detecting capabilities of the router namespace');
    const caps = await detectCapabilities({ netns: router.netns });
    const inetNat = caps.nft.features.inetNat.available;
    console.log(
      `   kernel ${caps.kernel.release}, nft ${caps.nft.version ?? 'absent'} (JSON ${caps.nft.json.available ? 'yes' : 'no'}), ` +
        `inet NAT ${inetNat ? 'yes' : 'no'}, detected in ${Math.round(caps.durationMs)} ms`,
    );
    const rows = capabilityRows(caps);
    const missing = rows.filter((r) => !r.available).map((r) => r.key.replace(/^(nft\.features|tc\.\w+)\./, ''));
    console.log(`   ${rows.length - missing.length} of ${rows.length} capabilities available; missing here: ${missing.join(', ') || 'none'}`);
    console.log('   (`npm run netfence -- capabilities` prints the full table with reasons)');

    step('Compiling the plan (plain data: print it, diff it, review it)');
    const plan = demoPlan(router, inetNat ? 'inet' : 'ip');
    for (const d of plan.decisions) console.log(`   decision: ${d.subject} = ${d.chosen} (${d.reason})`);
    for (const c of plan.nft) console.log(`   ${renderCommand(c)}`);

    step('Traffic before the plan');
    await showTraffic(lab, client, false);

    step('Checking the plan with the kernel (nft -c: nothing committed)');
    const c = await check(plan);
    if (c.err) throw c.val;
    console.log(`   ${ok('✔')} the kernel accepts all ${plan.nft.length} commands`);

    step('Applying the plan (one nft transaction, verified, with a health check)');
    const t0 = performance.now();
    const applied = await apply(plan, {
      // the health check sends real traffic: the port forward must answer
      healthCheck: async () => (await tcp(lab, client, ROUTER_OUT, FORWARD_PORT)) !== undefined,
    });
    if (applied.err) throw applied.val;
    console.log(`   ${ok('✔')} applied in ${(performance.now() - t0).toFixed(0)} ms (phases: ${Object.entries(applied.val.timings).map(([k, v]) => `${k} ${v} ms`).join(', ')})`);
    const listing = await lab.sh(router, ['nft', 'list', 'table', plan.tables[0]!.family, plan.tables[0]!.name]);
    console.log(listing.stdout.split('\n').map((l) => `   │ ${l}`).join('\n'));

    step('Traffic with the plan');
    await showTraffic(lab, client, true);

    step('Rolling back');
    const rb = await applied.val.rollback();
    if (rb.err) throw rb.val;
    const left = await lab.sh(router, ['nft', 'list', 'ruleset']);
    console.log(`   ${ok('✔')} state: ${applied.val.state}; router ruleset now ${left.stdout.trim() === '' ? 'empty, as before' : `\n${left.stdout}`}`);

    step('Traffic after rollback');
    await showTraffic(lab, client, false);

    step('Tearing the lab down');
  });
  console.log(`   ${ok('✔')} done: every namespace of the lab is gone\n`);
}

main().catch((e: unknown) => {
  console.error(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
