/**
 * Hostile input, fixed corpus: every injection attempt of
 * test/lab/injection-corpus.ts is placed in every string field of every
 * builder's input (on top of an input that compiles) and must be refused with
 * a typed error whose issue path names the field.
 *
 * Field kinds:
 * - `id` (names, ids, interfaces, namespaces, owners, addresses, enums): every
 *   corpus entry is refused.
 * - `path` (BPF object, classifier modules): everything but plain paths is
 *   refused (quotes, control characters, `;`, `$(`, backticks, non-ASCII,
 *   `..` segments, a leading `-` ...); a plain path like `/etc/shadow` is a
 *   path, and is accepted.
 * - `text` (comments, log prefixes, VM rule names, route names): free text
 *   that travels as a JSON string or not at all; control characters, quotes,
 *   backslash, `;`, `$(`, backticks and overlong values are refused, the rest
 *   may be accepted (then the plan must still be clean).
 */
import './fake-setup.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { FakeHost } from '../../src/host/fake.js';
import { setHost, withHost } from '../../src/host/host.js';
import type { NftBlocklist } from '../../src/xdp/nft-backend.js';
import { dpiHarness, firewallHarness, smartproxyHarness, throttlerHarness, vmHarness, xdpHarness, type Harness } from '../lab/arbitraries.js';
import { corpusLabel, INJECTION_CORPUS, scanPlan } from '../lab/injection-corpus.js';

/** NftBlocklist.setup against a FakeHost (the namespace and interface exist, no table yet): the batch it commits. */
async function setupCommands(nb: NftBlocklist, md: boolean, comment: string): Promise<unknown[]> {
  const fake = new FakeHost({ netns: nb.netns ? [nb.netns] : [], links: { [nb.netns ?? '']: [{ ifname: nb.iface }] } });
  // setup(matchDestination[, comment]): the comment argument goes away as the nft fallback moves onto the executor
  const setup = nb.setup.bind(nb) as (md: boolean, comment?: string) => Promise<{ err: boolean; val: unknown }>;
  const r = await withHost(fake, () => setup(md, comment));
  if (r.err) throw r.val;
  return fake.committedBatches({ netns: nb.netns })[0] ?? [];
}

type Kind = 'id' | 'path' | 'text';
interface Field {
  path: (string | number)[];
  kind: Kind;
  /** What an issue path must contain to name this field (default: the last non-numeric segment). */
  names?: string;
}
interface Target {
  harness: Harness;
  base: unknown;
  fields: Field[];
}

const f = (p: string, kind: Kind = 'id', names?: string): Field => ({ path: p.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s)), kind, ...(names ? { names } : {}) });

