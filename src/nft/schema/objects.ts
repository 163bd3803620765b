/**
 * Ruleset objects of the libnftables JSON format: table, chain, rule, set,
 * map, element, flowtable and the stateful objects (counter, quota, limit,
 * ct helper, ct timeout, ct expectation, synproxy, secmark, tunnel).
 * Modelled on nft's JSON parser (`json_parse_cmd_add_*`).
 * @module
 */
import { z } from 'zod';
import { type Family, type Known, type SchemaMode, Family as FamilySchema, Int, UInt, known, obj, oneOrMany } from './common.js';
import type { Expression, ExpressionSchemas, SetItem, Immediate } from './expressions.js';
import { BYTE_UNITS, LIMIT_PER, SYNPROXY_FLAGS, type Statement, type StatementSchemas } from './statements.js';

/** Chain hooks. */
export const HOOKS = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'] as const;
/** Chain types. */
export const CHAIN_TYPES = ['filter', 'nat', 'route'] as const;
/** Table flags. */
export const TABLE_FLAGS = ['dormant', 'owner', 'persist'] as const;
/** Set flags. */
export const SET_FLAGS = ['constant', 'interval', 'timeout', 'dynamic'] as const;
/** Stateful object kinds that a map can map to (`"map": "counter"`). */
export const OBJECT_MAP_TYPES = ['counter', 'quota', 'ct helper', 'limit', 'ct timeout', 'secmark', 'ct expectation', 'synproxy', 'tunnel'] as const;

/** Fields every object inside a table has. */
export interface InTable { family: Family; table: string }
/** Optional handle (listings; identifies objects in delete/insert/replace). */
export interface Handle { handle?: number | undefined }

/** A table. */
export interface Table extends Handle {
  family: Family;
  name: string;
  comment?: string | undefined;
  flags?: Known<(typeof TABLE_FLAGS)[number]> | Known<(typeof TABLE_FLAGS)[number]>[] | undefined;
}
/** A chain; a base chain when `type`, `hook` and `prio` are given. */
export interface Chain extends InTable, Handle {
  name: string;
  comment?: string | undefined;
  type?: Known<(typeof CHAIN_TYPES)[number]> | undefined;
  hook?: Known<(typeof HOOKS)[number]> | undefined;
  prio?: number | undefined;
  dev?: string | string[] | undefined;
  policy?: 'accept' | 'drop' | undefined;
}
/** A rule. `handle`/`index` position it for add/insert, identify it for replace. */
export interface Rule extends InTable, Handle {
  chain: string;
  expr: Statement[];
  index?: number | undefined;
  comment?: string | undefined;
}
/** A set key/data type: datatype name, concatenation of names, or `{ typeof: expr }`. */
export type SetType = string | string[] | { typeof: Expression };
/** A named set (`map` absent) or map. */
export interface NamedSet extends InTable, Handle {
  name: string;
  type: SetType;
  map?: SetType | undefined;
  policy?: 'performance' | 'memory' | undefined;
  flags?: Known<(typeof SET_FLAGS)[number]> | Known<(typeof SET_FLAGS)[number]>[] | undefined;
  elem?: SetItem[] | Immediate | undefined;
  timeout?: number | undefined;
  'gc-interval'?: number | undefined;
  size?: number | undefined;
  'auto-merge'?: boolean | undefined;
  stmt?: Statement[] | undefined;
  comment?: string | undefined;
}
/** A named map (same shape as a set, `map` gives the data type). */
export type NamedMap = NamedSet;
/** Elements to add to / delete from a named set or map. */
export interface Element extends InTable {
  name: string;
  elem: SetItem[] | Immediate;
}
/** A flowtable. */
export interface Flowtable extends InTable, Handle {
  name: string;
  hook: Known<'ingress'>;
  prio: number;
  dev?: string | string[] | undefined;
}
/** Fields of every named stateful object. */
export interface NamedObject extends InTable, Handle { name: string; comment?: string | undefined }
/** A named counter. */
export interface Counter extends NamedObject { packets?: number | undefined; bytes?: number | undefined }
/** A named quota. */
export interface Quota extends NamedObject { bytes?: number | undefined; used?: number | undefined; inv?: boolean | undefined }
/** A conntrack helper object. */
export interface CtHelper extends NamedObject { type?: string | undefined; protocol?: Known<'tcp' | 'udp'> | undefined; l3proto?: string | undefined }
/** A conntrack timeout policy object. */
export interface CtTimeout extends NamedObject {
  protocol?: Known<'tcp' | 'udp'> | undefined;
  l3proto?: string | undefined;
  policy?: Record<string, number> | undefined;
}
/** A conntrack expectation object. */
export interface CtExpectation extends NamedObject {
  protocol?: Known<'tcp' | 'udp'> | undefined;
  l3proto?: string | undefined;
  dport?: number | undefined;
  timeout?: number | undefined;
  size?: number | undefined;
}
/** A named rate limit. */
export interface Limit extends NamedObject {
  rate: number;
  per: Known<(typeof LIMIT_PER)[number]>;
  rate_unit?: Known<'packets' | (typeof BYTE_UNITS)[number]> | undefined;
  inv?: boolean | undefined;
  burst?: number | undefined;
  burst_unit?: Known<(typeof BYTE_UNITS)[number]> | undefined;
}
/** A SELinux security mark object. */
export interface Secmark extends NamedObject { context?: string | undefined }
/** A named SYN proxy configuration. */
export interface Synproxy extends NamedObject {
  mss: number;
  wscale: number;
  flags?: Known<(typeof SYNPROXY_FLAGS)[number]> | Known<(typeof SYNPROXY_FLAGS)[number]>[] | undefined;
}
/** Tunnel options: erspan v1/v2, vxlan or geneve (list of options). */
export type TunnelOptions =
  | { version: 1; index: number }
  | { version: 2; dir: 'ingress' | 'egress'; hwid: number }
  | { gbp?: number | undefined }
  | Array<{ class: number; 'opt-type': number; data: string }>;
