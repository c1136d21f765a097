// The exposition served on /metrics: prom-client's registry for the default process_* and
// nodejs_* metrics (its public API: collectDefaultMetrics, metrics(), getSingleMetric, get()),
// followed by the catalogue (catalogue.ts) rendered from the latest snapshot at scrape time
// (exposition.ts). Only metrics/ imports prom-client.

import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { SnapshotView } from '../snapshot.ts';
import { CATALOGUE, exposed, labelsOf, type ScrapeContext } from './catalogue.ts';
import { joinFamilies, renderFamily, type FamilyText } from './exposition.ts';

export interface MetricsOptions {
  view: SnapshotView;
  version: string;
  /** The git commit of the build (src/version.ts); "unknown" when not known. */
  revision?: string;
  /** prom-client's process_* and nodejs_* metrics (on unless turned off). */
  defaultMetrics?: boolean;
}

/** What the HTTP layer and the report command need: the text and its content type. */
export interface Exposition {
  readonly contentType: string;
  metrics(): Promise<string>;
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
  // families): rendered once per poll, not once per scrape. The poll thread hands over a new
  // snapshot and a new stats object with each poll, so their identity is the cache key.
  let cache: { snapshot: ScrapeContext['snapshot']; stats: ScrapeContext['stats']; text: (string | undefined)[] } | undefined;
  const catalogueText = (ctx: ScrapeContext): string[] => {
    if (cache === undefined || cache.snapshot !== ctx.snapshot || cache.stats !== ctx.stats) cache = { snapshot: ctx.snapshot, stats: ctx.stats, text: [] };
    const out: string[] = [];
    CATALOGUE.forEach((m, i) => {
      if (!exposed(m, ctx)) return;
      let text = m.perScrape === true ? undefined : cache!.text[i];
      if (text === undefined) {
        text = renderFamily({ ...m, labels: labelsOf(m, ctx), samples: m.samples(ctx) });
        if (m.perScrape !== true) cache!.text[i] = text;
      }
      out.push(text);
    });
    return out;
  };

  return {
    contentType: registry.contentType,
    async metrics() {
      const defaults = options.defaultMetrics === false ? '' : await registry.metrics();
      const parts = (await Promise.all(deprecated.map(untypedFamily))).map(renderFamily);
      parts.push(...catalogueText({ snapshot: view.snapshot(), stats: view.stats(), version, revision, nowMs: Date.now() }));
      const ours = joinFamilies(parts);
      return defaults === '' ? ours : `${defaults}\n${ours}`;
    },
  };
}
