/**
 * Reading a declarative file: YAML or JSON text (JSON is read by the YAML 1.2
 * parser too, so both get line numbers), validated by {@link DeclarationSchema}
 * and, for SmartProxy routes, by the route managers' own normalizer. Every
 * problem is one {@link ValidationIssue} whose path names the place in the
 * file (`firewalls[0].rules.input[2].dport`) and its line.
 * @module
 */
import { basename, extname } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { ValidationError, type ValidationIssue } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { normalizeRoute } from '../integrations/smartproxy/normalize.js';
import { PlanOwner } from '../plan/ownership.js';
import { Err, Ok, type Result } from '../result.js';
import { DECLARATION_VERSION, DeclarationSchema, type Declaration } from './schema.js';

/** A validated file and the owner of what it declares. */
export interface LoadedDeclaration {
  /** The file as validated (defaults filled in). */
  declaration: Declaration;
  /** Plan owner of every declared object (the file's `owner`, or `file:<name>`). */
  owner: string;
  /** Where it was read from (for messages). */
  source: string;
}

/** `a.b[0].c` from a zod/YAML path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${String(p)}` : String(p);
  }
  return s || '(root)';
}

/** The line (1-based) of the deepest node of `path` that exists in the document. */
function lineOf(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number | undefined {
  const keys = path.map((p) => (typeof p === 'number' ? p : String(p)));
  for (let n = keys.length; n >= 0; n--) {
    const node = doc.getIn(keys.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && Array.isArray(node.range)) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

/** The default owner of a file: `file:<name without extension>`, when that is a valid owner. */
export function defaultOwner(source: string): string | undefined {
  const n = `file:${basename(source, extname(source))}`;
  return PlanOwner.safeParse(n).success ? n : undefined;
}

/**
 * Parse and validate declarative-file text. `source` names the file in
 * messages and gives the default owner. Errors: a {@link ValidationError}
 * whose issues each name a path in the file and its line.
 */
export function parseDeclaration(text: string, source = 'netfence.yaml'): Result<LoadedDeclaration, ValidationError> {
  const what = `declarative file ${source}`;
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return Err(new ValidationError(what, doc.errors.slice(0, 10).map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: `not valid YAML/JSON: ${e.message.split('\n')[0]}` }))));
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const at = (path: readonly PropertyKey[]) => {
    const line = lineOf(doc, lc, path);
    return `${formatPath(path)}${line !== undefined ? ` (line ${line})` : ''}`;
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !(isMap(doc.contents) || isSeq(doc.contents))) {
    return Err(new ValidationError(what, [{ path: '(root)', message: `must be a mapping with at least "version: ${DECLARATION_VERSION}"` }]));
  }
  const version = (raw as Record<string, unknown>).version;
  if (version !== DECLARATION_VERSION) {
    return Err(new ValidationError(what, [{ path: at(['version']), message: version === undefined ? `missing: write "version: ${DECLARATION_VERSION}" at the top` : `this netfence reads version ${DECLARATION_VERSION} files, not ${JSON.stringify(version)}` }]));
  }
  const r = DeclarationSchema.safeParse(raw);
  if (!r.success) {
    const issues: ValidationIssue[] = [];
    for (const i of r.error.issues) {
      const keys = i.code === 'unrecognized_keys' ? i.keys : [];
      if (keys.length > 0) for (const k of keys) issues.push({ path: at([...i.path, k]), message: 'unknown field (not an option of this class)' });
      else issues.push({ path: at(i.path), message: i.message });
    }
    return Err(new ValidationError(what, issues));
  }
  const d = r.data;
  const issues: ValidationIssue[] = [];
  const sp = d.smartproxy;
  if (sp) {
    if (sp.fastPath !== 'off') issues.push({ path: at(['smartproxy', 'fastPath']), message: "a fast path for SmartProxy routes is not supported in declarative files yet: use 'off' (or a Firewall's fastPath)" });
    if (sp.routeLocalnet) issues.push({ path: at(['smartproxy', 'routeLocalnet']), message: 'routeLocalnet is not supported in declarative files yet (it changes a sysctl outside the transaction): set it with NetfenceRouteManager' });
    sp.routes.forEach((route, i) => {
      const n = normalizeRoute(route, { tableName: sp.tableName, engine: 'lenient' });
      if (n.err) for (const e of n.val.issues) issues.push({ path: `${at(['smartproxy', 'routes', i])} ${e.path}`, message: e.message });
    });
  }
  const tables = new Map<string, string>();
  const claim = (key: string, path: PropertyKey[]) => {
    const prev = tables.get(key);
    if (prev) issues.push({ path: at(path), message: `table ${key} is declared twice (also at ${prev})` });
    else tables.set(key, formatPath(path));
  };
  d.firewalls?.forEach((f, i) => claim(`${f.family ?? 'inet'} ${f.table}`, ['firewalls', i, 'table']));
  d.vmFirewalls?.forEach((f, i) => claim(`bridge ${f.table}`, ['vmFirewalls', i, 'table']));
  const names = new Set<string>();
  d.blocklists?.forEach((b, i) => {
    const n = b.name ?? b.iface;
    if (names.has(n)) issues.push({ path: at(['blocklists', i]), message: `a second blocklist named ${n}: give each one its own name (or interface)` });
    names.add(n);
  });
  if (issues.length) return Err(new ValidationError(what, issues));
  const owner = d.owner ?? defaultOwner(source);
  if (!owner) return Err(new ValidationError(what, [{ path: 'owner', message: `the file name ${basename(source)} does not make a valid owner: add "owner: <name>" (letters, digits, _ . : @ + = / -)` }]));
  return Ok({ declaration: d, owner, source });
}

/** Read and validate a declarative file (YAML or JSON) through the host's files. */
export function loadDeclaration(path: string): Result<LoadedDeclaration, ValidationError> {
  let text: string;
  try {
    text = hostFiles().read(path);
  } catch (e) {
    return Err(new ValidationError(`declarative file ${path}`, [{ path: '(file)', message: `cannot read it: ${(e as Error).message}` }]));
  }
  return parseDeclaration(text, path);
}
