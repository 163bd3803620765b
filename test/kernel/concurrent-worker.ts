// Child process for test/kernel/reliability-concurrency.test.ts: a warm netfence
// process that reads one JSON command per line on stdin, runs it, and prints one
// JSON result per line ({ id, ok, ... }). Events (e.g. "inside the health check")
// are printed as { id, event }.
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Firewall } from '../../src/firewall/firewall.js';
import { setFaultHook } from '../../src/plan/faults.js';
import { Throttler, type LimitHandle } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';

interface Cmd {
  id: number;
  op: 'fw-apply' | 'fw-add' | 'throttle' | 'throttle-clear' | 'xdp-attach' | 'xdp-add' | 'exit';
  netns: string;
  table?: string;
  owner?: string;
  ruleId?: string;
  addr?: string;
  element?: string;
  holdMs?: number;
  /** fw-apply: stop just before the nft commit (after the ownership check), print { event: 'before-commit' }, go on once this file exists. */
  gate?: string;
  iface?: string;
  name?: string;
  rate?: string;
  entries?: string[];
}

const send = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const throttlers = new Map<string, { t: Throttler; h: LimitHandle[] }>();

/**
 * Called (synchronously, from the executor's fault point) just before the nft
 * commit: says so, then blocks this process until `gate` exists (true) or 60 s
 * passed (false: the apply then fails, so a test never waits forever).
 */
function waitAtGate(id: number, gate: string): boolean {
  send({ id, event: 'before-commit' }); // stdout is a pipe: written synchronously on Linux
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (const end = Date.now() + 60_000; Date.now() < end; Atomics.wait(cell, 0, 0, 5)) if (existsSync(gate)) return true;
  return false;
}

function describe(e: unknown): { message: string; code?: string; phase?: string; causeCode?: string; restored?: boolean } {
  const x = e as { message?: string; code?: string; phase?: string; restored?: boolean; cause?: { code?: string } };
  return { message: String(x?.message ?? e), code: x?.code, phase: x?.phase, causeCode: x?.cause?.code, restored: x?.restored };
}

function firewall(c: Cmd): Firewall {
  const fw = new Firewall({ table: c.table!, family: 'inet', netns: c.netns, ...(c.owner ? { owner: c.owner } : {}) })
    .set('s', { type: 'ipv4_addr' })
    .chain('input', { hook: 'input', priority: 0, policy: 'accept' });
  if (c.ruleId) fw.rule('input', { id: c.ruleId, saddr: c.addr!, action: 'drop' });
  return fw;
}

async function handle(c: Cmd): Promise<Record<string, unknown>> {
  switch (c.op) {
    case 'fw-apply': {
      let hcFrom = 0;
      let hcTo = 0;
      if (c.gate) setFaultHook((point) => (point === 'nft' ? !waitAtGate(c.id, c.gate!) : false));
      const r = await firewall(c).apply({
        healthCheck: async () => {
          hcFrom = performance.timeOrigin + performance.now();
          send({ id: c.id, event: 'in-health-check' });
          if (c.holdMs) await sleep(c.holdMs);
          hcTo = performance.timeOrigin + performance.now();
          return true;
        },
      });
      setFaultHook(undefined);
      if (r.err) return { ok: false, ...describe(r.val) };
      r.val.confirm();
      return { ok: true, hcFrom, hcTo };
    }
    case 'fw-add': {
      const r = await firewall(c).addElements('s', [c.element!]);
      return r.err ? { ok: false, ...describe(r.val) } : { ok: true };
    }
    case 'throttle': {
      const key = c.name ?? 'default';
      const e = throttlers.get(key) ?? { t: new Throttler({ netns: c.netns, name: key }), h: [] };
      throttlers.set(key, e);
      const r = await e.t.limit({ iface: c.iface!, direction: 'egress', rate: c.rate ?? '10mbit' });
      if (r.err) return { ok: false, ...describe(r.val) };
      e.h.push(r.val);
      return { ok: true };
    }
    case 'throttle-clear': {
      const e = throttlers.get(c.name ?? 'default');
      if (!e) return { ok: true };
      const r = await e.t.clear();
      throttlers.delete(c.name ?? 'default');
      return r.err ? { ok: false, ...describe(r.val) } : { ok: true };
    }
    case 'xdp-attach': {
      const bl = new XdpBlocklist({ iface: c.iface!, netns: c.netns, name: c.name! });
      const r = await bl.attach();
      bl.close();
      return r.err ? { ok: false, ...describe(r.val) } : { ok: true, reopened: r.val.reopened };
    }
    case 'xdp-add': {
      const bl = new XdpBlocklist({ iface: c.iface!, netns: c.netns, name: c.name! });
      const r = await bl.add(c.entries!);
      bl.close();
      return r.err ? { ok: false, ...describe(r.val) } : { ok: true };
    }
    case 'exit':
      process.exit(0);
  }
  return { ok: false, message: `unknown op ${String(c.op)}` };
}

send({ id: 0, event: 'ready', pid: process.pid });
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const c = JSON.parse(line) as Cmd;
  void handle(c).then(
    (r) => send({ id: c.id, ...r }),
    (e) => send({ id: c.id, ok: false, threw: true, ...describe(e) }),
  );
}
