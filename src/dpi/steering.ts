/**
 * Steering rules for DPI: only the first packets of each flow go to the
 * userspace queue; a flow judged benign (conntrack mark) bypasses the queue
 * from then on; a flow judged bad is dropped in full — later segments and
 * retransmissions too — optionally answered with a TCP reset.
 *
 * Compiled as plan data (pure, no I/O), in one of two forms:
 * - `nft`: an owned `inet` table with the nft `queue` statement (kernels with
 *   CONFIG_NFT_QUEUE);
 * - `xtables`: the xtables NFQUEUE target through iptables-nft, in a chain of
 *   its own in the `filter` table, loaded atomically with
 *   `ip(6)tables-nft-restore --noflush`, each jump and the chain with its undo.
 *
 * The verdict side (src/dpi/nfqueue/reader.ts) and these rules agree through
 * {@link FlowMarks}: the reader marks a judged packet (packet mark + NF_REPEAT,
 * or the conntrack mark directly where the kernel allows it), and the rules
 * copy the packet mark into the conntrack mark, then act on the conntrack mark.
 * @module
 */
import { z } from 'zod';
import { fromZodIssues, type ValidationError } from '../errors.js';
import { accept, and, anonSet, chain, cmd, concat, counter, ct, drop, elem, elements, eq, mangle, match, meta, or, payload, range, reject, rule, set, setRef, table, type TableId } from '../nft/build.js';
import type { Command } from '../nft/schema/commands.js';
import type { Expression } from '../nft/schema/expressions.js';
import type { QUEUE_FLAGS, QueueStmt, Statement } from '../nft/schema/statements.js';
import { PlanOwner } from '../plan/ownership.js';
import { emptyPlan, type Action, type Plan, type Step } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { DEFAULT_FLOW_MARKS, FlowMarksSchema, type FlowMarks } from './nfqueue/marks.js';

/** Netfilter hooks DPI can watch. */
export type SteeringHook = 'forward' | 'input' | 'output';

/** Packets of each flow (both directions together, handshake included) steered to the queue unless told otherwise. */
const DEFAULT_PACKETS = 24;

