/**
 * Removal plans of a declarative file's objects: recorded limits (each
 * shared tc site with its last limit), blocklists (XDP steps or the nft
 * fallback table) and owned tables. `apply` merges them with the plans of
 * what changes; `destroy` merges only them.
 * @module
 */
import type { NetfenceError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import type { PlanPart } from '../plan/merge.js';
import { foreignOwner, OwnershipError, probeOwnership, tableKey } from '../plan/ownership.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { backendByName } from '../throttle/backends/index.js';
import { throttleCaps } from '../throttle/caps.js';
import { compileRemove, type LimitRecord } from '../throttle/compile.js';
import { compileXdpDestroy } from '../xdp/compile.js';
import { XdpBlocklist } from '../xdp/xdp-blocklist.js';
import type { XdpBlocklistOptions } from '../xdp/types.js';
import type { BlocklistRecord, LimitsRecord } from './diff.js';
import type { ObjectRecord } from './objects.js';

/** The label of an object's plan part (`firewall inet web` -> `firewall:inet:web`). */
export function partLabel(key: string): string {
  return key.replace(/\s+/g, ':');
}

/** Removal plans of recorded limits (newest first; each shared site removed with its last limit). */
export async function limitsRemovePlan(rec: LimitsRecord, owner: string, netns: string | undefined): Promise<Plan> {
  const plan = emptyPlan(owner, netns);
  const left = new Map<string, number>();
  const siteOf = (r: LimitRecord) => `${r.backend}:${r.site.direction}:${r.site.iface}`;
  for (const r of rec.records) left.set(siteOf(r), (left.get(siteOf(r)) ?? 0) + 1);
  const caps = rec.records.some((r) => r.cgroup) ? await throttleCaps(netns) : undefined;
  for (const r of [...rec.records].reverse()) {
    const k = siteOf(r);
    const n = (left.get(k) ?? 1) - 1;
    left.set(k, n);
    const p = compileRemove(r, backendByName(r.backend), { owner, netns, lastOnSite: n === 0, cgroupMount: caps?.cgroup2Mount, pidsInGroup: [] });
    plan.tables.push(...p.tables.filter((t) => !plan.tables.some((u) => tableKey(u) === tableKey(t))));
    plan.nft.push(...p.nft);
    plan.steps.push(...p.steps);
  }
  return plan;
}

async function blocklistRemovePlan(rec: BlocklistRecord, owner: string, netns: string | undefined): Promise<Result<Plan, NetfenceError>> {
  const plan = emptyPlan(owner, netns);
  if (hostFiles().exists(rec.pinDir)) {
    const bl = new XdpBlocklist({ ...(rec.options as XdpBlocklistOptions), ...(netns !== undefined ? { netns } : {}) });
    const f = await bl.hostFacts();
    if (f.err) return Err(f.val);
    const p = compileXdpDestroy(bl.options, bl.name, bl.pinDir, { attached: f.val.attached, ourProgId: f.val.ourProgId, pinned: true }, false);
    plan.steps.push(...p.steps);
  }
  const ref: TableRef = { family: 'netdev', name: rec.nftTable };
  const p = await probeOwnership(ref, owner, netns);
  if (p.ok && p.val === 'owned') {
    plan.tables.push(ref);
    plan.nft.push({ delete: { table: { family: ref.family, name: ref.name } } });
  }
  return Ok(plan);
}

/** The plan that deletes the owned tables among `tables` that exist. */
async function tablesRemovePlan(tables: readonly TableRef[], owner: string, netns: string | undefined): Promise<Result<Plan, NetfenceError>> {
  const plan = emptyPlan(owner, netns);
  for (const t of tables) {
    const p = await probeOwnership(t, owner, netns);
    if (p.err) return Err(p.val);
    if (p.val === 'not-owned') return Err(new OwnershipError(t, await foreignOwner(t, netns), owner));
    if (p.val === 'owned') {
      plan.tables.push(t);
      plan.nft.push({ delete: { table: { family: t.family, name: t.name } } });
    }
  }
  return Ok(plan);
}

/** The plan part that removes one recorded object (what of it is in the kernel and owned). */
export async function removePart(key: string, rec: ObjectRecord, owner: string, netns: string | undefined): Promise<Result<PlanPart, NetfenceError>> {
  if (rec.kind === 'limits') return Ok({ label: `${partLabel(key)}:remove`, plan: await limitsRemovePlan(rec, owner, netns) });
  const p = rec.kind === 'blocklist' ? await blocklistRemovePlan(rec, owner, netns) : await tablesRemovePlan(rec.tables, owner, netns);
  return p.err ? Err(p.val) : Ok({ label: `${partLabel(key)}:remove`, plan: p.val });
}
