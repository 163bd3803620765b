import { describe, expect, it } from 'vitest';
import { compileSteering, steeringNames, xtablesRules } from '../../src/dpi/steering.js';
import { DEFAULT_FLOW_MARKS } from '../../src/dpi/nfqueue/marks.js';
import { openQueues } from '../../src/dpi/nfqueue/queues.js';
import { validatePlan } from '../../src/plan/validate-plan.js';
import type { Action, Plan } from '../../src/plan/types.js';

const ok = <T>(r: { ok: boolean; val: unknown }): T => {
  if (!r.ok) throw r.val;
  return r.val as T;
};

describe('steering: xtables fallback (no nft queue)', () => {
  const plan = ok<Plan>(
    compileSteering({ netns: 'nflab-x', queues: [3, 2], failOpen: true, nftQueue: false, resetBad: true, packets: 10 }),
  );

  it('records the choice, the binding and the fail mode', () => {
    expect(plan.queue).toEqual([{ queue: 3, count: 2, via: 'xtables', failOpen: true }]);
    expect(plan.decisions[0]).toMatchObject({ subject: 'dpi steering', chosen: 'xtables NFQUEUE target via iptables-nft' });
    expect(plan.decisions[1]).toMatchObject({ chosen: 'fail-open' });
    expect(plan.tables).toEqual([]);
    expect(plan.nft).toEqual([]);
    expect(plan.netns).toBe('nflab-x');
    expect(validatePlan(plan).ok).toBe(true);
  });

  it('loads one atomic iptables-nft-restore per family, undone rule by rule', () => {
    expect(plan.steps.map((s) => s.id)).toEqual(['dpi:dpi:xtables:ipv4', 'dpi:dpi:xtables:ipv6']);
    const [v4, v6] = plan.steps;
    expect(v4?.do).toEqual([
      // -N first: a second blocker of the same name fails instead of taking over the chain
      { kind: 'exec', argv: ['iptables-nft', '-t', 'filter', '-N', 'NETFENCE-DPI'] },
      { kind: 'exec', argv: ['iptables-nft-restore', '--noflush'], input: expect.stringContaining('*filter') },
    ]);
    expect(v6?.do[1]).toMatchObject({ argv: ['ip6tables-nft-restore', '--noflush'] });
    expect(v4?.undo).toEqual([
      { kind: 'exec', argv: ['iptables-nft', '-t', 'filter', '-D', 'FORWARD', '-j', 'NETFENCE-DPI'], ignoreFailure: true },
      { kind: 'exec', argv: ['iptables-nft', '-t', 'filter', '-F', 'NETFENCE-DPI'] },
      { kind: 'exec', argv: ['iptables-nft', '-t', 'filter', '-X', 'NETFENCE-DPI'] },
    ]);
  });

  it('writes the rules in the order that makes the marks work', () => {
    const text = (plan.steps[0]?.do[1] as { input: string }).input;
    const rules = text.split('\n').filter((l) => l.startsWith('-A') || l.startsWith('-I'));
    const m = '0x20000000/0x30000000';
    const b = '0x10000000/0x30000000';
    expect(rules.map((r) => r.replace(/-m comment --comment "[^"]*" /, ''))).toEqual([
      `-A NETFENCE-DPI -m mark --mark ${m} -j CONNMARK --set-xmark ${m}`,
      `-A NETFENCE-DPI -m mark --mark ${b} -j CONNMARK --set-xmark ${b}`,
      '-A NETFENCE-DPI -m mark ! --mark 0x0/0x30000000 -j MARK --set-xmark 0x0/0x30000000',
      `-A NETFENCE-DPI -m connmark --mark ${b} -j RETURN`,
      `-A NETFENCE-DPI -p tcp -m connmark --mark ${m} -j REJECT --reject-with tcp-reset`,
      `-A NETFENCE-DPI -m connmark --mark ${m} -j DROP`,
      '-A NETFENCE-DPI -p tcp -m connbytes --connbytes 0:10 --connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-balance 3:4 --queue-bypass',
      '-A NETFENCE-DPI -p udp -m connbytes --connbytes 0:10 --connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-balance 3:4 --queue-bypass',
      '-I FORWARD 1 -j NETFENCE-DPI',
    ]);
    expect(text.trimEnd().endsWith('COMMIT')).toBe(true);
  });

  it('fail-closed has no bypass; one queue uses --queue-num; CPU fanout on request; hooks and names', () => {
    const text = xtablesRules({ chain: 'C', hooks: ['input', 'output'], protocols: ['udp'], queues: [7, 1], failOpen: false, packets: 4, resetBad: false, cpuFanout: true, marks: DEFAULT_FLOW_MARKS });
    expect(text).toContain('-j NFQUEUE --queue-num 7\n');
    expect(text).not.toContain('--queue-bypass');
    expect(text).not.toContain('cpu-fanout'); // only meaningful with several queues
    expect(text).not.toContain('REJECT');
    expect(text).toContain('-I INPUT 1 -j C\n-I OUTPUT 1 -j C\n');
    const fan = xtablesRules({ chain: 'C', hooks: ['forward'], protocols: ['tcp'], queues: [7, 4], failOpen: false, packets: 4, resetBad: false, cpuFanout: true, marks: DEFAULT_FLOW_MARKS });
    expect(fan).toContain('--queue-balance 7:10 --queue-cpu-fanout');
    expect(steeringNames('bt')).toEqual({ chain: 'NETFENCE-BT', table: 'netfence_bt' });
    const p = ok<{ steps: { undo: Action[] }[] }>(compileSteering({ name: 'bt', queues: [1, 1], failOpen: false, nftQueue: false, families: ['ipv6'], hooks: ['input', 'forward'] }));
    expect(p.steps).toHaveLength(1);
    expect(p.steps[0]?.undo.map((a) => (a as { argv: string[] }).argv.join(' '))).toEqual([
      'ip6tables-nft -t filter -D INPUT -j NETFENCE-BT',
      'ip6tables-nft -t filter -D FORWARD -j NETFENCE-BT',
      'ip6tables-nft -t filter -F NETFENCE-BT',
      'ip6tables-nft -t filter -X NETFENCE-BT',
    ]);
  });
});

