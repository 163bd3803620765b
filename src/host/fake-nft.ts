/**
 * An in-memory nftables ruleset (one network namespace) that understands the
 * libnftables JSON commands netfence sends, the way nft and the kernel answer
 * them — the core of `FakeHost` (src/host/fake.ts), in the spirit of
 * knftables' Fake. No root, no kernel.
 *
 * A batch is one transaction: it is parsed first (the tolerant schema of
 * src/nft, unknown statement or expression kinds refused, as nft's parser
 * does: "Parsing command array at index N failed."), then evaluated on a copy
 * of the ruleset; the first failing command aborts the whole batch with nft's
 * error text ("Error: Could not process rule: No such file or directory", ...)
 * and nothing changes. Check mode (`nft -c`) evaluates the same way and
 * commits nothing.
 *
 * Modelled, as measured against nft 1.0.6 / Linux 6.x (see
 * test/unit/fake-nft.test.ts):
 * - add / create / insert / replace / delete / destroy / flush / rename /
 *   reset of tables, chains, rules, sets, maps, elements, flowtables and the
 *   named objects (counter, quota, limit, ct helper, ...);
 * - `create` of an existing object and `add` of an existing map key with
 *   another value: "File exists"; `delete` of a missing object or element:
 *   "No such file or directory"; `destroy` of a missing object: nothing;
 * - handles: tables per namespace, everything else from one counter per
 *   table; `insert` before `handle`/`index` (or first), `add` after `index`
 *   (or last) — JSON `add` ignores `handle`, as nft 1.0.6 and 1.1.x do;
 * - references: a rule needs its chain, its jump/goto targets, its `@sets`
 *   and named objects; deleting a chain, set or object still referenced by a
 *   rule or a map element is "Device or resource busy"; `delete chain` takes
 *   its rules with it;
 * - a base chain keeps its hook/type ("Operation not supported" otherwise),
 *   a set its key type ("File exists" otherwise);
 * - interval sets: elements must not overlap ("interval overlaps with an
 *   existing one") unless `auto-merge`; identical elements are accepted;
 * - element timeouts (from the element or the set) expire on the given clock;
 * - devices of netdev chains and flowtables must exist (`hasDevice`);
 * - nft version differences as options: `destroy` unknown before 1.0.8,
 *   table comments and flags dropped by 1.0.6 ({@link FakeNftOptions}).
 *
 * Not modelled: packets (counters only move when a test sets them), the
 * kernel's datatype checks of values (a port in an address set passes),
 * chain loops and hook-specific statement restrictions, `--echo`.
 * @module
 */
import { findOpaque, parseCommand } from '../nft/parse.js';
import { applyCommand } from './fake-nft-eval.js';
import { listObjects } from './fake-nft-list.js';
import { expire, Refused, rec, tableKey, VERBS, type FakeRule, type FakeRuleset, type FakeTable, type ResolvedNftOptions } from './fake-nft-model.js';

export type { FakeChain, FakeElement, FakeObject, FakeRule, FakeRuleset, FakeSet, FakeTable, NftOutcome, ResolvedNftOptions } from './fake-nft-model.js';
export { canonical, references, tableKey } from './fake-nft-model.js';

/** Versions of nft behaviour the fake can imitate. */
export interface FakeNftOptions {
  /** `metainfo.version` of listings (default `1.1.6`). */
  version?: string | undefined;
  /** Whether the `destroy` command exists (nft >= 1.0.8; default true). */
  destroy?: boolean | undefined;
  /** Whether table comments and flags are kept (nft 1.0.6 drops them; default true). */
  tableComments?: boolean | undefined;
  /** Validate every command with the tolerant schema first (default true). */
  validate?: boolean | undefined;
  /** Clock for element timeouts, in ms (default `Date.now`). */
  now?: (() => number) | undefined;
  /**
   * Whether a network device exists (netdev chains and flowtables name
   * devices; nft fails with "No such file or directory" for a missing one).
   * Default: every device exists. FakeHost passes its namespace's links.
   */
  hasDevice?: ((name: string) => boolean) | undefined;
}

/** The options of nft 1.0.6 (Debian 12's nft): no `destroy`, table comments dropped. */
export const NFT_1_0_6: FakeNftOptions = { version: '1.0.6', destroy: false, tableComments: false };

/** A command the model refused; `message` is nft's line without the location prefix. */
export class NftCommandFailure extends Error {
  constructor(
    message: string,
    /** The command's index in the batch. */
    readonly index: number,
    /** Whether nft's parser refused it (then nft says "Parsing command array at index N failed."). */
    readonly parse = false,
  ) {
    super(message);
  }
}

/**
 * One namespace's nftables: apply JSON batches, check them, list them.
 * The state is public for tests (`tables`), and small setters move counters.
 */
export class FakeNft {
  /** The committed ruleset. */
  state: FakeRuleset = { tables: new Map(), nextTableHandle: 1 };
  readonly options: ResolvedNftOptions;

