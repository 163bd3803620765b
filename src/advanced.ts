/**
 * `netfence/advanced` — the low-level pieces under the classes of `netfence`:
 * the plan executor (`apply`, `check`, `destroy`), the process and nft
 * runners, ownership marks, namespace locks, the typed nftables JSON model,
 * NFQUEUE, DPI steering and the DPI engine's parts (flows, packets, captures).
 *
 * They are public and documented, but they are the tools the classes are built
 * from: prefer `Firewall`, `Throttler`, `XdpBlocklist` and `DpiBlocker` from
 * `netfence`, which validate their input, choose backends and keep to the
 * ownership rules for you. Errors, `Result` and the `Plan` types are exported
 * by `netfence`.
 * @module
 */

// Plans and the executor
export { emptyPlan } from './plan/types.js';
export { apply, check, destroy, planBatch, type DestroyOptions, type PlanBatch } from './plan/executor.js';
export { mergePlans, type PlanPart } from './plan/merge.js';
export type { NftBatchFeatures } from './plan/nft-features.js';

// The Host seam: everything netfence does to a machine (processes, nft, files, bpf(2))
export { currentHost, withHost, setHost, realHost, type Host, type HostNft, type HostFiles, type HostBpf, type SpawnOptions, type SpawnedProcess, type SpawnExit, type RunSyncOptions, type HostMem, type MapInfo, type BatchArgs, type MapCreateOptions, type ProgLoadOptions } from './host/host.js';
export type { ObjectPresence } from './host/nft-object.js';
export type { SetElementCount, CountSetOptions } from './host/nft-elements.js';

// Processes and nft
export { run, type RunOptions, type RunOutput } from './host/run.js';
export { nftApply, nftList, setDefaultNftRenderer, type NftApplyOptions, type NftListOptions, type NftListing, type NftRenderer } from './host/nft.js';
export * as nft from './nft/index.js';

// Ownership and locks
export { ownedTable, ownershipCommands, ownerMarkCommand, ownerMarkName, isOwned, ownerOf, probeOwnership, OWNER_MARK, type TableOwnership } from './plan/ownership.js';
export { configureLocks, lockSettings, pruneLockFiles, type LockSettings } from './plan/lock.js';

// Input validation helper
export { fromZodIssues } from './errors.js';

// NFQUEUE and DPI steering
export * as nfqueue from './dpi/nfqueue/index.js';
export { compileSteering, settleElements, steeringNames, SteeringSchema, SETTLE_SETS, type SettledService, type SteeringOptions, type SteeringHook } from './dpi/steering.js';

// The DPI engine's parts
export { DpiEngine, type DpiEngineOptions, type EngineStep } from './dpi/classifiers/engine.js';
export { PeerCache, type PeerCacheOptions, type PeerCacheEntry, type PeerCacheCounters, type PeerCacheStats, type PeerRecord, type PeerSource } from './dpi/classifiers/peer-cache.js';
export { PeerLearner } from './dpi/classifiers/bittorrent/peer-learning.js';
export type { BitTorrentState, TcpDirState } from './dpi/classifiers/bittorrent.js';
export type { MseState } from './dpi/classifiers/bittorrent/mse.js';
export type { UdpTrackerState } from './dpi/classifiers/bittorrent/udp-tracker.js';
export type { UtpState, DirTrack as UtpDirTrack } from './dpi/classifiers/bittorrent/utp.js';
export { readCapture, type CapturedPacket, type CaptureFormat } from './dpi/pcap.js';
export { decodeFrame, formatAddress, LinkType, type DecodedPacket, type PacketConntrackHint } from './dpi/packet.js';
export { Flow, FlowTable, StreamPrefix, flowKeyOf, type FlowKeyOf, type FlowTableOptions } from './dpi/flow.js';

// Metrics parts: merging families, the families of a status read, a strict reader of the text format
export { mergeFamilies, statusFamilies, parsePrometheusText, PrometheusTextError, type ParsedFamily, type ParsedSample } from './metrics/index.js';
