// runInVm(): runs one command inside Debian's distribution kernel under qemu,
// with this machine's root filesystem shared read-only (9p) under a tmpfs
// overlay, so the project and node are at the same paths. See README.md.
import { spawn } from 'node:child_process';
import { closeSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TAG_CTL, TAG_ROOT, ensureInitramfs } from './initramfs.mjs';
import { cacheDir, ensureKernel } from './kernel.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const GUEST_SETUP = join(here, 'guest-setup.sh');
/** Substituted, inside the guest, by the guest's output directory in every argv element. */
export const OUT_PLACEHOLDER = '%NETFENCE_VM_OUT%';
/** Time the guest gets between killing a command at the deadline and qemu being killed. */
const GUEST_GRACE_MS = 20_000;

/**
 * KVM only where it can work: the CPU advertises vmx/svm and /dev/kvm opens.
 * (A /dev/kvm without vmx/svm, as in nested sandboxes, hangs the guest.)
 * `$NETFENCE_VM_ACCEL=kvm|tcg` forces a choice.
 */
export function chooseAccel() {
  const forced = process.env.NETFENCE_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  } catch {
    /* no cpuinfo: no kvm */
  }
  if (!/\b(vmx|svm)\b/.test(flags)) return 'tcg';
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
    return 'kvm';
  } catch {
    return 'tcg';
  }
}

// Values travel on the kernel command line (init's environment): no spaces or quotes.
function cmdlineSafe(name, value) {
  if (!/^[A-Za-z0-9_./+@:,-]+$/.test(value)) throw new Error(`${name} ${JSON.stringify(value)} cannot travel on the kernel command line (only [A-Za-z0-9_./+@:,-])`);
  return value;
}

function alive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * One VM at a time on this machine (TCG guests are CPU-bound; two of them on
 * two cores make both more than twice as slow and starve the 9p I/O thread).
 * A lock directory in the cache holds the owner's pid and its qemu's pid; it
 * is stale once both are gone. `$NETFENCE_VM_PARALLEL=1` skips the lock.
 */
