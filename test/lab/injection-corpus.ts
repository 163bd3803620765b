/**
 * A fixed corpus of injection attempts, and a checker (independent of the
 * builders' own validation) that scans compiled plans for strings that must
 * never reach a tool.
 *
 * Every entry of {@link INJECTION_CORPUS} is placed in every string field of
 * every builder's input by test/unit/hostile-injection.test.ts; each one must
 * be refused with a typed error naming the field.
 */

/** Injection attempts: shell and nft metacharacters, control bytes, unicode tricks, overlong names, option-like and path-traversal strings. */
export const INJECTION_CORPUS: readonly string[] = [
  // quotes
  'a"b',
  "a'b",
  'x" ; flush ruleset ; "',
  "x' || true || '",
  // newlines / control characters
  'a\nb',
  'a\r\nflush ruleset',
  'eth0\nadd table ip evil',
  'a\tb',
  'a\x1bb',
  'a\x7f',
  // statement separators
  'a;b',
  'foo; flush ruleset',
  ';',
  // command substitution
  '$(reboot)',
  'a$(id)',
  '${IFS}',
  '`id`',
  'a`touch /tmp/pwn`b',
  // NUL
  'a\0b',
  '\0',
  'eth0\0',
  // overlong
  'a'.repeat(65),
  'a'.repeat(256),
  'x'.repeat(4097),
  // unicode: homoglyphs, RTL override, zero-width, combining, emoji, fullwidth
  'аdmin', // Cyrillic а
  'eth０', // fullwidth digit
  'evil\u202Egpj.exe',
  'a\u200Bb',
  '\uFEFFtable',
  'e\u0301',
  'tab🔥le',
  'ß',
  // path traversal and absolute paths
  '../etc',
  '../../../../etc/passwd',
  'a/../../b',
  '..',
  '.',
  '/etc/shadow',
  // option-like
  '--help',
  '-j',
  '-f-',
  '--version',
  '-',
  // whitespace / empty
  '',
  ' ',
  ' leading',
  'trailing ',
  'a b',
  // nft syntax
  '@set',
  'a{b}',
  'a}b',
  'tab#comment',
  'a\\b',
  // redirections / globs / pipes
  'a|b',
  'a&b',
  'a>b',
  'a<b',
  'a*b',
  'a?b',
  'a!b',
  '~root',
];

/** Names of the corpus entries, printable (for reports). */
export function corpusLabel(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 40 ? `${j.slice(0, 37)}..."` : j;
}

