/**
 * Entry point of `netfence/smartproxy` (the implementation lives in `./smartproxy/`).
 * @module
 */
export * from './smartproxy/index.js';
