/**
 * `netfence capabilities [--json] [--netns NAME] [--iface IF] [--nft PATH] [--missing] [--refresh]`:
 * detect what this host can do and print a table (or the JSON report).
 */
import { parseArgs } from 'node:util';
import { detectCapabilities, explain } from '../../capabilities/index.js';
import { ValidationError } from '../../errors.js';
import { configureHost } from '../../host/run.js';
import type { CliCommand } from './types.js';

const usage = `usage: netfence capabilities [--json] [--netns NAME] [--iface IF] [--nft PATH] [--missing] [--full]

Probe nftables, tc, XDP, cgroups, iptables-nft and privileges, and print what
is available and, for everything that is not, why.

  --json         print the report as JSON (the CapabilityReport type)
  --netns NAME   report on network namespace NAME (under /run/netns)
  --iface IF     probe XDP attach on interface IF (in NAME when --netns is given)
                 instead of a throwaway veth pair; IF must not carry an XDP program
  --nft PATH     probe this nft binary (an absolute path) instead of $NETFENCE_NFT,
                 else \`nft\` from PATH; the report names the binary and its version
  --missing      only list what is not available
  --full         do not shorten the notes

Nothing is changed in the probed namespace: kernel features are checked with
\`nft -c\` there and really tried only in a throwaway namespace that is deleted
afterwards (except the XDP attach probe on --iface, attached and detached at once).
Exit code: 0 on success, 2 on invalid options.`;

export const capabilitiesCommand: CliCommand = {
  path: ['capabilities'],
  summary: 'show what this host supports (nft, tc, XDP, cgroups, iptables) and why not',
  usage,
  async run(args) {
    let values: { json?: boolean; netns?: string; iface?: string; nft?: string; missing?: boolean; full?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          json: { type: 'boolean' },
          netns: { type: 'string' },
          iface: { type: 'string' },
          nft: { type: 'string' },
          missing: { type: 'boolean' },
          full: { type: 'boolean' },
        },
        strict: true,
        allowPositionals: false,
      }));
    } catch (e) {
      console.error(`netfence capabilities: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
      return 2;
    }
    let report;
    try {
      if (values.nft !== undefined) configureHost({ nft: values.nft });
      report = await detectCapabilities({ netns: values.netns, iface: values.iface });
    } catch (e) {
      if (e instanceof ValidationError) {
        console.error(`netfence capabilities: ${e.message}`);
        return 2;
      }
      throw e;
    }
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(explain(report, { width: values.full ? 0 : 110, onlyMissing: values.missing ?? false }));
    return 0;
  },
};
