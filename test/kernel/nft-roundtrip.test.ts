/**
 * Kernel round-trip of upstream nftables' rule corpus through netfence's own
 * apply path: every `.t.json` rule that this machine's nft accepts is applied
 * with `apply()` into a throwaway namespace, listed back with `nftList()`, and
 * compared with the corpus's expected listing (`.t.json.output`, or the input
 * when nft lists it unchanged).
 *
 * Categories printed:
 * - passed: listed back exactly as the corpus expects;
 * - not accepted by this nft: raw `nft -c -j -f -` rejects the rule too (the
 *   corpus is nftables 1.1.6; this machine may run 1.0.6);
 * - listed differently by this nft: netfence's listing is identical to what
 *   raw `nft -j -f -` of the same JSON lists, and both differ from 1.1.6's
 *   expected output (an nft version difference, not netfence's);
 * - failed: anything else — netfence refused a rule nft accepts, or its
 *   apply path listed something different from raw nft. Any failure fails.
 *
 * Time-valued fields are compared as "a time", not by value: `last used`
 * (milliseconds since the rule last matched, which grow while the test runs)
 * and element `expires`. Whether a field is there still counts.
 *
 * "This nft" is the one netfence runs (`$NETFENCE_NFT`, see docs/nft.md); the
 * raw-nft comparisons use the same binary (they go through `run()`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabHost } from '../../src/lab/index.js';
import { apply, destroy } from '../../src/plan/executor.js';
import { nftList } from '../../src/host/nft.js';
import { run } from '../../src/host/run.js';
import type { Plan, TableRef } from '../../src/plan/types.js';
import { corpusFiles, corpusRoot, readEntries, type CorpusEntry } from '../unit/nft-corpus-lib.js';
import type { Statement } from '../../src/nft/schema/index.js';

interface TableSpec {
  family: TableRef['family'];
  name: string;
  chains: string[];
}
interface TFile {
  chains: Map<string, string>;
  tables: TableSpec[];
  setup: string[];
}

/** Parse the header lines of a `.t` file: chain specs, tables, sets, maps, objects, elements. */
function parseT(file: string): TFile {
  const chains = new Map<string, string>();
  const tables: TableSpec[] = [];
  const setup: string[] = [];
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line.startsWith(':')) {
      const [name, spec] = line.slice(1).split(';');
      if (name && spec) chains.set(name, spec);
    } else if (line.startsWith('*')) {
      const [family, name, ch] = line.slice(1).split(';');
      tables.push({ family: family as TableRef['family'], name: name!, chains: (ch ?? '').split(',').filter(Boolean) });
    } else if (/^[!%?]/.test(line) && line.endsWith(';ok')) {
      setup.push(line.slice(0, -3));
    }
  }
  return { chains, tables, setup };
}

/** nft text that creates the `.t` header objects in table `t`. */
function setupText(t: TableSpec, tf: TFile): string[] {
  const out: string[] = [];
  for (const c of t.chains) {
    const spec = tf.chains.get(c);
    out.push(`add chain ${t.family} ${t.name} ${c} ${spec ? `{ ${spec}; }` : ''}`);
  }
  for (const s of tf.setup) {
    const [head = '', ...restParts] = s.slice(1).split(' ');
    const rest = restParts.join(' ');
    if (s.startsWith('!')) {
      const body = rest
        .replace(/\s+(flags|timeout|size|policy)\s+/g, '; $1 ')
        .trim();
      out.push(`add ${rest.includes(' : ') ? 'map' : 'set'} ${t.family} ${t.name} ${head} { ${body}; }`);
    } else if (s.startsWith('%')) {
      const m = /^type (ct helper|ct timeout|ct expectation|counter|quota|limit|synproxy)\s*(.*)$/.exec(rest);
      if (!m) continue;
      const body = m[2]!.trim();
      out.push(`add ${m[1]} ${t.family} ${t.name} ${head} ${body.startsWith('{') || body === '' ? body : `{ ${body} }`}`);
    } else if (s.startsWith('?')) {
      out.push(`add element ${t.family} ${t.name} ${head} { ${rest} }`);
    }
  }
  return out;
}

