/**
 * Shared by reliability-faults.test.ts and reliability-crash.test.ts: the host
 * state netfence can change, as comparable text, and a check that nothing is
 * orphaned.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Firewall } from '../../src/firewall/index.js';
import { run } from '../../src/host/run.js';
import { readJournal } from '../../src/plan/journal.js';

async function out(argv: string[], netns: string): Promise<string> {
  const r = await run(argv, { netns, what: argv.join(' ') });
  return r.ok ? r.val.stdout : `ERROR ${r.val.failure.stderr}`;
}

/** `ls -R /sys/fs/bpf/netfence` as a sorted list of paths. */
export function pinTree(root = '/sys/fs/bpf/netfence'): string[] {
  if (!existsSync(root)) return [];
  const acc: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      acc.push(p);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return acc;
}

/** Everything the four classes can change in `netns`, as text (no statistics). */
export async function hostState(netns: string): Promise<Record<string, string>> {
  const links = JSON.parse(await out(['ip', '-j', 'link', 'show'], netns)) as { ifname: string }[];
  const [nft, qdiscs, dlinks, ifb, perLink] = await Promise.all([
    out(['nft', 'list', 'ruleset'], netns),
    out(['tc', 'qdisc', 'show'], netns),
    out(['ip', '-d', 'link', 'show'], netns),
    out(['ip', 'link', 'show', 'type', 'ifb'], netns),
    Promise.all(links.map(async (l) => [l.ifname, await out(['tc', 'class', 'show', 'dev', l.ifname], netns), (await out(['tc', 'filter', 'show', 'dev', l.ifname], netns)) + (await out(['tc', 'filter', 'show', 'dev', l.ifname, 'ingress'], netns))] as const)),
  ]);
  const st: Record<string, string> = {
    nft,
    qdiscs,
    links: dlinks.replace(/^\d+: /gm, 'N: '),
    ifb,
    // bpffs is global: only this suite's blocklists (other tests may run at the same time)
    pins: pinTree()
      .filter((p) => /^\/sys\/fs\/bpf\/netfence\/(crash_|relf_)/.test(p))
      .join('\n'),
  };
  for (const [name, classes, filters] of perLink) {
    st[`classes ${name}`] = classes;
    st[`filters ${name}`] = filters;
  }
  return st;
}

/** Journal entries of operations in progress written by `pid` (or any); a completed XdpBlocklist apply leaves none (it outlives its process by design). */
export function journalOf(pid?: number): string[] {
  return readJournal()
    .filter((e) => pid === undefined || e.pid === pid)
    .map((e) => `${e.kind}:${e.id}`);
}

/** The Firewall of the crash trials: old has 2 drop rules, new has 40. */
export function crashFirewall(netns: string, version: 'old' | 'new'): Firewall {
  const fw = new Firewall({ table: 'nf_crash', family: 'inet', netns }).chain('input', { hook: 'input', priority: 0, policy: 'accept' });
  const n = version === 'old' ? 2 : 40;
  for (let i = 0; i < n; i++) fw.rule('input', { id: `r${i}`, protocol: 'tcp', dport: 7000 + i, action: 'drop' });
  return fw;
}
