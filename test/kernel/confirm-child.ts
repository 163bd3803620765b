// Child process of reliability-confirm.test.ts: applies the NEW configuration
// of one class with a confirm deadline, prints `applied <json>` (journal id,
// watchdog pid, timings) and then waits — the parent SIGKILLs it during the
// wait, or confirms the plan from another process.
// argv: class netns iface confirmMs
import { createInterface } from 'node:readline';
import { apply } from '../../src/plan/executor.js';
import type { Plan } from '../../src/plan/types.js';

const [cls, netns, iface, ms] = process.argv.slice(2) as [string, string, string, string];

async function newPlan(): Promise<Plan> {
  if (cls === 'firewall') {
    const { crashFirewall } = await import('./crash-state.js');
    return crashFirewall(netns, 'new').compile().unwrap(); // no fast path: no capability report needed
  }
  if (cls === 'throttler') {
    const { Throttler } = await import('../../src/throttle/throttler.js');
    const t = new Throttler({ netns, name: 'confirm' });
    const req = { iface, direction: 'ingress' as const, rate: '10mbit', match: { dst: '198.18.1.0/24' } };
    return t.compile(req, (await t.hostFacts(req)).unwrap()).unwrap();
  }
  if (cls === 'smartproxy') {
    // the managers' pipeline (RouteCore: normalize, resolve, compile), as one plan replacing the route table
    const { RouteCore, systemResolve } = await import('../../src/integrations/smartproxy/core.js');
    const { structure } = await import('../../src/integrations/smartproxy/compile.js');
    const { NO_FAST_PATH } = await import('../../src/integrations/smartproxy/fastpath.js');
    const { emptyPlan } = await import('../../src/plan/types.js');
    const x = await import('../../src/nft/build.js');
    const { crashRoute } = await import('./crash-state.js');
    const core = new RouteCore({ tableName: 'nf_cfsp', netns, owner: 'test:confirm-sp', engine: 'lenient', preserveSourceIP: () => undefined, routeLocalnet: false, resolve: systemResolve, fastPath: NO_FAST_PATH });
    const p = (await core.prepare(crashRoute('new'))).unwrap();
    if (p.kind !== 'route') throw new Error('route skipped');
    const plan = emptyPlan('test:confirm-sp', netns);
    const ref = { family: 'inet' as const, name: 'nf_cfsp' };
    plan.tables = [ref];
    plan.nft.push(x.cmd.add({ table: ref }), x.cmd.delete({ table: ref }), ...structure('nf_cfsp'), ...p.compiled.sets.flatMap((s) => s.cmds), ...p.compiled.rules);
    return plan;
  }
  throw new Error(`unknown class ${cls}`);
}

const plan = await newPlan();
const t0 = performance.now();
const r = await apply(plan, { confirmWithinMs: Number(ms) });
if (r.err) {
  process.stderr.write(`failed: ${r.val.message}\n`);
  process.exit(1);
}
const a = r.val;
process.stdout.write(`applied ${JSON.stringify({ id: a.id, watchdogPid: a.watchdogPid, deadline: a.confirmDeadline, ms: Math.round(performance.now() - t0), timings: a.timings })}\n`);
// wait to be killed (stdin open keeps the process alive; the confirm timer does not, with a watchdog)
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'confirm') {
    a.confirm();
    process.stdout.write(`confirmed ${a.state}\n`);
  }
});
