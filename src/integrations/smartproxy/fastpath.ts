/**
 * The flowtable fast path of the route managers (netfence's `fastPath`
 * option, not a SmartProxy field), built from the Firewall's pure flowtable
 * constructors (`src/firewall/flowtable.ts`). Decided once per manager from
 * the capability report: `'required'` fails clearly when the kernel lacks
 * flowtables, `'auto'` records the decision either way.
 *
 * Only the routes' own connections are offloaded: each route without
 * `maxRate` gets an offload rule (its conntrack match + the flowtable's
 * offload statements) in the offload chain, which runs after every forward
 * chain accepted the packet. Every change re-creates the flowtable in the same
 * transaction, so flows offloaded before it meet the new rules again (the
 * kernel hands them back to the normal path; connections continue).
 * @module
 */
import { detectCapabilities } from '../../capabilities/index.js';
import { NetfenceError } from '../../errors.js';
import * as x from '../../nft/build.js';
import type { Command, Statement } from '../../nft/schema/index.js';
import { DEFAULT_FASTPATH_PRIORITY, decideFastPath as decideFlowtable, flowtableCommand, offloadChainCommand, offloadStatements, type FastPathTarget } from '../../firewall/flowtable.js';
import { listLinks } from '../../host/links.js';
import { Err, Ok, type Result } from '../../result.js';
import { ownedRuleComment } from '../../util/rule-comment.js';
import { IfName } from '../../validate.js';

/** Name of the flowtable and of its offload chain in each route table. */
export const ROUTE_FASTPATH_NAME = 'sp_fastpath';

/** The `fastPath` option: a mode, or a mode with the flowtable's devices (default: every non-loopback interface). */
export type FastPathOption = 'off' | 'auto' | 'required' | { mode: 'auto' | 'required'; devices?: string[] };

/** What the compiler and the core need from the fast-path decision. */
export interface FastPath {
  /** Whether routes' connections are offloaded. */
  enabled: boolean;
  /**
   * Commands re-creating the flowtable and offload chain of `table` with one
   * offload rule per route match in `routes` (id → conntrack matches).
   */
  refresh(table: string, routes: ReadonlyArray<{ id: string; matches: Statement[][] }>): Command[];
  /** Decisions to report in each route's status. */
  decisions: { subject: string; chosen: string; reason: string }[];
}

/** No fast path. */
export const NO_FAST_PATH: FastPath = { enabled: false, refresh: () => [], decisions: [] };

function target(table: string, devices: readonly string[]): FastPathTarget {
  return { family: 'inet', table, name: ROUTE_FASTPATH_NAME, devices, priority: DEFAULT_FASTPATH_PRIORITY };
}

/** The non-loopback interfaces of a namespace. */
async function interfaces(netns: string | undefined): Promise<Result<string[], NetfenceError>> {
  const r = await listLinks({ netns, what: 'list interfaces' });
  if (r.err) return Err(r.val);
  return Ok(r.val.filter((l) => l.link_type !== 'loopback').map((l) => l.ifname));
}

/** Validate the option (throws nothing; the managers validate its shape first). */
export function fastPathOptionProblem(o: unknown): string | undefined {
  if (o === undefined || o === 'off' || o === 'auto' || o === 'required') return undefined;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return "must be 'off', 'auto', 'required' or { mode, devices? }";
  const v = o as { mode?: unknown; devices?: unknown };
  if (v.mode !== 'auto' && v.mode !== 'required') return "mode must be 'auto' or 'required'";
  if (v.devices !== undefined && !(Array.isArray(v.devices) && v.devices.length > 0 && v.devices.every((d) => IfName.safeParse(d).success))) return 'devices must be a non-empty array of interface names';
  for (const k of Object.keys(v)) if (k !== 'mode' && k !== 'devices') return `unknown key ${k}`;
  return undefined;
}

/** The fast path for a manager's `fastPath` option, decided from the kernel's capabilities. */
export async function decideFastPath(option: FastPathOption, netns: string | undefined): Promise<Result<FastPath, NetfenceError>> {
  if (option === 'off') return Ok(NO_FAST_PATH);
  const mode = typeof option === 'string' ? option : option.mode;
  let devices = typeof option === 'object' ? option.devices : undefined;
  if (!devices) {
    const l = await interfaces(netns);
    if (l.err) return Err(l.val);
    devices = l.val;
  }
  const report = await detectCapabilities(netns === undefined ? {} : { netns });
  const d = devices.length > 0 ? decideFlowtable(report, mode, { name: ROUTE_FASTPATH_NAME, devices, priority: DEFAULT_FASTPATH_PRIORITY }) : undefined;
  if (d && !d.ok) return Err(d.error);
  if (!d || !d.enabled) {
    const decision = d?.decision ?? { subject: 'fastPath', chosen: 'none', reason: 'no interface to offload between' };
    if (!d && mode === 'required') return Err(new NetfenceError('FASTPATH', 'fastPath (required): the namespace has no interface to offload between'));
    return Ok({ enabled: false, refresh: () => [], decisions: [decision] });
  }
  const devs = devices;
  return Ok({
    enabled: true,
    decisions: [d.decision],
    refresh: (table, routes) => {
      const t = target(table, devs);
      const ref = { family: t.family, table: t.table, name: t.name };
      return [
        offloadChainCommand(t),
        x.cmd.flush({ chain: ref }),
        flowtableCommand(t),
        x.cmd.delete({ flowtable: ref }),
        flowtableCommand(t),
        ...routes.flatMap((r) => r.matches.map((m) => x.cmd.add({ rule: { family: t.family, table: t.table, chain: t.name, comment: ownedRuleComment(r.id, 'offload'), expr: [...m, ...offloadStatements(t)] } }))),
      ];
    },
  });
}
