/**
 * The pure readers behind readStatus(): netlink replies counted from raw
 * bytes, tc's text and JSON statistics, /proc/locks, DPI steering in both
 * forms, owned tables of a terse listing.
 */
import { describe, expect, it } from 'vitest';
import { countChunk, getSetElemRequest, parseGetSetReply, type DumpCounter } from '../../src/host/nft-elements.js';
import { parseListingText } from '../../src/nft/listing.js';
import { ownerMarkName } from '../../src/plan/ownership.js';
import { steeringOf, withJournalQueues } from '../../src/status/dpi.js';
import type { JournalEntry } from '../../src/plan/journal.js';
import type { SteeringStatus } from '../../src/status/types.js';
import { parseProcLocks } from '../../src/status/journal.js';
import { ownedTablesOf, ownerKind } from '../../src/status/nft.js';
import { nftLimitsOf, parseHtbClasses, parsePoliceActions } from '../../src/status/throttle.js';

const align4 = (n: number) => (n + 3) & ~3;
function nla(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(align4(4 + payload.length));
  b.writeUInt16LE(4 + payload.length, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}
const u32be = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
function nlmsg(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(type, 4);
  return Buffer.concat([h, body]);
}
/** One NEWSETELEM reply carrying elements; `ends` of them flagged INTERVAL_END. */
function elemMsg(n: number, ends = 0): Buffer {
  const elems: Buffer[] = [];
  for (let i = 0; i < n; i++) elems.push(nla(1 | 0x8000, Buffer.concat([nla(1 | 0x8000, nla(1, u32be(i))), ...(i < ends ? [nla(3, u32be(1))] : [])])));
  return nlmsg((10 << 8) | 12, Buffer.concat([Buffer.from([2, 0, 0, 0]), nla(1, Buffer.from('t\0')), nla(2, Buffer.from('s\0')), nla(3 | 0x8000, Buffer.concat(elems))]));
}

describe('netlink element counting from raw bytes', () => {
  it('builds the GETSETELEM dump and GETSET requests', () => {
    const r = getSetElemRequest('inet', 'tab', 'set', 7);
    expect(r.readUInt32LE(0)).toBe(r.length);
    expect(r.readUInt16LE(4)).toBe((10 << 8) | 13);
    expect(r.readUInt16LE(6)).toBe(0x301);
    expect(r.readUInt8(16)).toBe(1);
    expect(r.subarray(20).toString('latin1')).toContain('tab\0');
    const g = getSetElemRequest('netdev', 'tab', 'set', 7, true);
    expect(g.readUInt16LE(4)).toBe((10 << 8) | 10);
    expect(g.readUInt16LE(6)).toBe(1);
    expect(g.readUInt8(16)).toBe(5);
    expect(() => getSetElemRequest('nope', 't', 's', 1)).toThrow();
  });

  it('counts elements across messages and chunks, interval ends apart, until DONE; an error reply carries errno', () => {
    const st: DumpCounter = { elements: 0, intervalEnds: 0, bytes: 0, done: false };
    const a = Buffer.concat([elemMsg(5), elemMsg(3, 2)]);
    countChunk(a, a.length, st);
    expect(st).toMatchObject({ elements: 6, intervalEnds: 2, done: false });
    const done = nlmsg(3, Buffer.alloc(4));
    countChunk(done, done.length, st);
    expect(st.done).toBe(true);
    const e: DumpCounter = { elements: 0, intervalEnds: 0, bytes: 0, done: false };
    const errBody = Buffer.alloc(20);
    errBody.writeInt32LE(-2, 0);
    const em = nlmsg(2, errBody);
    countChunk(em, em.length, e);
    expect(e).toMatchObject({ done: true, errno: 2 });
  });

  it('reads NFTA_SET_COUNT and the flags from a GETSET reply; older kernels have no count', () => {
    const body = (withCount: boolean) => Buffer.concat([Buffer.from([1, 0, 0, 0]), nla(1, Buffer.from('t\0')), nla(2, Buffer.from('s\0')), nla(3, u32be(0x4)), ...(withCount ? [nla(20, u32be(1_000_000))] : [])]);
    const m = nlmsg((10 << 8) | 9, body(true));
    expect(parseGetSetReply(m, m.length)).toEqual({ flags: 4, count: 1_000_000 });
    const old = nlmsg((10 << 8) | 9, body(false));
    expect(parseGetSetReply(old, old.length)).toEqual({ flags: 4, count: undefined });
  });
});

describe('tc statistics', () => {
  it('HTB classes of the Throttler layout from iproute2 6.1 text (printed even with -j) and from JSON', () => {
    const text = `class htb 1:11 root leaf 11: prio 0 rate 20800Kbit ceil 20800Kbit burst 15Kb cburst 1600b \n Sent 2213490 bytes 1466 pkt (dropped 3, overlimits 10 requeues 0) \n backlog 0b 0p requeues 0\nclass htb 1:5 root prio 0 rate 1Mbit ceil 1Mbit burst 1600b cburst 1600b \n Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) \n`;
    expect(parseHtbClasses(text)).toEqual([{ id: 1, rateBps: 20_800_000, bytes: 2213490, packets: 1466, drops: 3, backlog: 0 }]);
    const json = JSON.stringify([{ class: 'htb', handle: '1:12', parent: '1:', rate: 125000, stats: { bytes: 10, packets: 1, drops: 0, backlog: 0 } }]);
    expect(parseHtbClasses(json)).toEqual([{ id: 2, rateBps: 1_000_000, bytes: 10, packets: 1, drops: 0, backlog: 0 }]);
  });

  it('police actions of the Throttler index range', () => {
    const out = JSON.stringify([{ total_acts: 2, actions: [{ order: 1, kind: 'police', index: 0x4e00 + 3, rate: '8Mbit', stats: { bytes: 100, packets: 2, drops: 1 } }, { order: 2, kind: 'police', index: 5, stats: {} }] }]);
    expect(parsePoliceActions(out)).toEqual([{ id: 3, rateBps: 8_000_000, bytes: 100, packets: 2, drops: 1 }]);
    expect(parsePoliceActions('garbage')).toEqual([]);
  });
});

describe('listing readers', () => {
  const owner = 'throttle:app';
  const listing = parseListingText({
    nftables: [
      { metainfo: { version: '1.1.6', json_schema_version: 1 } },
      { table: { family: 'inet', name: 'netfence_throttle_app_l4', handle: 1 } },
      { counter: { family: 'inet', table: 'netfence_throttle_app_l4', name: ownerMarkName(owner), comment: `netfence:${owner}`, packets: 0, bytes: 0, handle: 2 } },
      { counter: { family: 'inet', table: 'netfence_throttle_app_l4', name: 'l4_m', packets: 100, bytes: 150000, handle: 3 } },
      { counter: { family: 'inet', table: 'netfence_throttle_app_l4', name: 'l4_d', packets: 10, bytes: 15000, handle: 4 } },
      { chain: { family: 'inet', table: 'netfence_throttle_app_l4', name: 'l4', handle: 5, type: 'filter', hook: 'postrouting', prio: 0, policy: 'accept' } },
      { chain: { family: 'inet', table: 'netfence_throttle_app_l4', name: 'l4_b', handle: 6 } },
      { rule: { family: 'inet', table: 'netfence_throttle_app_l4', chain: 'l4', handle: 7, expr: [{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'eth1' } }, { jump: { target: 'l4_b' } }] } },
      { rule: { family: 'inet', table: 'netfence_throttle_app_l4', chain: 'l4_b', handle: 8, expr: [{ counter: 'l4_m' }, { limit: { rate: 125000, burst: 10000, per: 'second', rate_unit: 'bytes', burst_unit: 'bytes', inv: true } }, { counter: 'l4_d' }, { drop: null }] } },
      { table: { family: 'ip', name: 'filter', handle: 9 } },
      { chain: { family: 'ip', table: 'filter', name: 'NETFENCE-DPI', handle: 10 } },
      { rule: { family: 'ip', table: 'filter', chain: 'NETFENCE-DPI', handle: 11, expr: [{ counter: { packets: 5, bytes: 500 } }, { xt: { type: 'target', name: 'NFQUEUE' } }] } },
      { table: { family: 'inet', name: 'foreign', handle: 12 } },
    ],
  }).unwrap();

  it('owned tables only, the mark left out of the counters; owner kinds', () => {
    const tables = ownedTablesOf(listing);
    expect(tables.map((t) => t.name)).toEqual(['netfence_throttle_app_l4']);
    expect(tables[0]).toMatchObject({ owner, kind: 'throttle', rules: 2 });
    expect(tables[0]?.counters.map((c) => c.name)).toEqual(['l4_m', 'l4_d']);
    expect(['firewall:web', 'throttle:x', 'xdp-blocklist:t', 'dpi:1.ab', 'something'].map(ownerKind)).toEqual(['firewall', 'throttle', 'xdp-blocklist', 'dpi', 'other']);
  });

  it('an nft-limit limit: interface, direction, rate and counters', () => {
    expect(nftLimitsOf(listing, ownedTablesOf(listing))).toEqual([
      expect.objectContaining({ id: 4, backend: 'nft-limit', interface: 'eth1', direction: 'egress', rateBps: 1_000_000, bytes: 135000, packets: 90, drops: 10, owner }),
    ]);
  });

  it('DPI steering in the xtables form (a NETFENCE-* chain in iptables-nft filter tables)', () => {
    expect(steeringOf(listing, ownedTablesOf(listing))).toEqual([{ form: 'xtables', table: 'ip filter', chains: ['NETFENCE-DPI'], rules: 1, packets: 5, bytes: 500 }]);
  });
});

