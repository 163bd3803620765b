/**
 * Expressions of the libnftables JSON format: immediates, lists, payload,
 * meta, ct, sets, maps, concatenations, binary operations, verdicts, ...
 * Modelled on nft's own JSON parser (src/parser_json.c, `json_parse_expr`).
 * @module
 */
import { z } from 'zod';
import {
  type Known,
  type OpaqueNode,
  type SchemaMode,
  UInt,
  Int,
  keyed,
  select,
  known,
  obj,
  oneOrMany,
} from './common.js';

/** Meta keys nft knows (`meta_key_parse`). */
export const META_KEYS = [
  'length', 'nfproto', 'l4proto', 'protocol', 'priority', 'mark', 'iif', 'iifname', 'iiftype', 'oif', 'oifname',
  'oiftype', 'skuid', 'skgid', 'nftrace', 'rtclassid', 'ibrname', 'obrname', 'ibriport', 'obriport', 'ibrvproto',
  'ibrpvid', 'ibrhwaddr', 'pkttype', 'cpu', 'iifgroup', 'oifgroup', 'cgroup', 'random', 'secpath', 'ipsec',
  'iifkind', 'oifkind', 'time', 'day', 'hour', 'secmark', 'sdif', 'sdifname', 'broute',
] as const;
/** A meta key. */
export type MetaKey = Known<(typeof META_KEYS)[number]>;

/** Conntrack keys nft knows (`ct_templates`). */
export const CT_KEYS = [
  'state', 'direction', 'status', 'mark', 'expiration', 'helper', 'l3proto', 'saddr', 'daddr', 'protocol',
  'proto-src', 'proto-dst', 'label', 'bytes', 'packets', 'avgpkt', 'zone', 'event', 'ip saddr', 'ip daddr',
  'ip6 saddr', 'ip6 daddr', 'secmark', 'id',
] as const;
/** A conntrack key. */
export type CtKey = Known<(typeof CT_KEYS)[number]>;

/** Protocols of payload expressions (`proto_lookup_byname`). */
export const PAYLOAD_PROTOCOLS = [
  'ether', 'vlan', 'arp', 'ip', 'icmp', 'igmp', 'ip6', 'icmpv6', 'ah', 'esp', 'comp', 'udp', 'udplite', 'tcp',
  'dccp', 'sctp', 'th', 'vxlan', 'gre', 'gretap', 'geneve',
] as const;
/** A payload protocol. */
export type PayloadProtocol = Known<(typeof PAYLOAD_PROTOCOLS)[number]>;
/** Tunnel (outer) protocols of inner payload expressions. */
export const INNER_PROTOCOLS = ['geneve', 'gre', 'gretap', 'vxlan'] as const;
/** Raw payload bases: link layer, network, transport, inner header. */
export const PAYLOAD_BASES = ['ll', 'nh', 'th', 'ih'] as const;
/** IPv6 extension headers (`exthdr_lookup_byname`). */
export const EXTHDR_NAMES = ['hbh', 'rt', 'rt0', 'rt2', 'srh', 'rt4', 'frag', 'dst', 'mh'] as const;
/** TCP option names. */
export const TCP_OPTION_NAMES = [
  'eol', 'nop', 'maxseg', 'window', 'sack-perm', 'sack', 'sack0', 'sack1', 'sack2', 'sack3', 'timestamp', 'md5sig',
  'fastopen', 'mptcp',
] as const;
/** IPv4 option names. */
export const IP_OPTION_NAMES = ['lsrr', 'rr', 'ssrr', 'ra'] as const;
/** SCTP chunk names. */
export const SCTP_CHUNK_NAMES = [
  'data', 'init', 'init-ack', 'sack', 'heartbeat', 'heartbeat-ack', 'abort', 'shutdown', 'shutdown-ack', 'error',
  'cookie-echo', 'cookie-ack', 'ecne', 'cwr', 'shutdown-complete', 'asconf-ack', 'forward-tsn', 'asconf',
] as const;
/** fib results. `check` means "exists" (nft 1.1). */
export const FIB_RESULTS = ['oif', 'oifname', 'type', 'check'] as const;
/** fib flags. */
export const FIB_FLAGS = ['saddr', 'daddr', 'mark', 'iif', 'oif'] as const;
/** Relational operators of `match` statements. `in` is the implicit operator (set membership, flag test). */
export const MATCH_OPS = ['==', '!=', '<', '>', '<=', '>=', 'in', '!'] as const;
/** A relational operator. */
export type MatchOp = (typeof MATCH_OPS)[number];
/** Binary operators, each an expression kind of its own: `{"&": [a, b]}`. */
export const BINOPS = ['|', '^', '&', '>>', '<<'] as const;
/** A binary operator. */
export type Binop = (typeof BINOPS)[number];
/** Verdict kinds. */
export const VERDICTS = ['accept', 'drop', 'continue', 'return', 'jump', 'goto'] as const;
/** Every expression kind netfence models. */
export const EXPRESSION_KINDS = [
  'concat', 'set', 'map', 'prefix', 'range', 'payload', 'exthdr', 'tcp option', 'ip option', 'sctp chunk',
  'dccp option', 'meta', 'osf', 'ipsec', 'socket', 'rt', 'ct', 'numgen', 'tunnel', 'jhash', 'symhash', 'fib',
  ...BINOPS, ...VERDICTS, 'elem',
] as const;
/** An expression kind. */
export type ExpressionKind = (typeof EXPRESSION_KINDS)[number];

