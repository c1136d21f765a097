import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildApp } from '../../src/http/app.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { fakeProcPoller, silent } from '../helpers/poller.ts';
import { failedReader, rec } from '../helpers/readers.ts';

function setup(telemetryPath = '/metrics') {
  const poller = fakeProcPoller(
    [
      rec({ state: 'fin_wait1', sendQueue: 5000, inode: 0, timer: 'persist', timerSeconds: 120 }),
      rec({ state: 'fin_wait1', sendQueue: 7000, inode: 0, timer: 'persist', timerSeconds: 51.2 }),
      rec({ state: 'listen', sendQueue: 128, recvQueue: 3 }),
    ],
    [failedReader('proc_tcp6', 'EACCES', ['ipv6'])],
  );
  const registry = createRegistry({ view: poller, version: '9.9.9' });
  const app = buildApp({ registry, view: poller, telemetryPath, version: '9.9.9', logger: silent });
  return { poller, app };
}

describe('HTTP', () => {
  it('/readyz is 503 before the first poll and 200 after; /healthz always 200', async () => {
    const { poller, app } = setup();
    assert.equal((await app.inject('/readyz')).statusCode, 503);
    assert.equal((await app.inject('/healthz')).statusCode, 200);
    await poller.poll();
    assert.equal((await app.inject('/readyz')).statusCode, 200);
    await app.close();
  });

  it('/metrics before the first poll: build info and process metrics, no socket figures', async () => {
    const { app } = setup();
    const res = await app.inject('/metrics');
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /^tcpstate_build_info\{version="9\.9\.9",revision="unknown",nodejs="v\d+/m);
    assert.match(res.body, /^process_cpu_seconds_total /m);
    assert.doesNotMatch(res.body, /^tcpstate_sockets\{/m);
    await app.close();
  });

  it('/metrics serves the snapshot with the Prometheus text content type', async () => {
    const { poller, app } = setup();
    await poller.poll();
    const res = await app.inject('/metrics');
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const b = res.body;
    assert.match(b, /^tcpstate_sockets\{state="fin_wait1",family="ipv4"\} 2$/m);
    assert.match(b, /^tcpstate_sockets\{state="closing",family="ipv4"\} 0$/m);
    assert.match(b, /^tcpstate_send_queue_bytes\{state="fin_wait1",family="ipv4"\} 12000$/m);
    assert.doesNotMatch(b, /^tcpstate_send_queue_bytes\{state="listen"/m, 'LISTEN Send-Q is a backlog, not bytes');
    assert.doesNotMatch(b, /^tcpstate_recv_queue_bytes\{state="listen"/m);
    assert.match(b, /^tcpstate_orphan_sockets\{state="fin_wait1",family="ipv4"\} 2$/m);
    assert.match(b, /^tcpstate_orphan_send_queue_bytes\{state="fin_wait1",family="ipv4"\} 12000$/m);
    assert.match(b, /^tcpstate_timer_sockets\{state="fin_wait1",timer="persist",family="ipv4"\} 2$/m);
    assert.match(b, /^tcpstate_persist_timer_max_seconds\{state="fin_wait1",family="ipv4"\} 120$/m);
    // The failed family is absent, its source is down; the other family is still served.
    assert.doesNotMatch(b, /family="ipv6"/);
    assert.match(b, /^tcpstate_source_up\{source="proc_tcp"\} 1$/m);
    assert.match(b, /^tcpstate_source_up\{source="proc_tcp6"\} 0$/m);
    assert.match(b, /^tcpstate_parse_errors_total\{source="proc_tcp"\} 0$/m);
    assert.match(b, /^tcpstate_polls_total 1$/m);
    assert.match(b, /^tcpstate_snapshot_age_seconds \d/m);
    assert.match(b, /^tcpstate_last_poll_timestamp_seconds \d{10}/m);
    await app.close();
  });

  it('/ links the telemetry path and shows the version', async () => {
    const { app } = setup('/custom-metrics');
    const res = await app.inject('/');
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/html/);
    assert.match(res.body, /href="\/custom-metrics"/);
    assert.match(res.body, /9\.9\.9/);
    assert.equal((await app.inject('/custom-metrics')).statusCode, 200);
    assert.equal((await app.inject('/metrics')).statusCode, 404);
    await app.close();
  });

  it('unknown paths and methods are 404', async () => {
    const { app } = setup();
    const res = await app.inject('/nope');
    assert.equal(res.statusCode, 404);
    assert.match(res.body, /not found/);
    assert.equal((await app.inject({ method: 'POST', url: '/metrics' })).statusCode, 404);
    await app.close();
  });
});
