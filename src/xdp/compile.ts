/**
 * XdpBlocklist → Plan. {@link gatherXdpFacts} reads what the plan depends on
 * (the interface's attachment, the pins, bpffs); {@link compileXdp} is pure:
 * facts in, plan out. The plan's steps are XDP actions with inverses
 * (maps → load → attach → pin swap), applied by the executor as one
 * transaction with one journal entry, so a crash mid-attach is undone by
 * reconcile() like any other apply. A completed attach has no journal entry:
 * it outlives the process by design (docs/xdp.md).
 * @module
 */
import { join } from 'node:path';
import { NetfenceError, UnsupportedError } from '../errors.js';
import { BpfSyscallError, bpfSyscallNumber, pinnedId } from '../host/bpf.js';
import { hostFiles } from '../host/files.js';
import { emptyPlan, type Plan, type Step, type XdpAction, type XdpAttachMode } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { defaultObjectPath, ensureBpffs, xdpState, type XdpState } from './loader.js';
import { BlocklistMaps } from './maps.js';
import { FLAG_MATCH_DST, type XdpBlocklistOptionsSchema } from './types.js';
import type { z } from 'zod';

type Options = z.output<typeof XdpBlocklistOptionsSchema>;

/** What an XDP plan depends on, read from the host by `gatherXdpFacts` (inside `apply()`). */
export interface XdpFacts {
  /** Whether Node can call bpf(2) on this architecture. */
  bpfSyscall: boolean;
  /** The BPF object to load, and whether it exists. */
  objectPath: string | undefined;
  objectExists: boolean;
  /** The program attached to the interface now, if any. */
  attached?: XdpState['prog'] | undefined;
  /** Id of the program pinned as this blocklist's (`<pinDir>/prog`). */
  ourProgId?: number | undefined;
  /** Whether the blocklist's maps are pinned already (re-open, entries kept). */
  mapsExist: boolean;
  /** Program flags in the pinned maps (when they exist). */
  flags?: number | undefined;
}

/** An XdpBlocklist compiled for the host facts. */
export interface XdpCompiled {
  plan: Plan;
  /** Whether the maps existed (re-opened with their entries and counters). */
  reopened: boolean;
  /** Whether a program of ours is attached and gets replaced atomically. */
  replacing: boolean;
  /** Attach modes, in the order they are tried. */
  modes: XdpAttachMode[];
}

/**
 * Read the host facts an XDP apply depends on. Mounts bpffs at /sys/fs/bpf
 * when it is not (as bpftool and iproute2 do): the one host change made
 * outside a plan, machine-wide and never undone. Everything is read through
 * the current host (`hostFiles()`, bpf(2), `run`), so a FakeHost answers it.
 */
export async function gatherXdpFacts(o: Options, pinDir: string): Promise<Result<XdpFacts, NetfenceError>> {
  const objectPath = o.objectPath ?? defaultObjectPath();
  const facts: XdpFacts = { bpfSyscall: bpfSyscallNumber() !== undefined, objectPath, objectExists: !!objectPath && hostFiles().exists(objectPath), mapsExist: false };
  if (!facts.bpfSyscall || !facts.objectExists) return Ok(facts);
  const st = await xdpState(o.iface, o.netns);
  if (st.err) return st;
  const fs = await ensureBpffs();
  if (fs.err) return fs;
  facts.attached = st.val.prog;
  facts.ourProgId = pinnedId(join(pinDir, 'prog'));
  facts.mapsExist = BlocklistMaps.exists(pinDir);
  if (facts.mapsExist) {
    try {
      const m = BlocklistMaps.open(pinDir);
      try {
        facts.flags = m.flags();
      } finally {
        m.close();
      }
    } catch (e) {
      if (e instanceof BpfSyscallError) return Err(new UnsupportedError('xdp.bpf', `cannot open the pinned maps in ${pinDir}: ${e.message}`, { hint: 'needs root (CAP_BPF, CAP_NET_ADMIN)' }));
      throw e;
    }
  }
  return Ok(facts);
}

function step(id: string, description: string, act: XdpAction[], undo: XdpAction[]): Step {
  return { id, description, do: act, undo };
}

/**
 * The plan that attaches the blocklist (pure): create or re-open the pinned
 * maps, load a program bound to them as `prog_next`, attach it (native then
 * generic, or atomically over our own program in its mode), and make it the
 * pinned `prog`. Refuses when bpf(2) or the object is missing, and never
 * replaces a foreign program (`XDP_BUSY`).
 */
