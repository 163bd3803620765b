/**
 * Parsing helpers over the nft JSON schemas: documents, listings, commands,
 * statements, with expected failures returned as `Result` values whose
 * {@link ValidationError} names the path of each bad field.
 * @module
 */
import type { z } from 'zod';
import { Err, Ok, type Result } from '../result.js';
import { ValidationError, fromZodIssues } from '../errors.js';
import { Comment, IfNamePattern, NftName } from '../validate.js';
import { isOpaque, isPlainObject, type SchemaMode } from './schema/common.js';
import { schemas } from './schema/index.js';
import type { Command, Document } from './schema/commands.js';
import type { Statement } from './schema/statements.js';
import type { Expression } from './schema/expressions.js';

/** Options of the parse functions. */
export interface ParseOptions {
  /**
   * `strict` (default for documents and commands): what netfence emits.
   * `tolerant`: listings from any nft 1.0.x–1.1.x.
   * `emit`: strict, plus {@link checkEmit}'s conservative checks of names,
   * comments, interfaces and strings (what netfence itself will send).
   */
  mode?: SchemaMode | 'emit';
}

function toValue(json: unknown, what: string): Result<unknown, ValidationError> {
  if (typeof json !== 'string') return Ok(json);
  try {
    return Ok(JSON.parse(json) as unknown);
  } catch (e) {
    return Err(new ValidationError(what, [{ path: '', message: `not valid JSON: ${(e as Error).message}` }]));
  }
}

function run<T>(what: string, schema: z.ZodType<T>, json: unknown, mode: SchemaMode | 'emit'): Result<T, ValidationError> {
  const v = toValue(json, what);
  if (v.err) return v;
  const r = schema.safeParse(v.val);
  if (!r.success) return Err(fromZodIssues(what, r.error.issues));
  if (mode === 'emit') {
    const issues = checkEmit(r.data);
    if (issues.length > 0) return Err(new ValidationError(what, issues));
  }
  return Ok(r.data);
}

const modeOf = (o: ParseOptions | undefined, dflt: SchemaMode): SchemaMode | 'emit' => o?.mode ?? dflt;
const schemaMode = (m: SchemaMode | 'emit'): SchemaMode => (m === 'emit' ? 'strict' : m);

/** Parse a whole `{"nftables": [...]}` document (a JSON string or an already parsed value). Default mode: strict. */
export function parseDocument(json: unknown, options?: ParseOptions): Result<Document, ValidationError> {
  const mode = modeOf(options, 'strict');
  return run('nftables JSON document', schemas(schemaMode(mode)).Document, json, mode);
}

/** Parse the output of `nft -j list ...` from any nft 1.0.x–1.1.x (tolerant mode). */
export function parseListing(json: unknown): Result<Document, ValidationError> {
  return run('nft listing', schemas('tolerant').Document, json, 'tolerant');
}

/** Parse one command. Default mode: strict. */
export function parseCommand(json: unknown, options?: ParseOptions): Result<Command, ValidationError> {
  const mode = modeOf(options, 'strict');
  return run('nft command', schemas(schemaMode(mode)).Command, json, mode);
}

/** Parse a rule's statement list (`expr`). Default mode: strict. */
export function parseStatements(json: unknown, options?: ParseOptions): Result<Statement[], ValidationError> {
  const mode = modeOf(options, 'strict');
  return run('rule statements', schemas(schemaMode(mode)).Statements, json, mode);
}

/** Parse one expression. Default mode: strict. */
export function parseExpression(json: unknown, options?: ParseOptions): Result<Expression, ValidationError> {
  const mode = modeOf(options, 'strict');
  return run('expression', schemas(schemaMode(mode)).Expression, json, mode);
}

/** Where an opaque node was found. */
export interface OpaqueFinding {
  /** Dotted path of the node. */
  path: string;
  /** Its kind (its only key), e.g. `"xyz"`. */
  kind: string;
}

/** Every {@link OpaqueNode} in a tolerant parse result: kinds this version of netfence does not model. */
export function findOpaque(value: unknown, path = ''): OpaqueFinding[] {
  const out: OpaqueFinding[] = [];
  const walk = (v: unknown, p: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, p ? `${p}.${i}` : String(i)));
      return;
    }
    if (!isPlainObject(v)) return;
    if (isOpaque(v)) {
      out.push({ path: p, kind: Object.keys(v).join(',') });
      return;
    }
    for (const [k, x] of Object.entries(v)) walk(x, p ? `${p}.${k}` : k);
  };
  walk(value, path);
  return out;
}

// ---------------------------------------------------------------------------
// Emit-time checks
// ---------------------------------------------------------------------------

