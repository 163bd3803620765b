/**
 * HTB pieces shared by tc-htb (egress on the interface) and ifb-tc (egress of the
 * IFB device that ingress traffic is redirected to).
 * @module
 */
import type { Step } from '../../plan/types.js';
import { htbQuantum, leafQueueBytes } from '../rate.js';
import { exec, type LimitCtx } from './types.js';

/** The root HTB qdisc on `dev`: unclassified traffic (default 0) is sent directly, unlimited. */
export function htbRootStep(dev: string): Step {
  return {
    id: `tc:qdisc:${dev}:root`,
    description: `HTB root qdisc on ${dev} (unmatched traffic unlimited)`,
    do: [exec(['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '0'])],
    undo: [exec(['tc', 'qdisc', 'del', 'dev', dev, 'root'], true)],
  };
}

/** Handle of the leaf qdisc of class `1:xx`: `xx:`. */
function leafHandle(classid: string): string {
  return `${classid.split(':')[1]}:`;
}

function leafArgs(rateBps: number, direction: 'egress' | 'ingress'): string[] {
  return ['bfifo', 'limit', String(leafQueueBytes(rateBps, direction))];
}

function classArgs(rateBps: number, burst: number): string[] {
  const r = `${rateBps}bit`;
  const b = `${burst}b`;
  return ['htb', 'rate', r, 'ceil', r, 'burst', b, 'cburst', b, 'quantum', String(htbQuantum(rateBps))];
}

/** One HTB class (with a bfifo leaf queue sized from the rate) plus the u32 filters steering the limit's traffic into it. */
export function htbLimitSteps(dev: string, ctx: LimitCtx, direction: 'egress' | 'ingress' = 'egress'): Step[] {
  const steps: Step[] = [
    {
      id: `tc:class:${dev}:${ctx.classid}`,
      description: `HTB class ${ctx.classid} on ${dev} at ${ctx.rateBps} bit/s, burst ${ctx.burst} B`,
      do: [
        exec(['tc', 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', ctx.classid, ...classArgs(ctx.rateBps!, ctx.burst!)]),
        exec(['tc', 'qdisc', 'add', 'dev', dev, 'parent', ctx.classid, 'handle', leafHandle(ctx.classid), ...leafArgs(ctx.rateBps!, direction)]),
      ],
      undo: [exec(['tc', 'class', 'del', 'dev', dev, 'classid', ctx.classid], true)],
    },
  ];
  for (const f of ctx.filters) {
    steps.push({
      id: `tc:filter:${dev}:1:${f.prio}`,
      description: `${f.kind} filter prio ${f.prio} on ${dev} → ${ctx.classid}`,
      do: [exec(['tc', 'filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', f.protocol, 'prio', String(f.prio), f.kind, ...f.keys, 'flowid', ctx.classid])],
      undo: [exec(['tc', 'filter', 'del', 'dev', dev, 'parent', '1:', 'protocol', f.protocol, 'prio', String(f.prio)], true)],
    });
  }
  return steps;
}

/** `tc class change`: the new rate applies to queued and future packets; connections are untouched. */
export function htbUpdateSteps(dev: string, ctx: LimitCtx, old: { rateBps: number; burst: number }, direction: 'egress' | 'ingress' = 'egress'): Step[] {
  return [
    {
      id: `tc:class:${dev}:${ctx.classid}:change`,
      description: `HTB class ${ctx.classid} on ${dev}: ${old.rateBps} → ${ctx.rateBps} bit/s`,
      do: [
        exec(['tc', 'class', 'change', 'dev', dev, 'parent', '1:', 'classid', ctx.classid, ...classArgs(ctx.rateBps!, ctx.burst!)]),
        exec(['tc', 'qdisc', 'change', 'dev', dev, 'parent', ctx.classid, 'handle', leafHandle(ctx.classid), ...leafArgs(ctx.rateBps!, direction)]),
      ],
      undo: [
        exec(['tc', 'class', 'change', 'dev', dev, 'parent', '1:', 'classid', ctx.classid, ...classArgs(old.rateBps, old.burst)], true),
        exec(['tc', 'qdisc', 'change', 'dev', dev, 'parent', ctx.classid, 'handle', leafHandle(ctx.classid), ...leafArgs(old.rateBps, direction)], true),
      ],
    },
  ];
}
