/**
 * The `nft` command line in front of {@link FakeNft}: the argv forms netfence
 * runs (`nft [-c] -j -f -` with a JSON batch on stdin, `nft -j [-t] list ...`,
 * `nft [-c] -f -` with nft text, `nft flush chain ...`, `nft --version`) with
 * nft's exit codes, stdout and stderr. Part of `FakeHost` (src/host/fake.ts).
 *
 * nft text is understood for the simple command forms only (tables, chains
 * with a base-chain header, `add|insert rule ... <statements>` kept as text,
 * `delete rule ... handle N`, elements of plain values); text listings
 * (`nft list ...` without `-j`) are not modelled and fail saying so.
 * @module
 */
import { FakeNft, NftCommandFailure, type NftOutcome } from './fake-nft.js';

const ok = (stdout = ''): NftOutcome => ({ exitCode: 0, stdout, stderr: '' });
const fail = (stderr: string, exitCode = 1): NftOutcome => ({ exitCode, stdout: '', stderr });

/** Short nft-like text naming a JSON command (for error output). */
export function describeNftCommand(cmd: unknown): string {
  const o = (cmd ?? {}) as Record<string, unknown>;
  const verb = Object.keys(o)[0] ?? '?';
  const inner = (o[verb] ?? {}) as Record<string, unknown>;
  const kind = Object.keys(inner)[0] ?? '?';
  const b = (inner[kind] ?? {}) as Record<string, unknown>;
  const words = [verb, kind, b.family, b.table, b.chain, b.name, b.handle !== undefined ? `handle ${String(b.handle)}` : undefined];
  return words.filter((w) => w !== undefined && w !== null).map(String).join(' ');
}

function listingText(nft: FakeNft, items: unknown[]): string {
  return JSON.stringify({ nftables: [nft.metainfo(), ...items] });
}

/** Run a JSON batch like `nft [-c] -j -f -`. */
export function runJsonBatch(nft: FakeNft, input: string, check: boolean): NftOutcome {
  let doc: unknown;
  try {
    doc = JSON.parse(input);
  } catch (e) {
    return fail(`internal:0:0-0: Error: Failed to parse JSON input: ${(e as Error).message}`);
  }
  const items = (doc as { nftables?: unknown }).nftables;
  if (!Array.isArray(items)) return fail('internal:0:0-0: Error: Input does not contain "nftables" array.');
  try {
    const listings = nft.transact(items, check);
    return ok(listings.map((l) => listingText(nft, l)).join('\n'));
  } catch (e) {
    if (!(e instanceof NftCommandFailure)) throw e;
    if (e.parse) return fail(`internal:0:0-0: Error: ${e.message}\ninternal:0:0-0: Error: Parsing command array at index ${e.index} failed.`);
    return fail(`internal:0:0-0: Error: ${e.message}\n${describeNftCommand(items[e.index])}`);
  }
}

/** `list` words (after `list`) as a JSON list command body: `['table','inet','t']` → `['table', {family, name}]`. */
function listBody(words: string[]): [string, Record<string, unknown> | null] | undefined {
  const [what, ...rest] = words;
  if (!what) return undefined;
  const named = (k: string): [string, Record<string, unknown>] | undefined => {
    if (k === 'table') return rest.length === 2 ? ['table', { family: rest[0], name: rest[1] }] : undefined;
    return rest.length === 3 ? [k, { family: rest[0], table: rest[1], name: rest[2] }] : undefined;
  };
  if (what === 'ruleset' || what === 'tables' || what === 'chains' || what === 'flowtables') return rest.length <= 1 ? [what, rest[0] ? { family: rest[0] } : null] : undefined;
  if (['sets', 'maps', 'counters', 'quotas', 'limits', 'meters'].includes(what)) {
    if (rest.length === 0) return [what, null];
    if (rest.length === 1) return [what, { family: rest[0] }];
    if (rest[0] === 'table' && rest.length === 3) return [what, { family: rest[1], table: rest[2] }];
    return undefined;
  }
  if (['table', 'chain', 'set', 'map', 'counter', 'quota', 'limit', 'flowtable', 'meter'].includes(what)) return named(what);
  return undefined;
}

