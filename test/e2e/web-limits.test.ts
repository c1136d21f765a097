// Hostile and broken HTTP clients against the real daemon (issue 10 item 2): a trickled body and a
// slowloris header are cut by the request/header timeouts; 2 000 idle connections, with the
// daemon's descriptor limit lowered to 1 024 as on a default systemd/ulimit host, neither take
// /metrics down nor starve the /proc readers (the connection cap closes the oldest idle ones);
// SIGTERM with half-sent requests in flight exits 0 within 5 s. Plus the same limits on an
// in-process server with short timeouts, and the shutdown order of server.ts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../../src/http/app.ts';
import { WebSecurity } from '../../src/http/security.ts';
import { DEFAULT_LIMITS, serverParts, shutdown } from '../../src/http/server.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { sample, startDaemon, waitForPoll, waitReady, type Daemon } from '../helpers/daemon.ts';
import { fakeProcPoller, silent } from '../helpers/poller.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw TCP client: sends `first`, then `drip` every `everyMs`; resolves when the server closes it. */
function rawClient(port: number, first: string, drip?: string, everyMs = 500) {
  const sock = connect(port, '127.0.0.1');
  let received = '';
  let closedAt: number | undefined;
  const start = Date.now();
  sock.setEncoding('utf8').on('data', (d: string) => (received += d));
  sock.on('error', () => undefined);
  const closed = new Promise<number>((resolve) =>
    sock.once('close', () => {
      closedAt = Date.now() - start;
      resolve(closedAt);
    }),
  );
  sock.once('connect', () => {
    if (first !== '') sock.write(first);
    if (drip !== undefined) {
      const t = setInterval(() => (sock.destroyed ? clearInterval(t) : sock.write(drip)), everyMs);
    }
  });
  return { sock, closed, received: () => received, closedAt: () => closedAt };
}

const TRICKLE = 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n';
const SLOWLORIS = 'GET /metrics HTTP/1.1\r\nHost: x\r\n';