/** zod schema of {@link SteeringOptions} (defaults applied by parsing). */
export const SteeringSchema = z
  .object({
    /** Network namespace the rules go into. */
    netns: NetnsName.optional(),
    /** Plan owner (default `dpi`). */
    owner: PlanOwner.default('dpi'),
    /** Instance name, part of the chain/table name (default `dpi`): letters, digits, `_`, at most 16. */
    name: z
      .string()
      .min(1)
      .max(16, 'must be at most 16 characters')
      .regex(/^[A-Za-z0-9_]+$/, 'must contain only letters, digits and _')
      .default('dpi'),
    /** Queues `[first, count]`; count > 1 balances flows over the queues (both directions of a flow hash to the same queue). */
    queues: z
      .tuple([z.number().int().min(0).max(65535), z.number().int().min(1).max(1024)])
      .refine(([f, c]) => f + c - 1 <= 65535, 'queue range ends above 65535'),
    /** Hooks to steer (default `['forward']`). */
    hooks: z.array(z.enum(['forward', 'input', 'output'])).min(1).default(['forward']),
    /** IP families (default both). */
    families: z.array(z.enum(['ipv4', 'ipv6'])).min(1).default(['ipv4', 'ipv6']),
    /** Transport protocols to inspect (default tcp and udp). */
    protocols: z.array(z.enum(['tcp', 'udp'])).min(1).default(['tcp', 'udp']),
    /**
     * With no reader bound to the queue: accept the packets (true, `--queue-bypass` / nft `bypass`)
     * or drop them (false). The reader sets the matching behaviour for a full queue.
     */
    failOpen: z.boolean(),
    /** Packets of a flow (both directions together, handshake included) that go to the queue (default 24). */
    packets: z.number().int().min(1).max(1_000_000).default(DEFAULT_PACKETS),
    /** Answer later TCP packets of a bad flow with a reset (default false: drop silently). */
    resetBad: z.boolean().default(false),
    /** Spread over the queues by CPU instead of by flow hash (breaks per-flow state across queues; default false). */
    cpuFanout: z.boolean().default(false),
    /**
     * Let TCP packets that carry no payload and are not a SYN (pure ACKs, window updates, bare
     * FIN/RST) pass without queueing them (default false): they cannot change a verdict, and on
     * short connections they are most of what crosses userspace. SYN and SYN+ACK still go (flow
     * direction, stream start). Exact: the IP length must equal
     * the IP + TCP header lengths (IPv4 without options, IPv6 without extension headers; anything
     * else is queued as before). Needs the xtables `u32` match in the xtables form.
     */
    skipPayloadless: z.boolean().default(false),
    /**
     * With `skipPayloadless`: let SYN+ACKs without payload pass too (default false); a SYN+ACK
     * that carries data is still queued. The client's SYN still goes (it tells the flow's
     * direction and starts a new flow on a reused 5-tuple); the server's stream start is taken
     * from the client's acknowledgment number instead (src/dpi/classifiers/engine.ts).
     */
    skipSynAck: z.boolean().default(false),
    /**
     * With `skipPayloadless`: let every TCP packet without payload pass, the client's SYN too
     * (default false): a flow's first queued packet is then its first payload. Only for readers
     * that receive each packet's conntrack attributes (direction and connection id, NFQUEUE with
     * NFQA_CFG_F_CONNTRACK): the engine orients the flow and tells a new connection on a reused
     * 5-tuple apart with them instead of the SYN. A peer-cache hit then stops the connection at its
     * first payload rather than at its SYN (no payload crosses either way).
     */
    skipSyn: z.boolean().default(false),
    /** Marks shared with the queue readers (default {@link DEFAULT_FLOW_MARKS}). */
    marks: FlowMarksSchema.default(DEFAULT_FLOW_MARKS),
    /**
     * Settled services (default off): sets of server endpoints (address . protocol . port, with a
     * timeout) whose new connections are marked benign before the queue sees them. The queue reader
     * adds a service once a flow to it was identified as a known protocol that is not BitTorrent
     * (see {@link settleElements}). In both forms the sets and the marking chains live in the nft
     * table `netfence_<name>` (base chains at priority -1, before the steering at 0).
     */
    settle: z
      .object({
        /** Maximum elements per family (nft set `size`). */
        size: z.number().int().min(1).max(1 << 24),
      })
      .strict()
      .optional(),
    /** Whether the kernel has the nft `queue` statement (capability report `nft.features.queue`). */
    nftQueue: z.boolean(),
  })
  .strict()
  .refine((o) => !o.skipSynAck || o.skipPayloadless, { path: ['skipSynAck'], message: 'needs skipPayloadless: only SYN+ACKs without payload pass unqueued' })
  .refine((o) => !o.skipSyn || o.skipPayloadless, { path: ['skipSyn'], message: 'needs skipPayloadless: only SYNs without payload pass unqueued' });

/** Options of {@link compileSteering} (defaults in {@link SteeringSchema}). */
export type SteeringOptions = z.input<typeof SteeringSchema>;

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const uniq = <T>(a: T[]): T[] => [...new Set(a)];

/** Names the rules use, derived from the instance name. */
export function steeringNames(name = 'dpi'): { chain: string; table: string } {
  return { chain: `NETFENCE-${name.toUpperCase()}`.slice(0, 28), table: `netfence_${name}` };
}

/** Settled-service set of a family (see {@link SteeringSchema} `settle`). */
export const SETTLE_SETS = { 4: 'settled4', 6: 'settled6' } as const;

/** A server endpoint whose new connections the steering lets pass as benign. */
export interface SettledService {
  family: 4 | 6;
  transport: 'tcp' | 'udp';
  addr: string;
  port: number;
}

/** One string per service (transport, address, port): the key workers and the main process track services by. */
export function serviceKey(s: { transport: string; addr: string; port: number }): string {
  return `${s.transport} ${s.addr} ${s.port}`;
}

/** `ct mark set ct mark & ~mask | value`: the verdict bits of the conntrack mark set to `value`, the others kept. */
function setCtMark(m: FlowMarks, value: number): Statement {
  return mangle(ct('mark'), or(and(ct('mark'), ~m.mask >>> 0), value));
}

