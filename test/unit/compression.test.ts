import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { acceptsGzip, gzipPieces, type BodyPiece } from '../../src/http/compression.ts';
import { buildApp } from '../../src/http/app.ts';
import { CATALOGUE, exposed, labelsOf } from '../../src/metrics/catalogue.ts';
import { renderFamilies } from '../../src/metrics/exposition.ts';
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

/** A host-sized table: 40 listeners with clients in several states. */
function hostRecords() {
  const records = [];
  for (let p = 0; p < 40; p++) {
    records.push(rec({ state: 'listen', localPort: 8000 + p, sendQueue: 128 }));
    for (const state of ['established', 'close_wait', 'fin_wait1', 'time_wait'] as const) {
      records.push(rec({ state, localPort: 8000 + p, remotePort: 40000 + p, sendQueue: state === 'fin_wait1' ? 1000 * p : 0, inode: state === 'fin_wait1' ? 0 : 1 }));
    }
  }
  return records;
}

describe('gzip of a body in pieces', () => {
  const text = (pieces: readonly BodyPiece[]) => Buffer.concat(pieces.map((p) => p.bytes));
  const big = Buffer.from(Array.from({ length: 2000 }, (_, i) => `tcpstate_port_sockets{port="${8000 + (i % 40)}",state="fin_wait1"} ${(i * 7919) % 1013}\n`).join(''));
  const pieces: BodyPiece[] = [
    { bytes: Buffer.from('# HELP process_cpu_seconds_total Total CPU.\nprocess_cpu_seconds_total 1.5\n\n'), shared: false },
    { bytes: big, shared: true },
    { bytes: Buffer.alloc(0), shared: false },
    { bytes: Buffer.from('tcpstate_snapshot_age_seconds 0.25\n\n'), shared: false },
    { bytes: Buffer.from('# HELP x Größe in µs: «ü»\nx 1\n'), shared: true },
  ];

  it('is one gzip member of the whole text: gunzip, a raw inflate of its blocks, and a reader that stops after one member', async () => {
    const gz = await gzipPieces(pieces);
    assert.deepEqual(gunzipSync(gz), text(pieces));
    // Header: magic, deflate, no flags (so the blocks start at byte 10); trailer: CRC-32 and length.
    assert.deepEqual([...gz.subarray(0, 4)], [0x1f, 0x8b, 8, 0]);
    assert.deepEqual(inflateRawSync(gz.subarray(10, -8)), text(pieces));
    assert.equal(gz.readUInt32LE(gz.length - 4), text(pieces).length);
    // Python's zlib stops at the end of the first member and keeps what follows (as curl and browsers
    // do): everything must be in that member, nothing after it.
    const py = spawnSync(
      'python3',
      ['-c', 'import sys, zlib; d = zlib.decompressobj(31); out = d.decompress(sys.stdin.buffer.read()); assert d.eof and d.unused_data == b"", (d.eof, len(d.unused_data)); sys.stdout.buffer.write(out)'],
      { input: gz },
    );
    assert.equal(py.status, 0, py.stderr.toString());
    assert.deepEqual(py.stdout, text(pieces));
    // Shared pieces are kept compressed: the same response again, byte for byte.
    assert.deepEqual(await gzipPieces(pieces), gz);
    assert.ok(gz.length < text(pieces).length / 5, `${gz.length} B for ${text(pieces).length} B`);
  });

  it('no pieces, or empty ones: a valid empty member', async () => {
    for (const ps of [[], [{ bytes: Buffer.alloc(0), shared: true }]] as BodyPiece[][]) assert.equal(gunzipSync(await gzipPieces(ps)).length, 0);
  });
});

describe('/metrics in pieces', () => {
  it('the snapshot part is one piece shared by the scrapes of that snapshot, rebuilt with the next; the text is the catalogue joined as before', async () => {
    const poller = fakeProcPoller(hostRecords());
    await poller.poll();
    // As the poll thread's view does: one stats object per published poll (Poller.stats() makes a new one per call).
    let stats = poller.stats();
    const registry = createRegistry({ view: { snapshot: () => poller.snapshot(), stats: () => stats }, version: '9.9.9', defaultMetrics: false });
    const first = await registry.pieces();
    const again = await registry.pieces();
    const shared = first.filter((p) => p.shared);
    assert.ok(shared.length >= 1);
    assert.ok(shared.reduce((n, p) => n + p.bytes.length, 0) > 0.9 * first.reduce((n, p) => n + p.bytes.length, 0), 'nearly all of it comes from the snapshot');
    assert.deepEqual(
      again.filter((p) => p.shared).map((p) => p.bytes),
      shared.map((p) => p.bytes),
    );
    for (const [i, p] of again.filter((x) => x.shared).entries()) assert.equal(p.bytes, shared[i]!.bytes, 'the same Buffer object, not a copy');
    // What the catalogue renders, joined by the exposition's own writer (the text before the pieces).
    const ctx = { snapshot: poller.snapshot(), stats, version: '9.9.9', revision: 'unknown', nowMs: Date.now() };
    const whole = renderFamilies(CATALOGUE.filter((m) => exposed(m, ctx)).map((m) => ({ ...m, labels: labelsOf(m, ctx), samples: m.samples(ctx) })));
    const age = (t: string) => t.replace(/^tcpstate_snapshot_age_seconds .*$/m, '');
    assert.equal(age(Buffer.concat(again.map((p) => p.bytes)).toString('utf8')), age(whole));
    await poller.poll();
    stats = poller.stats();
    const next = await registry.pieces();
    for (const p of next.filter((x) => x.shared)) assert.ok(!shared.some((q) => q.bytes === p.bytes), 'a new snapshot, new pieces');
  });

  it('with the default metrics: prom-client first, then the deprecated gauges and the catalogue, as before', async () => {
    const poller = fakeProcPoller(hostRecords());
    await poller.poll();
    const text = await createRegistry({ view: poller, version: '9.9.9' }).metrics();
    assert.match(text, /^# HELP process_cpu_user_seconds_total /);
    assert.match(text, /\n\n# HELP nodejs_version_info [^]*\n\n# HELP nodejs_active_handles_total [^]*\n\n# HELP tcpstate_sockets /);
    assert.match(text, /\n\n# HELP tcpstate_sockets /);
    assert.doesNotMatch(text, /\n\n\n/);
    assert.ok(text.endsWith('tcpstate_polls_skipped_total 0\n'));
  });

  it('curl --compressed reads the gzip response of a listening server', async () => {
    const poller = fakeProcPoller(hostRecords());
    await poller.poll();
    const registry = createRegistry({ view: poller, version: '9.9.9', defaultMetrics: false });
    const app = buildApp({ registry, view: poller, telemetryPath: '/metrics', version: '9.9.9', logger: silent });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/metrics`;
      const curl = (args: string[]) =>
        new Promise<string>((resolve, reject) =>
          execFile('curl', ['-sS', '--max-time', '5', ...args, url], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout))),
        );
      const headers = await curl(['--compressed', '-D', '-', '-o', '/dev/null']);
      assert.match(headers, /^content-encoding: gzip\r$/im);
      const age = (t: string) => t.replace(/^tcpstate_snapshot_age_seconds .*$/m, '');
      // Twice compressed: the second response reuses the snapshot's compressed piece.
      for (let i = 0; i < 2; i++) assert.equal(age(await curl(['--compressed'])), age(await curl([])));
    } finally {
      await app.close();
    }
  });
});
