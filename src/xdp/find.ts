/**
 * Finding an applied blocklist by name (for {@link XdpBlocklist.open}): its
 * pinned maps whose program is attached to an interface of the namespace, or
 * its nft fallback table there (reads only).
 * @module
 */
import { join } from 'node:path';
import { NetfenceError } from '../errors.js';
import { pinnedId } from '../host/bpf.js';
import { listLinks, xdpModeName } from '../host/links.js';
import { nftList } from '../host/nft.js';
import { Err, Ok, type Result } from '../result.js';
import type { XdpMode } from './loader.js';
import { BlocklistMaps } from './maps.js';
import type { XdpBlocklistBackend } from './types.js';

/** Where an applied blocklist is: its backend, interface (undefined: nft did not list it) and XDP mode. */
export interface FoundBlocklist {
  backend: XdpBlocklistBackend;
  iface: string | undefined;
  mode: XdpMode | undefined;
}

/**
 * Find blocklist `name` (pins in `pinDir`, fallback table `nftTable`) in
 * `netns`, on `iface` when given. Err `NOT_ATTACHED` when neither is there.
 */
export async function findBlocklist(name: string, pinDir: string, nftTable: string, options: { netns?: string | undefined; iface?: string | undefined }): Promise<Result<FoundBlocklist, NetfenceError>> {
  let iface = options.iface;
  let backend: XdpBlocklistBackend | undefined;
  let mode: XdpMode | undefined;
  if (BlocklistMaps.exists(pinDir)) {
    let progId: number | undefined;
    try {
      progId = pinnedId(join(pinDir, 'prog'));
    } catch {
      progId = undefined;
    }
    const links = await listLinks({ netns: options.netns, what: `find blocklist ${name}` });
    if (links.err) return links;
    const at = progId === undefined ? undefined : links.val.find((l) => l.xdp?.prog?.id === progId);
    if (at && (iface === undefined || iface === at.ifname)) {
      iface = at.ifname;
      backend = 'xdp';
      const m = xdpModeName(at.xdp?.mode);
      if (m === 'native' || m === 'generic') mode = m;
    }
  }
  if (!backend) {
    const t = await nftList(['chain', 'netdev', nftTable, 'ingress'], { netns: options.netns });
    if (t.ok) {
      const ch = (t.val.nftables ?? []).map((x) => (x as { chain?: { name?: string; dev?: string | string[] } }).chain).find((c) => c?.name === 'ingress');
      // nft lists the chain's device in JSON from 1.0.7 on; older ones leave it out
      const dev = Array.isArray(ch?.dev) ? ch.dev[0] : ch?.dev;
      if (ch && (iface === undefined || dev === undefined || iface === dev)) {
        iface ??= dev;
        backend = 'nft';
      }
    }
  }
  if (!backend || (backend === 'xdp' && iface === undefined)) {
    const where = options.netns ? `network namespace ${options.netns}` : "the machine's own network namespace";
    return Err(new NetfenceError('NOT_ATTACHED', `blocklist ${name} is not attached in ${where}${options.iface ? ` on ${options.iface}` : ''} (no attached program with its pins, no nft table ${nftTable})`, { hint: 'check the name and --netns, or apply the blocklist first' }));
  }
  return Ok({ backend, iface, mode });
}
