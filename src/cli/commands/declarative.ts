/**
 * `netfence plan FILE`, `netfence apply FILE [--confirm SECONDS]`,
 * `netfence destroy FILE`: a declarative file of firewalls, VM firewalls,
 * SmartProxy routes, limits and blocklists (src/declare). The library does
 * the work; this file parses options and renders.
 */
import type { DeclarationDiff, ObjectDiff } from '../../declare/engine.js';
import { applyDeclaration, destroyDeclaration, planDeclaration } from '../../declare/engine.js';
import { loadDeclaration, type LoadedDeclaration } from '../../declare/load.js';
import { OwnershipError } from '../../plan/ownership.js';
import { ApplyError, NetfenceError, ValidationError } from '../../errors.js';
import { NetnsName } from '../../validate.js';
import { activity, EXIT, netnsExists, parseCommand, printError, unknownNetns, wantProgress } from './common.js';
import type { CliCommand } from './types.js';

const common = `  --netns NS     act in network namespace NS (a name under /run/netns)
  --json         print the result as JSON
  --progress     what is being done, on stderr (always on a terminal)`;

const planUsage = `usage: netfence plan FILE [--netns NS] [--json] [--exit-code]

Show what applying FILE (YAML or JSON, see schema/netfence.schema.json) would
change, per declared object: + added, - removed, ~ changed (rules added or
removed in a chain, set elements, a chain's policy, a limit's rate, blocklist
entries). Nothing is changed. With --json, the structured diff (DeclarationDiff).

${common}
  --exit-code    exit 4 when there are changes (for scripts and CI)

Exit code: 0 no changes (also with changes, unless --exit-code), 4 changes
pending (with --exit-code), 1 the kernel could not be read, 2 invalid file or options.`;

const applyUsage = `usage: netfence apply FILE [--netns NS] [--confirm SECONDS] [--json]

Apply FILE as ONE transaction: every declared object that differs from the
kernel is (re)built, objects the file declared before and no longer does are
removed, and a failure anywhere restores everything as it was.

${common}
  --confirm SECONDS   revert by itself unless \`netfence confirm\` runs within
                      SECONDS (the revert is armed in a detached watchdog
                      process, so it happens even after this command exits;
                      nothing is applied if it cannot be armed)

Exit code: 0 applied (or nothing to change), 1 the transaction failed (the
previous state was restored unless the message says otherwise), 2 invalid file
or options.`;

const destroyUsage = `usage: netfence destroy FILE [--netns NS] [--json]

Remove exactly what FILE declares (tables its owner owns, the limits and
blocklists it applied), in one transaction. Objects that are absent are
skipped; anything not owned by the file is never touched.

${common}

Exit code: 0 removed (or nothing there), 1 failed on the host (nothing was
removed), 2 invalid file or options.`;

function load(name: string, file: string, netns: string | undefined): LoadedDeclaration | number {
  if (netns !== undefined && !NetnsName.safeParse(netns).success) {
    console.error(`netfence ${name}: --netns ${JSON.stringify(netns)} is not a namespace name (letters, digits, _ . -)`);
    return EXIT.usage;
  }
  if (netns !== undefined && netnsExists(netns) === false) return unknownNetns(name, netns);
  const l = loadDeclaration(file);
  if (l.err) {
    printIssues(name, l.val);
    return EXIT.usage;
  }
  return l.val;
}

/** One short paragraph per problem: where in the file, what is wrong. */
function printIssues(name: string, e: ValidationError): void {
  const [head] = e.message.split('\n');
  console.error(`netfence ${name}: ${head}`);
  for (const i of e.issues.slice(0, 20)) console.error(`  ${i.path}: ${i.message}`);
  if (e.issues.length > 20) console.error(`  ... and ${e.issues.length - 20} more`);
  if (e.issues.some((i) => i.path === '(file)')) console.error('Check the path and that it is readable.');
  else console.error('Fix the file (schema/netfence.schema.json describes it) and run the command again.');
}

