// The daemon polls in a worker thread (src/poller/thread.ts, worker.ts) and the HTTP thread reads
// what it publishes: the snapshot that crosses the thread boundary must be the poller's own, and a
// poll thread that dies must neither take the exporter down nor make its counters go back.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseConfig } from '../../src/config.ts';
import { livePoller } from '../../src/poller/live-poller.ts';
import { POLL_THREAD_NICE, threadId } from '../../src/poller/priority.ts';
import { PollThread } from '../../src/poller/thread.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import { silent } from '../helpers/poller.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What does not depend on when the poll ran. */
function timeless(s: Snapshot | undefined): unknown {
  assert.ok(s !== undefined);
  return { ...s, takenAtMs: 0, pollDurationSeconds: 0, sources: s.sources.map((o) => ({ ...o, durationSeconds: 0 })) };
}

describe('the poll thread', () => {
  it('publishes the snapshot the same poller makes in-process (forensics, ports, kernel figures included)', async () => {
    const argv = ['--source', 'proc', '--path.procfs', `${ROOT}test/fixtures/lab-proc`, '--poll.interval', '1h', '--log.level', 'error'];
    const config = parseConfig(argv, {}, 'test');
    const thread = new PollThread({ config, logger: silent, restartDelayMs: 1000 });
    await thread.start();
    const local = livePoller(config, silent);
    await local.start();
    try {
      const crossed = thread.snapshot();
      assert.ok(crossed?.forensics !== undefined && crossed.forensics.ports.size > 0, 'the fixture has attributed ports');
      assert.deepEqual(timeless(crossed), timeless(local.snapshot()));
      assert.equal(thread.stats().pollsTotal, 1);
      // Its own heap, which the HTTP thread's nodejs_heap_* do not describe; none for an in-process poller.
      const heap = thread.stats().pollThreadHeap;
      assert.ok(heap !== undefined, 'the poll thread reports its heap');
      assert.ok(heap.usedBytes > 1e6 && heap.usedBytes <= heap.totalBytes, JSON.stringify(heap));
      assert.ok(heap.externalBytes > 0, JSON.stringify(heap));
      assert.equal(local.stats().pollThreadHeap, undefined);
    } finally {
      await local.stop();
      await thread.stop();
    }
  });

  it('a poll thread that dies is logged once, its snapshot kept, a new one started, and counters carried over', async () => {
    const lines: Array<{ msg: string; level: number }> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string; level: number }) });
    const config = parseConfig([], {}, 'test');
    const thread = new PollThread({ config, logger, restartDelayMs: 50, workerUrl: new URL('../fixtures/poll-thread/crashing-worker.ts', import.meta.url) });
    await thread.start();
    const first = thread.snapshot();
    assert.ok(first !== undefined);
    while (thread.threads < 3) await sleep(10);
    await thread.stop();
    // Every thread published one poll and two parse errors before it died: nothing went back.
    assert.ok(thread.stats().pollsTotal >= 2, `pollsTotal ${thread.stats().pollsTotal}`);
    assert.equal(thread.stats().parseErrorsTotal.get('proc_tcp'), 2 * thread.stats().pollsTotal);
    // And one FIN-WAIT-1 socket that vanished after 330 s: the lifetime histogram is cumulative across threads.
    const { exits, lifetime } = thread.stats().finWait1Exits;
    assert.deepEqual([exits.vanished, lifetime.vanished.count, lifetime.vanished.sum], [thread.stats().pollsTotal, thread.stats().pollsTotal, 330 * thread.stats().pollsTotal]);
    assert.ok(thread.snapshot() !== undefined);
    const died = lines.filter((l) => /poll thread ended unexpectedly \(exit 1\): serving the last snapshot/.test(l.msg));
    assert.equal(died.length, lines.length, 'one line per ended thread, nothing else');
    assert.ok(died.length >= 2 && died.every((l) => l.level === 50), JSON.stringify(lines));
  });

  it('a poll thread that cannot even load says why in its one line', async () => {
    const lines: Array<{ msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
    const thread = new PollThread({ config: parseConfig([], {}, 'test'), logger, restartDelayMs: 60_000, workerUrl: new URL('../fixtures/poll-thread/missing.js', import.meta.url) });
    await thread.start();
    await thread.stop();
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(lines[0]!.msg, /poll thread ended unexpectedly \(exit 1: Cannot find module .*missing\.js/);
  });

  it('stop() ends the thread, and a stopped thread is not restarted', async () => {
    const config = parseConfig(['--source', 'proc', '--path.procfs', `${ROOT}test/fixtures/proc`, '--poll.interval', '1s'], {}, 'test');
    const thread = new PollThread({ config, logger: silent, restartDelayMs: 10 });
    await thread.start();
    assert.equal(thread.running, true);
    await thread.stop();
    assert.equal(thread.running, false);
    await sleep(100);
    assert.equal(thread.running, false);
    assert.equal(thread.threads, 1);
  });
});

describe('the poll thread yields the CPU to scrapes', () => {
  /** nice values (field 19 of /proc/self/task/TID/stat) of this process's threads, by name. */
  function threadNices(): Map<number, { name: string; nice: number }> {
    const out = new Map<number, { name: string; nice: number }>();
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { name, nice: Number(fields[16]) });
    }
    return out;
  }

  it('runs at nice 10 while this (HTTP) thread keeps its priority', async () => {
    const before = threadNices();
    const config = parseConfig(['--source', 'proc', '--path.procfs', `${ROOT}test/fixtures/proc`, '--poll.interval', '1h'], {}, 'test');
    const thread = new PollThread({ config, logger: silent, restartDelayMs: 1000 });
    await thread.start();
    try {
      const niced = [...threadNices()].filter(([tid, t]) => !before.has(tid) && t.nice === POLL_THREAD_NICE);
      assert.equal(niced.length, 1, JSON.stringify([...threadNices()]));
      assert.equal(getPriority(threadId()), before.get(threadId())!.nice);
    } finally {
      await thread.stop();
    }
  });
});