async function acquireLock({ log, waitMs, signal }) {
  if (process.env.NETFENCE_VM_PARALLEL === '1') return { release() {}, setQemu() {} };
  const dir = join(cacheDir(), 'vm.lock');
  mkdirSync(cacheDir(), { recursive: true });
  const t0 = Date.now();
  let told = false;
  const owner = () => {
    try {
      return JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8'));
    } catch {
      return undefined;
    }
  };
  for (;;) {
    try {
      mkdirSync(dir);
      const me = { pid: process.pid, since: Date.now() };
      writeFileSync(join(dir, 'owner.json'), JSON.stringify(me));
      return {
        setQemu(pid) {
          writeFileSync(join(dir, 'owner.json'), JSON.stringify({ ...me, qemu: pid }));
        },
        release() {
          if (owner()?.pid === process.pid) rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    const o = owner();
    if (o ? !alive(o.pid) && !alive(o.qemu) : Date.now() - t0 > 10_000) {
      // Stale: move it aside (atomic, only one waiter wins) and retry.
      try {
        renameSync(dir, `${dir}.stale-${process.pid}`);
        rmSync(`${dir}.stale-${process.pid}`, { recursive: true, force: true });
        log(`[vm] removed a stale VM lock (pid ${o?.pid ?? '?'})`);
      } catch {
        /* someone else did */
      }
      continue;
    }
    if (!told) {
      log(`[vm] waiting for the VM of pid ${o?.pid ?? '?'} to finish (one VM at a time; NETFENCE_VM_PARALLEL=1 skips this)`);
      told = true;
    }
    if (Date.now() - t0 > waitMs) throw new Error(`gave up waiting ${Math.round(waitMs / 1000)}s for the VM lock ${dir} (held by pid ${o?.pid ?? '?'})`);
    if (signal?.aborted) throw new Error('aborted while waiting for the VM lock');
    await sleep(1000);
  }
}

/**
 * Runs `argv` inside the VM and resolves to
 * `{ exitCode, kernel, accel, wallMs, bootSeconds, runMs, timedOut, outFiles }`
 * (exitCode null when the command did not finish).
 *
 * - `env`: the guest command's environment (default: this process's
 *   environment, so PATH etc. match the host); `NETFENCE_VM=1` and
 *   `NETFENCE_VM_OUT` are added.
 * - `cwd`: default process.cwd() (the same path exists in the guest).
 * - `outDir`: where files the command wrote to $NETFENCE_VM_OUT are copied.
 * - `timeoutMs` (30 min): from boot; near it the guest kills the command,
 *   at it qemu is killed. Waiting for the VM lock does not count.
 * - `onOutput(text)`: the guest console; default writes to process.stdout.
 * - `signal`: an AbortSignal that kills the VM.
 * - `verbose`: show the kernel's boot log and trace guest-setup.sh.
 * - `memoryMb` (4096), `cpus` (2), `lockWaitMs` (60 min), `log` (stderr).
 * - `tcgThread` (`multi`): under TCG, one host thread per vCPU (`multi`) or one
 *   for all (`single`: about 3x slower here, but node, whose JIT writes code
 *   that another vCPU may run, has not been seen crashing under it).
 */
export async function runInVm({
  argv,
  env = process.env,
  cwd = process.cwd(),
  outDir,
  timeoutMs = 30 * 60_000,
  onOutput,
  signal,
  verbose = false,
  memoryMb = 4096,
  cpus = 2,
  lockWaitMs = 60 * 60_000,
  log = (m) => process.stderr.write(`${m}\n`),
  tcgThread = 'multi',
} = {}) {
  if (tcgThread !== 'multi' && tcgThread !== 'single') throw new Error("runInVm: tcgThread must be 'multi' or 'single'");
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) throw new Error('runInVm: argv must be a non-empty array of strings');
  const write = onOutput ?? ((t) => process.stdout.write(t));
  const kernel = ensureKernel({ log });
  const initrd = ensureInitramfs(kernel, { log });
  const accel = chooseAccel();
  const node = cmdlineSafe('node path', process.execPath);
  const modules = cmdlineSafe('modules dir', dirname(kernel.modulesDir));
  const setup = cmdlineSafe('guest setup path', GUEST_SETUP);

  const lock = await acquireLock({ log, waitMs: lockWaitMs, signal });
  const ctl = mkdtempSync(join(tmpdir(), 'netfence-vm-'));
  const t0 = Date.now();
  try {
    const spec = {
      argv,
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string')),
      cwd: resolve(cwd),
      deadline: t0 + Math.max(timeoutMs - GUEST_GRACE_MS, timeoutMs / 2),
    };
    writeFileSync(join(ctl, 'spec.json'), JSON.stringify(spec));
    mkdirSync(join(ctl, 'out'));

    const append = [
      'console=ttyS0',
      verbose ? 'loglevel=7' : 'quiet loglevel=3',
      'panic=-1',
      'mitigations=off',
      'random.trust_cpu=on',
      `nf_modules=${modules}`,
      `nf_setup=${setup}`,
      `nf_node=${node}`,
      ...(verbose ? ['nf_verbose=1'] : []),
    ].join(' ');
    const qemu = [
      'qemu-system-x86_64',
      '-machine', 'q35',
      '-accel', accel === 'kvm' ? 'kvm' : `tcg,thread=${tcgThread}`,
      // Under TCG a fixed CPU without AVX: QEMU 7.2's `max` offers AVX/AVX2, newly emulated
      // in that release, and node in the guest once died of SIGILL with it.
      '-cpu', process.env.NETFENCE_VM_CPU || (accel === 'kvm' ? 'host' : 'Westmere,+rdrand'),
      '-smp', String(cpus),
      '-m', String(memoryMb),
      '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
      '-serial', 'stdio', '-monitor', 'none',
      // The uncompressed vmlinux boots through PVH, seconds faster under TCG.
      '-kernel', process.env.NETFENCE_VM_BZIMAGE === '1' || !kernel.vmlinux ? kernel.vmlinuz : kernel.vmlinux,
      '-initrd', initrd.path,
      '-append', append,
      '-virtfs', `local,path=/,mount_tag=${TAG_ROOT},readonly=on,security_model=none,multidevs=remap`,
      '-virtfs', `local,path=${ctl},mount_tag=${TAG_CTL},security_model=none,multidevs=remap`,
      '-device', 'virtio-rng-pci',
      // SeaBIOS would mirror its banner (and screen-clearing escapes) onto the serial console.
      '-fw_cfg', 'name=etc/sercon-port,string=0',
      // Debugging aid: extra qemu arguments as a JSON array.
      ...(process.env.NETFENCE_VM_QEMU_ARGS ? JSON.parse(process.env.NETFENCE_VM_QEMU_ARGS) : []),
    ];
    if (verbose) log(`[vm] ${qemu.join(' ')}`);
    log(`[vm] booting ${kernel.pkg} (${kernel.version}) with accel=${accel}`);

    const child = spawn(qemu[0], qemu.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    lock.setQemu(child.pid);
    let timedOut = false;
    let aborted = false;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      log(`[vm] timeout after ${timeoutMs} ms: killing qemu (pid ${child.pid})`);
      kill();
    }, timeoutMs);
    const onAbort = () => {
      aborted = true;
      log(`[vm] aborted: killing qemu (pid ${child.pid})`);
      kill();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    // The serial console speaks CRLF; hand out plain newlines.
    let last = '\n';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (t) => {
      const text = t.replace(/\r\n/g, '\n').replace(/\r/g, '');
      if (text) {
        last = text[text.length - 1];
        write(text);
      }
    });
    child.stdout.on('end', () => last !== '\n' && write('\n'));
    // qemu's own messages, line by line, minus the warning about our fw_cfg name.
    let qemuErr = '';
    let partial = '';
    const errLines = (t) => {
      const lines = (partial + t).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (/fw_cfg item names should be prefixed/.test(l)) continue;
        qemuErr += `${l}\n`;
        process.stderr.write(`${l}\n`);
      }
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', errLines);
    child.stderr.on('end', () => partial && errLines('\n'));
    const exit = await new Promise((res, rej) => {
      child.on('error', rej);
      child.on('close', (code, sig) => res({ code, signal: sig }));
    }).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });

    let result;
    if (existsSync(join(ctl, 'result.json'))) result = JSON.parse(readFileSync(join(ctl, 'result.json'), 'utf8'));
    const outFiles = readdirSync(join(ctl, 'out'));
    if (outDir && outFiles.length) {
      mkdirSync(outDir, { recursive: true });
      cpSync(join(ctl, 'out'), outDir, { recursive: true });
    }
    if (!result && !timedOut && !aborted) {
      throw new Error(`the VM stopped without a result (qemu exit ${exit.code ?? exit.signal})${qemuErr.trim() ? `: ${qemuErr.trim().slice(-500)}` : ''}`);
    }
    return {
      exitCode: result?.exitCode ?? null,
      kernel: result?.kernel ?? null,
      accel,
      wallMs: Date.now() - t0,
      bootSeconds: result?.bootSeconds ?? null,
      runMs: result?.runMs ?? null,
      timedOut: timedOut || Boolean(result?.timedOut),
      aborted,
      outFiles,
    };
  } finally {
    rmSync(ctl, { recursive: true, force: true });
    lock.release();
  }
}