/** A tunnel metadata object (nft 1.1.x). */
export interface Tunnel extends NamedObject {
  id?: number | undefined;
  'src-ipv4'?: Expression | undefined;
  'dst-ipv4'?: Expression | undefined;
  'src-ipv6'?: Expression | undefined;
  'dst-ipv6'?: Expression | undefined;
  sport?: number | undefined;
  dport?: number | undefined;
  ttl?: number | undefined;
  tos?: number | undefined;
  type?: Known<'erspan' | 'vxlan' | 'geneve'> | undefined;
  tunnel?: TunnelOptions | undefined;
}

/** The object schemas of one mode (full "add" form). */
export interface ObjectSchemas {
  table: z.ZodType<Table>;
  chain: z.ZodType<Chain>;
  rule: z.ZodType<Rule>;
  set: z.ZodType<NamedSet>;
  map: z.ZodType<NamedMap>;
  element: z.ZodType<Element>;
  flowtable: z.ZodType<Flowtable>;
  counter: z.ZodType<Counter>;
  quota: z.ZodType<Quota>;
  'ct helper': z.ZodType<CtHelper>;
  'ct timeout': z.ZodType<CtTimeout>;
  'ct expectation': z.ZodType<CtExpectation>;
  limit: z.ZodType<Limit>;
  secmark: z.ZodType<Secmark>;
  synproxy: z.ZodType<Synproxy>;
  tunnel: z.ZodType<Tunnel>;
}