// ---------------------------------------------------------------------------
// Leaf bodies (no recursion): their types are inferred from the schemas.
// ---------------------------------------------------------------------------

/** The raw form (`base`/`offset`/`len`) when `base` is present, else the named form: errors then name the right fields. */
function rawOr<A, B>(raw: z.ZodType<A>, named: z.ZodType<B>): z.ZodType<A | B> {
  return select<A | B>((v) => (typeof v === 'object' && v !== null && 'base' in v ? raw : named));
}

function leafBodies(mode: SchemaMode) {
  const k = <const T extends string>(list: readonly T[], what: string) => known(mode, list, what);
  return {
    payload: rawOr(
      obj(mode, { base: k(PAYLOAD_BASES, 'payload base'), offset: UInt, len: z.number().int().min(1).max(128 * 8) }),
      obj(mode, { protocol: k(PAYLOAD_PROTOCOLS, 'payload protocol'), field: z.string().min(1), tunnel: k(INNER_PROTOCOLS, 'tunnel protocol').optional() }),
    ),
    exthdr: obj(mode, { name: k(EXTHDR_NAMES, 'extension header'), field: z.string().min(1).optional(), offset: UInt.optional() }),
    'tcp option': rawOr(
      obj(mode, { base: z.number().int().min(0).max(255), offset: UInt, len: UInt }),
      obj(mode, { name: k(TCP_OPTION_NAMES, 'tcp option'), field: z.string().min(1).optional() }),
    ),
    'ip option': obj(mode, { name: k(IP_OPTION_NAMES, 'ip option'), field: z.string().min(1).optional() }),
    'sctp chunk': obj(mode, { name: k(SCTP_CHUNK_NAMES, 'sctp chunk'), field: z.string().min(1).optional() }),
    'dccp option': obj(mode, { type: z.number().int().min(0).max(255) }),
    meta: obj(mode, { key: k(META_KEYS, 'meta key') }),
    osf: obj(mode, { key: k(['name', 'version'], 'osf key'), ttl: k(['loose', 'skip'], 'osf ttl').optional() }),
    ipsec: obj(mode, {
      key: k(['reqid', 'spi', 'saddr', 'daddr'], 'ipsec key'),
      family: k(['ip', 'ip6'], 'family').optional(),
      dir: k(['in', 'out'], 'ipsec direction').optional(),
      spnum: z.number().int().min(0).max(255).optional(),
    }),
    socket: obj(mode, { key: k(['transparent', 'mark', 'wildcard', 'cgroupv2'], 'socket key'), level: UInt.optional() }),
    rt: obj(mode, { key: k(['classid', 'nexthop', 'mtu', 'ipsec'], 'rt key'), family: k(['ip', 'ip6'], 'family').optional() }),
    ct: obj(mode, {
      key: k(CT_KEYS, 'ct key'),
      dir: k(['original', 'reply'], 'ct direction').optional(),
      family: k(['ip', 'ip6'], 'family').optional(),
    }),
    numgen: obj(mode, { mode: k(['inc', 'random'], 'numgen mode'), mod: UInt, offset: UInt.optional() }),
    tunnel: obj(mode, { key: k(['path', 'id'], 'tunnel key') }),
    symhash: obj(mode, { mod: UInt, offset: UInt.optional() }),
    fib: obj(mode, { result: k(FIB_RESULTS, 'fib result'), flags: oneOrMany(k(FIB_FLAGS, 'fib flag')).optional() }),
    verdict: z.null(),
    target: obj(mode, { target: z.string().min(1) }),
  };
}

