// A tiny HTTP BitTorrent tracker for the DPI kernel tests (plain JavaScript,
// started inside a namespace). It answers every /announce with a fixed
// compact peer list given on the command line, so clients find each other
// without DHT, LSD, PEX or the internet. Bounded: exits after LIFETIME_MS.
//   node dpi-tracker.mjs BIND PORT LIFETIME_MS PEER:PORT[,PEER:PORT...]
import http from 'node:http';

const [bind, port, lifetime, peerList] = process.argv.slice(2);
const peers = (peerList ?? '').split(',').filter(Boolean).map((p) => {
  const i = p.lastIndexOf(':');
  return { ip: p.slice(0, i), port: Number(p.slice(i + 1)) };
});
const compact = Buffer.concat(
  peers.filter((p) => !p.ip.includes(':')).map((p) => {
    const b = Buffer.alloc(6);
    p.ip.split('.').forEach((o, i) => b.writeUInt8(Number(o), i));
    b.writeUInt16BE(p.port, 4);
    return b;
  }),
);
const bstr = (b) => Buffer.concat([Buffer.from(`${b.length}:`), b]);
const body = Buffer.concat([
  Buffer.from('d8:completei1e10:incompletei1e8:intervali5e12:min intervali5e5:peers'),
  bstr(compact),
  Buffer.from('e'),
]);
let announces = 0;
const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/announce')) {
    announces++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  } else {
    res.writeHead(404);
    res.end();
  }
});
server.listen(Number(port), bind, () => process.stdout.write(JSON.stringify({ listening: true }) + '\n'));
setTimeout(() => {
  process.stdout.write(JSON.stringify({ announces }) + '\n');
  process.exit(0);
}, Number(lifetime)).unref?.();
setTimeout(() => process.exit(0), Number(lifetime) + 100);
