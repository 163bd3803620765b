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
} else if (mode === 'tracker') {
  // tracker HOST PORT PEERS: an HTTP tracker answering every announce with PEERS (compact)
  const [host, port, peers] = args;
  let announces = 0;
  const body = Buffer.concat([Buffer.from('d8:completei1e10:incompletei1e8:intervali1800e5:peers'), str(Buffer.concat(peers.split(',').map(compact))), Buffer.from('e')]);
  const srv = net.createServer((c) => {
    c.on('data', (d) => {
      if (!d.toString('latin1').includes('\r\n\r\n')) return;
      announces++;
      c.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
    });
    c.on('error', () => undefined);
  });
  srv.listen(Number(port), host, () => readyFile && writeFileSync(readyFile, ''));
  whenDone(() => out({ announces }));
} else if (mode === 'announce-connect') {
  // announce-connect TRACKER PORT: announce over HTTP, then connect to every compact peer of the response
  const [host, port] = args;
  const c = net.connect({ host, port: Number(port) });
  const chunks = [];
  const timer = setTimeout(() => out({ reply: false, peers: [] }), 5000);
  c.on('connect', () => c.write(`GET /announce?info_hash=${'%aa'.repeat(20)}&peer_id=-qB4630-abcdefghijkl&port=6881&compact=1 HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: curl/8\r\n\r\n`));
  c.on('data', (d) => chunks.push(d));
  c.on('error', () => undefined);
  c.on('close', async () => {
    clearTimeout(timer);
    const m = Buffer.concat(chunks);
    const i = m.indexOf('5:peers');
    const colon = m.indexOf(':', i + 7);
    const n = Number(m.subarray(i + 7, colon).toString());
    const peers = [];
    for (let p = colon + 1; i >= 0 && p + 6 <= colon + 1 + n; p += 6) peers.push(`${m[p]}.${m[p + 1]}.${m[p + 2]}.${m[p + 3]}:${m.readUInt16BE(p + 4)}`);
    out({ reply: peers.length > 0, peers, ...(await connectAll(peers)) });
  });
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
