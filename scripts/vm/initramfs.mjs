#!/usr/bin/env node
// Builds the tiny initramfs that boots the Debian kernel into this machine's
// root filesystem: busybox-static, the handful of modules 9p and overlayfs
// need (load order from modules.dep), and an /init that mounts the host root
// (9p, read-only) under a tmpfs overlay and switch_roots into it, handing over
// to scripts/vm/guest-setup.sh. Written as cpio "newc" by hand and gzipped
// with node's zlib; cached by the hash of its contents. Argv only, no shell.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { cacheDir, ensureKernel } from './kernel.mjs';

/** Modules the initramfs needs; those built into the kernel are skipped, missing optional ones too. */
export const INITRAMFS_MODULES = ['virtio', 'virtio_ring', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', '9pnet', '9pnet_virtio', 'netfs', 'fscache', '9p', 'overlay', 'virtio_rng'];
const OPTIONAL = new Set(['virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'netfs', 'fscache', 'virtio_rng']);

export const BUSYBOX = '/bin/busybox';
/** 9p mount tags shared with run/vm.mjs and guest-setup.sh. */
export const TAG_ROOT = 'hostroot';
export const TAG_CTL = 'nfctl';
export const MSIZE = 262144;

const modName = (path) => path.split('/').pop().replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

/**
 * Modules to insmod, in load order (dependencies first), as paths relative to
 * the modules dir. Built-in modules (modules.builtin) need no loading.
 */
export function moduleLoadOrder(modulesDir, wanted = INITRAMFS_MODULES) {
  const deps = new Map();
  for (const line of readFileSync(join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const path = line.slice(0, i);
    deps.set(modName(path), { path, deps: line.slice(i + 1).trim().split(/\s+/).filter(Boolean).map(modName) });
  }
  const builtin = new Set();
  if (existsSync(join(modulesDir, 'modules.builtin'))) {
    for (const l of readFileSync(join(modulesDir, 'modules.builtin'), 'utf8').split('\n')) if (l) builtin.add(modName(l));
  }
  const order = [];
  const seen = new Set();
  const visit = (name, chain) => {
    if (seen.has(name) || builtin.has(name)) return;
    const m = deps.get(name);
    if (!m) {
      if (OPTIONAL.has(name) && chain.length === 0) return;
      throw new Error(`module ${name} is neither in modules.dep nor built in (${[...chain, name].join(' <- ')})`);
    }
    seen.add(name);
    for (const d of m.deps) visit(d, [...chain, name]);
    order.push(m.path);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

function moduleBytes(file) {
  if (file.endsWith('.ko')) return readFileSync(file);
  const tool = file.endsWith('.xz') ? ['xz', '-dc', file] : file.endsWith('.zst') ? ['zstd', '-dc', file] : file.endsWith('.gz') ? ['gzip', '-dc', file] : undefined;
  if (!tool) throw new Error(`unknown module format: ${file}`);
  const r = spawnSync(tool[0], tool.slice(1), { maxBuffer: 256 << 20 });
  if (r.error || r.status !== 0) throw new Error(`${tool.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/** A cpio "newc" archive writer (the format the kernel unpacks). */
class Cpio {
  chunks = [];
  ino = 1;
  size = 0;
  #push(b) {
    this.chunks.push(b);
    this.size += b.length;
  }
  #pad() {
    const n = (4 - (this.size % 4)) % 4;
    if (n) this.#push(Buffer.alloc(n));
  }
  entry(name, mode, data = Buffer.alloc(0), { rdevMajor = 0, rdevMinor = 0 } = {}) {
    const hex = (v) => v.toString(16).padStart(8, '0');
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [this.ino++, mode, 0, 0, mode & 0o040000 ? 2 : 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBuf.length, 0];
    this.#push(Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii'));
    this.#push(nameBuf);
    this.#pad();
    if (data.length) {
      this.#push(data);
      this.#pad();
    }
  }
  dir(name, perm = 0o755) {
    this.entry(name, 0o040000 | perm);
  }
  file(name, data, perm = 0o644) {
    this.entry(name, 0o100000 | perm, data);
  }
  symlink(name, target) {
    this.entry(name, 0o120000 | 0o777, Buffer.from(target));
  }
  chardev(name, major, minor, perm = 0o600) {
    this.entry(name, 0o020000 | perm, undefined, { rdevMajor: major, rdevMinor: minor });
  }
  finish() {
    this.entry('TRAILER!!!', 0);
    return Buffer.concat(this.chunks);
  }
}

/** The initramfs /init (busybox sh). Paths come from the kernel command line (nf_* become init's environment). */
export function initScript(modules) {
  const mountOpts = `trans=virtio,version=9p2000.L,msize=${MSIZE}`;
  return `#!/bin/busybox sh
# netfence VM initramfs: load 9p + overlay, mount the host root read-only
# under a tmpfs overlay, switch_root into it and run guest-setup.sh there.
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "netfence-vm initramfs: $*"; sleep 1; poweroff -f; echo o > /proc/sysrq-trigger; }
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
for m in ${modules.map((m) => `/modules/${m}`).join(' ')}; do
  insmod "$m" || fail "insmod $m failed"
done
mkdir -p /lower /rw /newroot
mount -t 9p -o ro,${mountOpts},cache=loose ${TAG_ROOT} /lower || fail "cannot mount the host root (9p tag ${TAG_ROOT})"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "cannot mount the overlay tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "cannot mount the overlay"
[ -n "$nf_setup" ] && [ -f "/newroot$nf_setup" ] || fail "guest setup script '$nf_setup' not found under the host root"
umount /proc
exec switch_root /newroot /bin/sh "$nf_setup"
`;
}

/** True when an ELF executable has no program interpreter (PT_INTERP), i.e. is statically linked. */
export function isStaticElf(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false; // ELF64 only
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) if (buf.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/**
 * Builds (or reuses) the initramfs for a kernel from ensureKernel(); returns
 * `{ path, hash, modules }`.
 */
export function ensureInitramfs(kernel, { log = () => {} } = {}) {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install busybox-static (npm run setup)`);
  const busybox = readFileSync(BUSYBOX);
  // The dynamic `busybox` package installs the same path; it cannot run in the initramfs.
  if (!isStaticElf(busybox)) throw new Error(`${BUSYBOX} is dynamically linked: install busybox-static instead of busybox`);
  const modules = moduleLoadOrder(kernel.modulesDir);
  const cpio = new Cpio();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'modules', 'lower', 'rw', 'newroot']) cpio.dir(d);
  cpio.chardev('dev/console', 5, 1);
  cpio.chardev('dev/null', 1, 3, 0o666);
  cpio.file('bin/busybox', busybox, 0o755);
  const made = new Set();
  for (const m of modules) {
    const parts = m.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = `modules/${parts.slice(0, i).join('/')}`;
      if (!made.has(d)) {
        made.add(d);
        cpio.dir(d);
      }
    }
  }
  const plain = modules.map((m) => m.replace(/\.ko\.(xz|zst|gz)$/, '.ko'));
  modules.forEach((m, i) => cpio.file(`modules/${plain[i]}`, moduleBytes(join(kernel.modulesDir, m))));
  cpio.file('init', Buffer.from(initScript(plain)), 0o755);
  const raw = cpio.finish();
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 16);
  const dir = join(cacheDir(), 'initramfs');
  const path = join(dir, `${kernel.version}-${hash}.cpio.gz`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, gzipSync(raw, { level: 6 }));
    renameSync(tmp, path);
    log(`[vm] initramfs built: ${path} (${modules.length} modules)`);
  }
  return { path, hash, modules };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const log = (m) => console.error(m);
  console.log(JSON.stringify(ensureInitramfs(ensureKernel({ log }), { log }), null, 2));
}
