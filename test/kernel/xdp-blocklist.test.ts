/**
 * XdpBlocklist against real packets in lab namespaces: host `a` sends from
 * several source addresses to host `b`, whose interface carries the
 * blocklist. Verdicts are observed as ping replies; counters are compared
 * with the packets sent.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabHost } from '../../src/lab/index.js';
import { run } from '../../src/host/run.js';
import { XdpBlocklist } from '../../src/index.js';
import { objGet, closeFd, progTestRun } from '../../src/host/bpf.js';

const A = { base4: '198.18.1.2', list4: '198.18.1.10', inPrefix4: '198.18.1.20', other4: '198.18.1.40', base6: 'fd00:1::2', list6: 'fd00:1::10', inPrefix6: 'fd00:1::1:20', other6: 'fd00:1::30' };
const B4 = '198.18.1.1';
const B6 = 'fd00:1::1';
const PREFIX4 = '198.18.1.16/28';
const PREFIX6 = 'fd00:1::1:0/112';

let lab: Lab;
let a: LabHost;
let b: LabHost;
let ifB = '';
const names: string[] = [];

async function mac(h: LabHost, iface: string): Promise<string> {
  const r = await lab.sh(h, ['ip', '-j', 'link', 'show', 'dev', iface]);
  return (JSON.parse(r.stdout) as { address: string }[])[0]!.address;
}

/** Ping `dst` from source `src`; returns replies received. */
async function pingFrom(src: string, dst: string, count: number, interval = '0.05'): Promise<number> {
  const r = await run(['ping', '-n', '-q', '-c', String(count), '-i', interval, '-W', '1', '-I', src, dst], { netns: a.netns, timeoutMs: 30_000 });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  const m = /(\d+) (?:packets )?received/.exec(text);
  return m ? Number(m[1]) : 0;
}

function blocklist(opts: Partial<ConstructorParameters<typeof XdpBlocklist>[0]> = {}): XdpBlocklist {
  const name = `t${process.pid}_${names.length}`;
  names.push(name);
  return new XdpBlocklist({ iface: ifB, netns: b.netns, name, ...opts });
}

beforeAll(async () => {
  lab = await Lab.create('xdpbl');
  a = await lab.host('a');
  b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: [`${A.base4}/24`, `${A.base6}/64`] }, { host: b, addrs: [`${B4}/24`, `${B6}/64`] });
  ifB = l.b;
  for (const x of [A.list4, A.inPrefix4, A.other4]) await lab.addr(a, l.a, `${x}/24`);
  for (const x of [A.list6, A.inPrefix6, A.other6]) await lab.addr(a, l.a, `${x}/64`);
  // static neighbours both ways: no ARP/ND from listed sources muddies the counts
  const macA = await mac(a, l.a);
  const macB = await mac(b, l.b);
  for (const d of [B4, B6]) await lab.sh(a, ['ip', 'neigh', 'replace', d, 'lladdr', macB, 'dev', l.a, 'nud', 'permanent']);
  for (const s of Object.values(A)) await lab.sh(b, ['ip', 'neigh', 'replace', s, 'lladdr', macA, 'dev', l.b, 'nud', 'permanent']);
});

