/**
 * SmartProxy integration: `NFTablesManager` for routes with
 * `forwardingEngine: 'nftables'`. Not implemented yet in this version.
 * @module
 */
import { NotImplementedError } from '../errors.js';

/** Drop-in NFTablesManager for SmartProxy routes — not implemented yet; constructing it throws. */
export class NFTablesManager {
  constructor(_options?: unknown) {
    throw new NotImplementedError('NFTablesManager');
  }
}
