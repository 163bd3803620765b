/**
 * The XDP plan actions (`xdp-maps`, `xdp-load`, `xdp-attach`, `xdp-detach`,
 * `xdp-pin-swap`, `xdp-unpin`, see {@link XdpAction}) and their schema. The
 * executor runs them as steps and undoes them like any other step, so an
 * XdpBlocklist attach is one transaction with one journal entry: reconcile()
 * undoes the started steps of a process that died mid-attach.
 *
 * The XDP modules (koffi, bpf(2)) are imported when an action runs, so
 * plans without XDP never load them. Pins are files of the current host
 * (`hostFiles()`), so a FakeHost runs these actions too.
 * @module
 */
import { join } from 'node:path';
import { z } from 'zod';
import { CommandError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { Err, Ok, type Result } from '../result.js';
import { IfName, SafePath } from '../validate.js';
import { faultAt } from './faults.js';
import type { XdpAction } from './types.js';

/** Root of netfence's bpffs pins (one directory per blocklist). */
export const XDP_PIN_ROOT = '/sys/fs/bpf/netfence';

/** A blocklist's pin directory: directly under {@link XDP_PIN_ROOT}, a safe name. */
const PinDir = z.string().regex(/^\/sys\/fs\/bpf\/netfence\/[A-Za-z0-9_][A-Za-z0-9_-]{0,47}$/, 'must be /sys/fs/bpf/netfence/<name>');
const Pin = z.enum(['prog', 'prog_next', 'prog_prev']);
const Mode = z.enum(['native', 'generic']);
const flag = { ignoreFailure: z.boolean().optional() };

/** zod schemas of the XDP actions (members of the plan's action union). */
export const XdpActionSchemas = [
  z.object({ kind: z.literal('xdp-maps'), pinDir: PinDir, maxEntries: z.number().int().min(1).max(1 << 24), flags: z.number().int().min(0).max(0xffff), create: z.boolean(), ...flag }).strict(),
  z.object({ kind: z.literal('xdp-load'), object: SafePath, pinDir: PinDir, pin: z.literal('prog_next'), ...flag }).strict(),
  z.object({ kind: z.literal('xdp-attach'), iface: IfName, pinDir: PinDir, pin: z.enum(['prog', 'prog_next']), modes: z.array(Mode).min(1).max(2), replace: z.boolean(), ...flag }).strict(),
  z.object({ kind: z.literal('xdp-detach'), iface: IfName, pinDir: PinDir, ...flag }).strict(),
  z.object({ kind: z.literal('xdp-pin-swap'), pinDir: PinDir, direction: z.enum(['commit', 'revert']), ...flag }).strict(),
  z.object({ kind: z.literal('xdp-unpin'), pinDir: PinDir, names: z.array(Pin).max(3).optional(), ...flag }).strict(),
] as const;

/** Whether an action acts on the XDP layer (dispatched to {@link runXdpAction}). */
export function isXdpAction(a: { kind: string }): a is XdpAction {
  return a.kind.startsWith('xdp-');
}

/** Whether an action needs its network namespace to exist (pins are machine-wide: unpinning does not). */
export function xdpActionNeedsNetns(a: XdpAction): boolean {
  return a.kind === 'xdp-attach' || a.kind === 'xdp-detach';
}

function fail(what: string, netns: string | undefined, message: string, argv: string[] = [what]): Result<never, CommandError> {
  return Err(new CommandError(what, { argv, netns, stdout: '', stderr: message, exitCode: 1 }));
}

function firstLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = lines.find((l) => l.startsWith('tool said:'));
  return (said ? said.slice(10).trim() : (lines[0] ?? s)).slice(0, 300);
}

/** Unlink every pin of `dir`, the directory, and the root when it is empty. */
export function removePinDir(dir: string): void {
  const fs = hostFiles();
  if (!fs.exists(dir)) return;
  for (const f of fs.readdir(dir)) {
    try {
      fs.unlink(join(dir, f));
    } catch {
      // keep going
    }
  }
  try {
    fs.rmdir(dir);
    if (fs.exists(XDP_PIN_ROOT) && fs.readdir(XDP_PIN_ROOT).length === 0) fs.rmdir(XDP_PIN_ROOT);
  } catch {
    // another blocklist may share the root
  }
}

/** Ids of the programs pinned in `pinDir` (prog, prog_next, prog_prev). */
async function pinnedProgIds(pinDir: string): Promise<Set<number>> {
  const { pinnedId } = await import('../host/bpf.js');
  return new Set(['prog', 'prog_next', 'prog_prev'].map((n) => pinnedId(join(pinDir, n))).filter((x): x is number => x !== undefined));
}

