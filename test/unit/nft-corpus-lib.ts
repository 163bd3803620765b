/**
 * Reading the upstream nftables JSON corpus (../shared/corpus/nftables-json)
 * at test time. The corpus is GPL test data: never copied into the project.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the repository. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Root of the corpus. */
export const corpusRoot = path.resolve(repoRoot, '../shared/corpus/nftables-json');

/** All files under `dir` (relative to the corpus root) whose names end with `suffix`, sorted. */
export function corpusFiles(dir: string, suffix: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(suffix)) out.push(p);
    }
  };
  walk(path.join(corpusRoot, dir));
  return out.sort();
}

/** One rule of a `.t.json` / `.t.json.output` file: the `# rule text` comment and its statement array. */
export interface CorpusEntry {
  file: string;
  index: number;
  /** The rule in nft text form, from the `#` comment line(s). */
  text: string;
  /** The statements, as JSON. */
  expr: unknown;
}

/** Split a `.t.json` file into entries (blocks separated by blank lines, `# text` then a JSON array). */
export function readEntries(file: string): CorpusEntry[] {
  const blocks = fs.readFileSync(file, 'utf8').split(/\n\s*\n/).map((b) => b.trim()).filter(Boolean);
  return blocks.map((b, index) => {
    const lines = b.split('\n');
    const comments = lines.filter((l) => l.startsWith('#'));
    const json = lines.filter((l) => !l.startsWith('#')).join('\n');
    return { file, index, text: comments.map((c) => c.replace(/^#\s?/, '')).join(' '), expr: JSON.parse(json) as unknown };
  });
}
