// A static picture of a Grafana dashboard without Grafana: every panel's PromQL, as Grafana would
// send it with "All" selected (or the values given), is run against a Prometheus HTTP API, and each panel is drawn in its
// own grid cell with its title: a line chart (SVG) for time series, values for stats, bars for bar
// gauges, rows for tables. Pure: the queries' results come in, an HTML page goes out
// (demo/render-dashboard.ts does the fetching and the screenshot). Enough of Grafana's model to
// check that each panel shows what its title says; not a replacement for Grafana.

export interface Target {
  refId?: string;
  expr: string;
  legendFormat?: string;
  instant?: boolean;
}

export interface Panel {
  id?: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: {
    defaults?: { unit?: string; min?: number; max?: number; decimals?: number; thresholds?: { steps?: Array<{ color: string; value: number | null }> } };
    overrides?: Array<{ matcher: { id: string; options: string }; properties: Array<{ id: string; value: unknown }> }>;
  };
}

/** A template variable (Grafana's "templating.list" entry), as far as the picture needs it. */
export interface Variable {
  name: string;
  type: string;
  label?: string;
  query?: string | { query: string };
  /** Grafana's /regex/flags applied to each value found: a capture group, or named groups text and value. */
  regex?: string;
  /** 0: as found; 1: alphabetical, ascending (by text). */
  sort?: number;
  includeAll?: boolean;
  allValue?: string | null;
}

export interface Dashboard {
  title: string;
  panels: Panel[];
  templating?: { list: Variable[] };
}

/** One series of a query's result: its labels and [unix seconds, value] points (one for instant queries). */
export interface Series {
  refId: string;
  labels: Record<string, string>;
  points: Array<[number, number]>;
}

export interface PanelData {
  panel: Panel;
  series: Series[];
  errors: string[];
}

/** Grafana's template variables with "All" selected (each variable's allValue), and $__rate_interval. */
export function expandVariables(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => vars[a ?? b ?? ''] ?? whole);
}

