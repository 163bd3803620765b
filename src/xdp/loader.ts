/**
 * Loading and attaching the prebuilt XDP object with the system's tools:
 * bpftool loads the program with the blocklist's pinned maps and pins it;
 * `bpftool net attach` attaches it over netlink (native first, then generic),
 * replacing an attached program of ours in one atomic netlink operation.
 * Every command runs through {@link run} (argv, no shell) in the interface's
 * network namespace; bpffs stays visible there (nsenter --net). bpffs is
 * checked (statfs) and mounted through the current host (`hostFiles()`, `run`).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostFiles } from '../host/files.js';
import { linkShowArgv, parseLinks, xdpModeName } from '../host/links.js';
import { run } from '../host/run.js';
import { CommandError, UnsupportedError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { ALL_MAPS } from './maps.js';

/** Where netfence pins its BPF objects: one directory per blocklist name. */
export const BPFFS = '/sys/fs/bpf';
/** Root directory of netfence's pins. */
export const PIN_ROOT = `${BPFFS}/netfence`;
const BPF_FS_MAGIC = 0xcafe4a11;

/** XDP attach modes as the kernel reports them. */
export type XdpMode = 'native' | 'generic';

/** Whether bpffs is mounted at /sys/fs/bpf. */
export function bpffsMounted(): boolean {
  try {
    return hostFiles().statfs(BPFFS).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Make sure bpffs is mounted at /sys/fs/bpf; mount it when it is not (as
 * bpftool and iproute2 do). Err when that is impossible.
 */
export async function ensureBpffs(): Promise<Result<void, UnsupportedError>> {
  if (bpffsMounted()) return Ok(undefined);
  if (!hostFiles().exists(BPFFS)) return Err(new UnsupportedError('xdp.bpffs', `${BPFFS} does not exist (no BPF filesystem support)`));
  const r = await run(['mount', '-t', 'bpf', 'bpf', BPFFS], { what: 'mount bpffs' });
  if (r.err || !bpffsMounted()) {
    return Err(new UnsupportedError('xdp.bpffs', `bpffs is not mounted at ${BPFFS} and mounting it failed${r.err ? `: ${r.val.failure.stderr}` : ''}`, { hint: 'mount -t bpf bpf /sys/fs/bpf (as root)' }));
  }
  return Ok(undefined);
}

/** Path of the prebuilt object shipped in the package (bpf/build/xdp_blocklist.o); found in this package's files (node:fs), not on the host. */
export function defaultObjectPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'bpf', 'build', 'xdp_blocklist.o');
    if (existsSync(p)) return p;
    dir = resolve(dir, '..');
  }
  return undefined;
}

/** What is attached on an interface. */
export interface XdpState {
  ifindex: number;
  /** Attached program, if any. */
  prog?: { id: number; name: string; mode: XdpMode | 'offload' | 'multi' };
}

/** Read the XDP attachment of `iface` (ip -j link show). */
export async function xdpState(iface: string, netns?: string): Promise<Result<XdpState, CommandError>> {
  const argv = linkShowArgv(iface);
  const r = await run(argv, { netns, what: `read interface ${iface}` });
  if (r.err) return r;
  const links = parseLinks(r.val.stdout);
  const j = links.ok ? links.val[0] : undefined;
  if (!j) return Err(new CommandError(`read interface ${iface}`, { argv, netns, stdout: r.val.stdout, stderr: links.err ? `unparseable ip -j link output: ${links.val}` : 'no such interface' }));
  const st: XdpState = { ifindex: j.ifindex };
  if (j.xdp?.prog) {
    st.prog = { id: j.xdp.prog.id, name: j.xdp.prog.name ?? '', mode: xdpModeName(j.xdp.mode) };
  }
  return Ok(st);
}

/** Load the program with the pinned maps of `pinDir` and pin it at `progPin`. */
export async function loadProgram(objectPath: string, pinDir: string, progPin: string): Promise<Result<void, CommandError>> {
  const argv = ['bpftool', 'prog', 'load', objectPath, progPin, 'type', 'xdp'];
  for (const name of ALL_MAPS) argv.push('map', 'name', name, 'pinned', join(pinDir, name));
  const r = await run(argv, { what: 'load the XDP program' });
  return r.err ? r : Ok(undefined);
}

/** Attach the pinned program to `iface` in `mode`; `replace` swaps an attached program atomically. */
export async function attachProgram(iface: string, netns: string | undefined, progPin: string, mode: XdpMode, replace: boolean): Promise<Result<void, CommandError>> {
  const argv = ['bpftool', 'net', 'attach', mode === 'native' ? 'xdpdrv' : 'xdpgeneric', 'pinned', progPin, 'dev', iface];
  if (replace) argv.push('overwrite');
  const r = await run(argv, { netns, what: `attach XDP (${mode}) to ${iface}` });
  return r.err ? r : Ok(undefined);
}

/** Detach the XDP program in `mode` from `iface`. */
export async function detachProgram(iface: string, netns: string | undefined, mode: XdpMode): Promise<Result<void, CommandError>> {
  const r = await run(['bpftool', 'net', 'detach', mode === 'native' ? 'xdpdrv' : 'xdpgeneric', 'dev', iface], { netns, what: `detach XDP from ${iface}` });
  return r.err ? r : Ok(undefined);
}
