// A small BitTorrent DHT (BEP 5) for the DPI client tests: NODES nodes, one
// UDP socket each on the given addresses (same PORT), each with its own random
// id, sharing one peer store. It answers ping, find_node, get_peers and
// announce_peer as any DHT node does: find_node and get_peers list all its
// nodes (so a client's routing table fills with several good nodes — Transmission
// calls its DHT "broken" below 4 good and 9 known), get_peers adds `values` once a peer has
// announced the info-hash (address as seen; the announced port, or the source
// port with implied_port). Plain JavaScript, started inside a namespace;
// bounded: exits after LIFETIME_MS. Prints one JSON line per query kind seen
// first from an address and port (every query with DHT_VERBOSE=1), and a
// summary at the end.
//   node dpi-dht-node.mjs PORT LIFETIME_MS ADDR[,ADDR...]
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

const [port, lifetime, addrList] = process.argv.slice(2);
const addrs = addrList.split(',');

/** Minimal bdecode: returns [value, next offset]; byte strings stay Buffers. */
function bdecode(b, i = 0) {
  const c = b[i];
  if (c === 0x69) {
    const e = b.indexOf(0x65, i);
    return [Number(b.subarray(i + 1, e).toString()), e + 1];
  }
  if (c === 0x6c || c === 0x64) {
    const items = [];
    i++;
    while (b[i] !== 0x65) {
      if (i >= b.length) throw new Error('truncated');
      const [v, n] = bdecode(b, i);
      items.push(v);
      i = n;
    }
    if (c === 0x6c) return [items, i + 1];
    const o = {};
    for (let k = 0; k < items.length; k += 2) o[items[k].toString('latin1')] = items[k + 1];
    return [o, i + 1];
  }
  const colon = b.indexOf(0x3a, i);
  const len = Number(b.subarray(i, colon).toString());
  if (!(colon > i) || !Number.isInteger(len)) throw new Error('bad string');
  return [b.subarray(colon + 1, colon + 1 + len), colon + 1 + len];
}
function bencode(v) {
  if (typeof v === 'number') return Buffer.from(`i${v}e`);
  if (typeof v === 'string') v = Buffer.from(v);
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`${v.length}:`), v]);
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(bencode), Buffer.from('e')]);
  const keys = Object.keys(v).sort();
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap((k) => [bencode(k), bencode(v[k])]), Buffer.from('e')]);
}
const compact = (ip, p) => {
  const b = Buffer.alloc(6);
  ip.split('.').forEach((x, i) => (b[i] = Number(x)));
  b.writeUInt16BE(p, 4);
  return b;
};

const nodes = addrs.map((addr) => ({ addr, id: randomBytes(20), sock: dgram.createSocket('udp4') }));
const nodesCompact = Buffer.concat(nodes.map((n) => Buffer.concat([n.id, compact(n.addr, Number(port))])));
/** info-hash hex → Map("ip:port" → compact peer) */
const store = new Map();
const counts = {};
const seen = new Set();
const TOKEN = Buffer.from('lab-token');

for (const n of nodes) {
  n.sock.on('message', (msg, rinfo) => {
    let m;
    try {
      m = bdecode(msg)[0];
    } catch {
      return;
    }
    if (!m || m.y?.toString() !== 'q' || !m.t || !m.a) return;
    const q = m.q.toString();
    counts[q] = (counts[q] ?? 0) + 1;
    const key = `${rinfo.address}:${rinfo.port} ${q}`;
    if (process.env.DHT_VERBOSE) process.stdout.write(JSON.stringify({ at: Date.now() % 100000, from: `${rinfo.address}:${rinfo.port}`, q, node: n.addr }) + '\n');
    else if (!seen.has(key)) {
      seen.add(key);
      process.stdout.write(JSON.stringify({ from: `${rinfo.address}:${rinfo.port}`, q, node: n.addr }) + '\n');
    }
    const r = { id: n.id };
    if (q === 'find_node') r.nodes = nodesCompact;
    else if (q === 'get_peers' || q === 'announce_peer') {
      const hash = Buffer.from(m.a.info_hash ?? []).toString('hex');
      const peers = store.get(hash) ?? new Map();
      if (q === 'get_peers') {
        r.token = TOKEN;
        r.nodes = nodesCompact;
        const values = [...peers].filter(([k]) => !k.startsWith(`${rinfo.address}:`)).map(([, v]) => v);
        if (values.length) r.values = values;
      } else {
        const p = m.a.implied_port === 1 ? rinfo.port : m.a.port;
        peers.set(`${rinfo.address}:${p}`, compact(rinfo.address, p));
        store.set(hash, peers);
      }
    }
    n.sock.send(bencode({ t: m.t, y: 'r', r }), rinfo.port, rinfo.address);
  });
  n.sock.bind(Number(port), n.addr);
}
setTimeout(() => {
  process.stdout.write(JSON.stringify({ queries: counts, announced: Object.fromEntries([...store].map(([h, p]) => [h, [...p.keys()]])) }) + '\n');
  process.exit(0);
}, Number(lifetime)).unref?.();
setTimeout(() => process.exit(0), Number(lifetime) + 100);
