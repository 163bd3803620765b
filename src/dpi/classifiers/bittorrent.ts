/**
 * The built-in BitTorrent classifier. One detector per family lives in
 * ./bittorrent/; this file wires them to the {@link Classifier} contract and
 * keeps their per-flow state.
 *
 * TCP: peer handshake at the start of either direction (after reassembly, so
 * a handshake split over segments is found), extension-protocol / PEX messages
 * at stream start, HTTP tracker announce/scrape and webseed requests, client
 * User-Agents, bencoded tracker responses, `.torrent` downloads, TLS SNI and HTTP
 * Host of BitTorrent domains, magnet links, MSE/PE encrypted handshakes.
 * UDP: DHT KRPC, UDP tracker (connect magic, replies matched to transaction ids),
 * uTP v1 and v0 (with handshake/extension payloads), Local Service Discovery,
 * DNS questions for BitTorrent domains, magnet links.
 * No port is trusted or exempted: BitTorrent on 443 or 53 is judged like any other.
 * @module
 */
import type { Classifier, FlowInfo, FlowPacket, Verdict } from '../types.js';
import { u16 } from './bittorrent/bytes.js';
import { matchDht } from './bittorrent/dht.js';
import { matchExtensionMessage, matchHandshake } from './bittorrent/handshake.js';
import { DEFAULT_BITTORRENT_DOMAINS, DomainMatcher, dnsQuestionName, hostnameVerdict, tlsClientHelloSni } from './bittorrent/hostnames.js';
import { lastPlainRequest, matchHttp } from './bittorrent/http.js';
import { matchLsd } from './bittorrent/lsd.js';
import { matchMagnet } from './bittorrent/magnet.js';
import { matchMse, mseState, type MseState } from './bittorrent/mse.js';
import { announceInfoHash, matchUdpTracker, udpTrackerState, type UdpTrackerState } from './bittorrent/udp-tracker.js';
import { matchUtp, utpState, type UtpState } from './bittorrent/utp.js';

/** Detection families of the built-in classifier; each can be switched off. */
export type BitTorrentFamily =
  | 'handshake'
  | 'extension'
  | 'http'
  | 'hostname'
  | 'magnet'
  | 'dht'
  | 'udp-tracker'
  | 'utp'
  | 'lsd'
  | 'mse';

/** Options of {@link bittorrentClassifier}. */
export interface BitTorrentClassifierOptions {
  /**
   * Domains whose DNS questions, TLS SNI and HTTP Host mark a flow BitTorrent
   * (default {@link DEFAULT_BITTORRENT_DOMAINS}); `false` turns hostname matching off.
   */
  hostnames?: readonly string[] | false;
  /**
   * Message Stream Encryption (MSE/PE, encrypted BitTorrent): the handshake shape
   * the protocol fixes (two opaque 96..608-byte first flights, then the
   * initiator's ≥ 56-byte third message; see bittorrent/mse.ts), with the
   * look-alike Ethereum RLPx and Telegram obfuscated2 handshakes told apart.
   * Default true; `false` (or `families: { mse: false }`) turns it off.
   */
  mse?: boolean;
  /** Families to switch off, e.g. `{ magnet: false }`. */
  families?: Partial<Record<BitTorrentFamily, boolean>>;
}

/** Per-direction TCP stream state of the BitTorrent classifier (part of {@link BitTorrentState}). */
export interface TcpDirState {
  /** Stream start is known not to be a handshake. */
  noHandshake: boolean;
  /** Stream start is known not to be HTTP (or HTTP fully judged). */
  noHttp: boolean;
  noTls: boolean;
  noExt: boolean;
}

/** Per-flow state of the BitTorrent classifier. */
export interface BitTorrentState {
  tcp: [TcpDirState, TcpDirState] | undefined;
  utp: UtpState | undefined;
  tracker: UdpTrackerState | undefined;
  mse: MseState | undefined;
  /** UDP: flow has shown a payload that is not uTP-shaped in either version. */
  dnsDone: boolean;
}

function tcpDir(): TcpDirState {
  return { noHandshake: false, noHttp: false, noTls: false, noExt: false };
}

/**
 * Create the built-in BitTorrent classifier.
 *
 * @example
 * ```ts
 * const engine = new DpiEngine({ classifiers: [bittorrentClassifier({ hostnames: false })] });
 * ```
 */
