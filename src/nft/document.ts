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
const ELEM_SLICE = 2048;
/** Small commands are serialized this many at a time (one `JSON.stringify` call, a flat string). */
const GROUP = 512;
/** Default piece size in characters. */
const CHUNK_CHARS = 64 * 1024;

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** The long `elem` list of a command, if it has one (see {@link bigElemCommand}). */
function bigElem(command: unknown): readonly unknown[] | undefined {
  if (!isPlain(command)) return undefined;
  const verbs = Object.keys(command);
  if (verbs.length !== 1) return undefined;
  const body = command[verbs[0] as string];
  if (!isPlain(body)) return undefined;
  const kinds = Object.keys(body);
  if (kinds.length !== 1) return undefined;
  const spec = body[kinds[0] as string];
  return isPlain(spec) && Array.isArray(spec.elem) && spec.elem.length > ELEM_SLICE && !('toJSON' in spec) ? spec.elem : undefined;
}

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
 * characters (a slice of a big element list may be one bigger piece); joined,
 * the pieces are equivalent to `JSON.stringify({ nftables: commands })` (the
 * same values; an `elem` list of more than 2048 elements moves to the end of
 * its object). Each piece is a flat string built by `JSON.stringify` and
 * `join` (no chains of concatenations to flatten when it is written).
 */
export function* documentChunks(commands: readonly unknown[], chunkChars = CHUNK_CHARS): Generator<string, void, undefined> {
  let parts: string[] = ['{"nftables":['];
  let size = parts[0]!.length;
  const add = (text: string): string | undefined => {
    parts.push(text);
    size += text.length;
    if (size < chunkChars) return undefined;
    const out = parts.join('');
    parts = [];
    size = 0;
    return out;
  };
  let i = 0;
  while (i < commands.length) {
    const big = bigElemCommand(commands[i]);
    let piece: string | undefined;
    if (!big) {
      // a run of small commands, at most GROUP, serialized together
      let j = i + 1;
      while (j < commands.length && j - i < GROUP && !bigElemCommand(commands[j])) j++;
      const text = JSON.stringify(commands.slice(i, j));
      piece = add(i > 0 ? `,${text.slice(1, -1)}` : text.slice(1, -1));
      if (piece !== undefined) yield piece;
      i = j;
      continue;
    }
    piece = add(i > 0 ? `,${big.head}` : big.head);
    if (piece !== undefined) yield piece;
    const n = big.elem.length;
    for (let j = 0; j < n; j += ELEM_SLICE) {
      const text = JSON.stringify(big.elem.slice(j, j + ELEM_SLICE));
      piece = add(j > 0 ? `,${text.slice(1, -1)}` : text.slice(1, -1));
      if (piece !== undefined) yield piece;
    }
    piece = add(']}}}');
    if (piece !== undefined) yield piece;
    i++;
  }
  parts.push(']}');
  yield parts.join('');
}

/** The whole document as one string (see {@link documentChunks}). */
export function documentText(commands: readonly unknown[]): string {
  return [...documentChunks(commands)].join('');
}

/**
 * The whole document as one string when it has at most `maxChars`
 * characters, else undefined — found without serializing more than about
 * `maxChars` + one piece of it (a million-element batch is not written out to
 * learn that it is too big).
 */
export function documentTextUpTo(commands: readonly unknown[], maxChars: number): string | undefined {
  const parts: string[] = [];
  let n = 0;
  for (const piece of documentChunks(commands, Math.min(CHUNK_CHARS, Math.max(1024, maxChars >> 2)))) {
    n += piece.length;
    if (n > maxChars) return undefined;
    parts.push(piece);
  }
  return parts.join('');
}

/** Average JSON length (with its comma) of up to 64 evenly spread items of `list`. */
function averageJson(list: readonly unknown[]): number {
  const step = Math.max(1, Math.floor(list.length / 64));
  let chars = 0;
  let seen = 0;
  for (let i = 0; i < list.length; i += step) {
    chars += (JSON.stringify(list[i])?.length ?? 4) + 1;
    seen++;
  }
  return seen > 0 ? chars / seen : 0;
}

/**
 * About how many characters the document of `commands` has, without writing
 * it: big element lists count their length times the average JSON length of
 * up to 64 of their elements, other commands the average of up to 64 of them
 * (both evenly spread).
 */
export function documentSizeHint(commands: readonly unknown[]): number {
  let total = 16;
  let small = 0;
  for (const c of commands) {
    const big = bigElem(c);
    if (big) total += Math.round(big.length * averageJson(big)) + 256;
    else small++;
  }
  if (small > 0) {
    const step = Math.max(1, Math.floor(commands.length / 64));
    let seen = 0;
    let chars = 0;
    for (let i = 0; i < commands.length; i += step) {
      if (bigElem(commands[i])) continue;
      chars += (JSON.stringify(commands[i])?.length ?? 4) + 1;
      seen++;
    }
    total += seen > 0 ? Math.round((chars / seen) * small) : small * 256;
  }
  return total;
}
