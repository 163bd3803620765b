/**
 * `netfence/testing` — a machine in memory for unit tests without root.
 *
 * `FakeHost` stands behind the same Host seam as the real machine: an
 * nftables model per network namespace that applies libnftables JSON batches
 * atomically and answers like nft, recorded tool calls with responders
 * (ip, tc, sysctl, bpftool, iptables), files, bpf(2) maps and pins, spawned
 * processes, and fault injection. Install it with `withHost(fake, fn)` or
 * `setHost(fake)` from `netfence/advanced`; the classes of `netfence` then
 * run their whole orchestration against it.
 *
 * ```ts
 * import { Firewall } from 'netfence';
 * import { withHost } from 'netfence/advanced';
 * import { FakeHost } from 'netfence/testing';
 *
 * const fake = new FakeHost({ netns: ['app'] });
 * await withHost(fake, async () => {
 *   const fw = new Firewall({ table: 'web', family: 'inet', netns: 'app' })
 *     .chain('input', { hook: 'input', priority: 0 })
 *     .rule('input', { id: 'ssh', dport: 22, protocol: 'tcp', action: 'accept' });
 *   (await fw.apply()).unwrap();
 * });
 * fake.nftOf('app').rules('inet', 'web', 'input'); // what the kernel would hold
 * ```
 *
 * It models rulesets, not packets: counters move only when a test sets them.
 * The executor's crash journal and its cross-process lock are still files of
 * the real machine: without root, point `NETFENCE_JOURNAL_DIR` and
 * `NETFENCE_LOCK_DIR` at temporary directories before netfence is imported.
 * @module
 */
export * from './host/fake.js';
export { FakeNft, NftCommandFailure, NFT_1_0_6, type FakeNftOptions, type FakeChain, type FakeElement, type FakeObject, type FakeRule, type FakeRuleset, type FakeSet, type FakeTable, type NftOutcome, type ResolvedNftOptions } from './host/fake-nft.js';
export { FakeFiles, type FakeNode } from './host/fake-files.js';
export { FakeBpf, type FakeMap, type FakeProg } from './host/fake-bpf.js';
export type { FakeTcObject } from './host/fake-tools.js';
