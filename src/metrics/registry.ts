// The exposition served on /metrics: prom-client's registry for the default process_* and
// nodejs_* metrics (its public API: collectDefaultMetrics, metrics(), getSingleMetric, get()),
// followed by the catalogue (catalogue.ts) rendered from the latest snapshot at scrape time
// (exposition.ts). Only metrics/ imports prom-client.

import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { SnapshotView } from '../snapshot.ts';
import { CATALOGUE, exposed, labelsOf, type MetricSpec, type ScrapeContext } from './catalogue.ts';
import { renderFamily, type FamilyText } from './exposition.ts';

export interface MetricsOptions {
  view: SnapshotView;
  version: string;
  /** The git commit of the build (src/version.ts); "unknown" when not known. */
  revision?: string;
  /** prom-client's process_* and nodejs_* metrics (on unless turned off). */
  defaultMetrics?: boolean;
}

/** A piece of the exposition's text, UTF-8. */
export interface ExpositionPiece {
  readonly bytes: Buffer;
  /**
   * This Buffer object is served again by every scrape until the next snapshot (the catalogue's
   * families made from the snapshot alone): what a consumer derives from it (its gzip form) may be
   * kept, by identity. The other pieces are made for one scrape.
   */
  readonly shared: boolean;
}

/** What the HTTP layer and the report command need: the text and its content type. */
export interface Exposition {
  readonly contentType: string;
  metrics(): Promise<string>;
  /** The same text in pieces, in order (for /metrics: see ExpositionPiece.shared). */
  pieces(): Promise<readonly ExpositionPiece[]>;
}

/**
 * prom-client's default metrics include three gauges named like counters, which `promtool check
 * metrics` rejects. They are taken out of its registry and served as untyped families (the one
 * type the linter allows a `_total` name for a non-counter), so the names queries use keep working;
 * `sum without (type) (nodejs_active_handles)` and the like give the same figures. Deprecated.
 */
export const DEPRECATED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** A prom-client metric's current values as an untyped family, via its public get(). */
async function untypedFamily(metric: Metric): Promise<FamilyText> {
  const m = await metric.get();
  const labels = [...new Set(m.values.flatMap((v) => Object.keys(v.labels)))];
  return {
    name: m.name,
    type: 'untyped',
    help: `${m.help} Deprecated name (not a counter); see README "Metrics".`,
    labels,
    samples: m.values.map((v) => ({ labels: labels.map((l) => String(v.labels[l] ?? '')), value: v.value })),
  };
}

export function createRegistry(options: MetricsOptions): Exposition {
  const { view, version } = options;
  const revision = options.revision ?? 'unknown';
  const registry = new Registry();
  const deprecated: Metric[] = [];
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    for (const name of DEPRECATED_DEFAULT_GAUGES) {
      const m = registry.getSingleMetric(name);
      if (m === undefined) continue;
      deprecated.push(m);
      registry.removeSingleMetric(name);
    }
  }

  // The catalogue's text depends on the snapshot and the stats alone (but for the perScrape
  // families): rendered once per poll, not once per scrape, as a few UTF-8 pieces shared by the
  // scrapes of that snapshot (consecutive families joined) with the perScrape families between
  // them. The poll thread hands over a new snapshot and a new stats object with each poll, so their
  // identity is the cache key.
  type Layout = { snapshot: ScrapeContext['snapshot']; stats: ScrapeContext['stats']; items: Array<ExpositionPiece | { spec: MetricSpec; after: string }> };
  let cache: Layout | undefined;
  const layout = (ctx: ScrapeContext): Layout => {
    if (cache !== undefined && cache.snapshot === ctx.snapshot && cache.stats === ctx.stats) return cache;
    const families = CATALOGUE.filter((m) => exposed(m, ctx));
    const items: Layout['items'] = [];
    let run = '';
    families.forEach((m, i) => {
      if (m.perScrape === true) {
        if (run !== '') items.push({ bytes: Buffer.from(run, 'utf8'), shared: true });
        run = '';
        items.push({ spec: m, after: separator(i, families.length) });
        return;
      }
      run += renderFamily({ ...m, labels: labelsOf(m, ctx), samples: m.samples(ctx) }) + separator(i, families.length);
    });
    if (run !== '') items.push({ bytes: Buffer.from(run, 'utf8'), shared: true });
    cache = { snapshot: ctx.snapshot, stats: ctx.stats, items };
    return cache;
  };

  const pieces = async (): Promise<ExpositionPiece[]> => {
    const ctx: ScrapeContext = { snapshot: view.snapshot(), stats: view.stats(), version, revision, nowMs: Date.now() };
    const { items } = layout(ctx);
    // prom-client's families, then the deprecated ones, then the catalogue's (as joinFamilies joins them).
    let head = options.defaultMetrics === false ? '' : `${await registry.metrics()}\n`;
    const deprecatedText = (await Promise.all(deprecated.map(untypedFamily))).map(renderFamily);
    deprecatedText.forEach((t, i) => (head += t + separator(i, deprecatedText.length + (items.length === 0 ? 0 : 1))));
    const out: ExpositionPiece[] = head === '' ? [] : [{ bytes: Buffer.from(head, 'utf8'), shared: false }];
    for (const item of items) {
      if ('bytes' in item) out.push(item);
      else out.push({ bytes: Buffer.from(renderFamily({ ...item.spec, labels: labelsOf(item.spec, ctx), samples: item.spec.samples(ctx) }) + item.after, 'utf8'), shared: false });
    }
    return out;
  };

  return {
    contentType: registry.contentType,
    pieces,
    async metrics() {
      return Buffer.concat((await pieces()).map((p) => p.bytes)).toString('utf8');
    },
  };
}

/** What follows family i of n in the text: a blank line between families, a newline after the last. */
function separator(i: number, n: number): string {
  return i === n - 1 ? '\n' : '\n\n';
}
