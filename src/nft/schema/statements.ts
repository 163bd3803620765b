/**
 * Statements of the libnftables JSON format: the elements of a rule's `expr`
 * array. Modelled on nft's JSON parser (`json_parse_stmt`).
 * @module
 */
import { z } from 'zod';
import { type Known, type OpaqueNode, type SchemaMode, UInt, isPlainObject, keyed, known, obj, oneOrMany, select } from './common.js';
import { type Expression, type MatchOp, MATCH_OPS, type ExpressionSchemas } from './expressions.js';

/** Time units of limits. */
export const LIMIT_PER = ['second', 'minute', 'hour', 'day', 'week'] as const;
/** Byte units of limits and quotas. */
export const BYTE_UNITS = ['bytes', 'kbytes', 'mbytes'] as const;
/** Log levels. */
export const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug', 'audit'] as const;
/** Log flags. */
export const LOG_FLAGS = ['tcp sequence', 'tcp options', 'ip options', 'skuid', 'ether', 'all'] as const;
/** NAT flags. */
export const NAT_FLAGS = ['random', 'fully-random', 'persistent', 'netmap'] as const;
/** NAT type flags. */
export const NAT_TYPE_FLAGS = ['interval', 'prefix', 'concat'] as const;
/** Reject types. */
export const REJECT_TYPES = ['tcp reset', 'icmpx', 'icmp', 'icmpv6'] as const;
/** Queue flags. */
export const QUEUE_FLAGS = ['bypass', 'fanout'] as const;
/** Synproxy flags. */
export const SYNPROXY_FLAGS = ['timestamp', 'sack-perm'] as const;
/** Dynamic set operations. */
export const SET_OPS = ['add', 'update', 'delete'] as const;
/** Every statement kind netfence models (`xt` only in listings). */
export const STATEMENT_KINDS = [
  'accept', 'drop', 'continue', 'return', 'jump', 'goto', 'match', 'counter', 'mangle', 'quota', 'last', 'limit',
  'flow', 'fwd', 'notrack', 'dup', 'snat', 'dnat', 'masquerade', 'redirect', 'reject', 'set', 'map', 'log',
  'ct helper', 'ct timeout', 'ct expectation', 'meter', 'queue', 'ct count', 'tproxy', 'synproxy', 'reset',
  'secmark', 'tunnel', 'vmap', 'xt',
] as const;
/** A statement kind. */
export type StatementKind = (typeof STATEMENT_KINDS)[number];

/** `a op b`. */
export interface MatchStmt { match: { left: Expression; op: MatchOp; right: Expression } }
/** A verdict statement. */
export type VerdictStmt =
  | { accept: null } | { drop: null } | { continue: null } | { return: null }
  | { jump: { target: string } } | { goto: { target: string } };
/** Anonymous counter (`null` or with values), or a reference to a named counter (name or map expression). */
export interface CounterStmt { counter: null | { packets: number; bytes: number } | Expression }
/** `key set value` on payload, exthdr, meta, ct, tcp option, ip option, sctp chunk. */
export interface MangleStmt { mangle: { key: Expression; value: Expression } }
/** Anonymous quota or a reference to a named one. */
export interface QuotaStmt {
  quota:
    | { val: number; val_unit?: Known<(typeof BYTE_UNITS)[number]> | undefined; inv?: boolean | undefined; used?: number | undefined; used_unit?: Known<(typeof BYTE_UNITS)[number]> | undefined }
    | Expression;
}
/** Time since last match. */
export interface LastStmt { last: null | { used: number } }
/** Anonymous rate limit or a reference to a named one. */
export interface LimitStmt {
  limit:
    | {
        rate: number;
        per: Known<(typeof LIMIT_PER)[number]>;
        rate_unit?: Known<'packets' | (typeof BYTE_UNITS)[number]> | undefined;
        inv?: boolean | undefined;
        burst?: number | undefined;
        burst_unit?: Known<(typeof BYTE_UNITS)[number]> | undefined;
      }
    | Expression;
}
/** Offload to a flowtable: `flow add @ft`. */
export interface FlowStmt { flow: { op: 'add'; flowtable: string } }
/** Forward (netdev): `fwd [ip|ip6 to addr] device dev`. */
export interface FwdStmt { fwd: { dev: Expression; family?: 'ip' | 'ip6' | undefined; addr?: Expression | undefined } }
/** Disable conntrack. */
export interface NotrackStmt { notrack: null }
/** Duplicate the packet. */
export interface DupStmt { dup: { addr: Expression; dev?: Expression | undefined } }
/** Body of NAT statements. */
export interface NatBody {
  family?: 'ip' | 'ip6' | undefined;
  addr?: Expression | undefined;
  port?: Expression | undefined;
  flags?: Known<(typeof NAT_FLAGS)[number]> | Known<(typeof NAT_FLAGS)[number]>[] | undefined;
  type_flags?: Known<(typeof NAT_TYPE_FLAGS)[number]> | Known<(typeof NAT_TYPE_FLAGS)[number]>[] | undefined;
}
/** snat / dnat / masquerade / redirect. */
export type NatStmt = { snat: NatBody | null } | { dnat: NatBody | null } | { masquerade: NatBody | null } | { redirect: NatBody | null };
/** Reject. */
export interface RejectStmt { reject: null | { type?: Known<(typeof REJECT_TYPES)[number]> | undefined; expr?: string | number | undefined } }
/** Add/update/delete an element of a named set from the packet path. */
export interface SetStmt { set: { op: Known<(typeof SET_OPS)[number]>; elem: Expression; set: string; stmt?: Statement[] | undefined } }
/** Add/update/delete a mapping of a named map from the packet path. */
export interface MapStmt { map: { op: Known<(typeof SET_OPS)[number]>; elem: Expression; data: Expression; map: string; stmt?: Statement[] | undefined } }
/** Log. */
export interface LogStmt {
  log: null | {
    prefix?: string | undefined;
    group?: number | undefined;
    snaplen?: number | undefined;
    'queue-threshold'?: number | undefined;
    level?: Known<(typeof LOG_LEVELS)[number]> | undefined;
    flags?: Known<(typeof LOG_FLAGS)[number]> | Known<(typeof LOG_FLAGS)[number]>[] | undefined;
  };
}
/** Assign a named stateful object: `ct helper set "ftp"` and friends; the value is a name or a map expression. */
export type ObjectRefStmt =
  | { 'ct helper': Expression } | { 'ct timeout': Expression } | { 'ct expectation': Expression }
  | { secmark: Expression } | { tunnel: Expression };