describe('steering: nft queue statement', () => {
  const plan = ok<{ tables: unknown[]; nft: unknown[]; steps: { id: string; do: Action[]; undo: Action[] }[]; queue: unknown[]; decisions: { chosen: string }[] }>(
    compileSteering({ queues: [3, 2], failOpen: true, nftQueue: true, resetBad: true, packets: 10, marks: { mask: 0x3, benign: 0x1, bad: 0x2 } }),
  );

  it('owns one inet table with a base chain per hook', () => {
    expect(plan.tables).toEqual([{ family: 'inet', name: 'netfence_dpi' }]);
    expect(plan.queue).toEqual([{ queue: 3, count: 2, via: 'nft', failOpen: true }]);
    expect(plan.decisions[0]?.chosen).toBe('nft queue statement');
    expect(plan.nft[0]).toEqual({ add: { table: { family: 'inet', name: 'netfence_dpi' } } });
    expect(plan.nft[1]).toEqual({ add: { chain: { family: 'inet', table: 'netfence_dpi', name: 'dpi_forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } } });
  });

  it('copies verdict marks to conntrack, bypasses benign, resets and drops bad, queues the first packets', () => {
    const exprs = plan.nft.slice(2).map((c) => (c as { add: { rule: { expr: unknown[] } } }).add.rule.expr);
    expect(exprs).toHaveLength(6);
    const notMask = 0xfffffffc;
    expect(exprs[0]).toEqual([
      { match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 3] }, right: 2 } },
      { counter: null },
      { mangle: { key: { ct: { key: 'mark' } }, value: { '|': [{ '&': [{ ct: { key: 'mark' } }, notMask] }, 2] } } },
      { mangle: { key: { meta: { key: 'mark' } }, value: { '&': [{ meta: { key: 'mark' } }, notMask] } } },
    ]);
    expect(exprs[2]).toEqual([{ match: { op: '==', left: { '&': [{ ct: { key: 'mark' } }, 3] }, right: 1 } }, { counter: null }, { accept: null }]);
    expect(exprs[3]?.at(-1)).toEqual({ reject: { type: 'tcp reset' } });
    expect(exprs[4]?.at(-1)).toEqual({ drop: null });
    expect(exprs[5]).toEqual([
      { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: { set: ['tcp', 'udp'] } } },
      { match: { op: '<=', left: { ct: { key: 'packets' } }, right: 10 } },
      { counter: null },
      { queue: { num: { range: [3, 4] }, flags: 'bypass' } },
    ]);
  });

  it('turns on conntrack accounting for `ct packets`', () => {
    expect(plan.steps).toEqual([
      expect.objectContaining({ id: 'dpi:dpi:ct-acct', do: [{ kind: 'write', path: '/proc/sys/net/netfilter/nf_conntrack_acct', data: '1' }], undo: [] }),
    ]);
  });

  it('a single family adds an nfproto match; fail-closed has no bypass', () => {
    const p = ok<{ nft: unknown[] }>(compileSteering({ queues: [9, 1], failOpen: false, nftQueue: true, families: ['ipv6'], protocols: ['tcp'] }));
    const last = (p.nft.at(-1) as { add: { rule: { expr: unknown[] } } }).add.rule.expr;
    expect(last[0]).toEqual({ match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv6' } });
    expect(last.at(-1)).toEqual({ queue: { num: 9 } });
  });
});

describe('steering and queue options are validated', () => {
  it('refuses bad input with every field named', () => {
    const r = compileSteering({ queues: [65535, 2], failOpen: true, nftQueue: false, name: 'x y', packets: 0, marks: { mask: 1, benign: 1, bad: 2 } } as never);
    expect(r.err).toBe(true);
    const paths = (r.val as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['queues', 'name', 'packets', 'marks']));
    expect(compileSteering({ queues: [1, 1], failOpen: true } as never).err).toBe(true);
  });

  it('openQueues refuses bad options before starting anything', async () => {
    const r = await openQueues({ queues: [1, 1], failOpen: true, netns: '../x', handlerModule: 'relative.js', onPacket: () => 'accept' });
    expect(r.err).toBe(true);
    const paths = (r.val as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['netns', 'handlerModule']));
    const both = await openQueues({ queues: [1, 1], failOpen: true, handlerModule: '/abs.js', onPacket: () => 'accept' });
    expect(String(both.val)).toMatch(/either onPacket or handlerModule/);
  });
});

