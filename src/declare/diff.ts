/**
 * The per-object difference between a declarative file and the kernel, as
 * `planDeclaration` reports it: owned tables compared as models, limits by
 * their recorded specs and their presence in the kernel, blocklists by
 * backend, options and entries. Reads only.
 * @module
 */
import { join } from 'node:path';
import type { NetfenceError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { run } from '../host/run.js';
import { nftList } from '../host/nft.js';
import { foreignOwner, OwnershipError, probeOwnership, tableKey } from '../plan/ownership.js';
import type { TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { backendByName } from '../throttle/backends/index.js';
import type { LimitRecord } from '../throttle/compile.js';
import { formatRate } from '../throttle/rate.js';
import { parseTcClassStats } from '../throttle/stats.js';
import { NftBlocklist } from '../xdp/nft-backend.js';
import { XdpBlocklist } from '../xdp/xdp-blocklist.js';
import type { XdpBlocklistOptions } from '../xdp/types.js';
import { diffTables, hasTableChanges, modelFromCommands, modelFromListing, type TableChanges, type TableModel } from './model.js';
import type { DesiredObject, ObjectRecord } from './objects.js';

/** What happens to one declared object. */
export type ObjectAction = 'add' | 'change' | 'remove' | 'none';

/** The difference for one object between the kernel and the file. */
export interface ObjectDiff {
  /** `firewall inet web`, `vm-firewall bridge br0fw`, `smartproxy`, `limits default`, `blocklist bl0`. */
  key: string;
  kind: ObjectRecord['kind'];
  action: ObjectAction;
  /** Per owned table (firewalls, SmartProxy): what differs. */
  tables?: { table: string; exists: boolean; changes: TableChanges }[];
  /** Limits and blocklists: one line per difference (`l1 egress veth0: rate 10 Mbit/s -> 20 Mbit/s`). */
  details: string[];
  /** Blocklists: entries to add and to remove. */
  entries?: { added: string[]; removed: string[] };
}

/** The result of {@link planDeclaration}: a diff per object. */
export interface DeclarationDiff {
  owner: string;
  netns: string | undefined;
  source: string;
  objects: ObjectDiff[];
  /** How many objects change (action other than `none`). */
  changes: number;
}

const EMPTY: TableModel = { chains: {}, objects: {} };

async function tableState(t: TableRef, owner: string, netns: string | undefined): Promise<Result<TableModel | undefined, NetfenceError>> {
  const p = await probeOwnership(t, owner, netns);
  if (p.err) return Err(p.val);
  if (p.val === 'absent') return Ok(undefined);
  if (p.val === 'not-owned') return Err(new OwnershipError(t, await foreignOwner(t, netns), owner));
  const l = await nftList(['table', t.family, t.name], { netns, timeoutMs: 600_000 });
  if (l.err) return Err(l.val);
  return Ok(modelFromListing(l.val, t));
}

function limitLabel(r: LimitRecord): string {
  return `l${r.id} ${r.spec.direction} ${r.spec.iface}`;
}

function limitSummary(r: LimitRecord): string {
  const s = r.spec;
  const parts = [s.rate !== undefined ? `rate ${formatRate(s.rate)}` : undefined, s.quota ? `quota ${s.quota.bytes} bytes (${s.quota.action})` : undefined, s.match ? `match ${JSON.stringify(s.match)}` : undefined, `backend ${r.backend}`];
  return `${limitLabel(r)}: ${parts.filter(Boolean).join(', ')}`;
}

function specChanges(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])]) {
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    if (x === y) continue;
    const show = (v: unknown) => (v === undefined ? '(none)' : k === 'rate' && typeof v === 'number' ? formatRate(v) : JSON.stringify(v));
    out.push(`${k} ${show(a[k])} -> ${show(b[k])}`);
  }
  return out;
}

/** Whether a recorded limit is in the kernel: its owned table, or its tc class. */
async function limitPresent(r: LimitRecord, owner: string, netns: string | undefined): Promise<boolean> {
  if (r.usesNft) {
    const p = await probeOwnership({ family: 'inet', name: r.table }, owner, netns);
    if (!p.ok || p.val !== 'owned') return false;
  }
  if (r.kernelRateBps !== undefined && !backendByName(r.backend).policesInNft && r.backend !== 'tc-police') {
    const c = await run(['tc', '-s', '-j', 'class', 'show', 'dev', r.dev], { netns, what: 'read tc classes' });
    if (!c.ok || parseTcClassStats(c.val.stdout, r.classid) === undefined) return false;
  }
  return true;
}

/** A recorded blocklist. */
export type BlocklistRecord = Extract<ObjectRecord, { kind: 'blocklist' }>;
/** Recorded limits. */
export type LimitsRecord = Extract<ObjectRecord, { kind: 'limits' }>;

