// `ss -o` timer values, as printed by iproute2's print_ms_timer() (docs/kernel-and-ss.md#ss-timer-format):
//   ""            0 (due or overdue)
//   "096ms"       0.096 s       (milliseconds, zero padded)
//   "1.140ms"     1.140 s       (iproute2 < 6.11: the "ms" after a fraction means SECONDS)
//   "1.140sec"    1.140 s       (iproute2 >= 6.11)
//   "12sec"       12 s          (ms dropped from 10 s on)
//   "1min59sec"   119 s
//   "2min"        120 s         (seconds dropped from 10 min on)
// A value that is not one of these forms returns undefined.

import { TIMER_WRAP_SECONDS, type TimerKind } from '../model.ts';

function digitsAt(s: string, from: number): number {
  let i = from;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  return i;
}

/** Parses a timer value into seconds. */
export function parseSsTimerValue(value: string): number | undefined {
  if (value === '') return 0;
  let seconds = 0;
  let pos = 0;
  let end = digitsAt(value, pos);
  if (end === pos) return undefined;
  if (value.startsWith('min', end)) {
    seconds = Number(value.slice(pos, end)) * 60;
    pos = end + 3;
    if (pos === value.length) return seconds;
    end = digitsAt(value, pos);
    if (end === pos) return undefined;
  }
  const whole = Number(value.slice(pos, end));
  const rest = value.slice(end);
  if (rest === 'sec') return seconds + whole;
  if (rest === 'ms') return (seconds * 1000 + whole) / 1000;
  // "<secs>.<3 digits>ms" (old) or "<secs>.<3 digits>sec" (new): seconds with milliseconds.
  if (rest.length >= 6 && rest.charCodeAt(0) === 46 /* . */) {
    const fracEnd = digitsAt(rest, 1);
    const suffix = rest.slice(fracEnd);
    if (fracEnd === 4 && (suffix === 'ms' || suffix === 'sec')) {
      // Integer milliseconds first, one division: 1.356 stays 1.356, not 1.3559999999999999.
      return (seconds * 1000 + whole * 1000 + Number(rest.slice(1, 4))) / 1000;
    }
  }
  return undefined;
}

export interface SsTimer {
  kind: TimerKind | undefined;
  seconds: number;
  count: number;
}

/** `on` is ss's name for the retransmit timer (also TLP and RACK reorder timers). */
const SS_TIMER_NAMES: Readonly<Record<string, TimerKind | undefined>> = {
  on: 'retransmit',
  keepalive: 'keepalive',
  timewait: 'timewait',
  persist: 'persist',
  // delack (iproute2 >= 7.1) and unknown (older ss, any code > 4) are not exported.
  delack: undefined,
  unknown: undefined,
};

/** Parses the inside of `timer:(name,value,count)`. */
export function parseSsTimer(inner: string): SsTimer | undefined {
  const c1 = inner.indexOf(',');
  const c2 = inner.indexOf(',', c1 + 1);
  if (c1 < 0 || c2 < 0) return undefined;
  const name = inner.slice(0, c1);
  if (!Object.hasOwn(SS_TIMER_NAMES, name)) return undefined;
  let seconds = parseSsTimerValue(inner.slice(c1 + 1, c2));
  const countText = inner.slice(c2 + 1);
  const count = Number(countText);
  if (seconds === undefined || countText === '' || !Number.isInteger(count) || count < 0) {
    return undefined;
  }
  if (seconds > TIMER_WRAP_SECONDS) seconds = 0;
  return { kind: SS_TIMER_NAMES[name], seconds, count };
}
