#!/usr/bin/env node
// Smoke test of the built package: both module formats load and work.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cjs = require(join(root, 'dist', 'index.cjs'));
const esm = await import(pathToFileURL(join(root, 'dist', 'index.js')).href);
let bad = 0;
for (const [name, m] of [['cjs', cjs], ['esm', esm]]) {
  const ok = m.Ok(1).ok === true && m.Err(new Error('x')).err === true && typeof m.Firewall === 'function';
  console.log(`${name}: ${ok ? 'ok' : 'BROKEN'} (${Object.keys(m).length} exports)`);
  if (!ok) bad++;
}
for (const sub of ['smartproxy', 'lab']) {
  require(join(root, 'dist', `${sub}.cjs`));
  await import(pathToFileURL(join(root, 'dist', `${sub}.js`)).href);
}
process.exit(bad ? 1 : 0);