/** Perform one XDP action in `netns` (attach/detach run there; bpffs is machine-wide). @internal */
export async function runXdpAction(a: XdpAction, netns: string | undefined): Promise<Result<void, CommandError>> {
  switch (a.kind) {
    case 'xdp-maps': {
      const { BlocklistMaps } = await import('../xdp/maps.js');
      const { BpfSyscallError } = await import('../host/bpf.js');
      let maps: import('../xdp/maps.js').BlocklistMaps | undefined;
      try {
        maps = a.create ? BlocklistMaps.create(a.pinDir, a.maxEntries, a.flags) : BlocklistMaps.open(a.pinDir);
        if (faultAt('xdp-maps')) throw new BpfSyscallError('MAP_CREATE (fault injected)', 1);
        maps.setFlags(a.flags);
        return Ok(undefined);
      } catch (e) {
        // a failed create leaves nothing behind (the step counts as not done)
        maps?.close();
        maps = undefined;
        if (a.create) removePinDir(a.pinDir);
        if (e instanceof BpfSyscallError) return fail('create the XDP maps', netns, `cannot ${a.create ? 'create' : 'open'} BPF maps in ${a.pinDir}: ${e.message} (needs root: CAP_BPF, CAP_NET_ADMIN)`, ['bpf(2)', a.create ? 'MAP_CREATE' : 'OBJ_GET', a.pinDir]);
        throw e;
      } finally {
        maps?.close();
      }
    }
    case 'xdp-load': {
      const { loadProgram } = await import('../xdp/loader.js');
      const pin = join(a.pinDir, a.pin);
      if (hostFiles().exists(pin)) hostFiles().unlink(pin);
      if (faultAt('xdp-load')) return fail('load the XDP program', netns, 'load refused: fault injected', ['bpftool', 'prog', 'load']);
      const r = await loadProgram(a.object, a.pinDir, pin);
      return r.err ? Err(r.val) : Ok(undefined);
    }
    case 'xdp-attach': {
      const { attachProgram, xdpState } = await import('../xdp/loader.js');
      const { pinnedId } = await import('../host/bpf.js');
      const pin = join(a.pinDir, a.pin);
      const want = pinnedId(pin);
      if (want === undefined) return fail(`attach XDP to ${a.iface}`, netns, `no program pinned at ${pin}`);
      const st = await xdpState(a.iface, netns);
      if (st.err) return Err(st.val);
      if (st.val.prog?.id === want) return Ok(undefined); // attached already (an undo or a retry)
      const errors: string[] = [];
      for (const m of a.modes) {
        if (faultAt('xdp-attach')) {
          errors.push(`${m}: refused (fault injected)`);
          continue;
        }
        const r = await attachProgram(a.iface, netns, pin, m, a.replace);
        if (r.ok) return Ok(undefined);
        errors.push(`${m}: ${firstLine(r.val.message)}`);
      }
      return fail(`attach XDP to ${a.iface}`, netns, `interface ${a.iface} refused the XDP program (${errors.join('; ')})`, ['bpftool', 'net', 'attach', a.iface]);
    }
    case 'xdp-detach': {
      const { detachProgram, xdpState } = await import('../xdp/loader.js');
      const st = await xdpState(a.iface, netns);
      if (st.err) return Err(st.val);
      const prog = st.val.prog;
      if (!prog || !(await pinnedProgIds(a.pinDir)).has(prog.id)) return Ok(undefined); // nothing of ours attached
      const d = await detachProgram(a.iface, netns, prog.mode === 'generic' ? 'generic' : 'native');
      return d.err ? Err(d.val) : Ok(undefined);
    }
    case 'xdp-pin-swap': {
      const p = (n: string): string => join(a.pinDir, n);
      const fs = hostFiles();
      try {
        if (a.direction === 'commit') {
          if (!fs.exists(p('prog_next'))) return fail('swap the XDP program pins', netns, `${p('prog_next')} does not exist`);
          if (fs.exists(p('prog'))) fs.rename(p('prog'), p('prog_prev'));
          fs.rename(p('prog_next'), p('prog'));
        } else if (fs.exists(p('prog_prev'))) {
          // a re-attach: the previous program's pin comes back; the new one is `prog_next` again
          if (fs.exists(p('prog'))) fs.rename(p('prog'), p('prog_next'));
          fs.rename(p('prog_prev'), p('prog'));
        } else if (fs.exists(p('prog')) && !fs.exists(p('prog_next'))) fs.rename(p('prog'), p('prog_next'));
        return Ok(undefined);
      } catch (e) {
        return fail('swap the XDP program pins', netns, (e as Error).message);
      }
    }
    case 'xdp-unpin': {
      try {
        if (!a.names) removePinDir(a.pinDir);
        else for (const n of a.names) if (hostFiles().exists(join(a.pinDir, n))) hostFiles().unlink(join(a.pinDir, n));
        return Ok(undefined);
      } catch (e) {
        return fail('unpin XDP objects', netns, (e as Error).message);
      }
    }
  }
}
