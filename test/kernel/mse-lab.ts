/**
 * Captures of real encrypted BitTorrent (MSE/PE) connections, made at test time:
 * qBittorrent-nox (libtorrent) and transmission-daemon from Debian, in two lab
 * namespaces (leecher c 198.18.1.2 — router r — seeder s 198.18.2.2), each announcing to a
 * tracker on its own loopback that names the other peer. One swarm per torrent,
 * many small torrents at once, so each run makes one TCP peer connection per
 * torrent (or more: both peers may dial). tcpdump on the link writes the pcap;
 * the offline classifier is then run over it (test/kernel/mse-real-clients.test.ts).
 *
 * Standalone: `npx tsx test/kernel/mse-lab.ts OUTDIR [TORRENTS]` writes one pcap
 * per run into OUTDIR (kept out of git) and prints the classification.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../../src/host/run.js';
import { withLab, type LabHost } from '../../src/lab/index.js';
import { classifyPcapSync } from '../../src/dpi/classify-pcap.js';
import { bittorrentClassifier } from '../../src/dpi/classifiers/bittorrent.js';
import { bg, sleep, tracker, until, type Bg } from './dpi-lab.js';
import { ordinaryTraffic, startServices } from './dpi-services.js';
import { ifaceWith, topo } from './nfqueue-lab.js';
import { timeScale } from '../lab/scale.js';

/** Encryption policy of a run: the client's default preference, or encryption required. */
export type MsePolicy = 'preferred' | 'forced';
/** Who seeds (and so mostly answers) and who leeches (and dials). */
export interface MseRun {
  seeder: 'qbt' | 'tr';
  leecher: 'qbt' | 'tr';
  policy: MsePolicy;
  /** Fewer torrents than the others (transmission answers one handshake per peer address at a time). */
  torrents?: number;
}

/**
 * The runs. transmission-daemon dials encrypted by default; libtorrent (qBittorrent's "allow
 * encryption" default) dials in the clear and answers either, so its encrypted dials come from
 * the forced runs. transmission closes a second handshake from an address that already has one in
 * progress, so libtorrent's 25 parallel dials to it are answered a few at a time.
 */
export const MSE_RUNS: MseRun[] = [
  { leecher: 'tr', seeder: 'qbt', policy: 'preferred' },
  { leecher: 'tr', seeder: 'qbt', policy: 'forced' },
  { leecher: 'qbt', seeder: 'qbt', policy: 'preferred' },
  { leecher: 'qbt', seeder: 'qbt', policy: 'forced' },
  { leecher: 'qbt', seeder: 'tr', policy: 'forced', torrents: 1 },
  { leecher: 'tr', seeder: 'tr', policy: 'forced', torrents: 1 },
];

const PORT = 6881;
const FILE_SIZE = 64 * 1024;

interface Torrents {
  dir: string;
  files: { name: string; torrent: string }[];
}

async function makeTorrents(n: number): Promise<Torrents> {
  const dir = mkdtempSync(join(tmpdir(), 'netfence-mse-'));
  mkdirSync(join(dir, 'data'));
  mkdirSync(join(dir, 'torrents'));
  const files: Torrents['files'] = [];
  for (let i = 0; i < n; i++) {
    const name = `f${String(i).padStart(3, '0')}.bin`;
    writeFileSync(join(dir, 'data', name), randomBytes(FILE_SIZE));
    const torrent = join(dir, 'torrents', `${name}.torrent`);
    // Private (-p): no DHT/PEX; the tracker on each loopback is the only source of peers.
    const r = await run(['mktorrent', '-p', '-l', '15', '-a', `http://127.0.0.1:6969/announce`, '-o', torrent, join(dir, 'data', name)], { timeoutMs: 20_000 });
    if (r.err) throw r.val;
    files.push({ name, torrent });
  }
  return { dir, files };
}

