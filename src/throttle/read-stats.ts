/**
 * Reading one limit's counters from the kernel: nft named counters and quotas,
 * tc class or tc action statistics, combined per backend into
 * {@link ThrottleStats}.
 * @module
 */
import type { CommandError } from '../errors.js';
import { run } from '../host/run.js';
import { Err, Ok, type Result } from '../result.js';
import { backendByName } from './backends/index.js';
import type { ThrottleBackend } from './backends/types.js';
import type { LimitRecord } from './compile.js';
import { nftNames } from './nft.js';
import { parseNftCounters, parseNftQuotas, parseTcActionStats, parseTcClassStats } from './stats.js';
import type { ThrottleStats } from './types.js';

/** Bytes, packets, drops and backlog of the limit `rec` in `netns`. */
export async function readLimitStats(rec: LimitRecord, netns: string | undefined): Promise<Result<ThrottleStats, CommandError>> {
  const b: ThrottleBackend = backendByName(rec.backend);
  const out: ThrottleStats = { bytes: 0, packets: 0, drops: 0, backlog: 0 };
  const n = nftNames(rec.id);
  let counters = new Map<string, { packets: number; bytes: number }>();
  if (rec.usesNft) {
    const c = await run(['nft', '-j', 'list', 'counters', 'table', 'inet', rec.table], { netns, what: 'read nft counters' });
    if (c.err) return Err(c.val);
    counters = parseNftCounters(c.val.stdout);
    if (rec.spec.quota) {
      const q = await run(['nft', '-j', 'list', 'quotas', 'table', 'inet', rec.table], { netns, what: 'read nft quota' });
      if (q.err) return Err(q.val);
      const quota = parseNftQuotas(q.val.stdout).get(n.quota);
      if (quota) {
        out.quotaUsed = quota.used;
        out.quotaExceeded = quota.used >= quota.bytes; // the kernel caps `used` at the quota
      }
    }
  }
  const matched = counters.get(n.matched) ?? { packets: 0, bytes: 0 };
  const policed = counters.get(n.dropped) ?? { packets: 0, bytes: 0 };
  const overQuota = counters.get(n.overQuota) ?? { packets: 0, bytes: 0 };
  const quotaDrops = rec.spec.quota?.action === 'drop' ? overQuota : { packets: 0, bytes: 0 };
  if (b.policesInNft || rec.rateBps === undefined) {
    out.bytes = matched.bytes - policed.bytes - quotaDrops.bytes;
    out.packets = matched.packets - policed.packets - quotaDrops.packets;
    out.drops = policed.packets + quotaDrops.packets;
  } else if (b.name === 'tc-police') {
    const a = await run(['tc', '-s', '-j', 'actions', 'get', 'action', 'police', 'index', String(rec.policeIndex)], { netns, what: 'read tc police statistics' });
    if (a.err) return Err(a.val);
    const s = parseTcActionStats(a.val.stdout);
    if (s) Object.assign(out, { bytes: s.bytes, packets: s.packets, drops: s.drops + quotaDrops.packets, overlimits: s.overlimits });
  } else {
    const c = await run(['tc', '-s', '-j', 'class', 'show', 'dev', rec.dev], { netns, what: 'read tc class statistics' });
    if (c.err) return Err(c.val);
    const s = parseTcClassStats(c.val.stdout, rec.classid);
    if (s) Object.assign(out, { bytes: s.bytes, packets: s.packets, drops: s.drops + quotaDrops.packets, backlog: s.backlog, overlimits: s.overlimits });
  }
  return Ok(out);
}
