/**
 * netfence — program the Linux packet path from Node, safely.
 * @module
 */
export { Firewall } from './firewall/firewall.js';
export { Throttler } from './throttle/throttler.js';
export { XdpBlocklist } from './xdp/xdp-blocklist.js';
export { DpiBlocker } from './dpi/dpi-blocker.js';
export * from './errors.js';
export { Ok, Err, type Result } from './result.js';
export * as validate from './validate.js';
export type { Plan, Step, Action, TableRef, XdpAttachment, QueueBinding, PlanDecision } from './plan/types.js';
export { emptyPlan } from './plan/types.js';
export { run, type RunOptions, type RunOutput } from './host/run.js';
