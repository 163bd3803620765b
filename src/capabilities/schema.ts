/**
 * The capability report: one zod schema, with the TypeScript types inferred
 * from it. Every entry is `{ available, reason?, detail? }`, and an entry
 * that is not available always says why (the schema refuses one that does not).
 * @module
 */
import { z } from 'zod';

/** Build the schema of one capability entry whose `detail` has the given shape. */
export function entrySchema<D extends z.ZodType>(detail: D) {
  return z
    .object({
      /** Whether the capability can be used. */
      available: z.boolean(),
      /** Why it cannot be used (the tool's message, the missing program or privilege); also set on some available entries as a caveat. */
      reason: z.string().min(1).optional(),
      /** What the probe found (versions, paths, which syntax worked, ...). */
      detail: detail.optional(),
    })
    .refine((e) => e.available || (e.reason !== undefined && e.reason.length > 0), {
      message: 'an unavailable capability must say why (reason)',
      path: ['reason'],
    });
}

/** Free-form detail of an entry. */
export const AnyDetail = z.record(z.string(), z.unknown());

/** A capability entry with free-form detail. */
export const CapabilityEntrySchema = entrySchema(AnyDetail);
/** One capability: `available`, and `reason` whenever it is false. */
export type CapabilityEntry = z.infer<typeof CapabilityEntrySchema>;

/** A dotted version number. */
export const VersionPartsSchema = z.object({ major: z.number().int(), minor: z.number().int(), patch: z.number().int() });

/**
 * What the probe of one nftables feature found. `json` and `text` say which
 * input syntax of this nft can express it (netfence emits JSON, so a feature
 * with `json: false` needs a text fallback or a newer nft).
 */
export const NftFeatureDetailSchema = z.object({
  /** The JSON form was accepted (and, when `verified` is `commit`, listed back as written). */
  json: z.boolean(),
  /** Why the JSON form failed, when it did. */
  jsonError: z.string().optional(),
  /** The text form was accepted (tried only when JSON was not, or when the feature has no JSON form). */
  text: z.boolean().optional(),
  /**
   * How the verdict was reached: `commit` = `nft -c` in the target namespace
   * and a real commit plus listing in a throwaway namespace agree; `check` =
   * `nft -c` only (no throwaway namespace could be created).
   */
  verified: z.enum(['commit', 'check']),
  /** Set when `nft -c` accepted something that the real commit refused or silently dropped. */
  checkFalsePositive: z.string().optional(),
  /** The probe, as nft text, for humans. */
  probe: z.string(),
});
/** Detail of an nftables feature entry. */
export type NftFeatureDetail = z.infer<typeof NftFeatureDetailSchema>;
/** Schema of one probed nftables feature entry. */
export const NftFeatureEntrySchema = entrySchema(NftFeatureDetailSchema);
/** One probed nftables feature. */
export type NftFeatureEntry = z.infer<typeof NftFeatureEntrySchema>;

/** Keys of the probed nftables features. */
export const NFT_FEATURES = [
  'queue',
  'socketCgroupv2',
  'flowtable',
  'destroy',
  'tableOwner',
  'tableComment',
  'limit',
  'quota',
  'ctCount',
  'connlimit',
  'inetNat',
  'netdevIngress',
  'netdevEgress',
  'synproxy',
  'inetIngress',
  'ctPackets',
  'ctMarkSet',
  'rejectTcpReset',
  'bridgeReject',
  'bridgeConntrack',
  'setTimeout',
  'intervalSet',
] as const;
/** Name of a probed nftables feature. */
export type NftFeatureName = (typeof NFT_FEATURES)[number];

/** Keys of probed tc qdiscs. */
export const TC_QDISCS = ['htb', 'tbf', 'ingress', 'clsact', 'netem', 'fqCodel'] as const;
/** Keys of probed tc actions. */
export const TC_ACTIONS = ['police', 'mirred', 'gact'] as const;
/** Keys of probed tc classifiers. */
export const TC_CLASSIFIERS = ['u32', 'flower', 'matchall', 'fw', 'cgroup', 'bpf'] as const;

function record<K extends readonly [string, ...string[]], S extends z.ZodType>(keys: K, schema: S) {
  return z.object(Object.fromEntries(keys.map((k) => [k, schema])) as { [P in K[number]]: S });
}

/** Detail of the cgroup v2 entry. */
export const CgroupV2DetailSchema = z.object({
  /** `unified` (v2 only), `hybrid` (v1 controllers plus v2, e.g. at /sys/fs/cgroup/unified), `legacy` (v1 only), `none`. */
  layout: z.enum(['unified', 'hybrid', 'legacy', 'none']),
  /** Where cgroup v2 is mounted. */
  mountPoint: z.string().optional(),
  /** Every cgroup2 mount point found. */
  mountPoints: z.array(z.string()),
  /** Prefix for cgroup paths in nft `socket cgroupv2` matches (nft resolves them under /sys/fs/cgroup): `''` on unified, `'unified/'` on hybrid. */
  nftPathPrefix: z.string().optional(),
  /** This process's cgroup v2 path (from /proc/self/cgroup). */
  selfPath: z.string().optional(),
});

/** Detail of an XDP attach entry. */
export const XdpAttachDetailSchema = z.object({
  /** Interface the test program was attached to. */
  iface: z.string().optional(),
  /** Namespace of that interface (a throwaway one when no `iface` was given). */
  netns: z.string().optional(),
  /** Whether the probe used a throwaway veth pair. */
  throwaway: z.boolean(),
  /** XDP mode reported by the kernel after attaching (1 = driver, 2 = generic/skb, 3 = offload). */
  mode: z.number().optional(),
});

