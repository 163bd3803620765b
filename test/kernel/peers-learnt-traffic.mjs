// Traffic helper for peers-learnt.test.ts: a DHT node that answers get_peers
// with a list of peers, TCP sinks standing in for those peers, and a client
// that asks the node and then connects to every listed peer with random
// (encrypted-looking) bytes. Plain JavaScript so it starts fast in a
// namespace; every mode is bounded in time and prints one JSON line.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';

const flag = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const readyFile = flag('ready');
const doneFile = flag('done');
const [mode, ...args] = process.argv.slice(2).filter((a) => !/^--(ready|done)=/.test(a));
const out = (o) => {
  process.stdout.write(JSON.stringify(o) + '\n');
  process.exit(0);
};
/** Call fn once the done file exists (hang guard 2 min). */
const whenDone = (fn) => {
  const t0 = Date.now();
  const poll = setInterval(() => {
    if ((doneFile && existsSync(doneFile)) || Date.now() - t0 > 120_000) {
      clearInterval(poll);
      fn();
    }
  }, 20);
};

const str = (b) => Buffer.concat([Buffer.from(`${b.length}:`), b]);
const compact = (hp) => {
  const [h, p] = hp.split(/:(?=\d+$)/);
  const b = Buffer.alloc(6);
  h.split('.').forEach((x, i) => (b[i] = Number(x)));
  b.writeUInt16BE(Number(p), 4);
  return b;
};
/** A get_peers reply listing `peers` (values), transaction id `t`. */
const reply = (t, peers) =>
  Buffer.concat([
    Buffer.from('d1:rd2:id'),
    str(Buffer.alloc(20, 7)),
    Buffer.from('5:token'),
    str(Buffer.from('tk')),
    Buffer.from('6:valuesl'),
    ...peers.map((p) => str(compact(p))),
    Buffer.from('ee1:t'),
    str(t),
    Buffer.from('1:y1:re'),
  ]);
const query = (t) => Buffer.concat([Buffer.from('d1:ad2:id'), str(Buffer.alloc(20, 1)), Buffer.from('9:info_hash'), str(Buffer.alloc(20, 2)), Buffer.from('e1:q9:get_peers1:t'), str(t), Buffer.from('1:y1:qe')]);
/** The `values` of a reply: host:port strings. */
const values = (m) => {
  const i = m.indexOf('6:valuesl');
  const found = [];
  for (let p = i + 9; i >= 0 && m[p] === 0x36 && m[p + 1] === 0x3a; p += 8) found.push(`${m[p + 2]}.${m[p + 3]}.${m[p + 4]}.${m[p + 5]}:${m.readUInt16BE(p + 6)}`);
  return found;
};

/** Connect to each peer, write 300 random bytes, wait, close; resolves to counts. */
async function connectAll(peers) {
  const res = await Promise.all(
    peers.map(
      (hp) =>
        new Promise((resolve) => {
          const [host, port] = hp.split(/:(?=\d+$)/);
          const s = net.connect({ host, port: Number(port) });
          let connected = false;
          const end = (r) => {
            s.destroy();
            resolve(r);
          };
          s.setTimeout(2000, () => end({ connected, written: connected }));
          s.on('connect', () => {
            connected = true;
            s.write(randomBytes(300), () => setTimeout(() => end({ connected, written: true }), 700));
          });
          s.on('error', () => end({ connected, written: false }));
        }),
    ),
  );
  return { connected: res.filter((r) => r.connected).length, written: res.filter((r) => r.written).length };
}

if (mode === 'sinks') {
  // sinks HOST PORT,PORT,...: count bytes received per port until done
  const [host, ports] = args;
  const bytes = {};
  let listening = 0;
  const list = ports.split(',').map(Number);
  for (const port of list) {
    bytes[port] = 0;
    net
      .createServer((c) => {
        c.on('data', (d) => (bytes[port] += d.length));
        c.on('error', () => undefined);
      })
      .listen(port, host, () => {
        if (++listening === list.length && readyFile) writeFileSync(readyFile, '');
      });
  }
  whenDone(() => setTimeout(() => out({ bytes }), 300));
} else if (mode === 'dht-node') {
  // dht-node HOST PORT PEERS: answer every get_peers with PEERS (values)
  const [host, port, peers] = args;
  const s = dgram.createSocket('udp4');
  let queries = 0;
  s.on('message', (m, r) => {
    const t = m.indexOf('1:t');
    if (t < 0) return;
    const len = Number(String.fromCharCode(m[t + 3]));
    queries++;
    s.send(reply(m.subarray(t + 5, t + 5 + len), peers.split(',')), r.port, r.address);
  });
  s.bind(Number(port), host, () => readyFile && writeFileSync(readyFile, ''));
  whenDone(() => out({ queries }));
} else if (mode === 'query-connect') {
  // query-connect NODE PORT: ask the node for peers from UDP 6881, then connect to each
  const [node, port] = args;
  const s = dgram.createSocket('udp4');
  const timer = setTimeout(() => out({ reply: false, peers: [] }), 5000);
  s.on('message', async (m) => {
    clearTimeout(timer);
    const peers = values(m);
    s.close();
    out({ reply: true, peers, ...(await connectAll(peers)) });
  });
  s.bind(6881, () => s.send(query(Buffer.from('aa')), Number(port), node));
} else if (mode === 'push') {
  // push DST DSTPORT SRCPORT PEERS: an unsolicited get_peers reply (as if to an earlier query)
  const [dst, dport, sport, peers] = args;
  const s = dgram.createSocket('udp4');
  s.bind(Number(sport), () => s.send(reply(Buffer.from('bb'), peers.split(',')), Number(dport), dst, () => out({ sent: 1 })));
} else if (mode === 'connect') {
  // connect PEERS
  connectAll(args[0].split(',')).then(out);
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
