// `npm run render-dashboard -- --prometheus http://127.0.0.1:9090 --png dashboard.png`: the shipped
// Grafana dashboard as a picture, without Grafana. Runs every panel's query against a Prometheus
// HTTP API over the last --range, writes a static HTML page (demo/dashboard-html.ts) and, with
// --png, screenshots it with headless Chromium (Debian: apt-get install chromium). Prints one line
// per panel (series and latest values) so that an empty panel shows without looking, and the values
// each query variable offers (`--var pod=UID` renders with one chosen instead of All).
// `npm run demo -- --snapshot FILE.png` calls it on the demo's Prometheus.

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import { expandVariables, formatValue, legendOf, renderHtml, unitOf, type Dashboard, type PanelData, type Series, type Variable } from './dashboard-html.ts';

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
  /** Variables given a value (name → what Grafana would put in the query); the others are All. */
  var?: Record<string, string>;
  /** The end of the range, unix seconds (a backfilled TSDB's time); now by default. */
  at?: number;
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

/** The dashboard's variables with All selected (each one's allValue; .* where it has none), and $__rate_interval. */
export function allValues(dash: Dashboard, rateInterval: string): Record<string, string> {
  const all: Record<string, string> = {};
  for (const v of dash.templating?.list ?? []) if (v.includeAll === true) all[v.name] = v.allValue ?? '.*';
  return { ...all, __rate_interval: rateInterval, datasource: 'prometheus' };
}

export interface VariableOption {
  text: string;
  value: string;
}

/**
 * A query variable's options as Grafana's Prometheus data source finds them at time `at`:
 * label_values(SELECTOR, LABEL) through /api/v1/label/LABEL/values (the last hour), query_result(EXPR)
 * as an instant query, each series written as Grafana writes it (`name{a="1",b="2"} VALUE MS`), then
 * the variable's regex (its first capture group, or its named groups text and value) and its sort.
 */
export async function variableOptions(base: string, v: Variable, vars: Record<string, string>, at: number): Promise<VariableOption[]> {
  const q = expandVariables(typeof v.query === 'string' ? v.query : (v.query?.query ?? ''), vars);
  let found: string[];
  const labelValues = /^label_values\((?:(.+),\s*)?([a-zA-Z_]\w*)\)\s*$/.exec(q);
  const queryResult = /^query_result\((.+)\)\s*$/.exec(q);
  if (labelValues !== null) {
    const params = new URLSearchParams({ start: String(at - 3600), end: String(at) });
    if (labelValues[1] !== undefined) params.set('match[]', labelValues[1]);
    const r = (await (await fetch(`${base}/api/v1/label/${labelValues[2]}/values?${params.toString()}`, { signal: AbortSignal.timeout(30_000) })).json()) as { status: string; error?: string; data?: string[] };
    if (r.status !== 'success') throw new Error(`variable ${v.name}: ${r.error ?? r.status}`);
    found = r.data ?? [];
  } else if (queryResult !== null) {
    const r = await query(base, 'query', { query: queryResult[1]!, time: String(at) });
    if (r.status !== 'success' || r.data === undefined) throw new Error(`variable ${v.name}: ${r.error ?? r.status}`);
    found = r.data.result.map(({ metric, value }) => {
      const { __name__: name, ...labels } = metric;
      return `${name ?? ''}{${Object.entries(labels).map(([k, x]) => `${k}="${x}"`).join(',')}} ${value?.[1] ?? ''} ${(value?.[0] ?? 0) * 1000}`;
    });
  } else {
    throw new Error(`variable ${v.name}: only label_values() and query_result() queries are understood: ${q}`);
  }
  const re = v.regex !== undefined && v.regex !== '' ? /^\/(.*)\/([a-z]*)$/s.exec(v.regex) : null;
  const pattern = re === null ? undefined : new RegExp(re[1]!, re[2]);
  const options = new Map<string, VariableOption>();
  for (const text of found) {
    let option: VariableOption = { text, value: text };
    if (pattern !== undefined) {
      const m = pattern.exec(text);
      if (m === null) continue;
      const { text: t, value: v } = m.groups ?? {};
      if (t !== undefined || v !== undefined) option = { text: t ?? v ?? '', value: v ?? t ?? '' };
      else if (m[1] !== undefined) option = { text: m[1], value: m[1] };
    }
    if (!options.has(option.value)) options.set(option.value, option);
  }
  const out = [...options.values()];
  return v.sort === 1 ? out.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0)) : out;
}