function qbt(h: LabHost, t: Torrents, role: 'seed' | 'leech', dir: string, policy: MsePolicy): Bg {
  const conf = join(dir, 'profile', 'qBittorrent', 'config');
  mkdirSync(conf, { recursive: true });
  const save = role === 'seed' ? join(t.dir, 'data') : join(dir, 'dl');
  mkdirSync(save, { recursive: true });
  writeFileSync(
    join(conf, 'qBittorrent.conf'),
    [
      '[LegalNotice]',
      'Accepted=true',
      '[BitTorrent]',
      'Session\\BTProtocol=TCP',
      'Session\\DHTEnabled=false',
      'Session\\LSDEnabled=false',
      'Session\\PeXEnabled=false',
      // 0 = allow encryption (libtorrent's default: encrypted handshake first), 1 = require it.
      `Session\\Encryption=${policy === 'forced' ? 1 : 0}`,
      `Session\\Port=${PORT}`,
      `Session\\DefaultSavePath=${save}`,
      'Session\\QueueingSystemEnabled=false',
      '[Preferences]',
      'WebUI\\Enabled=false',
      'Connection\\UPnP=false',
      '',
    ].join('\n'),
  );
  // The web UI (qBittorrent starts it even when disabled) away from the HTTP service on 8080.
  return bg(h, ['qbittorrent-nox', `--profile=${join(dir, 'profile')}`, '--webui-port=7881', `--torrenting-port=${PORT}`, `--save-path=${save}`, ...(role === 'seed' ? ['--skip-hash-check'] : []), ...t.files.map((f) => f.torrent)], {
    HOME: dir,
    QT_QPA_PLATFORM: 'offscreen',
  });
}

function transmission(h: LabHost, t: Torrents, role: 'seed' | 'leech', dir: string, policy: MsePolicy): Bg {
  const conf = join(dir, 'config');
  const watch = join(dir, 'watch');
  const save = role === 'seed' ? join(t.dir, 'data') : join(dir, 'dl');
  for (const d of [conf, watch, save]) mkdirSync(d, { recursive: true });
  const settings = {
    // 1 = prefer encrypted peer connections (the default), 2 = require them.
    encryption: policy === 'forced' ? 2 : 1,
    'dht-enabled': false,
    'lpd-enabled': false,
    'pex-enabled': false,
    'utp-enabled': false,
    'peer-port': PORT,
    'peer-port-random-on-start': false,
    'port-forwarding-enabled': false,
    'rpc-enabled': false,
    'download-dir': save,
    'incomplete-dir-enabled': false,
    'watch-dir': watch,
    'watch-dir-enabled': true,
    'download-queue-enabled': false,
    'seed-queue-enabled': false,
    'queue-stalled-enabled': false,
    'start-added-torrents': true,
    'message-level': 1,
  };
  writeFileSync(join(conf, 'settings.json'), JSON.stringify(settings, null, 1));
  for (const f of t.files) writeFileSync(join(watch, `${f.name}.torrent`), readFileSync(f.torrent));
  return bg(h, ['transmission-daemon', '-f', '-g', conf], { HOME: dir });
}

function completed(dir: string, t: Torrents): number {
  let n = 0;
  for (const f of t.files) {
    const p = join(dir, 'dl', f.name);
    if (existsSync(p) && statSync(p).size === FILE_SIZE) n++;
  }
  return n;
}

/**
 * One run: both clients up, the leecher fetches every torrent, tcpdump records the leecher's link.
 * With `ordinary`, HTTP, TLS, SSH and DNS between the same hosts are recorded too (their results returned).
 */