const TARGETS: Target[] = [
  {
    harness: firewallHarness,
    base: {
      options: { table: 't1', family: 'inet', netns: 'ns1', owner: 'app:t1' },
      chains: [
        { name: 'c0', spec: { type: 'filter', hook: 'input', priority: 0, policy: 'accept' } },
        { name: 'r0', spec: {} },
      ],
      sets: [
        { name: 's0', spec: { type: 'ipv4_addr', elements: ['198.18.0.1'] } },
        { name: 'i0', spec: { type: 'ifname', elements: ['eth0'] } },
        { name: 'p0', spec: { type: 'inet_proto', elements: ['tcp'] } },
      ],
      maps: [{ name: 'm0', spec: { type: 'inet_service', map: 'verdict', elements: [[22, 'accept'], [80, { jump: 'r0' }]] } }],
      rules: [
        {
          chain: 'c0',
          spec: {
            id: 'rule1',
            comment: 'ok',
            iifname: 'eth0',
            oifname: ['eth1'],
            saddr: '198.18.0.0/15',
            daddr: ['198.18.0.1'],
            protocol: 'tcp',
            dport: 22,
            meter: { name: 'mt1', key: 'saddr', limit: { rate: 10, per: 'second' } },
            log: { prefix: 'pfx' },
            meta: [{ key: 'pkttype', value: 'broadcast' }],
            action: { type: 'jump', chain: 'r0' },
          },
        },
        { chain: 'c0', spec: { id: 'rule2', protocol: 'tcp', saddr: '@s0', etherSaddr: '02:00:00:00:00:01', setUpdate: { set: '@s0', key: 'saddr' }, action: { type: 'dnat', to: '198.18.0.2', port: 80 } } },
        { chain: 'r0', spec: { id: 'rule3', icmpType: ['echo-request'], ctState: ['new'], action: { type: 'reject', with: 'icmpx', code: 'admin-prohibited' } } },
      ],
    },
    fields: [
      f('options.table'), f('options.netns'), f('options.owner', 'path'), f('options.family'),
      f('chains.0.name', 'id', 'chain'), f('chains.1.name', 'id', 'chain'), f('chains.0.spec.type'), f('chains.0.spec.hook'), f('chains.0.spec.policy'),
      f('sets.0.name', 'id', 'set'), f('sets.0.spec.type'), f('sets.0.spec.elements.0', 'id', 'elements'), f('sets.1.spec.elements.0', 'id', 'elements'), f('sets.2.spec.elements.0', 'id', 'elements'),
      f('maps.0.name', 'id', 'map'), f('maps.0.spec.elements.1.1.jump', 'id', 'elements'), f('maps.0.spec.elements.0.1', 'id', 'elements'),
      f('rules.0.chain'), f('rules.0.spec.id'), f('rules.0.spec.comment', 'text'), f('rules.0.spec.iifname'), f('rules.0.spec.oifname.0', 'id', 'oifname'),
      f('rules.0.spec.saddr'), f('rules.0.spec.daddr.0', 'id', 'daddr'), f('rules.0.spec.protocol'), f('rules.0.spec.meter.name', 'id', 'meter'), f('rules.0.spec.meter.key', 'id', 'meter'),
      f('rules.0.spec.log.prefix', 'text', 'log'), f('rules.0.spec.meta.0.value', 'id', 'meta'), f('rules.0.spec.action.chain', 'id', 'action'),
      f('rules.1.spec.saddr'), f('rules.1.spec.etherSaddr'), f('rules.1.spec.setUpdate.set', 'id', 'setUpdate'), f('rules.1.spec.action.to', 'id', 'action'),
      f('rules.2.spec.icmpType.0', 'id', 'icmpType'), f('rules.2.spec.ctState.0', 'id', 'ctState'), f('rules.2.spec.action.code', 'id', 'action'),
    ],
  },
  {
    harness: firewallHarness,
    base: { options: { table: 'nd', family: 'netdev' }, chains: [{ name: 'ing', spec: { type: 'filter', hook: 'ingress', device: 'eth0', priority: 0 } }], sets: [], maps: [], rules: [] },
    fields: [f('chains.0.spec.device')],
  },
  {
    harness: vmHarness,
    base: {
      table: 'vmt',
      backends: { reject: 'native', stateful: 'native', rejectMark: 0x00400000, establishedMark: 0x00800000 },
      vm: {
        vmId: 'vm1',
        iface: 'tap1',
        mac: '02:00:00:00:00:01',
        ips: ['198.18.0.10', 'fd00::10'],
        rules: [{ id: 'fw1', name: 'ssh', action: 'ACCEPT', direction: 'IN', priority: 10, protocol: 'tcp', dstPortStart: 22, srcIpAddr: '198.18.0.0/15', dstIpAddr: '198.18.0.10' }],
        defaultPolicy: { in: 'DROP', out: 'ACCEPT' },
      },
    },
    fields: [
      f('vm.vmId'), f('vm.iface'), f('vm.mac'), f('vm.ips.0', 'id', 'ips'), f('vm.defaultPolicy.in', 'id', 'defaultPolicy'),
      f('vm.rules.0.id', 'id', 'rule'), f('vm.rules.0.name', 'text'), f('vm.rules.0.action'), f('vm.rules.0.direction'), f('vm.rules.0.protocol'), f('vm.rules.0.srcIpAddr'), f('vm.rules.0.dstIpAddr'),
    ],
  },
  {
    harness: smartproxyHarness,
    base: {
      manager: { tableName: 'sp', netns: 'ns1', owner: 'sp:edge' },
      route: {
        id: 'r-1',
        name: 'web',
        match: { ports: [80, { from: 8000, to: 8010 }], domains: '*' },
        action: {
          type: 'forward',
          target: { host: ['198.18.0.2', '198.18.0.3'], port: 8080 },
          nftables: { protocol: 'tcp', maxRate: '10mbps', tableName: 'sp2', preserveSourceIP: false },
          security: { ipAllowList: ['198.18.0.0/15'], ipBlockList: ['198.18.9.9'] },
        },
      },
    },
    fields: [
      f('manager.tableName'), f('manager.netns'), f('manager.owner', 'path'),
      f('route.name', 'text', 'route'), f('route.id', 'text', 'route'), f('route.match.ports', 'id', 'ports'), f('route.match.domains', 'id', 'domains'),
      f('route.action.type'), f('route.action.target.host.0', 'id', 'host'), f('route.action.target.port', 'id', 'port'),
      f('route.action.nftables.protocol', 'id', 'protocol'), f('route.action.nftables.maxRate', 'id', 'maxRate'), f('route.action.nftables.tableName', 'id', 'tableName'),
      f('route.action.security.ipAllowList.0', 'id', 'ipAllowList'), f('route.action.security.ipBlockList.0', 'id', 'ipBlockList'),
    ],
  },
  {
    harness: throttlerHarness,
    base: { options: { name: 'app', netns: 'ns1' }, limit: { iface: 'eth0', direction: 'egress', rate: '10mbit', burst: '64KiB', match: { dst: '198.18.0.0/15', dport: 443, protocol: 'tcp', cgroup: 'app.slice/web' }, quota: { bytes: '1GB', action: 'drop' } } },
    fields: [
      f('options.name'), f('options.netns'), f('limit.iface'), f('limit.direction'), f('limit.rate'), f('limit.burst'), f('limit.backend'), f('limit.accounting'),
      f('limit.match.dst', 'id', 'match.dst'), f('limit.match.src', 'id', 'match.src'), f('limit.match.protocol', 'id', 'match.protocol'), f('limit.match.cgroup', 'path', 'match.cgroup'),
      f('limit.quota.bytes', 'id', 'quota'), f('limit.quota.action', 'id', 'quota'),
    ],
  },
  {
    harness: xdpHarness(setupCommands),
    base: { options: { iface: 'eth0', netns: 'ns1', mode: 'auto', backend: 'nft', name: 'bl1', objectPath: '/opt/netfence/xdp_blocklist.o' }, entries: ['198.18.0.1', 'fd00::/8'], ttl: 60 },
    fields: [f('options.iface'), f('options.netns'), f('options.mode'), f('options.backend'), f('options.name'), f('options.objectPath', 'path'), f('entries.0', 'id', '0'), f('entries.1', 'id', '1')],
  },
  {
    harness: dpiHarness(true),
    base: { options: { netns: 'ns1', name: 'dpi1', hooks: ['forward'], families: ['ipv4'], protocols: ['tcp'], blockPeers: 'both', classifiers: ['bittorrent', '/opt/c/x.js', { module: 'file:///opt/c/y.mjs' }] } },
    fields: [
      f('options.netns'), f('options.name'), f('options.hooks.0', 'id', 'hooks'), f('options.families.0', 'id', 'families'), f('options.protocols.0', 'id', 'protocols'), f('options.blockPeers'),
      f('options.classifiers.1', 'path', 'classifiers'), f('options.classifiers.2.module', 'path', 'classifiers'),
    ],
  },
];