describe('steering: payload-less TCP packets skip the queue (skipPayloadless)', () => {
  it('xtables: after the bad-flow rules, before the queue rule, one exact length + u32 header test per TCP data offset, SYN excluded, per family', () => {
    for (const [fam, len5, u32] of [['ipv4', 40, '0>>24&0xF=5&&32>>28=5'], ['ipv6', 60, '4>>8&0xFF=6&&52>>28=5']] as const) {
      const text = xtablesRules({ chain: 'C', hooks: ['forward'], protocols: ['tcp', 'udp'], queues: [1, 1], failOpen: true, packets: 24, resetBad: false, cpuFanout: false, marks: DEFAULT_FLOW_MARKS, skipPayloadless: fam });
      const rules = text.split('\n').filter((l) => l.startsWith('-A'));
      const skip = rules.filter((l) => l.includes('no payload, not queued'));
      expect(skip).toHaveLength(11);
      expect(skip[0]).toContain(`--tcp-flags SYN NONE -m length --length ${len5} -m u32 --u32 "${u32}" -j RETURN`);
      expect(rules.indexOf(skip[0]!)).toBeGreaterThan(rules.findIndex((l) => l.includes('bad flow, drop')));
      expect(rules.indexOf(skip.at(-1)!)).toBeLessThan(rules.findIndex((l) => l.includes('first packets to the queue')));
    }
    const udpOnly = xtablesRules({ chain: 'C', hooks: ['forward'], protocols: ['udp'], queues: [1, 1], failOpen: true, packets: 24, resetBad: false, cpuFanout: false, marks: DEFAULT_FLOW_MARKS, skipPayloadless: 'ipv4' });
    expect(udpOnly).not.toContain('no payload');
  });

  it('nft: exact header-length matches per family and data offset, SYN excluded, accept; off by default', () => {
    const plan = ok<Plan>(compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipPayloadless: true }));
    expect(validatePlan(plan).ok).toBe(true);
    const skip = plan.nft.filter((c) => JSON.stringify(c).includes('no payload, not queued')).map((c) => (c as { add: { rule: { expr: unknown[] } } }).add.rule.expr);
    expect(skip).toHaveLength(22);
    expect(skip[0]).toEqual([
      { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv4' } },
      { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
      { match: { op: '==', left: { payload: { protocol: 'ip', field: 'hdrlength' } }, right: 5 } },
      { match: { op: '==', left: { payload: { protocol: 'ip', field: 'length' } }, right: 40 } },
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'doff' } }, right: 5 } },
      { match: { op: '==', left: { '&': [{ payload: { protocol: 'tcp', field: 'flags' } }, 2] }, right: 0 } },
      { counter: null },
      { accept: null },
    ]);
    expect(skip[11]?.[2]).toEqual({ match: { op: '==', left: { payload: { protocol: 'ip6', field: 'length' } }, right: 20 } });
    const plain = ok<Plan>(compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true }));
    expect(JSON.stringify(plain.nft)).not.toContain('no payload');
  });
});

