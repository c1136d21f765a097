import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildApp } from '../../src/http/app.ts';
import { SOCKETS_LIMIT_MAX } from '../../src/http/sockets.ts';
import { TCP_STATES } from '../../src/model.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { fakeProcPoller, silent } from '../helpers/poller.ts';
import type { SocketRecord } from '../../src/model.ts';
import { rec } from '../helpers/readers.ts';
import type { OwnerLookup } from '../../src/sources/owners.ts';

const RECORDS = [
  rec({ state: 'listen', localPort: 443, remotePort: 0 }),
  rec({ state: 'fin_wait1', localPort: 443, remoteAddress: '10.0.0.9', remotePort: 5001, sendQueue: 9000, inode: 0, timer: 'persist', timerSeconds: 110 }),
  rec({ state: 'fin_wait1', localPort: 443, remoteAddress: '10.0.0.8', remotePort: 5002, sendQueue: 7000, inode: 0 }),
  rec({ state: 'fin_wait1', localPort: 8080, remoteAddress: '10.0.0.7', remotePort: 5003, sendQueue: 8000, inode: 0 }),
  rec({ state: 'established', localPort: 443, remoteAddress: '<script>', remotePort: 5004, sendQueue: 50 }),
];

async function setup(poll = true, sockets = true, records = RECORDS, findOwners?: (inodes: ReadonlySet<number>) => Promise<OwnerLookup>) {
  const poller = fakeProcPoller(records);
  if (poll) await poller.poll();
  const app = buildApp({
    registry: createRegistry({ view: poller, version: 't' }), view: poller, telemetryPath: '/metrics', version: 't', logger: silent, sockets,
    ...(findOwners !== undefined && { findOwners }),
  });
  return Object.assign(app, { poller });
}

