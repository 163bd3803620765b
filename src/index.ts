/**
 * netfence — program the Linux packet path from Node, safely.
 * @module
 */
export { Firewall } from './firewall/firewall.js';
export { type FirewallStatus, type VmOptions, type ChainInput, type FirewallInit, type MapInput, type RuleInput, type SetInput, type VmSpec, type VmBackends, type FirewallRule, VmFirewallRule, RuleSpec, ChainSpec, SetSpec, MapSpec, FirewallOptions, FastPathSpec, type FirewallCompileOptions, type FastPathInput, type FlowtableCapabilitySource } from './firewall/index.js';
export type { Family } from './firewall/expr.js';
export { Throttler } from './throttle/throttler.js';
export { PER_PROCESS_NOTE, type LimitHandle, type LimitRequest, type ThrottleStats, type BackendInfo, type ThrottlerOptions, type LimitError } from './throttle/throttler.js';
export { LimitSchema, ThrottlerOptionsSchema, type Direction as ThrottleDirection } from './throttle/types.js';
export type { ThrottleCaps, Feature as ThrottleFeature } from './throttle/caps.js';
export { XdpBlocklist, XdpBlocklistOptionsSchema, type XdpBlocklistOptions, type XdpBlocklistBackend, type XdpAttachInfo, type XdpAddOptions, type XdpBlocklistEntry, type XdpBlocklistStats, type XdpCounter, type XdpBlocklistEvents, type XdpProgress, type XdpMode } from './xdp/xdp-blocklist.js';
export { DpiBlocker, dpiHandlerPath, type DpiBlockerOptions, type DpiBlockerStats, type DpiBlockerEvents, type DpiBlockerCompiled, type DpiClassifierSpec, type Detection, type DetectionBlocklist } from './dpi/dpi-blocker.js';
export type { ClassifierModuleSpec, DpiHandlerOptions, DpiHandlerCounters, DpiHandlerDetection } from './dpi/blocker-handler.js';
export * from './dpi/classifiers/index.js';
export * as nfqueue from './dpi/nfqueue/index.js';
export { compileSteering, steeringNames, type SteeringOptions, type SteeringHook } from './dpi/steering.js';
export * from './errors.js';
export { Ok, Err, type Result } from './result.js';
export * as validate from './validate.js';
export type { Plan, Step, Action, TableRef, XdpAttachment, QueueBinding, PlanDecision } from './plan/types.js';
export { emptyPlan } from './plan/types.js';
export { run, configureHost, nftProgram, type RunOptions, type RunOutput, type HostSettings, type NftProgram } from './host/run.js';
export { apply, check, destroy, planBatch, type ApplyOptions, type AppliedPlan, type DestroyOptions, type PlanBatch } from './plan/executor.js';
export type { NftBatchFeatures } from './plan/nft-features.js';
export { reconcile, type ReconcileOptions, type ReconcileReport, type ReconcileFinding, type ReconcileAction } from './plan/reconcile.js';
export { ownedTable, ownershipCommands, ownerMarkCommand, ownerMarkName, isOwned, ownerOf, probeOwnership, OwnershipError, OWNER_MARK, type TableOwnership } from './plan/ownership.js';
export { configureLocks, lockSettings, LockTimeoutError, pruneLockFiles, type LockSettings, type LockHolder } from './plan/lock.js';
export { nftApply, nftList, setDefaultNftRenderer, type NftApplyOptions, type NftListOptions, type NftListing, type NftRenderer } from './host/nft.js';
export * as nft from './nft/index.js';
export { detectCapabilities, clearCapabilityCache, explain, capabilityRows, checkCapability, CapabilityReportSchema, CapabilityEntrySchema, NftFeatureEntrySchema, NFT_FEATURES, type DetectOptions, type ExplainOptions, type CapabilityReport, type CapabilityEntry, type CapabilityRow, type NftFeatureName, type NftFeatureEntry } from './capabilities/index.js';