const NAME_FIELDS: Record<string, string[]> = {
  table: ['name'],
  chain: ['table', 'name', 'newname'],
  rule: ['table', 'chain'],
  set: ['table', 'name'],
  map: ['table', 'name'],
  element: ['table', 'name'],
  flowtable: ['table', 'name'],
};
const OBJECT_KINDS = new Set(['counter', 'quota', 'ct helper', 'ct timeout', 'ct expectation', 'limit', 'secmark', 'synproxy', 'tunnel']);
const SAFE_STRING = /^[^\u0000-\u001f\u007f"\\]*$/;

/**
 * Conservative checks of what netfence itself sends to nft, beyond the strict
 * schema: object names match {@link NftName}, comments {@link Comment},
 * devices {@link IfNamePattern}, jump targets and `@set` references are valid
 * names, and no string carries quotes, backslashes or control characters.
 * (The corpus of nft's own tests uses names netfence would never emit, which
 * is why this is separate from the strict schema.) Returns the problems found.
 */
export function checkEmit(value: unknown): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const check = (schema: z.ZodType, v: unknown, p: string) => {
    const r = schema.safeParse(v);
    if (!r.success) issues.push({ path: p, message: r.error.issues[0]?.message ?? 'invalid' });
  };
  const walk = (v: unknown, p: string, parentKey: string | undefined): void => {
    const at = (k: string | number) => (p ? `${p}.${k}` : String(k));
    if (typeof v === 'string') {
      if (!SAFE_STRING.test(v)) issues.push({ path: p, message: 'must not contain quotes, backslashes or control characters' });
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, at(i), parentKey));
      return;
    }
    if (!isPlainObject(v)) return;
    for (const [k, x] of Object.entries(v)) {
      const here = at(k);
      if (parentKey !== undefined && (NAME_FIELDS[parentKey]?.includes(k) || (OBJECT_KINDS.has(parentKey) && (k === 'name' || k === 'table')))) {
        if (typeof x === 'string') check(NftName, x, here);
      }
      if (k === 'comment' && typeof x === 'string') check(Comment, x, here);
      if (k === 'dev' && (parentKey === 'chain' || parentKey === 'flowtable')) {
        for (const [i, d] of (Array.isArray(x) ? x : [x]).entries()) check(IfNamePattern, d, Array.isArray(x) ? at(`${k}.${i}`) : here);
      }
      if ((parentKey === 'jump' || parentKey === 'goto') && k === 'target' && typeof x === 'string') check(NftName, x, here);
      if ((k === 'set' || k === 'map' || k === 'flowtable') && typeof x === 'string' && x.startsWith('@')) check(NftName, x.slice(1), here);
      walk(x, here, k);
    }
  };
  walk(value, '', undefined);
  return issues;
}

// ---------------------------------------------------------------------------
// What the executor sends
// ---------------------------------------------------------------------------

/** Options of {@link checkCommands}. */
export interface CheckCommandsOptions {
  /**
   * Do not parse the elements of sets, maps and element commands (`elem`,
   * possibly millions): only check that it is an array or an immediate. The
   * kernel and nft still refuse a bad element, atomically, and the runner
   * names the failed command. Default true.
   */
  skipElements?: boolean;
  /** Path prefix of the issues (default `nft`): issue paths read `nft.<index>.<field>`. */
  path?: string;
  /** Stop after this many issues (default 20). */
  maxIssues?: number;
}

const ELEMENT_KINDS = new Set(['set', 'map', 'element']);

/** The command with its `elem` taken out (an empty list for element commands, which need one), or undefined if it has none. */
function withoutElements(c: unknown): { command: unknown; elem: unknown; at: string } | undefined {
  if (!isPlainObject(c)) return undefined;
  const verbs = Object.keys(c);
  if (verbs.length !== 1) return undefined;
  const verb = verbs[0] as string;
  const body = c[verb];
  if (!isPlainObject(body)) return undefined;
  const kinds = Object.keys(body);
  if (kinds.length !== 1 || !ELEMENT_KINDS.has(kinds[0] as string)) return undefined;
  const kind = kinds[0] as string;
  const obj = body[kind];
  if (!isPlainObject(obj) || !('elem' in obj)) return undefined;
  const { elem, ...rest } = obj;
  return { command: { [verb]: { [kind]: kind === 'element' ? { ...rest, elem: [] } : rest } }, elem, at: `${verb}.${kind}.elem` };
}

/**
 * Validate commands netfence is about to send with the *strict* schema
 * (unknown keys and kinds refused, vocabularies checked); set elements are
 * skipped unless `skipElements: false`. Returns the issues, each naming the
 * command's index and the field (`nft.3.add.rule.expr.0.match.left`).
 */
export function checkCommands(commands: readonly unknown[], options: CheckCommandsOptions = {}): { path: string; message: string }[] {
  const S = schemas('strict').Command;
  const base = options.path ?? 'nft';
  const max = options.maxIssues ?? 20;
  const issues: { path: string; message: string }[] = [];
  for (let i = 0; i < commands.length && issues.length < max; i++) {
    let c = commands[i];
    if (options.skipElements !== false) {
      const w = withoutElements(c);
      if (w) {
        const e = w.elem;
        if (!Array.isArray(e) && typeof e !== 'string' && typeof e !== 'number' && typeof e !== 'boolean') {
          issues.push({ path: `${base}.${i}.${w.at}`, message: 'must be an array of elements' });
          continue;
        }
        c = w.command;
      }
    }
    const r = S.safeParse(c);
    if (r.success) continue;
    for (const iss of fromZodIssues('', r.error.issues).issues) issues.push({ path: `${base}.${i}${iss.path ? `.${iss.path}` : ''}`, message: iss.message });
  }
  return issues.slice(0, max);
}
