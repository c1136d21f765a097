// `npm run render-dashboard -- --prometheus http://127.0.0.1:9090 --png dashboard.png`: the shipped
// Grafana dashboard as a picture, without Grafana. Runs every panel's query against a Prometheus
// HTTP API over the last --range, writes a static HTML page (demo/dashboard-html.ts) and, with
// --png, screenshots it with headless Chromium (Debian: apt-get install chromium). Prints one line
// per panel (series and latest values) so that an empty panel shows without looking.
// `npm run demo -- --snapshot FILE.png` calls it on the demo's Prometheus.

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import { expandVariables, formatValue, legendOf, renderHtml, unitOf, type Dashboard, type PanelData, type Series } from './dashboard-html.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const WIDTH = 1600;

export interface RenderOptions {
  prometheus: string;
  dashboard: string;
  /** Seconds of history the time series panels show, ending now. */
  range: number;
  /** Grafana's $__rate_interval (at least 4 scrape intervals). */
  rateInterval: string;
  html: string;
  png?: string;
  chromium: string;
}

interface PromResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> }> };
}

async function query(base: string, path: string, params: Record<string, string>): Promise<PromResponse> {
  const r = await fetch(`${base}/api/v1/${path}`, { method: 'POST', body: new URLSearchParams(params), signal: AbortSignal.timeout(30_000) });
  return (await r.json()) as PromResponse;
}

/** Runs each panel's queries: a range query for time series, an instant one at the end for the rest. */
export async function fetchPanels(dash: Dashboard, o: Pick<RenderOptions, 'prometheus' | 'range' | 'rateInterval'>, to: number): Promise<PanelData[]> {
  const from = to - o.range;
  const step = String(Math.max(5, Math.round(o.range / 150)));
  const vars = { job: '.+', instance: '.+', netns: '.*', __rate_interval: o.rateInterval, datasource: 'prometheus' };
  const panels = [...dash.panels].sort((a, b) => a.gridPos.y - b.gridPos.y || a.gridPos.x - b.gridPos.x);
  const out: PanelData[] = [];
  for (const panel of panels) {
    const series: Series[] = [];
    const errors: string[] = [];
    for (const [i, t] of (panel.targets ?? []).entries()) {
      const refId = t.refId ?? String.fromCharCode(65 + i);
      const expr = expandVariables(t.expr, vars);
      const res =
        panel.type === 'timeseries'
          ? await query(o.prometheus, 'query_range', { query: expr, start: String(from), end: String(to), step })
          : await query(o.prometheus, 'query', { query: expr, time: String(to) });
      if (res.status !== 'success' || res.data === undefined) {
        errors.push(`${refId}: ${res.error ?? res.status}`);
        continue;
      }
      for (const r of res.data.result) {
        const points = r.values ?? (r.value ? [r.value] : []);
        series.push({ refId, labels: r.metric, points: points.map(([ts, v]) => [ts, Number(v)]) });
      }
    }
    out.push({ panel, series, errors });
  }
  return out;
}

/** One line per panel: what it shows now. */
export function summary(data: PanelData[]): string {
  return data
    .filter((d) => d.panel.type !== 'row')
    .map(({ panel, series, errors }) => {
      const what =
        errors.length > 0
          ? `ERROR ${errors.join('; ')}`
          : series.length === 0
            ? 'NO DATA'
            : series
                .map((s) => {
                  const fmt = panel.targets?.find((t, i) => (t.refId ?? String.fromCharCode(65 + i)) === s.refId)?.legendFormat;
                  return `${legendOf(fmt, s.labels)} = ${formatValue(s.points[s.points.length - 1]?.[1] ?? NaN, unitOf(panel, s.refId))}`;
                })
                .join(' | ');
      return `${panel.title}: ${what}`;
    })
    .join('\n');
}

export async function renderDashboard(o: RenderOptions): Promise<PanelData[]> {
  const dash = JSON.parse(readFileSync(o.dashboard, 'utf8')) as Dashboard;
  const to = Date.now() / 1000;
  const data = await fetchPanels(dash, o, to);
  writeFileSync(o.html, renderHtml(dash, data, { width: WIDTH, from: to - o.range, to, source: o.prometheus }));
  if (o.png !== undefined) {
    const bottom = Math.max(...data.map((d) => d.panel.gridPos.y + d.panel.gridPos.h));
    await promisify(execFile)(
      o.chromium,
      ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${WIDTH + 16},${bottom * 38 + 48}`, `--screenshot=${resolve(o.png)}`, pathToFileURL(resolve(o.html)).href],
      { timeout: 60_000 },
    ).catch((e: unknown) => {
      throw new Error(`${o.chromium} could not screenshot ${o.html} (apt-get install chromium): ${(e as Error).message}`);
    });
  }
  return data;
}

const durationSeconds = (v: string): number => {
  const m = /^(\d+)(s|m|h)$/.exec(v);
  if (!m) throw new InvalidArgumentError('a duration such as 90s, 15m or 1h');
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const opts = new Command('npm run render-dashboard --')
    .description("The Grafana dashboard's panels, queried from a Prometheus, as a static HTML page and (with --png) a screenshot.")
    .option('--prometheus <url>', 'Prometheus HTTP API base URL', 'http://127.0.0.1:9090')
    .option('--dashboard <file>', 'Grafana dashboard JSON', `${ROOT}grafana/dashboards/tcpstate-overview.json`)
    .option('--range <duration>', 'history the time series show, ending now', durationSeconds, 900)
    .option('--rate-interval <duration>', "what $__rate_interval becomes (Grafana: at least 4 scrape intervals)", '1m')
    .option('--html <file>', 'HTML page to write', 'dashboard.html')
    .option('--png <file>', 'also screenshot the page with headless Chromium')
    .option('--chromium <path>', 'Chromium binary', 'chromium')
    .parse(process.argv.slice(2), { from: 'user' })
    .opts<RenderOptions>();
  renderDashboard({ ...opts, prometheus: opts.prometheus.replace(/\/+$/, '') })
    .then((data) => {
      process.stdout.write(`${summary(data)}\nwrote ${opts.html}${opts.png !== undefined ? ` and ${opts.png}` : ''}\n`);
    })
    .catch((e: unknown) => {
      process.stderr.write(`render-dashboard: ${(e as Error).message}\n`);
      process.exit(1);
    });
}
