// The Prometheus text exposition format (version 0.0.4) for the families of the catalogue.
//
// Why our own renderer and not prom-client metric objects: the format is a small frozen text
// specification, while what we need from it is outside prom-client's public API. A distribution
// rebuilt at every poll (a gauge histogram) cannot be set through prom-client's Histogram, which
// only accumulates observe() calls, and prom-client has no untyped metric; the old code got there
// by overriding an undocumented method and forging a type. So the catalogue is rendered here, and
// prom-client keeps what it does through its public API: the registry of the default process and
// Node.js metrics. test/unit/exposition.test.ts parses this output back and runs promtool on it.

/** Text-format types the catalogue uses (0.0.4 has no gauge histogram: see snapshotDistribution()). */
export type MetricType = 'gauge' | 'counter' | 'untyped' | 'summary' | 'histogram';

export interface Sample {
  /** Label values, in the order of the family's `labels`. */
  readonly labels: readonly string[];
  readonly value: number;
  /**
   * Summaries: `_sum` or `_count` (with every label but `quantile`). Histograms: every sample has
   * one; `_bucket` samples carry the family's labels and then `le`.
   */
  readonly suffix?: '_sum' | '_count' | '_bucket';
}

export interface FamilyText {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  readonly samples: Iterable<Sample>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Throws on what the format forbids; run once per family when the catalogue is built. */
export function checkFamily(f: Pick<FamilyText, 'name' | 'type' | 'labels'>): void {
  if (!METRIC_NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
  const seen = new Set<string>();
  for (const l of f.labels) {
    if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`${f.name}: invalid label name ${JSON.stringify(l)}`);
    if (seen.has(l)) throw new Error(`${f.name}: label ${l} twice`);
    seen.add(l);
  }
  if (f.type === 'counter' && !f.name.endsWith('_total')) throw new Error(`${f.name}: a counter's name ends in _total`);
  if (f.type !== 'counter' && f.type !== 'untyped' && f.name.endsWith('_total')) throw new Error(`${f.name}: only counters end in _total`);
  if (f.type === 'summary' && f.labels.at(-1) !== 'quantile') throw new Error(`${f.name}: a summary's last label is quantile`);
  if (f.type === 'histogram' && f.labels.includes('le')) throw new Error(`${f.name}: a histogram's le label is added to its _bucket samples, not declared`);
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function sampleLine(f: FamilyText, s: Sample): string {
  let names = f.labels;
  let name = f.name;
  if (f.type === 'histogram') {
    if (s.suffix === undefined) throw new Error(`${f.name}: a histogram sample without _bucket, _sum or _count`);
    name += s.suffix;
    if (s.suffix === '_bucket') names = [...f.labels, 'le'];
  } else if (s.suffix !== undefined) {
    if (f.type !== 'summary' || s.suffix === '_bucket') throw new Error(`${f.name}: suffix ${s.suffix} outside a summary`);
    name += s.suffix;
    names = f.labels.slice(0, -1);
  }
  if (s.labels.length !== names.length) throw new Error(`${name}: ${s.labels.length} label values for ${names.length} labels`);
  const pairs = names.map((n, i) => `${n}="${escapeLabel(s.labels[i]!)}"`);
  return `${name}${pairs.length === 0 ? '' : `{${pairs.join(',')}}`} ${formatValue(s.value)}`;
}

/** One family: HELP, TYPE, then its samples (none when the value is unknown now). */
export function renderFamily(f: FamilyText): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) lines.push(sampleLine(f, s));
  return lines.join('\n');
}

/** Families separated by a blank line, as prom-client separates its own; ends with a newline. */
export function renderFamilies(families: Iterable<FamilyText>): string {
  const parts: string[] = [];
  for (const f of families) parts.push(renderFamily(f));
  return joinFamilies(parts);
}

/** Families already rendered by renderFamily, joined as renderFamilies joins them. */
export function joinFamilies(parts: readonly string[]): string {
  return parts.length === 0 ? '' : `${parts.join('\n\n')}\n`;
}
