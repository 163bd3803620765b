/**
 * Kernel test suite guard: refuses to run kernel tests without root (they must
 * not be silently skipped), and after the suite fails the run if anything of
 * ours is left on the machine: the lab namespaces this run created (recorded
 * through NETFENCE_LAB_REGISTRY, so suites running side by side do not blame
 * each other), netfence tables in the machine's own namespace, pinned BPF
 * objects under /sys/fs/bpf/netfence.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/host/run.js';

let registry = '';
let before = new Set<string>();

async function namespaces(): Promise<Set<string>> {
  const r = await run(['ip', 'netns', 'list']);
  return new Set(r.ok ? r.val.stdout.split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter(Boolean) : []);
}

/** Host-wide state of ours: tables in the machine's own namespace, bpffs pins. */
async function hostLeftovers(): Promise<string[]> {
  const found: string[] = [];
  const t = await run(['nft', 'list', 'tables']);
  if (t.ok) for (const line of t.val.stdout.split('\n')) if (/netfence|nf_|fence/i.test(line)) found.push(`host table: ${line.trim()}`);
  if (existsSync('/sys/fs/bpf/netfence')) for (const f of readdirSync('/sys/fs/bpf/netfence')) found.push(`pinned bpf: /sys/fs/bpf/netfence/${f}`);
  return found;
}

export async function setup(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error('kernel tests need root: run `npm test` as root (they are never skipped)');
  }
  registry = mkdtempSync(join(tmpdir(), 'netfence-labs-'));
  process.env.NETFENCE_LAB_REGISTRY = registry;
  before = new Set(await hostLeftovers());
  if (before.size) console.warn(`[netfence] leftovers from an earlier run (not counted against this run):\n  ${[...before].join('\n  ')}`);
}

export async function teardown(): Promise<void> {
  const created = readdirSync(registry).flatMap((f) => readFileSync(join(registry, f), 'utf8').split('\n').filter(Boolean));
  rmSync(registry, { recursive: true, force: true });
  const live = await namespaces();
  const after = [...created.filter((n) => live.has(n)).map((n) => `namespace ${n}`), ...(await hostLeftovers()).filter((l) => !before.has(l))];
  console.log(`[netfence] leak check: ${created.length} lab namespaces created by this run, ${after.length} things left behind`);
  if (after.length) {
    throw new Error(`kernel tests left state behind:\n  ${after.join('\n  ')}`);
  }
}
