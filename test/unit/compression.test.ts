import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip } from '../../src/http/compression.ts';
import { buildApp } from '../../src/http/app.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { fakeProcPoller, silent } from '../helpers/poller.ts';
import { rec } from '../helpers/readers.ts';

describe('Accept-Encoding', () => {
  const cases: Array<[string | string[] | undefined, boolean]> = [
    [undefined, false],
    ['', false],
    ['gzip', true],
    ['GZip', true],
    ['x-gzip', true],
    ['identity', false],
    ['br, deflate', false],
    ['deflate, gzip;q=0.5', true],
    ['gzip;q=0', false],
    ['gzip; q=0.000', false],
    ['gzip;q=1.0', true],
    ['gzip;q=bogus', false],
    ['gzip;q=2', false],
    ['*', true],
    ['*;q=0', false],
    ['gzip;q=0, *', false],
    ['*, gzip;q=0', false],
    [['identity', 'gzip'], true],
    // What Prometheus sends (scrape.go: acceptEncodingHeader).
    ['gzip', true],
  ];
  for (const [header, want] of cases) {
    it(`${JSON.stringify(header)} → ${want ? 'gzip' : 'identity'}`, () => assert.equal(acceptsGzip(header), want));
  }
});

describe('/metrics compression', () => {
  it('gzip when asked, the same exposition once decompressed, and much smaller; identity otherwise', async () => {
    // A host-sized snapshot: 40 listeners with clients in several states.
    const records = [];
    for (let p = 0; p < 40; p++) {
      records.push(rec({ state: 'listen', localPort: 8000 + p, sendQueue: 128 }));
      for (const state of ['established', 'close_wait', 'fin_wait1', 'time_wait'] as const) {
        records.push(rec({ state, localPort: 8000 + p, remotePort: 40000 + p, sendQueue: state === 'fin_wait1' ? 1000 * p : 0, inode: state === 'fin_wait1' ? 0 : 1 }));
      }
    }
    const poller = fakeProcPoller(records);
    await poller.poll();
    // Process metrics change between two scrapes: compare the tcpstate_ part, which comes from one snapshot.
    const registry = createRegistry({ view: poller, version: '9.9.9', defaultMetrics: false });
    const app = buildApp({ registry, view: poller, telemetryPath: '/metrics', version: '9.9.9', logger: silent });
    try {
      const plain = await app.inject('/metrics');
      const zipped = await app.inject({ url: '/metrics', headers: { 'accept-encoding': 'gzip' } });
      assert.equal(plain.statusCode, 200);
      assert.equal(zipped.statusCode, 200);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      assert.equal(zipped.headers['content-type'], plain.headers['content-type']);
      assert.match(String(zipped.headers.vary), /accept-encoding/i);
      assert.match(String(plain.headers.vary), /accept-encoding/i, 'caches must not serve one to the other');
      const unzipped = gunzipSync(zipped.rawPayload).toString('utf8');
      const strip = (t: string) => t.replace(/^tcpstate_snapshot_age_seconds .*$/m, '');
      assert.equal(strip(unzipped), strip(plain.body));
      assert.match(plain.body, /^tcpstate_port_sockets\{port="8039",state="fin_wait1"\} 1$/m);
      const ratio = zipped.rawPayload.length / plain.rawPayload.length;
      console.log(`# /metrics ${plain.rawPayload.length} B plain, ${zipped.rawPayload.length} B gzip (${(ratio * 100).toFixed(1)} %)`);
      assert.ok(ratio < 0.2, `gzip should shrink the exposition at least fivefold, got ${ratio}`);
      const refused = await app.inject({ url: '/metrics', headers: { 'accept-encoding': 'gzip;q=0, identity' } });
      assert.equal(refused.headers['content-encoding'], undefined);
      assert.equal(strip(refused.body), strip(plain.body));
    } finally {
      await app.close();
    }
  });
});