describe('/sockets', () => {
  it('is off unless asked for (--web.sockets): 404, not linked, and /metrics loses nothing', async () => {
    const off = await setup(true, false);
    assert.equal((await off.inject('/sockets')).statusCode, 404);
    assert.doesNotMatch((await off.inject('/')).body, /href="\/sockets/);
    const on = await setup(true, true);
    assert.match((await on.inject('/')).body, /href="\/sockets/);
    assert.equal((await off.inject('/metrics')).body.replace(/^(process|nodejs)_.*\n/gm, '').replace(/^tcpstate_(snapshot_age|poll_duration|last_poll|source_duration).*\n/gm, ''),
      (await on.inject('/metrics')).body.replace(/^(process|nodejs)_.*\n/gm, '').replace(/^tcpstate_(snapshot_age|poll_duration|last_poll|source_duration).*\n/gm, ''));
  });
  it(`caps limit at ${SOCKETS_LIMIT_MAX}`, async () => {
    // 100 kept per state (--sockets.top), 11 states: 1 100 candidates.
    const many = TCP_STATES.flatMap((state, s) => Array.from({ length: 100 }, (_, i) => rec({ state, localPort: 443, remoteAddress: '10.0.0.1', remotePort: 1024 + s * 100 + i, sendQueue: i, inode: 1 })));
    const app = await setup(true, true, many);
    const body = (await app.inject('/sockets?limit=100000')).json<{ limit: number; sockets: unknown[] }>();
    assert.equal(body.limit, SOCKETS_LIMIT_MAX);
    assert.equal(body.sockets.length, SOCKETS_LIMIT_MAX);
    assert.equal((await app.inject('/sockets?limit=7')).json<{ sockets: unknown[] }>().sockets.length, 7);
  });
  it('is 503 before the first poll', async () => {
    const app = await setup(false);
    assert.equal((await app.inject('/sockets')).statusCode, 503);
  });
  it('returns the worst sockets by Send-Q as JSON, with peers', async () => {
    const app = await setup();
    const res = await app.inject('/sockets');
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /application\/json/);
    const body = res.json<{ sockets: Array<{ peer: string; sendQueue: number; port: string; state: string }> }>();
    assert.deepEqual(body.sockets.map((s) => s.sendQueue), [9000, 8000, 7000, 50, 0]);
    assert.equal(body.sockets[0]!.peer, '10.0.0.9:5001');
    assert.equal(body.sockets[0]!.port, '443');
  });
  it('filters by state and port, limits', async () => {
    const app = await setup();
    const body = (await app.inject('/sockets?state=fin_wait1&port=443&limit=1')).json<{ sockets: Array<{ sendQueue: number }> }>();
    assert.deepEqual(body.sockets.map((s) => s.sendQueue), [9000]);
    const other = (await app.inject('/sockets?state=fin_wait1&port=other')).json<{ sockets: Array<{ sendQueue: number }> }>();
    assert.deepEqual(other.sockets.map((s) => s.sendQueue), [8000]);
  });
  it('sorts by age, oldest first (ages from polls 30 s apart; Send-Q order differs)', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    const records: SocketRecord[] = [RECORDS[0]!, RECORDS[2]!]; // 7000 bytes, from the first poll
    const poller = fakeProcPoller(records);
    await poller.poll();
    t.mock.timers.tick(30_000);
    records.push(RECORDS[1]!); // 9000 bytes, 30 s younger
    await poller.poll();
    t.mock.timers.tick(30_000);
    records.push(RECORDS[3]!); // 8000 bytes, new
    await poller.poll();
    const app = buildApp({ registry: createRegistry({ view: poller, version: 't' }), view: poller, telemetryPath: '/metrics', version: 't', logger: silent, sockets: true });
    const body = (await app.inject('/sockets?sort=age')).json<{ sockets: Array<{ state: string; sendQueue: number; ageSeconds: number }> }>();
    assert.deepEqual(body.sockets.map((s) => [s.state, s.sendQueue, s.ageSeconds]), [['fin_wait1', 7000, 60], ['fin_wait1', 9000, 30], ['fin_wait1', 8000, 0]]);
  });
  it('serves an escaped HTML table to browsers', async () => {
    const app = await setup();
    const res = await app.inject({ url: '/sockets', headers: { accept: 'text/html,application/xhtml+xml' } });
    assert.match(res.headers['content-type'] as string, /text\/html/);
    assert.match(res.body, /<td>10\.0\.0\.9:5001<\/td>/);
    assert.doesNotMatch(res.body, /<script>/);
    assert.match(res.body, /&#60;script&#62;/);
  });
  it('rejects bad parameters with 400', async () => {
    const app = await setup();
    for (const q of ['sort=bytes', 'state=FIN_WAIT-9', 'port=abc', 'limit=0']) {
      assert.equal((await app.inject(`/sockets?${q}`)).statusCode, 400, q);
    }
  });
  it("takes ss's spellings of a state, and lists the accepted values when it knows none", async () => {
    const app = await setup();
    const want = (await app.inject('/sockets?state=fin_wait1')).json<{ state: string; sockets: unknown[] }>();
    assert.ok(want.sockets.length > 0);
    for (const spelling of ['fin-wait-1', 'FIN-WAIT-1', 'Fin-Wait-1']) {
      const res = await app.inject(`/sockets?state=${spelling}`);
      assert.equal(res.statusCode, 200, spelling);
      assert.deepEqual(res.json(), want, spelling);
    }
    const bad = await app.inject('/sockets?state=finwait');
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /state must be one of established, syn_sent, .*fin_wait1.*closing \(ss spellings are accepted too: fin-wait-1/);
  });
  it('peer networks of every FIN-WAIT-1 socket (not only the listed ones), JSON and HTML', async () => {
    const app = await setup();
    const body = (await app.inject('/sockets?state=established&limit=1')).json<{ peerNetworks: unknown }>();
    assert.deepEqual(body.peerNetworks, {
      ipv4Prefix: 24, ipv6Prefix: 64, networks: 1, top: [{ network: '10.0.0.0/24', sockets: 3, bytes: 24000 }], labelled: [], metricsTop: 0, sockets: 3, bytes: 24000, uncounted: 0,
    });
    const html = (await app.inject({ url: '/sockets', headers: { accept: 'text/html' } })).body;
    assert.match(html, /<h2>Peer networks of FIN-WAIT-1 sockets \(IPv4 \/24, IPv6 \/64\)<\/h2>/);
    assert.match(html, /<tr><td>10\.0\.0\.0\/24<\/td><td>3<\/td><td>24000<\/td><\/tr>/);
  });

  it('owners: looked up once per poll for the listeners and the sockets kept; orphans have none, unknown ones []', async () => {
    const asked: number[][] = [];
    const lookup = async (inodes: ReadonlySet<number>): Promise<OwnerLookup> => {
      asked.push([...inodes].sort((a, b) => a - b));
      return {
        owners: new Map([[41, [{ pid: 812, comm: 'nginx' }, { pid: 813, comm: 'nginx' }]], [77, [{ pid: 900, comm: 'app' }]]]),
        processes: 120, scannedProcesses: 120, scannedFds: 3000, denied: 4, stoppedBy: null, elapsedMs: 12,
      };
    };
    const records = [
      rec({ state: 'listen', localPort: 443, remotePort: 0, inode: 41 }),
      rec({ state: 'listen', localPort: 8080, remotePort: 0, inode: 42 }),
      rec({ state: 'fin_wait1', localPort: 443, remoteAddress: '10.0.0.9', remotePort: 5001, sendQueue: 9000, inode: 0 }),
      rec({ state: 'established', localPort: 443, remoteAddress: '10.0.0.5', remotePort: 5004, sendQueue: 50, inode: 77 }),
      rec({ state: 'established', localPort: 8080, remoteAddress: '10.0.0.6', remotePort: 5005, sendQueue: 40, inode: 78 }),
    ];
    const app = await setup(true, true, records, lookup);
    type Answer = { sockets: Array<{ state: string; sendQueue: number; owners: unknown }>; listeners: unknown; ownerScan: { denied: number } };
    const body = (await app.inject('/sockets')).json<Answer>();
    assert.deepEqual(body.sockets.filter((x) => x.state !== 'listen').map((x) => [x.state, x.sendQueue, x.owners]), [
      ['fin_wait1', 9000, null],
      ['established', 50, [{ pid: 900, comm: 'app' }]],
      ['established', 40, []],
    ]);
    assert.deepEqual(body.listeners, [{ port: '443', owners: [{ pid: 812, comm: 'nginx' }, { pid: 813, comm: 'nginx' }] }, { port: '8080', owners: [] }]);
    assert.equal(body.ownerScan.denied, 4);
    // One lookup for this poll however many requests; the listeners' and the kept sockets' inodes.
    await app.inject('/sockets?sort=age');
    await app.inject({ url: '/sockets', headers: { accept: 'text/html' } });
    assert.deepEqual(asked, [[41, 42, 77, 78]]);
    await app.poller.poll();
    await app.inject('/sockets');
    assert.equal(asked.length, 2);
    const html = (await app.inject({ url: '/sockets', headers: { accept: 'text/html' } })).body;
    assert.match(html, /<td>app \(900\)<\/td><\/tr>/);
    assert.match(html, /<tr><td>443<\/td><td>nginx \(812\), nginx \(813\)<\/td><\/tr>/);
    assert.match(html, /4 processes not readable \(another user's: needs CAP_SYS_PTRACE\)/);
  });

  it('without an owner lookup (tests, --web.sockets off paths) no owners are claimed', async () => {
    const body = (await (await setup()).inject('/sockets')).json<{ sockets: Array<{ owners: unknown }>; listeners: unknown }>();
    assert.ok(body.sockets.every((x) => x.owners === null));
    assert.equal(body.listeners, null);
  });

  it('the HTML view links to the other sorts, states and ports, keeping the other parameters', async () => {
    const app = await setup();
    const res = await app.inject({ url: '/sockets?state=fin-wait-1&limit=5', headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /<a href="\/sockets\?state=fin_wait1&#38;limit=5&#38;sort=age">age<\/a>/);
    assert.match(res.body, /<b>Send-Q<\/b>/);
    assert.match(res.body, /<a href="\/sockets\?limit=5">all<\/a>/);
    assert.match(res.body, /<a href="\/sockets\?state=fin_wait1&#38;limit=5&#38;port=443">443<\/a>/);
  });
  it('lists the sockets of the poll it names, even when a poll completes during the owner lookup', async () => {
    // Seen in the real-kernel lab test under load: takenAt (and owners) of one poll, the list of the
    // next, whose persist timers had moved on.
    const records = [rec({ state: 'fin_wait1', localPort: 443, remoteAddress: '10.0.0.9', remotePort: 5001, sendQueue: 9000, inode: 0, timer: 'persist', timerSeconds: 1.5 })];
    const ref: { app?: Awaited<ReturnType<typeof setup>> } = {};
    const findOwners = async (): Promise<OwnerLookup> => {
      // The next poll lands while /proc is being scanned: the timer has fired meanwhile.
      records[0] = { ...records[0]!, timerSeconds: 0 };
      await new Promise((r) => setTimeout(r, 5));
      await ref.app!.poller.poll();
      return { owners: new Map(), processes: 0, scannedProcesses: 0, scannedFds: 0, denied: 0, elapsedMs: 0, stoppedBy: null };
    };
    const app = (ref.app = await setup(true, true, records, findOwners));
    const first = app.poller.snapshot()!;
    const body = (await app.inject('/sockets?state=fin_wait1')).json<{ takenAt: string; sockets: Array<{ timerSeconds: number }> }>();
    assert.notEqual(app.poller.snapshot(), first, 'a poll completed during the request');
    assert.equal(body.takenAt, new Date(first.takenAtMs).toISOString());
    assert.deepEqual(body.sockets.map((s) => s.timerSeconds), [1.5], 'the sockets of that same poll');
  });
});
