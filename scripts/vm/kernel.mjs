#!/usr/bin/env node
// Fetches and caches Debian's distribution kernel (the package behind
// linux-image-amd64): apt-get download, dpkg-deb -x, depmod. Idempotent: a
// finished extraction carries a stamp file and is reused. Argv only, no shell.
//
//   node scripts/vm/kernel.mjs      # prints the cached kernel as JSON
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const STAMP = '.netfence-kernel.json';

/** `$NETFENCE_CACHE`, else `$XDG_CACHE_HOME/netfence`, else `~/.cache/netfence`. */
export function cacheDir() {
  if (process.env.NETFENCE_CACHE) return process.env.NETFENCE_CACHE;
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'netfence');
  return join(homedir() || '/root', '.cache', 'netfence');
}

function exec(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message}`);
  return r;
}

function must(argv, opts = {}) {
  const r = exec(argv, opts);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').trim().slice(-2000)}`);
  return r.stdout ?? '';
}

function dependsOf(pkg) {
  const r = exec(['apt-cache', 'depends', pkg]);
  if (r.status !== 0) return [];
  return [...r.stdout.matchAll(/^\s*Depends:\s*(\S+)/gm)].map((m) => m[1]);
}

/**
 * The concrete kernel image package behind the `linux-image-amd64`
 * metapackage (e.g. linux-image-6.1.0-57-amd64). `$NETFENCE_VM_KERNEL_PKG`
 * overrides it. Runs `apt-get update` once when apt knows nothing yet.
 */
export function resolvePackage(log = () => {}) {
  const forced = process.env.NETFENCE_VM_KERNEL_PKG;
  if (forced) {
    if (!/^linux-image-[a-z0-9.+-]+$/.test(forced)) throw new Error(`NETFENCE_VM_KERNEL_PKG=${JSON.stringify(forced)} is not a linux-image-* package name`);
    return forced;
  }
  // apt-cache takes a second or more; its answer only changes with the
  // package lists, so remember it per lists mtime.
  const memo = join(cacheDir(), 'kernels', 'resolved.json');
  let lists = 0;
  try {
    lists = statSync('/var/lib/apt/lists').mtimeMs;
    const m = JSON.parse(readFileSync(memo, 'utf8'));
    if (m.lists === lists && typeof m.pkg === 'string') return m.pkg;
  } catch {
    /* no memo yet */
  }
  const pick = () => dependsOf('linux-image-amd64').find((d) => /^linux-image-\d/.test(d));
  let pkg = pick();
  if (!pkg) {
    log('[vm] apt-cache knows no linux-image-amd64: running apt-get update');
    must(['apt-get', 'update', '-qq'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    pkg = pick();
  }
  if (!pkg) throw new Error('cannot resolve the package behind linux-image-amd64 (apt-cache depends linux-image-amd64 lists no linux-image-<version> dependency)');
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(pkg)) throw new Error(`unexpected package name ${JSON.stringify(pkg)}`);
  try {
    lists = statSync('/var/lib/apt/lists').mtimeMs;
    mkdirSync(dirname(memo), { recursive: true });
    writeFileSync(memo, JSON.stringify({ pkg, lists }));
  } catch {
    /* the memo is an optimisation only */
  }
  return pkg;
}

/**
 * Decompresses the ELF vmlinux out of a bzImage (like the kernel's
 * scripts/extract-vmlinux) when the kernel has CONFIG_PVH=y, so qemu can boot
 * it directly. Returns false when that is not possible.
 */
function extractVmlinux(bzImage, config, dest, log) {
  if (!existsSync(config) || !/^CONFIG_PVH=y$/m.test(readFileSync(config, 'utf8'))) return false;
  const img = readFileSync(bzImage);
  const formats = [
    [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc', '--single-stream']],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dc']],
    [Buffer.from([0x1f, 0x8b, 0x08]), ['gzip', '-dc']],
  ];
  for (const [magic, argv] of formats) {
    for (let at = img.indexOf(magic); at >= 0; at = img.indexOf(magic, at + 1)) {
      const r = spawnSync(argv[0], argv.slice(1), { input: img.subarray(at), maxBuffer: 1 << 30 });
      if (!r.error && r.stdout?.length > 4 && r.stdout.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
        writeFileSync(dest, r.stdout);
        return true;
      }
      if (r.error) break; // decompressor not installed
    }
  }
  log(`[vm] could not extract vmlinux from ${bzImage}: booting the bzImage (slower)`);
  return false;
}