describe('steering: SYN+ACKs without payload skip the queue (skipSynAck)', () => {
  const o = { chain: 'C', hooks: ['forward'] as const, protocols: ['tcp', 'udp'] as ('tcp' | 'udp')[], queues: [1, 1] as [number, number], failOpen: true, packets: 24, resetBad: false, cpuFanout: false, marks: DEFAULT_FLOW_MARKS };

  it('xtables: the payload-less RETURNs match "not a bare SYN" instead of "not a SYN"; no RETURN for SYN+ACKs with payload', () => {
    const rules = xtablesRules({ ...o, hooks: ['forward'], skipPayloadless: 'ipv4', skipSynAck: true }).split('\n').filter((l) => l.startsWith('-A'));
    const skip = rules.filter((l) => l.includes('no payload, not queued'));
    expect(skip).toHaveLength(11);
    for (const l of skip) {
      expect(l).toContain(' ! --tcp-flags SYN,ACK SYN -m length --length ');
      expect(l).not.toContain('--tcp-flags SYN NONE');
    }
    expect(rules.filter((l) => l.includes('-j RETURN') && !l.includes('-m length') && !l.includes('benign'))).toEqual([]);
    const plain = xtablesRules({ ...o, hooks: ['forward'], skipPayloadless: 'ipv4' }).split('\n').filter((l) => l.includes('no payload'));
    for (const l of plain) expect(l).toContain(' --tcp-flags SYN NONE -m length');
  });

  it('nft: flags & (syn|ack) != syn in the payload-less rules (a SYN+ACK with data is still queued); off by default', () => {
    const plan = ok<Plan>(compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipPayloadless: true, skipSynAck: true }));
    expect(validatePlan(plan).ok).toBe(true);
    const rules = plan.nft.filter((c) => JSON.stringify(c).includes('"rule"')).map((c) => (c as { add: { rule: { expr: unknown[]; comment: string } } }).add.rule);
    const skip = rules.filter((r) => r.comment === 'netfence dpi: no payload, not queued');
    expect(skip).toHaveLength(22);
    for (const r of skip) {
      expect(r.expr).toContainEqual({ match: { op: '!=', left: { '&': [{ payload: { protocol: 'tcp', field: 'flags' } }, 0x12] }, right: 0x02 } });
      expect(r.expr.at(-1)).toEqual({ accept: null });
    }
    const plain = ok<Plan>(compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipPayloadless: true }));
    expect(JSON.stringify(plain.nft)).not.toContain('"!="');
  });

  it('refuses skipSynAck without skipPayloadless (a SYN+ACK carrying data must still be inspected)', () => {
    const r = compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipSynAck: true });
    expect(r.err).toBe(true);
    expect(String(r.val)).toMatch(/skipSynAck.*needs skipPayloadless/s);
  });
});

describe('steering: SYNs skip the queue too (skipSyn, for readers with conntrack attributes)', () => {
  const o = { chain: 'C', hooks: ['forward'] as const, protocols: ['tcp', 'udp'] as ('tcp' | 'udp')[], queues: [1, 1] as [number, number], failOpen: true, packets: 24, resetBad: false, cpuFanout: false, marks: DEFAULT_FLOW_MARKS };

  it('xtables: the payload-less RETURNs match no TCP flags', () => {
    const rules = xtablesRules({ ...o, hooks: ['forward'], skipPayloadless: 'ipv4', skipSynAck: true, skipSyn: true }).split('\n').filter((l) => l.includes('no payload, not queued'));
    expect(rules).toHaveLength(11);
    for (const l of rules) {
      expect(l).not.toContain('--tcp-flags');
      expect(l).toMatch(/"netfence dpi: no payload, not queued" -m length --length \d+ -m u32 /);
    }
  });

  it('nft: no flags match in the payload-less rules; the plan says the handshake is not queued', () => {
    const plan = ok<Plan>(compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipPayloadless: true, skipSynAck: true, skipSyn: true }));
    expect(validatePlan(plan).ok).toBe(true);
    const rules = plan.nft.filter((c) => JSON.stringify(c).includes('"rule"')).map((c) => (c as { add: { rule: { expr: unknown[]; comment: string } } }).add.rule);
    const skip = rules.filter((r) => r.comment === 'netfence dpi: no payload, not queued');
    expect(skip).toHaveLength(22);
    for (const r of skip) expect(JSON.stringify(r.expr)).not.toContain('"flags"');
    expect(plan.decisions.find((d) => d.subject === 'dpi tcp handshake')).toMatchObject({ chosen: 'not queued' });
    const withSyn = ok<Plan>(compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipPayloadless: true, skipSynAck: true }));
    expect(withSyn.decisions.find((d) => d.subject === 'dpi tcp handshake')).toMatchObject({ chosen: "the client's SYN queued" });
  });

  it('refuses skipSyn without skipPayloadless', () => {
    const r = compileSteering({ queues: [3, 1], failOpen: true, nftQueue: true, skipSyn: true });
    expect(r.err).toBe(true);
    expect(String(r.val)).toMatch(/skipSyn.*needs skipPayloadless/s);
  });
});