describe('HTTP limits on an in-process server (short timeouts)', () => {
  it('a silent connection, a slowloris header and a trickled body are all closed by the timeouts', async () => {
    const poller = fakeProcPoller([]);
    const security = new WebSecurity(undefined, silent);
    const parts = serverParts(security, silent, { ...DEFAULT_LIMITS, headersTimeoutMs: 400, requestTimeoutMs: 800 });
    const app = buildApp({ registry: createRegistry({ view: poller, version: 't' }), view: poller, telemetryPath: '/metrics', version: 't', logger: silent, serverFactory: parts.factory });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    try {
      const silentConn = rawClient(port, '');
      const slow = rawClient(port, SLOWLORIS, 'X-A: b\r\n', 100);
      const trickle = rawClient(port, TRICKLE, 'a', 100);
      const [a, b, c] = await Promise.all([silentConn.closed, slow.closed, trickle.closed]);
      // Closed by the server (each keeps sending forever otherwise), within a few checking rounds.
      assert.ok(a < 5000 && b < 5000 && c < 5000, `closed after ${a}, ${b}, ${c} ms`);
      assert.match(slow.received(), /^HTTP\/1\.1 408 /);
    } finally {
      await app.close();
    }
  });

  it('at the connection cap the oldest idle connection makes room; a scraper still gets /metrics', async () => {
    const poller = fakeProcPoller([]);
    const parts = serverParts(new WebSecurity(undefined, silent), silent, { ...DEFAULT_LIMITS, maxConnections: 20 });
    const app = buildApp({ registry: createRegistry({ view: poller, version: 't' }), view: poller, telemetryPath: '/metrics', version: 't', logger: silent, serverFactory: parts.factory });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    try {
      const idle = Array.from({ length: 60 }, () => rawClient(port, ''));
      await sleep(300);
      assert.ok(parts.connections.size <= 20, `${parts.connections.size} connections tracked`);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      await res.text();
      assert.equal(idle.filter((c) => c.closedAt() !== undefined).length >= 40, true);
      for (const c of idle) c.sock.destroy();
    } finally {
      await app.close();
    }
  });

  it('shutdown: idle connections closed at once, a request in flight gets the grace period, then the server is closed', async () => {
    const poller = fakeProcPoller([]);
    const parts = serverParts(new WebSecurity(undefined, silent), silent, { ...DEFAULT_LIMITS, shutdownGraceMs: 300 });
    const app = buildApp({ registry: createRegistry({ view: poller, version: 't' }), view: poller, telemetryPath: '/metrics', version: 't', logger: silent, serverFactory: parts.factory });
    let release: () => void = () => undefined;
    app.get('/slow', async () => {
      await new Promise<void>((r) => (release = r));
      return 'done';
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const half = rawClient(port, SLOWLORIS);
    const inFlight = rawClient(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(200);
    const t0 = Date.now();
    await shutdown(app, parts);
    const took = Date.now() - t0;
    release();
    assert.ok(took < 3000, `shutdown took ${took} ms`);
    // The server closed both (the clients never close on their own).
    const closed = await Promise.race([Promise.all([half.closed, inFlight.closed]), sleep(2000).then(() => undefined)]);
    assert.ok(closed !== undefined, 'a connection outlived the shutdown');
    // The request in flight was not answered (it never finished) but was given the grace period.
    assert.ok(closed[1] >= 200 + 300 - 50, `in-flight connection closed after ${closed[1]} ms`);
  });
});

describe('hostile clients against the real daemon', { timeout: 120_000 }, () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon(['--source', 'proc', '--poll.interval', '1s', '--log.level', 'debug']);
    await waitReady(daemon);
    // A common default descriptor limit: 1 100 idle connections exhausted it before the cap.
    execFileSync('prlimit', ['--pid', String(daemon.child.pid), '--nofile=1024:1024']);
  });
  after(async () => {
    await daemon?.stop();
  });

  it('2 000 idle connections and a trickled body: /metrics answers, /proc is read, descriptors stay bounded, the trickle is cut', async () => {
    const idle: Socket[] = [];
    for (let i = 0; i < 2000; i++) {
      const s = connect(daemon.port, '127.0.0.1');
      s.on('error', () => undefined);
      idle.push(s);
      if (i % 200 === 199) await sleep(50);
    }
    await sleep(500);
    // Opened after the flood, so the cap (oldest idle first) closes flood connections, not these:
    // the timeouts must cut them.
    const trickle = rawClient(daemon.port, TRICKLE, 'a', 1000);
    const slow = rawClient(daemon.port, SLOWLORIS, 'X-A: b\r\n', 1000);
    try {
      const fds = readdirSync(`/proc/${daemon.child.pid}/fd`).length;
      assert.ok(fds < 1024, `${fds} descriptors open`);
      const res = await daemon.get('/metrics');
      assert.equal(res.status, 200);
      await waitForPoll(daemon);
      const body = (await daemon.get('/metrics')).body;
      assert.equal(sample(body, 'tcpstate_source_up{source="proc_tcp"}'), 1);
      assert.equal(sample(body, 'tcpstate_source_up{source="sockstat"}'), 1);
      assert.match(daemon.logs(), /connection limit reached: closing the oldest idle connections/);
      // The default timeouts: 10 s for headers, 20 s for a whole request (checked every second).
      const cut = await Promise.race([Promise.all([trickle.closed, slow.closed]), sleep(30_000).then(() => undefined)]);
      assert.ok(cut !== undefined, 'a trickled body or a slowloris header still open after 30 s');
      assert.ok(cut[0] >= DEFAULT_LIMITS.requestTimeoutMs - 2000 && cut[0] <= DEFAULT_LIMITS.requestTimeoutMs + 3000, `trickle cut after ${cut[0]} ms`);
      assert.ok(cut[1] >= DEFAULT_LIMITS.headersTimeoutMs - 2000 && cut[1] <= DEFAULT_LIMITS.headersTimeoutMs + 3000, `slowloris cut after ${cut[1]} ms`);
    } finally {
      for (const s of idle) s.destroy();
      trickle.sock.destroy();
      slow.sock.destroy();
    }
  });
});

describe('SIGTERM with half-sent requests in flight', { timeout: 60_000 }, () => {
  it('exits 0 within 5 s', async () => {
    const daemon = await startDaemon(['--source', 'proc', '--poll.interval', '1s']);
    await waitReady(daemon);
    const half = rawClient(daemon.port, SLOWLORIS, 'X-A: b\r\n', 200);
    const trickle = rawClient(daemon.port, TRICKLE, 'a', 200);
    const keptAlive = await fetch(`${daemon.url}/healthz`);
    await keptAlive.text();
    await sleep(300);
    const t0 = Date.now();
    const code = await Promise.race([daemon.stop(), sleep(5000).then(() => 'still running after 5 s')]);
    const took = Date.now() - t0;
    if (code === 'still running after 5 s') daemon.child.kill('SIGKILL');
    half.sock.destroy();
    trickle.sock.destroy();
    assert.equal(code, 0, `${String(code)} (${took} ms)\n${daemon.logs().slice(-1500)}`);
  });

});
