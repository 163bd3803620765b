import { describe, expect, it } from 'vitest';
import { UnsupportedError, ValidationError } from '../../src/errors.js';
import type { ThrottleCaps } from '../../src/throttle/caps.js';
import { throttleCaps } from './throttle-fixtures.js';
import { compileLimit, type CompileContext } from '../../src/throttle/compile.js';
import { selectBackend } from '../../src/throttle/backends/index.js';
import { LimitSchema } from '../../src/throttle/types.js';
import { Throttler, type ThrottleHostFacts } from '../../src/throttle/throttler.js';

const caps: ThrottleCaps = throttleCaps({ cgroup2Mount: '/sys/fs/cgroup' });
const facts: ThrottleHostFacts = { capabilities: caps, mtu: 1500 };

describe('Throttler.compile(req, facts): pure and synchronous', () => {
  it('returns the Result itself (no Promise) and the same plan as the compile module', () => {
    const t = new Throttler({ netns: 'nfvocab-x', name: 'v' });
    const req = { iface: 'eth0', direction: 'egress', rate: '10mbit', match: { dst: '198.18.0.0/15' } } as const;
    const r = t.compile(req, facts);
    expect(r).not.toBeInstanceOf(Promise);
    expect(r.ok).toBe(true);
    // the same plan as compileLimit with the context the Throttler derives from the facts
    const spec = LimitSchema.parse(req);
    const sel = selectBackend(spec, caps);
    if (sel.err) throw sel.val;
    const ctx: CompileContext = { owner: 'throttle:v', netns: 'nfvocab-x', table: 'netfence_throttle_v_l1', id: 1, backend: sel.val.backend, reason: sel.val.reason, site: { iface: 'eth0', direction: 'egress' }, siteExists: false, mtu: 1500 };
    expect(r.unwrap()).toEqual(compileLimit(spec, ctx).plan);
    // deterministic: the same input compiles to the same plan
    expect(t.compile(req, facts).unwrap()).toEqual(r.unwrap());
  });

  it('decides from the facts it is given: capabilities, MTU, the process cgroup', () => {
    const t = new Throttler({ name: 'v' });
    const ingress = { iface: 'eth0', direction: 'ingress', rate: '10mbit' } as const;
    expect(t.compile(ingress, facts).unwrap().decisions.map((d) => JSON.stringify(d)).join(' ')).toMatch(/ifb-tc/);
    const noIfb = t.compile(ingress, { capabilities: { ...caps, ifb: { available: false, reason: 'no ifb module' } } });
    expect(noIfb.ok && noIfb.val.decisions.map((d) => JSON.stringify(d)).join(' ')).toMatch(/nft-limit/);
    const police = t.compile({ ...ingress, backend: 'tc-police' }, facts);
    expect(police.err && police.val).toBeInstanceOf(UnsupportedError);
    // MTU reaches the compensation: a larger MTU means less header overhead, a lower kernel rate
    const rate = (mtu: number) => JSON.stringify(t.compile({ iface: 'eth0', direction: 'egress', rate: '10mbit' }, { capabilities: caps, mtu }).unwrap().steps);
    expect(rate(1500)).not.toEqual(rate(9000));
    // pid: the cgroup comes from the facts; without one the limit is refused, naming why
    const pid = { iface: 'eth0', direction: 'egress', rate: '1mbit', match: { pid: 4242 } } as const;
    const moved = t.compile(pid, { ...facts, pidCgroup: '/user.slice/app.scope' }).unwrap();
    expect(JSON.stringify(moved.steps)).toContain('user.slice/app.scope');
    const none = t.compile(pid, facts);
    expect(none.err && none.val.message).toMatch(/no cgroup v2 membership/);
    const bad = t.compile({ iface: 'eth0', direction: 'sideways' } as never, facts);
    expect(bad.err && bad.val).toBeInstanceOf(ValidationError);
  });
});

describe('Throttler lifecycle names', () => {
  it('destroy(), the deprecated clear() alias, unlimit() and stats() on an empty Throttler touch nothing', async () => {
    const t = new Throttler({ netns: 'nfvocab-y', name: 'v' });
    expect((await t.destroy()).ok).toBe(true);
    expect((await t.clear()).ok).toBe(true);
    expect((await t.unlimit(7)).ok).toBe(true);
    expect((await t.stats()).unwrap()).toEqual({ limits: [] });
    expect(t.limits()).toEqual([]);
  });
});
