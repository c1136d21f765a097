import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runChild } from '../../src/sources/child.ts';
import { ssReader } from '../../src/sources/ss.ts';
import { runReader } from '../helpers/readers.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;

describe('a child killed at its timeout while still writing', () => {
  // Node's default for an unhandled rejection is to end the process: the exporter crashed.
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));

  it('reports the timeout and leaves no rejection unhandled (slow consumer: output still flowing at the kill)', async () => {
    const run = {
      path: `${FIX}bin/ss-spew`,
      args: [],
      deadline: Date.now() + 150,
      signal: new AbortController().signal,
      pathFlag: '--ss.path',
      timeoutFlag: '--ss.timeout',
      timeoutMs: 150,
      missingHint: 'install iproute2',
    };
    const error = await runChild(run, () => new Promise((r) => setTimeout(r, 5)));
    await new Promise((r) => setTimeout(r, 50));
    assert.match(error?.message ?? '', /ss-spew killed after --ss\.timeout=150ms/);
    assert.deepEqual(unhandled.map(String), []);
  });

  it('through the ss source, poll after poll', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await runReader(ssReader({ path: `${FIX}bin/ss-spew`, timeoutMs: 100 }), new AbortController().signal);
      assert.equal(r.up, false);
      assert.match(r.error!.message, /killed after --ss\.timeout=100ms/);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled.map(String), []);
  });
});

describe('a child that writes a lot on stderr', () => {
  it('is read whole: ss under `ip netns exec` warns once per socket on stderr (> 16 KiB) while its table is complete', async () => {
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-cgroup-noise`, timeoutMs: 10_000 }), new AbortController().signal);
    const clean = await runReader(ssReader({ path: `${FIX}bin/ss-v61`, timeoutMs: 10_000 }), new AbortController().signal);
    assert.equal(r.error?.message, undefined);
    assert.equal(r.up, true);
    assert.ok(r.records > 0, 'records read');
    assert.equal(r.records, clean.records);
  });
});

describe('a program path relative to the working directory', () => {
  it('runs from there although the child itself starts in /', async () => {
    const rel = 'test/fixtures/bin/ss-v61';
    const cwd = process.cwd();
    process.chdir(new URL('../../', import.meta.url).pathname);
    try {
      const r = await runReader(ssReader({ path: rel, timeoutMs: 10_000 }), new AbortController().signal);
      assert.equal(r.error?.message, undefined);
      assert.ok(r.records > 0);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('a grandchild holding stdout past the deadline', () => {
  it('gives the same message at every poll, whichever of execa\'s timer and ours fires first (the log says a failure once, by its message)', async () => {
    const messages = new Set<string>();
    // 600 ms: ss-grandchild's own table is written well before (on a loaded machine too).
    for (let i = 0; i < 6; i++) {
      const r = await runReader(ssReader({ path: `${FIX}bin/ss-grandchild`, timeoutMs: 600 }), new AbortController().signal);
      messages.add(r.error?.message ?? 'up');
    }
    assert.deepEqual([...messages], ['ss-grandchild killed after --ss.timeout=600ms (a process it started held its output open)']);
  });
});
