// A tiny HTTP BitTorrent tracker for the DPI kernel tests (plain JavaScript,
// started inside a namespace). It answers every /announce with a fixed
// compact peer list given on the command line, so clients find each other
// without DHT, LSD, PEX or the internet. Bounded: exits after LIFETIME_MS.
//   node dpi-tracker.mjs BIND PORT LIFETIME_MS PEER:PORT[,PEER:PORT...]
//   node dpi-tracker.mjs BIND PORT LIFETIME_MS '{"<info-hash hex>":["PEER:PORT",...],...}'
//   node dpi-tracker.mjs BIND PORT LIFETIME_MS announced
// The second form answers per torrent (the announce's info_hash) and an
// unknown torrent with an empty list; one tracker serves several swarms.
// The third is a real tracker: it answers each announce with the other peers
// that announced the same torrent (address as seen, the announce's port).
import http from 'node:http';

const [bind, port, lifetime, peerList] = process.argv.slice(2);
const parsePeers = (list) =>
  list.filter(Boolean).map((p) => {
    const i = p.lastIndexOf(':');
    return { ip: p.slice(0, i), port: Number(p.slice(i + 1)) };
  });
const compactOf = (peers) =>
  Buffer.concat(
    peers.filter((p) => !p.ip.includes(':')).map((p) => {
      const b = Buffer.alloc(6);
      p.ip.split('.').forEach((o, i) => b.writeUInt8(Number(o), i));
      b.writeUInt16BE(p.port, 4);
      return b;
    }),
  );
const bstr = (b) => Buffer.concat([Buffer.from(`${b.length}:`), b]);
const bodyOf = (compact) =>
  Buffer.concat([Buffer.from('d8:completei1e10:incompletei1e8:intervali5e12:min intervali5e5:peers'), bstr(compact), Buffer.from('e')]);
const announced = peerList === 'announced' ? new Map() : undefined;
const perTorrent = (peerList ?? '').startsWith('{') ? JSON.parse(peerList) : undefined;
const fixed = perTorrent || announced ? undefined : bodyOf(compactOf(parsePeers((peerList ?? '').split(','))));
/** Real-tracker answer: remember this peer, list the others of the torrent. */
function swarmOf(req) {
  const hash = infoHashOf(req.url);
  const port = Number(/[?&]port=(\d+)/.exec(req.url)?.[1] ?? 0);
  const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const peers = announced.get(hash) ?? new Map();
  announced.set(hash, peers);
  const me = `${ip}:${port}`;
  if (/[?&]event=stopped/.test(req.url)) peers.delete(me);
  else peers.set(me, { ip, port });
  return [...peers].filter(([k]) => k !== me).map(([, p]) => p);
}
/** The raw info_hash of an announce URL, as lower-case hex (percent-decoding byte by byte). */
function infoHashOf(url) {
  const m = /[?&]info_hash=([^&]*)/.exec(url);
  if (!m) return '';
  const bytes = [];
  const s = m[1];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(s.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('hex');
}
let announces = 0;
const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/announce')) {
    announces++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(fixed ?? bodyOf(compactOf(announced ? swarmOf(req) : parsePeers(perTorrent[infoHashOf(req.url)] ?? []))));
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
