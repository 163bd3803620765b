/**
 * Reading a capability report: flatten it into rows, look one capability up
 * by its dotted key, and render a table for humans.
 * @module
 */
import { UnsupportedError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import type { CapabilityEntry, CapabilityReport } from './schema.js';

/** One capability of a report, flattened. */
export interface CapabilityRow {
  /** Dotted key, e.g. `nft.features.queue`, `tc.actions.police`, `xdp.generic`. */
  key: string;
  available: boolean;
  reason?: string | undefined;
  detail?: Record<string, unknown> | undefined;
}

const SECTIONS = ['privileges', 'probeNamespace', 'nft', 'tc', 'xdp', 'cgroup', 'iptables'] as const;

function isEntry(v: unknown): v is CapabilityEntry {
  return typeof v === 'object' && v !== null && typeof (v as { available?: unknown }).available === 'boolean';
}

/** Every capability of the report as a row, in report order. */
export function capabilityRows(report: CapabilityReport): CapabilityRow[] {
  const rows: CapabilityRow[] = [];
  const walk = (prefix: string, v: unknown): void => {
    if (isEntry(v)) {
      rows.push({ key: prefix, available: v.available, reason: v.reason, detail: v.detail as Record<string, unknown> | undefined });
      return;
    }
    if (typeof v === 'object' && v !== null) for (const [k, child] of Object.entries(v)) walk(`${prefix}.${k}`, child);
  };
  for (const s of SECTIONS) walk(s, report[s]);
  return rows;
}

/**
 * Look a capability up by its dotted key. Ok with the entry when available;
 * Err with an {@link UnsupportedError} carrying the report's reason otherwise
 * (also for an unknown key).
 */
export function checkCapability(report: CapabilityReport, key: string): Result<CapabilityEntry, UnsupportedError> {
  const row = capabilityRows(report).find((r) => r.key === key);
  if (!row) return Err(new UnsupportedError(key, `unknown capability "${key}"`));
  if (!row.available) return Err(new UnsupportedError(key, `${key} is not available on this host: ${row.reason ?? 'no reason given'}`));
  return Ok({ available: true, ...(row.reason ? { reason: row.reason } : {}), ...(row.detail ? { detail: row.detail } : {}) });
}

/** A short note for an available entry, from its detail. */
function note(row: CapabilityRow): string {
  const d = row.detail ?? {};
  const parts: string[] = [];
  if (row.key.startsWith('nft.features.')) {
    parts.push(d['json'] ? 'JSON' : d['text'] && !row.reason ? 'text only' : '');
    if (d['verified'] === 'check') parts.push('nft -c only');
  }
  for (const k of ['version', 'iproute2', 'mountPoint', 'layout', 'libbpf', 'iface', 'backend']) {
    const v = d[k];
    if (typeof v === 'string' && v) parts.push(k === 'version' ? `v${v}` : k === 'iface' ? `on ${v}` : v);
  }
  if (row.key === 'xdp.generic' || row.key === 'xdp.native') if (d['throwaway']) parts.push('(throwaway veth)');
  if (row.key === 'iptables.nfqueue') parts.push(`fanout ${d['fanout'] ? 'yes' : 'no'}`, `ipv6 ${d['ipv6'] ? 'yes' : 'no'}`);
  if (row.reason) parts.push(row.reason);
  return parts.filter(Boolean).join(', ');
}

function oneLine(s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Options of {@link explain}. */
export interface ExplainOptions {
  /** Cut notes to this many characters (default 110; 0 = never cut). */
  width?: number;
  /** Only rows that are not available. */
  onlyMissing?: boolean;
}

/** Render the report as a readable table: capability, yes/no, and why (or what was found). */
export function explain(report: CapabilityReport, options: ExplainOptions = {}): string {
  const width = options.width ?? 110;
  const rows = capabilityRows(report).filter((r) => !options.onlyMissing || !r.available);
  const keyW = Math.max(10, ...rows.map((r) => r.key.length));
  const lines: string[] = [];
  const k = report.kernel;
  lines.push(
    `netfence capabilities — kernel ${k.release} (${k.arch}), nft ${report.nft.version ?? 'absent'} (${report.nft.binary.path ?? report.nft.binary.program}), ` +
      `netns ${report.target.netns ?? '(own)'}${report.target.iface ? `, iface ${report.target.iface}` : ''}, detected in ${Math.round(report.durationMs)} ms`,
  );
  lines.push('');
  lines.push(`${'capability'.padEnd(keyW)}  ok   why / what was found`);
  lines.push(`${'-'.repeat(keyW)}  ---  ${'-'.repeat(Math.min(width || 40, 40))}`);
  let section = '';
  for (const r of rows) {
    const s = r.key.split('.')[0] ?? '';
    if (section && s !== section) lines.push('');
    section = s;
    const text = r.available ? note(r) : (r.reason ?? '');
    lines.push(`${r.key.padEnd(keyW)}  ${r.available ? 'yes' : 'NO '}  ${width ? oneLine(text, width) : text.replace(/\s+/g, ' ')}`.trimEnd());
  }
  const total = rows.length;
  const yes = rows.filter((r) => r.available).length;
  lines.push('');
  lines.push(`${yes} of ${total} available`);
  return lines.join('\n');
}