const TIME = '<time>';
/** A copy with time-valued fields replaced by a placeholder: `last.used`, `expires`. */
function timeless(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(timeless);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'expires') out[k] = TIME;
    else if (k === 'last' && x !== null && typeof x === 'object' && !Array.isArray(x)) out[k] = { ...(x as object), ...('used' in x ? { used: TIME } : {}) };
    else out[k] = timeless(x);
  }
  return out;
}
const same = (a: unknown, b: unknown): boolean => isDeepStrictEqual(timeless(a), timeless(b));

const counts = { entries: 0, passed: 0, notAccepted: 0, listedDifferently: 0, failed: 0 };
const failures: string[] = [];
const setupErrors: string[] = [];
let lab: Lab;
let host: LabHost;

beforeAll(async () => {
  lab = await Lab.create('roundtrip');
  host = await lab.host('rt');
});
afterAll(async () => {
  await lab?.destroy();
});

/** The rules of a chain, in order, as listed by nft. */
async function listRules(netns: string, t: TableSpec, chain: string): Promise<unknown[]> {
  const l = await nftList(['chain', t.family, t.name, chain], { netns });
  if (l.err) throw l.val;
  return (l.val.nftables as Record<string, unknown>[])
    .filter((o) => 'rule' in o)
    .map((o) => (o.rule as { expr: unknown }).expr);
}

async function rawNft(netns: string, commands: unknown[], check: boolean): Promise<boolean> {
  const argv = check ? ['nft', '-c', '-j', '-f', '-'] : ['nft', '-j', '-f', '-'];
  const r = await run(argv, { netns, input: JSON.stringify({ nftables: commands }) });
  return r.ok;
}

