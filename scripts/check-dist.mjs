#!/usr/bin/env node
// Smoke test of the built package: every subpath loads in both module formats
// and works; `netfence` is the public surface only, the low-level pieces are in
// `netfence/advanced`, and the two share one copy of every class (an error made
// behind `netfence/advanced` is `instanceof` the error classes of `netfence`).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const load = async (sub) => ({ cjs: require(join(root, 'dist', `${sub}.cjs`)), esm: await import(pathToFileURL(join(root, 'dist', `${sub}.js`)).href) });
const names = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== 'module.exports');

const main = await load('index');
const advanced = await load('advanced');
let bad = 0;
const fail = (what) => {
  console.log(`BROKEN: ${what}`);
  bad++;
};

for (const format of ['cjs', 'esm']) {
  const m = main[format];
  const a = advanced[format];
  const ok = m.Ok(1).ok === true && m.Err(new Error('x')).err === true && typeof m.Firewall === 'function' && typeof m.Throttler === 'function' && typeof m.reconcile === 'function';
  console.log(`netfence ${format}: ${ok ? 'ok' : 'BROKEN'} (${names(m).length} exports)`);
  if (!ok) bad++;
  // unwrap() rethrows the original typed error
  try {
    m.Err(new m.UnsupportedError('x', 'y')).unwrap();
    fail(`${format}: unwrap did not throw`);
  } catch (e) {
    if (!(e instanceof m.UnsupportedError) || e.code !== 'UNSUPPORTED') fail(`${format}: unwrap did not rethrow the original error`);
  }
  // the low-level pieces are not in `netfence`
  for (const internal of ['run', 'apply', 'nftApply', 'planBatch', 'ownedTable', 'configureLocks', 'nft', 'nfqueue', 'emptyPlan', 'fromZodIssues']) {
    if (internal in m) fail(`${format}: netfence exports the internal ${internal}`);
    if (!(internal in a)) fail(`${format}: netfence/advanced lacks ${internal}`);
  }
  const both = names(a).filter((n) => n in m);
  if (both.length) fail(`${format}: exported by both netfence and netfence/advanced: ${both.join(', ')}`);
  // one copy of each class across the subpaths: an advanced function's error is a netfence error
  const r = await a.nftList(['table', 'inet', 'bad;word']);
  if (!(r.err && r.val instanceof m.CommandError && r.val instanceof m.NetfenceError)) fail(`${format}: an error from netfence/advanced is not instanceof netfence's CommandError`);
  const plan = a.emptyPlan('smoke:test');
  if (!Array.isArray(plan.nft) || typeof a.nft !== 'object' || typeof a.nfqueue !== 'object') fail(`${format}: advanced emptyPlan/nft/nfqueue`);
  console.log(`netfence/advanced ${format}: ${names(a).length} exports`);
}
for (const sub of ['smartproxy', 'lab']) {
  const s = await load(sub);
  for (const format of ['cjs', 'esm']) if (names(s[format]).length === 0) fail(`${sub} ${format}: no exports`);
}
// netfence/testing: a FakeHost applies a plan through the same executor copy
const testing = await load('testing');
for (const format of ['cjs', 'esm']) {
  const t = testing[format];
  const fake = new t.FakeHost({ netns: ['smoke'] });
  const plan = advanced[format].emptyPlan('smoke:test', 'smoke');
  const r = await advanced[format].withHost(fake, () => advanced[format].check(plan));
  if (!(typeof t.FakeHost === 'function' && r.ok)) fail(`testing ${format}: FakeHost with the executor`);
  else console.log(`netfence/testing ${format}: ${names(t).length} exports`);
}
if (typeof (await load('smartproxy')).esm.NetfenceRouteManager?.prototype.destroy !== 'function') fail('smartproxy: NetfenceRouteManager.destroy');
// the confirm watchdog entry (started detached by apply({ confirmWithinMs })) loads in both formats: without an id it exits 2
for (const f of ['confirm-watchdog.js', 'confirm-watchdog.cjs']) {
  const r = spawnSync(process.execPath, [join(root, 'dist', f)], { encoding: 'utf8' });
  if (r.status !== 2 || !r.stdout.includes('no journal entry')) fail(`${f}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  else console.log(`${f}: loads`);
}
process.exit(bad ? 1 : 0);
