/**
 * The classifier contract of the DPI engine: what a classifier sees of a flow
 * and what it answers.
 * @module
 */

/** What a classifier (or the engine) concluded about a flow. */
export type VerdictKind = 'bittorrent' | 'benign' | 'undecided';

/** Direction of a packet within its flow: 0 = from the initiator (client), 1 = from the responder (server). */
export type Direction = 0 | 1;

/** Transport protocol of a flow the engine inspects. */
export type Transport = 'tcp' | 'udp';

/** A classifier's answer for one packet of a flow. */
export interface Verdict {
  /** `bittorrent` or `benign` decide the flow; `undecided` lets the engine go on. */
  verdict: VerdictKind;
  /** Human-readable why, e.g. `TCP peer handshake ("BitTorrent protocol")`. */
  reason: string;
  /** Detection family that fired, e.g. `handshake`, `dht`, `utp`, `cache` (set by built-in classifiers). */
  detection?: string;
  /** Name of the classifier that decided (filled in by the engine). */
  classifier?: string;
  /** Torrent info-hash (40 lowercase hex digits) when the packet carried one. */
  infoHash?: string;
  /** Peer id (printable form) when seen in a handshake. */
  peerId?: string;
  /** Client software when known (User-Agent, peer id prefix, KRPC `v`). */
  client?: string;
  /**
   * When true, both ends of the flow are BitTorrent peers, so the engine records
   * their endpoints in the peer endpoint cache (responder always, initiator for UDP).
   * Leave unset for detections whose server is not a peer (HTTP tracker, DNS, TLS SNI, LSD).
   */
  peers?: boolean;
  /**
   * With `undecided`: this classifier can no longer match this flow (e.g. the
   * client's first message is a complete request of a protocol it does not
   * look for). The engine stops offering the flow to it, and once every
   * classifier has said so the flow is `benign` at once (detection `settled`),
   * before the per-direction budget is spent. A `benign` answer, unlike this,
   * decides for all the classifiers after it too.
   */
  done?: boolean;
}

/** An endpoint: address in text form and port. */
export interface Endpoint {
  /** IPv4 dotted quad or IPv6 text (RFC 5952 compressed). */
  addr: string;
  /** TCP/UDP port. */
  port: number;
}

/** One packet of a flow as a classifier sees it. */
export interface FlowPacket {
  /** 0 = initiator → responder, 1 = responder → initiator. */
  dir: Direction;
  /** Capture or arrival time in seconds (fractional). */
  ts: number;
  /** Transport payload of this packet (TCP segment data or UDP datagram). */
  payload: Uint8Array;
  /** 1-based index among the flow's payload-carrying packets (both directions). */
  index: number;
  /** 1-based index among this direction's payload-carrying packets. */
  dirIndex: number;
  /**
   * TCP only: the in-order byte stream of this direction from its start (after
   * reassembly of split, reordered and retransmitted segments), up to the engine's
   * stream limit. Classifiers that match at stream start (handshakes, HTTP) use this.
   */
  stream?: Uint8Array;
  /** TCP only: true when this packet added new bytes to {@link FlowPacket.stream}. */
  streamGrew?: boolean;
  /** TCP only: true when {@link FlowPacket.stream} reached the engine's limit (no more bytes will be added). */
  streamFull?: boolean;
}

/** Read-only facts about a flow, given to classifiers with every packet. */
export interface FlowInfo {
  /** Canonical flow key (direction-independent). */
  readonly key: string;
  /** `tcp` or `udp`. */
  readonly transport: Transport;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The initiator (source of the first packet, or of the SYN). */
  readonly client: Endpoint;
  /** The responder. */
  readonly server: Endpoint;
  /** Time of the flow's first packet (seconds). */
  readonly firstTs: number;
  /** Payload-carrying packets seen so far, per direction. */
  readonly payloadPackets: readonly [number, number];
}

/**
 * A pluggable classifier. The engine calls {@link Classifier.inspect} for each of a
 * flow's first payload-carrying packets (both directions) until some classifier
 * answers `bittorrent` or `benign`, or the per-direction packet budget is spent.
 *
 * @typeParam S - per-flow state the classifier keeps (created by {@link Classifier.createState}).
 *
 * @example
 * ```ts
 * const noSsh: Classifier = {
 *   name: 'ssh-banner',
 *   transports: ['tcp'],
 *   inspect: (p) => p.stream && Buffer.from(p.stream.subarray(0, 4)).toString('latin1') === 'SSH-'
 *     ? { verdict: 'benign', reason: 'SSH banner' } : undefined,
 * };
 * ```
 */
export interface Classifier<S = unknown> {
  /** Short stable name, reported with verdicts. */
  readonly name: string;
  /** Transports it wants to see (default: both). */
  readonly transports?: readonly Transport[];
  /** Fresh per-flow state; called once per flow, lazily, before the first inspect. */
  createState?(flow: FlowInfo): S;
  /** Look at one packet; return a verdict, or `undefined` / `undecided` to keep watching. */
  inspect(packet: FlowPacket, flow: FlowInfo, state: S): Verdict | undefined;
}
