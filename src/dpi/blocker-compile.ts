/**
 * The pure half of {@link DpiBlocker}: validated options + host facts → the
 * steering plan and the workers' options. No I/O.
 * @module
 */
import { UnsupportedError, ValidationError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import type { DpiHandlerOptions } from './blocker-handler.js';
import { peerHandlerOptions, type DpiBlockerSettings } from './blocker-options.js';
import type { DpiBlockerCompiled, DpiHostFacts } from './blocker-types.js';
import { scaffoldingStep } from './scaffolding.js';
import { compileSteering } from './steering.js';

/**
 * Which steering form the facts and options choose: `facts.nftQueue` when
 * given, else a forced `options.nftQueue`, else the capability report. An
 * error when the report offers neither form, or when `auto` has no report.
 */
export function steeringForm(o: Pick<DpiBlockerSettings, 'nftQueue'>, facts: DpiHostFacts): Result<'nft' | 'xtables', UnsupportedError | ValidationError> {
  if (facts.nftQueue !== undefined) return Ok(facts.nftQueue ? 'nft' : 'xtables');
  if (typeof o.nftQueue === 'boolean') return Ok(o.nftQueue ? 'nft' : 'xtables');
  const caps = facts.capabilities;
  if (!caps) return Err(new ValidationError('DpiBlocker compile', [{ path: 'capabilities', message: "nftQueue 'auto' needs the capability report (or give nftQueue)" }]));
  if (caps.nft.features.queue.available) return Ok('nft');
  if (caps.iptables.nfqueue.available) return Ok('xtables');
  return Err(
    new UnsupportedError('iptables.nfqueue', `neither the nft queue statement (${caps.nft.features.queue.reason ?? 'missing'}) nor the xtables NFQUEUE target (${caps.iptables.nfqueue.reason ?? 'missing'}) is available`, {
      hint: 'install iptables (iptables-nft) or use a kernel with CONFIG_NFT_QUEUE',
    }),
  );
}

/**
 * Compile a blocker's plan (pure): the steering rules for the chosen form
 * and, for the xtables form with `facts.xtablesFilter`, first in the plan, the
 * step whose undo removes what iptables-nft creates (see scaffolding.ts).
 */
export function compileDpiBlocker(o: DpiBlockerSettings, owner: string, facts: DpiHostFacts): Result<DpiBlockerCompiled, ValidationError | UnsupportedError> {
  const form = steeringForm(o, facts);
  if (form.err) return form;
  const steering = form.val;
  // settled services need nft `ct mark set` and set timeouts; without a report (nftQueue forced) they are assumed
  const nftf = facts.capabilities?.nft.features;
  const settleMissing = o.settleServices === false ? undefined : (['ctMarkSet', 'setTimeout'] as const).filter((k) => nftf?.[k] && !nftf[k].available);
  const settle = o.settleServices !== false && !settleMissing?.length ? o.settleServices : undefined;
  const plan = compileSteering({
    netns: o.netns,
    owner,
    name: o.name,
    queues: o.queues,
    hooks: o.hooks,
    families: o.families,
    protocols: o.protocols,
    failOpen: o.failOpen,
    packets: o.packets,
    resetBad: o.resetBad,
    marks: o.marks,
    // pure ACKs cannot change a verdict: they pass without crossing userspace
    skipPayloadless: true,
    // the engine takes the server's stream start from the client's ACK
    skipSynAck: true,
    // ... and, with conntrack attributes, the flow's direction and identity from the kernel
    skipSyn: facts.queueConntrack === true,
    nftQueue: steering === 'nft',
    settle: settle ? { size: settle.maxEntries } : undefined,
  });
  if (plan.err) return plan;
  if (settleMissing?.length) {
    const d = plan.val.decisions.find((x) => x.subject === 'dpi settled services');
    if (d) d.reason = `the kernel lacks ${settleMissing.map((k) => `nft ${k} (${nftf?.[k].reason ?? 'missing'})`).join(' and ')}: every new connection is inspected`;
  }
  if (steering === 'xtables' && facts.xtablesFilter) {
    const step = scaffoldingStep(facts.xtablesFilter);
    if (step) plan.val.steps.unshift(step);
  }
  const classifiers = o.classifiers.map((c) => (typeof c === 'string' ? (c === 'bittorrent' ? 'bittorrent' : { module: c }) : c)) as DpiHandlerOptions['classifiers'];
  return Ok({
    plan: plan.val,
    queues: o.queues,
    failOpen: o.failOpen,
    steering,
    handlerOptions: {
      monitorOnly: o.monitorOnly,
      classifiers,
      maxPacketsPerDirection: o.maxPacketsPerDirection,
      ...peerHandlerOptions(o),
      ...(settle ? { settleServices: { ttlSeconds: settle.ttlMs / 1000 } } : {}),
    },
  });
}
