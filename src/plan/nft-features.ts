/**
 * What the nft program in use offers beyond nft 1.0.6, as far as the executor
 * uses it: table comments in JSON (1.0.6 accepts and silently drops them) and
 * the `destroy` command (delete if it exists; needs a newer nft and Linux >= 6.3).
 *
 * Found by trying, never from a version number: once per nft program (see
 * `configureHost()` / `$NETFENCE_NFT`) and process, in a throwaway `nfcap-*`
 * namespace (the caller's namespaces are never touched), a table with a comment
 * is committed and listed back as JSON, then destroyed twice (the second time it
 * no longer exists). Anything that cannot be tried counts as absent, which only
 * means the 1.0.6 forms are used: the ownership mark is the named counter either
 * way, the comment is an addition for people reading `nft list ruleset`.
 * @module
 */
import { nftProgram, run } from '../host/run.js';
import { listingObjects, parseListingText } from '../nft/listing.js';
import { createProbeNamespace, destroyProbeNamespace } from '../capabilities/probe-ns.js';

/** nft features the executor uses when present. */
export interface NftBatchFeatures {
  /** JSON `add table` keeps its `comment` (and JSON listings show it). */
  tableComment?: boolean | undefined;
  /** The `destroy` command works (delete-if-exists, no error for a missing object). */
  destroy?: boolean | undefined;
}

const memo = new Map<string, Promise<NftBatchFeatures>>();

/** The features of the nft program in use (probed once per program and process). */
export function nftBatchFeatures(): Promise<NftBatchFeatures> {
  const { program } = nftProgram();
  let p = memo.get(program);
  if (!p) {
    p = probe().catch(() => ({ tableComment: false, destroy: false }));
    memo.set(program, p);
  }
  return p;
}

/** Forget what was probed (tests). @internal */
export function clearNftBatchFeatures(): void {
  memo.clear();
}

const doc = (commands: unknown[]): string => JSON.stringify({ nftables: commands });

async function probe(): Promise<NftBatchFeatures> {
  const ns = await createProbeNamespace([]);
  if (ns.err) return { tableComment: false, destroy: false };
  try {
    const netns = ns.val.name;
    const table = { family: 'inet', name: 'nfcap_batch_features' };
    const comment = 'netfence:probe';
    let tableComment = false;
    const add = await run(['nft', '-j', '-f', '-'], { netns, input: doc([{ add: { table: { ...table, comment } } }]), timeoutMs: 10_000, what: 'nft feature probe (table comment)' });
    if (add.ok) {
      const l = await run(['nft', '-j', 'list', 'table', table.family, table.name], { netns, timeoutMs: 10_000, what: 'nft feature probe (listing)' });
      if (l.ok) {
        const objs = parseListingText(l.val.stdout);
        tableComment = objs.ok && listingObjects(objs.val).some((o) => o.kind === 'table' && o.value.name === table.name && o.value.comment === comment);
      }
    }
    const gone = { destroy: { table: { ...table, name: `${table.name}_absent` } } };
    const d = await run(['nft', '-j', '-f', '-'], { netns, input: doc([{ destroy: { table } }, gone]), timeoutMs: 10_000, what: 'nft feature probe (destroy)' });
    let destroy = false;
    if (d.ok) {
      const left = await run(['nft', '-j', 'list', 'tables'], { netns, timeoutMs: 10_000, what: 'nft feature probe (tables)' });
      destroy = left.ok && !left.val.stdout.includes(table.name);
    }
    return { tableComment, destroy };
  } finally {
    await destroyProbeNamespace(ns.val);
  }
}
