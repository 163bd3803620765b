#!/usr/bin/env node
// Installs what netfence's demo and test suite need on a Debian machine, when
// missing: apt packages (as root) and node_modules. Argv only, no shell.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// command (or file) that proves the package is present -> Debian package
const APT = [
  ['nft', 'nftables'],
  ['ip', 'iproute2'],
  ['tc', 'iproute2'],
  ['iptables-nft', 'iptables'],
  ['bpftool', 'bpftool'],
  ['clang', 'clang'],
  ['llc', 'llvm'],
  ['/usr/include/bpf/bpf_helpers.h', 'libbpf-dev'],
  ['/usr/include/x86_64-linux-gnu/asm/types.h', 'linux-libc-dev'],
  ['iperf3', 'iperf3'],
  ['ping', 'iputils-ping'],
  ['nsenter', 'util-linux'],
  ['sysctl', 'procps'],
  ['tcpdump', 'tcpdump'],
  ['ndpiReader', 'libndpi-bin'],
  ['curl', 'curl'],
  ['nc', 'netcat-openbsd'],
  ['socat', 'socat'],
  ['qbittorrent-nox', 'qbittorrent-nox'],
  ['transmission-daemon', 'transmission-daemon'],
  ['mktorrent', 'mktorrent'],
  ['dig', 'bind9-dnsutils'],
  ['openssl', 'openssl'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['make', 'make'],
  // building nftables 1.1.6 from ../shared/vendor for tests (scripts/nft/build.mjs)
  ['autoreconf', 'autoconf'],
  ['automake', 'automake'],
  ['libtoolize', 'libtool'],
  ['pkg-config', 'pkg-config'],
  ['bison', 'bison'],
  ['flex', 'flex'],
  ['/usr/include/libmnl/libmnl.h', 'libmnl-dev'],
  ['/usr/include/x86_64-linux-gnu/gmp.h', 'libgmp-dev'],
  ['/usr/include/jansson.h', 'libjansson-dev'],
  // running tests inside Debian's distribution kernel under qemu (scripts/vm)
  ['qemu-system-x86_64', 'qemu-system-x86'],
  ['/bin/busybox', 'busybox-static'],
  ['modprobe', 'kmod'],
  ['xz', 'xz-utils'],
];

function have(probe) {
  if (probe.startsWith('/')) return existsSync(probe);
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin'])) {
    if (dir && existsSync(join(dir, probe))) return true;
  }
  return false;
}

function sh(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', cwd: root, ...opts });
  return r.status === 0;
}

const missing = [...new Set(APT.filter(([probe]) => !have(probe)).map(([, pkg]) => pkg))];
if (missing.length) {
  if (process.getuid?.() !== 0) {
    console.error(`[netfence] missing packages: ${missing.join(' ')} (run as root to install them)`);
  } else {
    console.log(`[netfence] installing missing packages: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    sh(['apt-get', 'update', '-qq'], { env });
    if (!sh(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing], { env })) {
      console.error('[netfence] apt-get install failed');
      process.exit(1);
    }
  }
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json')) && !existsSync(join(root, 'node_modules', 'zod'))) {
  console.log('[netfence] installing node_modules');
  // `npm ci`: the lock file lists every platform's optional packages (rollup,
  // esbuild), which `npm test`'s package step checks on a clean copy.
  if (!sh(['npm', 'ci', '--no-audit', '--no-fund'])) process.exit(1);
}
