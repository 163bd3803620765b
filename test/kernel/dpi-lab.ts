/**
 * Helpers for the DpiBlocker kernel tests, bench and example: real BitTorrent
 * clients from Debian (aria2 over TCP, qBittorrent-nox forced to uTP) between
 * namespaces, a tiny tracker on each peer's loopback (so no tracker traffic
 * crosses the router: what is blocked is the peer wire protocol itself), and
 * a comparison of the downloaded file with the original piece by piece.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, wrapNetns } from '../../src/host/run.js';
import type { LabHost } from '../../src/lab/index.js';
import { timeScale } from '../lab/scale.js';

export const TRACKER = fileURLToPath(new URL('./dpi-tracker.mjs', import.meta.url));
export const PIECE_BITS = 16; // 64 KiB pieces
export const PIECE = 1 << PIECE_BITS;

/** A process running in a namespace, with its output collected. */
export interface Bg {
  child: ChildProcess;
  out(): string;
  kill(): Promise<void>;
}

/** Start `argv` inside a namespace in the background (nsenter execs it, so the pid is the program's). */
export function bg(h: LabHost, argv: string[], env: Record<string, string> = {}): Bg {
  const [file, ...args] = wrapNetns(argv, h.netns) as [string, ...string[]];
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    out: () => out,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    },
  };
}

/** A torrent of one random file: the work dir, the seeded copy and the .torrent. */
export interface TorrentFixture {
  dir: string;
  name: string;
  seedDir: string;
  data: Buffer;
  torrent: string;
  cleanup(): void;
}

/** Random file of `size` bytes, a private torrent (no DHT/PEX) announcing to the loopback tracker. */
export async function makeTorrent(size: number, trackerPort = 6969): Promise<TorrentFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'netfence-bt-'));
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir);
  const name = 'payload.bin';
  const data = randomBytes(size);
  writeFileSync(join(seedDir, name), data);
  const torrent = join(dir, 'payload.torrent');
  const r = await run(['mktorrent', '-p', '-l', String(PIECE_BITS), '-a', `http://127.0.0.1:${trackerPort}/announce`, '-o', torrent, join(seedDir, name)], { timeoutMs: 20_000 });
  if (r.err) throw r.val;
  return { dir, name, seedDir, data, torrent, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Pieces of the downloaded copy (searched under `dir`) equal to the original, and its bytes on disk. */
export function piecesReceived(fx: TorrentFixture, dir: string): { pieces: number; total: number; bytes: number } {
  const total = Math.ceil(fx.data.length / PIECE);
  const file = findFile(dir, fx.name);
  if (!file) return { pieces: 0, total, bytes: 0 };
  const got = readFileSync(file);
  let pieces = 0;
  for (let i = 0; i < total; i++) {
    const a = fx.data.subarray(i * PIECE, (i + 1) * PIECE);
    const b = got.subarray(i * PIECE, (i + 1) * PIECE);
    if (a.equals(b)) pieces++;
  }
  let bytes = 0;
  for (const x of got) if (x !== 0) bytes++;
  return { pieces, total, bytes };
}

function findFile(dir: string, name: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (e === name && statSync(p).isFile()) return p;
    if (statSync(p).isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    }
  }
  return undefined;
}

/** The tracker on a host's loopback, answering with a fixed peer. */
export function tracker(h: LabHost, peer: string, lifetimeMs: number, port = 6969): Bg {
  return bg(h, [process.execPath, TRACKER, '127.0.0.1', String(port), String(lifetimeMs), peer]);
}

/** Client flavours used by the tests. */
export type BtClient = 'qbt-utp' | 'qbt-tcp';

/**
 * Start qBittorrent-nox (libtorrent) on `h`: seeding `fx` (seed) or downloading into `dir`
 * (leech), forced to uTP or to TCP by its `BTProtocol` setting. Encryption is off so that the
 * peer protocol is in the clear (aria2, for one, always opens with an MSE-obfuscated handshake,
 * which this classifier does not detect).
 */
export function btClient(kind: BtClient, h: LabHost, fx: TorrentFixture, role: 'seed' | 'leech', dir: string, port: number): Bg {
  mkdirSync(dir, { recursive: true });
  const profile = join(dir, 'profile');
  const conf = join(profile, 'qBittorrent', 'config');
  mkdirSync(conf, { recursive: true });
  const save = role === 'seed' ? fx.seedDir : join(dir, 'dl');
  mkdirSync(save, { recursive: true });
  writeFileSync(
    join(conf, 'qBittorrent.conf'),
    [
      '[LegalNotice]',
      'Accepted=true',
      '[BitTorrent]',
      `Session\\BTProtocol=${kind === 'qbt-utp' ? 'UTP' : 'TCP'}`,
      'Session\\DHTEnabled=false',
      'Session\\LSDEnabled=false',
      'Session\\PeXEnabled=false',
      'Session\\Encryption=2',
      'Session\\AnonymousModeEnabled=false',
      `Session\\Port=${port}`,
      `Session\\DefaultSavePath=${save}`,
      'Session\\Preallocation=false',
      'Session\\QueueingSystemEnabled=false',
      '[Preferences]',
      'WebUI\\LocalHostAuth=false',
      'WebUI\\Enabled=false',
      'Connection\\UPnP=false',
      `Connection\\PortRangeMin=${port}`,
      'General\\Locale=en',
      '',
    ].join('\n'),
  );
  return bg(h, ['qbittorrent-nox', `--profile=${profile}`, `--webui-port=${port + 1000}`, `--torrenting-port=${port}`, `--save-path=${save}`, ...(role === 'seed' ? ['--skip-hash-check'] : []), fx.torrent], {
    HOME: dir,
    QT_QPA_PLATFORM: 'offscreen',
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `pred` or `ms` elapse; returns whether it held. */
export async function until(pred: () => boolean, ms: number, every = 250): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(every);
  }
  return pred();
}

/**
 * One swarm of two: seeder on `s` (198.18.2.2), leecher on `c` (198.18.1.2), a tracker on each
 * loopback naming the other peer. Waits up to `ms` for the download to complete; returns what
 * the leecher received.
 */
export async function swarm(
  kind: BtClient,
  c: LabHost,
  s: LabHost,
  fx: TorrentFixture,
  ms: number,
  tag: string,
): Promise<{ pieces: number; total: number; bytes: number; complete: boolean; ms: number; seederLog: string; leecherLog: string }> {
  const port = 6881;
  const leechDir = join(fx.dir, `leech-${tag}`);
  const ts = tracker(s, `198.18.1.2:${port}`, (ms + 15_000) * timeScale);
  const tc = tracker(c, `198.18.2.2:${port}`, (ms + 15_000) * timeScale);
  const seedState = join(fx.dir, `seedstate-${tag}`);
  const seeder = btClient(kind, s, fx, 'seed', seedState, port);
  // Under emulation (the VM column) the clients take seconds to start: the windows stretch.
  ms *= timeScale;
  await sleep(2500 * timeScale);
  const t0 = Date.now();
  const leecher = btClient(kind, c, fx, 'leech', leechDir, port);
  let last = { pieces: 0, total: 1, bytes: 0 };
  const complete = await until(() => {
    last = piecesReceived(fx, leechDir);
    return last.pieces === last.total;
  }, ms, 400);
  const took = Date.now() - t0;
  await Promise.all([leecher.kill(), seeder.kill(), ts.kill(), tc.kill()]);
  last = piecesReceived(fx, leechDir);
  return { ...last, complete, ms: took, seederLog: seeder.out(), leecherLog: leecher.out() };
}
