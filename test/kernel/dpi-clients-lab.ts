/**
 * Real BitTorrent clients in their default configuration for the DpiBlocker
 * client tests: qBittorrent-nox (libtorrent: encryption preferred) and
 * transmission-daemon (encryption preferred), several swarms of two at once
 * between the leecher host (198.18.1.2) and the seeder host (198.18.2.2), each
 * with its own torrent, port and way of finding its peer:
 * - `local`: a tracker on each peer's loopback names the other peer, so only
 *   the peer wire protocol crosses the router;
 * - `remote`: a real tracker (peers as they announce) on the seeder host, so
 *   the leecher's announce crosses the router;
 * - `dht`: a trackerless torrent whose `nodes` name the seeder's DHT node.
 * Only what a swarm needs is set (ports, paths, the legal notice, and the
 * transport or encryption when the swarm forces one); everything else is the
 * client's default.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabHost } from '../../src/lab/index.js';
import { bg, TRACKER, type Bg } from './dpi-lab.js';

export const LEECHER_ADDR = '198.18.1.2';
export const SEEDER_ADDR = '198.18.2.2';
const PIECE = 1 << 16;

export type ClientKind = 'qbittorrent' | 'transmission';

/** One swarm of two peers. */
export interface SwarmSpec {
  id: string;
  client: ClientKind;
  /** Forced transport; undefined = the client's default (both). */
  transport?: 'tcp' | 'utp' | undefined;
  /** `default` = the client's default policy (both prefer encryption), `forced` = encrypted only. */
  encryption: 'default' | 'forced';
  discovery: 'local' | 'remote' | 'dht';
  /** Peer port of both peers (the RPC/web UI port is port + 1000). */
  port: number;
  /** Port of the remote tracker (discovery `remote`). */
  trackerPort?: number | undefined;
}

/** A swarm's torrent: random data, the .torrent, its info-hash. */
export interface SwarmTorrent {
  spec: SwarmSpec;
  dir: string;
  name: string;
  seedDir: string;
  data: Buffer;
  torrent: string;
  infoHash: string;
}

type BValue = number | string | Buffer | BValue[] | { [k: string]: BValue };
function bencode(v: BValue): Buffer {
  if (typeof v === 'number') return Buffer.from(`i${v}e`);
  if (typeof v === 'string') return bencode(Buffer.from(v));
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`${v.length}:`), v]);
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(bencode), Buffer.from('e')]);
  const keys = Object.keys(v).sort();
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap((k) => [bencode(k), bencode(v[k] as BValue)]), Buffer.from('e')]);
}

/** A public (not private: DHT and PEX allowed, as most torrents) single-file torrent of `size` random bytes. */
export function makeSwarmTorrent(spec: SwarmSpec, root: string, size: number): SwarmTorrent {
  const dir = join(root, spec.id);
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir, { recursive: true });
  const name = `${spec.id}.bin`;
  const data = randomBytes(size);
  writeFileSync(join(seedDir, name), data);
  const pieces: Buffer[] = [];
  for (let o = 0; o < size; o += PIECE) pieces.push(createHash('sha1').update(data.subarray(o, o + PIECE)).digest());
  const info = { length: size, name, 'piece length': PIECE, pieces: Buffer.concat(pieces) };
  const meta: Record<string, BValue> = { info, 'created by': 'netfence test' };
  if (spec.discovery === 'local') meta.announce = 'http://127.0.0.1:6969/announce';
  if (spec.discovery === 'remote') meta.announce = `http://${SEEDER_ADDR}:${spec.trackerPort}/announce`;
  if (spec.discovery === 'dht') meta.nodes = [[SEEDER_ADDR, spec.port]];
  const torrent = join(dir, `${spec.id}.torrent`);
  writeFileSync(torrent, bencode(meta));
  const infoHash = createHash('sha1').update(bencode(info)).digest('hex');
  return { spec, dir, name, seedDir, data, torrent, infoHash };
}

/** Bytes of the original found at their place in the leecher's copy (complete or partial file), and whether all are. */
export function delivered(t: SwarmTorrent, dir: string): { bytes: number; complete: boolean } {
  const file = findFile(dir, (n) => n === t.name || n.startsWith(`${t.name}.`));
  if (!file) return { bytes: 0, complete: false };
  const got = readFileSync(file);
  let bytes = 0;
  // Per 4 KiB block: count blocks equal to the original (random data: a zero-filled block never matches).
  const B = 4096;
  for (let o = 0; o < t.data.length; o += B) {
    const a = t.data.subarray(o, o + B);
    if (a.equals(got.subarray(o, o + B))) bytes += a.length;
  }
  return { bytes, complete: bytes === t.data.length };
}

function findFile(dir: string, pred: (name: string) => boolean): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isFile() && pred(e)) return p;
    if (st.isDirectory()) {
      const f = findFile(p, pred);
      if (f) return f;
    }
  }
  return undefined;
}