/** One line of nft text as JSON commands (the simple forms netfence uses). */
function textCommand(line: string): unknown[] | string {
  const m = /^(add|create|insert|delete|destroy|flush|replace)\s+(table|chain|rule|element|set|map|ruleset)\b\s*(.*)$/.exec(line.trim());
  if (!m) return `syntax error, unexpected ${JSON.stringify(line.trim().split(/\s+/)[0] ?? '')}`;
  const [, verb, kind, restText] = m as unknown as [string, string, string, string];
  const words = restText.match(/"[^"]*"|\{[^}]*\}|[^\s;]+/g) ?? [];
  const [family, a, b] = words;
  if (kind === 'ruleset') return [{ [verb]: { ruleset: family ? { family } : null } }];
  if (!family) return 'syntax error, missing family';
  if (kind === 'table') return [{ [verb]: { table: { family, name: a } } }];
  if (kind === 'chain') {
    const body: Record<string, unknown> = { family, table: a, name: b };
    const spec = /\{([^}]*)\}/.exec(restText)?.[1] ?? '';
    const h = /type\s+(\w+)\s+hook\s+(\w+)(?:\s+device\s+"?([\w.-]+)"?)?\s+priority\s+(-?\d+)/.exec(spec);
    if (h) Object.assign(body, { type: h[1], hook: h[2], prio: Number(h[4]), ...(h[3] ? { dev: h[3] } : {}) });
    const p = /policy\s+(accept|drop)/.exec(spec);
    if (p) body.policy = p[1];
    return [{ [verb]: { chain: body } }];
  }
  if (kind === 'rule') {
    const chain = b;
    const after = restText.replace(/^\s*\S+\s+\S+\s+\S+\s*/, '');
    if (verb === 'delete' || verb === 'destroy') {
      const hm = /^handle\s+(\d+)/.exec(after);
      return hm ? [{ [verb]: { rule: { family, table: a, chain, handle: Number(hm[1]) } } }] : 'syntax error, expecting handle';
    }
    const pos = /^(handle|position|index)\s+(\d+)\s+/.exec(after);
    const text = pos ? after.slice(pos[0].length) : after;
    const verdict = /\b(jump|goto)\s+([\w.-]+)\s*$/.exec(text) ?? /\b(accept|drop|return)\s*$/.exec(text);
    const expr = !verdict ? [] : verdict[2] ? [{ [verdict[1] as string]: { target: verdict[2] } }] : [{ [verdict[1] as string]: null }];
    const rule: Record<string, unknown> = { family, table: a, chain, expr, 'fake-text': text };
    if (pos) rule[pos[1] === 'index' ? 'index' : 'handle'] = Number(pos[2]);
    return [{ [verb]: { rule } }];
  }
  if (kind === 'element' || kind === 'set' || kind === 'map') {
    const list = /\{([^}]*)\}/.exec(restText)?.[1];
    const elem = (list ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        const pm = /^([\d.:a-fA-F]+)\/(\d+)$/.exec(s);
        return pm ? { prefix: { addr: pm[1], len: Number(pm[2]) } } : /^\d+$/.test(s) ? Number(s) : s.replace(/^"|"$/g, '');
      });
    if (kind === 'element') return [{ [verb]: { element: { family, table: a, name: b, elem } } }];
    return verb === 'add' || verb === 'create' ? 'fake nft: sets in nft text are not modelled (use JSON)' : [{ [verb]: { [kind]: { family, table: a, name: b } } }];
  }
  return `syntax error near ${JSON.stringify(line)}`;
}

/** Run nft text (one command per line) as one transaction; `where` prefixes error lines (`/dev/stdin:1:1-1: `). */
export function runText(nft: FakeNft, text: string, check: boolean, where: string): NftOutcome {
  const commands: unknown[] = [];
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const c = textCommand(line);
    if (typeof c === 'string') return fail(`${where}Error: ${c}\n${line}`);
    for (const x of c) {
      commands.push(x);
      lines.push(line);
    }
  }
  try {
    nft.transact(
      commands.map((c) => stripText(c)),
      check,
    );
    // text rules keep their text in the model
    if (!check) attachText(nft, commands);
    return ok();
  } catch (e) {
    if (!(e instanceof NftCommandFailure)) throw e;
    return fail(`${where}Error: ${e.message}\n${lines[e.index] ?? ''}`);
  }
}

function stripText(c: unknown): unknown {
  const o = structuredClone(c) as Record<string, Record<string, Record<string, unknown>>>;
  for (const v of Object.values(o)) if (v.rule) delete v.rule['fake-text'];
  return o;
}

function attachText(nft: FakeNft, commands: unknown[]): void {
  for (const c of commands) {
    const o = c as Record<string, Record<string, Record<string, unknown>>>;
    const r = o.add?.rule ?? o.insert?.rule;
    if (!r || typeof r['fake-text'] !== 'string') continue;
    const rules = nft.rules(String(r.family), String(r.table), String(r.chain));
    const newest = rules?.reduce((a, b) => (b.handle > a.handle ? b : a));
    if (newest) newest.text = r['fake-text'];
  }
}

/**
 * Answer one `nft` argv (argv[0] is `nft`) with stdin `input`, as nft would.
 */
export function runNftArgv(nft: FakeNft, argv: readonly string[], input?: string): NftOutcome {
  let check = false;
  let json = false;
  let terse = false;
  let file: string | undefined;
  const words: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-c' || a === '--check') check = true;
    else if (a === '-j' || a === '--json') json = true;
    else if (a === '-t' || a === '--terse') terse = true;
    else if (['-a', '--handle', '-n', '--numeric', '-s', '--stateless', '-y', '--numeric-priority', '-N', '-p'].includes(a)) continue;
    else if (a === '-v' || a === '--version' || a === '-V') return ok(`nftables v${nft.options.version} (${String(nft.metainfo().metainfo.release_name)})`);
    else if (a === '-f' || a === '--file') file = argv[++i];
    else words.push(a);
  }
  if (file !== undefined) {
    if (file !== '-' && file !== '/dev/stdin') return fail(`Error: Could not open file "${file}": fake nft reads standard input only`);
    const text = input ?? '';
    return json ? runJsonBatch(nft, text, check) : runText(nft, text, check, '/dev/stdin:1:1-1: ');
  }
  if (words.length === 0) return fail('Error: syntax error, unexpected end of file');
  if (words[0] === 'list') {
    const body = listBody(words.slice(1));
    if (!body) return fail(`Error: syntax error, unexpected list target\n${words.join(' ')}`);
    if (!json) return fail('fake nft: text listings are not modelled (use -j)');
    try {
      return ok(listingText(nft, nft.list(body[0], body[1], terse)));
    } catch (e) {
      if (!(e instanceof NftCommandFailure)) throw e;
      return fail(`Error: ${e.message}\n${words.join(' ')}`);
    }
  }
  return runText(nft, words.join(' '), check, '');
}
