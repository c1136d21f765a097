// The poll thread runs at a lower CPU priority than the thread that answers scrapes. A poll of a
// big table keeps one CPU busy parsing while the netlink helper's two dump threads (or ss) keep
// others busy: on a small node the HTTP thread then waits for a CPU, and a scrape waits with it.
// Linux keeps a nice value per thread (setpriority(2) with a thread ID), and a process started
// from a thread inherits that thread's: ss and the netlink helper, started from the poll thread,
// run at the same lower priority. Lowering one's priority needs no privilege.

import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** nice value of the poll thread and the programs it starts. */
export const POLL_THREAD_NICE = 10;

/** This thread's kernel thread ID, from /proc/thread-self (a link to "PID/task/TID"). */
export function threadId(procSelf = '/proc/thread-self'): number {
  const tid = Number(readlinkSync(procSelf).split('/').pop());
  if (!Number.isInteger(tid) || tid <= 0) throw new Error(`cannot tell this thread's ID from ${procSelf}`);
  return tid;
}

/** Lowers the calling thread's CPU priority to `nice` (never raises it); returns the nice value now in force. */
export function lowerThreadPriority(nice = POLL_THREAD_NICE): number {
  const tid = threadId();
  if (getPriority(tid) < nice) setPriority(tid, nice);
  return getPriority(tid);
}
