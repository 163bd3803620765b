/**
 * SmartProxy live changes among 1,000 routes (issue 14): `updateRoute` of one
 * route and `syncRoutes` of the 1,000 routes with one of them changed, through
 * `NetfenceRouteManager`, against ONE raw `nft -j -f -` transaction of the same
 * change (delete the route's 7 rules by handle, add its 7 new rules) on an
 * identical table of 1,000 routes in a second lab namespace. The raw side knows
 * its handles (it echoes each transaction, `nft -e`), as a program that keeps
 * them would; netfence checks ownership, places rules by priority, and applies
 * one transaction too.
 *
 * Figures: smartproxy.update-route, smartproxy.sync-routes (ms, medians over
 * alternating rounds; goal ratio ≤ 1.5).
 *
 * Run (root): npx tsx bench/smartproxy-sync.ts [routes] [rounds]   (NETFENCE_NFT selects the nft)
 */
import { nftProgram, run } from '../src/host/run.js';
import { NetfenceRouteManager, createNfTablesRoute, type IRouteConfig } from '../src/integrations/smartproxy.js';
import { withLab } from '../src/lab/index.js';
import { alternate, report } from './lib/harness.js';

const N = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 15);
const TABLE = 'sp_bench';
const CHANGED = Math.floor(N / 2);

/** Route i; `v` selects the target port of the changed route (80 or 81). */
function route(i: number, v = 0): IRouteConfig {
  return createNfTablesRoute(`r${i}`, { host: '198.18.2.2', port: 80 + (i === CHANGED ? v : 0) }, { ports: 10_000 + i });
}

interface ListedRule {
  chain: string;
  handle: number;
  comment?: string;
}
interface Echoed {
  nftables: { rule?: ListedRule; add?: { rule?: ListedRule } }[];
}

async function main(): Promise<void> {
  await withLab('spbench', async (lab) => {
    const ours = await lab.host('ours');
    const raw = await lab.host('raw');
    const routes = Array.from({ length: N }, (_, i) => route(i));
    const mOurs = new NetfenceRouteManager({ tableName: TABLE, netns: ours.netns });
    const mRaw = new NetfenceRouteManager({ tableName: TABLE, netns: raw.netns });
    (await mOurs.syncRoutes(routes)).unwrap();
    (await mRaw.syncRoutes(routes)).unwrap();

    // The raw side's handles of the changed route's rules, from one listing (set-up, not timed).
    const compiled = (v: number) => mRaw.compile(route(CHANGED, v)).unwrap();
    const id = compiled(0).id;
    const l = await run(['nft', '-t', '-j', 'list', 'table', 'inet', TABLE], { netns: raw.netns });
    if (l.err) throw l.val;
    let handles = (JSON.parse(l.val.stdout) as Echoed).nftables
      .map((o) => o.rule)
      .filter((r): r is ListedRule => r !== undefined && typeof r.comment === 'string' && r.comment.startsWith(`nf:${id}:`))
      .map((r) => ({ chain: r.chain, handle: r.handle }));
    if (handles.length === 0) throw new Error('the changed route has no rules in the raw table');

    let vRaw = 0;
    const rawChange = async (): Promise<number> => {
      vRaw ^= 1;
      const add = compiled(vRaw).rules;
      const doc = { nftables: [...handles.map((h) => ({ delete: { rule: { family: 'inet', table: TABLE, chain: h.chain, handle: h.handle } } })), ...add] };
      const t = performance.now();
      const r = await run(['nft', '-e', '-j', '-f', '-'], { netns: raw.netns, input: JSON.stringify(doc) });
      const ms = performance.now() - t;
      if (r.err) throw r.val;
      const echoed = (JSON.parse(r.val.stdout) as Echoed).nftables.slice(handles.length);
      handles = echoed.map((o) => o.add?.rule).filter((x): x is ListedRule => x !== undefined).map((x) => ({ chain: x.chain, handle: x.handle }));
      return ms;
    };

    let vUpd = 0;
    const update = await alternate(
      ROUNDS,
      async () => {
        const from = route(CHANGED, vUpd);
        vUpd ^= 1;
        const t = performance.now();
        const r = await mOurs.updateRoute(from, route(CHANGED, vUpd));
        const ms = performance.now() - t;
        if (r.err) throw r.val;
        return ms;
      },
      rawChange,
    );
    report({
      id: 'smartproxy.update-route',
      figure: `NetfenceRouteManager.updateRoute of 1 route among ${N.toLocaleString('en-US')}`,
      ours: update.ours,
      baseline: update.baseline,
      baselineName: 'one raw nft -j -f - of the same change',
      unit: 'ms',
      goal: { ratioMax: 1.5 },
      detail: { routes: N, rounds: ROUNDS, nft: nftProgram().program, oursSamples: update.oursSamples, baselineSamples: update.baselineSamples },
    });

    let vSync = vUpd;
    const sync = await alternate(
      ROUNDS,
      async () => {
        vSync ^= 1;
        const next = routes.map((r, i) => (i === CHANGED ? route(CHANGED, vSync) : r));
        const t = performance.now();
        const r = await mOurs.syncRoutes(next);
        const ms = performance.now() - t;
        if (r.err) throw r.val;
        if (r.val.updated.length !== 1 || r.val.added.length + r.val.removed.length !== 0) throw new Error(`syncRoutes changed more than one route: ${JSON.stringify({ ...r.val, unchanged: r.val.unchanged.length })}`);
        return ms;
      },
      rawChange,
    );
    report({
      id: 'smartproxy.sync-routes',
      figure: `NetfenceRouteManager.syncRoutes of ${N.toLocaleString('en-US')} routes, 1 changed`,
      ours: sync.ours,
      baseline: sync.baseline,
      baselineName: 'one raw nft -j -f - of the same change',
      unit: 'ms',
      goal: { ratioMax: 1.5 },
      detail: { routes: N, rounds: ROUNDS, nft: nftProgram().program, oursSamples: sync.oursSamples, baselineSamples: sync.baselineSamples },
    });
    (await mOurs.destroy()).unwrap();
    (await mRaw.destroy()).unwrap();
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
