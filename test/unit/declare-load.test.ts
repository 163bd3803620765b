/**
 * Reading declarative files: YAML and JSON, every problem reported with its
 * path in the file and its line, through the classes' own schemas (and the
 * SmartProxy route normalizer).
 */
import { describe, expect, it } from 'vitest';
import { parseDeclaration } from '../../src/declare/load.js';

function issues(text: string, source = 'test.yaml'): { path: string; message: string }[] {
  const r = parseDeclaration(text, source);
  if (r.ok) throw new Error('expected an error');
  return r.val.issues;
}

describe('parseDeclaration', () => {
  it('accepts a YAML file; the owner defaults to file:<name>', () => {
    const r = parseDeclaration('version: 1\nfirewalls:\n  - table: web\n    chains: { input: { hook: input } }\n', '/etc/netfence/web.yaml');
    expect(r.err ? r.val.message : 'ok').toBe('ok');
    expect(r.ok && r.val.owner).toBe('file:web');
    expect(r.ok && r.val.declaration.firewalls?.[0]?.table).toBe('web');
  });

  it('accepts JSON, with line numbers too', () => {
    const ok = parseDeclaration(JSON.stringify({ version: 1, owner: 'ops', throttle: { limits: [{ iface: 'eth0', direction: 'egress', rate: '10mbit' }] } }), 'x.json');
    expect(ok.err ? ok.val.message : 'ok').toBe('ok');
    expect(ok.ok && ok.val.declaration.throttle?.name).toBe('default'); // the Throttler's own default
    const bad = issues('{\n  "version": 1,\n  "throttle": {\n    "limits": [\n      { "iface": "eth0", "direction": "up", "rate": "10mbit" }\n    ]\n  }\n}', 'x.json');
    expect(bad).toEqual([{ path: 'throttle.limits[0].direction (line 5)', message: expect.stringContaining('egress') }]);
  });

  it('names the path and the line of a bad rule field (the Firewall rule schema)', () => {
    const text = ['version: 1', 'firewalls:', '  - table: web', '    chains:', '      input: { hook: input }', '    rules:', '      input:', '        - id: ok', '          action: accept', '        - id: bad', '          dport: 70000', ''].join('\n');
    expect(issues(text)).toEqual([{ path: 'firewalls[0].rules.input[1].dport (line 11)', message: expect.any(String) }]);
  });

  it('refuses unknown fields, naming each one (no option is silently ignored)', () => {
    const text = 'version: 1\nblocklists:\n  - iface: eth0\n    mod: native\n';
    expect(issues(text)).toEqual([{ path: 'blocklists[0].mod (line 4)', message: expect.stringContaining('unknown field') }]);
    expect(issues('version: 1\nfirewall: []\n')[0]?.path).toBe('firewall (line 2)');
  });

  it('refuses netns and owner inside an object: the file sets them for all', () => {
    expect(issues('version: 1\nfirewalls:\n  - table: web\n    netns: other\n')[0]?.path).toBe('firewalls[0].netns (line 4)');
    expect(issues('version: 1\nblocklists:\n  - { iface: eth0, netns: x }\n')[0]?.path).toMatch(/^blocklists\[0\]\.netns/);
  });

  it('checks the refinements of the class schemas (a limit needs a rate or a quota)', () => {
    expect(issues('version: 1\nthrottle:\n  limits:\n    - { iface: eth0, direction: egress }\n')).toEqual([{ path: 'throttle.limits[0].rate (line 4)', message: expect.stringContaining('rate') }]);
  });

  it('needs version 1', () => {
    expect(issues('firewalls: []\n')).toEqual([{ path: expect.stringMatching(/^version/), message: expect.stringContaining('version: 1') }]);
    expect(issues('version: 2\n')[0]?.message).toContain('version 1');
    expect(issues('- 1\n')[0]?.path).toBe('(root)');
  });

  it('reports YAML syntax errors with their line', () => {
    const i = issues('version: 1\nfirewalls: [\n  { table: web\n');
    expect(i[0]?.path).toMatch(/^line \d+$/);
    expect(i[0]?.message).toContain('not valid YAML/JSON');
  });

  it('refuses a table declared twice and two blocklists of one name', () => {
    const text = 'version: 1\nfirewalls:\n  - { table: web }\n  - { table: web, family: inet }\nblocklists:\n  - { iface: eth0 }\n  - { iface: eth0 }\n';
    const i = issues(text);
    expect(i.map((x) => x.path)).toEqual(['firewalls[1].table (line 4)', 'blocklists[1] (line 7)']);
    expect(i[0]?.message).toContain('declared twice');
  });

  it('validates SmartProxy routes with the route managers\' normalizer', () => {
    const text = 'version: 1\nsmartproxy:\n  routes:\n    - name: r1\n      match: { ports: 443 }\n      action: { type: socket-handler }\n';
    const i = issues(text);
    expect(i[0]?.path).toMatch(/^smartproxy\.routes\[0\] \(line 4\) route r1\.action\.type$/);
    expect(i[0]?.message).toContain("'forward'");
  });

  it('refuses SmartProxy options that declarative files do not implement, saying so', () => {
    const text = 'version: 1\nsmartproxy:\n  routeLocalnet: true\n  routes: []\n';
    expect(issues(text)[0]?.message).toContain('not supported in declarative files');
  });

  it('asks for an owner when the file name does not make one', () => {
    const r = parseDeclaration('version: 1\n', '/tmp/my file!.yaml');
    expect(r.err && r.val.issues[0]?.path).toBe('owner');
  });
});
