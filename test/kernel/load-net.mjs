// Traffic programs for the load tests (plain JavaScript, started inside a lab
// namespace with argv only). Each mode is bounded and prints JSON lines.
//   stream-server PORT LIFETIME_MS          receives "seq,ms\n" lines; on the stream's end prints
//                                           {chunks, bytes, maxGapMs, outOfOrder, error}
//   stream-client HOST PORT EVERY_MS MAX_MS  writes "seq,ms\n" every EVERY_MS until stdin says
//                                           anything (or MAX_MS), then ends: prints {sent, maxSendGapMs, error}
//   conn-server PORT LIFETIME_MS            answers "ok\n" on each connection and keeps it open;
//                                           a line on stdin prints {accepted, distinct, open, maxOpen}
//   conn-client HOST PORT N CONC MAX_MS     opens N connections (at most CONC waiting for their reply),
//                                           holds every served one open until all N are served, then prints
//                                           {served, failed, closedEarly, errors, establishMs, openAtEnd}
import net from 'node:net';

const [mode, ...a] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const bounded = (ms) => setTimeout(() => process.exit(0), Number(ms)).unref();

if (mode === 'stream-server') {
  const [port, life] = a;
  const s = net.createServer((c) => {
    let chunks = 0;
    let bytes = 0;
    let last = Date.now();
    let maxGapMs = 0;
    let expect = 0;
    let outOfOrder = 0;
    let buf = '';
    let error = null;
    c.on('data', (d) => {
      const now = Date.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      bytes += d.length;
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const seq = Number(l.split(',')[0]);
        if (seq !== expect) outOfOrder++;
        expect = seq + 1;
        chunks++;
      }
    });
    c.on('error', (e) => (error = e.code ?? String(e)));
    c.on('close', () => {
      say({ chunks, bytes, maxGapMs, outOfOrder, error });
      process.exit(0);
    });
  });
  s.listen({ port: Number(port), host: '::', ipv6Only: false }, () => say({ listening: Number(port) }));
  bounded(life);
} else if (mode === 'stream-client') {
  const [host, port, every, max] = a;
  let sent = 0;
  let error = null;
  let last = 0;
  let maxSendGapMs = 0;
  let timer;
  const finish = () => {
    clearInterval(timer);
    c.end(() => {
      say({ sent, maxSendGapMs, error });
      process.exit(0);
    });
  };
  const c = net.connect(Number(port), host, () => {
    say({ connected: true });
    last = Date.now();
    timer = setInterval(() => {
      const now = Date.now();
      maxSendGapMs = Math.max(maxSendGapMs, now - last);
      last = now;
      c.write(`${sent++},${now}\n`);
    }, Number(every));
  });
  c.on('error', (e) => {
    error = e.code ?? String(e);
    clearInterval(timer);
    say({ sent, maxSendGapMs, error });
    process.exit(0);
  });
  process.stdin.on('data', finish);
  setTimeout(finish, Number(max)).unref();
} else if (mode === 'conn-server') {
  const [port, life] = a;
  let accepted = 0;
  let open = 0;
  let maxOpen = 0;
  const peers = new Set();
  const s = net.createServer((c) => {
    accepted++;
    open++;
    maxOpen = Math.max(maxOpen, open);
    peers.add(`${c.remoteAddress}:${c.remotePort}`);
    c.on('error', () => {});
    c.on('close', () => open--);
    c.write('ok\n');
  });
  s.maxConnections = 100000;
  s.listen({ port: Number(port), host: '::', ipv6Only: false, backlog: 4096 }, () => say({ listening: Number(port) }));
  process.stdin.on('data', () => say({ accepted, distinct: peers.size, open, maxOpen }));
  bounded(life);
} else if (mode === 'conn-client') {
  const [host, port, nS, concS, max] = a;
  const n = Number(nS);
  const conc = Number(concS);
  const t0 = Date.now();
  const socks = [];
  const errors = {};
  let started = 0;
  let pending = 0;
  let served = 0;
  let failed = 0;
  let closedEarly = 0;
  let done = false;
  const report = () => {
    if (done) return;
    done = true;
    const openAtEnd = socks.filter((s) => !s.destroyed).length;
    say({ served, failed, closedEarly, errors, establishMs: Date.now() - t0, openAtEnd });
    for (const s of socks) s.destroy();
    process.exit(0);
  };
  const next = () => {
    while (pending < conc && started < n) {
      started++;
      pending++;
      let got = false;
      const s = net.connect(Number(port), host);
      socks.push(s);
      s.on('data', (d) => {
        if (got || !d.toString().startsWith('ok')) return;
        got = true;
        served++;
        pending--;
        if (served + failed === n) report();
        else next();
      });
      s.on('error', (e) => {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
      });
      s.on('close', () => {
        if (!got) {
          failed++;
          pending--;
          if (served + failed === n) report();
          else next();
        } else if (!done) closedEarly++;
      });
    }
  };
  next();
  setTimeout(report, Number(max)).unref();
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