export async function captureRun(
  t: Torrents,
  spec: MseRun,
  outFile: string,
  windowMs: number,
  ordinary = false,
): Promise<{ pcap: string; completed: number; ordinary?: Record<string, boolean | string> }> {
  return withLab('mse', async (lab) => {
    const tp = await topo(lab);
    const a = tp.c;
    const b = tp.s;
    const dump = bg(a, ['tcpdump', '-i', await ifaceWith(lab, a, '198.18.1.2'), '-n', '-U', '-s', '0', '-w', outFile, 'tcp or udp']);
    const work = mkdtempSync(join(tmpdir(), 'netfence-mse-run-'));
    const procs: Bg[] = [dump];
    try {
      // The link carries packets before the clients start (qBittorrent listens on the addresses of running interfaces only).
      for (let i = 0; i < 20 && (await lab.ping(a, '198.18.2.2', 1, 1)) === 0; i++) await sleep(250);
      let ord: Record<string, boolean | string> | undefined;
      if (ordinary) {
        const svc = await startServices(lab, tp);
        procs.push(...svc.procs);
        ord = await ordinaryTraffic(tp, svc);
        rmSync(svc.certDir, { recursive: true, force: true });
      }
      // The leecher's tracker names the seeder; the seeder's names nobody, so every connection is dialled by
      // the leecher once the seeder is up (a seeder dialling a leecher that is not listening yet backs off).
      procs.push(tracker(a, `198.18.2.2:${PORT}`, windowMs + 20_000), tracker(b, '', windowMs + 20_000));
      const start = (who: 'qbt' | 'tr', h: LabHost, role: 'seed' | 'leech') => (who === 'qbt' ? qbt : transmission)(h, t, role, join(work, role), spec.policy);
      const seeder = start(spec.seeder, b, 'seed');
      procs.push(seeder);
      const listening = async (): Promise<boolean> => {
        const r = await lab.exec(b, ['ss', '-Hltn', `sport = :${PORT}`]);
        return r.ok && new RegExp(`(198\\.18\\.2\\.2|0\\.0\\.0\\.0|\\*):${PORT}\\b`).test(r.val.stdout);
      };
      for (let i = 0; i < 40 * timeScale && !(await listening()); i++) await sleep(250);
      // Then the torrents are loaded (checked, for transmission) within a moment.
      await sleep(1500 * timeScale);
      procs.push(start(spec.leecher, a, 'leech'));
      await until(() => completed(join(work, 'leech'), t) === t.files.length, windowMs * timeScale, 500);
      await sleep(500);
      const n = completed(join(work, 'leech'), t);
      if (process.env.MSE_DEBUG) {
        const log = (role: string): string => {
          const f = join(work, role, 'profile', 'qBittorrent', 'data', 'logs', 'qbittorrent.log');
          return existsSync(f) ? readFileSync(f, 'utf8').slice(-3000) : '';
        };
        console.log(`--- seeder\n${seeder.out().slice(-3000)}${log('seed')}\n--- leecher\n${procs[procs.length - 1]!.out().slice(-3000)}${log('leech')}`);
      }
      return { pcap: outFile, completed: n, ...(ord ? { ordinary: ord } : {}) };
    } finally {
      for (const p of procs.slice(1).reverse()) await p.kill();
      // tcpdump: SIGTERM-less kill loses nothing with -U (each packet is flushed).
      await dump.kill();
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/** A peer connection of a capture and what the classifier made of it. */
export interface MseFlowResult {
  run: string;
  flow: string;
  /** The flow opens with an encrypted handshake (not `0x13 BitTorrent protocol`). */
  encrypted: boolean;
  verdict: string;
  detection: string | undefined;
  reason: string;
}

/** A flow of a capture that is not a peer connection (HTTP, TLS, SSH, DNS between the same hosts). */
export interface OtherFlowResult {
  run: string;
  flow: string;
  verdict: string;
  reason: string;
}

/** Classify a capture's flows, each judged on its own (no peer cache). */
export function classifyRun(pcap: string, runName: string): { peers: MseFlowResult[]; others: OtherFlowResult[] } {
  const plain = classifyPcapSync(pcap, { peerCache: false, classifiers: [bittorrentClassifier({ mse: false })] });
  const ours = classifyPcapSync(pcap, { peerCache: false });
  if (plain.err) throw plain.val;
  if (ours.err) throw ours.val;
  const peers: MseFlowResult[] = [];
  const others: OtherFlowResult[] = [];
  for (let i = 0; i < ours.val.flows.length; i++) {
    const f = ours.val.flows[i]!;
    const p = plain.val.flows[i]!;
    const flow = `${f.transport} ${f.client.addr}:${f.client.port} -> ${f.server.addr}:${f.server.port}`;
    if (f.server.port !== PORT || f.transport !== 'tcp') {
      others.push({ run: runName, flow, verdict: f.verdict, reason: f.reason });
      continue;
    }
    // Peer connections: only handshakes, where the responder answered (a dial it closed unanswered, as transmission
    // does to a second concurrent dial from one address, carries nothing).
    if (f.payloadPacketsByDirection[0] === 0 || f.payloadPacketsByDirection[1] === 0) continue;
    peers.push({ run: runName, flow, encrypted: p.detection !== 'handshake', verdict: f.verdict, detection: f.detection, reason: f.reason });
  }
  return { peers, others };
}

export const runName = (r: MseRun): string => `${r.leecher}->${r.seeder} ${r.policy}`;

/** What {@link captureAll} saw. */
export interface MseCaptures {
  peers: MseFlowResult[];
  others: OtherFlowResult[];
  /** Downloads completed per run. */
  completed: Record<string, number>;
  /** Results of the ordinary clients (curl, dig, ssh) in the first run. */
  ordinary: Record<string, boolean | string>;
}

/** Every run of {@link MSE_RUNS} with `torrents` torrents each; the first run also carries HTTP, TLS, SSH and DNS. */
export async function captureAll(outDir: string, torrents: number, windowMs = 20_000): Promise<MseCaptures> {
  mkdirSync(outDir, { recursive: true });
  const t = await makeTorrents(torrents);
  const out: MseCaptures = { peers: [], others: [], completed: {}, ordinary: {} };
  try {
    for (const [i, spec] of MSE_RUNS.entries()) {
      const name = runName(spec);
      if (process.env.MSE_ONLY && !name.includes(process.env.MSE_ONLY)) continue;
      const pcap = join(outDir, `mse-${spec.leecher}-to-${spec.seeder}-${spec.policy}.pcap`);
      const r = await captureRun(spec.torrents ? { ...t, files: t.files.slice(0, spec.torrents) } : t, spec, pcap, spec.torrents ? windowMs / 2 : windowMs, i === 0);
      out.completed[name] = r.completed;
      if (r.ordinary) out.ordinary = r.ordinary;
      const c = classifyRun(pcap, name);
      out.peers.push(...c.peers);
      out.others.push(...c.others);
    }
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/test\//, '/test/'))) {
  const dir = process.argv[2] ?? join(tmpdir(), 'netfence-mse-captures');
  const n = Number(process.argv[3] ?? 25);
  const t0 = Date.now();
  const r = await captureAll(dir, n);
  for (const x of r.peers) console.log(`${x.run.padEnd(22)} ${x.flow.padEnd(44)} ${x.encrypted ? 'MSE  ' : 'plain'} ${x.verdict} ${x.detection ?? ''} ${x.reason}`);
  for (const x of r.others) console.log(`${x.run.padEnd(22)} ${x.flow.padEnd(44)} other ${x.verdict} ${x.reason}`);
  console.log('completed downloads per run:', r.completed, 'ordinary clients:', r.ordinary);
  const enc = r.peers.filter((x) => x.encrypted);
  console.log(`encrypted handshakes: ${enc.length}, detected by MSE: ${enc.filter((x) => x.detection === 'mse').length}, plaintext: ${r.peers.length - enc.length}; other flows ${r.others.length}, called BitTorrent ${r.others.filter((x) => x.verdict === 'bittorrent').length}; ${((Date.now() - t0) / 1000).toFixed(0)} s; pcaps in ${dir}`);
}
