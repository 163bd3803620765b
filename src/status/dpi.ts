/**
 * The DpiBlocker part of {@link readStatus}: its steering (an owned `dpi:`
 * table with nft `queue` rules, or a `NETFENCE-*` chain in iptables-nft's
 * filter tables) and the kernel's statistics of every bound NFQUEUE queue
 * (`/proc/net/netfilter/nfnetlink_queue` of the namespace).
 * @module
 */
import { readProcQueues } from '../dpi/nfqueue/proc.js';
import { listingItems, type NftListing } from '../nft/listing.js';
import type { JournalEntry } from '../plan/journal.js';
import type { QueueStatus, SteeringStatus, TableStatus } from './types.js';

/** The queue numbers of a rule's `queue` statement as `[first, last]`. */
function queueRange(expr: unknown): [number, number] | undefined {
  if (!Array.isArray(expr)) return undefined;
  for (const s of expr) {
    const q = (s as { queue?: { num?: unknown } }).queue;
    if (!q) continue;
    const n = q.num;
    if (typeof n === 'number') return [n, n];
    const r = (n as { range?: unknown } | undefined)?.range;
    if (Array.isArray(r) && typeof r[0] === 'number' && typeof r[1] === 'number') return [r[0], r[1]];
  }
  return undefined;
}

/** Steering of DpiBlockers in a terse listing (pure). */
export function steeringOf(listing: NftListing, tables: readonly TableStatus[]): SteeringStatus[] {
  const items = listingItems(listing);
  const out: SteeringStatus[] = [];
  for (const t of tables) {
    if (t.kind !== 'dpi') continue;
    const s: SteeringStatus = { form: 'nft', table: `${t.family} ${t.name}`, owner: t.owner, chains: t.chains.map((c) => c.name), rules: t.rules };
    for (const i of items) {
      if (i.kind !== 'rule' || i.value.family !== t.family || i.value.table !== t.name) continue;
      const q = queueRange(i.value.expr);
      if (q) s.queues = s.queues ? [Math.min(s.queues[0], q[0]), Math.max(s.queues[1], q[1])] : q;
    }
    const toQueue = t.counters.filter((c) => c.source === 'rule' && /to the queue/.test(c.comment ?? ''));
    if (toQueue.length) {
      s.packets = toQueue.reduce((a, c) => a + c.packets, 0);
      s.bytes = toQueue.reduce((a, c) => a + c.bytes, 0);
    }
    out.push(s);
  }
  // xtables form: NETFENCE-* chains in iptables-nft's tables (not owned by netfence: identified by name)
  const xt = new Map<string, SteeringStatus>();
  for (const i of items) {
    if (i.kind !== 'chain' && i.kind !== 'rule') continue;
    const chain = String(i.kind === 'chain' ? i.value.name : i.value.chain);
    if (!chain.startsWith('NETFENCE-')) continue;
    const table = `${String(i.value.family)} ${String(i.value.table)}`;
    if (tables.some((t) => `${t.family} ${t.name}` === table)) continue;
    const key = `${table} ${chain}`;
    let s = xt.get(key);
    if (!s) {
      s = { form: 'xtables', table, chains: [chain], rules: 0 };
      xt.set(key, s);
    }
    if (i.kind === 'rule') {
      s.rules++;
      const expr = i.value.expr;
      if (Array.isArray(expr)) {
        for (const st of expr) {
          const c = (st as { counter?: { packets?: unknown; bytes?: unknown } }).counter;
          if (c && typeof c.packets === 'number' && typeof c.bytes === 'number' && JSON.stringify(expr).includes('NFQUEUE')) {
            s.packets = (s.packets ?? 0) + c.packets;
            s.bytes = (s.bytes ?? 0) + c.bytes;
          }
        }
      }
    }
  }
  out.push(...xt.values());
  return out;
}

/**
 * The xtables form carries its queue numbers inside xt target data nft does
 * not print; the DpiBlocker that installed it keeps an in-effect journal
 * entry whose steps hold the iptables-restore text: owner and queues come
 * from there (pure).
 */
export function withJournalQueues(steering: SteeringStatus[], entries: readonly JournalEntry[]): void {
  for (const s of steering) {
    if (s.form !== 'xtables' || s.queues !== undefined) continue;
    for (const e of entries) {
      if (!e.owner.startsWith('dpi:')) continue;
      const text = e.steps.flatMap((st) => st.do).map((a) => ('input' in a && typeof a.input === 'string' ? a.input : '')).join('\n');
      if (!text.includes(`:${s.chains[0] ?? ''} `)) continue;
      const bal = /--queue-balance (\d+):(\d+)/.exec(text);
      const num = /--queue-num (\d+)/.exec(text);
      if (bal) s.queues = [Number(bal[1]), Number(bal[2])];
      else if (num) s.queues = [Number(num[1]), Number(num[1])];
      s.owner = e.owner;
      break;
    }
  }
}

/** Bound queues of `netns`. */
export async function readQueues(netns: string | undefined, warnings: string[]): Promise<QueueStatus[]> {
  const r = await readProcQueues({ netns });
  if (r.err) {
    warnings.push(`NFQUEUE statistics: ${r.val.message.split('\n')[0]}`);
    return [];
  }
  return r.val.map((q) => ({ queue: q.queue, portid: q.portid, waiting: q.queueTotal, queued: q.idSequence, dropped: q.queueDropped, userDropped: q.userDropped }));
}