export function compileXdp(o: Options, name: string, pinDir: string, facts: XdpFacts): Result<XdpCompiled, NetfenceError> {
  if (!facts.bpfSyscall) return Err(new UnsupportedError('xdp.bpf', `bpf(2) from Node is not supported on ${process.arch}`));
  if (!facts.objectPath || !facts.objectExists) {
    return Err(new UnsupportedError('xdp.object', `the prebuilt XDP object was not found${facts.objectPath ? ` at ${facts.objectPath}` : ''}`, { hint: 'run `npm run build:bpf`' }));
  }
  const attached = facts.attached;
  if (attached && attached.id !== facts.ourProgId) {
    return Err(new NetfenceError('XDP_BUSY', `interface ${o.iface} already has an XDP program (id ${attached.id}, ${attached.name || 'unnamed'}) that is not this blocklist's; refusing to replace it`, { hint: 'detach it first, or use backend: "nft"' }));
  }
  const replacing = attached !== undefined;
  const prevMode: XdpAttachMode = attached?.mode === 'generic' ? 'generic' : 'native';
  const modes: XdpAttachMode[] = replacing ? [prevMode] : o.mode === 'auto' ? ['native', 'generic'] : [o.mode];
  const flags = o.matchDestination ? FLAG_MATCH_DST : 0;
  const plan = emptyPlan(`xdp-blocklist:${name}`, o.netns);
  plan.xdp.push({ iface: o.iface, object: facts.objectPath, program: 'nf_blocklist', mode: o.mode, pinDir });
  plan.decisions.push({ subject: 'xdp.mode', chosen: modes.join(' then '), reason: replacing ? `our program is attached (${prevMode}): replaced atomically in that mode` : `mode ${o.mode}` });
  const base = { pinDir };
  plan.steps.push(
    facts.mapsExist
      ? step('xdp:maps', `open the pinned maps in ${pinDir}`, [{ kind: 'xdp-maps', ...base, maxEntries: o.maxEntries, flags, create: false }], [{ kind: 'xdp-maps', ...base, maxEntries: o.maxEntries, flags: facts.flags ?? 0, create: false }])
      : step('xdp:maps', `create and pin the maps in ${pinDir}`, [{ kind: 'xdp-maps', ...base, maxEntries: o.maxEntries, flags, create: true }], [{ kind: 'xdp-unpin', ...base }]),
    step('xdp:load', `load ${facts.objectPath} bound to the pinned maps`, [{ kind: 'xdp-load', ...base, object: facts.objectPath, pin: 'prog_next' }], [{ kind: 'xdp-unpin', ...base, names: ['prog_next'] }]),
    step(
      'xdp:attach',
      `attach the program to ${o.iface} (${modes.join(', then ')})`,
      [{ kind: 'xdp-attach', ...base, iface: o.iface, pin: 'prog_next', modes, replace: replacing }],
      // the previous program is pinned as `prog` again once the pin swap is undone
      replacing ? [{ kind: 'xdp-attach', ...base, iface: o.iface, pin: 'prog', modes: [prevMode], replace: true }] : [{ kind: 'xdp-detach', ...base, iface: o.iface }],
    ),
    step('xdp:pin', 'make the new program the pinned one (the previous one kept until the apply completed)', [{ kind: 'xdp-pin-swap', ...base, direction: 'commit' }], [{ kind: 'xdp-pin-swap', ...base, direction: 'revert' }]),
  );
  return Ok({ plan, reopened: facts.mapsExist, replacing, modes });
}

/**
 * The plan that detaches the blocklist (pure): our program off the interface
 * (only when it is ours), then the pins (all of them, or with `keepMaps` the
 * program pins only). Empty when there is nothing pinned.
 */
export function compileXdpDestroy(o: Options, name: string, pinDir: string, facts: Pick<XdpFacts, 'attached' | 'ourProgId'> & { pinned: boolean }, keepMaps: boolean): Plan {
  const plan = emptyPlan(`xdp-blocklist:${name}`, o.netns);
  if (!facts.pinned) return plan;
  const base = { pinDir };
  const a = facts.attached;
  if (a && facts.ourProgId !== undefined && a.id === facts.ourProgId) {
    const mode: XdpAttachMode = a.mode === 'generic' ? 'generic' : 'native';
    plan.steps.push(step('xdp:detach', `detach our program from ${o.iface}`, [{ kind: 'xdp-detach', ...base, iface: o.iface }], [{ kind: 'xdp-attach', ...base, iface: o.iface, pin: 'prog', modes: [mode], replace: false }]));
  }
  plan.steps.push(step('xdp:unpin', keepMaps ? 'unpin the program (maps kept)' : `remove the pins in ${pinDir}`, [keepMaps ? { kind: 'xdp-unpin', ...base, names: ['prog', 'prog_next', 'prog_prev'] } : { kind: 'xdp-unpin', ...base }], []));
  return plan;
}