// eslint-disable-next-line no-control-regex
const DANGEROUS = /[\x00-\x1f\x7f"'`;\\]|\$\(|\$\{/;
const PLAIN_PATH = /^[A-Za-z0-9 _./@+=:,~%-]+$/;

function mustRefuse(kind: Kind, v: string): boolean {
  // "overlong" is relative to the field: a run of 65 letters is too long for an nft name (64) but a fine rule id (96)
  if (/^a+$/.test(v) && v.length <= 96) return false;
  if (kind === 'id') return true;
  if (DANGEROUS.test(v) || v.length > (kind === 'text' ? 200 : 4096)) return true;
  if (kind === 'text') return false;
  return !PLAIN_PATH.test(v) || v.startsWith('-') || /(^|\/)\.\.(\/|$)/.test(v);
}

function put(base: unknown, path: (string | number)[], v: unknown): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let o = copy;
  for (const seg of path.slice(0, -1)) o = o[seg] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = v;
  return copy;
}

const report: Record<string, { attempts: number; refused: number; acceptedHarmless: number; acceptedList: Set<string> }> = {};

/** Every process any builder would start outside the FakeHost above lands here (and fails): none may. */
const guard = new FakeHost();
beforeAll(() => setHost(guard));
afterAll(() => setHost(undefined));