/** Whether the blocklist is in the kernel with the given backend, and its entries (canonical) if so. */
async function blocklistState(rec: BlocklistRecord, owner: string, netns: string | undefined): Promise<Result<{ backend: 'xdp' | 'nft' | undefined; entries: string[] }, NetfenceError>> {
  const bl = new XdpBlocklist({ ...(rec.options as XdpBlocklistOptions), ...(netns !== undefined ? { netns } : {}) });
  if (hostFiles().exists(join(rec.pinDir, 'prog'))) {
    const f = await bl.hostFacts();
    if (f.ok && f.val.attached && f.val.attached.id === f.val.ourProgId) {
      const l = await bl.list();
      bl.close();
      if (l.err) return Err(l.val);
      return Ok({ backend: 'xdp', entries: l.val.map((e) => e.entry).sort() });
    }
  }
  const ref: TableRef = { family: 'netdev', name: rec.nftTable };
  const p = await probeOwnership(ref, owner, netns);
  if (p.err) return Err(p.val);
  if (p.val === 'not-owned') return Err(new OwnershipError(ref, await foreignOwner(ref, netns), owner));
  if (p.val === 'absent') return Ok({ backend: undefined, entries: [] });
  const l = await new NftBlocklist(rec.nftTable, rec.iface, netns, owner).list();
  if (l.err) return Err(l.val);
  return Ok({ backend: 'nft', entries: l.val.map((e) => e.entry.text).sort() });
}

/** The difference between one declared object and the kernel (and the file's record of it). */
export async function diffObject(d: DesiredObject, prev: ObjectRecord | undefined, owner: string, netns: string | undefined): Promise<Result<ObjectDiff, NetfenceError>> {
  const rec = d.record;
  const out: ObjectDiff = { key: d.key, kind: rec.kind, action: 'none', details: [] };
  if (rec.kind === 'firewall' || rec.kind === 'vm-firewall' || rec.kind === 'smartproxy') {
    const prevModels = prev && 'models' in prev ? prev.models : undefined;
    out.tables = [];
    for (const t of rec.tables) {
      const k = tableKey(t);
      const cur = await tableState(t, owner, netns);
      if (cur.err) return Err(cur.val);
      const want = rec.models[k] ?? modelFromCommands(d.plan.nft, t);
      out.tables.push({ table: k, exists: cur.val !== undefined, changes: diffTables(cur.val ?? EMPTY, want, cur.val ? prevModels?.[k] : undefined) });
    }
    out.action = out.tables.every((t) => !t.exists) ? 'add' : out.tables.some((t) => !t.exists || hasTableChanges(t.changes)) ? 'change' : 'none';
    return Ok(out);
  }
  if (rec.kind === 'limits') {
    const p = prev?.kind === 'limits' ? prev : undefined;
    if (!p) {
      out.action = 'add';
      out.details = rec.records.map((r) => `+ ${limitSummary(r)}`);
      return Ok(out);
    }
    const n = Math.max(p.records.length, rec.records.length);
    for (let i = 0; i < n; i++) {
      const a = p.records[i];
      const b = rec.records[i];
      if (!a && b) out.details.push(`+ ${limitSummary(b)}`);
      else if (a && !b) out.details.push(`- ${limitSummary(a)}`);
      else if (a && b) {
        const c = specChanges(a.spec as unknown as Record<string, unknown>, b.spec as unknown as Record<string, unknown>);
        if (a.backend !== b.backend) c.push(`backend ${a.backend} -> ${b.backend}`);
        if (c.length) out.details.push(`~ ${limitLabel(b)}: ${c.join(', ')}`);
      }
    }
    for (const r of p.records) if (!(await limitPresent(r, owner, netns))) out.details.push(`! ${limitLabel(r)}: missing in the kernel (re-created)`);
    out.action = out.details.length ? 'change' : 'none';
    return Ok(out);
  }
  const bl = rec as BlocklistRecord;
  const s = await blocklistState(bl, owner, netns);
  if (s.err) return Err(s.val);
  const p = prev?.kind === 'blocklist' ? prev : undefined;
  const cur = new Set(s.val.entries);
  const want = new Set(bl.entries);
  out.entries = { added: bl.entries.filter((e) => !cur.has(e)), removed: s.val.entries.filter((e) => !want.has(e)) };
  if (s.val.backend === undefined) {
    out.action = 'add';
    out.details.push(`+ attach to ${bl.iface} (backend ${bl.backend})`);
  } else {
    if (s.val.backend !== bl.backend) out.details.push(`~ backend ${s.val.backend} -> ${bl.backend}`);
    if (!p) out.details.push('~ not recorded by this file: applied again');
    else out.details.push(...specChanges(p.options, bl.options).map((c) => `~ ${c}`));
    out.action = out.details.length || out.entries.added.length || out.entries.removed.length ? 'change' : 'none';
  }
  return Ok(out);
}

/** The diff of an object the file recorded and no longer declares (or destroys). */
export function removedDiff(key: string, rec: ObjectRecord): ObjectDiff {
  const out: ObjectDiff = { key, kind: rec.kind, action: 'remove', details: [] };
  if (rec.kind === 'limits') out.details = rec.records.map((r) => `- ${limitSummary(r)}`);
  else if (rec.kind === 'blocklist') out.details = [`- detach from ${rec.iface} (backend ${rec.backend})`];
  else out.details = rec.tables.map((t) => `- table ${tableKey(t)}`);
  return out;
}
