/**
 * A user classifier module for the DpiBlocker tests: loaded by path inside the
 * queue workers. Judges a TCP flow bad when its stream starts with the word
 * given as `options.word` (default `FORBIDDEN`), benign on any other payload.
 */
import type { Classifier } from '../../src/dpi/types.js';

export function createClassifier(options?: { word?: string }): Classifier {
  const word = Buffer.from(options?.word ?? 'FORBIDDEN');
  return {
    name: 'forbidden-word',
    transports: ['tcp'],
    inspect: (p) => {
      const s = p.stream ?? p.payload;
      if (s.length < word.length) return undefined;
      return Buffer.from(s.subarray(0, word.length)).equals(word)
        ? { verdict: 'bittorrent', reason: `stream starts with ${word.toString()}`, detection: 'custom' }
        : { verdict: 'benign', reason: 'no forbidden word' };
    },
  };
}
