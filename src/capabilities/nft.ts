/**
 * nftables probes: the nft binary, its version and JSON support, and one
 * probe per kernel feature. Each feature is tried as JSON (what netfence
 * emits) and, when JSON cannot express it with this nft, as text:
 *
 * 1. `nft -c` in the target namespace (nothing is committed there), then
 * 2. a real commit of the same input in a throwaway namespace, listed back
 *    and checked, because `nft -c` can accept what the kernel later refuses or
 *    what nft silently drops (nft 1.0.6 ignores JSON table flags, for one).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { nftProgram, type NftProgram } from '../host/run.js';
import type { NftFeatureEntry, NftFeatureName, CapabilityEntry } from './schema.js';
import { attempt } from './probe-ns.js';
import { parseNftVersion } from './parse.js';
import { parseListingText } from '../nft/listing.js';

import { PROBES, type NftProbe, type NftProbeContext } from './nft-probes.js';

export { NFT_PROBE_KEYS, type NftProbeContext } from './nft-probes.js';


/** Result of `nft --version` and `nft -j list tables`. */
export interface NftBasics {
  binary: NftProgram & { path: string | null };
  present: CapabilityEntry;
  version: string | null;
  json: CapabilityEntry;
}

/** The executable file `program` runs: itself when absolute, else the first match in `PATH`; null when none. */
export function resolveProgram(program: string, path = process.env.PATH ?? ''): string | null {
  const candidates = program.includes('/') ? [program] : path.split(':').filter(Boolean).map((d) => join(d, program));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* not there, or not executable */
    }
  }
  return null;
}

/** Probe the nft binary: which one, present, version, JSON support (a read-only listing in the target namespace). */
export async function probeNftBasics(netns: string | undefined): Promise<NftBasics> {
  const program = nftProgram();
  const binary = { ...program, path: resolveProgram(program.program) };
  const v = await attempt(['nft', '--version'], { timeoutMs: 5_000 });
  if (v.err) {
    const reason = `nft not usable (${binary.path ?? program.program}): ${v.val}`;
    return { binary, present: { available: false, reason }, version: null, json: { available: false, reason } };
  }
  const parsed = parseNftVersion(v.val.stdout);
  const present: CapabilityEntry = { available: true, detail: { path: binary.path ?? program.program, version: parsed?.version ?? null, codename: parsed?.codename ?? null, raw: v.val.stdout.trim() } };
  const j = await attempt(['nft', '-j', 'list', 'tables'], { netns, timeoutMs: 5_000 });
  let json: CapabilityEntry;
  if (j.err) json = { available: false, reason: `nft -j list tables failed: ${j.val}` };
  else {
    const doc = parseListingText(j.val.stdout);
    json = doc.ok ? { available: true } : { available: false, reason: `nft -j printed something that is not a JSON listing (${doc.val.issues[0]?.message ?? doc.val.message}): ${j.val.stdout.slice(0, 80)}` };
  }
  return { binary, present, version: parsed?.version ?? null, json };
}

/** One input form (JSON or text) of one probe, as it goes through the phases. */
interface Form {
  probe: NftProbe;
  kind: 'json' | 'text';
  table: string;
  input: string;
  /** Error of the real commit in the probe namespace, or of its verification. */
  commitError?: string;
  committed?: boolean;
  /** Result of `nft -c` in the target namespace. */
  checkError?: string;
  checked?: boolean;
}

type Run = <T>(task: () => Promise<T>) => Promise<T>;

const flagsOf = (f: Form): string[] => (f.kind === 'json' ? ['-j'] : []);

/** Split a text `nft list ruleset` into tables keyed by `family name`. */
export function splitRuleset(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let key: string | undefined;
  let buf: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^table (\S+) (\S+) \{/.exec(line);
    if (m) {
      key = `${m[1]} ${m[2]}`;
      buf = [line];
      continue;
    }
    if (key === undefined) continue;
    buf.push(line);
    if (line === '}') {
      out.set(key, buf.join('\n'));
      key = undefined;
    }
  }
  return out;
}

