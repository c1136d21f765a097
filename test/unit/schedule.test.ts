// The poll schedule (src/poller/schedule.ts): ticks on the wall clock's multiples of --poll.interval
// in local time, the instants node-cron fired at, without node-cron's Intl calls. A fake clock
// separates the wall clock (Date.now, which an operator or NTP may set) from the monotonic one
// timers run on, so setting the clock back or forward is tested as it happens on a host.

import assert from 'node:assert/strict';
import { after, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { Poller } from '../../src/poller/poller.ts';
import { SYSTEM_CLOCK, WallClockSchedule, isWallClockInterval, nextTick, type ScheduleClock } from '../../src/poller/schedule.ts';
import type { TableReader } from '../../src/sources/source.ts';
import { okReader, rec } from '../helpers/readers.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const iso = (ms: number) => new Date(ms).toISOString();
const at = (text: string) => Date.parse(text);

/** A wall clock that can be set apart from the monotonic clock timers run on. */
class FakeClock implements ScheduleClock {
  mono = 0;
  /** Timers fire this much after their delay (a blocked event loop). */
  lag = 0;
  private timers = new Map<number, { due: number; fn: () => void }>();
  private ids = 0;
  /**
   * @param wall wall-clock time now
   * @param offset local time minus UTC at an instant, minutes
   * @param early a timer fires this many ms before its delay is over (the wall clock and timers round apart)
   */
  constructor(
    public wall: number,
    private readonly offset: (ms: number) => number = () => 0,
    private readonly early = 0,
  ) {}
  now = () => this.wall;
  utcOffsetMinutes = (ms: number) => this.offset(ms);
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(++this.ids, { due: this.mono + (ms > this.early ? ms - this.early : Math.min(ms, 1)) + this.lag, fn });
    return this.ids;
  };
  clearTimeout = (handle: unknown) => void this.timers.delete(handle as number);
  pending(): number {
    return this.timers.size;
  }
  /** Lets `ms` pass on both clocks, firing the timers due on the way, in order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const next = [...this.timers.entries()].sort((a, b) => a[1].due - b[1].due)[0];
      if (next === undefined || next[1].due > end) break;
      this.timers.delete(next[0]);
      this.wall += next[1].due - this.mono;
      this.mono = next[1].due;
      next[1].fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }
  /** Sets the wall clock (date -s, an NTP step): timers keep their monotonic deadlines. */
  jump(ms: number): void {
    this.wall += ms;
  }
}

/** Runs a schedule on a fake clock; the wall-clock time of each tick. */
function ticking(intervalMs: number, clock: FakeClock) {
  const ticks: number[] = [];
  const schedule = new WallClockSchedule(intervalMs, () => ticks.push(clock.now()), clock);
  schedule.start();
  return { ticks, schedule };
}

/** Every interval --poll.interval accepts. */
const ACCEPTED = Array.from({ length: 86_400 }, (_, i) => (i + 1) * S).filter(isWallClockInterval);

