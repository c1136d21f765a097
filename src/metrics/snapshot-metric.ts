// prom-client gauges and counters whose every sample is computed at scrape time from the latest
// snapshot. prom-client keeps old label sets until reset(), and a metric without labels always
// shows a value (0 after reset()); here a family shows exactly what `fill` emitted, and nothing
// when it emitted nothing: a value we do not know is absent, not 0.

import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';

export type Labels = Record<string, string>;
export type Emit = (value: number, labels?: Labels) => void;

interface Spec {
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** Calls emit once per sample; called on every scrape. */
  fill: (emit: Emit) => void;
}

class SnapshotGauge extends Gauge {
  emitted = 0;
  override async get() {
    const m = await super.get();
    return this.emitted === 0 ? { ...m, values: [] } : m;
  }
}

class SnapshotCounter extends Counter {
  emitted = 0;
  override async get() {
    const m = await super.get();
    return this.emitted === 0 ? { ...m, values: [] } : m;
  }
}

/** Resets a metric, then writes what `fill` emits, counting the samples (none → no samples shown). */
function refill(m: { reset(): void; emitted: number }, fill: Spec['fill'], write: Emit): void {
  m.reset();
  m.emitted = 0;
  fill((value, labels) => {
    m.emitted++;
    write(value, labels);
  });
}

const config = (registry: Registry, spec: Spec) => ({
  name: spec.name,
  help: spec.help,
  labelNames: spec.labelNames ?? [],
  registers: [registry],
});

export function snapshotGauge(registry: Registry, spec: Spec): void {
  const g: SnapshotGauge = new SnapshotGauge({
    ...config(registry, spec),
    collect: () => refill(g, spec.fill, (v, l) => (l === undefined ? g.set(v) : g.set(l, v))),
  });
}

/** A counter mirroring a cumulative value kept elsewhere (a kernel counter, a poller total). */
export function snapshotCounter(registry: Registry, spec: Spec): void {
  const c: SnapshotCounter = new SnapshotCounter({
    ...config(registry, spec),
    collect: () => refill(c, spec.fill, (v, l) => (l === undefined ? c.inc(v) : c.inc(l, v))),
  });
}

/** A distribution to expose: cumulative bucket counts per upper bound, then +Inf. */
export interface HistogramData {
  bounds: readonly number[];
  cumulative: readonly number[];
  sum: number;
  count: number;
}

class SnapshotHistogram extends Histogram {
  constructor(
    private readonly spec: { name: string; help: string },
    registry: Registry,
    labelNames: readonly string[],
    private readonly fill: (emit: (labels: Labels, h: HistogramData) => void) => void,
  ) {
    super({ name: spec.name, help: spec.help, labelNames, registers: [registry] });
  }

  /**
   * The buckets of the latest snapshot, replaced at every poll (prom-client's own histogram
   * only accumulates observations, which is not what a point-in-time distribution is).
   */
  override get() {
    return Promise.resolve({
      name: this.spec.name,
      help: this.spec.help,
      // prom-client types `type` as an enum but renders the string it holds at run time.
      type: 'histogram' as unknown as MetricType,
      aggregator: 'sum' as const,
      collect: () => undefined,
      values: this.values(this.spec.name),
    });
  }

  /** What prom-client's Registry calls for histograms when rendering the text format. */
  getForPromString() {
    return this.get();
  }

  private values(name: string): Array<{ labels: Labels; value: number; metricName: string }> {
    const values: Array<{ labels: Labels; value: number; metricName: string }> = [];
    this.fill((labels, h) => {
      h.bounds.forEach((b, i) => values.push({ labels: { ...labels, le: String(b) }, value: h.cumulative[i]!, metricName: `${name}_bucket` }));
      values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${name}_bucket` });
      values.push({ labels, value: h.sum, metricName: `${name}_sum` });
      values.push({ labels, value: h.count, metricName: `${name}_count` });
    });
    return values;
  }
}

export function snapshotHistogram(
  registry: Registry,
  spec: { name: string; help: string; labelNames: readonly string[]; fill: (emit: (labels: Labels, h: HistogramData) => void) => void },
): void {
  new SnapshotHistogram(spec, registry, spec.labelNames, spec.fill);
}

type Register<E> = (
  registry: Registry,
  spec: { name: string; help: string; labelNames: readonly string[]; fill: (emit: E) => void },
) => void;

/**
 * A factory of families for one part of the snapshot (the table, the kernel figures, the
 * forensics): a family whose part is missing (no poll yet, or its source failed) shows no samples.
 */
function partOf<E>(register: Register<E>) {
  return <P>(registry: Registry, part: () => P | undefined) =>
    (name: string, help: string, labelNames: readonly string[], fill: (emit: E, p: P) => void): void =>
      register(registry, {
        name,
        help,
        labelNames,
        fill: (emit) => {
          const p = part();
          if (p !== undefined) fill(emit, p);
        },
      });
}

export const partGauges = partOf<Emit>(snapshotGauge);
export const partCounters = partOf<Emit>(snapshotCounter);
export const partHistograms = partOf<(labels: Labels, h: HistogramData) => void>(snapshotHistogram);