const XdpAttachEntrySchema = entrySchema(XdpAttachDetailSchema);
/** An XDP attach entry. */
export type XdpAttachEntry = z.infer<typeof XdpAttachEntrySchema>;

/** The whole report returned by `detectCapabilities()`. */
export const CapabilityReportSchema = z.object({
  /** Version of this report's shape. */
  schemaVersion: z.literal(1),
  /** When detection ran (ISO 8601). */
  generatedAt: z.string(),
  /** How long detection took, in milliseconds. */
  durationMs: z.number(),
  /** What was probed. */
  target: z.object({
    /** Network namespace the report is about (null = the calling process's own). */
    netns: z.string().nullable(),
    /** Interface XDP attach was probed on (null = a throwaway veth pair). */
    iface: z.string().nullable(),
  }),
  kernel: z.object({
    /** `uname -r`. */
    release: z.string(),
    /** Parsed release, when it parses. */
    version: VersionPartsSchema.nullable(),
    /** Node's `process.arch`. */
    arch: z.string(),
  }),
  privileges: z.object({
    /** Effective uid is 0. */
    root: CapabilityEntrySchema,
    /** CAP_NET_ADMIN (nft, tc, ip, XDP attach). */
    netAdmin: CapabilityEntrySchema,
    /** CAP_NET_RAW (raw sockets, NFQUEUE readers do not need it). */
    netRaw: CapabilityEntrySchema,
    /** CAP_SYS_ADMIN (namespaces, mounting bpffs, BPF on older kernels). */
    sysAdmin: CapabilityEntrySchema,
    /** CAP_BPF (loading BPF programs and maps on kernels >= 5.8). */
    bpf: CapabilityEntrySchema,
    /** CapEff from /proc/self/status, hex. */
    capEff: z.string(),
  }),
  /** A throwaway network namespace could be created for probes that must really commit. */
  probeNamespace: CapabilityEntrySchema,
  nft: z.object({
    /** Which nft program was probed (and is run by netfence): see `configureHost()` and `$NETFENCE_NFT`. */
    binary: z.object({
      /** What is executed: an absolute path, or `nft` (looked up in `PATH`). */
      program: z.string(),
      /** The executable file it resolves to, or null when there is none. */
      path: z.string().nullable(),
      /** `option`: configureHost(); `env`: $NETFENCE_NFT; `path`: `nft` from PATH. */
      source: z.enum(['option', 'env', 'path']),
    }),
    /** The `nft` binary runs. */
    present: CapabilityEntrySchema,
    /** nft version, e.g. `1.0.6`, or null. */
    version: z.string().nullable(),
    /** `nft -j list tables` works (JSON support compiled in). */
    json: CapabilityEntrySchema,
    /** Kernel expressions and features, each probed on a throwaway table. */
    features: record(NFT_FEATURES, NftFeatureEntrySchema),
  }),
  tc: z.object({
    /** The `tc` binary runs. */
    present: CapabilityEntrySchema,
    /** Qdiscs, each really added on a veth in a throwaway namespace. */
    qdiscs: record(TC_QDISCS, CapabilityEntrySchema),
    /** Actions, each really added to the action table of a throwaway namespace. */
    actions: record(TC_ACTIONS, CapabilityEntrySchema),
    /** Classifiers (filters), each really added in a throwaway namespace. */
    classifiers: record(TC_CLASSIFIERS, CapabilityEntrySchema),
    /** An IFB device can be created (ingress shaping). */
    ifb: CapabilityEntrySchema,
  }),
  xdp: z.object({
    /** A bpf filesystem is mounted (at /sys/fs/bpf, per /proc/mounts). */
    bpffs: CapabilityEntrySchema,
    /** The bpf(2) syscall loads a 2-instruction XDP program. */
    bpfSyscall: CapabilityEntrySchema,
    /** Generic (skb) XDP attach works. */
    generic: XdpAttachEntrySchema,
    /** Native (driver) XDP attach works. */
    native: XdpAttachEntrySchema,
    /** BPF hash maps can be created. */
    mapHash: CapabilityEntrySchema,
    /** BPF LPM-trie maps can be created (prefix lists). */
    mapLpmTrie: CapabilityEntrySchema,
    /** Per-CPU array maps can be created (counters). */
    mapPercpuArray: CapabilityEntrySchema,
    /** BPF_MAP_UPDATE_BATCH works (bulk loads). */
    mapBatch: CapabilityEntrySchema,
    /** bpftool is installed. */
    bpftool: CapabilityEntrySchema,
    /** `ip` is linked with libbpf (can load XDP objects). */
    ipLibbpf: CapabilityEntrySchema,
    /** clang is installed (only needed to rebuild bpf/ objects). */
    clang: CapabilityEntrySchema,
  }),
  cgroup: z.object({
    /** cgroup v2 is mounted; detail says where and how nft must name paths. */
    v2: entrySchema(CgroupV2DetailSchema),
    /** nft `socket cgroupv2` matching can be used (cgroup v2 under /sys/fs/cgroup and the kernel expression present). */
    socketMatch: CapabilityEntrySchema,
    /** The cgroup v1 net_cls controller is mounted (classid matching with tc/nft `meta cgroup`). */
    netCls: CapabilityEntrySchema,
  }),
  iptables: z.object({
    /** `iptables-nft` is installed. */
    nft: CapabilityEntrySchema,
    /** The xtables NFQUEUE target works through iptables-nft (with --queue-bypass). */
    nfqueue: CapabilityEntrySchema,
    /** The xtables connbytes match works through iptables-nft. */
    connbytes: CapabilityEntrySchema,
  }),
});

/** The capability report returned by `detectCapabilities()`. */
export type CapabilityReport = z.infer<typeof CapabilityReportSchema>;
