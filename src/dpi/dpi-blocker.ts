import { NotImplementedError } from '../errors.js';

/**
 * DpiBlocker — not implemented yet in this version. Constructing it throws
 * {@link NotImplementedError}; nothing touches the host.
 */
export class DpiBlocker {
  constructor(_options?: unknown) {
    throw new NotImplementedError('DpiBlocker');
  }
}