/** Build the object schemas for a mode. */
export function makeObjectSchemas(mode: SchemaMode, ex: ExpressionSchemas, st: StatementSchemas): ObjectSchemas {
  const k = <const T extends string>(list: readonly T[], what: string) => known(mode, list, what);
  const name = z.string().min(1);
  const comment = z.string().optional();
  const handle = UInt.optional();
  const inTable = { family: FamilySchema, table: name };
  const named = { ...inTable, name, handle, comment };
  const devs = oneOrMany(z.string().min(1).max(15, 'interface names have at most 15 characters'));
  const l4 = k(['tcp', 'udp'], 'protocol').optional();
  const l3 = k(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'], 'l3proto').optional();
  let chain: z.ZodType<Chain> = obj(mode, {
    ...inTable, name, handle, comment,
    type: k(CHAIN_TYPES, 'chain type').optional(),
    hook: k(HOOKS, 'hook').optional(),
    prio: Int.optional(),
    dev: devs.optional(),
    policy: z.enum(['accept', 'drop']).optional(),
  });
  if (mode === 'strict') {
    chain = chain.refine(
      (c) => (c.type === undefined) === (c.hook === undefined) && (c.hook === undefined) === (c.prio === undefined),
      { message: 'a base chain needs all of type, hook and prio (nft silently makes a regular chain otherwise)' },
    ).refine((c) => c.hook !== undefined || (c.policy === undefined && c.dev === undefined), {
      message: 'policy and dev only apply to base chains (give type, hook and prio)',
    });
  }
  const set: z.ZodType<NamedSet> = obj(mode, {
    ...named,
    type: ex.SetType,
    map: ex.SetType.optional(),
    policy: z.enum(['performance', 'memory']).optional(),
    flags: oneOrMany(k(SET_FLAGS, 'set flag')).optional(),
    elem: ex.SetItems.optional(),
    timeout: UInt.optional(),
    'gc-interval': UInt.optional(),
    size: UInt.optional(),
    'auto-merge': z.boolean().optional(),
    stmt: st.Statements.optional(),
  }) as z.ZodType<NamedSet>;
  const erspan1 = obj(mode, { version: z.literal(1), index: UInt });
  const erspan2 = obj(mode, { version: z.literal(2), dir: z.enum(['ingress', 'egress']), hwid: UInt });
  const vxlan = obj(mode, { gbp: UInt.optional() });
  const geneve = z.array(obj(mode, { class: UInt, 'opt-type': UInt, data: z.string().regex(/^0x[0-9a-fA-F]+$/, 'must be hex data 0x...') }));
  return {
    table: obj(mode, { family: FamilySchema, name, handle, comment, flags: oneOrMany(k(TABLE_FLAGS, 'table flag')).optional() }),
    chain,
    rule: obj(mode, { ...inTable, chain: name, expr: st.Statements, handle, index: UInt.optional(), comment }),
    set,
    map: set,
    element: obj(mode, { ...inTable, name, elem: ex.SetItems }),
    flowtable: obj(mode, { ...inTable, name, handle, hook: k(['ingress'], 'flowtable hook'), prio: Int, dev: devs.optional() }),
    counter: obj(mode, { ...named, packets: UInt.optional(), bytes: UInt.optional() }),
    quota: obj(mode, { ...named, bytes: UInt.optional(), used: UInt.optional(), inv: z.boolean().optional() }),
    'ct helper': obj(mode, { ...named, type: z.string().min(1).max(15).optional(), protocol: l4, l3proto: l3 }),
    'ct timeout': obj(mode, { ...named, protocol: l4, l3proto: l3, policy: z.record(z.string(), UInt).optional() }),
    'ct expectation': obj(mode, {
      ...named, protocol: l4, l3proto: l3, dport: UInt.optional(), timeout: UInt.optional(), size: UInt.optional(),
    }),
    limit: obj(mode, {
      ...named,
      rate: UInt,
      per: k(LIMIT_PER, 'time unit'),
      rate_unit: k(['packets', ...BYTE_UNITS], 'rate unit').optional(),
      inv: z.boolean().optional(),
      burst: UInt.optional(),
      burst_unit: k(BYTE_UNITS, 'byte unit').optional(),
    }),
    secmark: obj(mode, { ...named, context: z.string().max(255).optional() }),
    synproxy: obj(mode, { ...named, mss: UInt, wscale: UInt, flags: oneOrMany(k(SYNPROXY_FLAGS, 'synproxy flag')).optional() }),
    tunnel: obj(mode, {
      ...named,
      id: UInt.optional(),
      'src-ipv4': ex.Expression.optional(),
      'dst-ipv4': ex.Expression.optional(),
      'src-ipv6': ex.Expression.optional(),
      'dst-ipv6': ex.Expression.optional(),
      sport: UInt.optional(),
      dport: UInt.optional(),
      ttl: UInt.optional(),
      tos: UInt.optional(),
      type: k(['erspan', 'vxlan', 'geneve'], 'tunnel type').optional(),
      tunnel: z.union([erspan1, erspan2, geneve, vxlan]).optional(),
    }) as z.ZodType<Tunnel>,
  };
}
