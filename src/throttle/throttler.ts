import { NotImplementedError } from '../errors.js';

/**
 * Throttler — not implemented yet in this version. Constructing it throws
 * {@link NotImplementedError}; nothing touches the host.
 */
export class Throttler {
  constructor(_options?: unknown) {
    throw new NotImplementedError('Throttler');
  }
}