function failed(name: string, e: NetfenceError): number {
  if (e instanceof ValidationError) {
    printIssues(name, e);
    return EXIT.usage;
  }
  const restored = e instanceof ApplyError ? (e.restored ? ' The previous state was restored.' : ' RESTORE INCOMPLETE: check `netfence status` and run `netfence reconcile`.') : '';
  printError(name, e, `${restored ? `${restored.trim()} ` : ''}${e.hint ?? (e instanceof OwnershipError ? 'A declared table exists and is not this file\'s: rename it in the file or set "owner" to its owner.' : 'Fix the cause named above and run the command again.')}`);
  return EXIT.failed;
}

const SIGN: Record<ObjectDiff['action'], string> = { add: '+', remove: '-', change: '~', none: '=' };

/** The diff for people: one block per object. */
export function renderDiff(d: DeclarationDiff): string {
  const lines: string[] = [`netfence plan: ${d.source} (owner ${d.owner}${d.netns ? `, netns ${d.netns}` : ''})`, ''];
  for (const o of d.objects) {
    lines.push(`${SIGN[o.action]} ${o.key}${o.action === 'none' ? ' (no changes)' : o.action === 'add' ? ' (new)' : o.action === 'remove' ? ' (removed)' : ''}`);
    if (o.action === 'none') continue;
    for (const t of o.tables ?? []) {
      const c = t.changes;
      if ((o.tables?.length ?? 0) > 1) lines.push(`    table ${t.table}${t.exists ? '' : ' (new)'}`);
      for (const n of c.chainsAdded) lines.push(`    + chain ${n}`);
      for (const n of c.chainsRemoved) lines.push(`    - chain ${n}`);
      for (const n of c.chainsChanged) lines.push(`    ~ chain ${n.chain}: ${n.from} -> ${n.to}`);
      for (const r of c.rulesAdded) lines.push(`    + rule ${r.chain}/${r.id}: ${r.text}`);
      for (const r of c.rulesRemoved) lines.push(`    - rule ${r.chain}/${r.id}: ${r.text}`);
      for (const r of c.rulesChanged) lines.push(`    ~ rule ${r.chain}/${r.id}:`, `        - ${r.from}`, `        + ${r.to}`);
      for (const n of c.rulesReordered) lines.push(`    ~ chain ${n}: rules reordered`);
      for (const n of c.objectsAdded) lines.push(`    + ${n}`);
      for (const n of c.objectsRemoved) lines.push(`    - ${n}`);
      for (const n of c.objectsChanged) lines.push(`    ~ ${n.object}: ${n.from} -> ${n.to}`);
      for (const e of c.elementsAdded) lines.push(`    + ${e.object} elements: ${e.elements.join(', ')}`);
      for (const e of c.elementsRemoved) lines.push(`    - ${e.object} elements: ${e.elements.join(', ')}`);
    }
    for (const l of o.details) lines.push(`    ${l}`);
    if (o.entries?.added.length) lines.push(`    + entries: ${o.entries.added.join(', ')}`);
    if (o.entries?.removed.length) lines.push(`    - entries: ${o.entries.removed.join(', ')}`);
  }
  const n = (a: ObjectDiff['action']) => d.objects.filter((o) => o.action === a).length;
  lines.push('', d.changes === 0 ? 'No changes: the kernel matches the file.' : `Plan: ${n('add')} to add, ${n('change')} to change, ${n('remove')} to remove.`);
  return lines.join('\n');
}

const planCommand: CliCommand = {
  path: ['plan'],
  summary: 'show what applying a declarative file would change (added, removed, changed, per object)',
  usage: planUsage,
  async run(args) {
    const p = parseCommand('plan', planUsage, args, { netns: { type: 'string' }, json: { type: 'boolean' }, 'exit-code': { type: 'boolean' }, progress: { type: 'boolean' } }, { min: 1, max: 1 });
    if (typeof p === 'number') return p;
    const l = load('plan', p.positionals[0] as string, p.values.netns);
    if (typeof l === 'number') return l;
    const act = activity('netfence plan', { enabled: wantProgress(p.values.progress) });
    const r = await planDeclaration(l, { netns: p.values.netns, onProgress: (w) => act.note(w) });
    act.done(r.ok ? `${r.val.changes} change(s)` : 'failed');
    if (r.err) return failed('plan', r.val);
    console.log(p.values.json ? JSON.stringify(r.val, null, 2) : renderDiff(r.val));
    return p.values['exit-code'] && r.val.changes > 0 ? 4 : EXIT.ok;
  },
};

