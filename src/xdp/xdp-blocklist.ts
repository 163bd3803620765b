import { NotImplementedError } from '../errors.js';

/**
 * XdpBlocklist — not implemented yet in this version. Constructing it throws
 * {@link NotImplementedError}; nothing touches the host.
 */
export class XdpBlocklist {
  constructor(_options?: unknown) {
    throw new NotImplementedError('XdpBlocklist');
  }
}
