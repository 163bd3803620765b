/**
 * A plan is plain data: what the builders compile to, what the executor applies.
 * It can be printed, stored, diffed and reviewed before anything touches the kernel.
 * @module
 */
import type { Command } from '../nft/schema/commands.js';

/** A family/name pair identifying an nftables table. */
export interface TableRef {
  family: 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
  name: string;
}

/** One host action that is not part of the nft transaction. */
export type Action =
  /** Run a tool with argv (never a shell), optional stdin, in the plan's netns unless `netns` is null. */
  | { kind: 'exec'; argv: string[]; input?: string; ignoreFailure?: boolean }
  /** Create a directory (cgroup, bpffs). */
  | { kind: 'mkdir'; path: string; ignoreFailure?: boolean }
  /** Remove an empty directory (cgroup, bpffs). */
  | { kind: 'rmdir'; path: string; ignoreFailure?: boolean }
  /** Write text to a file (cgroup.procs, sysctl). */
  | { kind: 'write'; path: string; data: string; ignoreFailure?: boolean }
  /** Remove a file (pinned BPF object). */
  | { kind: 'unlink'; path: string; ignoreFailure?: boolean };

/** A non-nft step with its inverse. Steps run in order after the nft batch; undo runs in reverse. */
export interface Step {
  /** Stable id, unique within the plan (e.g. `tc:qdisc:veth0:root`). */
  id: string;
  /** What it does, for humans. */
  description: string;
  /** The actions that perform the step. */
  do: Action[];
  /** The actions that undo it, run in order, failures tolerated. */
  undo: Action[];
}

/** An XDP program attachment. */
export interface XdpAttachment {
  iface: string;
  /** Path of the BPF object file. */
  object: string;
  /** Program section or name in the object. */
  program: string;
  mode: 'native' | 'generic' | 'auto';
  /** bpffs directory where maps are pinned. */
  pinDir: string;
}

/** An NFQUEUE binding (rules steering packets to a userspace reader). */
export interface QueueBinding {
  /** First queue number. */
  queue: number;
  /** Number of queues for fanout. */
  count: number;
  /** Which mechanism steers packets: nft queue statement, or the xtables NFQUEUE target. */
  via: 'nft' | 'xtables';
  /** What happens when no reader is bound or the queue is full. */
  failOpen: boolean;
}

/** A backend choice made at compile time, with the reason. */
export interface PlanDecision {
  subject: string;
  chosen: string;
  reason: string;
}

/** Compiled, reviewable description of a change to a host. */
export interface Plan {
  /** Who made it (e.g. `firewall:web`). */
  owner: string;
  /** Network namespace the plan targets; undefined for the current one. */
  netns?: string | undefined;
  /** Tables this plan owns: the executor snapshots and restores exactly these. */
  tables: TableRef[];
  /**
   * nftables JSON commands (the items of `{"nftables":[...]}`), applied as one
   * transaction; typed by the nft schema and validated by the executor with
   * the strict one before anything is sent.
   */
  nft: Command[];
  /** Other steps, each with its undo. */
  steps: Step[];
  /** XDP attachments. */
  xdp: XdpAttachment[];
  /** NFQUEUE bindings. */
  queue: QueueBinding[];
  /** Backend and fallback decisions, with reasons. */
  decisions: PlanDecision[];
}

/** An empty plan for `owner`, to be filled by a builder. */
export function emptyPlan(owner: string, netns?: string): Plan {
  return { owner, netns, tables: [], nft: [], steps: [], xdp: [], queue: [], decisions: [] };
}
