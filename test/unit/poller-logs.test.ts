// What the poller logs: one clear line per state change, naming the flag involved; no stack
// trace for an operational failure; nothing repeated every tick.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_NETLINK_HELPER } from '../../src/config.ts';
import { Poller } from '../../src/poller/poller.ts';
import { liveSources } from '../../src/sources/live.ts';
import type { TableAttempt, TableReader } from '../../src/sources/source.ts';
import { okReader, rec } from '../helpers/readers.ts';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

function poller(table: TableAttempt[], logger: pino.Logger): Poller {
  return new Poller({ sources: { table, kernel: [] }, intervalMs: 1000, logger });
}
const ss = (read: TableReader['read']): TableAttempt => ({ name: 'ss', readers: [{ source: 'ss', families: ['ipv4', 'ipv6'], read }] });

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const timedOut = () => new Error('ss killed after --ss.timeout=200ms', { cause: new Error('Command timed out after 200 milliseconds: ss -t -n') });

describe('poller logs', () => {
  it('a failing source: one line with its cause and the flag, no stack, not repeated; one line when it recovers', async () => {
    const { logger, lines } = capture();
    let fail = true;
    const p = poller([ss(async () => {
      if (fail) throw timedOut();
    })], logger);
    for (let i = 0; i < 3; i++) await p.poll();
    fail = false;
    await p.poll();
    await p.poll();
    assert.deepEqual(lines.map((l) => [l.level, l.source, l.msg]), [
      [50, 'ss', 'source down: ss killed after --ss.timeout=200ms: Command timed out after 200 milliseconds: ss -t -n'],
      [30, 'ss', 'source recovered'],
    ]);
    assert.doesNotMatch(JSON.stringify(lines), /stack| {4}at /);
  });

  it('a table of garbage: one line, whatever line happens to come first each poll', async () => {
    // Random bytes (the fault matrix's `ss` row) give another count of lines and another first
    // bad line every poll: the same failure, so one line, not one per poll.
    const { logger, lines } = capture();
    const firsts = ['unrecognised line', 'continuation line without a socket line', 'unrecognised line'];
    let poll = 0;
    const p = poller([ss(async (sink) => {
      sink.error(firsts[poll]!, '\u0001\u0002');
      for (let i = 0; i < 8000 + 97 * poll; i++) sink.error('unrecognised line', 'x');
      poll++;
    })], logger);
    for (let i = 0; i < 3; i++) await p.poll();
    assert.deepEqual(lines.map((l) => [l.level, l.source, l.msg]), [
      [50, 'ss', 'source down: no socket recognised: 8001 unparsable lines (first: unrecognised line)'],
    ]);
  });

  it('a poll slower than the interval: one line when ticks start being skipped, one when it ends', async () => {
    const { logger, lines } = capture();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = poller([ss(() => gate)], logger);
    const first = p.poll();
    for (let i = 0; i < 5; i++) void p.poll();
    release();
    await first;
    assert.equal(p.stats().pollsSkippedTotal, 5);
    assert.deepEqual(lines.map((l) => l.level), [40, 30]);
    assert.match(lines[0]!.msg, /ticks are skipped until it ends .*--poll\.interval/);
    assert.match(lines[1]!.msg, /after 5 skipped ticks/);
  });

  it('parse errors: a line when they start or their reason changes, not every poll', async () => {
    const { logger, lines } = capture();
    let errors = 2;
    const p = poller([ss((sink, signal) => okReader('ss', ['ipv4', 'ipv6'], [rec({})], errors).read(sink, signal))], logger);
    for (let i = 0; i < 3; i++) await p.poll();
    errors = 0;
    await p.poll();
    assert.deepEqual(lines.map((l) => [l.level, l.msg]), [
      [40, 'unparsable lines skipped: x'],
      [30, 'every line parses again'],
    ]);
    assert.equal(p.stats().parseErrorsTotal.get('ss'), 6);
  });

  it('--source=auto with a --netlink.helper path that is wrong: names the flag, not "not built"', async () => {
    const { logger, lines } = capture();
    const live = liveSources({ mode: 'auto', netlink: { path: '/opt/wrong/tcpstate-diag', timeoutMs: 1000 }, ss: { path: `${FIX}bin/ss-v61`, timeoutMs: 5000 }, procfs: `${FIX}proc` });
    const p = new Poller({ sources: { ...live, kernel: [] }, intervalMs: 1000, logger });
    await p.poll();
    await p.stop();
    assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[40, '--source=auto: --netlink.helper=/opt/wrong/tcpstate-diag is missing or not executable: skipped']]);
  });

  it('--source=auto with the default helper path not built: says so, at info', async () => {
    const { logger, lines } = capture();
    const live = liveSources({ mode: 'auto', netlink: { path: DEFAULT_NETLINK_HELPER, timeoutMs: 1000 }, ss: { path: `${FIX}bin/ss-v61`, timeoutMs: 5000 }, procfs: `${FIX}proc` });
    // As if `npm ci` had found no compiler: the default path, not installed.
    const table = live.table.map((a) => (a.name === 'netlink' ? { ...a, installed: async () => false } : a));
    const p = new Poller({ sources: { table, kernel: [] }, intervalMs: 1000, logger });
    await p.poll();
    await p.stop();
    assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[30, '--source=auto: the netlink helper is not built (npm run build:native needs gcc): skipped']]);
  });
});
