import { describe, expect, it } from 'vitest';
import { UnsupportedError, ValidationError } from '../../src/errors.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { decideFastPath, fastPathCommands, fastPathRefreshCommands, offloadStatements, type FastPathTarget, type FlowtableCapabilitySource } from '../../src/firewall/flowtable.js';
import { parseDocument, renderDocument } from '../../src/nft/index.js';
import type { Plan } from '../../src/plan/types.js';

const HAS: FlowtableCapabilitySource = { nft: { features: { flowtable: { available: true, detail: { json: true, verified: 'commit' } } } } };
const LACKS: FlowtableCapabilitySource = {
  nft: { features: { flowtable: { available: false, reason: 'the kernel lacks nft flowtables (nf_flow_table): Error: Could not process rule: No such file or directory', detail: { json: false } } } },
};

function strictOk(cmds: unknown[]): string {
  const r = parseDocument({ nftables: cmds }, { mode: 'emit' });
  return r.ok ? 'ok' : r.val.message;
}

/** The test router; `mode: null` builds it without a fast path. */
function router(mode: 'auto' | 'required' | null = 'auto'): Firewall {
  const fw = new Firewall({ table: 'gw', family: 'inet' })
    .set('blocked', { type: 'ipv4_addr', interval: true })
    .chain('forward', { hook: 'forward', priority: 0, policy: 'drop' })
    .chain('late', { hook: 'forward', priority: 500 })
    .rule('forward', { id: 'blocked', saddr: '@blocked', action: 'drop' })
    .rule('forward', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
    .rule('forward', { id: 'web', protocol: 'tcp', dport: 80, ctState: ['new'], action: 'accept' })
    .rule('late', { id: 'late-count' });
  return mode === null ? fw : fw.fastPath({ devices: ['lan0', 'wan0'], mode });
}

const kinds = (p: Plan): string[] => p.nft.map((c) => {
  const [verb, body] = Object.entries(c as Record<string, Record<string, unknown>>)[0] as [string, Record<string, unknown>];
  return `${verb} ${Object.keys(body)[0]}`;
});
const text = (p: Plan): string => renderDocument({ nftables: p.nft } as never);

describe('Firewall.fastPath: compiled plan by capability', () => {
  for (const mode of ['auto', 'required'] as const) {
    it(`kernel with flowtables, mode ${mode}: flowtable, offload chain after every forward chain, offload rule; strict schema accepts it`, () => {
      const p = router(mode).compile({ capabilities: HAS });
      if (p.err) throw p.val;
      expect(strictOk(p.val.nft)).toBe('ok');
      const t = text(p.val);
      expect(t).toContain('add flowtable inet gw fastpath { hook ingress priority 0; devices = { "lan0", "wan0" }; }');
      expect(t).toContain('add chain inet gw fastpath { type filter hook forward priority 1001; policy accept; }');
      expect(t).toMatch(/add rule inet gw fastpath ct state established meta l4proto \{ tcp, udp \} iifname \{ lan0, wan0 \} oifname \{ lan0, wan0 \} counter flow add @fastpath comment "nf:fastpath:offload"/);
      // the offload rule is the only `flow add`, it comes after the flowtable, and the user's forward chain has none
      const k = kinds(p.val);
      expect(k.filter((c) => c === 'add flowtable')).toHaveLength(1);
      const flowAt = p.val.nft.findIndex((c) => JSON.stringify(c).includes('"flow":'));
      expect(flowAt).toBeGreaterThan(k.indexOf('add flowtable'));
      expect(p.val.nft.filter((c) => JSON.stringify(c).includes('"flow":'))).toHaveLength(1);
      expect(JSON.stringify(p.val.nft[flowAt])).toContain('"chain":"fastpath"');
      expect(p.val.decisions).toEqual([{ subject: 'fastPath', chosen: 'flowtable', reason: expect.stringContaining('nft.features.flowtable is available') }]);
      // the table is still replaced atomically, so a re-apply drops every offloaded flow
      expect(k.slice(0, 3)).toEqual(['add table', 'delete table', 'add table']);
    });
  }

  it('kernel without flowtables, mode auto: no flowtable and no flow statement; the decision says why', () => {
    const p = router('auto').compile({ capabilities: LACKS });
    if (p.err) throw p.val;
    expect(strictOk(p.val.nft)).toBe('ok');
    expect(JSON.stringify(p.val.nft)).not.toMatch(/flowtable|"flow"/);
    expect(kinds(p.val)).not.toContain('add flowtable');
    expect(p.val.decisions).toHaveLength(1);
    expect(p.val.decisions[0]).toMatchObject({ subject: 'fastPath', chosen: 'none' });
    expect(p.val.decisions[0]?.reason).toContain('nft.features.flowtable is not available');
    expect(p.val.decisions[0]?.reason).toContain('No such file or directory');
    // the rest of the firewall is exactly what it is without a fast path
    const plain = router(null).compile();
    if (plain.err) throw plain.val;
    expect(p.val.nft).toEqual(plain.val.nft);
  });

  it('kernel without flowtables, mode required: UnsupportedError naming the capability and the reason', () => {
    const p = router('required').compile({ capabilities: LACKS });
    expect(p.err).toBe(true);
    if (!p.err) return;
    expect(p.val).toBeInstanceOf(UnsupportedError);
    expect((p.val as UnsupportedError).capability).toBe('nft.features.flowtable');
    expect(p.val.code).toBe('UNSUPPORTED');
    expect(p.val.message).toContain("mode 'required'");
    expect(p.val.message).toContain('No such file or directory');
  });

  it('an nft that takes flowtables only as text counts as without (netfence emits JSON)', () => {
    const textOnly: FlowtableCapabilitySource = { nft: { features: { flowtable: { available: true, detail: { json: false, text: true } } } } };
    expect(router('required').compile({ capabilities: textOnly }).err).toBe(true);
    const auto = router('auto').compile({ capabilities: textOnly });
    expect(auto.ok && auto.val.decisions[0]?.chosen).toBe('none');
  });

  it('compile() without a capability answer refuses (apply/check detect it themselves)', () => {
    const p = router().compile();
    expect(p.err && p.val).toBeInstanceOf(ValidationError);
    expect(p.err ? p.val.issues.map((i) => i.path) : []).toEqual(['fastPath']);
  });

  it('refuses bad fast paths naming the field', () => {
    const paths = (fw: Firewall): string[] => {
      const p = fw.compile({ capabilities: HAS });
      return p.err && p.val instanceof ValidationError ? p.val.issues.map((i) => i.path) : [];
    };
    expect(paths(new Firewall({ table: 't' }).fastPath({ devices: [] }))).toEqual(['fastPath.devices']);
    expect(paths(new Firewall({ table: 't' }).fastPath({ devices: ['eth0', 'eth0'] }))).toEqual(['fastPath.devices']);
    expect(paths(new Firewall({ table: 't' }).fastPath({ devices: ['eth0; drop'] }))).toEqual(['fastPath.devices.0']);
    expect(paths(new Firewall({ table: 't' }).fastPath({ devices: ['eth0'], mode: 'always' as 'auto' }))).toEqual(['fastPath.mode']);
    expect(paths(new Firewall({ table: 't' }).fastPath({ devices: ['eth0'], extra: 1 } as never))).toEqual(['fastPath']);
    expect(paths(new Firewall({ table: 't' }).fastPath({ devices: ['eth0'] }).fastPath({ devices: ['eth1'] }))).toEqual(['fastPath']);
    expect(paths(new Firewall({ table: 't', family: 'bridge' }).fastPath({ devices: ['eth0'] }))).toEqual(['fastPath']);
    expect(paths(new Firewall({ table: 't' }).chain('fastpath').fastPath({ devices: ['eth0'] }))).toEqual(['fastPath.name']);
    expect(paths(new Firewall({ table: 't' }).chain('f', { hook: 'forward', priority: 10 }).fastPath({ devices: ['eth0'], priority: 10 }))).toEqual(['fastPath.priority']);
    expect(paths(new Firewall({ table: 't' }).chain('f', { hook: 'forward', priority: 10 }).fastPath({ devices: ['eth0'], priority: 11, name: 'ft2' }))).toEqual([]);
  });

  it('ip and ip6 tables get the fast path of their family', () => {
    for (const family of ['ip', 'ip6'] as const) {
      const p = new Firewall({ table: 't', family }).chain('fwd', { hook: 'forward', policy: 'drop' }).fastPath({ devices: ['eth0', 'eth1'], name: 'ft' }).compile({ capabilities: HAS });
      if (p.err) throw p.val;
      expect(strictOk(p.val.nft)).toBe('ok');
      expect(text(p.val)).toContain(`add flowtable ${family} t ft {`);
    }
  });
});

describe('flowtable constructors', () => {
  const t: FastPathTarget = { family: 'inet', table: 'proxy', name: 'ft', devices: ['eth1'], priority: 1001 };

  it('the pieces are valid JSON for the strict schema', () => {
    expect(strictOk([{ add: { table: { family: 'inet', name: 'proxy' } } }, ...fastPathCommands(t)])).toBe('ok');
    expect(strictOk(fastPathRefreshCommands(t))).toBe('ok');
    expect(JSON.stringify(offloadStatements(t))).toContain('{"flow":{"op":"add","flowtable":"@ft"}}');
  });

  it('refresh: the offload rule goes before the flowtable is deleted, and both come back in the same batch', () => {
    const text = renderDocument({ nftables: fastPathRefreshCommands(t) } as never).split('\n');
    expect(text).toEqual([
      'add chain inet proxy ft { type filter hook forward priority 1001; policy accept; }',
      'flush chain inet proxy ft',
      'add flowtable inet proxy ft { hook ingress priority 0; devices = { "eth1" }; }',
      'delete flowtable inet proxy ft',
      'add flowtable inet proxy ft { hook ingress priority 0; devices = { "eth1" }; }',
      'add rule inet proxy ft ct state established meta l4proto { tcp, udp } iifname eth1 oifname eth1 counter flow add @ft comment "nf:ft:offload"',
    ]);
  });

  it('decideFastPath reads the report entry', () => {
    expect(decideFastPath(HAS, 'required', t)).toMatchObject({ ok: true, enabled: true });
    expect(decideFastPath(LACKS, 'auto', t)).toMatchObject({ ok: true, enabled: false, decision: { chosen: 'none' } });
    const r = decideFastPath(LACKS, 'required', t);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.capability).toBe('nft.features.flowtable');
  });
});
