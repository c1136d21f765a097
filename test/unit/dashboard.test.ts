// The Grafana dashboard must only query metrics the exporter really serves.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/metrics/catalogue.ts';
import { unitOf, type Panel as DrawnPanel } from '../../demo/dashboard-html.ts';

const ROOT = new URL('../../', import.meta.url);
const served = new Set(
  readFileSync(new URL('test/golden/proc.metrics', ROOT), 'utf8')
    .split('\n')
    .map((l) => /^# TYPE (\S+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined)
    // Served with --netns other than own only (not in the golden files, which are --netns=own).
    .concat(CATALOGUE.filter((m) => m.netnsOnly === true).map((m) => m.name)),
);

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}

/**
 * The unit a query's values are in, from what it computes: a ratio of two series is a fraction, a
 * rate() of a counter is per second (a quantile of rates is in the histogram's unit), otherwise the unit of its first family's name (_bytes,
 * _seconds; anything else counts sockets or events).
 */
function unitOfQuery(expr: string): string {
  if (/\/\s*(ignoring|on|sum|\(|tcpstate_)/.test(expr)) return 'percentunit';
  if (/\brate\(/.test(expr) && !expr.includes('histogram_quantile(')) return 'ops';
  const first = (expr.match(/tcpstate_[a-z0-9_]+/) ?? [''])[0].replace(/_(bucket|sum|count)$/, '');
  if (first.endsWith('_bytes')) return 'bytes';
  if (first.endsWith('_seconds')) return 's';
  return 'short';
}

/** Whitespace-normalised, so that line breaks do not count. */
const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('the namespace-to-pod join (README "From namespace to pod")', () => {
  const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
  const block = /\*\*From namespace to pod\.\*\*[\s\S]*?```promql\n([^`]*)```/.exec(readme)?.[1] ?? '';
  const join = /^\s*(\* on \(pod_uid\) group_left \(namespace, pod\) .*kube_pod_info.*)$/m.exec(block)?.[1] ?? '';
  const dash = JSON.parse(readFileSync(new URL('grafana/dashboards/tcpstate-overview.json', ROOT), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ name: string; query?: { query: string }; allValue?: string }> };
  };

  it('the README shows it', () => assert.match(join, /label_replace\(kube_pod_info, "pod_uid", "\$1", "uid", "\(\.\+\)"\)\)$/));

  it('the Pod variable and the namespaces table use it as written; promtool tests it (prometheus/tests/netns-join.test.yml)', () => {
    const pod = dash.templating.list.find((v) => v.name === 'pod');
    assert.ok(pod?.query?.query.includes(join), pod?.query?.query);
    assert.ok(pod !== undefined);
    assert.equal(pod.allValue, '.*');
    const table = dash.panels.find((p) => p.title === 'Which network namespaces hold FIN-WAIT-1 bytes');
    assert.ok(flat(table?.targets?.[0]?.expr ?? '').includes(join));
    assert.ok(flat(readFileSync(new URL('prometheus/tests/netns-join.test.yml', ROOT), 'utf8')).includes(join));
  });

  it('every query filtering on $netns also leaves out the namespaces of the pods not chosen', () => {
    for (const p of dash.panels) {
      for (const t of p.targets ?? []) {
        const netns = t.expr.match(/netns=~"\$netns"\}/g)?.length ?? 0;
        const pods = t.expr.match(/netns=~"\$netns"\} unless on \(instance, netns\) tcpstate_netns_info\{job=~"\$job", instance=~"\$instance", pod_uid!~"\$pod"\}/g)?.length ?? 0;
        assert.equal(pods, netns, `${p.title}: ${t.expr}`);
      }
    }
  });
});

describe('grafana dashboards', () => {
  for (const file of readdirSync(new URL('grafana/dashboards/', ROOT))) {
    it(`${file}: every query names served tcpstate_ metrics`, () => {
      const dash = JSON.parse(readFileSync(new URL(`grafana/dashboards/${file}`, ROOT), 'utf8')) as { uid: string; panels: Panel[] };
      assert.match(dash.uid, /^[a-z0-9-]+$/);
      let queries = 0;
      for (const p of dash.panels) {
        for (const t of p.targets ?? []) {
          queries++;
          const names = t.expr.match(/tcpstate_[a-z0-9_]+/g) ?? [];
          assert.ok(names.length > 0, `${p.title}: ${t.expr}`);
          for (const n of names) {
            const family = served.has(n) ? n : n.replace(/_(bucket|sum|count)$/, '');
            assert.ok(served.has(family), `${p.title}: ${n} is not served`);
          }
        }
      }
      assert.ok(queries > 0);
    });

    it(`${file}: every query is shown in the unit of what it computes`, () => {
      const dash = JSON.parse(readFileSync(new URL(`grafana/dashboards/${file}`, ROOT), 'utf8')) as { panels: DrawnPanel[] };
      const wrong: string[] = [];
      // A heatmap's unit is that of its bucket bounds, not of the counts it colours.
      for (const p of dash.panels.filter((x) => x.type !== 'heatmap')) {
        for (const [i, t] of (p.targets ?? []).entries()) {
          const refId = t.refId ?? String.fromCharCode(65 + i);
          const shown = unitOf(p, refId) ?? 'short';
          const want = unitOfQuery(t.expr);
          if (shown !== want) wrong.push(`"${p.title}" ${refId}: shown in ${shown}, computes ${want}: ${t.expr}`);
        }
      }
      assert.deepEqual(wrong, []);
    });
  }
});
