// The Grafana dashboard must only query metrics the exporter really serves.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/metrics/catalogue.ts';

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
  }
});