/**
 * The nft commands that add (with a timeout, seconds) or delete settled services
 * in a blocker's table `netfence_<name>` (pure). Deleting an absent element is
 * an error in nft: delete only what was added and has not expired.
 */
export function settleElements(name: string, verb: 'add' | 'delete', services: readonly SettledService[], timeoutS?: number): Command[] {
  const t: TableId = { family: 'inet', table: steeringNames(name).table };
  const out: Command[] = [];
  for (const fam of [4, 6] as const) {
    const items = services
      .filter((v) => v.family === fam)
      .map((v) => {
        const key = concat(v.addr, v.transport, v.port);
        return verb === 'add' && timeoutS ? elem(key, { timeout: timeoutS }) : key;
      });
    if (items.length) out.push(cmd[verb](elements(t, SETTLE_SETS[fam], items)));
  }
  return out;
}

/**
 * The settled-service sets and the base chains (priority -1, before the
 * steering) that mark a new connection to a listed service benign in
 * conntrack, so that the steering's "benign flow bypasses the queue" lets all
 * of it pass. Without its own `add table` (the caller adds the table).
 */
function settleCommands(o: { table: string; hooks: SteeringHook[]; families: ('ipv4' | 'ipv6')[]; protocols: ('tcp' | 'udp')[]; marks: FlowMarks; size: number }): Command[] {
  const t: TableId = { family: 'inet', table: o.table };
  const m = o.marks;
  const out: Command[] = [];
  for (const fam of o.families)
    out.push(cmd.add(set(t, SETTLE_SETS[fam === 'ipv4' ? 4 : 6], [fam === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr', 'inet_proto', 'inet_service'], { flags: ['timeout'], size: o.size })));
  const protoSet: Expression = o.protocols.length === 1 ? (o.protocols[0] as string) : anonSet(o.protocols);
  for (const hook of o.hooks) {
    const chainName = `settle_${hook}`;
    out.push(cmd.add(chain(t, chainName, { type: 'filter', hook, prio: -1, policy: 'accept' })));
    for (const fam of o.families) {
      const key = concat(payload(fam === 'ipv4' ? 'ip' : 'ip6', 'daddr'), meta('l4proto'), payload('th', 'dport'));
      out.push(
        cmd.add(
          rule(
            t,
            chainName,
            [
              eq(meta('nfproto'), fam),
              eq(meta('l4proto'), protoSet),
              match(ct('state'), 'in', 'new'),
              eq(key, setRef(SETTLE_SETS[fam === 'ipv4' ? 4 : 6])),
              counter(),
              setCtMark(m, m.benign),
            ],
            { comment: 'netfence dpi: settled service, not queued' },
          ),
        ),
      );
    }
  }
  return out;
}

/** What both steering forms (xtables text, nft commands) are built from. */
export interface SteeringCommon {
  protocols: ('tcp' | 'udp')[];
  queues: [number, number];
  failOpen: boolean;
  packets: number;
  resetBad: boolean;
  cpuFanout: boolean;
  marks: FlowMarks;
}

/** The iptables-restore text for one family (the chain, its rules, the jumps). */
export function xtablesRules(o: SteeringCommon & {
  chain: string;
  hooks: SteeringHook[];
  /** See {@link SteeringSchema} `skipPayloadless`; the family decides the header layout. */
  skipPayloadless?: 'ipv4' | 'ipv6' | undefined;
  /** See {@link SteeringSchema} `skipSynAck`. */
  skipSynAck?: boolean | undefined;
  /** See {@link SteeringSchema} `skipSyn`. */
  skipSyn?: boolean | undefined;
}): string {
  const { chain, marks: m } = o;
  const mm = (v: number): string => `${hex(v)}/${hex(m.mask)}`;
  const [first, count] = o.queues;
  const target = ['-j NFQUEUE', count > 1 ? `--queue-balance ${first}:${first + count - 1}` : `--queue-num ${first}`];
  if (o.failOpen) target.push('--queue-bypass');
  if (count > 1 && o.cpuFanout) target.push('--queue-cpu-fanout');
  const lines = [
    '*filter',
    `:${chain} - [0:0]`,
    `-A ${chain} -m comment --comment "netfence dpi: verdict bad to conntrack" -m mark --mark ${mm(m.bad)} -j CONNMARK --set-xmark ${mm(m.bad)}`,
    `-A ${chain} -m comment --comment "netfence dpi: verdict benign to conntrack" -m mark --mark ${mm(m.benign)} -j CONNMARK --set-xmark ${mm(m.benign)}`,
    `-A ${chain} -m comment --comment "netfence dpi: clear verdict mark" -m mark ! --mark 0x0/${hex(m.mask)} -j MARK --set-xmark 0x0/${hex(m.mask)}`,
    `-A ${chain} -m comment --comment "netfence dpi: benign flow bypasses the queue" -m connmark --mark ${mm(m.benign)} -j RETURN`,
  ];
  if (o.resetBad) lines.push(`-A ${chain} -p tcp -m comment --comment "netfence dpi: bad flow, reset" -m connmark --mark ${mm(m.bad)} -j REJECT --reject-with tcp-reset`);
  lines.push(`-A ${chain} -m comment --comment "netfence dpi: bad flow, drop" -m connmark --mark ${mm(m.bad)} -j DROP`);
  if (o.skipPayloadless && o.protocols.includes('tcp'))
    for (let doff = 5; doff <= 15; doff++) {
      // total length = IP header + TCP header exactly: no payload (u32: IPv4 IHL 5 / IPv6 next header TCP, then the data offset)
      const [len, u32] = o.skipPayloadless === 'ipv4' ? [20 + 4 * doff, `0>>24&0xF=5&&32>>28=${doff}`] : [40 + 4 * doff, `4>>8&0xFF=6&&52>>28=${doff}`];
      // not a SYN; with skipSynAck: not a bare SYN (a SYN+ACK without payload passes too); with skipSyn: any flags
      const flags = o.skipSyn ? '' : o.skipSynAck ? '! --tcp-flags SYN,ACK SYN ' : '--tcp-flags SYN NONE ';
      lines.push(`-A ${chain} -p tcp -m comment --comment "netfence dpi: no payload, not queued" ${flags}-m length --length ${len} -m u32 --u32 "${u32}" -j RETURN`);
    }
  for (const p of o.protocols)
    lines.push(`-A ${chain} -p ${p} -m comment --comment "netfence dpi: first packets to the queue" -m connbytes --connbytes 0:${o.packets} --connbytes-dir both --connbytes-mode packets ${target.join(' ')}`);
  for (const h of o.hooks) lines.push(`-I ${h.toUpperCase()} 1 -j ${chain}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

type QueueFlag = (typeof QUEUE_FLAGS)[number];

function nftExpr(o: SteeringCommon & {
  chainNames: Map<SteeringHook, string>;
  table: string;
  families: ('ipv4' | 'ipv6')[];
  skipPayloadless: boolean;
  skipSynAck: boolean;
  skipSyn: boolean;
}): Command[] {
  const m = o.marks;
  const t: TableId = { family: 'inet', table: o.table };
  const notMask = ~m.mask >>> 0;
  const masked = (e: Expression, v: number): Statement => eq(and(e, m.mask), v);
  const setCt = (v: number): Statement => setCtMark(m, v);
  const clearMeta = mangle(meta('mark'), and(meta('mark'), notMask));
  const famMatch: Statement[] = o.families.length === 2 ? [] : [eq(meta('nfproto'), o.families[0] as string)];
  const [first, count] = o.queues;
  const flags: QueueFlag[] = [];
  if (o.failOpen) flags.push('bypass');
  if (count > 1 && o.cpuFanout) flags.push('fanout');
  const queue: QueueStmt = { queue: { num: count > 1 ? range(first, first + count - 1) : first, ...(flags.length ? { flags: flags.length === 1 ? flags[0] : flags } : {}) } };
  const protoSet: Expression = o.protocols.length === 1 ? (o.protocols[0] as string) : anonSet(o.protocols);
  const out: Command[] = [cmd.add(table(t.family, t.table))];
  for (const [hook, chainName] of o.chainNames) {
    out.push(cmd.add(chain(t, chainName, { type: 'filter', hook, prio: 0, policy: 'accept' })));
    // Every rule counts (as the xtables form does): stats, tests and `netfence status` read them by comment.
    const counted = (comment: string, expr: Statement[]): Command => {
      const at = expr.findIndex((e) => !('match' in e));
      return cmd.add(rule(t, chainName, [...expr.slice(0, at), counter(), ...expr.slice(at)], { comment }));
    };
    out.push(counted('netfence dpi: verdict bad to conntrack', [...famMatch, masked(meta('mark'), m.bad), setCt(m.bad), clearMeta]));
    out.push(counted('netfence dpi: verdict benign to conntrack', [...famMatch, masked(meta('mark'), m.benign), setCt(m.benign), clearMeta]));
    out.push(counted('netfence dpi: benign flow bypasses the queue', [...famMatch, masked(ct('mark'), m.benign), accept()]));
    if (o.resetBad) out.push(counted('netfence dpi: bad flow, reset', [...famMatch, eq(meta('l4proto'), 'tcp'), masked(ct('mark'), m.bad), reject('tcp reset')]));
    out.push(counted('netfence dpi: bad flow, drop', [...famMatch, masked(ct('mark'), m.bad), drop()]));
    if (o.skipPayloadless && o.protocols.includes('tcp'))
      for (const fam of o.families)
        for (let doff = 5; doff <= 15; doff++) {
          // total length = IP header + TCP header exactly: no payload; not a SYN (mask 0x02)
          const hdr: Statement[] =
            fam === 'ipv4'
              ? [eq(meta('nfproto'), 'ipv4'), eq(meta('l4proto'), 'tcp'), eq(payload('ip', 'hdrlength'), 5), eq(payload('ip', 'length'), 20 + 4 * doff)]
              : [eq(meta('nfproto'), 'ipv6'), eq(payload('ip6', 'nexthdr'), 'tcp'), eq(payload('ip6', 'length'), 4 * doff)];
          // not a SYN (flags & syn == 0); with skipSynAck: not a bare SYN (flags & (syn|ack) != syn); with skipSyn: any flags
          const notSyn = o.skipSyn ? [] : [o.skipSynAck ? match(and(payload('tcp', 'flags'), 0x12), '!=', 0x02) : eq(and(payload('tcp', 'flags'), 0x02), 0)];
          out.push(counted('netfence dpi: no payload, not queued', [...hdr, eq(payload('tcp', 'doff'), doff), ...notSyn, accept()]));
        }
    out.push(counted('netfence dpi: first packets to the queue', [...famMatch, eq(meta('l4proto'), protoSet), match(ct('packets'), '<=', o.packets), queue]));
  }
  return out;
}

/**
 * Compile the steering rules into a {@link Plan} (nothing is touched).
 * `nftQueue` chooses the form: the nft `queue` statement where the kernel has
 * it, else the xtables NFQUEUE target via iptables-nft; the plan's
 * `decisions` say which and why, `queue` records the binding.
 */
export function compileSteering(options: SteeringOptions): Result<Plan, ValidationError> {
  const v = SteeringSchema.safeParse(options);
  if (!v.success) return Err(fromZodIssues('steering options', v.error.issues));
  const o = v.data;
  const { name, packets, marks } = o;
  const { chain, table } = steeringNames(name);
  const hooks = uniq<SteeringHook>(o.hooks);
  const families = uniq<'ipv4' | 'ipv6'>(o.families);
  const protocols = uniq<'tcp' | 'udp'>(o.protocols);
  const common = { queues: o.queues, failOpen: o.failOpen, packets, resetBad: o.resetBad, cpuFanout: o.cpuFanout, marks, protocols };
  const skip = o.skipPayloadless;
  const skipSynAck = o.skipSynAck;
  const skipSyn = o.skipSyn;
  const plan = emptyPlan(o.owner, o.netns);
  const via = o.nftQueue ? 'nft' : 'xtables';
  plan.queue.push({ queue: o.queues[0], count: o.queues[1], via, failOpen: o.failOpen });
  plan.decisions.push({
    subject: 'dpi steering',
    chosen: o.nftQueue ? 'nft queue statement' : 'xtables NFQUEUE target via iptables-nft',
    reason: o.nftQueue ? 'the kernel has the nft queue expression' : 'the kernel lacks the nft queue expression (CONFIG_NFT_QUEUE); the xtables target runs through nft compat',
  });
  plan.decisions.push({
    subject: 'dpi fail mode',
    chosen: o.failOpen ? 'fail-open' : 'fail-closed',
    reason: o.failOpen
      ? 'with no reader bound the steered packets are accepted (queue bypass); the reader accepts when its queue is full'
      : 'with no reader bound the steered packets are dropped; the reader drops when its queue is full',
  });
  if (skip && protocols.includes('tcp'))
    plan.decisions.push({
      subject: 'dpi tcp handshake',
      chosen: skipSyn ? 'not queued' : skipSynAck ? "the client's SYN queued" : 'SYN and SYN+ACK queued',
      reason: skipSyn
        ? 'the readers receive each packet with its conntrack direction and id: a flow starts at its first payload'
        : 'the readers see no conntrack attributes: the SYN orients a flow and tells a new connection on a reused 5-tuple',
    });
  plan.decisions.push({
    subject: 'dpi settled services',
    chosen: o.settle ? 'on' : 'off',
    reason: o.settle
      ? `new connections to a server endpoint whose earlier flow was identified as a known protocol other than BitTorrent pass as benign, until the entry times out (nft sets ${families.map((f) => SETTLE_SETS[f === 'ipv4' ? 4 : 6]).join(', ')} in table inet ${table}, at most ${o.settle.size} per family)`
      : 'every new connection is inspected',
  });
  const settleCmds = o.settle ? settleCommands({ table, hooks, families, protocols, marks, size: o.settle.size }) : [];
  if (o.nftQueue) {
    plan.tables.push({ family: 'inet', name: table });
    const chainNames = new Map<SteeringHook, string>(hooks.map((h) => [h, `dpi_${h}`]));
    plan.nft.push(...nftExpr({ ...common, table, chainNames, families, skipPayloadless: skip, skipSynAck, skipSyn }), ...settleCmds);
    // `ct packets` needs conntrack accounting (xt connbytes turns it on by itself; nft does not).
    plan.steps.push({
      id: `dpi:${name}:ct-acct`,
      description: 'turn on conntrack accounting (needed by `ct packets`; left on when undone, other users may rely on it)',
      do: [{ kind: 'write', path: '/proc/sys/net/netfilter/nf_conntrack_acct', data: '1' }],
      undo: [],
    });
    return Ok(plan);
  }
  if (settleCmds.length) {
    // the xtables form's rules stay in iptables-nft's filter table; the settled services in an nft table of their own
    plan.tables.push({ family: 'inet', name: table });
    plan.nft.push(cmd.add({ table: { family: 'inet', name: table } }), ...settleCmds);
  }
  for (const fam of families) {
    const tool = fam === 'ipv4' ? 'iptables-nft' : 'ip6tables-nft';
    const text = xtablesRules({ ...common, chain, hooks, skipPayloadless: skip ? fam : undefined, skipSynAck, skipSyn });
    const undo: Action[] = [
      // a jump may be missing when the step failed half-way (chain created, restore refused): not an error
      ...hooks.map((h): Action => ({ kind: 'exec', argv: [tool, '-t', 'filter', '-D', h.toUpperCase(), '-j', chain], ignoreFailure: true })),
      { kind: 'exec', argv: [tool, '-t', 'filter', '-F', chain] },
      { kind: 'exec', argv: [tool, '-t', 'filter', '-X', chain] },
    ];
    const step: Step = {
      id: `dpi:${name}:xtables:${fam}`,
      description: `${fam}: chain ${chain} in table filter (iptables-nft) steering the first ${packets} packets of each ${protocols.join('/')} flow to queue ${o.queues[0]}${o.queues[1] > 1 ? `..${o.queues[0] + o.queues[1] - 1}` : ''}, jumped to from ${hooks.join(', ')}`,
      // `-N` first: it fails with "Chain already exists" when another blocker of
      // the same name steers in this namespace, instead of silently taking over
      // its chain (restore --noflush would flush and refill it).
      do: [
        { kind: 'exec', argv: [tool, '-t', 'filter', '-N', chain] },
        { kind: 'exec', argv: [`${tool}-restore`, '--noflush'], input: text },
      ],
      undo,
    };
    plan.steps.push(step);
  }
  return Ok(plan);
}