describe('WallClockSchedule: the instants node-cron fired at', () => {
  it('accepts the 30 intervals node-cron could fire steadily: seconds dividing a minute, minutes an hour, hours a day', () => {
    assert.deepEqual(
      ACCEPTED.map((ms) => (ms < M ? `${ms / S}s` : ms < H ? `${ms / M}m` : `${ms / H}h`)).join(' '),
      '1s 2s 3s 4s 5s 6s 10s 12s 15s 20s 30s 1m 2m 3m 4m 5m 6m 10m 12m 15m 20m 30m 1h 2h 3h 4h 6h 8h 12h 24h',
    );
  });

  const start = at('2026-11-30T14:07:13.500Z');
  const table: Array<[string, number, string[]]> = [
    ['1s', S, ['14:07:14', '14:07:15', '14:07:16']],
    ['15s', 15 * S, ['14:07:15', '14:07:30', '14:07:45', '14:08:00', '14:08:15']],
    ['30s', 30 * S, ['14:07:30', '14:08:00', '14:08:30']],
    ['1m', M, ['14:08:00', '14:09:00']],
    ['5m', 5 * M, ['14:10:00', '14:15:00', '14:20:00']],
    ['20m', 20 * M, ['14:20:00', '14:40:00', '15:00:00']],
    ['1h', H, ['15:00:00', '16:00:00']],
    ['2h', 2 * H, ['16:00:00', '18:00:00', '20:00:00']],
    ['8h', 8 * H, ['16:00:00', '00:00:00', '08:00:00']],
    ['24h', 24 * H, ['00:00:00', '00:00:00']],
  ];
  for (const [name, ms, want] of table) {
    it(`${name} from 14:07:13.5 UTC ticks at ${want.join(', ')}`, () => {
      const clock = new FakeClock(start);
      const { ticks } = ticking(ms, clock);
      clock.advance(want.length * ms);
      assert.deepEqual(ticks.map((t) => iso(t).slice(11, 19)), want);
    });
  }

  it('every accepted interval: each tick on a multiple of its field, one interval apart, the first within one interval', () => {
    for (const ms of ACCEPTED) {
      const clock = new FakeClock(start);
      const { ticks } = ticking(ms, clock);
      clock.advance(5 * ms);
      assert.equal(ticks.length, 5, `${ms} ms`);
      assert.ok(ticks[0]! > start && ticks[0]! <= start + ms, `${ms} ms: first tick ${iso(ticks[0]!)}`);
      for (const [i, t] of ticks.entries()) {
        const d = new Date(t);
        const field = ms < M ? d.getUTCSeconds() * S : ms < H ? d.getUTCMinutes() * M : d.getUTCHours() * H;
        const below = ms < M ? d.getUTCMilliseconds() : ms < H ? d.getUTCSeconds() * S + d.getUTCMilliseconds() : (t % H);
        assert.deepEqual([field % ms, below], [0, 0], `${ms} ms: tick ${iso(t)}`);
        if (i > 0) assert.equal(t - ticks[i - 1]!, ms, `${ms} ms: ${iso(ticks[i - 1]!)} -> ${iso(t)}`);
      }
    }
  });

  it('follows local time: 30m at UTC+5:45 ticks at :15 and :45 UTC, 2h at UTC+1 on odd UTC hours; seconds ignore the zone', () => {
    const kathmandu = new FakeClock(at('2026-11-30T14:07:00Z'), () => 5 * 60 + 45);
    const k = ticking(30 * M, kathmandu);
    kathmandu.advance(H);
    assert.deepEqual(k.ticks.map(iso), ['2026-11-30T14:15:00.000Z', '2026-11-30T14:45:00.000Z']);
    const berlin = new FakeClock(at('2026-11-30T14:07:00Z'), () => 60);
    const b = ticking(2 * H, berlin);
    berlin.advance(4 * H);
    assert.deepEqual(b.ticks.map(iso), ['2026-11-30T15:00:00.000Z', '2026-11-30T17:00:00.000Z']);
    assert.equal(nextTick(at('2026-11-30T14:07:13Z'), 15 * S, () => 5 * 60 + 45), at('2026-11-30T14:07:15Z'));
  });

  // Europe/Berlin in 2026: UTC+1, UTC+2 from 2026-03-29T01:00Z, UTC+1 again from 2026-10-25T01:00Z.
  const berlin2026 = (ms: number) => (ms >= at('2026-03-29T01:00:00Z') && ms < at('2026-10-25T01:00:00Z') ? 120 : 60);

  it('daylight saving time starts: a local time the change skips is skipped (2h: 00:00, then 04:00)', () => {
    const clock = new FakeClock(at('2026-03-28T22:30:00Z'), berlin2026);
    const two = ticking(2 * H, clock);
    clock.advance(4 * H);
    assert.deepEqual(two.ticks.map(iso), ['2026-03-28T23:00:00.000Z', '2026-03-29T02:00:00.000Z']); // 00:00 CET, 04:00 CEST
    assert.deepEqual(
      [nextTick(at('2026-03-29T00:10:00Z'), 30 * M, berlin2026), nextTick(at('2026-03-29T00:30:00Z'), 30 * M, berlin2026)].map(iso),
      ['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z'], // 01:30 CET, then 03:00 CEST
    );
  });

  it('daylight saving time ends: the repeated hour keeps the cadence (node-cron left it out: no poll for an hour)', () => {
    const clock = new FakeClock(at('2026-10-25T00:50:00Z'), berlin2026); // 02:50 CEST
    const q = ticking(15 * S, clock);
    clock.advance(20 * M);
    assert.equal(q.ticks.length, 80);
    assert.ok(q.ticks.every((t, i) => i === 0 || t - q.ticks[i - 1]! === 15 * S));
    const two = nextTick(at('2026-10-24T22:30:00Z'), 2 * H, berlin2026);
    const then = nextTick(two, 2 * H, berlin2026);
    const last = nextTick(then, 2 * H, berlin2026);
    assert.deepEqual([two, then, last].map(iso), ['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T03:00:00.000Z']); // 02:00 CEST, 02:00 CET, 04:00 CET
  });

  const tz = process.env.TZ;
  after(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });
  it("the system clock reads the process's time zone (TZ=Europe/Berlin)", () => {
    process.env.TZ = 'Europe/Berlin';
    const ticks = [at('2026-10-24T22:30:00Z')];
    for (let i = 0; i < 3; i++) ticks.push(nextTick(ticks.at(-1)!, 2 * H, (ms) => SYSTEM_CLOCK.utcOffsetMinutes(ms)));
    assert.deepEqual(ticks.slice(1).map(iso), ['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T03:00:00.000Z']);
  });
});

