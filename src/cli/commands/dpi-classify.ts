/**
 * `netfence dpi classify FILE [--json] [--all] [--no-mse] [--no-hostnames] [--no-cache]`:
 * classify the flows of a pcap/pcapng capture offline and print the flow table.
 */
import { classifyPcap, type ClassifiedFlow } from '../../dpi/classify-pcap.js';
import { bittorrentClassifier } from '../../dpi/classifiers/bittorrent.js';
import type { CliCommand } from './types.js';

const USAGE = `usage: netfence dpi classify FILE [--json] [--all] [--no-mse] [--no-hostnames] [--no-cache] [--packets N]

Read a pcap or pcapng capture and classify every TCP/UDP flow with the built-in
BitTorrent classifier. Prints BitTorrent flows (all flows with --all) as a table:
protocol, client, server, verdict, packets, bytes, reason.

  --json            print the whole result as JSON (all flows)
  --all             list benign flows too
  --no-mse          turn off MSE/PE (encrypted handshake) detection (on by default; --mse is accepted)
  --no-hostnames    do not match BitTorrent domains in DNS / TLS SNI / HTTP Host
  --no-cache        disable the peer endpoint cache
  --packets N       payload packets inspected per direction (default 10)

Exit codes: 0 no BitTorrent flow found · 3 BitTorrent flows found (like grep,
for scripts) · 2 bad options or a capture that cannot be read or parsed.
Nothing on the host is read or changed: no root needed.`;

function endpoint(e: { addr: string; port: number }): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

function table(flows: ClassifiedFlow[]): string {
  const rows = flows.map((f, i) => [
    String(i + 1),
    f.transport.toUpperCase(),
    endpoint(f.client),
    endpoint(f.server),
    f.verdict,
    String(f.packets),
    String(f.bytes),
    f.reason + (f.infoHash ? ` [info-hash ${f.infoHash}]` : ''),
  ]);
  const head = ['#', 'PROTO', 'CLIENT', 'SERVER', 'VERDICT', 'PKTS', 'BYTES', 'REASON'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (c === 7 ? 0 : r[c]!.length))));
  const line = (r: string[]) => r.map((v, c) => (c === 7 ? v : c === 5 || c === 6 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** The `dpi classify` subcommand. */
export const dpiClassifyCommand: CliCommand = {
  path: ['dpi', 'classify'],
  summary: 'classify the flows of a pcap/pcapng capture (BitTorrent DPI, offline)',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    let file: string | undefined;
    let json = false;
    let all = false;
    let mse = true;
    let hostnames = true;
    let cache = true;
    let packets = 10;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--json') json = true;
      else if (a === '--all') all = true;
      else if (a === '--mse') mse = true;
      else if (a === '--no-mse') mse = false;
      else if (a === '--no-hostnames') hostnames = false;
      else if (a === '--no-cache') cache = false;
      else if (a === '--packets') {
        const n = Number(args[++i]);
        if (!Number.isInteger(n) || n < 1 || n > 1000) {
          console.error(`netfence dpi classify: --packets needs an integer 1..1000\n\n${USAGE}`);
          return 2;
        }
        packets = n;
      } else if (a.startsWith('-')) {
        console.error(`netfence dpi classify: unknown option ${a}\n\n${USAGE}`);
        return 2;
      } else if (file === undefined) file = a;
      else {
        console.error(`netfence dpi classify: one capture file at a time\n\n${USAGE}`);
        return 2;
      }
    }
    if (!file) {
      console.error(`netfence dpi classify: give the capture FILE to read\n\n${USAGE}`);
      return 2;
    }
    const r = await classifyPcap(file, {
      classifiers: [bittorrentClassifier({ mse, ...(hostnames ? {} : { hostnames: false }) })],
      maxPacketsPerDirection: packets,
      ...(cache ? {} : { peerCache: false }),
    });
    if (r.err) {
      console.error(`netfence dpi classify: ${r.val.message.split('\n')[0]}\nCheck the path and that it is a pcap or pcapng capture (tcpdump -w, Wireshark).`);
      return 2;
    }
    const res = r.val;
    const bt = res.flows.filter((f) => f.verdict === 'bittorrent');
    if (json) {
      console.log(JSON.stringify(res, null, 2));
      return bt.length > 0 ? 3 : 0;
    }
    const shown = all ? res.flows : bt;
    if (shown.length > 0) console.log(table(shown));
    console.log(
      `${res.file}: ${res.format}, link types ${res.linkTypes.join(',')}, ${res.packets} packets (${res.otherPackets} not TCP/UDP), ` +
        `${res.flows.length} flows, ${bt.length} BitTorrent, ${res.elapsedMs.toFixed(0)} ms${res.truncated ? ', file truncated' : ''}`,
    );
    return bt.length > 0 ? 3 : 0;
  },
};
