// A BitTorrent client's local API, asked from inside the client's namespace.
// `downloaded`: its own count of payload bytes downloaded for one torrent —
// qBittorrent's
// Web API (/api/v2/torrents/info, `downloaded_session`; localhost needs no login when
// WebUI\LocalHostAuth=false) or Transmission's RPC (torrent-get,
// `downloadedEver`; the session id is fetched first, as the RPC requires).
// Prints one JSON line {downloaded} ({} when the client does not answer).
// `restart` (qBittorrent): pause and resume the torrent (what a user does from
// the Web UI), once the client's DHT knows nodes ({dht} = the Web API's
// dht_nodes; nothing is done while it is 0); prints {dht, restarted}.
// Bounded: each request times out after 3 s.
//   node dpi-client-api.mjs downloaded|restart qbittorrent|transmission PORT INFOHASH
const [mode, kind, port, hash] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const opts = (init = {}) => ({ ...init, signal: AbortSignal.timeout(3000) });
try {
  if (mode === 'restart') {
    const info = await (await fetch(`http://127.0.0.1:${port}/api/v2/transfer/info`, opts())).json();
    let restarted = false;
    if (info.dht_nodes > 0) {
      const body = () => new URLSearchParams({ hashes: hash });
      const paused = await fetch(`http://127.0.0.1:${port}/api/v2/torrents/pause`, opts({ method: 'POST', body: body() }));
      await new Promise((res) => setTimeout(res, 300));
      const resumed = await fetch(`http://127.0.0.1:${port}/api/v2/torrents/resume`, opts({ method: 'POST', body: body() }));
      restarted = paused.ok && resumed.ok;
    }
    out({ dht: info.dht_nodes, restarted });
  } else if (kind === 'qbittorrent') {
    const r = await fetch(`http://127.0.0.1:${port}/api/v2/torrents/info?hashes=${hash}`, opts());
    const [t] = await r.json();
    // downloaded_session: payload bytes since the client started (the all-time `downloaded` lags: 0 here after a complete download).
    out(t ? { downloaded: t.downloaded_session } : {});
  } else {
    const url = `http://127.0.0.1:${port}/transmission/rpc`;
    const body = JSON.stringify({ method: 'torrent-get', arguments: { ids: [hash], fields: ['downloadedEver'] } });
    const first = await fetch(url, opts({ method: 'POST', body }));
    const sid = first.headers.get('x-transmission-session-id') ?? '';
    const r = await fetch(url, opts({ method: 'POST', body, headers: { 'X-Transmission-Session-Id': sid } }));
    const [t] = (await r.json()).arguments?.torrents ?? [];
    out(t ? { downloaded: t.downloadedEver } : {});
  }
} catch (e) {
  out({ error: String(e) });
}