/** Grafana's legendFormat: {{label}} replaced by the series' label value (empty when absent). */
export function legendOf(format: string | undefined, labels: Record<string, string>): string {
  if (format === undefined || format === '' || format === '__auto') {
    const inner = Object.entries(labels).filter(([k]) => k !== '__name__');
    return `${labels.__name__ ?? ''}{${inner.map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
  }
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => labels[k] ?? '').trim();
}

const scaled = (v: number, base: number, units: string[], decimals: number): string => {
  let i = 0;
  let x = Math.abs(v);
  while (x >= base && i < units.length - 1) {
    x /= base;
    i++;
  }
  const d = i === 0 && Number.isInteger(v) ? 0 : decimals;
  return `${v < 0 ? '-' : ''}${x.toFixed(d)}${units[i]}`;
};

/** A value in a Grafana unit (the ones this project's dashboards use), as the panel would print it. */
export function formatValue(v: number, unit: string | undefined, decimals?: number): string {
  if (!Number.isFinite(v)) return String(v);
  const d = decimals ?? 1;
  switch (unit) {
    case 'bytes':
      return scaled(v, 1024, [' B', ' KiB', ' MiB', ' GiB', ' TiB'], d);
    case 'percentunit':
      return `${(v * 100).toFixed(d)}%`;
    case 's':
      if (Math.abs(v) >= 3600) return `${(v / 3600).toFixed(d)} h`;
      if (Math.abs(v) >= 60) return `${(v / 60).toFixed(d)} min`;
      if (Math.abs(v) >= 1 || v === 0) return `${Number.isInteger(v) ? v : v.toFixed(d)} s`;
      return `${(v * 1000).toFixed(d)} ms`;
    case 'ops':
      return `${scaled(v, 1000, ['', 'k', 'M', 'G'], decimals ?? 2)} ops/s`;
    default:
      return scaled(v, 1000, ['', ' K', ' Mil', ' Bil'], decimals ?? (Number.isInteger(v) ? 1 : 2));
  }
}

/** The unit of a query's values: the panel's default unless an override for its refId says otherwise. */
export function unitOf(panel: Panel, refId: string): string | undefined {
  for (const o of panel.fieldConfig?.overrides ?? []) {
    if (o.matcher.id !== 'byFrameRefID' || o.matcher.options !== refId) continue;
    const u = o.properties.find((p) => p.id === 'unit');
    if (typeof u?.value === 'string') return u.value;
  }
  return panel.fieldConfig?.defaults?.unit;
}

const dashed = (panel: Panel, refId: string): boolean =>
  (panel.fieldConfig?.overrides ?? []).some((o) => o.matcher.id === 'byFrameRefID' && o.matcher.options === refId && o.properties.some((p) => p.id === 'custom.lineStyle'));

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const PALETTE = ['#73bf69', '#f2cc0c', '#8ab8ff', '#ff780a', '#f2495c', '#5794f2', '#b877d9', '#705da0', '#37872d', '#fade2a'];
const last = (s: Series): number => s.points[s.points.length - 1]?.[1] ?? NaN;
const targetOf = (panel: Panel, refId: string): Target | undefined => panel.targets?.find((t, i) => (t.refId ?? String.fromCharCode(65 + i)) === refId);
const nameOf = (panel: Panel, s: Series): string => legendOf(targetOf(panel, s.refId)?.legendFormat, s.labels);

function thresholdColor(panel: Panel, v: number): string {
  let color = '#ff9830';
  for (const st of panel.fieldConfig?.defaults?.thresholds?.steps ?? []) if (st.value === null || v >= st.value) color = st.color;
  return { green: '#73bf69', orange: '#ff9830', red: '#f2495c', yellow: '#fade2a' }[color] ?? color;
}

function timeseries(panel: Panel, series: Series[], w: number, h: number, from: number, to: number): string {
  const all = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const min = Math.min(panel.fieldConfig?.defaults?.min ?? Infinity, ...all, 0);
  let max = Math.max(panel.fieldConfig?.defaults?.max ?? -Infinity, ...all);
  if (!(max > min)) max = min + 1;
  const L = 70;
  const B = 16;
  const cw = w - L - 6;
  const ch = h - B - 4;
  const X = (t: number) => L + ((t - from) / (to - from || 1)) * cw;
  const Y = (v: number) => 4 + ch - ((v - min) / (max - min)) * ch;
  const unit = (s: Series | undefined) => unitOf(panel, s?.refId ?? 'A');
  const grid = [0, 0.5, 1]
    .map((f) => min + f * (max - min))
    .map((v) => `<line x1="${L}" x2="${w - 6}" y1="${Y(v)}" y2="${Y(v)}" class="grid"/><text x="${L - 4}" y="${Y(v) + 4}" text-anchor="end">${esc(formatValue(v, unit(series[0])))}</text>`)
    .join('');
  const clock = (t: number) => new Date(t * 1000).toISOString().slice(11, 16);
  const axis = `<text x="${L}" y="${h - 2}">${clock(from)}</text><text x="${w - 6}" y="${h - 2}" text-anchor="end">${clock(to)} UTC</text>`;
  const lines = series
    .map((s, i) => {
      const pts = s.points.filter((p) => Number.isFinite(p[1])).map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`);
      return `<polyline points="${pts.join(' ')}" stroke="${PALETTE[i % PALETTE.length]}"${dashed(panel, s.refId) ? ' stroke-dasharray="6 4"' : ''}/>`;
    })
    .join('');
  const legend = series
    .map((s, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(nameOf(panel, s))} <b>${esc(formatValue(last(s), unit(s)))}</b></span>`)
    .join('');
  return `<svg width="${w}" height="${h}">${grid}${axis}${lines}</svg><div class="legend">${legend}</div>`;
}

function stat(panel: Panel, series: Series[]): string {
  const dec = panel.fieldConfig?.defaults?.decimals;
  return `<div class="stat">${series
    .map((s) => `<div><span>${esc(nameOf(panel, s))}</span><b>${esc(formatValue(last(s), unitOf(panel, s.refId), dec))}</b></div>`)
    .join('')}</div>`;
}

function bargauge(panel: Panel, series: Series[]): string {
  const dec = panel.fieldConfig?.defaults?.decimals;
  const max = panel.fieldConfig?.defaults?.max ?? Math.max(...series.map(last), 0);
  return `<div class="bars">${series
    .map((s) => {
      const v = last(s);
      const pct = max > 0 ? Math.min(100, Math.max(0, (v / max) * 100)) : 0;
      return `<p>${esc(nameOf(panel, s))}</p><div><em><i style="width:${pct.toFixed(1)}%;background:${thresholdColor(panel, v)}"></i></em><b>${esc(formatValue(v, unitOf(panel, s.refId), dec))}</b></div>`;
    })
    .join('')}</div>`;
}

function table(panel: Panel, series: Series[]): string {
  const keys = [...new Set(series.flatMap((s) => Object.keys(s.labels)))].filter((k) => k !== '__name__' && k !== 'job');
  const head = `<tr>${keys.map((k) => `<th>${esc(k)}</th>`).join('')}<th>Value</th></tr>`;
  const rows = series
    .map((s) => `<tr>${keys.map((k) => `<td>${esc(s.labels[k] ?? '')}</td>`).join('')}<td>${esc(formatValue(last(s), unitOf(panel, s.refId)))}</td></tr>`)
    .join('');
  return `<table>${head}${rows}</table>`;
}

/** Lines the legend takes at 11 px (about 6 px a character, plus the swatch, the value and the gap). */
function legendLines(panel: Panel, series: Series[], width: number): number {
  let lines = 1;
  let used = 0;
  for (const s of series) {
    const w = (nameOf(panel, s).length + formatValue(last(s), unitOf(panel, s.refId)).length + 1) * 6.2 + 24;
    if (used > 0 && used + w > width) {
      lines++;
      used = 0;
    }
    used += w;
  }
  return lines;
}

/** The HTML page: panels placed on Grafana's 24-column grid (one grid row = 30 px + 8 px gap). */
/** What the header says of the variables: those given a value, the others All. */
function variablesText(chosen: Record<string, string>): string {
  const set = Object.entries(chosen).map(([k, v]) => `${k} = ${v}`);
  return set.length === 0 ? 'all variables = All' : `${set.join(', ')}, the other variables = All`;
}

export function renderHtml(dash: Dashboard, data: PanelData[], opts: { width: number; from: number; to: number; source: string; chosen?: Record<string, string> }): string {
  const col = opts.width / 24;
  const rowH = 38;
  const bottom = Math.max(...data.map((d) => d.panel.gridPos.y + d.panel.gridPos.h));
  const cells = data.map(({ panel, series, errors }) => {
    const { x, y, w, h } = panel.gridPos;
    const pos = `left:${x * col}px;top:${y * rowH}px;width:${w * col - 8}px;height:${h * rowH - 8}px`;
    if (panel.type === 'row') return `<div class="row" style="${pos}">${esc(panel.title)}</div>`;
    const iw = w * col - 8 - 16;
    const ih = h * rowH - 8 - 34;
    let body: string;
    if (errors.length > 0) body = `<div class="nodata">${esc(errors.join('; '))}</div>`;
    else if (series.length === 0) body = '<div class="nodata">No data</div>';
    else if (panel.type === 'timeseries') body = timeseries(panel, series, iw, Math.max(40, ih - 15 * legendLines(panel, series, iw)), opts.from, opts.to);
    else if (panel.type === 'stat') body = stat(panel, series);
    else if (panel.type === 'bargauge' || panel.type === 'gauge') body = bargauge(panel, series);
    else body = table(panel, series);
    return `<div class="panel" style="${pos}"><h3 title="${esc(panel.description ?? '')}">${esc(panel.title)}</h3>${body}</div>`;
  });
  const when = `${new Date(opts.from * 1000).toISOString()} → ${new Date(opts.to * 1000).toISOString()}`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(dash.title)}</title><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px/1.3 system-ui,sans-serif}
header{padding:8px 12px;font-size:15px}header small{color:#8e8e99;font-size:11px;margin-left:12px}
main{position:relative;margin:0 8px;height:${bottom * rowH}px}
.panel,.row{position:absolute;box-sizing:border-box;overflow:hidden}
.panel{background:#181b1f;border:1px solid #2c3235;border-radius:2px;padding:4px 8px}
.row{font-size:14px;font-weight:600;color:#d8d9da;border-bottom:1px solid #2c3235;padding-top:6px}
h3{margin:0 0 6px;font-size:12px;font-weight:600;color:#d8d9da;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
svg text{fill:#8e8e99;font-size:10px}svg .grid{stroke:#2c3235}polyline{fill:none;stroke-width:1.5}
.legend span{display:inline-block;margin-right:10px;white-space:nowrap;font-size:11px}.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.stat div,.bars div{display:flex;align-items:center;gap:8px;margin:3px 0}.stat span,.bars span{flex:1;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.stat b{font-size:18px;color:#73bf69}.bars p{margin:4px 0 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.bars div{margin:0}.bars em{flex:1;height:12px;background:#22252b}.bars em i{display:block;height:100%}.bars b{min-width:64px;text-align:right}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #2c3235}
.nodata{color:#f2495c;font-size:14px;padding:20px 0;text-align:center}
</style></head><body><header>${esc(dash.title)}<small>${esc(when)} · ${esc(opts.source)} · ${esc(variablesText(opts.chosen ?? {}))}</small></header><main>${cells.join('\n')}</main></body></html>
`;
}
