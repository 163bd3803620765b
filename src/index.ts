/**
 * netfence — program the Linux packet path from Node, safely.
 *
 * This entry point is the public surface: the classes, their option, result
 * and statistics types and schemas, the errors, `Result`, capability
 * detection, `reconcile` and host configuration. The low-level pieces (the
 * plan executor, the process and nft runners, ownership marks, locks, the
 * typed nft model, NFQUEUE and the DPI engine's parts) are in
 * `netfence/advanced`.
 * @module
 */

// Firewall
export { Firewall } from './firewall/firewall.js';
export { type FirewallStatus, type VmOptions, type ChainInput, type FirewallInit, type MapInput, type RuleInput, type SetInput, type VmSpec, type VmBackends, type FirewallRule, VmFirewallRule, RuleSpec, ChainSpec, SetSpec, MapSpec, FirewallOptions, FastPathSpec, type FirewallCompileOptions, type FastPathInput, type FlowtableCapabilitySource } from './firewall/index.js';
export type { Family } from './firewall/expr.js';
export { VmOptionsSchema } from './firewall/vm-options.js';

// Throttler
export { Throttler } from './throttle/throttler.js';
export { PER_PROCESS_NOTE, type LimitHandle, type LimitRequest, type ThrottleStats, type ThrottlerStats, type ThrottleHostFacts, type BackendInfo, type ThrottlerOptions, type LimitError } from './throttle/throttler.js';
export { LimitSchema, ThrottlerOptionsSchema, type Direction as ThrottleDirection } from './throttle/types.js';
export type { ThrottleCaps, Feature as ThrottleFeature } from './throttle/caps.js';

// XdpBlocklist
export { XdpBlocklist, XdpBlocklistOptionsSchema, type XdpBlocklistOptions, type XdpBlocklistBackend, type XdpAttachInfo, type XdpAddOptions, type XdpBlocklistEntry, type XdpBlocklistStats, type XdpCounter, type XdpBlocklistEvents, type XdpProgress, type XdpMode, type XdpCompiled, type XdpFacts } from './xdp/xdp-blocklist.js';

// DpiBlocker and classification
export { DpiBlocker, dpiHandlerPath, DpiBlockerOptionsSchema, type DpiBlockerOptions, type DpiBlockerStats, type DpiPeerCacheStats, type SettledServicesStats, type DpiBlockerEvents, type DpiBlockerCompiled, type DpiHostFacts, type DpiClassifierSpec, type Detection, type DetectionBlocklist } from './dpi/dpi-blocker.js';
export type { XtablesFilterFact } from './dpi/scaffolding.js';
export type { ClassifierModuleSpec, DpiHandlerOptions, DpiHandlerCounters, DpiHandlerDetection, DetectionVerdict } from './dpi/blocker-handler.js';
export { bittorrentClassifier, type BitTorrentClassifierOptions, type BitTorrentFamily } from './dpi/classifiers/bittorrent.js';
export { DEFAULT_BITTORRENT_DOMAINS } from './dpi/classifiers/bittorrent/hostnames.js';
export { classifyPcap, classifyPcapSync, type ClassifiedFlow, type PcapClassification, type ClassifyPcapOptions } from './dpi/classify-pcap.js';
export { CaptureFormatError } from './dpi/pcap.js';
export type { Classifier, Verdict, VerdictKind, FlowPacket, FlowInfo, Direction, Transport, Endpoint } from './dpi/types.js';

// Errors and results
export { NetfenceError, ValidationError, CommandError, UnsupportedError, ApplyError, NotImplementedError, type NetfenceErrorCode, type ValidationIssue, type CommandFailure } from './errors.js';
export { OwnershipError } from './plan/ownership.js';
export { LockTimeoutError, type LockHolder } from './plan/lock.js';
export { Ok, Err, type Result, type OkResult, type ErrResult } from './result.js';
export * as validate from './validate.js';
export type { IpFamily } from './net/ip.js';

// Plans (what compile() returns and apply() takes)
export type { Plan, Step, Action, XdpAction, XdpAttachMode, TableRef, XdpAttachment, QueueBinding, PlanDecision } from './plan/types.js';
export type { ApplyOptions, AppliedPlan } from './plan/executor.js';

// Host configuration, capabilities, recovery
export { configureHost, nftProgram, type HostSettings, type NftProgram } from './host/run.js';
export { detectCapabilities, clearCapabilityCache, explain, capabilityRows, checkCapability, CapabilityReportSchema, CapabilityEntrySchema, NftFeatureEntrySchema, NFT_FEATURES, type DetectOptions, type ExplainOptions, type CapabilityReport, type CapabilityEntry, type CapabilityRow, type NftFeatureName, type NftFeatureEntry } from './capabilities/index.js';
export { reconcile, type ReconcileOptions, type ReconcileReport, type ReconcileFinding, type ReconcileAction } from './plan/reconcile.js';
export { confirmApplied, pendingConfirms, type PendingConfirm, type ConfirmedPlan } from './plan/watchdog.js';

// Status: what netfence owns in a namespace, read from the kernel and the journal
export { readStatus, ReadStatusSchema, type ReadStatusOptions, type HostStatus, type TableStatus, type ChainStatus, type SetStatus, type CounterStatus, type LimitStatus, type XdpProgramStatus, type XdpBlocklistStatus, type SteeringStatus, type QueueStatus, type JournalStatus, type LockStatus, type OwnerKind } from './status/index.js';

// Metrics: every counter, in the Prometheus text format or through a prom-client registry
export { toPrometheusText, PROMETHEUS_CONTENT_TYPE, METRIC_DEFINITIONS, metricsOf, collectMetrics, netnsMetrics, netnsMetricsSource, registerPromClient, type MetricFamily, type MetricSample, type MetricLabels, type MetricType, type MetricDefinition, type MetricsOptions, type MetricsSource, type CustomMetricsSource, type CollectedMetrics, type NetnsMetrics, type NetnsMetricsOptions, type PromRegistryLike, type PromMetricObject, type PromClientOptions, type PromClientRegistration } from './metrics/index.js';

// Declarative files: plan, apply (one transaction) and destroy what one YAML/JSON file declares
export { parseDeclaration, loadDeclaration, planDeclaration, applyDeclaration, destroyDeclaration, DeclarationSchema, declarationJsonSchema, type Declaration, type DeclarationInput, type LoadedDeclaration, type DeclareOptions, type ApplyDeclarationOptions, type AppliedDeclaration, type DestroyedDeclaration, type DeclarationDiff, type ObjectDiff, type ObjectAction, type TableChanges } from './declare/index.js';
