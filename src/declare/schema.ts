/**
 * The declarative file (`netfence plan|apply|destroy FILE`): a composition of
 * the zod schemas the library's classes validate their options with, plus a
 * `version` field. Nothing here re-states a class's options: each section is
 * the class's own schema (minus `netns` and `owner`, which the file sets for
 * every object), so a file accepts exactly what the classes accept.
 * @module
 */
import { z } from 'zod';
import { ChainSpec, FastPathSpec, FirewallOptions, MapSpec, RuleSpec, SetSpec } from '../firewall/spec.js';
import { VmOptionsSchema } from '../firewall/vm-options.js';
import { VmFirewallRule, VmSpecSchema } from '../firewall/vm-model.js';
import { NetfenceRouteOptionsSchema } from '../integrations/smartproxy/options.js';
import { PlanOwner } from '../plan/ownership.js';
import { LimitSchema, ThrottlerOptionsSchema } from '../throttle/types.js';
import { XdpBlocklistOptionsSchema } from '../xdp/types.js';

/** The file format version this netfence reads. */
export const DECLARATION_VERSION = 1;

const name = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** A chain, set or map name as the Firewall builder accepts it. */
const ObjName = z.string().regex(name, 'must be a name of letters, digits, _ . - (not starting with a digit, . or -), at most 64');

/**
 * A Firewall: `new Firewall({ table, family })` with `.chain(name, spec)`,
 * `.rules(chain, specs)`, `.set(name, spec)`, `.map(name, spec)` and
 * `.fastPath(spec)`; each section is the builder's own schema.
 */
export const FirewallDeclSchema = z.strictObject({
  ...FirewallOptions.omit({ netns: true, owner: true }).shape,
  /** Chains by name (`Firewall.chain(name, spec)`): a base chain with `hook`, a regular chain without. */
  chains: z.record(ObjName, ChainSpec).optional(),
  /** Rules per chain, in order (`Firewall.rules(chain, specs)`). */
  rules: z.record(ObjName, z.array(RuleSpec)).optional(),
  /** Named sets (`Firewall.set(name, spec)`). */
  sets: z.record(ObjName, SetSpec).optional(),
  /** Named maps (`Firewall.map(name, spec)`). */
  maps: z.record(ObjName, MapSpec).optional(),
  /** The forwarding fast path (`Firewall.fastPath(spec)`). */
  fastPath: FastPathSpec.optional(),
});
/** A firewall in the file (input form). */
export type FirewallDecl = z.input<typeof FirewallDeclSchema>;

/** A VM's firewall (`Firewall.attachVm(spec)`), its rules validated by the VM rule schema. */
export const VmDeclSchema = VmSpecSchema.extend({ rules: z.array(VmFirewallRule) });

/**
 * VM firewalls: a bridge-family Firewall (`family: 'bridge'`) with
 * `.vmOptionsSet(options)` and one `.attachVm(spec)` per VM, plus optional
 * chains, rules, sets and maps of the bridge table itself.
 */
export const VmFirewallDeclSchema = z.strictObject({
  /** The bridge table's name. */
  table: FirewallOptions.shape.table,
  /** `Firewall.vmOptionsSet(options)`: how REJECT and connection state are done. */
  vmOptions: VmOptionsSchema.partial().optional(),
  /** The VMs (`Firewall.attachVm(spec)` each). */
  vms: z.array(VmDeclSchema),
  chains: FirewallDeclSchema.shape.chains,
  rules: FirewallDeclSchema.shape.rules,
  sets: FirewallDeclSchema.shape.sets,
  maps: FirewallDeclSchema.shape.maps,
});
/** VM firewalls in the file (input form). */
export type VmFirewallDecl = z.input<typeof VmFirewallDeclSchema>;

