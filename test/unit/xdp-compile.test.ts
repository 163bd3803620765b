import { describe, expect, it } from 'vitest';
import { validatePlan } from '../../src/plan/validate-plan.js';
import { XdpBlocklist, type XdpFacts } from '../../src/xdp/xdp-blocklist.js';

const OBJ = '/opt/netfence/xdp_blocklist.o';
const fresh: XdpFacts = { bpfSyscall: true, objectPath: OBJ, objectExists: true, mapsExist: false };

describe('XdpBlocklist.compile (pure: host facts in, plan out)', () => {
  it('a first attach: maps, load, attach (native then generic), pin swap — each with its undo, a valid plan', () => {
    const bl = new XdpBlocklist({ iface: 'eth0', netns: 'ns1', name: 'bl1' });
    const c = bl.compile(fresh).unwrap();
    expect(c.reopened).toBe(false);
    expect(c.replacing).toBe(false);
    const p = c.plan;
    expect(validatePlan(p).ok).toBe(true);
    expect(p.owner).toBe('xdp-blocklist:bl1');
    expect(p.netns).toBe('ns1');
    expect(p.xdp).toEqual([{ iface: 'eth0', object: OBJ, program: 'nf_blocklist', mode: 'auto', pinDir: '/sys/fs/bpf/netfence/bl1' }]);
    expect(p.steps.map((s) => s.id)).toEqual(['xdp:maps', 'xdp:load', 'xdp:attach', 'xdp:pin']);
    expect(p.steps.map((s) => s.do.map((a) => a.kind))).toEqual([['xdp-maps'], ['xdp-load'], ['xdp-attach'], ['xdp-pin-swap']]);
    // undo: the pins it created go, the program it attached comes off
    expect(p.steps.map((s) => s.undo)).toEqual([
      [{ kind: 'xdp-unpin', pinDir: '/sys/fs/bpf/netfence/bl1' }],
      [{ kind: 'xdp-unpin', pinDir: '/sys/fs/bpf/netfence/bl1', names: ['prog_next'] }],
      [{ kind: 'xdp-detach', pinDir: '/sys/fs/bpf/netfence/bl1', iface: 'eth0' }],
      [{ kind: 'xdp-pin-swap', pinDir: '/sys/fs/bpf/netfence/bl1', direction: 'revert' }],
    ]);
    expect(p.steps[2]!.do[0]).toMatchObject({ modes: ['native', 'generic'], replace: false, pin: 'prog_next' });
    expect(p.steps[0]!.do[0]).toMatchObject({ create: true, maxEntries: 65_536, flags: 0 });
  });

  it('a re-attach over our own program: same mode, atomic replace, the undo puts the previous program back', () => {
    const bl = new XdpBlocklist({ iface: 'eth0', name: 'bl1', matchDestination: true });
    const c = bl.compile({ ...fresh, mapsExist: true, flags: 0, attached: { id: 42, name: 'nf_blocklist', mode: 'generic' }, ourProgId: 42 }).unwrap();
    expect(c.reopened).toBe(true);
    expect(c.replacing).toBe(true);
    const [maps, , attach] = c.plan.steps;
    expect(maps!.do[0]).toMatchObject({ kind: 'xdp-maps', create: false, flags: 1 });
    expect(maps!.undo[0]).toMatchObject({ kind: 'xdp-maps', create: false, flags: 0 });
    expect(attach!.do[0]).toMatchObject({ kind: 'xdp-attach', modes: ['generic'], replace: true, pin: 'prog_next' });
    expect(attach!.undo).toEqual([{ kind: 'xdp-attach', pinDir: '/sys/fs/bpf/netfence/bl1', iface: 'eth0', pin: 'prog', modes: ['generic'], replace: true }]);
    expect(validatePlan(c.plan).ok).toBe(true);
  });

  it('refuses a foreign program (XDP_BUSY), a missing object and a missing bpf(2), without I/O', () => {
    const bl = new XdpBlocklist({ iface: 'eth0', name: 'bl1' });
    const busy = bl.compile({ ...fresh, attached: { id: 7, name: 'other', mode: 'native' }, ourProgId: undefined });
    expect(busy.err && busy.val.code).toBe('XDP_BUSY');
    const noObj = bl.compile({ ...fresh, objectExists: false });
    expect(noObj.err && noObj.val.message).toMatch(/object was not found at \/opt\/netfence/);
    const noBpf = bl.compile({ ...fresh, bpfSyscall: false });
    expect(noBpf.err && noBpf.val.code).toBe('UNSUPPORTED');
  });

  it('XDP actions are validated like any plan action: a pin directory outside netfence\'s root is refused', () => {
    const bl = new XdpBlocklist({ iface: 'eth0', name: 'bl1' });
    const p = bl.compile(fresh).unwrap().plan;
    (p.steps[0]!.undo[0] as { pinDir: string }).pinDir = '/sys/fs/bpf/../../etc';
    const v = validatePlan(p);
    expect(v.err).toBe(true);
  });

  it('the nft fallback compiles to its owned table with a flushed, rebuilt chain (elements kept)', () => {
    const bl = new XdpBlocklist({ iface: 'eth0', name: 'bl1', backend: 'nft' });
    const p = bl.compileNft().unwrap().plan;
    expect(p.tables).toEqual([{ family: 'netdev', name: 'netfence_bl_bl1' }]);
    expect(validatePlan(p).ok).toBe(true);
    expect(p.nft.some((c) => JSON.stringify(c).includes('"flush":{"chain"'))).toBe(true);
    expect(p.nft.some((c) => JSON.stringify(c).includes('"flush":{"set"'))).toBe(false);
  });
});
