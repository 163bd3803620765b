import { describe, expect, it } from 'vitest';
import { validatePlan } from '../../src/plan/validate-plan.js';
import { emptyPlan, type Plan } from '../../src/plan/types.js';
import type { Command } from '../../src/nft/schema/index.js';

function plan(): Plan {
  const p = emptyPlan('firewall:web', 'nflab-x');
  p.tables.push({ family: 'inet', name: 'nf_web' });
  p.nft.push({ add: { chain: { family: 'inet', table: 'nf_web', name: 'input' } } });
  return p;
}

function issues(p: unknown): string[] {
  const r = validatePlan(p);
  return r.err ? r.val.issues.map((i) => `${i.path}: ${i.message}`) : [];
}

describe('validatePlan', () => {
  it('accepts a well-formed plan', () => {
    expect(validatePlan(plan()).ok).toBe(true);
  });

  it('refuses commands on tables the plan does not own', () => {
    const p = plan();
    p.nft.push({ add: { rule: { family: 'ip', table: 'filter', chain: 'INPUT', expr: [] } } });
    expect(issues(p)).toEqual([expect.stringMatching(/^nft\.1: touches table ip filter, which is not in plan\.tables/)]);
  });

  it('refuses whole-ruleset commands, list, and commands without an explicit table', () => {
    for (const bad of [
      { flush: { ruleset: null } },
      { delete: { ruleset: null } },
      { list: { ruleset: null } },
      { list: { table: { family: 'inet', name: 'nf_web' } } },
      { add: { chain: { table: 'nf_web', name: 'x' } } },
      { add: { chain: { family: 'inet', name: 'x' } } },
      { reset: { counters: { family: 'inet' } } },
      { add: { chain: {} }, delete: { chain: {} } },
      'add table inet nf_web',
      null,
    ]) {
      const p = plan();
      p.nft.push(bad as unknown as Command);
      expect(issues(p).length, JSON.stringify(bad)).toBeGreaterThan(0);
    }
  });

  it('refuses names that could reach a tool unchecked', () => {
    for (const name of ['x"; flush ruleset; "', 'a\nb', '$(reboot)', '', 'a'.repeat(65)]) {
      const p = plan();
      p.tables[0] = { family: 'inet', name };
      expect(issues(p).some((i) => i.startsWith('tables.0.name')), name).toBe(true);
    }
    const p = plan();
    p.netns = 'bad ns';
    expect(issues(p).some((i) => i.startsWith('netns'))).toBe(true);
    const q = plan();
    q.owner = 'me; rm -rf /';
    expect(issues(q).some((i) => i.startsWith('owner'))).toBe(true);
  });

  it('refuses shells, relative paths and duplicate ids in steps', () => {
    const p = plan();
    p.steps.push({ id: 's1', description: '', do: [{ kind: 'exec', argv: ['sh', '-c', 'tc qdisc add ...'] }], undo: [] });
    p.steps.push({ id: 's1', description: '', do: [{ kind: 'exec', argv: ['/bin/bash', '-c', 'x'] }], undo: [] });
    p.steps.push({ id: 's3', description: '', do: [{ kind: 'write', path: 'relative/file', data: '1' }], undo: [{ kind: 'unlink', path: '/sys/fs/bpf/../../etc/passwd' }] });
    p.steps.push({ id: 's4', description: '', do: [{ kind: 'exec', argv: [] }], undo: [] });
    const got = issues(p);
    expect(got.some((i) => i.startsWith('steps.0.do.0.argv'))).toBe(true);
    expect(got.some((i) => i.startsWith('steps.1.do.0.argv'))).toBe(true);
    expect(got.some((i) => i.startsWith('steps.2.do.0.path'))).toBe(true);
    expect(got.some((i) => i.startsWith('steps.2.undo.0.path'))).toBe(true);
    expect(got.some((i) => i.startsWith('steps.3.do.0.argv'))).toBe(true);
    const q = plan();
    q.steps.push({ id: 'a', description: '', do: [], undo: [] }, { id: 'a', description: '', do: [], undo: [] });
    expect(issues(q)).toContain('steps.1.id: duplicate step id "a"');
  });

  it('requires XDP attachments to be implemented by xdp: steps', () => {
    const p = plan();
    p.xdp.push({ iface: 'eth0', object: '/opt/x.o', program: 'xdp_prog', mode: 'native', pinDir: '/sys/fs/bpf/netfence/x' });
    expect(issues(p)).toEqual([expect.stringMatching(/^xdp: /)]);
    p.steps.push({ id: 'xdp:eth0', description: 'attach', do: [{ kind: 'exec', argv: ['ip', 'link', 'set', 'dev', 'eth0', 'xdp', 'obj', '/opt/x.o'] }], undo: [] });
    expect(validatePlan(p).ok).toBe(true);
  });

  it('refuses a table listed twice', () => {
    const p = plan();
    p.tables.push({ family: 'inet', name: 'nf_web' });
    expect(issues(p)).toEqual(['tables.1: table inet nf_web is listed twice']);
  });
});
