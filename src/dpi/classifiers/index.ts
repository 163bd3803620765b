/**
 * Classifiers and the engine that runs them.
 * @module
 */
export { DpiEngine, type DpiEngineOptions, type EngineStep } from './engine.js';
export { PeerCache, type PeerCacheOptions, type PeerCacheEntry, type PeerCacheCounters, type PeerCacheStats, type PeerRecord, type PeerSource } from './peer-cache.js';
export { PeerLearner } from './bittorrent/peer-learning.js';
export { bittorrentClassifier, type BitTorrentClassifierOptions, type BitTorrentFamily, type BitTorrentState, type TcpDirState } from './bittorrent.js';
export type { MseState } from './bittorrent/mse.js';
export type { UdpTrackerState } from './bittorrent/udp-tracker.js';
export type { UtpState, DirTrack as UtpDirTrack } from './bittorrent/utp.js';
export { DEFAULT_BITTORRENT_DOMAINS } from './bittorrent/hostnames.js';
export { classifyPcap, classifyPcapSync, type ClassifiedFlow, type PcapClassification, type ClassifyPcapOptions } from '../classify-pcap.js';
export { readCapture, CaptureFormatError, type CapturedPacket, type CaptureFormat } from '../pcap.js';
export { decodeFrame, formatAddress, LinkType, type DecodedPacket } from '../packet.js';
export { Flow, FlowTable, StreamPrefix, flowKeyOf, type FlowKeyOf, type FlowTableOptions } from '../flow.js';
export type { Classifier, Verdict, VerdictKind, FlowPacket, FlowInfo, Direction, Transport, Endpoint } from '../types.js';
