/**
 * Capability detection: what this kernel and these tools can do, probed for
 * real, in one typed report. Backends use it to choose (and to say why they
 * chose); users print it with `netfence capabilities`.
 *
 * Safety: in the target namespace (the caller's own, or `netns`) detection
 * only runs read-only commands and `nft -c` (check, never commit). Everything
 * that must really be added — tc qdiscs, nft commits, iptables-nft rules, XDP
 * attach on a veth pair — happens in a throwaway namespace `nfcap-<random>`
 * that is deleted before detection returns. The one exception is an explicit
 * `iface`: XDP attach is then tried on that interface (see {@link DetectOptions.iface}).
 * @module
 */
import { z } from 'zod';
import { fromZodIssues } from '../errors.js';
import { nftProgram } from '../host/run.js';
import { IfName, NetnsName } from '../validate.js';
import { probeNftBasics, probeNftFeatures } from './nft.js';
import { createProbeNamespace, destroyProbeNamespace, limiter, reasonOf, type ProbeNamespace } from './probe-ns.js';
import { CapabilityReportSchema, type CapabilityEntry, type CapabilityReport } from './schema.js';
import { cgroupEntries, probeIptables, probeKernel, probePrivileges, readCgroupFacts } from './system.js';
import { probeTc, TC_SETUP } from './tc.js';
import { probeXdp, XDP_SETUP } from './xdp.js';

export { CapabilityReportSchema, CapabilityEntrySchema, NftFeatureEntrySchema, type CapabilityReport, type CapabilityEntry, type NftFeatureEntry, type NftFeatureName, NFT_FEATURES, TC_QDISCS, TC_ACTIONS, TC_CLASSIFIERS } from './schema.js';
export { explain, capabilityRows, checkCapability, type CapabilityRow, type ExplainOptions } from './explain.js';

/** Options of {@link detectCapabilities}. */
export interface DetectOptions {
  /** Report on this network namespace (a name under /run/netns); default: the calling process's own. */
  netns?: string | undefined;
  /**
   * Probe XDP attach (generic, then native) on this interface of the target
   * namespace instead of a throwaway veth pair. A 2-instruction XDP_PASS
   * program is attached and detached at once; an interface that already has
   * an XDP program is left alone. Caution: on some physical NICs attaching
   * native XDP resets the device (a short link flap).
   */
  iface?: string | undefined;
  /** Probe again instead of returning the cached report for this netns/iface. */
  refresh?: boolean | undefined;
  /** Maximum number of probe processes running at once (default 8). */
  concurrency?: number | undefined;
}

const OptionsSchema = z.object({
  netns: NetnsName.optional(),
  iface: IfName.optional(),
  refresh: z.boolean().optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
});

const cache = new Map<string, Promise<CapabilityReport>>();

/** Forget cached reports (all of them, or those of one namespace, for every nft program). */
export function clearCapabilityCache(netns?: string): void {
  if (netns === undefined) cache.clear();
  else for (const k of cache.keys()) if (k.startsWith(`${netns}\0`)) cache.delete(k);
}

/**
 * Use `report` as the cached report for a namespace (and interface), as if it
 * had been probed: for tests on a FakeHost (src/host/fake.ts), where there is
 * no kernel to probe. The report is validated by its schema. @internal
 */
export function primeCapabilityCache(report: CapabilityReport, options: { netns?: string | undefined; iface?: string | undefined } = {}): void {
  cache.set(`${options.netns ?? ''}\0${options.iface ?? ''}\0${nftProgram().program}`, Promise.resolve(CapabilityReportSchema.parse(report)));
}

/**
 * Detect what this host can do, for the given network namespace.
 *
 * Returns one {@link CapabilityReport}; every entry that is not available
 * says why (the probe's own error message, a missing tool or privilege).
 * Reports are cached per netns, iface and nft program; pass `refresh: true` to probe again.
 * Invalid options (a netns or interface name that could not be passed to a
 * tool) are thrown as a `ValidationError`; nothing else throws.
 *
 * @example
 * ```ts
 * const caps = await detectCapabilities();
 * if (!caps.nft.features.queue.available) console.log('no nft queue:', caps.nft.features.queue.reason);
 * console.log(explain(caps));
 * ```
 */
export function detectCapabilities(options: DetectOptions = {}): Promise<CapabilityReport> {
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) throw fromZodIssues('detectCapabilities options', parsed.error.issues);
  const o = parsed.data;
  // A report describes the nft program it probed: another one (configureHost, $NETFENCE_NFT) is probed anew.
  const key = `${o.netns ?? ''}\0${o.iface ?? ''}\0${nftProgram().program}`;
  if (!o.refresh) {
    const hit = cache.get(key);
    if (hit) return hit;
  }
  const p = detect(o.netns, o.iface, o.concurrency ?? 8);
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  return p;
}

async function detect(netns: string | undefined, iface: string | undefined, concurrency: number): Promise<CapabilityReport> {
  const t0 = performance.now();
  const run = limiter(concurrency);
  const [kernel, privileges, cg, nftBasics, probe] = await Promise.all([
    probeKernel(),
    probePrivileges(),
    readCgroupFacts(),
    probeNftBasics(netns),
    createProbeNamespace([...TC_SETUP, ...XDP_SETUP]),
  ]);
  const ns: ProbeNamespace | undefined = probe.ok ? probe.val : undefined;
  const nsReason = probe.err ? reasonOf(probe.val) : undefined;
  try {
    const probeNamespace: CapabilityEntry = ns ? { available: true } : { available: false, reason: `could not create a throwaway network namespace: ${nsReason ?? 'unknown'}` };
    const [features, tc, xdp, iptables] = await Promise.all([
      probeNftFeatures(nftBasics, { cgroupPath: cg.nftProbePath }, netns, ns?.name, run),
      probeTc(ns?.name, probeNamespace.reason, run, ns?.setupError),
      probeXdp({ netns, iface, probeNs: ns?.name, probeNsReason: probeNamespace.reason, probeNsSetupError: ns?.setupError }),
      probeIptables(ns?.name, probeNamespace.reason),
    ]);
    const report: CapabilityReport = {
      schemaVersion: 1,
      generatedAt: new Date().toISOString(),
      durationMs: 0,
      target: { netns: netns ?? null, iface: iface ?? null },
      kernel,
      privileges,
      probeNamespace,
      nft: { binary: nftBasics.binary, present: nftBasics.present, version: nftBasics.version, json: nftBasics.json, features },
      tc,
      xdp,
      cgroup: cgroupEntries(cg, features.socketCgroupv2),
      iptables,
    };
    // The probe namespace is gone before the clock stops: its deletion is part of detection.
    if (ns) await destroyProbeNamespace(ns);
    report.durationMs = Math.round((performance.now() - t0) * 10) / 10;
    // A report that breaks its own schema is a bug in a probe: throw.
    return CapabilityReportSchema.parse(report);
  } finally {
    if (ns) await destroyProbeNamespace(ns);
  }
}
