// The poll schedule: a timer that fires on the wall clock's multiples of --poll.interval in local
// time (15s fires at :00, :15, :30, :45; 5m at :00, :05, … past each hour; 2h at 00:00, 02:00, …),
// the instants node-cron fired at for the same intervals. node-cron was replaced because it formats
// the date with Intl at every tick, which maps ~12 MiB of the node binary's ICU pages into every
// exporter (docs/performance.md, "Memory"); this needs Date only.
//
// Each next tick is computed from the current time (no drift), one boundary fires once (a timer may
// wake a millisecond early or late), and setting the wall clock back or forward costs at most about
// one interval (a timer runs on the monotonic clock): no stall for hours, no burst of ticks.

/** The wall clock and timers, injectable for tests. */
export interface ScheduleClock {
  /** Wall-clock time, ms since the epoch (Date.now). */
  now(): number;
  /** Local time minus UTC at that instant, in minutes (-Date#getTimezoneOffset). */
  utcOffsetMinutes(ms: number): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: ScheduleClock = {
  now: () => Date.now(),
  utcOffsetMinutes: (ms) => -new Date(ms).getTimezoneOffset(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * Whether an interval gives a steady cadence on the wall clock: whole seconds dividing a minute,
 * whole minutes dividing an hour, or whole hours dividing a day (--poll.interval's rule).
 */
export function isWallClockInterval(ms: number): boolean {
  if (!Number.isInteger(ms) || ms <= 0 || ms % 1000 !== 0) return false;
  if (ms < MINUTE) return MINUTE % ms === 0;
  if (ms < 3_600_000) return ms % MINUTE === 0 && 3_600_000 % ms === 0;
  return ms % 3_600_000 === 0 && ms <= DAY && DAY % ms === 0;
}

/**
 * The first instant after `afterMs` whose local wall-clock time is a multiple of `intervalMs`
 * (which divides a day, so that is its seconds, minutes or hours field being a multiple).
 * Intervals dividing a minute ignore the time zone (offsets are whole minutes). Across a change of
 * the offset (daylight saving time), local times the change skips are skipped and local times it
 * repeats fire each time they occur.
 */
export function nextTick(afterMs: number, intervalMs: number, utcOffsetMinutes: (ms: number) => number): number {
  const utcAligned = (Math.floor(afterMs / intervalMs) + 1) * intervalMs;
  if (MINUTE % intervalMs === 0) return utcAligned;
  let from = afterMs;
  let offset = utcOffsetMinutes(from) * MINUTE;
  // One turn per change of the offset before the tick: one in practice (an interval is at most a day).
  for (let turn = 0; turn < 8; turn++) {
    const tick = (Math.floor((from + offset) / intervalMs) + 1) * intervalMs - offset;
    if (utcOffsetMinutes(tick) * MINUTE === offset) return tick;
    // The offset changed in (from, tick]: find the first instant with the new one. No instant
    // before it is aligned under the old offset (tick was the first), so go on from there.
    let lo = from;
    let hi = tick;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (utcOffsetMinutes(mid) * MINUTE === offset) lo = mid;
      else hi = mid;
    }
    from = hi - 1;
    offset = utcOffsetMinutes(hi) * MINUTE;
  }
  return utcAligned; // an offset that keeps changing: not a real time zone
}

/** Fires `onTick` at each wall-clock multiple of an interval until stopped. */
export class WallClockSchedule {
  private timer: unknown;
  /** The boundary the armed timer waits for. */
  private due = 0;
  private stopped = true;

  constructor(
    private readonly intervalMs: number,
    private readonly onTick: () => void,
    private readonly clock: ScheduleClock = SYSTEM_CLOCK,
  ) {
    if (!isWallClockInterval(intervalMs)) throw new RangeError(`not a wall-clock interval: ${intervalMs} ms`);
  }

  /** Arms the timer for the next boundary (the first tick comes at it, not now). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm(this.next(this.clock.now()));
  }

  /** Cancels the timer: no tick fires after this, and no timer keeps the event loop alive. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The boundary the schedule waits for (ms since the epoch), undefined when stopped. */
  nextDue(): number | undefined {
    return this.stopped ? undefined : this.due;
  }

  private next(afterMs: number): number {
    return nextTick(afterMs, this.intervalMs, (ms) => this.clock.utcOffsetMinutes(ms));
  }

  private arm(due: number): void {
    this.due = due;
    this.timer = this.clock.setTimeout(() => this.wake(), Math.max(0, due - this.clock.now()));
  }

  private wake(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.clock.now();
    if (now < this.due) {
      // Early: by a millisecond (timers and the wall clock round differently), wait for the
      // boundary; by more than an interval, the wall clock was set back: the next boundary from
      // now, instead of waiting until the clock reaches the old one again.
      this.arm(this.due - now <= this.intervalMs ? this.due : this.next(now));
      return;
    }
    // On time, late, or after the wall clock was set forward: one tick, then the next boundary
    // after both now and this one (this one never fires twice; missed ones are not made up).
    const fired = this.due;
    this.arm(this.next(Math.max(now, fired)));
    this.onTick();
  }
}