/** What a launcher changes beyond the client's defaults and the swarm's own settings. */
export interface LaunchOptions {
  /** The torrent file to load (default: the swarm's). */
  torrentFile?: string | undefined;
  /** Local peer discovery off (qBittorrent `Session\LSDEnabled=false`, transmission `--no-lpd`). */
  noLocalDiscovery?: boolean | undefined;
  /** transmission: called with its config directory before it starts (e.g. to write `dht.dat`). */
  prepareConfig?: ((cfg: string) => void) | undefined;
  /** transmission: its log level flag (default `--log-error`). */
  logFlag?: string | undefined;
}

/** qBittorrent-nox with its defaults; only ports, paths, the legal notice, the swarm's forced settings and `o` are written. */
export function qbittorrent(h: LabHost, t: SwarmTorrent, save: string, home: string, seed: boolean, o: LaunchOptions = {}): Bg {
  const { spec } = t;
  const profile = join(home, 'profile');
  const conf = join(profile, 'qBittorrent', 'config');
  mkdirSync(conf, { recursive: true });
  mkdirSync(save, { recursive: true });
  const lines = ['[LegalNotice]', 'Accepted=true', '[BitTorrent]', `Session\\Port=${spec.port}`, `Session\\DefaultSavePath=${save}`];
  if (spec.transport) lines.push(`Session\\BTProtocol=${spec.transport === 'tcp' ? 'TCP' : 'UTP'}`);
  // 0 = prefer encryption (the default), 1 = require it
  if (spec.encryption === 'forced') lines.push('Session\\Encryption=1');
  if (o.noLocalDiscovery) lines.push('Session\\LSDEnabled=false');
  lines.push('[Preferences]', 'WebUI\\LocalHostAuth=false', `WebUI\\Port=${spec.port + 1000}`, '');
  writeFileSync(join(conf, 'qBittorrent.conf'), lines.join('\n'));
  return bg(h, ['qbittorrent-nox', `--profile=${profile}`, `--webui-port=${spec.port + 1000}`, `--torrenting-port=${spec.port}`, `--save-path=${save}`, ...(seed ? ['--skip-hash-check'] : []), o.torrentFile ?? t.torrent], {
    HOME: home,
    QT_QPA_PLATFORM: 'offscreen',
  });
}

/** transmission-daemon with its defaults; the torrent is loaded at start from its config directory's `torrents/`. */
export function transmission(h: LabHost, t: SwarmTorrent, save: string, home: string, o: LaunchOptions = {}): Bg {
  const { spec } = t;
  const cfg = join(home, 'config');
  mkdirSync(join(cfg, 'torrents'), { recursive: true });
  mkdirSync(save, { recursive: true });
  writeFileSync(join(cfg, 'torrents', `${spec.id}.torrent`), readFileSync(o.torrentFile ?? t.torrent));
  o.prepareConfig?.(cfg);
  const argv = ['transmission-daemon', '-f', '-g', cfg, '-w', save, '-P', String(spec.port), '-p', String(spec.port + 1000), '-M', o.logFlag ?? (process.env.H8_TRN_LOG ? '--log-debug' : '--log-error')];
  if (o.noLocalDiscovery) argv.push('--no-lpd');
  if (spec.transport === 'tcp') argv.push('--no-utp');
  if (spec.encryption === 'forced') argv.push('-er');
  return bg(h, argv, { HOME: home });
}

/** One running swarm. */
export interface RunningSwarm {
  torrent: SwarmTorrent;
  leechDir: string;
  procs: Bg[];
}

/** Start a swarm's seeder (on `s`). */
export function startSeeder(s: LabHost, t: SwarmTorrent, tag: string): Bg {
  const home = join(t.dir, `seeder-${tag}`);
  return t.spec.client === 'qbittorrent' ? qbittorrent(s, t, t.seedDir, home, true) : transmission(s, t, t.seedDir, home);
}

/** Start a swarm's leecher (on `c`), downloading into a fresh directory. */
export function startLeecher(c: LabHost, t: SwarmTorrent, tag: string): { proc: Bg; dir: string } {
  const home = join(t.dir, `leecher-${tag}`);
  const dir = join(home, 'dl');
  return { proc: t.spec.client === 'qbittorrent' ? qbittorrent(c, t, dir, home, false) : transmission(c, t, dir, home), dir };
}

/**
 * The trackers: one on each peer's loopback (port 6969) naming the other peer of each `local`
 * swarm, and for each `remote` swarm a real tracker on the seeder host (peers as they announce).
 */
export function startTrackers(c: LabHost, s: LabHost, torrents: SwarmTorrent[], lifetimeMs: number): Bg[] {
  const local = torrents.filter((t) => t.spec.discovery === 'local');
  const map = (addr: string): string => JSON.stringify(Object.fromEntries(local.map((t) => [t.infoHash, [`${addr}:${t.spec.port}`]])));
  const out = [bg(s, [process.execPath, TRACKER, '127.0.0.1', '6969', String(lifetimeMs), map(LEECHER_ADDR)]), bg(c, [process.execPath, TRACKER, '127.0.0.1', '6969', String(lifetimeMs), map(SEEDER_ADDR)])];
  for (const t of torrents) if (t.spec.discovery === 'remote') out.push(bg(s, [process.execPath, TRACKER, '0.0.0.0', String(t.spec.trackerPort), String(lifetimeMs), 'announced']));
  return out;
}

/** A scratch directory for the swarms. */
export function swarmRoot(): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'netfence-clients-'));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