describe('WallClockSchedule: timers and the wall clock', () => {
  it('a timer that wakes a millisecond early waits for the boundary: each boundary fires once', () => {
    const clock = new FakeClock(at('2026-11-30T14:07:13.500Z'), () => 0, 1);
    const { ticks } = ticking(15 * S, clock);
    clock.advance(60 * S);
    assert.deepEqual(ticks.map((t) => iso(t).slice(11, 23)), ['14:07:15.000', '14:07:30.000', '14:07:45.000', '14:08:00.000']);
  });

  it('a late timer ticks once, then the next boundary from now (no drift, no catching up)', () => {
    const clock = new FakeClock(at('2026-11-30T14:07:13.500Z'));
    const { ticks, schedule } = ticking(15 * S, clock);
    clock.advance(2 * S); // 14:07:15: first tick
    assert.equal(schedule.nextDue(), at('2026-11-30T14:07:30Z'));
    // That timer was armed before the loop blocked; the next one wakes 40 s late.
    clock.lag = 40 * S;
    clock.advance(15 * S); // 14:07:30
    clock.lag = 0;
    clock.advance(105 * S);
    assert.deepEqual(ticks.map((t) => iso(t).slice(11, 19)), ['14:07:15', '14:07:30', '14:08:25', '14:08:30', '14:08:45', '14:09:00', '14:09:15']);
  });

  it('the wall clock set back 3 h: ticks go on within an interval, on the new clock (no 3 h stall)', () => {
    const clock = new FakeClock(at('2026-11-30T14:07:13.500Z'));
    const { ticks } = ticking(15 * S, clock);
    clock.advance(2 * S); // ticked 14:07:15
    clock.jump(-3 * H); // 11:07:15.5: the timer still wakes 15 s later (monotonic), at 11:07:30.5
    clock.advance(45 * S);
    assert.deepEqual(ticks.map((t) => iso(t).slice(11, 19)), ['14:07:15', '11:07:45', '11:08:00']);
  });

  it('the wall clock set forward 3 h: one tick, not 720, then the new clock boundaries', () => {
    const clock = new FakeClock(at('2026-11-30T14:07:13.500Z'));
    const { ticks } = ticking(15 * S, clock);
    clock.advance(2 * S);
    clock.jump(3 * H + 5 * S); // 17:07:20.5: the timer armed for 14:07:30 wakes at 17:07:35
    clock.advance(25 * S);
    assert.deepEqual(ticks.map((t) => iso(t).slice(11, 23)), ['14:07:15.000', '17:07:35.000', '17:07:45.000']);
  });

  it('stop() cancels the armed timer, also from inside a tick, and start() again resumes', () => {
    const clock = new FakeClock(at('2026-11-30T14:07:13.500Z'));
    const { ticks, schedule } = ticking(S, clock);
    assert.equal(clock.pending(), 1);
    schedule.stop();
    assert.equal(clock.pending(), 0);
    assert.equal(schedule.nextDue(), undefined);
    clock.advance(10 * S);
    assert.deepEqual(ticks, []);
    const inside = new WallClockSchedule(S, () => inside.stop(), clock);
    inside.start();
    clock.advance(5 * S);
    assert.equal(clock.pending(), 0);
    schedule.start();
    clock.advance(2 * S);
    assert.equal(ticks.length, 2);
  });

  it('refuses an interval the wall clock cannot keep', () => {
    for (const ms of [0, 7 * S, 90 * S, 5 * H]) assert.throws(() => new WallClockSchedule(ms, () => undefined), RangeError);
  });

  it('real timers: ticks never come before their boundary, each boundary once', async () => {
    const ticks: number[] = [];
    let done = () => undefined as void;
    const three = new Promise<void>((resolve) => (done = resolve));
    const schedule = new WallClockSchedule(S, () => {
      ticks.push(Date.now());
      if (ticks.length === 3) done();
    });
    schedule.start();
    await three;
    schedule.stop();
    const seconds = ticks.map((t) => Math.floor(t / S));
    assert.deepEqual(seconds, [seconds[0], seconds[0]! + 1, seconds[0]! + 2], ticks.map(iso).join(' '));
  });
});

