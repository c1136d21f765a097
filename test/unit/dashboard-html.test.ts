// demo/dashboard-html.ts: the pure half of the dashboard renderer (units, legends, variables, layout).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandVariables, formatValue, legendOf, renderHtml, unitOf, type Panel } from '../../demo/dashboard-html.ts';

describe('dashboard renderer', () => {
  it('formats values in the units the dashboard uses', () => {
    const cases: Array<[number, string | undefined, string]> = [
      [0, 'bytes', '0 B'],
      [5_347_737, 'bytes', '5.1 MiB'],
      [1_572_323_328, 'bytes', '1.5 GiB'],
      [0.0092, 'percentunit', '0.9%'],
      [200, 's', '3.3 min'],
      [23, 's', '23 s'],
      [0.1946, 's', '194.6 ms'],
      [0.0167, 'ops', '0.02 ops/s'],
      [200, 'short', '200'],
      [131_072, 'short', '131.1 K'],
      [7.5, undefined, '7.50'],
    ];
    for (const [v, unit, want] of cases) assert.equal(formatValue(v, unit), want, `${v} ${unit}`);
  });

  it('expands Grafana variables as "All" and leaves PromQL braces alone', () => {
    const vars = { job: '.+', instance: '.+', __rate_interval: '1m' };
    assert.equal(
      expandVariables('rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval]) and on () y{a="$unknown"}', vars),
      'rate(x{job=~".+", instance=~".+"}[1m]) and on () y{a="$unknown"}',
    );
  });

  it('fills legendFormat from the series labels', () => {
    assert.equal(legendOf('{{instance}} tcp_mem {{ level }}', { instance: 'h:9812', level: 'pressure' }), 'h:9812 tcp_mem pressure');
    assert.equal(legendOf('{{port}} {{state}}', { state: 'fin_wait1' }), 'fin_wait1');
    assert.equal(legendOf(undefined, { __name__: 'up', job: 'x' }), 'up{job="x"}');
  });

  it('takes the unit of a query from its byFrameRefID override', () => {
    const p: Panel = {
      type: 'timeseries',
      title: 't',
      gridPos: { x: 0, y: 0, w: 12, h: 8 },
      fieldConfig: { defaults: { unit: 's' }, overrides: [{ matcher: { id: 'byFrameRefID', options: 'C' }, properties: [{ id: 'unit', value: 'short' }] }] },
    };
    assert.equal(unitOf(p, 'A'), 's');
    assert.equal(unitOf(p, 'C'), 'short');
  });

  it('draws every panel with its title, says "No data" for an empty one and escapes labels', () => {
    const panel = (id: number, type: string, title: string): Panel => ({ id, type, title, gridPos: { x: 0, y: id, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'x', legendFormat: '{{port}}' }] });
    const html = renderHtml(
      { title: 'D', panels: [] },
      [
        { panel: panel(0, 'row', 'First row'), series: [], errors: [] },
        { panel: panel(1, 'timeseries', 'Lines'), series: [{ refId: 'A', labels: { port: '<17001>' }, points: [[0, 1], [60, 2]] }], errors: [] },
        { panel: panel(2, 'stat', 'Empty'), series: [], errors: [] },
        { panel: panel(3, 'bargauge', 'Broken'), series: [], errors: ['A: parse error'] },
      ],
      { width: 1600, from: 0, to: 60, source: 'test' },
    );
    for (const t of ['First row', 'Lines', 'Empty', 'Broken']) assert.ok(html.includes(`>${t}<`), t);
    assert.ok(html.includes('&lt;17001&gt;') && !html.includes('<17001>'));
    assert.equal(html.match(/<polyline /g)?.length, 1);
    assert.ok(html.includes('No data'));
    assert.ok(html.includes('A: parse error'));
  });
});