/** Commit each form in the probe namespace (one transaction each), then list once and verify. */
async function commitAndVerify(forms: Form[], probeNs: string, run: Run): Promise<void> {
  await Promise.all(
    forms.map(async (f) => {
      const r = await run(() => attempt(['nft', ...flagsOf(f), '-f', '-'], { netns: probeNs, input: f.input, timeoutMs: 10_000 }));
      if (r.err) f.commitError = r.val;
      else f.committed = true;
    }),
  );
  if (!forms.some((f) => f.committed)) return;
  const list = await run(() => attempt(['nft', 'list', 'ruleset'], { netns: probeNs, timeoutMs: 10_000 }));
  const tables = list.ok ? splitRuleset(list.val.stdout) : new Map<string, string>();
  for (const f of forms) {
    if (!f.committed) continue;
    const body = tables.get(`${f.probe.family} ${f.table}`);
    if (f.probe.verify === 'absent') {
      if (body !== undefined) {
        f.committed = false;
        f.commitError = f.probe.key === 'tableOwner' ? 'committed, but the table outlived the nft process: the owner flag was silently dropped' : 'committed, but the table is still there';
      }
      continue;
    }
    if (body === undefined) {
      f.committed = false;
      f.commitError = `committed, but the table could not be listed back${list.err ? `: ${list.val}` : ''}`;
      continue;
    }
    const missing = f.probe.verify.filter((re) => !re.test(body));
    if (missing.length) {
      f.committed = false;
      f.commitError = `committed without error, but the listing lacks ${missing.map((r) => `/${r.source}/`).join(', ')}: nft silently dropped part of the input`;
    }
  }
}

/** `nft -c` of several forms of one kind at once in the target; on failure, one by one to attribute it. */
async function checkForms(forms: Form[], target: string | undefined, run: Run): Promise<void> {
  if (forms.length === 0) return;
  const kind = forms[0]?.kind;
  if (forms.length > 1) {
    const input = kind === 'json' ? JSON.stringify({ nftables: forms.flatMap((f) => (JSON.parse(f.input) as { nftables: unknown[] }).nftables) }) : forms.map((f) => f.input).join('\n');
    const all = await run(() => attempt(['nft', '-c', ...flagsOf(forms[0] as Form), '-f', '-'], { netns: target, input, timeoutMs: 10_000 }));
    if (all.ok) {
      for (const f of forms) f.checked = true;
      return;
    }
  }
  await Promise.all(
    forms.map(async (f) => {
      const r = await run(() => attempt(['nft', '-c', ...flagsOf(f), '-f', '-'], { netns: target, input: f.input, timeoutMs: 10_000 }));
      if (r.err) f.checkError = r.val;
      else f.checked = true;
    }),
  );
}

/** Add what a failure means to nft's own message. */
function explainFailure(p: NftProbe, error: string): string {
  // ENOENT: no such expression; EPROTO: no conntrack for the family (bridge without nf_conntrack_bridge).
  if (/Could not process rule: (No such file or directory|Protocol error)/.test(error) && p.kernel) return `the kernel lacks ${p.kernel}: ${error}`;
  if (/syntax error|Unknown object|Invalid|unexpected/i.test(error) && p.nftHint) return `${p.nftHint}: ${error}`;
  return error;
}

function makeForm(p: NftProbe, kind: 'json' | 'text', ctx: NftProbeContext): Form {
  const table = `nfcap_${p.key.toLowerCase().slice(0, 16)}_${randomBytes(3).toString('hex')}_${kind[0]}`;
  const input = kind === 'json' ? JSON.stringify({ nftables: (p.json as NonNullable<NftProbe['json']>)(table, ctx) }) : `${p.text(table, ctx)}\n`;
  return { probe: p, kind, table, input };
}

