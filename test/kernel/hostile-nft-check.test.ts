/**
 * Hostile input, kernel side: the plans that the property generators make
 * the builders produce (NETFENCE_HOSTILE_CASES cases per builder, default
 * 10,000, fixed seed) must all be accepted by `nft -c` in a lab namespace.
 *
 * To keep it fast, each plan's commands get their own uniquely named tables
 * and NETFENCE_HOSTILE_BATCH (default 200) plans go to one
 * `nft -c -j -f -`. A rejected batch is bisected down to the offending
 * plans, which are reported with the builder, the case index and the seed.
 *
 * Each builder must contribute its own minimum of kernel-checked plans
 * (MIN_PER_BUILDER): one threshold over all builders would let a builder
 * contribute none. DpiBlocker compiles to the form its start() would pick on
 * this kernel: the nft `queue` statement where the kernel has it (checked with
 * nft -c), else the xtables NFQUEUE steering, whose iptables-nft-restore rules
 * (they are no nft commands) are applied for real in the lab namespace, in
 * batches, and flushed again: the kernel checks them there.
 *
 * Two rewrites make plans from random inputs checkable in one lab namespace:
 * table names (uniqueness) and `dev` of netdev chains (the interfaces the
 * generator names do not exist there: they become `nfhd0`, one end of a veth pair). Throttler
 * cases with a cgroup/pid match are excluded (nft resolves cgroup paths when
 * it parses); tc/ip steps are not checked here (nft only).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withLab } from '../../src/lab/index.js';
import { run } from '../../src/host/run.js';
import type { Plan } from '../../src/plan/types.js';
import { probeBridge } from '../../src/firewall/kernel.js';
import type { VmBackends } from '../../src/firewall/vm.js';
import type { NftBlocklist } from '../../src/xdp/nft-backend.js';
import { dpiHarness, firewallHarness, HOSTILE_CASES, HOSTILE_SEED, smartproxyHarness, throttlerHarness, vmHarness, xdpHarness, type Harness } from '../lab/arbitraries.js';

/** NftBlocklist.setup's commands (its pure part: nothing runs). */
async function setupCommands(nb: NftBlocklist, md: boolean, comment: string): Promise<unknown[]> {
  return nb.setupCommands(md, comment);
}

const BATCH = Math.max(1, Number(process.env.NETFENCE_HOSTILE_BATCH ?? 200) || 200);
const DUMMY = 'nfhd0';
/** Kernel-checked plans each builder must contribute (of its HOSTILE_CASES cases; the fewest, Throttler's nft-matched limits, are ~4.8%). */
const MIN_PER_BUILDER = Math.ceil(HOSTILE_CASES / 40);

