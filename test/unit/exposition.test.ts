import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/metrics/catalogue.ts';
import { checkFamily, renderFamilies, type FamilyText } from '../../src/metrics/exposition.ts';
import { promtoolCheckMetrics } from '../helpers/daemon.ts';
import { parseExposition } from '../helpers/exposition.ts';

describe('text format renderer', () => {
  it('escapes help and label values, writes special values, and parses back exactly', async () => {
    const families: FamilyText[] = [
      { name: 'x_info', type: 'gauge', help: 'back\\slash and\nnewline', labels: ['a', 'b'], samples: [{ labels: ['q"uote', 'back\\slash\nnl'], value: 1 }] },
      { name: 'x_values', type: 'gauge', help: 'values', labels: ['k'], samples: ['NaN', '+Inf', '-Inf', '0.1', '1e+21', '-3'].map((k) => ({ labels: [k], value: Number(k.replace('+Inf', 'Infinity').replace('-Inf', '-Infinity')) })) },
      { name: 'x_events_total', type: 'counter', help: 'c', labels: [], samples: [{ labels: [], value: 5 }] },
      { name: 'x_empty', type: 'gauge', help: 'no samples now', labels: ['s'], samples: [] },
      // What issue 13 needs: a summary of exact order statistics.
      {
        name: 'x_seconds',
        type: 'summary',
        help: 's',
        labels: ['state', 'quantile'],
        samples: [
          { labels: ['fin_wait1', '0.5'], value: 2 },
          { labels: ['fin_wait1', '1'], value: 9 },
          { labels: ['fin_wait1'], value: 11, suffix: '_sum' },
          { labels: ['fin_wait1'], value: 2, suffix: '_count' },
        ],
      },
    ];
    const text = renderFamilies(families);
    const p = parseExposition(text);
    assert.equal(p.families.get('x_info')?.help, 'back\\slash and\nnewline');
    assert.deepEqual(p.samples[0]!.labels, { a: 'q"uote', b: 'back\\slash\nnl' });
    const values = p.samples.filter((s) => s.name === 'x_values').map((s) => s.value);
    assert.ok(Number.isNaN(values[0]));
    assert.deepEqual(values.slice(1), [Infinity, -Infinity, 0.1, 1e21, -3]);
    assert.equal(p.series.get('x_seconds{state="fin_wait1",quantile="0.5"}'), 2);
    assert.equal(p.series.get('x_seconds_count{state="fin_wait1"}'), 2);
    assert.equal(p.families.get('x_empty')?.type, 'gauge');
    await promtoolCheckMetrics(text);
  });

  it('refuses what the format or the lint forbids', () => {
    assert.throws(() => checkFamily({ name: 'a-b', type: 'gauge', labels: [] }), /invalid metric name/);
    assert.throws(() => checkFamily({ name: 'a', type: 'gauge', labels: ['__x'] }), /invalid label/);
    assert.throws(() => checkFamily({ name: 'a', type: 'gauge', labels: ['x', 'x'] }), /twice/);
    assert.throws(() => checkFamily({ name: 'a', type: 'counter', labels: [] }), /_total/);
    assert.throws(() => checkFamily({ name: 'a_total', type: 'gauge', labels: [] }), /only counters/);
    assert.throws(() => checkFamily({ name: 'a', type: 'summary', labels: ['state'] }), /quantile/);
    assert.throws(() => renderFamilies([{ name: 'a', type: 'gauge', help: '', labels: ['x'], samples: [{ labels: [], value: 1 }] }]), /0 label values for 1/);
    assert.throws(() => renderFamilies([{ name: 'a', type: 'gauge', help: '', labels: [], samples: [{ labels: [], value: 1, suffix: '_sum' }] }]), /outside a summary/);
  });

  it('the catalogue: unique names, every family documented in the README', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const names = CATALOGUE.map((m) => m.name);
    assert.equal(new Set(names).size, names.length);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, '');
      assert.ok(readme.includes(`\`${n}\``) || readme.includes(`\`${base}\``), `${n} in README`);
    }
  });
});
