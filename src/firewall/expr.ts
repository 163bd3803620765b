/**
 * The table family type, re-exported where it always was. The nft JSON
 * constructors that lived here are `src/nft/build.ts` now (one set for every
 * builder).
 * @module
 */
export type { Family } from '../nft/schema/common.js';
