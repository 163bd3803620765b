/**
 * An in-memory file system for `FakeHost` (the {@link HostFiles} API):
 * directories, text files and bpffs pins, with node:fs-style errors
 * (`ENOENT`, `EEXIST`, `ENOTEMPTY`, `ENOTDIR`, `EISDIR`) carrying `code`.
 * Seeded with the kernel paths netfence touches: /run/netns, /run/netfence,
 * /sys/fs/bpf (bpffs), /sys/fs/cgroup (cgroup2), /proc/self/mountinfo and
 * /sys/devices/system/cpu/possible.
 * @module
 */
import { posix } from 'node:path';
import type { HostFiles } from './host.js';

/** One node of the fake file system. */
export type FakeNode = { type: 'dir' } | { type: 'file'; data: string } | { type: 'pin'; object: unknown };

/** A Node-style file error. */
export function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const text: Record<string, string> = { ENOENT: 'no such file or directory', EEXIST: 'file already exists', ENOTEMPTY: 'directory not empty', ENOTDIR: 'not a directory', EISDIR: 'illegal operation on a directory', EACCES: 'permission denied' };
  const e = new Error(`${code}: ${text[code] ?? 'error'}, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  return e;
}

/** statfs(2) magic numbers of the file systems the fake knows (linux/magic.h). */
export const FS_MAGIC: Record<string, number> = { bpf: 0xcafe4a11, cgroup2: 0x63677270, cgroup: 0x27e0eb, tmpfs: 0x01021994, proc: 0x9fa0, sysfs: 0x62656572, ext4: 0xef53 };

const norm = (p: string): string => {
  if (typeof p !== 'string' || !p.startsWith('/')) throw fsError('ENOENT', 'open', String(p));
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
};

/** The in-memory files: `nodes` maps normalized absolute paths to nodes. */
export class FakeFiles implements HostFiles {
  readonly nodes = new Map<string, FakeNode>([['/', { type: 'dir' }]]);
  /** Every write, in order (path and data), for assertions. */
  readonly writes: { path: string; data: string; append: boolean }[] = [];

  constructor(cpus = 2) {
    for (const d of ['/run/netns', '/run/netfence', '/sys/fs/bpf', '/sys/fs/cgroup', '/proc/self', '/sys/devices/system/cpu', '/tmp']) this.mkdir(d, { recursive: true });
    this.put('/proc/self/mountinfo', '24 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n25 1 0:23 / /sys/fs/bpf rw - bpf bpf rw\n');
    this.put('/sys/fs/cgroup/cgroup.procs', '');
    this.put('/sys/fs/cgroup/cgroup.controllers', 'cpu io memory pids\n');
    this.put('/sys/devices/system/cpu/possible', cpus === 1 ? '0\n' : `0-${cpus - 1}\n`);
  }

  private parentDir(path: string, syscall: string): void {
    const parent = posix.dirname(path);
    const p = this.nodes.get(parent);
    if (!p) throw fsError('ENOENT', syscall, path);
    if (p.type !== 'dir') throw fsError('ENOTDIR', syscall, path);
  }

  /** Create or replace a file (parents created), for seeding. */
  put(path: string, data: string): void {
    const p = norm(path);
    this.mkdir(posix.dirname(p), { recursive: true });
    this.nodes.set(p, { type: 'file', data });
  }

  /** Place a pin (used by the fake bpf(2)); fails like bpf(2) when the parent is missing or the path exists. */
  pin(path: string, object: unknown): void {
    const p = norm(path);
    this.parentDir(p, 'bpf');
    if (this.nodes.has(p)) throw fsError('EEXIST', 'bpf', p);
    this.nodes.set(p, { type: 'pin', object });
  }

  /** The node at a path, if any. */
  node(path: string): FakeNode | undefined {
    return this.nodes.get(norm(path));
  }

  read(path: string): string {
    const p = norm(path);
    const n = this.nodes.get(p);
    if (!n) throw fsError('ENOENT', 'open', p);
    if (n.type === 'dir') throw fsError('EISDIR', 'read', p);
    if (n.type === 'pin') throw fsError('EACCES', 'open', p);
    return n.data;
  }

  write(path: string, data: string, options: { append?: boolean | undefined; mode?: number | undefined } = {}): void {
    const p = norm(path);
    this.parentDir(p, 'open');
    const n = this.nodes.get(p);
    if (n?.type === 'dir') throw fsError('EISDIR', 'open', p);
    this.writes.push({ path: p, data, append: options.append === true });
    const prev = n?.type === 'file' ? n.data : '';
    this.nodes.set(p, { type: 'file', data: options.append ? prev + data : data });
  }

  mkdir(path: string, options: { recursive?: boolean | undefined; mode?: number | undefined } = {}): void {
    const p = norm(path);
    const n = this.nodes.get(p);
    if (n) {
      if (options.recursive && n.type === 'dir') return;
      throw fsError('EEXIST', 'mkdir', p);
    }
    if (options.recursive && p !== '/') this.mkdir(posix.dirname(p), { recursive: true });
    this.parentDir(p, 'mkdir');
    this.nodes.set(p, { type: 'dir' });
    // a cgroup v2 directory comes with its interface files
    if (p.startsWith('/sys/fs/cgroup/')) this.nodes.set(`${p}/cgroup.procs`, { type: 'file', data: '' });
  }

  private children(p: string): string[] {
    const prefix = p === '/' ? '/' : `${p}/`;
    const out: string[] = [];
    for (const k of this.nodes.keys()) if (k !== p && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')) out.push(k.slice(prefix.length));
    return out;
  }

  rmdir(path: string): void {
    const p = norm(path);
    const n = this.nodes.get(p);
    if (!n) throw fsError('ENOENT', 'rmdir', p);
    if (n.type !== 'dir') throw fsError('ENOTDIR', 'rmdir', p);
    const kids = this.children(p).filter((k) => !(p.startsWith('/sys/fs/cgroup/') && k === 'cgroup.procs'));
    if (kids.length) throw fsError('ENOTEMPTY', 'rmdir', p);
    this.nodes.delete(`${p}/cgroup.procs`);
    this.nodes.delete(p);
  }

  unlink(path: string): void {
    const p = norm(path);
    const n = this.nodes.get(p);
    if (!n) throw fsError('ENOENT', 'unlink', p);
    if (n.type === 'dir') throw fsError('EISDIR', 'unlink', p);
    this.nodes.delete(p);
  }

  rename(from: string, to: string): void {
    const f = norm(from);
    const t = norm(to);
    const n = this.nodes.get(f);
    if (!n) throw fsError('ENOENT', 'rename', f);
    this.parentDir(t, 'rename');
    const old = this.nodes.get(t);
    if (old?.type === 'dir' && this.children(t).length) throw fsError('ENOTEMPTY', 'rename', t);
    const moved: [string, FakeNode][] = [[t, n]];
    if (n.type === 'dir') for (const [k, v] of this.nodes) if (k.startsWith(`${f}/`)) moved.push([t + k.slice(f.length), v]);
    for (const [k] of [...this.nodes].filter(([k]) => k === f || k.startsWith(`${f}/`))) this.nodes.delete(k);
    for (const [k, v] of moved) this.nodes.set(k, v);
  }

  exists(path: string): boolean {
    try {
      return this.nodes.has(norm(path));
    } catch {
      return false;
    }
  }

  isDirectory(path: string): boolean {
    return this.exists(path) && this.nodes.get(norm(path))?.type === 'dir';
  }

  /**
   * statfs(2): the magic number of the file system mounted at the longest
   * mount point of /proc/self/mountinfo above `path` (so a test unmounts
   * bpffs by rewriting that file); ext4 when no mount covers it.
   */
  statfs(path: string): { type: number } {
    const p = norm(path);
    if (!this.nodes.has(p)) throw fsError('ENOENT', 'statfs', p);
    let best = { at: '', type: FS_MAGIC.ext4! };
    const info = this.nodes.get('/proc/self/mountinfo');
    for (const line of info?.type === 'file' ? info.data.split('\n') : []) {
      const [left, right] = line.split(' - ');
      const at = left?.split(' ')[4];
      const fstype = right?.split(' ')[0];
      if (!at || !fstype) continue;
      const covers = at === '/' || p === at || p.startsWith(`${at}/`);
      if (covers && at.length >= best.at.length) best = { at, type: FS_MAGIC[fstype] ?? FS_MAGIC.ext4! };
    }
    return { type: best.type };
  }

  readdir(path: string): string[] {
    const p = norm(path);
    const n = this.nodes.get(p);
    if (!n) throw fsError('ENOENT', 'scandir', p);
    if (n.type !== 'dir') throw fsError('ENOTDIR', 'scandir', p);
    return this.children(p);
  }
}
