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
  | { kind: 'unlink'; path: string; ignoreFailure?: boolean }
  /**
   * Remove scaffolding a tool created on first use (iptables-nft's `filter` table and built-in
   * chains) once nothing uses it: each of `chains` only while it holds no rule and no rule jumps
   * to it; the table (with `deleteTable`) only when it then holds nothing else. The table is
   * listed when the action runs (inside the namespace lock). See `nft-prune.ts`.
   */
  | { kind: 'nft-prune'; family: TableRef['family']; table: string; chains: string[]; deleteTable: boolean; ignoreFailure?: boolean }
  | XdpAction;

/** XDP program mode as the kernel reports it. */
export type XdpAttachMode = 'native' | 'generic';

/**
 * XDP actions (run by `actions-xdp.ts`). Pins live in `pinDir`
 * (`/sys/fs/bpf/netfence/<name>`): the maps, `prog` (the program in force),
 * `prog_next` (a program loaded, not yet in force), `prog_prev` (the program a
 * re-attach replaced, kept until the apply completed so that an undo can put it back).
 */
export type XdpAction =
  /** Create and pin the blocklist maps (`create`), or open the pinned ones; then set the program flags. */
  | { kind: 'xdp-maps'; pinDir: string; maxEntries: number; flags: number; create: boolean; ignoreFailure?: boolean }
  /** Load the program of `object` bound to the pinned maps of `pinDir` and pin it as `pinDir/pin`. */
  | { kind: 'xdp-load'; object: string; pinDir: string; pin: 'prog_next'; ignoreFailure?: boolean }
  /** Attach the program pinned at `pinDir/pin` to `iface`, trying `modes` in order; `replace` swaps our attached program atomically. Nothing to do when it is attached already. */
  | { kind: 'xdp-attach'; iface: string; pinDir: string; pin: 'prog' | 'prog_next'; modes: XdpAttachMode[]; replace: boolean; ignoreFailure?: boolean }
  /** Detach the program attached to `iface` if it is one pinned in `pinDir` (never a foreign one). */
  | { kind: 'xdp-detach'; iface: string; pinDir: string; ignoreFailure?: boolean }
  /** `commit`: `prog` -> `prog_prev` (if any), `prog_next` -> `prog`. `revert`: the other way round. */
  | { kind: 'xdp-pin-swap'; pinDir: string; direction: 'commit' | 'revert'; ignoreFailure?: boolean }
  /** Unlink the named pins of `pinDir`, or (no `names`) every pin and the directory itself. */
  | { kind: 'xdp-unpin'; pinDir: string; names?: ('prog' | 'prog_next' | 'prog_prev')[]; ignoreFailure?: boolean };

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
