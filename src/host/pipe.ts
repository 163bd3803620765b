/**
 * Kept for modules written before {@link run} gave every tool a real stdin
 * pipe: `runPiped` is `run`.
 * @module
 */
export { run as runPiped } from './run.js';