  constructor(options: FakeNftOptions = {}) {
    this.options = {
      version: options.version ?? '1.1.6',
      destroy: options.destroy ?? true,
      tableComments: options.tableComments ?? true,
      validate: options.validate ?? true,
      now: options.now ?? Date.now,
      hasDevice: options.hasDevice ?? (() => true),
    };
  }

  /** The `metainfo` item of listings. */
  metainfo(): { metainfo: Record<string, unknown> } {
    return { metainfo: { version: this.options.version, release_name: this.options.version === '1.0.6' ? 'Lester Gooch #5' : 'Commodore Bullmoose #7', json_schema_version: 1 } };
  }

  /**
   * Run a JSON batch (the items of `{"nftables": [...]}`) as one transaction,
   * or only check it. Returns the listings of any `list` commands (one per
   * command). Throws {@link NftCommandFailure} when a command is refused;
   * then nothing changed.
   */
  transact(items: readonly unknown[], check = false): unknown[][] {
    const commands = this.parse(items);
    const next = structuredClone(this.state);
    const listings: unknown[][] = [];
    commands.forEach(({ verb, kind, body, index }) => {
      try {
        if (verb === 'list') listings.push(listObjects(this.options, next, kind, body, false));
        else applyCommand(this.options, next, verb, kind, body);
      } catch (e) {
        if (e instanceof Refused) throw new NftCommandFailure(e.message, index);
        throw e;
      }
    });
    if (!check) this.state = next;
    return listings;
  }

  /** Parse and validate the items of a batch (metainfo skipped, bare objects meaning `add`). */
  private parse(items: readonly unknown[]): { verb: string; kind: string; body: Record<string, unknown>; index: number }[] {
    const out: { verb: string; kind: string; body: Record<string, unknown>; index: number }[] = [];
    items.forEach((item, index) => {
      const fail = (msg: string): never => {
        throw new NftCommandFailure(msg, index, true);
      };
      const o = rec(item);
      const keys = Object.keys(o);
      if (keys.length !== 1) fail('Unknown object passed to add command.');
      let verb = keys[0] as string;
      if (verb === 'metainfo') return;
      let cmd: Record<string, unknown> = o;
      if (!VERBS.has(verb)) {
        cmd = { add: o };
        verb = 'add';
      }
      if (verb === 'destroy' && !this.options.destroy) fail('Unknown object passed to add command.');
      const inner = rec(cmd[verb]);
      const ik = Object.keys(inner);
      if (ik.length !== 1) fail(`Unknown object passed to ${verb} command.`);
      if (this.options.validate) {
        const p = parseCommand(cmd, { mode: 'tolerant' });
        if (p.err) fail(`${p.val.issues[0]?.path ?? ''}: ${p.val.issues[0]?.message ?? 'invalid'}`.replace(/^: /, ''));
        const opaque = p.ok ? findOpaque(p.val) : [];
        if (opaque.length) fail(`Unknown expression type '${opaque[0]!.kind}'.`);
      }
      const kind = ik[0] as string;
      out.push({ verb, kind, body: structuredClone(inner[kind] === null ? {} : rec(inner[kind])), index });
    });
    return out;
  }

  /** Listing items (without metainfo) for a JSON `list` body, e.g. `('table', {family, name})`. */
  list(kind: string, body: Record<string, unknown> | null, terse = false): unknown[] {
    try {
      return listObjects(this.options, this.state, kind, body ?? {}, terse);
    } catch (e) {
      if (e instanceof Refused) throw new NftCommandFailure(e.message.replace('Could not process rule: ', ''), 0);
      throw e;
    }
  }

  /** A table of the committed state. */
  table(family: string, name: string): FakeTable | undefined {
    return this.state.tables.get(tableKey(family, name));
  }

  /** The rules of a chain (committed state), or undefined when the chain does not exist. */
  rules(family: string, table: string, chain: string): FakeRule[] | undefined {
    return this.table(family, table)?.chains.get(chain)?.rules;
  }

  /** The element items of a set or map (committed state, expired ones dropped). */
  elements(family: string, table: string, set: string): unknown[] | undefined {
    const s = this.table(family, table)?.sets.get(set);
    if (!s) return undefined;
    expire(this.options, s);
    return [...s.elems.values()].map((e) => e.item);
  }

  /** Set the counter of the rule with `handle` (as if packets had passed). */
  setRuleCounter(family: string, table: string, chain: string, handle: number, counter: { packets: number; bytes: number }): void {
    const r = this.rules(family, table, chain)?.find((x) => x.handle === handle);
    if (!r) throw new Error(`fake nft: no rule ${handle} in ${family} ${table} ${chain}`);
    r.counter = { ...counter };
  }

  /** Set fields of a named object (a counter's packets/bytes, a quota's used). */
  setObject(family: string, table: string, kind: string, name: string, fields: Record<string, unknown>): void {
    const o = this.table(family, table)?.objects.get(`${kind} ${name}`);
    if (!o) throw new Error(`fake nft: no ${kind} ${name} in ${family} ${table}`);
    Object.assign(o.spec, fields);
  }
}
