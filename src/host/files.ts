/**
 * Files on kernel paths (cgroup v2, bpffs pins, /proc, /sys, /run/netfence)
 * through the current host: `hostFiles()` is what netfence code calls;
 * {@link realFiles} is the real implementation over `node:fs`.
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statfsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { currentHost, type HostFiles } from './host.js';

export type { HostFiles } from './host.js';

/** The current host's files. */
export function hostFiles(): HostFiles {
  return currentHost().files;
}

/** This machine's files (node:fs, synchronous; errors carry `code` as in node:fs). */
export const realFiles: HostFiles = {
  read: (path) => readFileSync(path, 'utf8'),
  write: (path, data, options = {}) => writeFileSync(path, data, { flag: options.append ? 'a' : 'w', ...(options.mode !== undefined ? { mode: options.mode } : {}) }),
  mkdir: (path, options = {}) => {
    mkdirSync(path, { recursive: options.recursive === true, ...(options.mode !== undefined ? { mode: options.mode } : {}) });
  },
  rmdir: (path) => rmdirSync(path),
  unlink: (path) => unlinkSync(path),
  rename: (from, to) => renameSync(from, to),
  exists: (path) => existsSync(path),
  isDirectory: (path) => statSync(path, { throwIfNoEntry: false })?.isDirectory() === true,
  statfs: (path) => ({ type: Number(statfsSync(path).type) }),
  readdir: (path) => readdirSync(path),
};
