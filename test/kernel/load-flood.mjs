// Programs for the DPI flood test (plain JavaScript, started inside a lab
// namespace with argv only); bounded, JSON lines on stdout.
//   udp-sink FIRST COUNT LIFETIME_MS       binds UDP ports FIRST..FIRST+COUNT-1; a line on stdin prints {received}
//   udp-flood HOST FIRST COUNT SOCKS MS EVERY_MS
//                                          every EVERY_MS, SOCKS fresh sockets (new source ports) each send one
//                                          datagram to every port: SOCKS*COUNT new flows per round, for MS; prints {sent, errors, rounds, ms}
//   tcp-echo PORT LIFETIME_MS              echoes every TCP connection; prints {listening}
//   tcp-send HOST PORT KIND                KIND text|bt: writes a short text or a BitTorrent peer handshake and
//                                          prints {echoed, error} (echoed: the same bytes came back within 3 s)
import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const [mode, ...a] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const bounded = (ms) => setTimeout(() => process.exit(0), Number(ms)).unref();

if (mode === 'udp-sink') {
  const [first, count, life] = a.map(Number);
  let received = 0;
  let bound = 0;
  for (let p = first; p < first + count; p++) {
    const s = dgram.createSocket('udp4');
    s.on('message', () => received++);
    s.bind(p, '0.0.0.0', () => {
      if (++bound === count) say({ listening: count });
    });
  }
  process.stdin.on('data', () => say({ received }));
  bounded(life);
} else if (mode === 'udp-flood') {
  const [host] = a;
  const [first, count, socks, ms, every] = a.slice(1).map(Number);
  const payload = Buffer.from('flood: not bittorrent, just noise to fill the queue 0123456789');
  let sent = 0;
  let errors = 0;
  let rounds = 0;
  const t0 = Date.now();
  const round = () => {
    if (Date.now() - t0 >= ms) {
      // let the last sends complete
      setTimeout(() => {
        say({ sent, errors, rounds, ms: Date.now() - t0 });
        process.exit(0);
      }, 300);
      return;
    }
    rounds++;
    let open = socks;
    for (let i = 0; i < socks; i++) {
      const s = dgram.createSocket('udp4');
      s.bind(0, () => {
        let left = count;
        for (let p = first; p < first + count; p++)
          s.send(payload, p, host, (e) => {
            if (e) errors++;
            else sent++;
            if (--left === 0) {
              s.close();
              if (--open === 0) setTimeout(round, every);
            }
          });
      });
    }
  };
  round();
} else if (mode === 'tcp-echo') {
  const [port, life] = a;
  net
    .createServer((c) => {
      c.on('error', () => {});
      c.pipe(c);
    })
    .listen(Number(port), '0.0.0.0', () => say({ listening: Number(port) }));
  bounded(life);
} else if (mode === 'tcp-send') {
  const [host, port, kind] = a;
  const msg =
    kind === 'bt'
      ? Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), randomBytes(20), Buffer.from('-qB4650-'), randomBytes(12)])
      : Buffer.from('hello, an ordinary request\r\n');
  let got = Buffer.alloc(0);
  const c = net.connect(Number(port), host, () => c.write(msg));
  const done = (error) => {
    say({ echoed: got.equals(msg), bytes: got.length, error });
    process.exit(0);
  };
  c.on('data', (d) => {
    got = Buffer.concat([got, d]);
    if (got.length >= msg.length) done(null);
  });
  c.on('error', (e) => done(e.code ?? String(e)));
  setTimeout(() => done('timeout'), 3000);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