export function bittorrentClassifier(options: BitTorrentClassifierOptions = {}): Classifier<BitTorrentState> {
  const on = (f: BitTorrentFamily): boolean => options.families?.[f] ?? (f === 'mse' ? options.mse !== false : true);
  const domains = options.hostnames === false || !on('hostname') ? undefined : new DomainMatcher(options.hostnames ?? DEFAULT_BITTORRENT_DOMAINS);
  const fam = {
    handshake: on('handshake'),
    extension: on('extension'),
    http: on('http'),
    magnet: on('magnet'),
    dht: on('dht'),
    tracker: on('udp-tracker'),
    utp: on('utp'),
    lsd: on('lsd'),
    mse: on('mse'),
  };

  function inspectTcp(p: FlowPacket, flow: FlowInfo, st: BitTorrentState): Verdict | undefined {
    st.tcp ??= [tcpDir(), tcpDir()];
    const ds = st.tcp[p.dir];
    const s = p.stream;
    /** Set when the client's stream start rules out every family on the rest of the flow. */
    let settled: string | undefined;
    if (s && p.streamGrew) {
      const full = p.streamFull === true;
      if (fam.handshake && !ds.noHandshake) {
        const hs = matchHandshake(s, 0, 'TCP');
        if (hs === undefined) ds.noHandshake = true;
        else if (hs !== 'partial') return hs;
      }
      if (!ds.noHttp && (fam.http || domains)) {
        const m = matchHttp(s, full, domains);
        if (typeof m === 'object') {
          if (m.detection === 'hostname' ? domains : fam.http) return m;
          ds.noHttp = true;
        } else if (m === 'not-http' || m === 'no') {
          ds.noHttp = true;
          if (m === 'no' && p.dir === 0 && fam.http) settled = lastPlainRequest(s);
        }
      }
      if (domains && !ds.noTls && p.dir === 0) {
        const sni = tlsClientHelloSni(s);
        if (sni === undefined) ds.noTls = true;
        else if (sni !== 'partial') {
          ds.noTls = true;
          const listed = domains.match(sni);
          if (listed) return hostnameVerdict('TLS SNI', sni, listed);
          // the rest is encrypted: nothing of ours can show up in it
          // the stream is exactly the TLS record holding the ClientHello (5-byte header + its length)
          if (s.length === 5 + u16(s, 3)) settled = `TLS ClientHello (SNI ${sni.slice(0, 60)}), the rest is encrypted`;
        }
      }
      if (fam.extension && !ds.noExt) {
        if (s.length >= 8) {
          ds.noExt = true;
          const ext = matchExtensionMessage(s, 0, 'TCP');
          if (ext) return ext;
        }
      }
      if (domains && (flow.server.port === 53 || flow.client.port === 53) && s.length >= 2) {
        const name = dnsQuestionName(s, 2);
        if (name) {
          const listed = domains.match(name);
          if (listed) return hostnameVerdict('DNS question', name, listed);
        }
      }
      if (fam.mse) {
        st.mse ??= mseState();
        const v = matchMse(p, s, st.mse);
        if (v) return v;
      }
    }
    if (fam.magnet) {
      const v = matchMagnet(p.payload);
      if (v) return v;
    }
    return settled ? { verdict: 'undecided', reason: settled, detection: 'settled', done: true } : undefined;
  }

  function inspectUdp(p: FlowPacket, flow: FlowInfo, st: BitTorrentState): Verdict | undefined {
    const b = p.payload;
    const c = b[0];
    if (fam.dht && c === 0x64) {
      const v = matchDht(b);
      if (v) return v;
    }
    if (fam.lsd && c === 0x42) {
      const v = matchLsd(b);
      if (v) return v;
    }
    if (fam.tracker) {
      st.tracker ??= udpTrackerState();
      const v = matchUdpTracker(b, p.dir, st.tracker);
      if (v) {
        const ih = announceInfoHash(b);
        if (ih) v.infoHash = ih;
        return v;
      }
    }
    if (fam.utp) {
      st.utp ??= utpState();
      const v = matchUtp(b, p.dir, p.ts, st.utp);
      if (v) return v;
    }
    if (domains && (flow.server.port === 53 || flow.client.port === 53 || flow.server.port === 5353)) {
      const name = dnsQuestionName(b, 0);
      if (name) {
        const listed = domains.match(name);
        if (listed) return hostnameVerdict('DNS question', name, listed);
      }
    }
    if (fam.magnet) return matchMagnet(b);
    return undefined;
  }

  return {
    name: 'bittorrent',
    createState(): BitTorrentState {
      return { tcp: undefined, utp: undefined, tracker: undefined, mse: undefined, dnsDone: false };
    },
    inspect(p, flow, st) {
      return flow.transport === 'tcp' ? inspectTcp(p, flow, st) : inspectUdp(p, flow, st);
    },
  };
}
