import { NotImplementedError } from '../errors.js';

/**
 * Firewall — not implemented yet in this version. Constructing it throws
 * {@link NotImplementedError}; nothing touches the host.
 */
export class Firewall {
  constructor(_options?: unknown) {
    throw new NotImplementedError('Firewall');
  }
}
