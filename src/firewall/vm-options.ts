/**
 * Options of the Firewall's VM (bridge) layer: one schema with the defaults,
 * from which {@link VmOptions} is derived.
 * @module
 */
import { z } from 'zod';
import { DEFAULT_ESTABLISHED_MARK, DEFAULT_REJECT_MARK } from './vm.js';

/** A mark bit: a non-zero 32-bit value. */
const Mark = z.number().int('must be an integer').min(1, 'must be a non-zero 32-bit mark').max(0xffffffff, 'must be a non-zero 32-bit mark');

/** Options of the VM (bridge) layer (`Firewall.vmOptionsSet`). */
export const VmOptionsSchema = z.strictObject({
  /** How REJECT is implemented; `auto` (default) picks native, else br_netfilter, else drop (see `VmBackends`). */
  reject: z.enum(['auto', 'native', 'br_netfilter', 'drop']).default('auto'),
  /** Connection state for VM chains; `auto` (default) picks native, else br_netfilter, else off. */
  stateful: z.enum(['auto', 'native', 'br_netfilter', 'off']).default('auto'),
  /** Mark bit for the br_netfilter REJECT backend (default 0x00400000). */
  rejectMark: Mark.default(DEFAULT_REJECT_MARK),
  /** Mark bit for the br_netfilter stateful backend (default 0x00800000). */
  establishedMark: Mark.default(DEFAULT_ESTABLISHED_MARK),
});
/** Options of the VM (bridge) layer. */
export type VmOptions = z.input<typeof VmOptionsSchema>;
/** {@link VmOptions} validated, defaults filled in. */
export type ResolvedVmOptions = z.output<typeof VmOptionsSchema>;
