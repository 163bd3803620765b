#!/usr/bin/env node
// Writes schema/netfence.schema.json, the JSON Schema of netfence's declarative
// files (`netfence plan|apply|destroy FILE`), generated from the same zod schemas
// the library's classes validate their options with (src/declare/schema.ts).
// `--check` exits 1 when the file differs from what the schemas give now.
// test/unit/declare-schema.test.ts runs the same comparison, so the shipped
// file cannot go stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const out = fileURLToPath(new URL('../schema/netfence.schema.json', import.meta.url));
const { declarationSchemaText } = await tsImport('../src/declare/schema.ts', import.meta.url);
const text = declarationSchemaText();
if (process.argv.includes('--check')) {
  let cur = '';
  try {
    cur = readFileSync(out, 'utf8');
  } catch {
    // missing: differs
  }
  if (cur !== text) {
    console.error(`${out} is stale: run node scripts/gen-schema.mjs`);
    process.exit(1);
  }
  console.log(`${out} is up to date`);
} else {
  writeFileSync(out, text);
  console.log(`wrote ${out} (${text.length} bytes)`);
}