interface Checked {
  builder: string;
  index: number;
  /** nft commands (checked with nft -c) ... */
  commands: unknown[];
  /** ... or iptables-nft-restore rules by tool (`iptables-nft`, `ip6tables-nft`), applied for real (DpiBlocker's xtables steering). */
  xtables?: { tool: string; rules: string[] }[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The iptables-nft-restore rules of a plan's xtables steps (chain renamed to `chain`), without the `*filter`/`COMMIT` lines. */
function xtablesOf(plan: Plan, chain: string): { tool: string; rules: string[] }[] {
  const out: { tool: string; rules: string[] }[] = [];
  for (const step of plan.steps) {
    const [create, restore] = step.do;
    if (create?.kind !== 'exec' || restore?.kind !== 'exec' || create.argv[3] !== '-N' || restore.input === undefined) continue;
    const tool = create.argv[0]!;
    const name = create.argv[4]!;
    const re = new RegExp(`(^:|^-A |-j )${escapeRe(name)}(?= |$)`);
    const rules = restore.input.split('\n').filter((l) => l !== '' && l !== '*filter' && l !== 'COMMIT').map((l) => l.replace(re, `$1${chain}`));
    out.push({ tool, rules });
  }
  return out;
}

/** The plan's nft commands with its tables renamed to `<prefix>_<k>` and netdev chain devices pointed at the dummy. */
function isolate(plan: Plan, prefix: string): unknown[] {
  const names = new Map<string, string>();
  plan.tables.forEach((t, k) => names.set(`${t.family} ${t.name}`, `${prefix}_${k}`));
  const copy = JSON.parse(JSON.stringify(plan.nft)) as Record<string, Record<string, Record<string, unknown>>>[];
  for (const cmd of copy) {
    for (const verb of Object.keys(cmd)) {
      const body = cmd[verb]!;
      for (const [kind, obj] of Object.entries(body)) {
        if (!obj || typeof obj !== 'object') continue;
        const fam = obj.family as string;
        if (kind === 'table') obj.name = names.get(`${fam} ${obj.name as string}`) ?? `${prefix}_x`;
        else if (typeof obj.table === 'string') obj.table = names.get(`${fam} ${obj.table}`) ?? `${prefix}_x`;
        if (kind === 'chain' && obj.dev !== undefined) obj.dev = Array.isArray(obj.dev) ? obj.dev.map(() => DUMMY) : DUMMY;
      }
    }
  }
  return copy;
}

/** Whether a plan uses `ct` or `reject` in a bridge-family table on a kernel without them there (apply would fail cleanly with nft's error). */
function needsMissingBridgeFeature(plan: Plan, bridge: { reject: boolean; ct: boolean }): boolean {
  if (bridge.reject && bridge.ct) return false;
  for (const cmd of plan.nft as Record<string, Record<string, { family?: string; expr?: unknown }>>[]) {
    for (const body of Object.values(cmd)) {
      const r = body.rule;
      if (!r || r.family !== 'bridge') continue;
      const text = JSON.stringify(r.expr);
      if ((!bridge.ct && text.includes('"ct":')) || (!bridge.reject && text.includes('"reject":'))) return true;
    }
  }
  return false;
}

async function nftCheck(netns: string, batch: Checked[]): Promise<{ ok: boolean; stderr: string }> {
  if (batch.some((b) => b.xtables)) return xtablesCheck(netns, batch);
  const input = JSON.stringify({ nftables: [{ metainfo: { json_schema_version: 1 } }, ...batch.flatMap((b) => b.commands)] });
  const r = await run(['nft', '-c', '-j', '-f', '-'], { netns, input, timeoutMs: 120_000, what: 'nft -c of hostile plans' });
  return r.ok ? { ok: true, stderr: '' } : { ok: false, stderr: r.val.failure.stderr };
}

/** Apply the batch's xtables rules for real (one iptables-nft-restore transaction per tool), then flush the namespace's ruleset again. */
async function xtablesCheck(netns: string, batch: Checked[]): Promise<{ ok: boolean; stderr: string }> {
  try {
    for (const tool of ['iptables-nft', 'ip6tables-nft']) {
      const rules = batch.flatMap((b) => (b.xtables ?? []).filter((x) => x.tool === tool).flatMap((x) => x.rules));
      if (rules.length === 0) continue;
      const input = ['*filter', ...rules.filter((l) => l.startsWith(':')), ...rules.filter((l) => !l.startsWith(':')), 'COMMIT', ''].join('\n');
      const r = await run([`${tool}-restore`, '--noflush'], { netns, input, timeoutMs: 120_000, what: 'iptables-nft-restore of hostile DpiBlocker steering' });
      if (r.err) return { ok: false, stderr: `${tool}-restore: ${r.val.failure.stderr}` };
    }
    return { ok: true, stderr: '' };
  } finally {
    const f = await run(['nft', 'flush', 'ruleset'], { netns });
    if (f.err) throw f.val;
  }
}

/** Bisect a rejected batch down to the plans nft refuses on their own. */
async function bisect(netns: string, batch: Checked[], out: { c: Checked; stderr: string }[]): Promise<void> {
  if (out.length >= 10) return;
  const r = await nftCheck(netns, batch);
  if (r.ok) return;
  if (batch.length === 1) {
    out.push({ c: batch[0]!, stderr: r.stderr });
    return;
  }
  const mid = Math.floor(batch.length / 2);
  await bisect(netns, batch.slice(0, mid), out);
  await bisect(netns, batch.slice(mid), out);
}

describe(`hostile input: plans from ${HOSTILE_CASES} cases per builder pass nft -c`, () => {
  it('every produced plan is accepted by nft -c in a lab namespace', async () => {
    const harnesses: Harness[] = [];
    const checked: Checked[] = [];
    const tally: Record<string, { cases: number; plans: number; checkable: number; errors: number; kernelLacks: number }> = {};
    const failures: { c: Checked; stderr: string }[] = [];
    let batches = 0;
    let accepted = 0;
    let started = Date.now();
    await withLab('hostile', async (lab) => {
      const h = await lab.host('nft');
      await lab.sh(h, ['ip', 'link', 'add', DUMMY, 'type', 'veth', 'peer', 'name', 'nfhd1']);
      // What this kernel can do in the bridge family (the VM layer probes the same way before it picks backends).
      const bridge = await probeBridge(h.netns);
      // The nft queue statement needs nft_queue; without it DpiBlocker steers with xtables (not nft), as start() decides.
      const nftQueue = (
        await nftCheck(h.netns, [
          {
            builder: 'probe',
            index: 0,
            commands: [
              { add: { table: { family: 'inet', name: 'hprobe' } } },
              { add: { chain: { family: 'inet', table: 'hprobe', name: 'c', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
              { add: { rule: { family: 'inet', table: 'hprobe', chain: 'c', expr: [{ queue: { num: 1, flags: ['bypass'] } }] } } },
            ],
          },
        ])
      ).ok;
      console.log(`kernel: bridge reject ${bridge.reject}, bridge ct ${bridge.ct}, nft queue ${nftQueue}`);
      // DpiBlocker in the form start() picks on this kernel
      const dpi = dpiHarness(nftQueue);
      harnesses.push(firewallHarness, vmHarness, smartproxyHarness, throttlerHarness, xdpHarness(setupCommands), dpi);
      for (const [hi, hv] of harnesses.entries()) {
        const t = (tally[hv.name] = { cases: 0, plans: 0, checkable: 0, errors: 0, kernelLacks: 0 });
        const inputs = fc.sample(hv.arb, { numRuns: HOSTILE_CASES, seed: HOSTILE_SEED });
        for (const [i, raw] of inputs.entries()) {
          t.cases++;
          let input = raw;
          if (hv === vmHarness && raw && typeof raw === 'object') {
            // native backends only where the kernel has them, as attachVm's probe would choose
            const b = { ...((raw as { backends: VmBackends }).backends ?? {}) } as VmBackends;
            if (b.reject === 'native' && !bridge.reject) b.reject = 'br_netfilter';
            if (b.stateful === 'native' && !bridge.ct) b.stateful = 'br_netfilter';
            input = { ...(raw as object), backends: b };
          }
          const o = await hv.run(input);
          if (o.kind === 'error') {
            t.errors++;
            continue;
          }
          t.plans++;
          if (hv === dpi && !nftQueue) {
            const xtables = xtablesOf(o.plan, `hx${i}`);
            if (xtables.length === 0) continue;
            t.checkable++;
            checked.push({ builder: hv.name, index: i, commands: [], xtables });
            continue;
          }
          if (!hv.nftCheckable(input) || o.plan.nft.length === 0) continue;
          if (needsMissingBridgeFeature(o.plan, bridge) || (!nftQueue && JSON.stringify(o.plan.nft).includes('"queue":'))) {
            t.kernelLacks++;
            continue;
          }
          t.checkable++;
          checked.push({ builder: hv.name, index: i, commands: isolate(o.plan, `hb${hi}_${i}`) });
        }
      }
      started = Date.now();
      // batches of one kind: nft plans (nft -c), xtables plans (applied, then flushed)
      const batches_: Checked[][] = [];
      for (const kind of [false, true]) {
        const of = checked.filter((c) => (c.xtables !== undefined) === kind);
        for (let i = 0; i < of.length; i += BATCH) batches_.push(of.slice(i, i + BATCH));
      }
      for (const batch of batches_) {
        batches++;
        const r = await nftCheck(h.netns, batch);
        if (r.ok) accepted += batch.length;
        else {
          const before = failures.length;
          await bisect(h.netns, batch, failures);
          accepted += batch.length - (failures.length - before);
        }
      }
    });
    const seconds = (Date.now() - started) / 1000;
    expect(harnesses.length).toBe(6);
    console.log(
      `hostile nft -c (seed ${HOSTILE_SEED}, ${batches} nft invocations of up to ${BATCH} plans, ${seconds.toFixed(1)} s):\n${Object.entries(tally)
        .map(([n, t]) => `  ${n}: ${t.cases} cases, ${t.errors} typed errors, ${t.plans} plans, ${t.checkable} kernel-checked, ${t.kernelLacks} not checked (bridge ct/reject or nft queue, missing on this kernel)`)
        .join('\n')}\n  accepted by nft -c: ${accepted} of ${checked.length}`,
    );
    expect(
      failures.map((f) => `${f.c.builder} case #${f.c.index} (seed ${HOSTILE_SEED}): ${f.stderr.slice(0, 600)}\n${JSON.stringify(f.c.commands).slice(0, 1500)}`),
    ).toEqual([]);
    expect(accepted).toBe(checked.length);
    expect(checked.length).toBeGreaterThan(harnesses.length * (HOSTILE_CASES / 20));
    // every builder contributes its own minimum: none may pass by contributing nothing
    const short = Object.entries(tally).filter(([, t]) => t.checkable < MIN_PER_BUILDER).map(([n, t]) => `${n}: ${t.checkable} kernel-checked plans`);
    expect(short, `each builder needs at least ${MIN_PER_BUILDER} kernel-checked plans`).toEqual([]);
  }, 900_000);
});
