/**
 * Kernel test suite guard: refuses to run kernel tests without root (they must
 * not be silently skipped), and after the suite fails the run if anything of
 * ours is left on the machine: lab namespaces, netfence tables in the machine's
 * own namespace, pinned BPF objects under /sys/fs/bpf/netfence.
 */
import { existsSync, readdirSync } from 'node:fs';
import { leftoverLabNamespaces } from '../../src/lab/index.js';
import { run } from '../../src/host/run.js';

async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const ns of await leftoverLabNamespaces()) found.push(`namespace ${ns}`);
  const t = await run(['nft', 'list', 'tables']);
  if (t.ok) for (const line of t.val.stdout.split('\n')) if (/netfence|nf_|fence/i.test(line)) found.push(`host table: ${line.trim()}`);
  if (existsSync('/sys/fs/bpf/netfence')) for (const f of readdirSync('/sys/fs/bpf/netfence')) found.push(`pinned bpf: /sys/fs/bpf/netfence/${f}`);
  return found;
}

let before = new Set<string>();

export async function setup(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error('kernel tests need root: run `npm test` as root (they are never skipped)');
  }
  before = new Set(await leftovers());
  if (before.size) console.warn(`[netfence] leftovers from an earlier run (not counted against this run):\n  ${[...before].join('\n  ')}`);
}

export async function teardown(): Promise<void> {
  const after = (await leftovers()).filter((l) => !before.has(l));
  if (after.length) {
    throw new Error(`kernel tests left state behind:\n  ${after.join('\n  ')}`);
  }
}