describe('Poller on the schedule', () => {
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  /** A table reader whose reads end when the test says so. */
  function gated(): { reader: TableReader; open: () => void; reads: () => number } {
    let reads = 0;
    let release: (() => void) | undefined;
    const reader: TableReader = {
      source: 'proc_tcp',
      families: ['ipv4'],
      read: async (sink) => {
        reads++;
        await new Promise<void>((r) => (release = r));
        sink.record(rec({ state: 'established' }));
      },
    };
    return { reader, open: () => release?.(), reads: () => reads };
  }

  it('polls at start, then at each boundary; a tick while a poll runs is skipped and counted; stop() leaves no timer', async () => {
    const clock = new FakeClock(at('2026-11-30T14:07:13.500Z'));
    const g = gated();
    const p = new Poller({ sources: { table: [{ name: 'proc', readers: [g.reader] }], kernel: [] }, intervalMs: 15 * S, logger: pino({ level: 'silent' }), clock });
    const first = p.start();
    await settle();
    assert.equal(g.reads(), 1);
    clock.advance(45 * S); // 3 ticks while the first poll runs
    assert.deepEqual([g.reads(), p.stats().pollsSkippedTotal], [1, 3]);
    g.open();
    await first;
    assert.equal(p.stats().pollsTotal, 1);
    clock.advance(15 * S); // 14:08:15: a new poll
    await settle();
    assert.equal(g.reads(), 2);
    g.open();
    await p.stop();
    assert.deepEqual([p.stats().pollsTotal, p.stats().pollsSkippedTotal, clock.pending()], [1, 3, 0]); // the poll cut by stop() is not published
  });

  it('never formats a date with Intl (node-cron did at every tick: ~12 MiB of ICU pages per process)', async () => {
    const calls = (['formatToParts', 'formatRange', 'resolvedOptions'] as const).map((m) => mock.method(Intl.DateTimeFormat.prototype, m));
    const ctor = mock.method(Intl, 'DateTimeFormat');
    try {
      let third = () => undefined as void;
      const published = new Promise<void>((resolve) => (third = resolve));
      let polls = 0;
      const p = new Poller({
        sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], [rec({ state: 'established' })])] }], kernel: [] },
        intervalMs: S,
        logger: pino({ level: 'silent' }),
        onPublish: () => (++polls === 3 ? third() : undefined),
      });
      await p.start();
      await published; // the first poll and two scheduled ones
      await p.stop();
      assert.deepEqual([ctor, ...calls].map((c) => c.mock.callCount()), [0, 0, 0, 0], 'Intl.DateTimeFormat, formatToParts, formatRange, resolvedOptions');
    } finally {
      mock.restoreAll();
    }
  });
});
