/**
 * Conformance of netfence's nft JSON schemas against nftables' own test
 * corpus (release 1.1.6), read at test time from ../shared/corpus/nftables-json.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findOpaque, parseDocument, parseListing, parseStatements } from '../../src/nft/index.js';
import { corpusFiles, readEntries } from './nft-corpus-lib.js';

describe('nft JSON schema vs the upstream corpus', () => {
  it('parses every py/**/*.t.json and *.t.json.output rule and every shell/**/*.json-nft document, with nothing opaque', () => {
    const inputs = corpusFiles('py', '.t.json');
    const outputs = corpusFiles('py', '.t.json.output');
    const dumps = corpusFiles('shell', '.json-nft');
    const failures: string[] = [];
    let opaque = 0;
    const stats = { inputEntries: 0, inputStrict: 0, inputTolerant: 0, outputEntries: 0, outputTolerant: 0, outputStrict: 0, documents: 0, documentsTolerant: 0, documentsStrict: 0 };

    for (const file of inputs) {
      for (const e of readEntries(file)) {
        stats.inputEntries++;
        const strict = parseStatements(e.expr, { mode: 'strict' });
        if (strict.ok) stats.inputStrict++;
        const tol = parseStatements(e.expr, { mode: 'tolerant' });
        if (tol.ok) {
          stats.inputTolerant++;
          opaque += findOpaque(tol.val).length;
        } else failures.push(`${file}#${e.index} (${e.text}): ${tol.val.message}`);
      }
    }
    for (const file of outputs) {
      for (const e of readEntries(file)) {
        stats.outputEntries++;
        if (parseStatements(e.expr, { mode: 'strict' }).ok) stats.outputStrict++;
        const tol = parseStatements(e.expr, { mode: 'tolerant' });
        if (tol.ok) {
          stats.outputTolerant++;
          opaque += findOpaque(tol.val).length;
        } else failures.push(`${file}#${e.index} (${e.text}): ${tol.val.message}`);
      }
    }
    for (const file of dumps) {
      stats.documents++;
      const text = fs.readFileSync(file, 'utf8');
      const tol = parseListing(text);
      if (tol.ok) {
        stats.documentsTolerant++;
        opaque += findOpaque(tol.val).length;
      } else failures.push(`${file}: ${tol.val.message}`);
      if (parseDocument(text, { mode: 'strict' }).ok) stats.documentsStrict++;
    }

    const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
    console.log(
      [
        'nft JSON corpus conformance:',
        `  files: ${inputs.length} .t.json, ${outputs.length} .t.json.output, ${dumps.length} .json-nft`,
        `  .t.json entries: ${stats.inputEntries}, parsed ${stats.inputTolerant} (${pct(stats.inputTolerant, stats.inputEntries)}), strict ${stats.inputStrict} (${pct(stats.inputStrict, stats.inputEntries)})`,
        `  .t.json.output entries: ${stats.outputEntries}, parsed tolerant ${stats.outputTolerant} (${pct(stats.outputTolerant, stats.outputEntries)}), also strict ${stats.outputStrict}`,
        `  .json-nft documents: ${stats.documents}, parsed tolerant ${stats.documentsTolerant} (${pct(stats.documentsTolerant, stats.documents)}), also strict ${stats.documentsStrict}`,
        `  opaque (unmodelled) statements/expressions/objects: ${opaque}`,
      ].join('\n'),
    );
    expect(inputs.length).toBeGreaterThan(90);
    expect(dumps.length).toBeGreaterThan(400);
    expect(failures.slice(0, 20)).toEqual([]);
    expect(stats.inputTolerant).toBe(stats.inputEntries);
    expect(stats.outputTolerant).toBe(stats.outputEntries);
    expect(stats.documentsTolerant).toBe(stats.documents);
    expect(opaque).toBe(0);
  });
});
