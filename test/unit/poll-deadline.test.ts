// One deadline per poll (issue 10 item 4): no source or file read can hang a poll, a FIFO under
// --path.procfs is refused at once, a process an ss wrapper leaves behind holding stdout is ended,
// and /healthz fails when the snapshot is too old to be true.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildApp } from '../../src/http/app.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { Poller } from '../../src/poller/poller.ts';
import type { Snapshot, SnapshotView } from '../../src/snapshot.ts';
import { kernelReaders } from '../../src/sources/kernel.ts';
import { procReaders } from '../../src/sources/proc.ts';
import { ssReader } from '../../src/sources/ss.ts';
import { runReader } from '../helpers/readers.ts';
import { FinWait1ExitTally } from '../../src/aggregate/forensics.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const silent = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), `tcpstate-deadline-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the fixture procfs with `file` (under it) replaced by a FIFO nobody writes to. */
function procfsWithFifo(file: string): string {
  const root = mkdtempSync(join(dir, 'proc-'));
  cpSync(`${FIX}proc`, root, { recursive: true });
  unlinkSync(join(root, file));
  execFileSync('mkfifo', [join(root, file)]);
  return root;
}

describe('a FIFO under --path.procfs', () => {
  it('net/tcp: the proc source is down at once, naming the file', async () => {
    const root = procfsWithFifo('net/tcp');
    const started = Date.now();
    const r = await runReader(procReaders(root)[0]!);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /net\/tcp is not a regular file/);
    assert.ok(Date.now() - started < 2000);
  });
  it('net/sockstat: the kernel-wide source is down at once, the others read', async () => {
    const root = procfsWithFifo('net/sockstat');
    const p = new Poller({ sources: { table: [{ name: 'proc', readers: procReaders(root) }], kernel: kernelReaders(root) }, intervalMs: 1000, logger: silent, timeoutMs: 5000 });
    const started = Date.now();
    await p.poll();
    assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
    const s = p.snapshot()!;
    assert.deepEqual(s.sources.filter((x) => !x.up).map((x) => x.source), ['sockstat']);
    assert.match(p.outcomes().find((o) => o.source === 'sockstat')!.error!.message, /net\/sockstat is not a regular file/);
  });
});

describe('the poll deadline (--poll.timeout)', () => {
  it('a source that never finishes is down when it passes; the poll is published', async () => {
    const never = new Promise<never>(() => undefined);
    const p = new Poller({
      sources: {
        table: [{ name: 'proc', readers: procReaders(`${FIX}proc`) }],
        kernel: [{ source: 'sockstat', read: () => never }],
      },
      intervalMs: 1000,
      logger: silent,
      timeoutMs: 300,
    });
    const started = Date.now();
    await p.poll();
    assert.ok(Date.now() - started < 2000);
    assert.equal(p.stats().pollsTotal, 1);
    const s = p.snapshot()!;
    assert.deepEqual(s.sources.map((x) => [x.source, x.up]), [['proc_tcp', true], ['proc_tcp6', true], ['sockstat', false]]);
    assert.equal(p.outcomes().find((o) => o.source === 'sockstat')!.error!.message, 'did not finish within --poll.timeout=300ms: abandoned');
    await p.stop();
  });
  it('shutdown does not wait for a hung source', async () => {
    const p = new Poller({
      sources: { table: [{ name: 'x', readers: [{ source: 'x', families: ['ipv4'], read: () => new Promise<never>(() => undefined) }] }], kernel: [] },
      intervalMs: 1000,
      logger: silent,
      timeoutMs: 60_000,
    });
    const polling = p.poll();
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await p.stop();
    await polling;
    assert.ok(Date.now() - started < 1000);
  });
});

describe('an ss wrapper whose background process holds stdout', () => {
  it('is ended at --ss.timeout with its whole process group, and says so', async () => {
    const started = Date.now();
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-grandchild`, timeoutMs: 500 }));
    assert.ok(Date.now() - started < 3000, `${Date.now() - started} ms`);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /ss-grandchild killed after --ss\.timeout=500ms \(a process it started held its output open\)/);
    // The background `sleep 29.5` is gone with its group.
    await new Promise((res) => setTimeout(res, 100));
    const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() === 'sleep 29.5');
    assert.deepEqual(left, []);
  });
});

describe('/healthz', () => {
  const app = (snapshot: Snapshot | undefined, maxSnapshotAgeMs?: number) => {
    const view: SnapshotView = {
      snapshot: () => snapshot,
      stats: () => ({ pollsTotal: 0, pollsSkippedTotal: 0, parseErrorsTotal: new Map(), untrackedTotal: 0, finWait1Exits: new FinWait1ExitTally().view() }),
    };
    return buildApp({ registry: createRegistry({ view, version: 't' }), view, telemetryPath: '/metrics', version: 't', logger: silent, maxSnapshotAgeMs });
  };
  const snap = (ageMs: number) => ({ takenAtMs: Date.now() - ageMs, pollDurationSeconds: 0, table: {}, forensics: undefined, peers: undefined, kernel: {}, sources: [] }) as unknown as Snapshot;
  it('200 while the snapshot is fresh, 503 once it is older than allowed', async () => {
    const fresh = app(snap(1000), 60_000);
    assert.equal((await fresh.inject('/healthz')).statusCode, 200);
    const stale = app(snap(120_000), 60_000);
    const res = await stale.inject('/healthz');
    assert.equal(res.statusCode, 503);
    assert.match(res.body, /^unhealthy: the latest poll completed 120 s ago \(more than 60 s: polls hang\)/);
  });
  it('503 when no poll completed for that long since the start (the first poll hangs)', async () => {
    const a = app(undefined, 50);
    assert.equal((await a.inject('/healthz')).statusCode, 200);
    await new Promise((r) => setTimeout(r, 100));
    const res = await a.inject('/healthz');
    assert.equal(res.statusCode, 503);
    assert.match(res.body, /no poll has completed since the start/);
  });
});