afterAll(async () => {
  for (const name of names) {
    await new XdpBlocklist({ iface: ifB || 'lo', netns: b?.netns, name }).detach();
    const dir = join('/sys/fs/bpf/netfence', name);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
  if (existsSync('/sys/fs/bpf/netfence') && readdirSync('/sys/fs/bpf/netfence').length === 0) rmSync('/sys/fs/bpf/netfence', { recursive: true, force: true });
  await lab?.destroy();
});

describe('XdpBlocklist (XDP backend)', () => {
  it('drops listed IPv4/IPv6 addresses and prefixes, passes the others, and counts exactly', async () => {
    const bl = blocklist();
    try {
      const at = (await bl.attach()).unwrap();
      expect(at.backend).toBe('xdp');
      expect(at.mode).toBe('native'); // veth supports native XDP
      expect(bl.backend).toBe('xdp');
      expect((await bl.add([A.list4, A.list6, PREFIX4, PREFIX6])).unwrap()).toEqual({ added: 4 });
      const before = (await bl.stats()).unwrap();
      const N = 5;
      for (const src of [A.list4, A.inPrefix4]) expect(await pingFrom(src, B4, N)).toBe(0);
      for (const src of [A.list6, A.inPrefix6]) expect(await pingFrom(src, B6, N)).toBe(0);
      expect(await pingFrom(A.other4, B4, N)).toBe(N);
      expect(await pingFrom(A.other6, B6, N)).toBe(N);
      const after = (await bl.stats()).unwrap();
      expect(after.dropped.packets - before.dropped.packets).toBe(4 * N);
      expect(after.passed.packets - before.passed.packets).toBeGreaterThanOrEqual(2 * N); // plus any IPv6 MLD/RS chatter
      const hits = Object.fromEntries((await bl.list()).unwrap().map((e) => [e.entry, e.hits]));
      expect(hits).toEqual({ [A.list4]: N, [A.list6]: N, [PREFIX4]: N, [PREFIX6]: N });
      expect((await bl.has(A.inPrefix4)).unwrap()).toBe(true);
      expect((await bl.has(A.other4)).unwrap()).toBe(false);
      expect((await bl.has(PREFIX6)).unwrap()).toBe(true);
      // remove() re-admits
      expect((await bl.remove([A.list4, PREFIX6, '198.18.9.9'])).unwrap()).toEqual({ removed: 2 });
      expect(await pingFrom(A.list4, B4, 3)).toBe(3);
      expect(await pingFrom(A.inPrefix6, B6, 3)).toBe(3);
      expect(await pingFrom(A.list6, B6, 3)).toBe(0);
      // a bad entry refuses the whole call, with its index
      const bad = await bl.add([A.other4, '198.18.1.5/24', 'nope']);
      expect(bad.err).toBe(true);
      if (bad.err) expect((bad.val as { issues?: { path: string }[] }).issues?.map((i) => i.path)).toEqual(['1', '2']);
      expect(await pingFrom(A.other4, B4, 2)).toBe(2);
      // detach() restores traffic and removes the pins
      (await bl.detach()).unwrap();
      expect(await pingFrom(A.list6, B6, 3)).toBe(3);
      expect(existsSync(bl.pinDir)).toBe(false);
      const st = await lab.sh(b, ['ip', '-j', 'link', 'show', 'dev', ifB]);
      expect((JSON.parse(st.stdout) as { xdp?: unknown }[])[0]!.xdp).toBeUndefined();
    } finally {
      await bl.detach();
    }
  });

  it('generic mode works too, and attach() again replaces the program atomically', async () => {
    const bl = blocklist({ mode: 'generic' });
    try {
      const at = (await bl.attach()).unwrap();
      expect(at.mode).toBe('generic');
      (await bl.add([A.list4])).unwrap();
      expect(await pingFrom(A.list4, B4, 3)).toBe(0);
      const again = (await bl.attach()).unwrap();
      expect(again.reopened).toBe(true);
      expect(again.mode).toBe('generic');
      expect(await pingFrom(A.list4, B4, 3)).toBe(0);
      expect(await pingFrom(A.other4, B4, 3)).toBe(3);
    } finally {
      (await bl.detach()).unwrap();
    }
  });

  it('TTL entries expire in the kernel', async () => {
    const bl = blocklist();
    try {
      (await bl.attach()).unwrap();
      (await bl.add([A.list4, PREFIX6], { ttl: 1.5 })).unwrap();
      (await bl.add([A.list6])).unwrap();
      const l = (await bl.list()).unwrap();
      expect(l.find((e) => e.entry === A.list4)?.expiresInMs).toBeGreaterThan(500);
      expect(l.find((e) => e.entry === A.list6)?.expiresInMs).toBeUndefined();
      expect(await pingFrom(A.list4, B4, 2)).toBe(0);
      expect(await pingFrom(A.inPrefix6, B6, 2)).toBe(0);
      await new Promise((r) => setTimeout(r, 1800));
      expect(await pingFrom(A.list4, B4, 2)).toBe(2);
      expect(await pingFrom(A.inPrefix6, B6, 2)).toBe(2);
      expect(await pingFrom(A.list6, B6, 2)).toBe(0);
      const s = (await bl.stats()).unwrap();
      expect(s.expired).toBe(2); // the program met and deleted both expired entries
      expect((await bl.list()).unwrap().map((e) => e.entry)).toEqual([A.list6]);
    } finally {
      (await bl.detach()).unwrap();
    }
  });

  it('replace() swaps the whole list atomically under traffic', async () => {
    const bl = blocklist({ maxEntries: 300_000 });
    try {
      (await bl.attach()).unwrap();
      // old list: list4 (kept) + inPrefix4 (dropped from the list); new: list4 + other4 + 200k fillers
      (await bl.add([A.list4, A.inPrefix4])).unwrap();
      const fillers = Array.from({ length: 200_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      const COUNT = 150;
      const pings = [pingFrom(A.list4, B4, COUNT, '0.01'), pingFrom(A.base4, B4, COUNT, '0.01')];
      await new Promise((r) => setTimeout(r, 300));
      let progressEvents = 0;
      bl.on('progress', () => progressEvents++);
      const t0 = Date.now();
      (await bl.replace([...fillers, A.other4, A.list4])).unwrap();
      const ms = Date.now() - t0;
      // the moment replace() resolved, the new members are dropped and the removed ones pass
      const after = [pingFrom(A.other4, B4, 3), pingFrom(A.inPrefix4, B4, 3)];
      const [kept, unlisted] = await Promise.all(pings);
      expect(kept).toBe(0); // never let through, not even while the new list was loading
      expect(unlisted).toBe(COUNT); // never dropped
      expect(await after[0]).toBe(0);
      expect(await after[1]).toBe(3);
      expect(progressEvents).toBeGreaterThan(0);
      expect((await bl.stats()).unwrap().entries).toBe(200_002);
      console.log(`[xdp] replace() of 200,002 entries under traffic took ${ms} ms`);
      (await bl.clear()).unwrap();
      expect((await bl.list()).unwrap()).toEqual([]);
      expect(await pingFrom(A.list4, B4, 2)).toBe(2);
    } finally {
      (await bl.detach()).unwrap();
    }
  });

  it('a second process re-opens the pinned maps and sees (and changes) the entries', async () => {
    const bl = blocklist();
    try {
      (await bl.attach()).unwrap();
      (await bl.add([A.list4, PREFIX6])).unwrap();
      expect(await pingFrom(A.list4, B4, 2)).toBe(0);
      const r = await run(['npx', 'tsx', fileURLToPath(new URL('./xdp-child.ts', import.meta.url)), ifB, b.netns, bl.name, A.other4], { timeoutMs: 60_000 });
      if (r.err) throw r.val;
      const seen = JSON.parse(r.val.stdout.trim().split('\n').pop()!) as { backend: string; list: string[]; dropped: number };
      expect(seen.backend).toBe('xdp');
      expect(seen.list).toEqual([A.list4, A.other4, PREFIX6].sort());
      expect(seen.dropped).toBe(2);
      // what the other process added is enforced and visible here
      expect(await pingFrom(A.other4, B4, 2)).toBe(0);
      expect((await bl.has(A.other4)).unwrap()).toBe(true);
      // a restarted owner (new object, same name) re-opens instead of starting empty
      bl.close();
      const again = new XdpBlocklist({ iface: ifB, netns: b.netns, name: bl.name });
      expect((await again.attach()).unwrap().reopened).toBe(true);
      expect((await again.list()).unwrap().length).toBe(3);
      // detach({ keepMaps }) lets traffic through but keeps entries for a later attach()
      (await again.detach({ keepMaps: true })).unwrap();
      expect(await pingFrom(A.list4, B4, 2)).toBe(2);
      expect((await again.attach()).unwrap().reopened).toBe(true);
      expect(await pingFrom(A.list4, B4, 2)).toBe(0);
      again.close();
    } finally {
      (await bl.detach()).unwrap();
    }
  });

  it('parses VLAN tags, honours IPv4 IHL and is not fooled by IPv6 extension headers (BPF_PROG_TEST_RUN)', async () => {
    const bl = blocklist();
    try {
      (await bl.attach()).unwrap();
      (await bl.add(['198.18.200.1', 'fd00:99::1'])).unwrap();
      const fd = objGet(join(bl.pinDir, 'prog'));
      try {
        const XDP_DROP = 1;
        const XDP_PASS = 2;
        const eth = (type: number, tags: number[] = []): Buffer => {
          const parts = [Buffer.alloc(12, 0x02)];
          for (const t of tags) {
            const v = Buffer.alloc(4);
            v.writeUInt16BE(t, 0);
            v.writeUInt16BE(100, 2);
            parts.push(v);
          }
          const p = Buffer.alloc(2);
          p.writeUInt16BE(type, 0);
          parts.push(p);
          return Buffer.concat(parts);
        };
        const ip4 = (src: string, ihl = 5): Buffer => {
          const h = Buffer.alloc(Math.max(20, ihl * 4) + 8);
          h[0] = 0x40 | ihl;
          h.writeUInt16BE(h.length, 2);
          h[8] = 64;
          h[9] = 17;
          Buffer.from(src.split('.').map(Number)).copy(h, 12);
          Buffer.from([198, 18, 1, 1]).copy(h, 16);
          return h;
        };
        const ip6 = (src: Buffer, next = 17): Buffer => {
          const h = Buffer.alloc(40 + 16);
          h[0] = 0x60;
          h.writeUInt16BE(16, 4);
          h[6] = next;
          h[7] = 64;
          src.copy(h, 8);
          h[40] = 17; // a hop-by-hop header whose bytes look like nothing in particular
          return h;
        };
        const v6 = Buffer.from('fd000099000000000000000000000001', 'hex');
        const v6other = Buffer.from('fd000099000000000000000000000002', 'hex');
        const cases: [string, Buffer, number][] = [
          ['plain IPv4 listed', Buffer.concat([eth(0x0800), ip4('198.18.200.1')]), XDP_DROP],
          ['plain IPv4 other', Buffer.concat([eth(0x0800), ip4('198.18.200.2')]), XDP_PASS],
          ['802.1Q IPv4 listed', Buffer.concat([eth(0x0800, [0x8100]), ip4('198.18.200.1')]), XDP_DROP],
          ['802.1ad+802.1Q IPv4 listed', Buffer.concat([eth(0x0800, [0x88a8, 0x8100]), ip4('198.18.200.1')]), XDP_DROP],
          ['IPv4 with options (IHL 8) listed', Buffer.concat([eth(0x0800), ip4('198.18.200.1', 8)]), XDP_DROP],
          ['IPv4 with bogus IHL 3', Buffer.concat([eth(0x0800), ip4('198.18.200.1', 3)]), XDP_PASS],
          ['IPv4 IHL beyond the packet', Buffer.concat([eth(0x0800), ip4('198.18.200.1', 15)]).subarray(0, 14 + 40), XDP_PASS],
          ['truncated IPv4', Buffer.concat([eth(0x0800), ip4('198.18.200.1')]).subarray(0, 14 + 10), XDP_PASS],
          ['IPv6 listed, hop-by-hop header', Buffer.concat([eth(0x86dd), ip6(v6, 0)]), XDP_DROP],
          ['IPv6 other, hop-by-hop header', Buffer.concat([eth(0x86dd), ip6(v6other, 0)]), XDP_PASS],
          ['802.1Q IPv6 listed', Buffer.concat([eth(0x86dd, [0x8100]), ip6(v6)]), XDP_DROP],
          ['ARP', Buffer.concat([eth(0x0806), Buffer.alloc(28)]), XDP_PASS],
        ];
        for (const [what, pkt, want] of cases) expect([what, progTestRun(fd, pkt)]).toEqual([what, want]);
      } finally {
        closeFd(fd);
      }
    } finally {
      (await bl.detach()).unwrap();
    }
  });

  it('refuses to replace a foreign XDP program', async () => {
    const bl = blocklist({ mode: 'generic' });
    const foreign = blocklist({ mode: 'generic' });
    try {
      (await foreign.attach()).unwrap();
      const r = await bl.attach();
      expect(r.err && r.val.code).toBe('XDP_BUSY');
    } finally {
      (await foreign.detach()).unwrap();
      await bl.detach();
    }
  });
});

describe('XdpBlocklist (nft fallback)', () => {
  it('gives the same verdicts and counts with backend "nft"', async () => {
    const bl = blocklist({ backend: 'nft' });
    try {
      const at = (await bl.attach()).unwrap();
      expect(at.backend).toBe('nft');
      expect(bl.backend).toBe('nft');
      (await bl.add([A.list4, A.list6, PREFIX4, PREFIX6])).unwrap();
      const before = (await bl.stats()).unwrap();
      const N = 4;
      for (const src of [A.list4, A.inPrefix4]) expect(await pingFrom(src, B4, N)).toBe(0);
      for (const src of [A.list6, A.inPrefix6]) expect(await pingFrom(src, B6, N)).toBe(0);
      expect(await pingFrom(A.other4, B4, N)).toBe(N);
      expect(await pingFrom(A.other6, B6, N)).toBe(N);
      const after = (await bl.stats()).unwrap();
      expect(after.dropped.packets - before.dropped.packets).toBe(4 * N);
      const hits = Object.fromEntries((await bl.list()).unwrap().map((e) => [e.entry, e.hits]));
      expect(hits).toEqual({ [A.list4]: N, [A.list6]: N, [PREFIX4]: N, [PREFIX6]: N });
      expect((await bl.has(A.inPrefix6)).unwrap()).toBe(true);
      expect((await bl.has(A.other6)).unwrap()).toBe(false);
      (await bl.remove([A.list4])).unwrap();
      expect(await pingFrom(A.list4, B4, 2)).toBe(2);
      (await bl.replace([A.other4])).unwrap();
      expect(await pingFrom(A.other4, B4, 2)).toBe(0);
      expect(await pingFrom(A.list6, B6, 2)).toBe(2);
      (await bl.add([A.list4], { ttl: 1 })).unwrap();
      expect(await pingFrom(A.list4, B4, 2)).toBe(0);
      await new Promise((r) => setTimeout(r, 1600));
      expect(await pingFrom(A.list4, B4, 2)).toBe(2);
      (await bl.detach()).unwrap();
      expect(await pingFrom(A.other4, B4, 2)).toBe(2);
      const t = await lab.sh(b, ['nft', 'list', 'tables']);
      expect(t.stdout).not.toContain(bl.nftTable);
    } finally {
      await bl.detach();
    }
  });

  it('backend "auto" falls back to nft when XDP cannot be used, and says why', async () => {
    const bl = blocklist({ objectPath: '/nonexistent/xdp_blocklist.o' });
    try {
      const at = (await bl.attach()).unwrap();
      expect(at.backend).toBe('nft');
      expect(at.reason).toMatch(/XDP not usable: .*object was not found/);
      (await bl.add([A.list4])).unwrap();
      expect(await pingFrom(A.list4, B4, 2)).toBe(0);
      expect(await pingFrom(A.other4, B4, 2)).toBe(2);
      expect(existsSync(bl.pinDir)).toBe(false);
    } finally {
      (await bl.detach()).unwrap();
    }
  });
});
