/**
 * `netfence xdp add|remove|list|attach|detach`: the entries of an XdpBlocklist
 * that is already attached (by a library user, by `netfence apply` of a
 * declarative file or by `netfence xdp attach`), opened by name with
 * {@link XdpBlocklist.open}. Bulk loads from files are validated line by line
 * before anything is written: one bad line refuses the whole file (exit 2,
 * the line named) and nothing is added.
 */
import { ValidationError, type NetfenceError } from '../../errors.js';
import type { Result } from '../../result.js';
import { defaultName } from '../../xdp/types.js';
import { XdpBlocklist } from '../../xdp/xdp-blocklist.js';
import { EXIT, fail, netnsExists, parseCommand, progress, table, unknownNetns } from './common.js';
import type { CliCommand } from './types.js';
import { gather } from './xdp-lists.js';

const COMMON = `  --name NAME    the blocklist's name (its pins /sys/fs/bpf/netfence/NAME, its nft
                 fallback table netfence_bl_NAME); default \`<netns or host>_<iface>\`
  --iface IF     the interface it is attached to (gives the default name; read
                 from the kernel when --name is given)
  --netns NS     the network namespace of that interface (under /run/netns)`;

const EXITS = `Exit codes: 0 done · 1 failed on the host (not attached there, kernel or tool
refused, list full) · 2 bad arguments or input (a bad line, an unknown --netns)`;

const addUsage = `usage: netfence xdp add (--name NAME | --iface IF) [--netns NS] [--file LIST]... [ADDR...]
                        [--ttl-ms MS] [--json] [--quiet]

Add IPv4/IPv6 addresses and CIDR prefixes to an attached XdpBlocklist (XDP
maps, or the nftables fallback's sets). LIST has one entry per line; blank
lines and everything after # are ignored; \`-\` reads standard input. Every line
is validated first (a prefix with host bits set is refused, naming the network
meant): one bad line refuses the whole input, names its file and line, and
nothing is added. Adding an entry that is listed already refreshes its expiry.

${COMMON}
  --file LIST    read entries from LIST (repeatable; \`-\` = stdin)
  --ttl-ms MS    the entries expire after MS milliseconds
  --json         print the result as JSON on stdout
  --quiet        no progress lines on stderr

Progress goes to stderr: a bar on a terminal, a line every 10% otherwise.
${EXITS}`;

const removeUsage = `usage: netfence xdp remove (--name NAME | --iface IF) [--netns NS] [--file LIST]... [ADDR...]
                           [--json] [--quiet]

Remove exact entries (the same text as added; absent ones are ignored) from an
attached XdpBlocklist. Input is validated like \`xdp add\`: one bad line, nothing
removed.

${COMMON}
  --file LIST    read entries from LIST (repeatable; \`-\` = stdin)
  --json         print the result as JSON on stdout
  --quiet        no progress lines on stderr

${EXITS}`;

const listUsage = `usage: netfence xdp list (--name NAME | --iface IF) [--netns NS] [--json] [--limit N]

Print the live entries of an attached XdpBlocklist (entry, packets dropped
because of it, time left) and its counters (backend, mode, passed, dropped).

${COMMON}
  --json         print { name, netns, iface, backend, stats, entries[] } as JSON
  --limit N      print at most N entries in the table (default all; --json has all)

${EXITS}`;

const attachUsage = `usage: netfence xdp attach --iface IF [--name NAME] [--netns NS] [--backend auto|xdp|nft]
                           [--mode auto|native|generic] [--max-entries N] [--match-destination] [--json]

Attach an (empty, or re-opened) XdpBlocklist to IF, as XdpBlocklist.apply()
does: XDP native then generic, else the nftables fallback (with --backend auto).
It stays attached after the command exits; \`netfence xdp detach\` removes it.

  --iface IF             the interface whose incoming packets are filtered
  --name NAME            the blocklist's name (default \`<netns or host>_<iface>\`)
  --netns NS             the network namespace of IF
  --backend B            auto (default), xdp or nft
  --mode M               XDP mode: auto (default), native or generic
  --max-entries N        capacity of each of the four lists (default 65536)
  --match-destination    also drop packets whose destination is listed
  --json                 print the attach result as JSON

${EXITS}`;