/** Legacy meter (listed by old nft versions for dynamic sets). */
export interface MeterStmt { meter: { name: string; key: Expression; stmt: Statement; size?: number | undefined } }
/** Send to userspace via NFQUEUE. */
export interface QueueStmt { queue: null | { num?: Expression | undefined; flags?: Known<(typeof QUEUE_FLAGS)[number]> | Known<(typeof QUEUE_FLAGS)[number]>[] | undefined } }
/** Connection count limit. */
export interface CtCountStmt { 'ct count': { val: number; inv?: boolean | undefined } }
/** Transparent proxy. */
export interface TproxyStmt { tproxy: { family?: 'ip' | 'ip6' | undefined; addr?: Expression | undefined; port?: Expression | undefined } }
/** SYN proxy (anonymous, or a reference to a named one). */
export interface SynproxyStmt {
  synproxy: null | { mss?: number | undefined; wscale?: number | undefined; flags?: Known<(typeof SYNPROXY_FLAGS)[number]> | Known<(typeof SYNPROXY_FLAGS)[number]>[] | undefined } | Expression;
}
/** Strip a TCP option: `reset tcp option sack`. */
export interface ResetStmt { reset: Expression }
/** Verdict map: `key vmap { ... }`. */
export interface VmapStmt { vmap: { key: Expression; data: Expression } }
/** xtables compat expression, as listed for iptables-nft rules. nft refuses it on input. */
export interface XtStmt { xt: { type?: string | undefined; name?: string | undefined; [k: string]: unknown } }

/** Any statement. {@link OpaqueNode} only appears in tolerant parses. */
export type Statement =
  | MatchStmt | VerdictStmt | CounterStmt | MangleStmt | QuotaStmt | LastStmt | LimitStmt | FlowStmt | FwdStmt
  | NotrackStmt | DupStmt | NatStmt | RejectStmt | SetStmt | MapStmt | LogStmt | ObjectRefStmt | MeterStmt
  | QueueStmt | CtCountStmt | TproxyStmt | SynproxyStmt | ResetStmt | VmapStmt | XtStmt | OpaqueNode;

/** The statement schemas of one mode. */
export interface StatementSchemas {
  /** Any statement. */
  Statement: z.ZodType<Statement>;
  /** A rule's statement list. */
  Statements: z.ZodType<Statement[]>;
}

