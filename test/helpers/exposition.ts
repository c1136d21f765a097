// A strict reader of the Prometheus text format (0.0.4), independent of src/metrics: tests parse
// /metrics back with it and compare. Throws on any line it does not understand.

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  name: string;
  type: string;
  help: string;
}

export interface Parsed {
  families: Map<string, ParsedFamily>;
  samples: ParsedSample[];
  /** `name{a="1",b="2"}` (labels in exposition order) → value. */
  series: Map<string, number>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y;

function unescape(s: string): string {
  return s.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/** As Prometheus reads a value (Go's ParseFloat: NaN and Inf in any case; prom-client writes "Nan"). */
function value(s: string): number {
  const l = s.toLowerCase();
  if (l === '+inf' || l === 'inf') return Infinity;
  if (l === '-inf') return -Infinity;
  if (l === 'nan') return NaN;
  const v = Number(s);
  if (s.trim() === '' || Number.isNaN(v)) throw new Error(`bad value ${JSON.stringify(s)}`);
  return v;
}

export function parseExposition(text: string): Parsed {
  const families = new Map<string, ParsedFamily>();
  const samples: ParsedSample[] = [];
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const f = families.get(name) ?? { name, type: 'untyped', help: '' };
      if (kind === 'HELP') f.help = rest.replace(/\\(\\|n)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'));
      else f.type = rest;
      families.set(name, f);
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment: ${line}`);
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const l = LABEL.exec(body);
      if (l === null) throw new Error(`bad labels in: ${line}`);
      if (l[1]! in labels) throw new Error(`label ${l[1]} twice in: ${line}`);
      labels[l[1]!] = unescape(l[2]!);
    }
    const pairs = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    const key = pairs.length === 0 ? m[1]! : `${m[1]}{${pairs.join(',')}}`;
    if (series.has(key)) throw new Error(`series twice: ${key}`);
    const v = value(m[3]!);
    series.set(key, v);
    samples.push({ name: m[1]!, labels, value: v });
  }
  return { families, samples, series };
}

/** The family a sample belongs to: its own name, or a histogram's/summary's base name. */
export function familyOf(p: Parsed, sampleName: string): ParsedFamily | undefined {
  const own = p.families.get(sampleName);
  if (own !== undefined) return own;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sampleName);
  const base = m === null ? undefined : p.families.get(m[1]!);
  return base !== undefined && (base.type === 'histogram' || (base.type === 'summary' && m![2] !== 'bucket')) ? base : undefined;
}

/** Σ of every sample of `name` whose labels include all of `labels`; undefined when there is none. */
export function sumOf(p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const s of p.samples) {
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum = (sum ?? 0) + s.value;
  }
  return sum;
}