/**
 * Body schemas of the leaf expressions (the object under `payload`, `meta`,
 * `ct`, ...), strict form; the `*ExprBody` types are inferred from these.
 */
export const STRICT_LEAF_BODIES = leafBodies('strict');

/** Body of {@link PayloadExpr} (the object under `payload`). */
export type PayloadExprBody = z.output<typeof STRICT_LEAF_BODIES.payload>;
/** Raw (`@base,offset,len`) or named (`tcp dport`) payload; `tunnel` selects the inner header of a tunnel. */
export type PayloadExpr = { payload: PayloadExprBody };
/** Body of {@link ExthdrExpr} (the object under `exthdr`). */
export type ExthdrExprBody = z.output<typeof STRICT_LEAF_BODIES.exthdr>;
/** IPv6 extension header field, or its presence when `field` is absent. */
export type ExthdrExpr = { exthdr: ExthdrExprBody };
/** Body of {@link TcpOptionExpr} (the object under `tcp option`). */
export type TcpOptionExprBody = z.output<(typeof STRICT_LEAF_BODIES)['tcp option']>;
/** TCP option field (named or raw), or its presence when `field` is absent. */
export type TcpOptionExpr = { 'tcp option': TcpOptionExprBody };
/** Body of {@link IpOptionExpr} (the object under `ip option`). */
export type IpOptionExprBody = z.output<(typeof STRICT_LEAF_BODIES)['ip option']>;
/** IPv4 option field, or its presence. */
export type IpOptionExpr = { 'ip option': IpOptionExprBody };
/** Body of {@link SctpChunkExpr} (the object under `sctp chunk`). */
export type SctpChunkExprBody = z.output<(typeof STRICT_LEAF_BODIES)['sctp chunk']>;
/** SCTP chunk field, or its presence. */
export type SctpChunkExpr = { 'sctp chunk': SctpChunkExprBody };
/** Body of {@link DccpOptionExpr} (the object under `dccp option`). */
export type DccpOptionExprBody = z.output<(typeof STRICT_LEAF_BODIES)['dccp option']>;
/** DCCP option presence by type. */
export type DccpOptionExpr = { 'dccp option': DccpOptionExprBody };
/** Body of {@link MetaExpr} (the object under `meta`). */
export type MetaExprBody = z.output<typeof STRICT_LEAF_BODIES.meta>;
/** Packet meta information (`meta mark`, `iifname`, ...). */
export type MetaExpr = { meta: MetaExprBody };
/** Body of {@link OsfExpr} (the object under `osf`). */
export type OsfExprBody = z.output<typeof STRICT_LEAF_BODIES.osf>;
/** Passive OS fingerprint. */
export type OsfExpr = { osf: OsfExprBody };
/** Body of {@link IpsecExpr} (the object under `ipsec`). */
export type IpsecExprBody = z.output<typeof STRICT_LEAF_BODIES.ipsec>;
/** IPsec (xfrm) state data. */
export type IpsecExpr = { ipsec: IpsecExprBody };
/** Body of {@link SocketExpr} (the object under `socket`). */
export type SocketExprBody = z.output<typeof STRICT_LEAF_BODIES.socket>;
/** Socket lookup (`socket transparent`). */
export type SocketExpr = { socket: SocketExprBody };
/** Body of {@link RtExpr} (the object under `rt`). */
export type RtExprBody = z.output<typeof STRICT_LEAF_BODIES.rt>;
/** Routing data (`rt classid`, `rt ip nexthop`). */
export type RtExpr = { rt: RtExprBody };
/** Body of {@link CtExpr} (the object under `ct`). */
export type CtExprBody = z.output<typeof STRICT_LEAF_BODIES.ct>;
/** Conntrack data (`ct state`, `ct original saddr`). */
export type CtExpr = { ct: CtExprBody };
/** Body of {@link NumgenExpr} (the object under `numgen`). */
export type NumgenExprBody = z.output<typeof STRICT_LEAF_BODIES.numgen>;
/** Number generator. */
export type NumgenExpr = { numgen: NumgenExprBody };
/** Body of {@link TunnelExpr} (the object under `tunnel`). */
export type TunnelExprBody = z.output<typeof STRICT_LEAF_BODIES.tunnel>;
/** Tunnel metadata. */
export type TunnelExpr = { tunnel: TunnelExprBody };
/** Body of {@link SymhashExpr} (the object under `symhash`). */
export type SymhashExprBody = z.output<typeof STRICT_LEAF_BODIES.symhash>;
/** Symmetric hash. */
export type SymhashExpr = { symhash: SymhashExprBody };
/** Body of {@link FibExpr} (the object under `fib`). */
export type FibExprBody = z.output<typeof STRICT_LEAF_BODIES.fib>;
/** FIB lookup. */
export type FibExpr = { fib: FibExprBody };
/** A verdict without target. */
export type SimpleVerdictExpr = { accept: null } | { drop: null } | { continue: null } | { return: null };
/** A verdict with a target chain. */
export type JumpVerdictExpr = { jump: { target: string } } | { goto: { target: string } };
/** Any verdict (as expression: map data, vmap elements). */
export type VerdictExpr = SimpleVerdictExpr | JumpVerdictExpr;

