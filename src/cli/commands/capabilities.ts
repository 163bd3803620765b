/**
 * `netfence capabilities [--json] [--netns NAME] [--iface IF] [--nft PATH] [--missing] [--full] [--progress]`:
 * detect what this host can do and print a table (or the JSON report).
 */
import { detectCapabilities, explain } from '../../capabilities/index.js';
import { configureHost } from '../../host/run.js';
import { activity, EXIT, fail, netnsExists, parseCommand, unknownNetns, wantProgress } from './common.js';
import type { CliCommand } from './types.js';

const usage = `usage: netfence capabilities [--json] [--netns NAME] [--iface IF] [--nft PATH] [--missing] [--full] [--progress]

Probe nftables, tc, XDP, cgroups, iptables-nft and privileges, and print what
is available and, for everything that is not, why.

  --json         print the report as JSON (the CapabilityReport type) on stdout
  --netns NAME   report on network namespace NAME (under /run/netns)
  --iface IF     probe XDP attach on interface IF (in NAME when --netns is given)
                 instead of a throwaway veth pair; IF must not carry an XDP program
  --nft PATH     probe this nft binary (an absolute path) instead of $NETFENCE_NFT,
                 else \`nft\` from PATH; the report names the binary and its version
  --missing      only list what is not available
  --full         do not shorten the notes
  --progress     report the probing on stderr even when it is not a terminal
                 (on a terminal it always is; never on stdout)

Nothing is changed in the probed namespace: kernel features are checked with
\`nft -c\` there and really tried only in a throwaway namespace that is deleted
afterwards (except the XDP attach probe on --iface, attached and detached at once).
Run as root: without privileges most probes report "not permitted".

Exit codes: 0 report printed (also when features are missing) · 1 detection
failed on the host · 2 bad options (an unknown --netns, an invalid name).`;

export const capabilitiesCommand: CliCommand = {
  path: ['capabilities'],
  summary: 'show what this host supports (nft, tc, XDP, cgroups, iptables) and why not',
  usage,
  async run(args) {
    const p = parseCommand('capabilities', usage, args, {
      json: { type: 'boolean' },
      netns: { type: 'string' },
      iface: { type: 'string' },
      nft: { type: 'string' },
      missing: { type: 'boolean' },
      full: { type: 'boolean' },
      progress: { type: 'boolean' },
    });
    if (typeof p === 'number') return p;
    const values = p.values as { json?: boolean; netns?: string; iface?: string; nft?: string; missing?: boolean; full?: boolean; progress?: boolean };
    if (!netnsExists(values.netns)) return unknownNetns('capabilities', values.netns!);
    const act = activity('probing nftables, tc, XDP, cgroups, iptables-nft', { enabled: wantProgress(values.progress) });
    let report;
    try {
      if (values.nft !== undefined) configureHost({ nft: values.nft });
      report = await detectCapabilities({ netns: values.netns, iface: values.iface });
    } catch (e) {
      act.done('FAILED');
      return fail('capabilities', e);
    }
    act.done('report ready');
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(explain(report, { width: values.full ? 0 : 110, onlyMissing: values.missing ?? false }));
    return EXIT.ok;
  },
};
