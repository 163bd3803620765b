/**
 * Local Service Discovery (BEP 14): `BT-SEARCH * HTTP/1.1` datagrams to
 * 239.192.152.143:6771 or [ff15::efc0:988f]:6771 with `Infohash:` headers.
 * @module
 */
import type { Verdict } from '../../types.js';
import { hasAscii, latin1 } from './bytes.js';

/** Match an LSD announce. */
export function matchLsd(b: Uint8Array): Verdict | undefined {
  if (b.length < 24 || !hasAscii(b, 0, 'BT-SEARCH * HTTP/1.')) return undefined;
  const text = latin1(b, 0, Math.min(b.length, 2048));
  const ih = /\r?\nInfohash:\s*([0-9A-Fa-f]{40})\b/i.exec(text);
  const host = /\r?\nHost:\s*(239\.192\.152\.143|\[?ff15::efc0:988f\]?)(:\d+)?/i.exec(text);
  if (!ih && !host) return undefined;
  const v: Verdict = { verdict: 'bittorrent', reason: 'Local Service Discovery (BT-SEARCH announce)', detection: 'lsd' };
  if (ih) v.infoHash = ih[1]!.toLowerCase();
  return v;
}