// ---------------------------------------------------------------------------
// Recursive expressions: types written by hand, schemas annotated with them.
// ---------------------------------------------------------------------------

/** A literal: string (symbols, addresses, `@set` references, `*` catch-all), integer or boolean. */
export type Immediate = string | number | boolean;
/** A list expression (only on the right-hand side or as a statement argument). */
export type ListExpr = Expression[];
/** Concatenation `a . b . c`. */
export interface ConcatExpr { concat: Expression[] }
/** One item of an anonymous set: an element, or a `[key, value]` mapping for maps. */
export type SetItem = Expression | [Expression, Expression];
/** Anonymous set `{ a, b }` (or a single immediate, or `"@name"`). */
export interface SetExpr { set: SetItem[] | Immediate }
/** Map lookup `key map data`. */
export interface MapExpr { map: { key: Expression; data: Expression } }
/** Prefix `addr/len`. */
export interface PrefixExpr { prefix: { addr: Expression; len: number } }
/** Range `low-high`. */
export interface RangeExpr { range: [Expression, Expression] }
/** Jenkins hash of an expression. */
export interface JhashExpr { jhash: { mod: number; offset?: number | undefined; expr: Expression; seed?: number | undefined } }
/** Binary operation; more than two operands chain left to right. */
export type BinopExpr = { [K in Binop]: { [P in K]: Expression[] } }[Binop];
/**
 * A set element with properties. In listings nft adds stateful statements
 * (`counter`, `quota`, `limit`, `ct count`, `last`) as further keys.
 */
export interface ElemExpr {
  elem: {
    val: Expression;
    timeout?: number | undefined;
    expires?: number | undefined;
    comment?: string | undefined;
    [stateful: string]: unknown;
  };
}