const detachUsage = `usage: netfence xdp detach (--name NAME | --iface IF) [--netns NS] [--keep-maps] [--json]

Detach an XdpBlocklist (the XDP program, or the nftables fallback's table) and,
unless --keep-maps, delete its pinned maps with their entries and counters.

${COMMON}
  --keep-maps    keep the pinned maps (a later attach re-opens the entries)
  --json         print { detached: true, ... } as JSON

${EXITS}`;

const target = {
  name: { type: 'string' },
  iface: { type: 'string' },
  netns: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const load = {
  ...target,
  file: { type: 'string', multiple: true },
  quiet: { type: 'boolean' },
} as const;

export { parseListText, type BadLine } from './xdp-lists.js';

interface Target {
  name?: string | undefined;
  iface?: string | undefined;
  netns?: string | undefined;
}

/** Open the blocklist named by --name/--iface in --netns; prints the error and returns its exit code otherwise. */
async function openTarget(cmd: string, usage: string, v: Target): Promise<XdpBlocklist | number> {
  if (v.name === undefined && v.iface === undefined) {
    console.error(`netfence ${cmd}: give --name NAME or --iface IF to say which blocklist\n\n${usage}`);
    return EXIT.usage;
  }
  if (!netnsExists(v.netns)) return unknownNetns(cmd, v.netns!);
  let name = v.name;
  if (name === undefined) name = defaultName(v.iface!, v.netns);
  let r: Result<XdpBlocklist, NetfenceError>;
  try {
    r = await XdpBlocklist.open(name, { netns: v.netns, iface: v.iface });
  } catch (e) {
    return fail(cmd, e);
  }
  if (r.err) {
    if (r.val.code === 'NOT_ATTACHED') {
      console.error(`netfence ${cmd}: ${r.val.message.split('\n')[0]}.\nCheck --name and --netns (\`netfence status\` lists what is attached), or attach it first (\`netfence xdp attach --iface IF\`).`);
      return EXIT.failed;
    }
    return fail(cmd, r.val);
  }
  return r.val;
}

function where(bl: XdpBlocklist): { name: string; netns: string | null; iface: string | null; backend: string } {
  return { name: bl.name, netns: bl.options.netns ?? null, iface: bl.iface ?? null, backend: bl.backend };
}

function loadCommand(verb: 'add' | 'remove'): CliCommand {
  const cmdName = `xdp ${verb}`;
  const usage = verb === 'add' ? addUsage : removeUsage;
  return {
    path: ['xdp', verb],
    summary: verb === 'add' ? 'add addresses/prefixes (or a file of them) to an attached XdpBlocklist' : 'remove addresses/prefixes from an attached XdpBlocklist',
    usage,
    async run(args) {
      const opts = verb === 'add' ? { ...load, 'ttl-ms': { type: 'string' } } as const : load;
      const p = parseCommand(cmdName, usage, args, opts, {});
      if (typeof p === 'number') return p;
      const v = p.values as { name?: string; iface?: string; netns?: string; json?: boolean; file?: string[]; quiet?: boolean; 'ttl-ms'?: string };
      let ttlMs: number | undefined;
      if (v['ttl-ms'] !== undefined) {
        ttlMs = Number(v['ttl-ms']);
        if (!/^\d+$/.test(v['ttl-ms']) || ttlMs <= 0) {
          console.error(`netfence ${cmdName}: --ttl-ms needs a whole number of milliseconds > 0, got '${v['ttl-ms']}'\n\n${usage}`);
          return EXIT.usage;
        }
      }
      const files = v.file ?? [];
      if (files.length === 0 && p.positionals.length === 0) {
        console.error(`netfence ${cmdName}: nothing to ${verb}: give --file LIST or addresses\n\n${usage}`);
        return EXIT.usage;
      }
      const entries = gather(cmdName, files, p.positionals);
      if (typeof entries === 'number') return entries;
      const bl = await openTarget(cmdName, usage, v);
      if (typeof bl === 'number') return bl;
      try {
        const bar = progress(`${verb === 'add' ? 'adding' : 'removing'} ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (${bl.name}, ${bl.backend})`, entries.length, { enabled: v.quiet !== true });
        bl.on('progress', (e) => bar.update(e.done));
        const t0 = performance.now();
        const r = verb === 'add' ? await bl.add(entries, ttlMs !== undefined ? { ttlMs } : {}) : await bl.remove(entries);
        if (r.err) {
          bar.done('FAILED, nothing changed');
          return fail(cmdName, r.val);
        }
        const n = 'added' in r.val ? r.val.added : (r.val as { removed: number }).removed;
        const ms = performance.now() - t0;
        bar.done(verb === 'add' ? `${n} added` : `${n} removed`);
        if (v.json) console.log(JSON.stringify({ ...where(bl), [verb === 'add' ? 'added' : 'removed']: n, entries: entries.length, files, elapsedMs: Math.round(ms) }, null, 2));
        else console.log(`${verb === 'add' ? 'added' : 'removed'} ${n} of ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} ${verb === 'add' ? 'to' : 'from'} blocklist ${bl.name} (${bl.backend} on ${bl.iface ?? 'its interface'}${bl.options.netns ? ` in netns ${bl.options.netns}` : ''}) in ${(ms / 1000).toFixed(2)} s`);
        return EXIT.ok;
      } finally {
        bl.close();
      }
    },
  };
}

function ago(ms: number | undefined): string {
  if (ms === undefined) return 'never';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

const listCommand: CliCommand = {
  path: ['xdp', 'list'],
  summary: 'list the entries and counters of an attached XdpBlocklist',
  usage: listUsage,
  async run(args) {
    const p = parseCommand('xdp list', listUsage, args, { ...target, limit: { type: 'string' } });
    if (typeof p === 'number') return p;
    const v = p.values as Target & { json?: boolean; limit?: string };
    let limit = Infinity;
    if (v.limit !== undefined) {
      if (!/^\d+$/.test(v.limit)) {
        console.error(`netfence xdp list: --limit needs a whole number, got '${v.limit}'\n\n${listUsage}`);
        return EXIT.usage;
      }
      limit = Number(v.limit);
    }
    const bl = await openTarget('xdp list', listUsage, v);
    if (typeof bl === 'number') return bl;
    try {
      const l = await bl.list();
      if (l.err) return fail('xdp list', l.val);
      const s = await bl.stats();
      if (s.err) return fail('xdp list', s.val);
      const entries = [...l.val].sort((a, b) => b.hits - a.hits || (a.entry < b.entry ? -1 : 1));
      if (v.json) {
        console.log(JSON.stringify({ ...where(bl), stats: s.val, entries }, null, 2));
        return EXIT.ok;
      }
      const st = s.val;
      console.log(`blocklist ${bl.name}: ${st.backend}${st.mode ? ` (${st.mode})` : ''} on ${bl.iface ?? 'its interface'}${bl.options.netns ? ` in netns ${bl.options.netns}` : ''}`);
      console.log(`entries ${st.entries} · dropped ${st.dropped.packets} packets (${st.dropped.bytes} bytes) · passed ${st.passed.packets} packets · expired ${st.expired}`);
      if (entries.length > 0) {
        console.log('');
        const shown = entries.slice(0, limit);
        console.log(table(['ENTRY', 'HITS', 'EXPIRES IN'], shown.map((e) => [e.entry, e.hits, ago(e.expiresInMs)])));
        if (shown.length < entries.length) console.log(`… ${entries.length - shown.length} more (--json lists all)`);
      }
      return EXIT.ok;
    } finally {
      bl.close();
    }
  },
};

const attachCommand: CliCommand = {
  path: ['xdp', 'attach'],
  summary: 'attach an XdpBlocklist to an interface (XDP, else the nftables fallback)',
  usage: attachUsage,
  async run(args) {
    const p = parseCommand('xdp attach', attachUsage, args, {
      ...target,
      backend: { type: 'string' },
      mode: { type: 'string' },
      'max-entries': { type: 'string' },
      'match-destination': { type: 'boolean' },
    });
    if (typeof p === 'number') return p;
    const v = p.values as Target & { json?: boolean; backend?: string; mode?: string; 'max-entries'?: string; 'match-destination'?: boolean };
    if (v.iface === undefined) {
      console.error(`netfence xdp attach: --iface IF is required\n\n${attachUsage}`);
      return EXIT.usage;
    }
    if (!netnsExists(v.netns)) return unknownNetns('xdp attach', v.netns!);
    let bl: XdpBlocklist;
    try {
      bl = new XdpBlocklist({
        iface: v.iface,
        ...(v.name !== undefined ? { name: v.name } : {}),
        ...(v.netns !== undefined ? { netns: v.netns } : {}),
        ...(v.backend !== undefined ? { backend: v.backend as 'auto' } : {}),
        ...(v.mode !== undefined ? { mode: v.mode as 'auto' } : {}),
        ...(v['max-entries'] !== undefined ? { maxEntries: /^\d+$/.test(v['max-entries']) ? Number(v['max-entries']) : (v['max-entries'] as unknown as number) } : {}),
        ...(v['match-destination'] ? { matchDestination: true } : {}),
      });
    } catch (e) {
      if (e instanceof ValidationError) {
        console.error(`netfence xdp attach: ${e.message.split('\n').slice(0, 4).join('; ')}\n\n${attachUsage}`);
        return EXIT.usage;
      }
      return fail('xdp attach', e);
    }
    try {
      const r = await bl.apply();
      if (r.err) return fail('xdp attach', r.val);
      if (v.json) console.log(JSON.stringify({ ...where(bl), ...r.val }, null, 2));
      else console.log(`blocklist ${bl.name} attached to ${bl.options.iface}${bl.options.netns ? ` in netns ${bl.options.netns}` : ''}: ${r.val.backend}${r.val.mode ? ` (${r.val.mode})` : ''} — ${r.val.reason}${r.val.reopened ? ' (re-opened its entries)' : ''}`);
      return EXIT.ok;
    } finally {
      bl.close();
    }
  },
};

const detachCommand: CliCommand = {
  path: ['xdp', 'detach'],
  summary: 'detach an XdpBlocklist (and delete its maps unless --keep-maps)',
  usage: detachUsage,
  async run(args) {
    const p = parseCommand('xdp detach', detachUsage, args, { ...target, 'keep-maps': { type: 'boolean' } });
    if (typeof p === 'number') return p;
    const v = p.values as Target & { json?: boolean; 'keep-maps'?: boolean };
    const bl = await openTarget('xdp detach', detachUsage, v);
    if (typeof bl === 'number') return bl;
    const info = where(bl);
    const r = await bl.destroy({ keepMaps: v['keep-maps'] === true });
    if (r.err) return fail('xdp detach', r.val);
    if (v.json) console.log(JSON.stringify({ ...info, detached: true, keptMaps: v['keep-maps'] === true }, null, 2));
    else console.log(`blocklist ${info.name} detached from ${info.iface ?? 'its interface'}${info.netns ? ` in netns ${info.netns}` : ''} (${info.backend})${v['keep-maps'] ? '; its maps are kept' : ''}`);
    return EXIT.ok;
  },
};

/** The `xdp` subcommands. */
export const xdpCommands: CliCommand[] = [loadCommand('add'), loadCommand('remove'), listCommand, attachCommand, detachCommand];