/** Runs each panel's queries: a range query for time series, an instant one at the end for the rest. Variables not `chosen` are All. */
export async function fetchPanels(
  dash: Dashboard,
  o: Pick<RenderOptions, 'prometheus' | 'range' | 'rateInterval'>,
  to: number,
  chosen: Record<string, string> = {},
): Promise<PanelData[]> {
  const from = to - o.range;
  const step = String(Math.max(5, Math.round(o.range / 150)));
  const vars = { ...allValues(dash, o.rateInterval), ...chosen };
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

/** One line per query variable: the values it offers at the end of the range (what Grafana's drop-down lists besides All). */
export async function variablesSummary(o: Pick<RenderOptions, 'prometheus' | 'dashboard' | 'rateInterval' | 'var' | 'at'>): Promise<string> {
  const dash = JSON.parse(readFileSync(o.dashboard, 'utf8')) as Dashboard;
  const vars = { ...allValues(dash, o.rateInterval), ...o.var };
  const lines: string[] = [];
  for (const v of (dash.templating?.list ?? []).filter((x) => x.type === 'query')) {
    const found = await variableOptions(o.prometheus, v, vars, o.at ?? Date.now() / 1000);
    const shown = found.map((x) => (x.text === x.value ? x.text : `${x.text} (${x.value})`)).join(', ');
    lines.push(`variable ${v.name}${o.var?.[v.name] !== undefined ? ` = ${o.var[v.name]}` : ''}: ${found.length === 0 ? 'none (All only)' : shown}`);
  }
  return lines.join('\n');
}

export async function renderDashboard(o: RenderOptions): Promise<PanelData[]> {
  const dash = JSON.parse(readFileSync(o.dashboard, 'utf8')) as Dashboard;
  const to = o.at ?? Date.now() / 1000;
  const data = await fetchPanels(dash, o, to, o.var);
  writeFileSync(o.html, renderHtml(dash, data, { width: WIDTH, from: to - o.range, to, source: o.prometheus, chosen: o.var ?? {} }));
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

const assignment = (v: string, acc: Record<string, string>): Record<string, string> => {
  const m = /^(\w+)=(.*)$/s.exec(v);
  if (!m) throw new InvalidArgumentError('NAME=VALUE, e.g. pod=0b7632a2-a56e-4278-987a-000000000001');
  return { ...acc, [m[1]!]: m[2]! };
};

const unixSeconds = (v: string): number => {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new InvalidArgumentError('unix seconds, e.g. 1764489600');
  return Number(v);
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
    .option('--var <name=value>', 'give a dashboard variable this value instead of All (repeatable), e.g. pod=UID', assignment, {})
    .option('--at <seconds>', 'end of the range in unix seconds (a backfilled TSDB); default now', unixSeconds)
    .parse(process.argv.slice(2), { from: 'user' })
    .opts<RenderOptions>();
  const o = { ...opts, prometheus: opts.prometheus.replace(/\/+$/, '') };
  renderDashboard(o)
    .then(async (data) => {
      process.stdout.write(`${await variablesSummary(o)}\n${summary(data)}\nwrote ${opts.html}${opts.png !== undefined ? ` and ${opts.png}` : ''}\n`);
    })
    .catch((e: unknown) => {
      process.stderr.write(`render-dashboard: ${(e as Error).message}\n`);
      process.exit(1);
    });
}