/** Build the statement schemas for a mode. */
export function makeStatementSchemas(mode: SchemaMode, ex: ExpressionSchemas): StatementSchemas {
  const E = ex.Expression;
  const k = <const T extends string>(list: readonly T[], what: string) => known(mode, list, what);
  const L3 = z.enum(['ip', 'ip6']);
  const setRef = z.string().regex(/^@./, 'must be a set reference "@name"');
  const nul = z.null();
  const target = obj(mode, { target: z.string().min(1) });
  // A reference to a named object (name, or map expression choosing one).
  const objref = E;
  const Statement: z.ZodType<Statement> = keyed<Statement>(() => bodies, {
    what: 'statement',
    opaque: mode === 'tolerant',
    ...(mode === 'strict' ? { refused: { xt: 'xtables compat expressions (xt) cannot be loaded through nft; use iptables-nft' } } : {}),
  });
  const Statements: z.ZodType<Statement[]> = z.array(Statement);
  // Choose the body schema the way nft does: null, an object carrying one of `keys`, or a named-object reference.
  const nullOr = (schema: z.ZodType) => select((v) => (v === null ? nul : schema));
  const byKeys = (keys: string[], schema: z.ZodType, ref?: z.ZodType, allowNull = false) =>
    select((v) => {
      if (v === null && allowNull) return nul;
      if (isPlainObject(v) && keys.some((key) => key in v)) return schema;
      return ref ?? schema;
    });
  const natBody = nullOr(
    obj(mode, {
      family: L3.optional(),
      addr: E.optional(),
      port: E.optional(),
      flags: oneOrMany(k(NAT_FLAGS, 'nat flag')).optional(),
      type_flags: oneOrMany(k(NAT_TYPE_FLAGS, 'nat type flag')).optional(),
    }),
  );
  const bodies: Record<string, z.ZodType> = {
    accept: nul, drop: nul, continue: nul, return: nul, jump: target, goto: target,
    match: obj(mode, { left: E, op: z.enum(MATCH_OPS), right: E }),
    counter: byKeys(['packets', 'bytes'], obj(mode, { packets: UInt, bytes: UInt }), objref, true),
    mangle: obj(mode, { key: E, value: E }),
    quota: byKeys(
      ['val'],
      obj(mode, {
        val: UInt,
        val_unit: k(BYTE_UNITS, 'byte unit').optional(),
        inv: z.boolean().optional(),
        used: UInt.optional(),
        used_unit: k(BYTE_UNITS, 'byte unit').optional(),
      }),
      objref,
    ),
    last: nullOr(obj(mode, { used: z.number().int() })),
    limit: byKeys(
      ['rate', 'per'],
      obj(mode, {
        rate: UInt,
        per: k(LIMIT_PER, 'time unit'),
        rate_unit: k(['packets', ...BYTE_UNITS], 'rate unit').optional(),
        inv: z.boolean().optional(),
        burst: UInt.optional(),
        burst_unit: k(BYTE_UNITS, 'byte unit').optional(),
      }),
      objref,
    ),
    flow: obj(mode, { op: z.literal('add'), flowtable: setRef }),
    fwd: obj(mode, { dev: E, family: L3.optional(), addr: E.optional() }),
    notrack: nul,
    dup: obj(mode, { addr: E, dev: E.optional() }),
    snat: natBody, dnat: natBody, masquerade: natBody, redirect: natBody,
    reject: nullOr(obj(mode, { type: k(REJECT_TYPES, 'reject type').optional(), expr: z.union([z.string(), z.number().int()]).optional() })),
    set: obj(mode, { op: k(SET_OPS, 'set operation'), elem: E, set: setRef, stmt: Statements.optional() }),
    map: obj(mode, { op: k(SET_OPS, 'map operation'), elem: E, data: E, map: setRef, stmt: Statements.optional() }),
    log: nullOr(
      obj(mode, {
        prefix: z.string().optional(),
        group: UInt.optional(),
        snaplen: UInt.optional(),
        'queue-threshold': UInt.optional(),
        level: k(LOG_LEVELS, 'log level').optional(),
        flags: oneOrMany(k(LOG_FLAGS, 'log flag')).optional(),
      }),
    ),
    'ct helper': objref, 'ct timeout': objref, 'ct expectation': objref, secmark: objref, tunnel: objref,
    meter: obj(mode, { name: z.string().min(1), key: E, stmt: z.lazy(() => Statement), size: UInt.optional() }),
    queue: nullOr(obj(mode, { num: E.optional(), flags: oneOrMany(k(QUEUE_FLAGS, 'queue flag')).optional() })),
    'ct count': obj(mode, { val: UInt, inv: z.boolean().optional() }),
    tproxy: obj(mode, { family: L3.optional(), addr: E.optional(), port: E.optional() }),
    synproxy: byKeys(
      ['mss', 'wscale', 'flags'],
      obj(mode, { mss: UInt.optional(), wscale: UInt.optional(), flags: oneOrMany(k(SYNPROXY_FLAGS, 'synproxy flag')).optional() }),
      objref,
      true,
    ),
    reset: E,
    vmap: obj(mode, { key: E, data: E }),
    xt: z.looseObject({ type: z.string().optional(), name: z.string().optional() }),
  };
  return { Statement, Statements };
}
