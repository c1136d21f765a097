// The stop-signal handler: first signal stops gracefully, a second one or the deadline exits at once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stopSignalHandler } from '../../src/shutdown.ts';
import { silent } from '../helpers/poller.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function harness(stop: () => Promise<void>, deadlineMs = 5000) {
  const exits: number[] = [];
  let stops = 0;
  const handler = stopSignalHandler({
    stop: () => {
      stops++;
      return stop();
    },
    logger: silent,
    deadlineMs,
    exit: (code) => exits.push(code),
  });
  return { handler, exits, stops: () => stops };
}

describe('stop signals', () => {
  it('first signal: a graceful stop, then exit 0', async () => {
    const h = harness(async () => {
      await sleep(20);
    });
    h.handler('SIGTERM');
    assert.deepEqual(h.exits, []);
    await sleep(50);
    assert.deepEqual(h.exits, [0]);
  });

  it('a failing stop exits 1', async () => {
    const h = harness(async () => Promise.reject(new Error('close failed')));
    h.handler('SIGINT');
    await sleep(10);
    assert.deepEqual(h.exits, [1]);
  });

  it('a second signal while the stop hangs exits 1 at once, without a second stop', () => {
    const h = harness(() => new Promise<void>(() => undefined));
    h.handler('SIGTERM');
    h.handler('SIGTERM');
    assert.deepEqual(h.exits, [1]);
    assert.equal(h.stops(), 1);
  });

  it('a stop still running at the deadline exits 1', async () => {
    const h = harness(() => new Promise<void>(() => undefined), 30);
    h.handler('SIGTERM');
    await sleep(80);
    assert.deepEqual(h.exits, [1]);
  });
});
