/**
 * The few libc calls the queue reader needs. They are bound in netfence's one
 * native boundary, src/host/libc.ts (loaded lazily so that importing
 * the protocol code never loads it).
 * @module
 */
export { libc, type Libc } from '../../host/libc.js';