/** Any expression. {@link OpaqueNode} only appears in tolerant parses. */
export type Expression =
  | Immediate
  | ListExpr
  | ConcatExpr
  | SetExpr
  | MapExpr
  | PrefixExpr
  | RangeExpr
  | PayloadExpr
  | ExthdrExpr
  | TcpOptionExpr
  | IpOptionExpr
  | SctpChunkExpr
  | DccpOptionExpr
  | MetaExpr
  | OsfExpr
  | IpsecExpr
  | SocketExpr
  | RtExpr
  | CtExpr
  | NumgenExpr
  | TunnelExpr
  | JhashExpr
  | SymhashExpr
  | FibExpr
  | BinopExpr
  | VerdictExpr
  | ElemExpr
  | OpaqueNode;

/** The expression schemas of one mode. */
export interface ExpressionSchemas {
  /** Any expression. */
  Expression: z.ZodType<Expression>;
  /** Items of an anonymous set / set `elem` property. */
  SetItems: z.ZodType<SetItem[] | Immediate>;
  /** A set/map key type: a datatype name, a concatenation of names, or `{"typeof": expr}`. */
  SetType: z.ZodType<string | string[] | { typeof: Expression }>;
}

/** Build the expression schemas for a mode. */
export function makeExpressionSchemas(mode: SchemaMode): ExpressionSchemas {
  const L = leafBodies(mode);
  const Immediate: z.ZodType<Immediate> = z.union([z.string(), z.number(), z.boolean()]);
  const dispatch = keyed<Expression>(() => bodies, { what: 'expression', opaque: mode === 'tolerant' });
  const List: z.ZodType<ListExpr> = z.lazy(() => z.array(Expression));
  const Expression: z.ZodType<Expression> = select<Expression>((v, ctx) => {
    if (typeof v === 'string' || typeof v === 'boolean') return Immediate;
    if (typeof v === 'number') return Int;
    if (Array.isArray(v)) return List;
    if (v === null || typeof v !== 'object') {
      ctx.addIssue({ code: 'custom', message: `an expression must be a string, integer, boolean, array or object, got ${v === null ? 'null' : typeof v}`, input: v });
      return undefined;
    }
    return dispatch;
  });
  const Pair: z.ZodType<[Expression, Expression]> = z.tuple([Expression, Expression]);
  const SetItem: z.ZodType<SetItem> = select<SetItem>((v) => (Array.isArray(v) && v.length === 2 ? Pair : Expression));
  const SetItems: z.ZodType<SetItem[] | Immediate> = select<SetItem[] | Immediate>((v) => (Array.isArray(v) ? z.array(SetItem) : Immediate));
  const operands = z.array(Expression).min(2, 'a binary operation needs at least two operands');
  const elemShape = {
    val: Expression,
    timeout: UInt.optional(),
    expires: UInt.optional(),
    comment: z.string().optional(),
  };
  const bodies: Record<string, z.ZodType> = {
    ...L,
    concat: z.array(Expression).min(1),
    set: SetItems,
    map: obj(mode, { key: Expression, data: Expression }),
    prefix: obj(mode, { addr: Expression, len: z.number().int().min(0).max(128) }),
    range: z.tuple([Expression, Expression]),
    jhash: obj(mode, { mod: UInt, offset: UInt.optional(), expr: Expression, seed: UInt.optional() }),
    elem: obj(mode, elemShape),
    accept: L.verdict,
    drop: L.verdict,
    continue: L.verdict,
    return: L.verdict,
    jump: L.target,
    goto: L.target,
    ...Object.fromEntries(BINOPS.map((op) => [op, operands])),
  };
  delete bodies.verdict;
  delete bodies.target;
  const SetType: z.ZodType<string | string[] | { typeof: Expression }> = z.union([
    z.string().min(1),
    z.array(z.string().min(1)).min(1),
    obj(mode, { typeof: Expression }),
  ]) as z.ZodType<string | string[] | { typeof: Expression }>;
  return { Expression, SetItems, SetType };
}