const applyCommand: CliCommand = {
  path: ['apply'],
  summary: 'apply a declarative file as one transaction (--confirm SECONDS: revert unless confirmed)',
  usage: applyUsage,
  async run(args) {
    const p = parseCommand('apply', applyUsage, args, { netns: { type: 'string' }, json: { type: 'boolean' }, confirm: { type: 'string' }, progress: { type: 'boolean' } }, { min: 1, max: 1 });
    if (typeof p === 'number') return p;
    let confirmWithinMs: number | undefined;
    if (p.values.confirm !== undefined) {
      const s = Number(p.values.confirm);
      if (!/^\d+(\.\d+)?$/.test(p.values.confirm) || !(s > 0) || s > 86_400) {
        console.error(`netfence apply: --confirm takes a number of seconds > 0 (at most 86400), not ${JSON.stringify(p.values.confirm)}\n\n${applyUsage}`);
        return EXIT.usage;
      }
      confirmWithinMs = Math.round(s * 1000);
    }
    const l = load('apply', p.positionals[0] as string, p.values.netns);
    if (typeof l === 'number') return l;
    // --confirm: the revert is armed in a detached watchdog (this process exits); refused if it cannot be
    const act = activity('netfence apply', { enabled: wantProgress(p.values.progress) });
    const r = await applyDeclaration(l, { netns: p.values.netns, confirmWithinMs, apply: confirmWithinMs !== undefined ? { watchdog: true } : undefined, onProgress: (w) => act.note(w) });
    act.done(r.ok ? (r.val.plan ? 'applied' : 'nothing to change') : 'failed');
    if (r.err) return failed('apply', r.val);
    const { diff, plan, applied } = r.val;
    const confirmInfo = applied && confirmWithinMs !== undefined ? { id: applied.id, deadline: applied.confirmDeadline?.toISOString(), watchdogPid: applied.watchdogPid } : undefined;
    if (p.values.json) console.log(JSON.stringify({ applied: plan !== undefined, confirm: confirmInfo, diff }, null, 2));
    else {
      console.log(renderDiff(diff));
      if (plan) {
        console.log(`\nApplied in one transaction (${plan.nft.length} nft command(s), ${plan.steps.length} step(s)).`);
        if (confirmInfo) console.log(`Reverts at ${confirmInfo.deadline ?? `+${confirmWithinMs! / 1000} s`} (watchdog pid ${confirmInfo.watchdogPid ?? '?'}) unless you run: netfence confirm ${confirmInfo.id ?? ''}`.trimEnd());
      }
    }
    return EXIT.ok;
  },
};

const destroyCommand: CliCommand = {
  path: ['destroy'],
  summary: 'remove exactly what a declarative file declares, in one transaction',
  usage: destroyUsage,
  async run(args) {
    const p = parseCommand('destroy', destroyUsage, args, { netns: { type: 'string' }, json: { type: 'boolean' }, progress: { type: 'boolean' } }, { min: 1, max: 1 });
    if (typeof p === 'number') return p;
    const l = load('destroy', p.positionals[0] as string, p.values.netns);
    if (typeof l === 'number') return l;
    const act = activity('netfence destroy', { enabled: wantProgress(p.values.progress) });
    const r = await destroyDeclaration(l, { netns: p.values.netns, onProgress: (w) => act.note(w) });
    act.done(r.ok ? 'done' : 'failed');
    if (r.err) return failed('destroy', r.val);
    if (p.values.json) console.log(JSON.stringify(r.val.objects, null, 2));
    else {
      for (const o of r.val.objects) console.log(`${o.action === 'remove' ? '-' : '='} ${o.key}${o.action === 'none' ? ' (not there)' : ' removed'}`);
      if (r.val.objects.length === 0) console.log('The file declares nothing.');
    }
    return EXIT.ok;
  },
};

/** `netfence plan`, `netfence apply`, `netfence destroy`. */
export const declarativeCommands: CliCommand[] = [planCommand, applyCommand, destroyCommand];