function verdict(p: NftProbe, ctx: NftProbeContext, json: Form | undefined, text: Form | undefined, verified: 'commit' | 'check'): NftFeatureEntry {
  const probe = p.text('T', ctx).replace(/\s*\n\s*/g, ' ');
  const ok = (f: Form | undefined): boolean => !!f && f.checked === true && (verified === 'check' || f.committed === true);
  const err = (f: Form | undefined): string | undefined => (f ? (f.checkError ?? f.commitError) : undefined);
  const fp = [json, text]
    .filter((f): f is Form => !!f && f.checked === true && f.commitError !== undefined)
    .map((f) => `${f.kind}: nft -c accepted it, but the real commit showed: ${f.commitError}`);
  const falsePositive = fp.length ? { checkFalsePositive: fp.join('; ') } : {};
  if (ok(json)) return { available: true, detail: { json: true, verified, probe, ...falsePositive } };
  const jsonError = p.json ? (err(json) ?? 'not tried') : 'no JSON form';
  const detail = { json: false, jsonError, text: ok(text), verified, probe, ...falsePositive };
  if (ok(text)) return { available: true, reason: `only as nft text: this nft's JSON refused it (${jsonError})`, detail };
  return { available: false, reason: explainFailure(p, err(text) ?? jsonError), detail };
}

/** Probe every nftables feature; `probeNs` is the throwaway namespace for real commits (undefined: `nft -c` only). */
export async function probeNftFeatures(
  basics: NftBasics,
  ctx: NftProbeContext,
  target: string | undefined,
  probeNs: string | undefined,
  run: Run,
): Promise<Record<NftFeatureName, NftFeatureEntry>> {
  const out = {} as Record<NftFeatureName, NftFeatureEntry>;
  if (!basics.present.available) {
    for (const p of PROBES) out[p.key] = { available: false, reason: basics.present.reason ?? 'nft not installed', detail: { json: false, verified: 'check', probe: p.text('T', ctx).replace(/\s*\n\s*/g, ' ') } };
    return out;
  }
  const jsonForms = new Map<NftFeatureName, Form>();
  const textForms = new Map<NftFeatureName, Form>();
  for (const p of PROBES) if (p.json) jsonForms.set(p.key, makeForm(p, 'json', ctx));
  const good = (f: Form | undefined): boolean => !!f && (probeNs ? f.committed === true : f.checked === true);

  if (probeNs) {
    // 1. Real commits in the throwaway namespace, one transaction per probe, listed back once.
    await commitAndVerify([...jsonForms.values()], probeNs, run);
    // 2. Text for what JSON could not do.
    for (const p of PROBES) if (!good(jsonForms.get(p.key))) textForms.set(p.key, makeForm(p, 'text', ctx));
    await commitAndVerify([...textForms.values()], probeNs, run);
    // 3. `nft -c` in the target namespace: what worked, in one batch per syntax; what failed, one by one
    //    (to record whether nft -c would have told the truth).
    const all = [...jsonForms.values(), ...textForms.values()];
    await Promise.all([
      checkForms(all.filter((f) => f.committed && f.kind === 'json'), target, run),
      checkForms(all.filter((f) => f.committed && f.kind === 'text'), target, run),
      ...all.filter((f) => !f.committed).map((f) => checkForms([f], target, run)),
    ]);
  } else {
    await Promise.all([...jsonForms.values()].map((f) => checkForms([f], target, run)));
    for (const p of PROBES) if (!good(jsonForms.get(p.key))) textForms.set(p.key, makeForm(p, 'text', ctx));
    await Promise.all([...textForms.values()].map((f) => checkForms([f], target, run)));
  }
  for (const p of PROBES) out[p.key] = verdict(p, ctx, jsonForms.get(p.key), textForms.get(p.key), probeNs ? 'commit' : 'check');
  if (!out.socketCgroupv2.available && ctx.cgroupPath === undefined) {
    out.socketCgroupv2 = { ...out.socketCgroupv2, reason: `cgroup v2 is not mounted under /sys/fs/cgroup, where nft resolves cgroup paths; ${out.socketCgroupv2.reason ?? ''}`.trim() };
  }
  return out;
}