function readStamp(dir) {
  const f = join(dir, STAMP);
  if (!existsSync(f)) return undefined;
  try {
    const s = JSON.parse(readFileSync(f, 'utf8'));
    if (existsSync(s.vmlinuz) && existsSync(join(s.modulesDir, 'modules.dep')) && (!s.vmlinux || existsSync(s.vmlinux))) return s;
  } catch {
    /* a broken stamp means a broken cache entry: rebuild */
  }
  return undefined;
}

/**
 * Makes sure the kernel is downloaded, extracted and depmod-ed, and returns
 * `{ pkg, version, root, vmlinuz, modulesDir }`, all paths absolute.
 */
export function ensureKernel({ log = () => {} } = {}) {
  const kernels = join(cacheDir(), 'kernels');
  let pkg;
  try {
    pkg = resolvePackage(log);
  } catch (e) {
    // Offline and apt broken, but something is cached: use the newest entry.
    const cached = existsSync(kernels) ? readdirSync(kernels).filter((d) => !d.startsWith('.') && d !== 'resolved.json' && readStamp(join(kernels, d))).sort() : [];
    if (!cached.length) throw e;
    pkg = cached[cached.length - 1];
    log(`[vm] ${e.message}; using the cached ${pkg}`);
  }
  const dir = join(kernels, pkg);
  const have = readStamp(dir);
  if (have) return have;

  mkdirSync(kernels, { recursive: true });
  // Build in a private temp dir and rename into place, so concurrent runs
  // never see a half-extracted kernel.
  const tmp = mkdtempSync(join(kernels, `.${pkg}.tmp-`));
  try {
    log(`[vm] downloading ${pkg} into ${dir}`);
    const dl = join(tmp, 'dl');
    mkdirSync(dl);
    must(['apt-get', 'download', '-q', pkg], { cwd: dl });
    const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
    const root = join(tmp, 'root');
    must(['dpkg-deb', '-x', join(dl, deb), root]);
    rmSync(dl, { recursive: true, force: true });
    const versions = existsSync(join(root, 'lib', 'modules')) ? readdirSync(join(root, 'lib', 'modules')) : [];
    if (versions.length !== 1) throw new Error(`${deb}: expected one lib/modules/<version>, found ${JSON.stringify(versions)}`);
    const version = versions[0];
    if (!existsSync(join(root, 'boot', `vmlinuz-${version}`))) throw new Error(`${deb}: no boot/vmlinuz-${version}`);
    must(['depmod', '-b', root, version]);
    // Final paths, as they will be after the rename.
    const vmlinux = extractVmlinux(join(root, 'boot', `vmlinuz-${version}`), join(root, 'boot', `config-${version}`), join(tmp, 'vmlinux'), log);
    const finalRoot = join(dir, 'root');
    const info = {
      pkg,
      debVersion: deb.split('_')[1]?.replace(/%3a/gi, ':'),
      version,
      root: finalRoot,
      vmlinuz: join(finalRoot, 'boot', `vmlinuz-${version}`),
      modulesDir: join(finalRoot, 'lib', 'modules', version),
      // The uncompressed ELF kernel, booted through its PVH entry point:
      // skips the firmware's real-mode loader and the in-guest xz
      // decompression (seconds under TCG). Absent when the kernel lacks PVH.
      vmlinux: vmlinux ? join(dir, 'vmlinux') : undefined,
    };
    writeFileSync(join(tmp, STAMP), `${JSON.stringify(info, null, 2)}\n`);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true }); // stale, unstamped leftover
    try {
      renameSync(tmp, dir);
    } catch (e) {
      const other = readStamp(dir); // a concurrent run finished first
      if (!other) throw e;
      rmSync(tmp, { recursive: true, force: true });
      return other;
    }
    log(`[vm] kernel ${version} cached in ${dir}`);
    return readStamp(dir) ?? info;
  } finally {
    if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(ensureKernel({ log: (m) => console.error(m) }), null, 2));
}
