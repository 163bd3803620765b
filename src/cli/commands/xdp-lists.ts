/**
 * The entry lists of `netfence xdp add|remove`: list files (`--file`, one
 * entry per line, `#` comments) and arguments, every line validated with the
 * blocklist's own parser before anything is written; bad lines are reported
 * with their file and line number.
 */
import { readFileSync } from 'node:fs';
import { parseEntry } from '../../xdp/entries.js';
import { fastIPv4Entry } from '../../xdp/packed.js';
import { EXIT } from './common.js';

/** One line that is not an entry. */
export interface BadLine {
  file: string;
  line: number;
  text: string;
  reason: string;
}

/**
 * Entries of a list file's text: one per line, `#` starts a comment, blank
 * lines skipped. Every line is validated with the blocklist's own parser; the
 * bad ones are returned with their line numbers (at most `maxBad`).
 */
export function parseListText(text: string, file: string, maxBad = 20): { entries: string[]; bad: BadLine[]; badCount: number } {
  const entries: string[] = [];
  const bad: BadLine[] = [];
  let badCount = 0;
  let line = 0;
  let start = 0;
  const n = text.length;
  while (start <= n) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = n;
    line++;
    let s = text.slice(start, end);
    const hash = s.indexOf('#');
    if (hash !== -1) s = s.slice(0, hash);
    s = s.trim();
    if (s !== '') {
      // the common case (an IPv4 address or prefix) is checked without building an entry object
      const r = fastIPv4Entry(s) ? undefined : parseEntry(s);
      if (r === undefined || r.ok) entries.push(s);
      else {
        badCount++;
        if (bad.length < maxBad) bad.push({ file, line, text: s.length > 80 ? `${s.slice(0, 80)}…` : s, reason: r.val });
      }
    }
    if (end === n) break;
    start = end + 1;
  }
  return { entries, bad, badCount };
}

function readList(file: string): string {
  return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
}

/** Entries from `--file`s and positionals; prints the bad lines and returns 2 when any. */
export function gather(name: string, files: string[], positionals: string[]): string[] | number {
  const all: string[] = [];
  const bad: BadLine[] = [];
  let badCount = 0;
  for (const f of files) {
    let text: string;
    try {
      text = readList(f);
    } catch (e) {
      console.error(`netfence ${name}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.\nCheck the path (\`-\` reads standard input).`);
      return EXIT.usage;
    }
    const p = parseListText(text, f);
    for (const e of p.entries) all.push(e);
    bad.push(...p.bad);
    badCount += p.badCount;
  }
  positionals.forEach((a, i) => {
    const r = parseEntry(a);
    if (r.ok) all.push(a);
    else {
      badCount++;
      if (bad.length < 20) bad.push({ file: 'argument', line: i + 1, text: a, reason: r.val });
    }
  });
  if (badCount > 0) {
    const first = bad[0]!;
    const where = (b: BadLine) => (b.file === 'argument' ? `argument ${b.line}` : `${b.file}:${b.line}`);
    console.error(`netfence ${name}: ${where(first)}: '${first.text}' is not an address or prefix: ${first.reason}${/[.?!]$/.test(first.reason) ? '' : '.'}`);
    for (const b of bad.slice(1)) console.error(`  ${where(b)}: '${b.text}': ${b.reason}`);
    if (badCount > bad.length) console.error(`  … and ${badCount - bad.length} more bad line(s)`);
    console.error(`Nothing was changed: fix ${badCount === 1 ? 'this line' : `these ${badCount} lines`} and run again.`);
    return EXIT.usage;
  }
  return all;
}
