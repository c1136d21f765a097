import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseSsTimer, parseSsTimerValue } from '../../src/parsers/ss-timer.ts';

// Every form print_ms_timer() has produced (docs/kernel-and-ss.md#ss-timer-format).
const TABLE: ReadonlyArray<[string, number | undefined]> = [
  ['', 0],
  ['096ms', 0.096],
  ['476ms', 0.476],
  ['1sec', 1],
  ['1.140ms', 1.14], // iproute2 < 6.11: "ms" after a fraction means seconds
  ['1.140sec', 1.14], // iproute2 >= 6.11
  ['3.612ms', 3.612],
  ['12sec', 12],
  ['1min1sec', 61],
  ['1min59sec', 119],
  ['2min', 120],
  ['10min', 600],
  ['119min', 7140],
  ['71582min', 4294920],
  // malformed
  ['sec', undefined],
  ['1.14ms', undefined],
  ['1.1400ms', undefined],
  ['1min', 60],
  ['1minx', undefined],
  ['-1sec', undefined],
  ['12', undefined],
  ['1.140', undefined],
  ['abc', undefined],
  ['1 sec', undefined],
];

describe('parseSsTimerValue', () => {
  for (const [input, want] of TABLE) {
    it(`"${input}" → ${String(want)}`, () => assert.equal(parseSsTimerValue(input), want));
  }
});

/** iproute2 print_ms_timer(), re-stated from docs/kernel-and-ss.md#ss-timer-format as the reference the parser must invert. */
function printMsTimer(timeout: number, newSuffix: boolean): string {
  let out = '';
  let secs = Math.floor(timeout / 1000);
  const min = Math.floor(secs / 60);
  secs %= 60;
  let msec = timeout % 1000;
  if (min) {
    msec = 0;
    out += `${min}min`;
    if (min > 9) secs = 0;
  }
  if (secs) {
    if (secs > 9) msec = 0;
    out += `${secs}${msec ? '.' : 'sec'}`;
  }
  if (msec) out += `${String(msec).padStart(3, '0')}${secs && newSuffix ? 'sec' : 'ms'}`;
  return out;
}

describe('parseSsTimerValue against print_ms_timer()', () => {
  it('inverts every value up to 1 day, old and new suffix, within the printed resolution', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400_000 }), fc.boolean(), (ms, newSuffix) => {
        const text = printMsTimer(ms, newSuffix);
        const got = parseSsTimerValue(text);
        assert.notEqual(got, undefined, text);
        // Resolution: exact below 10 s, whole seconds below 10 min, whole minutes above.
        const resolution = ms < 10_000 ? 0 : ms < 600_000 ? 1000 : 60_000;
        const gotMs = Math.round(got! * 1000);
        assert.ok(gotMs <= ms && ms - gotMs < Math.max(resolution, 1), `${ms} ms printed "${text}" parsed ${got}`);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('parseSsTimer', () => {
  it('maps names to timer kinds and keeps the count', () => {
    assert.deepEqual(parseSsTimer('persist,1.524ms,0'), { kind: 'persist', seconds: 1.524, count: 0 });
    assert.deepEqual(parseSsTimer('on,3.200sec,2'), { kind: 'retransmit', seconds: 3.2, count: 2 });
    assert.deepEqual(parseSsTimer('keepalive,119min,0'), { kind: 'keepalive', seconds: 7140, count: 0 });
    assert.deepEqual(parseSsTimer('timewait,55sec,0'), { kind: 'timewait', seconds: 55, count: 0 });
    assert.deepEqual(parseSsTimer('persist,,0'), { kind: 'persist', seconds: 0, count: 0 });
  });
  it('keeps delack/unknown as a timer we do not export', () => {
    assert.deepEqual(parseSsTimer('delack,040ms,0'), { kind: undefined, seconds: 0.04, count: 0 });
    assert.deepEqual(parseSsTimer('unknown,040ms,0'), { kind: undefined, seconds: 0.04, count: 0 });
  });
  it('treats a wrapped overdue timer (kernel < 5.5 with ss >= 4.13) as due now', () => {
    assert.deepEqual(parseSsTimer('persist,71582min,0'), { kind: 'persist', seconds: 0, count: 0 });
  });
  it('rejects malformed timers', () => {
    for (const bad of ['', 'persist', 'persist,1sec', 'bogus,1sec,0', 'persist,1sec,', 'persist,1sec,x', 'persist,1xx,0', 'persist,1sec,-1']) {
      assert.equal(parseSsTimer(bad), undefined, bad);
    }
  });
});
