import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { acquireKeyLock, acquireNsLock, configureLocks, LockTimeoutError, lockPath, pruneLockFiles, withNsLock } from '../../src/plan/lock.js';

const dir = mkdtempSync(join(tmpdir(), 'nf-lock-'));
configureLocks({ dir, timeoutMs: 200 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cross-process lock (flock)', () => {
  it('writes the holder into the lock file and removes it on release', async () => {
    const l = (await acquireNsLock('ns1', 'apply test:a')).unwrap();
    const info = JSON.parse(readFileSync(lockPath('ns1'), 'utf8')) as { pid: number; what: string };
    expect(info).toMatchObject({ pid: process.pid, what: 'apply test:a' });
    l.release();
    l.release(); // idempotent
    expect(existsSync(lockPath('ns1'))).toBe(false);
  });

  it('a second holder in the same process waits, then times out with LOCK_TIMEOUT naming the holder', async () => {
    const l = (await acquireNsLock(undefined, 'apply test:first')).unwrap();
    const t0 = performance.now();
    const r = await acquireNsLock(undefined, 'apply test:second', { timeoutMs: 150 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(r.err && r.val).toBeInstanceOf(LockTimeoutError);
    expect(r.err && r.val.code).toBe('LOCK_TIMEOUT');
    expect(r.err && r.val.message).toContain(`pid ${process.pid} (apply test:first`);
    l.release();
    const again = (await acquireNsLock(undefined, 'apply test:second')).unwrap();
    again.release();
  });

  it('waiting does not block the event loop, and the waiter gets the lock when it is released', async () => {
    const l = (await acquireKeyLock('xdp-k', 'hold')).unwrap();
    let ticks = 0;
    const iv = setInterval(() => ticks++, 5);
    setTimeout(() => l.release(), 100);
    const w = await acquireKeyLock('xdp-k', 'wait', { timeoutMs: 2000 });
    clearInterval(iv);
    expect(w.ok).toBe(true);
    expect(w.unwrap().waitedMs).toBeGreaterThanOrEqual(90);
    expect(ticks).toBeGreaterThanOrEqual(5);
    w.unwrap().release();
  });

  it('serializes with another process and is freed when that process is killed', async () => {
    // a child holding the flock on the same file: blocking flock via koffi, then it sleeps
    const path = lockPath('ns2');
    const code = `
      const fs=require('fs');const k=require('koffi');
      const flock=k.load('libc.so.6').func('int flock(int fd, int op)');
      const fd=fs.openSync(${JSON.stringify(path)},'a+');
      if(flock(fd,2)!==0)process.exit(3);
      fs.ftruncateSync(fd,0);fs.writeSync(fd,JSON.stringify({pid:process.pid,what:'child'}));
      console.log('held');setTimeout(()=>{},60000);`;
    const child = spawn(process.execPath, ['-e', code], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => child.stdout!.once('data', () => res()));
    const r = await acquireNsLock('ns2', 'parent', { timeoutMs: 100 });
    expect(r.err && r.val.message).toContain(`pid ${child.pid} (child)`);
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    const r2 = await acquireNsLock('ns2', 'parent', { timeoutMs: 1000 });
    expect(r2.ok).toBe(true);
    r2.unwrap().release();
  });

  it('withNsLock runs fn under the lock, releases on throw, and reports a lock error instead of running fn', async () => {
    await expect(withNsLock('ns3', 'x', async () => { throw new Error('boom'); }, () => 'lock')).rejects.toThrow('boom');
    expect(existsSync(lockPath('ns3'))).toBe(false);
    const l = (await acquireNsLock('ns3', 'holder')).unwrap();
    let ran = false;
    const r = await withNsLock('ns3', 'x', async () => { ran = true; return 'ran'; }, (e) => e.code);
    expect(r).toBe('LOCK_TIMEOUT');
    expect(ran).toBe(false);
    l.release();
    expect(await withNsLock('ns3', 'x', async () => 'ran', () => 'lock')).toBe('ran');
  });

  it('refuses bad namespace names and keys', async () => {
    expect(() => lockPath('../etc')).toThrow();
    await expect(acquireKeyLock('a/b', 'x')).rejects.toThrow();
  });

  it('pruneLockFiles removes files of dead holders and keeps held ones', async () => {
    writeFileSync(lockPath('dead1'), JSON.stringify({ pid: 999999, what: 'died' }));
    const l = (await acquireNsLock('live1', 'holding')).unwrap();
    expect(pruneLockFiles()).toEqual([lockPath('dead1')]);
    expect(existsSync(lockPath('live1'))).toBe(true);
    l.release();
  });
});
