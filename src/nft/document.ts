/**
 * The libnftables JSON document of a batch, `{"nftables":[...]}`, produced
 * piecewise: {@link documentChunks} yields it in pieces of about
 * `chunkChars` characters, so a batch with a million set elements is
 * streamed to nft without ever holding the whole text (issue 14). The big
 * element lists of `set`, `map` and `element` commands are written in slices;
 * their `elem` key comes last in its object (key order means nothing to nft's
 * JSON parser). {@link documentText} joins the pieces into one string.
 * @module
 */

/** Element lists longer than this are written in slices of this many elements. */
const ELEM_SLICE = 4096;
/** Default piece size in characters. */
const CHUNK_CHARS = 256 * 1024;

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * A command whose `elem` list is long, split as `{"verb":{"kind":{...rest,"elem":[` +
 * elements + `]}}}`; undefined for any other command (serialized whole).
 */
function bigElemCommand(command: unknown): { head: string; elem: readonly unknown[] } | undefined {
  if (!isPlain(command)) return undefined;
  const verbs = Object.keys(command);
  if (verbs.length !== 1) return undefined;
  const verb = verbs[0] as string;
  const body = command[verb];
  if (!isPlain(body)) return undefined;
  const kinds = Object.keys(body);
  if (kinds.length !== 1) return undefined;
  const kind = kinds[0] as string;
  const spec = body[kind];
  if (!isPlain(spec) || !Array.isArray(spec.elem) || spec.elem.length <= ELEM_SLICE || 'toJSON' in spec) return undefined;
  const { elem, ...rest } = spec;
  const restText = JSON.stringify(rest);
  const head = `{${JSON.stringify(verb)}:{${JSON.stringify(kind)}:${restText.slice(0, -1)}${restText.length > 2 ? ',' : ''}"elem":[`;
  return { head, elem: elem as unknown[] };
}

/**
 * The document `{"nftables":[...commands]}` in pieces of about `chunkChars`
 * characters; joined, the pieces are equivalent to
 * `JSON.stringify({ nftables: commands })` (the same values; an `elem` list
 * of more than 4096 elements moves to the end of its object).
 */
export function* documentChunks(commands: readonly unknown[], chunkChars = CHUNK_CHARS): Generator<string, void, undefined> {
  let buf = '{"nftables":[';
  for (let i = 0; i < commands.length; i++) {
    if (i > 0) buf += ',';
    const c = commands[i];
    const big = bigElemCommand(c);
    if (!big) {
      buf += JSON.stringify(c) ?? 'null';
      if (buf.length >= chunkChars) {
        yield buf;
        buf = '';
      }
      continue;
    }
    buf += big.head;
    const n = big.elem.length;
    for (let j = 0; j < n; j += ELEM_SLICE) {
      const slice = JSON.stringify(big.elem.slice(j, j + ELEM_SLICE));
      buf += j > 0 ? `,${slice.slice(1, -1)}` : slice.slice(1, -1);
      if (buf.length >= chunkChars) {
        yield buf;
        buf = '';
      }
    }
    buf += ']}}}';
  }
  yield `${buf}]}`;
}

/** The whole document as one string (see {@link documentChunks}). */
export function documentText(commands: readonly unknown[]): string {
  return [...documentChunks(commands)].join('');
}