async function roundTripFile(tFile: string): Promise<void> {
  const jsonFile = `${tFile}.json`;
  if (!fs.existsSync(jsonFile)) return;
  const tf = parseT(tFile);
  const entries = readEntries(jsonFile);
  const expected = new Map<string, unknown>();
  if (fs.existsSync(`${jsonFile}.output`)) for (const e of readEntries(`${jsonFile}.output`)) expected.set(e.text, e.expr);
  const netns = host.netns;
  const rel = path.relative(corpusRoot, tFile);

  for (const t of tf.tables) {
    const ref: TableRef = { family: t.family, name: t.name };
    // The table is created by netfence (owned, marked); the .t header objects in nft text.
    const created = await apply({ owner: 'corpus', netns, tables: [ref], nft: [], steps: [], xdp: [], queue: [], decisions: [] });
    if (created.err) throw created.val;
    for (const line of setupText(t, tf)) {
      const r = await run(['nft', '-f', '-'], { netns, input: line });
      if (r.err) setupErrors.push(`${rel} ${t.family}: ${line}: ${r.val.failure.stderr.split('\n')[0]}`);
    }

    for (const chain of t.chains) {
      let pending: CorpusEntry[] = [...entries];
      // Apply all rules of the file in one plan; when nft rejects one, classify it and retry without it.
      for (;;) {
        const cmds = pending.map((e) => ({ add: { rule: { family: t.family, table: t.name, chain, expr: e.expr as Statement[] } } }));
        const plan: Plan = { owner: 'corpus', netns, tables: [ref], nft: cmds, steps: [], xdp: [], queue: [], decisions: [] };
        const r = await apply(plan);
        if (r.ok) break;
        const cause = r.val.cause as { failure?: { failedIndex?: number } } | undefined;
        const idx = cause?.failure?.failedIndex;
        if (idx === undefined || idx < 0 || idx >= pending.length) {
          // netfence refused the plan before nft saw it (validation): find each refused rule alone.
          const keep: CorpusEntry[] = [];
          for (const e of pending) {
            const one = await apply({ ...plan, nft: [{ add: { rule: { family: t.family, table: t.name, chain, expr: e.expr as Statement[] } } }] });
            if (one.ok) {
              keep.push(e);
              continue;
            }
            counts.entries++;
            if (await rawNft(netns, [{ add: { rule: { family: t.family, table: t.name, chain, expr: e.expr } } }], true)) {
              counts.failed++;
              failures.push(`${rel} [${t.family} ${chain}] refused by netfence, accepted by nft: ${e.text}\n    ${one.val.message.split('\n')[0]}`);
            } else counts.notAccepted++;
          }
          // Rules accepted one by one were applied: flush and go round once more with them.
          await run(['nft', 'flush', 'chain', t.family, t.name, chain], { netns });
          pending = keep;
          continue;
        }
        const bad = pending[idx]!;
        counts.entries++;
        if (await rawNft(netns, [cmds[idx]], true)) {
          counts.failed++;
          failures.push(`${rel} [${t.family} ${chain}] netfence apply failed but nft -c accepts: ${bad.text}`);
        } else counts.notAccepted++;
        pending = pending.filter((_, i) => i !== idx);
      }

      const listed = await listRules(netns, t, chain);
      if (listed.length !== pending.length) {
        counts.failed += pending.length;
        counts.entries += pending.length;
        failures.push(`${rel} [${t.family} ${chain}] applied ${pending.length} rules, listed ${listed.length}`);
        continue;
      }
      // Raw nft of the same JSON into a sibling chain of the same kind, for telling
      // version differences from ours (rule by rule if the batch is refused).
      const sibling = `${chain}_raw`;
      const spec = tf.chains.get(chain);
      await run(['nft', '-f', '-'], { netns, input: `add chain ${t.family} ${t.name} ${sibling} ${spec ? `{ ${spec}; }` : ''}` });
      const rawCmds = pending.map((e) => ({ add: { rule: { family: t.family, table: t.name, chain: sibling, expr: e.expr } } }));
      let rawListed: (unknown | undefined)[];
      if (await rawNft(netns, rawCmds, false)) rawListed = await listRules(netns, t, sibling);
      else {
        rawListed = [];
        for (const c of rawCmds) {
          const ok = await rawNft(netns, [c], false);
          const l = ok ? await listRules(netns, t, sibling) : [];
          rawListed.push(ok ? l[l.length - 1] : undefined);
        }
      }
      pending.forEach((e, i) => {
        counts.entries++;
        const want = expected.get(e.text) ?? e.expr;
        if (same(listed[i], want)) counts.passed++;
        else if (rawListed[i] !== undefined && same(listed[i], rawListed[i])) counts.listedDifferently++;
        else {
          counts.failed++;
          failures.push(`${rel} [${t.family} ${chain}] listing differs from raw nft: ${e.text}\n    ours: ${JSON.stringify(listed[i])}\n    raw:  ${JSON.stringify(rawListed[i])}`);
        }
      });
      await run(['nft', 'flush', 'chain', t.family, t.name, chain], { netns });
      await run(['nft', 'delete', 'chain', t.family, t.name, sibling], { netns });
    }
    const d = await destroy([ref], { netns, owner: 'corpus' });
    if (d.err) throw d.val;
  }
}

describe('nftables corpus kernel round-trip', () => {
  it('applies every corpus rule this nft accepts through netfence and lists it back as expected', async () => {
    const files = corpusFiles('py', '.t');
    for (const f of files) await roundTripFile(f);
    const version = await run(['nft', '--version']);
    console.log(
      `[round-trip] ${version.ok ? version.val.stdout : 'nft ?'}: ${counts.entries} rule placements from ${files.length} .t files — ` +
        `passed ${counts.passed}, not accepted by this nft ${counts.notAccepted}, ` +
        `listed differently by this nft (identical to raw nft) ${counts.listedDifferently}, failed ${counts.failed}`,
    );
    if (setupErrors.length) console.log(`[round-trip] .t header objects this nft refused (${setupErrors.length}):\n  ${setupErrors.join('\n  ')}`);
    if (failures.length) console.log(`[round-trip] failures:\n  ${failures.slice(0, 400).join('\n  ')}`);
    expect(counts.passed).toBeGreaterThan(1000);
    expect(failures).toEqual([]);
  }, 900_000);
});
