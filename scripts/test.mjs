#!/usr/bin/env node
// `npm test`: type-check, unit tests, kernel tests (as root, never skipped),
// BPF build check, package checks and API docs. Prints one closing line
// "N passed, N failed" counting test cases and checks.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
let passed = 0;
let failed = 0;
const failures = [];

function step(name, argv, opts = {}) {
  console.log(`\n=== ${name}: ${argv.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', cwd: root, ...opts });
  const ok = r.status === 0;
  console.log(`=== ${name}: ${ok ? 'ok' : `FAILED (exit ${r.status ?? r.signal})`} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return ok;
}

function check(name, argv, opts) {
  if (step(name, argv, opts)) passed++;
  else {
    failed++;
    failures.push(name);
  }
}

function vitest(project) {
  const dir = mkdtempSync(join(tmpdir(), 'netfence-vitest-'));
  const out = join(dir, 'report.json');
  const ok = step(`${project} tests`, [bin('vitest'), 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${out}`]);
  let counted = false;
  if (existsSync(out)) {
    const rep = JSON.parse(readFileSync(out, 'utf8'));
    passed += rep.numPassedTests ?? 0;
    failed += (rep.numFailedTests ?? 0) + (rep.numPendingTests ?? 0) + (rep.numTodoTests ?? 0);
    if ((rep.numPendingTests ?? 0) + (rep.numTodoTests ?? 0) > 0) failures.push(`${project}: ${rep.numPendingTests} skipped tests (skips count as failures)`);
    if ((rep.numFailedTests ?? 0) > 0) failures.push(`${project}: ${rep.numFailedTests} failed tests`);
    counted = (rep.numTotalTests ?? 0) > 0;
  }
  if (!ok && (!counted || failures.length === 0)) {
    failed++;
    failures.push(`${project}: vitest exited non-zero`);
  } else if (!ok) {
    failures.push(`${project}: vitest exited non-zero`);
  }
  rmSync(dir, { recursive: true, force: true });
}

const isRoot = process.getuid?.() === 0;
const only = process.argv[2];

if (!only || only === 'typecheck') check('typecheck', [bin('tsc'), '--noEmit', '-p', 'tsconfig.json']);
if ((!only || only === 'bpf') && existsSync(join(root, 'bpf', 'Makefile'))) check('bpf build is reproducible', ['make', '-s', '-C', 'bpf', 'check']);
if (!only || only === 'unit') vitest('unit');
if (!only || only === 'kernel') {
  if (!isRoot) {
    failed++;
    failures.push('kernel tests need root and were not run');
    console.error('\n=== kernel tests need root: run `npm test` as root');
  } else vitest('kernel');
}
if (!only || only === 'package') {
  check('build', ['npm', 'run', '-s', 'build']);
  check('dist loads as ESM and CJS', ['node', 'scripts/check-dist.mjs']);
  check('publint', [bin('publint'), '--strict']);
  check('attw', [bin('attw'), '--pack', '.', '--profile', 'node16']);
}
if (!only || only === 'docs') check('typedoc', ['npm', 'run', '-s', 'docs']);

console.log('');
if (failures.length) console.log(`Failures:\n  - ${failures.join('\n  - ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || failures.length > 0 ? 1 : 0);
