/**
 * Settled services of a {@link DpiBlocker}: the main process's side of the
 * nft sets that let new connections to a server endpoint pass as benign once
 * an earlier flow to it was identified as a known protocol that is not
 * BitTorrent (see `settle` in src/dpi/steering.ts).
 *
 * Workers report such endpoints (`{ kind: 'settled' }`); this class adds them
 * to the set with the TTL, in batches, one nft transaction at a time through
 * the executor, and takes an endpoint out at once when it shows up as a
 * BitTorrent peer (a detection, or a peer list from a tracker or DHT reply), so
 * that the next connection to it is inspected. It mirrors what it added
 * (with the expiry) to know what to take out; the kernel expires the elements
 * by itself.
 * @module
 */
import type { NetfenceError } from '../errors.js';
import { apply as applyPlan } from '../plan/executor.js';
import { emptyPlan, type Plan } from '../plan/types.js';
import { Ok, type Result } from '../result.js';
import { serviceKey as key, settleElements, steeringNames, type SettledService } from './steering.js';

/** Counters of the settled services (see {@link DpiBlockerStats}). */
export interface SettledServicesStats {
  /** Endpoints in the sets now (as added here, expired ones excluded). */
  size: number;
  /** Endpoints added (or refreshed) since apply(). */
  added: number;
  /** Endpoints taken out because they showed up as BitTorrent peers. */
  removed: number;
  /** nft transactions that failed (their endpoints are simply not settled). */
  errors: number;
  /** Seconds an endpoint stays settled. */
  ttlSeconds: number;
}

/** The set side of settled services for one blocker instance (see the module comment). */
export class SettledServices {
  /** What was added, by endpoint: the service and when its element expires (ms). */
  private readonly present = new Map<string, { svc: SettledService; expires: number }>();
  private readonly toAdd = new Map<string, SettledService>();
  private readonly toDelete = new Map<string, SettledService>();
  /** Endpoints added by the transaction in flight. */
  private readonly committing = new Map<string, SettledService>();
  private running: Promise<void> | undefined;
  private closed = false;
  private added = 0;
  private removed = 0;
  private errors = 0;

  constructor(
    private readonly o: {
      name: string;
      netns: string | undefined;
      owner: string;
      ttlSeconds: number;
      maxEntries: number;
      onError: (e: NetfenceError) => void;
      /** How a plan is applied (default: the executor). */
      apply?: (plan: Plan) => Promise<Result<unknown, NetfenceError>>;
    },
  ) {}

  /** A worker saw `svc` settled: add it (refresh its TTL) with the next batch. */
  offer(svc: SettledService): void {
    if (this.closed) return;
    const k = key(svc);
    const p = this.present.get(k);
    // a worker reports an endpoint at most every ttl/2; another worker may have just done so
    if ((p && p.expires - Date.now() > (this.o.ttlSeconds * 1000) / 2) || this.committing.has(k)) return;
    if (!p && this.present.size >= this.o.maxEntries * 2) this.prune();
    this.toDelete.delete(k);
    this.toAdd.set(k, svc);
    this.kick();
  }

  /** These endpoints speak BitTorrent: take them out of the sets (both transports), with the next batch. */
  forget(endpoints: Iterable<{ addr: string; port: number }>): void {
    if (this.closed) return;
    for (const ep of endpoints)
      for (const transport of ['tcp', 'udp'] as const) {
        const k = key({ transport, ...ep });
        this.toAdd.delete(k);
        const p = this.present.get(k);
        // added, or being added right now: delete it (after the transaction in flight)
        const svc = p && p.expires > Date.now() ? p.svc : this.committing.get(k);
        if (svc) this.toDelete.set(k, svc);
        this.present.delete(k);
      }
    if (this.toDelete.size) this.kick();
  }

  stats(): SettledServicesStats {
    this.prune();
    return { size: this.present.size, added: this.added, removed: this.removed, errors: this.errors, ttlSeconds: this.o.ttlSeconds };
  }

  /** Stop taking changes and wait for the transaction in flight (before the table is removed). */
  async close(): Promise<void> {
    this.closed = true;
    this.toAdd.clear();
    this.toDelete.clear();
    await this.running;
  }

  private prune(): void {
    const now = Date.now();
    for (const [k, p] of this.present) if (p.expires <= now) this.present.delete(k);
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = (async () => {
      let delsOnly = false;
      while (!this.closed && (this.toAdd.size || this.toDelete.size)) {
        const adds = delsOnly ? [] : [...this.toAdd.values()];
        const dels = [...this.toDelete.values()];
        if (!delsOnly) this.toAdd.clear();
        this.toDelete.clear();
        delsOnly = false;
        for (const a of adds) this.committing.set(key(a), a);
        const r = await this.commit(adds, dels).finally(() => this.committing.clear());
        if (r.err) {
          this.errors++;
          // the first failure and every 100th: a full set fails every batch
          if (this.errors % 100 === 1) this.o.onError(r.val);
          // a peer must not stay settled because a batch failed (a full set refuses the additions): its deletion
          // is tried once more, in a transaction of its own
          if (dels.length && adds.length) {
            for (const d of dels) this.toDelete.set(key(d), d);
            delsOnly = true;
          }
          continue;
        }
        const expires = Date.now() + this.o.ttlSeconds * 1000;
        for (const s of adds) this.present.set(key(s), { svc: s, expires });
        for (const s of dels) this.present.delete(key(s));
        this.added += adds.length;
        this.removed += dels.length;
      }
    })().finally(() => {
      this.running = undefined;
    });
  }

  /**
   * One transaction: the additions with the TTL; the deletions as add (1 s) then
   * delete, so that an element the kernel already expired is no error.
   */
  private async commit(adds: SettledService[], dels: SettledService[]): Promise<Result<void, NetfenceError>> {
    const { name, netns, owner, ttlSeconds } = this.o;
    const plan = emptyPlan(owner, netns);
    plan.tables.push({ family: 'inet', name: steeringNames(name).table });
    plan.nft.push(...settleElements(name, 'add', adds, ttlSeconds), ...settleElements(name, 'add', dels, 1), ...settleElements(name, 'delete', dels));
    if (!plan.nft.length) return Ok(undefined);
    const r = await (this.o.apply ?? applyPlan)(plan);
    return r.err ? r : Ok(undefined);
  }
}
