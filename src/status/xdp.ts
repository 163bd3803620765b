/**
 * The XdpBlocklist part of {@link readStatus}: XDP programs attached in the
 * namespace (`ip -j link`), netfence's pinned blocklists under
 * `/sys/fs/bpf/netfence/<name>/` (entries counted with batched map lookups,
 * counters from the per-CPU stats map), and nft-fallback tables.
 * @module
 */
import { join } from 'node:path';
import { pinnedId } from '../host/bpf.js';
import { hostFiles } from '../host/files.js';
import { xdpModeName, type Link } from '../host/links.js';
import { PIN_ROOT } from '../xdp/loader.js';
import { BlocklistMaps, bootNowNs } from '../xdp/maps.js';
import type { TableStatus, XdpBlocklistStatus, XdpProgramStatus } from './types.js';

const ZERO = () => ({ packets: 0, bytes: 0 });

/** XDP programs attached to `links` (pure). */
export function xdpProgramsOf(links: readonly Link[]): XdpProgramStatus[] {
  const out: XdpProgramStatus[] = [];
  for (const l of links) {
    const p = l.xdp?.prog;
    if (!p) continue;
    out.push({ interface: l.ifname, mode: xdpModeName(l.xdp?.mode), programId: p.id, programName: p.name ?? '' });
  }
  return out;
}

/** Blocklists of the nft fallback, from the owned `xdp-blocklist:` tables (pure). */
export function nftBlocklistsOf(tables: readonly TableStatus[]): XdpBlocklistStatus[] {
  return tables
    .filter((t) => t.kind === 'xdp-blocklist')
    .map((t) => {
      const c = (n: string) => {
        const x = t.counters.find((k) => k.source === 'named' && k.name === n);
        return x ? { packets: x.packets, bytes: x.bytes } : ZERO();
      };
      const counted = t.sets.filter((s) => s.elements !== undefined);
      return {
        name: t.owner.slice('xdp-blocklist:'.length) || t.name,
        backend: 'nft' as const,
        interfaces: [...new Set(t.chains.map((ch) => ch.device).filter((d): d is string => d !== undefined))],
        entries: counted.length === t.sets.length ? counted.reduce((a, s) => a + (s.elements ?? 0), 0) : undefined,
        passed: c('passed'),
        dropped: c('dropped'),
        countMethod: t.sets[0]?.countMethod,
      };
    });
}

/**
 * Pinned blocklists (machine-wide, under bpffs) with their live entries and
 * counters; `programs` are marked with the blocklist whose pinned program
 * they run, and a blocklist lists the interfaces of this namespace running it.
 * Pins are machine-wide: with `onlyAttached` (reading another namespace), only
 * blocklists whose program runs on an interface of the namespace are reported.
 */
export function readPinnedBlocklists(programs: XdpProgramStatus[], warnings: string[], onlyAttached = false): XdpBlocklistStatus[] {
  const files = hostFiles();
  if (!files.isDirectory(PIN_ROOT)) return [];
  const out: XdpBlocklistStatus[] = [];
  let names: string[];
  try {
    names = files.readdir(PIN_ROOT).sort();
  } catch (e) {
    warnings.push(`${PIN_ROOT}: ${(e as Error).message}`);
    return [];
  }
  for (const name of names) {
    const pinDir = join(PIN_ROOT, name);
    if (!BlocklistMaps.exists(pinDir)) continue;
    const ids = new Set(['prog', 'prog_next', 'prog_prev'].map((p) => pinnedId(join(pinDir, p))).filter((x): x is number => x !== undefined));
    const running = programs.filter((p) => ids.has(p.programId));
    for (const p of running) p.blocklist = name;
    if (onlyAttached && running.length === 0) continue;
    const b: XdpBlocklistStatus = { name, backend: 'xdp', pinDir, interfaces: running.map((p) => p.interface), entries: undefined, passed: ZERO(), dropped: ZERO(), countMethod: undefined };
    let maps: BlocklistMaps | undefined;
    try {
      maps = BlocklistMaps.open(pinDir);
      const c = maps.counters();
      b.passed = { packets: Number(c.pass.packets), bytes: Number(c.pass.bytes) };
      b.dropped = { packets: Number(c.drop.packets), bytes: Number(c.drop.bytes) };
      b.expired = Number(c.expired.packets);
      b.entries = maps.liveEntryCount(maps.activeSide(), bootNowNs());
      b.countMethod = 'map-batch';
    } catch (e) {
      b.error = (e as Error).message;
      warnings.push(`XDP blocklist ${name}: ${b.error}`);
    } finally {
      maps?.close();
    }
    out.push(b);
  }
  return out;
}
