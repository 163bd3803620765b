/**
 * A strict reader of the Prometheus text exposition format 0.0.4, written
 * from the format's rules (not from netfence's renderer): it checks
 * `# HELP`/`# TYPE` syntax and placement, metric and label names, label value
 * escapes, values, that each family's lines are one group, and that no
 * series appears twice. Used by the tests and by tools that read
 * `netfence metrics` output back.
 * @module
 */

/** One parsed sample line. */
export interface ParsedSample {
  /** The name on the line (for counters it ends in `_total`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the line carries one. */
  timestamp?: number | undefined;
}

/** One parsed family: its HELP and TYPE (`untyped` when absent) and its samples. */
export interface ParsedFamily {
  name: string;
  help?: string | undefined;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: ParsedSample[];
}

/** Thrown by {@link parsePrometheusText}: names the line and what is wrong. */
export class PrometheusTextError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'PrometheusTextError';
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Ii][Nn][Ff](?:[Ii][Nn][Ii][Tt][Yy])?|[Nn][Aa][Nn])$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function unescape(s: string, allowQuote: boolean, line: number): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i];
    if (n === '\\') out += '\\';
    else if (n === 'n') out += '\n';
    else if (n === '"' && allowQuote) out += '"';
    else throw new PrometheusTextError(line, `invalid escape \\${n ?? ''}`);
  }
  return out;
}

function parseValue(s: string, line: number): number {
  if (!FLOAT.test(s)) throw new PrometheusTextError(line, `invalid value ${JSON.stringify(s)}`);
  const l = s.toLowerCase();
  if (l.endsWith('nan')) return NaN;
  if (l.endsWith('inf') || l.endsWith('infinity')) return s.startsWith('-') ? -Infinity : Infinity;
  return Number(s);
}

/** The family a sample name belongs to (histogram/summary suffixes). */
function familyOf(name: string, families: Map<string, ParsedFamily>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || f.type === 'summary')) return base;
    }
  }
  return name;
}

function parseSample(text: string, line: number): ParsedSample {
  const m = NAME.exec(text);
  if (!m) throw new PrometheusTextError(line, `invalid metric name at ${JSON.stringify(text.slice(0, 40))}`);
  const name = m[0];
  let rest = text.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    for (;;) {
      rest = rest.replace(/^[ \t]*/, '');
      if (rest.startsWith('}')) {
        rest = rest.slice(1);
        break;
      }
      const l = LABEL.exec(rest);
      if (!l) throw new PrometheusTextError(line, `invalid label name at ${JSON.stringify(rest.slice(0, 40))}`);
      const lname = l[0];
      if (lname.startsWith('__')) throw new PrometheusTextError(line, `label name ${lname} is reserved`);
      rest = rest.slice(lname.length).replace(/^[ \t]*/, '');
      if (!rest.startsWith('="')) throw new PrometheusTextError(line, `expected ="…" after label ${lname}`);
      rest = rest.slice(2);
      let i = 0;
      for (; i < rest.length; i++) {
        if (rest[i] === '\\') i++;
        else if (rest[i] === '"') break;
      }
      if (i >= rest.length) throw new PrometheusTextError(line, `unterminated value of label ${lname}`);
      if (lname in labels) throw new PrometheusTextError(line, `label ${lname} given twice`);
      labels[lname] = unescape(rest.slice(0, i), true, line);
      rest = rest.slice(i + 1).replace(/^[ \t]*/, '');
      if (rest.startsWith(',')) rest = rest.slice(1);
      else if (!rest.startsWith('}')) throw new PrometheusTextError(line, `expected , or } after label ${lname}`);
    }
  }
  if (!/^[ \t]/.test(rest)) throw new PrometheusTextError(line, 'expected a blank before the value');
  const parts = rest.trim().split(/[ \t]+/);
  if (parts.length < 1 || parts.length > 2 || parts[0] === '') throw new PrometheusTextError(line, 'expected a value and an optional timestamp');
  const value = parseValue(parts[0] as string, line);
  let timestamp: number | undefined;
  if (parts.length === 2) {
    if (!/^-?\d+$/.test(parts[1] as string)) throw new PrometheusTextError(line, `invalid timestamp ${JSON.stringify(parts[1])}`);
    timestamp = Number(parts[1]);
  }
  return { name, labels, value, ...(timestamp !== undefined ? { timestamp } : {}) };
}

/**
 * Parse exposition text strictly; throws a {@link PrometheusTextError}
 * naming the first line that breaks a rule. Families come back in order.
 */
export function parsePrometheusText(text: string): ParsedFamily[] {
  const families = new Map<string, ParsedFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, line: number): ParsedFamily => {
    if (current !== name) {
      if (closed.has(name)) throw new PrometheusTextError(line, `lines of ${name} are not one group`);
      if (current !== undefined) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', samples: [] }));
    return f;
  };
  const lines = text.split('\n');
  if (text !== '' && !text.endsWith('\n')) throw new PrometheusTextError(lines.length, 'the text must end with a newline');
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (raw.includes('\r')) throw new PrometheusTextError(n, 'carriage return in a line');
    const line = raw.replace(/^[ \t]+/, '');
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) return; // a comment
      const [, kind, name, arg = ''] = m as unknown as [string, string, string, string | undefined];
      if (!new RegExp(`${NAME.source}$`).test(name)) throw new PrometheusTextError(n, `invalid metric name ${JSON.stringify(name)}`);
      const f = enter(name, n);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new PrometheusTextError(n, `second HELP for ${name}`);
        f.help = unescape(arg, false, n);
      } else {
        const t = arg.trim();
        if (!TYPES.has(t)) throw new PrometheusTextError(n, `invalid type ${JSON.stringify(t)}`);
        if (f.samples.length || (f as { typed?: boolean }).typed) throw new PrometheusTextError(n, `TYPE of ${name} after its samples or given twice`);
        (f as { typed?: boolean }).typed = true;
        f.type = t as ParsedFamily['type'];
      }
      return;
    }
    const s = parseSample(line, n);
    const f = enter(familyOf(s.name, families), n);
    const key = `${s.name}${JSON.stringify(Object.keys(s.labels).sort().map((k) => [k, s.labels[k]]))}`;
    if (series.has(key)) throw new PrometheusTextError(n, `series ${s.name} with these labels given twice`);
    series.add(key);
    if (f.type === 'counter' && !(s.value >= 0)) throw new PrometheusTextError(n, `counter ${s.name} is negative or NaN`);
    f.samples.push(s);
  });
  return [...families.values()].map((f) => {
    const { typed: _t, ...rest } = f as ParsedFamily & { typed?: boolean };
    return rest;
  });
}