/**
 * SmartProxy routes (`NetfenceRouteManager`): the manager's options that can
 * be written in a file (`tableName`, `routeLocalnet`, `fastPath`; `resolve`
 * and `logger` are functions) and the routes, SmartProxy 21.x
 * `IRouteConfig` objects validated by the manager's route normalizer (which
 * names every field it refuses).
 */
export const SmartProxyDeclSchema = z.strictObject({
  ...NetfenceRouteOptionsSchema.pick({ tableName: true, routeLocalnet: true, fastPath: true }).shape,
  /** SmartProxy route configs (`IRouteConfig`), as given to `syncRoutes(routes)`. */
  routes: z.array(z.record(z.string(), z.unknown())),
});
/** SmartProxy routes in the file (input form). */
export type SmartProxyDecl = z.input<typeof SmartProxyDeclSchema>;

/** Throttler limits: `new Throttler({ name })` and one `limit(request)` per entry. */
export const ThrottleDeclSchema = z.strictObject({
  ...ThrottlerOptionsSchema.unwrap().omit({ netns: true }).shape,
  /** Limit requests (`Throttler.limit(request)`), applied in order. */
  limits: z.array(LimitSchema),
});
/** Throttler limits in the file (input form). */
export type ThrottleDecl = z.input<typeof ThrottleDeclSchema>;

/** An XdpBlocklist (`new XdpBlocklist(options)`, `apply()`) and its entries (`replace(entries)`). */
export const BlocklistDeclSchema = z.strictObject({
  ...XdpBlocklistOptionsSchema.omit({ netns: true }).shape,
  /** Addresses and prefixes to drop (`replace(entries)`): the list in force after apply. */
  entries: z.array(z.string().max(64)).optional(),
});
/** A blocklist in the file (input form). */
export type BlocklistDecl = z.input<typeof BlocklistDeclSchema>;

/** The whole file. */
export const DeclarationSchema = z.strictObject({
  /** File format version; this netfence reads version 1. */
  version: z.literal(DECLARATION_VERSION),
  /**
   * Plan owner of every object the file declares (the ownership mark of its
   * tables). Default: `file:<file name without extension>`. Objects owned by
   * anyone else are never touched.
   */
  owner: PlanOwner.optional(),
  /** Firewalls (one owned nftables table each). */
  firewalls: z.array(FirewallDeclSchema).optional(),
  /** VM firewalls (one bridge table each). */
  vmFirewalls: z.array(VmFirewallDeclSchema).optional(),
  /** SmartProxy routes (one owned inet table). */
  smartproxy: SmartProxyDeclSchema.optional(),
  /** Throttler limits. */
  throttle: ThrottleDeclSchema.optional(),
  /** XDP blocklists. */
  blocklists: z.array(BlocklistDeclSchema).optional(),
});
/** A declarative file (input form, as written). */
export type DeclarationInput = z.input<typeof DeclarationSchema>;
/** A declarative file validated, defaults filled in. */
export type Declaration = z.output<typeof DeclarationSchema>;

/**
 * The JSON Schema of the file for editors (draft 2020-12), generated from the
 * same zod schemas. Input types (`io: 'input'`: defaults are optional), and
 * what JSON Schema cannot say is left open (`unrepresentable: 'any'`): the
 * library's refinements (an address's syntax, a port range's order, a
 * limit's field combinations), SmartProxy's `z.custom` options and the
 * routes themselves (checked by the route normalizer, not a zod schema); the
 * file loader still checks all of them. Schemas used more than once are
 * `$defs` (`reused: 'ref'`).
 */
export function declarationJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(DeclarationSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12', reused: 'ref' }) as Record<string, unknown>;
  return { ...s, title: 'netfence declarative file (netfence plan | apply | destroy FILE)' };
}

/** The text of `schema/netfence.schema.json` (what `scripts/gen-schema.mjs` writes): {@link declarationJsonSchema}, 2-space JSON, final newline. */
export function declarationSchemaText(): string {
  return `${JSON.stringify(declarationJsonSchema(), null, 2)}\n`;
}
