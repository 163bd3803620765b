#!/usr/bin/env node
// Runs a command inside Debian's distribution kernel under qemu (see README.md):
//
//   node scripts/vm/run.mjs [--timeout SECONDS] [--env K=V]... [--out DIR]
//                           [--cwd DIR] [--verbose] -- argv...
//
// Exit status: the command's, 124 on timeout, 125 when the VM itself failed.
// In argv, %NETFENCE_VM_OUT% stands for the guest's output directory (also in
// $NETFENCE_VM_OUT inside the guest); files written there land in --out DIR.
import { OUT_PLACEHOLDER, runInVm } from './vm.mjs';

function usage(msg) {
  if (msg) console.error(`run.mjs: ${msg}`);
  console.error('usage: node scripts/vm/run.mjs [--timeout SECONDS] [--env K=V]... [--out DIR] [--cwd DIR] [--verbose] -- argv...');
  console.error(`  ${OUT_PLACEHOLDER} in argv = the guest's output directory (copied to --out DIR afterwards)`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opts = { env: { ...process.env }, timeoutMs: 30 * 60_000 };
let i = 0;
for (; i < args.length; i++) {
  const a = args[i];
  const val = () => (i + 1 < args.length ? args[++i] : usage(`${a} needs a value`));
  if (a === '--') {
    i++;
    break;
  } else if (a === '--timeout') {
    const s = Number(val());
    if (!(s > 0)) usage('--timeout takes a positive number of seconds');
    opts.timeoutMs = s * 1000;
  } else if (a === '--env') {
    const kv = val();
    const eq = kv.indexOf('=');
    if (eq <= 0) usage(`--env ${kv}: expected K=V`);
    opts.env[kv.slice(0, eq)] = kv.slice(eq + 1);
  } else if (a === '--out') opts.outDir = val();
  else if (a === '--cwd') opts.cwd = val();
  else if (a === '--verbose') opts.verbose = true;
  else if (a === '-h' || a === '--help') usage();
  else usage(`unknown option ${a}`);
}
const argv = args.slice(i);
if (!argv.length) usage('no command given');

// Ctrl-C / kill: stop qemu and clean up rather than leave it running.
const ac = new AbortController();
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => ac.abort());

const secs = (ms) => (ms == null ? '?' : `${(ms / 1000).toFixed(1)}s`);
try {
  const r = await runInVm({ ...opts, argv, signal: ac.signal });
  const status = r.aborted ? 'aborted' : r.timedOut ? 'timeout' : `exit ${r.exitCode}`;
  const out = r.outFiles.length && opts.outDir ? `, out: ${r.outFiles.join(' ')} -> ${opts.outDir}` : '';
  console.error(`[vm] guest kernel ${r.kernel ?? '?'}, accel ${r.accel}, boot ${r.bootSeconds == null ? '?' : `${r.bootSeconds.toFixed(1)}s`}, command ${secs(r.runMs)}, wall ${secs(r.wallMs)}, ${status}${out}`);
  process.exit(r.aborted ? 130 : r.timedOut ? 124 : r.exitCode ?? 125);
} catch (e) {
  console.error(`[vm] ${e.message}`);
  process.exit(125);
}
