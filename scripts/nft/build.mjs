#!/usr/bin/env node
// Builds nftables 1.1.6 (with libnftnl 1.3.1) from the source archives in
// ../shared/vendor (beside the repository) into a cache directory, for tests
// against a newer nft than the distribution's. Prints the path of the nft
// binary on stdout and nothing else; build output goes to <dir>/build.log.
//
//   NETFENCE_NFT=$(node scripts/nft/build.mjs) npx vitest run --project kernel test/kernel/<file>
//
// Cache: $NETFENCE_CACHE, else $XDG_CACHE_HOME/netfence, else ~/.cache/netfence;
// this build lives in its subdirectory nft-1.1.6/. Idempotent: a stamp naming
// the archives' hashes and the configure options is written last, and a build
// whose stamp matches is not repeated. Concurrent runs wait for each other
// (a lock file naming the builder's pid). Processes are started with argv
// arrays only, never through a shell.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const NFTNL = 'libnftnl-1.3.1';
const NFT = 'nftables-1.1.6';
const NFTNL_CONFIGURE = ['--disable-static'];
// (1.1.6's configure has no python option any more: --disable-python would only print a warning.)
const NFT_CONFIGURE = ['--disable-static', '--with-json', '--without-cli', '--disable-man-doc'];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vendor = resolve(root, '..', 'shared', 'vendor');
const cacheBase = process.env.NETFENCE_CACHE || (process.env.XDG_CACHE_HOME ? join(process.env.XDG_CACHE_HOME, 'netfence') : join(homedir(), '.cache', 'netfence'));
const dir = resolve(cacheBase, 'nft-1.1.6');
const prefix = join(dir, 'prefix');
const work = join(dir, 'src');
const nftBin = join(prefix, 'sbin', 'nft');
const stampFile = join(dir, 'stamp.json');
const lockFile = join(dir, 'build.lock');
const logFile = join(dir, 'build.log');

function fail(msg) {
  console.error(`[nft-build] ${msg}`);
  process.exit(1);
}

const archives = [NFTNL, NFT].map((name) => join(vendor, `${name}.tar.gz`));
for (const a of archives) if (!existsSync(a)) fail(`missing ${a} (the vendor sources must be in ../shared/vendor beside the repository)`);

const sha = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const stamp = JSON.stringify({ archives: archives.map((a) => ({ name: a.split('/').pop(), sha256: sha(a) })), prefix, NFTNL_CONFIGURE, NFT_CONFIGURE });

const upToDate = () => existsSync(nftBin) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

function lock() {
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(lockFile, 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
        rmSync(lockFile, { force: true }); // its builder died
        continue;
      }
      sleep(500);
    }
  }
}

let log;
function step(argv, cwd, env = {}) {
  writeSync(log, `\n$ ${argv.join(' ')}   (in ${cwd})\n`);
  const r = spawnSync(argv[0], argv.slice(1), { cwd, env: { ...process.env, LC_ALL: 'C', ...env }, stdio: ['ignore', log, log] });
  if (r.error || r.status !== 0) {
    closeSync(log);
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    fail(`${argv.join(' ')} failed (${r.error ? r.error.message : `exit ${r.status}`}) in ${cwd}; last lines of ${logFile}:\n${tail}`);
  }
}

function build() {
  rmSync(work, { recursive: true, force: true });
  rmSync(prefix, { recursive: true, force: true });
  rmSync(stampFile, { force: true });
  mkdirSync(work, { recursive: true });
  log = openSync(logFile, 'w');
  const jobs = `-j${Math.max(1, availableParallelism())}`;
  for (const a of archives) step(['tar', '-xzf', a, '-C', work], work);

  const nftnl = join(work, NFTNL);
  step(['autoreconf', '-fi'], nftnl);
  step(['./configure', `--prefix=${prefix}`, ...NFTNL_CONFIGURE], nftnl);
  step(['make', jobs], nftnl);
  step(['make', 'install'], nftnl);

  const nft = join(work, NFT);
  const env = { PKG_CONFIG_PATH: join(prefix, 'lib', 'pkgconfig'), LDFLAGS: `-Wl,-rpath,${join(prefix, 'lib')}` };
  step(['autoreconf', '-fi'], nft);
  step(['./configure', `--prefix=${prefix}`, ...NFT_CONFIGURE], nft, env);
  step(['make', jobs], nft, env);
  step(['make', 'install'], nft, env);

  step([nftBin, '--version'], dir);
  closeSync(log);
  const v = spawnSync(nftBin, ['--version'], { encoding: 'utf8' });
  if (!/nftables v1\.1\.6\b/.test(v.stdout ?? '')) fail(`${nftBin} --version printed ${JSON.stringify(v.stdout)}`);
  rmSync(work, { recursive: true, force: true }); // the install is self-contained (rpath)
  writeFileSync(stampFile, stamp);
}

if (!upToDate()) {
  mkdirSync(dir, { recursive: true });
  lock();
  // Released on every exit, including fail()'s process.exit.
  process.on('exit', () => {
    try {
      unlinkSync(lockFile);
    } catch {
      /* already gone */
    }
  });
  if (!upToDate()) build(); // someone else may have built it while we waited
}
process.stdout.write(`${nftBin}\n`);
