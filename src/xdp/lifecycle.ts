/**
 * XdpBlocklist's XDP lifecycle: apply (host facts, compile, the executor,
 * then the mode in force) and the removal of its program and pins — each a
 * plan applied by the executor (src/plan/executor.ts).
 * @module
 */
import { join } from 'node:path';
import type { z } from 'zod';
import type { NetfenceError } from '../errors.js';
import { pinnedId } from '../host/bpf.js';
import { hostFiles } from '../host/files.js';
import { apply as applyPlan } from '../plan/executor.js';
import { Err, Ok, type Result } from '../result.js';
import { compileXdp, compileXdpDestroy, gatherXdpFacts } from './compile.js';
import { xdpState, type XdpMode } from './loader.js';
import type { XdpAttachInfo, XdpBlocklistOptionsSchema } from './types.js';

type Options = z.output<typeof XdpBlocklistOptionsSchema>;

/** Gather the facts, compile and apply the XDP plan; Ok with what is in force. */
export async function applyXdpPlan(o: Options, name: string, pinDir: string): Promise<Result<XdpAttachInfo & { mode: XdpMode }, NetfenceError>> {
  const f = await gatherXdpFacts(o, pinDir);
  if (f.err) return f;
  const c = compileXdp(o, name, pinDir, f.val);
  if (c.err) return c;
  const r = await applyPlan(c.val.plan);
  if (r.err) return Err(r.val);
  // in force: the program it replaced is no longer needed
  const prev = join(pinDir, 'prog_prev');
  if (hostFiles().exists(prev)) hostFiles().unlink(prev);
  const st = await xdpState(o.iface, o.netns);
  const m = st.ok ? st.val.prog?.mode : undefined;
  const mode: XdpMode = m === 'native' || m === 'generic' ? m : (c.val.modes[0] as XdpMode);
  const reason = c.val.replacing ? `replaced our attached program atomically (${mode})` : c.val.modes.length > 1 && mode === 'generic' ? 'native attach refused; generic in force' : `${mode} attach accepted`;
  return Ok({ backend: 'xdp', mode, reason, reopened: c.val.reopened });
}

/** Detach our program (never a foreign one) and remove the pins (the maps too unless `keepMaps`), when pinned. */
export async function destroyXdpPins(o: Options, name: string, pinDir: string, keepMaps: boolean): Promise<Result<void, NetfenceError>> {
  if (!hostFiles().exists(pinDir)) return Ok(undefined);
  const st = await xdpState(o.iface, o.netns);
  let ourProgId: number | undefined;
  try {
    ourProgId = pinnedId(join(pinDir, 'prog'));
  } catch {
    ourProgId = undefined;
  }
  const plan = compileXdpDestroy(o, name, pinDir, { attached: st.ok ? st.val.prog : undefined, ourProgId, pinned: true }, keepMaps);
  const r = await applyPlan(plan);
  return r.err ? Err(r.val) : Ok(undefined);
}