describe(`hostile input: injection corpus (${INJECTION_CORPUS.length} attempts) in every string field`, () => {
  afterAll(() => {
    console.log(`injection corpus tally:\n${Object.entries(report)
      .map(([n, r]) => `  ${n}: ${r.attempts} attempts, ${r.refused} refused with a typed error naming the field, ${r.acceptedHarmless} accepted in free-text/path fields${r.acceptedList.size ? ` (${[...r.acceptedList].slice(0, 12).join(' ')})` : ''}`)
      .join('\n')}`);
  });

  for (const t of TARGETS) {
    it(`${t.harness.name}: ${t.fields.length} fields x ${INJECTION_CORPUS.length} attempts`, async () => {
      const baseOut = await t.harness.run(t.base);
      if (baseOut.kind === 'error') throw new Error(`base input of ${t.harness.name} does not compile: ${baseOut.error.message}`);
      expect(scanPlan(baseOut.plan)).toEqual([]);
      const r = (report[t.harness.name] ??= { attempts: 0, refused: 0, acceptedHarmless: 0, acceptedList: new Set() });
      const failures: string[] = [];
      for (const field of t.fields) {
        const names = field.names ?? String([...field.path].reverse().find((s) => typeof s === 'string'));
        for (const v of INJECTION_CORPUS) {
          r.attempts++;
          const o = await t.harness.run(put(t.base, field.path, v));
          const where = `${field.path.join('.')} = ${corpusLabel(v)}`;
          if (o.kind === 'plan') {
            const findings = scanPlan(o.plan);
            if (mustRefuse(field.kind, v)) failures.push(`${where}: accepted (a plan was compiled)`);
            else if (findings.length) failures.push(`${where}: accepted and the plan carries it: ${JSON.stringify(findings[0])}`);
            else {
              r.acceptedHarmless++;
              r.acceptedList.add(`${field.path[field.path.length - 1]}=${corpusLabel(v)}`);
            }
            continue;
          }
          if (!(o.error instanceof ValidationError)) {
            failures.push(`${where}: refused with ${o.error.constructor.name} (${o.error.code}), not a ValidationError naming the field`);
            continue;
          }
          if (!o.error.issues.some((i) => i.path.includes(names))) {
            failures.push(`${where}: no issue names "${names}": ${JSON.stringify(o.error.issues.slice(0, 3))}`);
            continue;
          }
          r.refused++;
        }
      }
      expect(failures.slice(0, 40)).toEqual([]);
      expect(guard.calls.map((c) => c.argv.join(' '))).toEqual([]);
    });
  }
});
