/**
 * The backend registry: every backend with its priority; availability and the
 * choice for a request are computed from the capability report.
 * @module
 */
import { UnsupportedError } from '../../errors.js';
import { Err, Ok, type Result } from '../../result.js';
import type { ThrottleCaps } from '../caps.js';
import type { BackendInfo, BackendName, LimitSpec } from '../types.js';
import { ifbTc } from './ifb-tc.js';
import { nftLimit } from './nft-limit.js';
import { tcHtb } from './tc-htb.js';
import { tcPolice } from './tc-police.js';
import type { ThrottleBackend } from './types.js';

/** All backends, best first. */
export const BACKENDS: readonly ThrottleBackend[] = [tcHtb, ifbTc, nftLimit, tcPolice].sort((a, b) => b.priority - a.priority);

/** A backend by name. */
export function backendByName(name: BackendName): ThrottleBackend {
  return BACKENDS.find((b) => b.name === name)!;
}

/** The note shown with the table: what per-process download can and cannot do. */
export const PER_PROCESS_NOTE =
  'per-process DOWNLOAD cannot be shaped with tc: received packets pass tc/IFB before netfilter and the socket lookup, so neither ' +
  "nft's socket cgroupv2 match nor a conntrack mark can classify them there. netfence polices per-process download with nft-limit " +
  'in the input hook (socket cgroupv2 finds the receiving socket); per-process upload is shaped (tc-htb via an nft fwmark) or policed.';

/** The backend table for this host. */
export function listBackends(caps: ThrottleCaps): BackendInfo[] {
  return BACKENDS.map((b) => {
    const a = b.availability(caps);
    return {
      name: b.name,
      priority: b.priority,
      directions: [...b.directions],
      kind: b.kind,
      available: a.available,
      reason: a.reason,
      matches: b.matches,
      limitations: [...b.limitations],
    };
  });
}

/** The chosen backend and why. */
export interface Selection {
  backend: ThrottleBackend;
  reason: string;
}

/** Pick the backend for `spec`: the named one if given (if it can serve), else the best available that can. */
export function selectBackend(spec: LimitSpec, caps: ThrottleCaps): Result<Selection, UnsupportedError> {
  if (spec.backend) {
    const b = backendByName(spec.backend);
    const a = b.availability(caps);
    if (!a.available)
      return Err(new UnsupportedError(`throttle.${b.name}`, `backend ${b.name} is not available on this host: ${a.reason}`, { hint: 'omit `backend` to let netfence choose, or see `netfence throttle backends`' }));
    const why = b.refuses(spec, caps);
    if (why) return Err(new UnsupportedError(`throttle.${b.name}`, `backend ${b.name} cannot serve this limit: ${why}`, { hint: 'omit `backend` to let netfence choose' }));
    return Ok({ backend: b, reason: 'requested by the caller' });
  }
  const refusals: string[] = [];
  for (const b of BACKENDS) {
    const a = b.availability(caps);
    if (!a.available) {
      refusals.push(`${b.name}: unavailable (${a.reason})`);
      continue;
    }
    const why = b.refuses(spec, caps);
    if (why) {
      refusals.push(`${b.name}: ${why}`);
      continue;
    }
    const skipped = refusals.length ? `; skipped ${refusals.join('; ')}` : '';
    return Ok({ backend: b, reason: `best available backend (priority ${b.priority}) for ${spec.direction}${skipped}` });
  }
  return Err(new UnsupportedError('throttle', `no backend can serve this ${spec.direction} limit:\n  ${refusals.join('\n  ')}`, { hint: 'see `netfence throttle backends`' }));
}