describe('xtables steering: owner and queues from the DpiBlocker\'s in-effect journal entry', () => {
  it('reads --queue-balance / --queue-num from the iptables-restore text of its steps', () => {
    const entry = (input: string): JournalEntry => ({ version: 1, id: 'apply-1.json', kind: 'apply', owner: 'dpi:1.ab', pid: 1, startTime: '1', pgid: 1, createdAt: '', tables: [], steps: [{ id: 's', description: '', do: [{ kind: 'exec', argv: ['iptables-restore', '--noflush'], input }], undo: [] }], stepsStarted: 1, phase: 'in-effect' }) as JournalEntry;
    const s: SteeringStatus[] = [{ form: 'xtables', table: 'ip filter', chains: ['NETFENCE-DPI'], rules: 7 }];
    withJournalQueues(s, [entry('*filter\n:NETFENCE-DPI - [0:0]\n-A NETFENCE-DPI -j NFQUEUE --queue-balance 70:71 --queue-bypass\nCOMMIT\n')]);
    expect(s[0]).toMatchObject({ queues: [70, 71], owner: 'dpi:1.ab' });
    const one: SteeringStatus[] = [{ form: 'xtables', table: 'ip filter', chains: ['NETFENCE-DPI'], rules: 7 }];
    withJournalQueues(one, [entry('*filter\n:NETFENCE-DPI - [0:0]\n-A NETFENCE-DPI -j NFQUEUE --queue-num 91\nCOMMIT\n')]);
    expect(one[0]?.queues).toEqual([91, 91]);
  });
});

describe('/proc/locks', () => {
  it('FLOCK holders by inode', () => {
    const text = '1: FLOCK  ADVISORY  WRITE 4242 00:1a:98765 0 EOF\n2: POSIX  ADVISORY  WRITE 77 00:1a:1 0 EOF\n3: FLOCK  ADVISORY  WRITE 99 fd:01:123 0 EOF\n';
    expect([...parseProcLocks(text)]).toEqual([
      [98765, 4242],
      [123, 99],
    ]);
  });
});
