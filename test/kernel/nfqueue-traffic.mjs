// Traffic helper for the nfqueue kernel tests: plain JavaScript so that it
// starts fast inside a namespace (nsenter ... node nfqueue-traffic.mjs MODE ...).
// Every mode is bounded in time and prints one JSON line.
import dgram from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';

// pair() handshake (nfqueue-lab.ts): --ready=FILE is written once a receiver
// listens; with --done=FILE its window (MS) starts when the sender is done.
const flag = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const readyFile = flag('ready');
const doneFile = flag('done');
const [mode, ...args] = process.argv.slice(2).filter((a) => !/^--(ready|done)=/.test(a));
const ready = () => {
  if (readyFile) writeFileSync(readyFile, '');
};
/** Call fn MS after the sender is done (or after MS when there is no handshake); hang guard 10 min. */
const afterWindow = (ms, fn) => {
  if (!doneFile) return setTimeout(fn, ms);
  const t0 = Date.now();
  const poll = setInterval(() => {
    if (existsSync(doneFile) || Date.now() - t0 > 600_000) {
      clearInterval(poll);
      setTimeout(fn, ms);
    }
  }, 20);
};
const out = (o) => {
  process.stdout.write(JSON.stringify(o) + '\n');
  process.exit(0);
};
const fam = (h) => (h.includes(':') ? 'udp6' : 'udp4');

if (mode === 'udp-recv') {
  // udp-recv PORT MS [BIND]
  const [port, ms, bind] = args;
  const s = dgram.createSocket({ type: bind && bind.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  const got = [];
  s.on('message', (m, r) => got.push({ data: m.toString('utf8').slice(0, 64), from: r.address }));
  s.bind(Number(port), bind || '0.0.0.0', ready);
  afterWindow(Number(ms), () => out({ count: got.length, got }));
} else if (mode === 'udp-send') {
  // udp-send HOST PORT COUNT PREFIX [SRC[,SRC...]] [INTERVAL_MS]: COUNT datagrams from each source address
  const [host, port, count, prefix, src, interval] = args;
  const go = async () => {
    let sent = 0;
    for (const from of src ? src.split(',') : ['']) {
      const s = dgram.createSocket(fam(host));
      if (from) await new Promise((r) => s.bind(0, from, r));
      for (let i = 0; i < Number(count); i++) {
        await new Promise((r) => s.send(`${prefix}-${i}`, Number(port), host, r));
        sent++;
        if (Number(interval || 0) > 0) await new Promise((r) => setTimeout(r, Number(interval)));
        else if (i % 32 === 31) await new Promise((r) => setTimeout(r, 1));
      }
      s.close();
    }
    out({ sent });
  };
  go();
} else if (mode === 'tcp-sink') {
  // tcp-sink PORT MS EXPECT_CONNS
  const [port, ms, expect] = args;
  const conns = [];
  let done = 0;
  const finish = () => out({ conns });
  const srv = net.createServer((c) => {
    const rec = { bytes: 0, head: '', error: null };
    conns.push(rec);
    c.on('data', (d) => {
      if (rec.head.length < 256) rec.head += d.toString('latin1').slice(0, 256 - rec.head.length);
      rec.bytes += d.length;
    });
    const end = () => {
      if (++done >= Number(expect || 1e9)) setTimeout(finish, 50);
    };
    c.on('error', (e) => {
      rec.error = e.code;
    });
    c.on('close', end);
  });
  srv.listen(Number(port), '::', ready);
  afterWindow(Number(ms), finish);
} else if (mode === 'tcp-send') {
  // tcp-send HOST PORT BYTES TIMEOUT_MS
  const [host, port, bytes, timeout] = args;
  const t0 = Date.now();
  const c = net.connect(Number(port), host);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let left = Number(bytes);
  let error = null;
  const timer = setTimeout(() => {
    error = 'TIMEOUT';
    c.destroy();
  }, Number(timeout));
  c.on('connect', () => {
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return c.once('drain', pump);
      }
      c.end();
    };
    pump();
  });
  c.on('error', (e) => {
    error = e.code;
  });
  c.on('close', () => {
    clearTimeout(timer);
    out({ error, sent: Number(bytes) - left, ms: Date.now() - t0 });
  });
} else if (mode === 'tcp-chat') {
  // tcp-chat HOST PORT GAP_MS MSG...: write each message GAP_MS apart, then end; report what happened.
  const [host, port, gap, ...msgs] = args;
  const c = net.connect(Number(port), host);
  let error = null;
  let written = 0;
  const timer = setTimeout(() => {
    error = error || 'TIMEOUT';
    c.destroy();
  }, Number(gap) * (msgs.length + 2) + 3000);
  c.on('connect', async () => {
    for (const m of msgs) {
      if (c.destroyed) break;
      c.write(m);
      written++;
      await new Promise((r) => setTimeout(r, Number(gap)));
    }
    c.end();
  });
  c.on('error', (e) => {
    error = e.code;
  });
  c.on('close', () => {
    clearTimeout(timer);
    out({ error, written });
  });
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