/** A forbidden string found in a plan. */
export interface Finding {
  /** JSON-ish path in the plan. */
  path: string;
  /** The offending value (shortened). */
  value: string;
  /** What is wrong with it. */
  why: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const NON_ASCII = /[^\x00-\x7f]/;
const SHELLISH = /[`"'\\;]|\$\(|\$\{/;
/** Keys of nft JSON objects whose string values are object names or device names. */
const NAME_KEYS = new Set(['table', 'name', 'chain', 'set', 'map', 'dev', 'device', 'target', 'jump', 'goto', 'flowtable']);
const NAME_OK = /^[A-Za-z0-9_][A-Za-z0-9_.@:-]*\*?$/;

function short(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

function scanStrings(v: unknown, path: string, out: Finding[], key: string | undefined, depth = 0): void {
  if (depth > 64) {
    out.push({ path, value: '', why: 'nesting deeper than 64' });
    return;
  }
  if (typeof v === 'string') {
    if (CONTROL.test(v)) out.push({ path, value: short(v), why: 'control character (NUL, newline, ESC, ...)' });
    if (NON_ASCII.test(v)) out.push({ path, value: short(v), why: 'non-ASCII character' });
    if (SHELLISH.test(v)) out.push({ path, value: short(v), why: 'quote, backslash, ; , $( or backtick' });
    if (key !== undefined && NAME_KEYS.has(key) && !NAME_OK.test(v.replace(/^@/, '')))
      out.push({ path, value: short(v), why: `not a plain name in name field "${key}"` });
    if (v.length > 4096) out.push({ path, value: short(v), why: 'longer than 4096 characters' });
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((e, i) => scanStrings(e, `${path}[${i}]`, out, key === 'dev' || key === 'device' ? key : undefined, depth + 1));
    return;
  }
  if (v && typeof v === 'object') {
    for (const [k, e] of Object.entries(v)) {
      if (CONTROL.test(k) || NON_ASCII.test(k) || SHELLISH.test(k)) out.push({ path: `${path}.${k}`, value: short(k), why: 'forbidden character in an object key' });
      scanStrings(e, `${path}.${k}`, out, k, depth + 1);
    }
  }
}

/** One argv element that must not look like an injected option. */
function scanArgv(argv: unknown, path: string, out: Finding[]): void {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
    out.push({ path, value: short(String(JSON.stringify(argv))), why: 'argv must be a non-empty array of strings' });
    return;
  }
  argv.forEach((a: string, i) => {
    if (CONTROL.test(a)) out.push({ path: `${path}[${i}]`, value: short(a), why: 'control character in argv' });
    if (NON_ASCII.test(a)) out.push({ path: `${path}[${i}]`, value: short(a), why: 'non-ASCII character in argv' });
    if (SHELLISH.test(a) && !(i > 0 && argv[i - 1] === '-j')) out.push({ path: `${path}[${i}]`, value: short(a), why: 'quote, backslash, ;, $( or backtick in argv' });
    if (a === '--help' || a === '--version' || a === '-h') out.push({ path: `${path}[${i}]`, value: short(a), why: 'help/version option in argv' });
    if (/(^|\/)\.\.(\/|$)/.test(a)) out.push({ path: `${path}[${i}]`, value: short(a), why: 'path traversal (..) in argv' });
  });
}

function scanAction(a: unknown, path: string, out: Finding[]): void {
  const act = a as { kind?: string; argv?: unknown; input?: unknown; path?: unknown; data?: unknown };
  if (!act || typeof act !== 'object') {
    out.push({ path, value: String(a), why: 'action is not an object' });
    return;
  }
  if (act.kind === 'exec') {
    scanArgv(act.argv, `${path}.argv`, out);
    if (typeof act.input === 'string') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(act.input);
      } catch {
        parsed = undefined;
      }
      if (parsed !== undefined) scanStrings(parsed, `${path}.input`, out, undefined);
      else if (CONTROL.test(act.input.replace(/\n$/g, '').replace(/\n/g, ' ')) || NON_ASCII.test(act.input))
        out.push({ path: `${path}.input`, value: short(act.input), why: 'control or non-ASCII character in stdin' });
    }
  } else if (typeof act.path === 'string') {
    const p = act.path;
    if (CONTROL.test(p) || NON_ASCII.test(p) || SHELLISH.test(p)) out.push({ path: `${path}.path`, value: short(p), why: 'forbidden character in a file path' });
    if (/(^|\/)\.\.(\/|$)/.test(p)) out.push({ path: `${path}.path`, value: short(p), why: 'path traversal (..) in a file path' });
    if (!p.startsWith('/')) out.push({ path: `${path}.path`, value: short(p), why: 'file path is not absolute' });
    if (typeof act.data === 'string' && (CONTROL.test(act.data.replace(/\n$/, '')) || NON_ASCII.test(act.data)))
      out.push({ path: `${path}.data`, value: short(act.data), why: 'control or non-ASCII character in written data' });
  }
}

/**
 * Scan a compiled plan for anything that must never reach a tool: every
 * string of the nft JSON, every argv element, stdin text, file paths and
 * written data, table references, owner and netns. Independent of the
 * builders' validation (a second line of defence for the tests).
 */
export function scanPlan(plan: unknown): Finding[] {
  const out: Finding[] = [];
  const p = plan as { owner?: unknown; netns?: unknown; tables?: unknown; nft?: unknown; steps?: unknown; xdp?: unknown; queue?: unknown };
  if (typeof p.owner !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.:@+=/-]{0,99}$/.test(p.owner)) out.push({ path: 'owner', value: short(String(p.owner)), why: 'owner is not a plain name' });
  if (p.netns !== undefined && (typeof p.netns !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(p.netns)))
    out.push({ path: 'netns', value: short(String(p.netns)), why: 'netns is not a plain name' });
  scanStrings(p.tables, 'tables', out, undefined);
  for (const t of Array.isArray(p.tables) ? p.tables : []) {
    const name = (t as { name?: unknown }).name;
    if (typeof name !== 'string' || !NAME_OK.test(name)) out.push({ path: 'tables', value: short(String(name)), why: 'table name is not a plain name' });
  }
  scanStrings(p.nft, 'nft', out, undefined);
  scanStrings(p.xdp, 'xdp', out, undefined);
  (Array.isArray(p.steps) ? p.steps : []).forEach((s: { id?: unknown; do?: unknown[]; undo?: unknown[] }, i: number) => {
    if (typeof s.id !== 'string' || CONTROL.test(s.id) || NON_ASCII.test(s.id)) out.push({ path: `steps[${i}].id`, value: short(String(s.id)), why: 'step id is not plain' });
    (s.do ?? []).forEach((a, j) => scanAction(a, `steps[${i}].do[${j}]`, out));
    (s.undo ?? []).forEach((a, j) => scanAction(a, `steps[${i}].undo[${j}]`, out));
  });
  return out;
}

/** Scan argv + stdin seen by an instrumented process runner. */
export function scanInvocation(argv: readonly string[], input: string | undefined): Finding[] {
  const out: Finding[] = [];
  scanAction({ kind: 'exec', argv: [...argv], input }, 'run', out);
  return out;
}
