// Ordinary services for the DPI kernel tests (plain JavaScript, started inside
// a namespace); each mode is bounded by LIFETIME_MS and prints JSON lines.
//   http  PORT LIFETIME_MS BIND         plain HTTP, answers "hello over http"
//   https PORT LIFETIME_MS BIND CERT KEY  TLS, answers "hello over tls"
//   ssh   PORT LIFETIME_MS BIND         SSH stand-in: banner exchange, then echoes 32 KiB back
//   dns   PORT LIFETIME_MS BIND         UDP DNS: every A query answered with 198.18.9.9
//   ssh-client HOST PORT                 the stand-in's client: prints {ok, banner, echoed}
//   conn-rate HOST PORT MS CONC          HTTP/1.0 GETs on new connections for MS, CONC at once: prints {done, failed, perSecond}
//   send HOST PORT TEXT                  write TEXT (\\r\\n as CRLF), print the first reply
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const [mode, ...a] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const bounded = (ms) => setTimeout(() => process.exit(0), Number(ms));

if (mode === 'http' || mode === 'https') {
  const [port, life, bind, cert, key] = a;
  const h = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello over ${mode === 'http' ? 'http' : 'tls'}\n`);
  };
  const s = mode === 'http' ? http.createServer(h) : https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, h);
  s.listen(Number(port), bind, () => say({ listening: port }));
  bounded(life);
} else if (mode === 'ssh') {
  const [port, life, bind] = a;
  net
    .createServer((c) => {
      c.write('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n');
      c.pipe(c);
    })
    .listen(Number(port), bind, () => say({ listening: port }));
  bounded(life);
} else if (mode === 'ssh-client') {
  const [host, port] = a;
  const payload = randomBytes(32 * 1024);
  const BANNER = 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n';
  const bl = Buffer.byteLength(BANNER);
  let got = Buffer.alloc(0);
  const c = net.connect(Number(port), host, () => c.write(BANNER));
  let banner = '';
  c.on('data', (d) => {
    got = Buffer.concat([got, d]);
    const nl = got.indexOf('\r\n');
    if (!banner && nl >= 0) {
      banner = got.subarray(0, nl).toString();
      got = got.subarray(nl + 2);
      c.write(payload);
    }
    // the echo of our own banner, then the payload
    const want = bl + payload.length;
    if (banner && got.length >= want) {
      say({ ok: got.subarray(bl).equals(payload), banner, echoed: got.length - bl });
      process.exit(0);
    }
  });
  c.on('error', (e) => {
    say({ ok: false, error: e.message });
    process.exit(0);
  });
  setTimeout(() => {
    say({ ok: false, error: 'timeout', banner, echoed: got.length });
    process.exit(0);
  }, 5000);
} else if (mode === 'dns') {
  const [port, life, bind] = a;
  const s = dgram.createSocket(bind.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (q, r) => {
    if (q.length < 12) return;
    // question ends after the name (labels) + qtype + qclass
    let o = 12;
    while (o < q.length && q[o] !== 0) o += q[o] + 1;
    const qEnd = o + 5;
    const head = Buffer.from(q.subarray(0, 12));
    head.writeUInt16BE(0x8180, 2); // response, RD, RA, no error
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(1, 6);
    head.writeUInt16BE(0, 8);
    head.writeUInt16BE(0, 10);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 9, 9]);
    s.send(Buffer.concat([head, q.subarray(12, qEnd), answer]), r.port, r.address);
  });
  s.bind(Number(port), bind, () => say({ listening: port }));
  bounded(life);
} else if (mode === 'send') {
  //   conn-rate HOST PORT MS CONC          HTTP/1.0 GETs on new connections for MS, CONC at once: prints {done, failed, perSecond}
//   send HOST PORT TEXT: write TEXT, print the first reply bytes (or the error) within 3 s
  const [host, port, text] = a;
  const c = net.connect(Number(port), host, () => c.write(text.replace(/\\r\\n/g, '\r\n')));
  c.on('data', (d) => {
    say({ reply: d.toString('latin1').slice(0, 40) });
    process.exit(0);
  });
  c.on('error', (e) => {
    say({ reply: null, error: e.message });
    process.exit(0);
  });
  setTimeout(() => {
    say({ reply: null, error: 'timeout' });
    process.exit(0);
  }, 3000);
} else if (mode === 'conn-rate') {
  const [host, port, ms, conc] = a;
  const end = Date.now() + Number(ms);
  let done = 0;
  let failed = 0;
  const one = () =>
    new Promise((resolve) => {
      const c = net.connect(Number(port), host, () => c.write('GET / HTTP/1.0\r\n\r\n'));
      let ok = false;
      c.setTimeout(2000, () => c.destroy());
      c.on('data', () => (ok = true));
      c.on('error', () => undefined);
      c.on('close', () => {
        if (ok) done++;
        else failed++;
        resolve();
      });
    });
  const loop = async () => {
    while (Date.now() < end) await one();
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Number(conc) }, loop));
  say({ done, failed, perSecond: (done / (Date.now() - t0)) * 1000 });
  process.exit(0);
}
