import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nft } from '../../src/advanced.js';
import { corpusFiles, readEntries } from './nft-corpus-lib.js';

const T = { family: 'inet', table: 't' } as const;

describe('nft renderer: common rules', () => {
  it('renders the rule from the brief', () => {
    const r = nft.rule(T, 'c', [
      nft.match(nft.payload('ip', 'saddr'), '==', '198.18.0.1'),
      nft.match(nft.payload('tcp', 'dport'), '==', nft.anonSet([22, 80])),
      nft.counter(),
      nft.accept(),
    ]);
    expect(nft.renderCommand(nft.cmd.add(r))).toBe('add rule inet t c ip saddr 198.18.0.1 tcp dport { 22, 80 } counter accept');
  });

  it('renders tables, chains, sets, maps, elements and deletes', () => {
    const doc = nft.document([
      { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
      nft.cmd.add(nft.table('inet', 't', { comment: 'netfence' })),
      nft.cmd.add(nft.chain(T, 'in', { type: 'filter', hook: 'input', prio: 0, policy: 'drop' })),
      nft.cmd.add(nft.chain(T, 'sub')),
      nft.cmd.add(nft.set(T, 'bl', 'ipv4_addr', { flags: ['interval'], elem: [nft.prefix('198.18.0.0', 15)] })),
      nft.cmd.add(nft.map(T, 'ports', 'inet_service', 'verdict')),
      nft.cmd.add(nft.elements(T, 'ports', [[22, nft.verdict.jump('sub')], [80, nft.verdict.accept()]])),
      nft.cmd.add(nft.rule(T, 'in', [nft.vmap(nft.payload('tcp', 'dport'), nft.setRef('ports'))])),
      nft.cmd.delete({ rule: { family: 'inet', table: 't', chain: 'in', handle: 7 } }),
      nft.cmd.flush({ ruleset: null }),
      { list: { tables: { family: 'inet' } } },
      { rename: { chain: { family: 'inet', table: 't', name: 'sub', newname: 'sub2' } } },
    ]);
    expect(nft.parseDocument(doc).ok).toBe(true);
    expect(nft.renderDocument(doc).split('\n')).toEqual([
      '# nftables 1.0.6 (Lester Gooch #5), JSON schema 1',
      'add table inet t { comment "netfence"; }',
      'add chain inet t in { type filter hook input priority 0; policy drop; }',
      'add chain inet t sub',
      'add set inet t bl { type ipv4_addr; flags interval; elements = { 198.18.0.0/15 }; }',
      'add map inet t ports { type inet_service : verdict; }',
      'add element inet t ports { 22 : jump sub, 80 : accept }',
      'add rule inet t in tcp dport vmap @ports',
      'delete rule inet t in handle 7',
      'flush ruleset',
      'list tables inet',
      'rename chain inet t sub sub2',
    ]);
  });

  it('renders NAT, limits, logs, ct, sets from the packet path and unknown kinds as JSON', () => {
    const s = (x: unknown) => nft.renderStatement(x);
    expect(s({ dnat: { family: 'ip', addr: '198.18.1.2', port: 8080 } })).toBe('dnat ip to 198.18.1.2:8080');
    expect(s({ dnat: { family: 'ip6', addr: 'fd00::2', port: 443 } })).toBe('dnat ip6 to [fd00::2]:443');
    expect(s({ masquerade: { flags: ['random', 'persistent'] } })).toBe('masquerade random,persistent');
    expect(s({ limit: { rate: 10, per: 'second', burst: 5 } })).toBe('limit rate 10/second burst 5 packets');
    expect(s({ limit: { rate: 1, per: 'second', rate_unit: 'mbytes', inv: true } })).toBe('limit rate over 1 mbytes/second');
    expect(s({ log: { prefix: 'blocked: ', level: 'info' } })).toBe('log prefix "blocked: " level info');
    expect(s({ match: { left: nft.ct('state'), op: 'in', right: ['established', 'related'] } })).toBe('ct state established,related');
    expect(s({ match: { left: { '&': [nft.payload('tcp', 'flags'), { '|': ['syn', 'ack'] }] }, op: '==', right: 'syn' } })).toBe('tcp flags & (syn | ack) == syn');
    expect(s(nft.mangle(nft.meta('mark'), { '|': [nft.meta('mark'), 16] }))).toBe('meta mark set meta mark | 16');
    expect(s({ set: { op: 'add', elem: nft.payload('ip', 'saddr'), set: '@seen', stmt: [{ limit: { rate: 10, per: 'second' } }] } })).toBe('add @seen { ip saddr limit rate 10/second }');
    expect(s({ queue: { num: 3, flags: 'bypass' } })).toBe('queue flags bypass to 3');
    expect(s({ reject: { type: 'tcp reset' } })).toBe('reject with tcp reset');
    expect(s({ teleport: { to: 'moon' } })).toBe('{"teleport":{"to":"moon"}}');
    expect(nft.renderExpr({ quantum: 1 })).toBe('{"quantum":1}');
  });
});

const UNQUALIFIED = 'mark|iif|iifname|iiftype|oif|oifname|oiftype|skuid|skgid|nftrace|rtclassid|ibriport|obriport|ibrname|obrname|pkttype|cpu|iifgroup|oifgroup|cgroup|ipsec';
/**
 * Normalise nft text for comparison: quotes, equivalent spellings nft's
 * grammar accepts (`meta iif` = `iif`, `or` = `|`, `eq`/`==` implicit, hex = decimal)
 * and whitespace.
 */
function norm(s: string): string {
  return s
    .replace(/"/g, '')
    .replace(new RegExp(`\\bmeta (${UNQUALIFIED})\\b`, 'g'), '$1')
    .replace(/\b0x[0-9a-fA-F]+\b/g, (h) => BigInt(h).toString())
    .replace(/(\d)(k?m?bytes)\b/g, '$1 $2')
    .replace(/ or /g, ' | ').replace(/ and /g, ' & ').replace(/ xor /g, ' ^ ')
    .replace(/ eq /g, ' == ').replace(/ ne /g, ' != ').replace(/ gt /g, ' > ').replace(/ lt /g, ' < ').replace(/ ge /g, ' >= ').replace(/ le /g, ' <= ')
    .replace(/\s*==\s*/g, ' ')
    .replace(/\s*([{},:[\]()/])\s*/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('nft renderer vs the corpus rule texts', () => {
  it('renders most .t.json entries like their # rule text', () => {
    let total = 0;
    let same = 0;
    for (const file of corpusFiles('py', '.t.json')) {
      for (const e of readEntries(file)) {
        total++;
        const text = nft.renderStatements(e.expr as unknown[]);
        expect(text).not.toMatch(/^\{|\s\{"/); // every kind is rendered as text, none falls back to JSON
        if (norm(text) === norm(e.text)) same++;
      }
    }
    const rate = same / total;
    console.log(`nft renderer: ${same}/${total} corpus rules (${(rate * 100).toFixed(1)}%) match their # rule text after normalisation`);
    expect(total).toBeGreaterThan(1500);
    expect(rate).toBeGreaterThan(0.9);
  });

  it('renders every listing document without JSON fallbacks', () => {
    let lines = 0;
    for (const file of corpusFiles('shell', '.json-nft')) {
      const r = nft.parseListing(fs.readFileSync(file, 'utf8'));
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      for (const line of nft.renderDocument(r.val).split('\n')) {
        lines++;
        expect(line, file).not.toMatch(/\{"/);
      }
    }
    expect(lines).toBeGreaterThan(1000);
  });
});
