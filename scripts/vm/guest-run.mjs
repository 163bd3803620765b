// Runs inside the netfence VM (started by guest-setup.sh): executes the
// command from <share>/spec.json with its argv, environment and cwd, streams
// its output to the console, and writes <share>/result.json (exit code, guest
// kernel). The command's output directory is <share>/out, given to it as
// $NETFENCE_VM_OUT and substituted for the placeholder in argv. When the
// host's deadline (spec.deadline, epoch ms; the guest clock comes from the
// host's RTC) is near, the command's process group is killed so that the
// result still gets written and the VM powers off cleanly.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

const share = process.argv[2];
const PLACEHOLDER = '%NETFENCE_VM_OUT%';
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

let done = false;
function finish(result) {
  if (done) return;
  done = true;
  const tmp = join(share, 'result.json.tmp');
  writeFileSync(tmp, JSON.stringify({ kernel: release(), ...result }));
  renameSync(tmp, join(share, 'result.json'));
}

const spec = JSON.parse(readFileSync(join(share, 'spec.json'), 'utf8'));
const out = join(share, 'out');
mkdirSync(out, { recursive: true });
const argv = spec.argv.map((a) => a.split(PLACEHOLDER).join(out));
// Under software emulation, V8's signal-based wasm bounds checks once reported a bogus out-of-bounds
// access in tsx's module lexer (a DPI worker died before binding): explicit bounds checks instead.
const nodeOptions = [spec.env.NODE_OPTIONS, '--disable-wasm-trap-handler'].filter(Boolean).join(' ');
const env = { ...spec.env, NETFENCE_VM: '1', NETFENCE_VM_OUT: out, NODE_OPTIONS: nodeOptions };
const bootSeconds = uptime();
const setup = `setup ${process.env.nf_setup_start}s..${process.env.nf_setup_done}s, node up ${bootSeconds.toFixed(2)}s`;
console.log(`[netfence-vm] kernel ${release()} (${setup}); running ${JSON.stringify(argv)} in ${spec.cwd}`);

const t0 = Date.now();
// Pipes, not the console tty: tools see what they would see under CI. Own
// process group, so that a timeout takes the command's children along.
const child = spawn(argv[0], argv.slice(1), { cwd: spec.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
child.stdout.pipe(process.stdout);
child.stderr.pipe(process.stderr);
let timedOut = false;
if (spec.deadline) {
  const ms = Math.max(0, spec.deadline - Date.now());
  setTimeout(() => {
    timedOut = true;
    console.error(`[netfence-vm] the host's deadline is near: killing the command (process group ${child.pid})`);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }, ms).unref();
}
child.on('error', (e) => {
  console.error(`[netfence-vm] cannot run ${argv[0]}: ${e.message}`);
  finish({ exitCode: 127, error: e.message, bootSeconds, runMs: Date.now() - t0 });
});
child.on('close', (code, signal) => {
  const sig = signal ? { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 }[signal] ?? 0 : 0;
  finish({ exitCode: timedOut ? null : code ?? 128 + sig, signal: signal ?? undefined, timedOut, bootSeconds, runMs: Date.now() - t0 });
});
