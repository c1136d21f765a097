// What the report presents (text or JSON): the snapshot of one poll and what it cannot know.

import type { SocketTable } from '../aggregate/table.ts';
import { FAMILIES, TCP_STATES, TIMER_KINDS, type TcpState } from '../model.ts';
import { rankKeys, sumTables, type NetnsSnapshot } from '../netns/figures.ts';
import type { Snapshot } from '../snapshot.ts';
import type { OwnerLookup } from '../sources/owners.ts';

/** Which time a report's figures are from. */
export interface TakenAt {
  ms: number;
  /** live: the poll's; capture: the newest capture file's modification time; run: the report's own (stdin has no capture time). */
  kind: 'live' | 'capture' | 'run';
}

export interface ReportData {
  source: string;
  snapshot: Snapshot;
  takenAt: TakenAt;
  /** Owners of the listeners and worst sockets (live only: a capture has no /proc); undefined when not looked up. */
  owners?: OwnerLookup;
  parseErrors: number;
  firstParseError: { reason: string; line: string } | undefined;
}

/** States whose sockets always have a pending timer (TIME-WAIT's, or a retransmit/probe timer). */
const ALWAYS_TIMED: readonly TcpState[] = ['syn_sent', 'syn_recv', 'fin_wait1', 'time_wait', 'last_ack', 'closing'];

/**
 * Whether the input shows timers: false when sockets that always have one show none (ss without
 * -o, e.g. `ss -tan` or `ss -tn state fin-wait-1`); then persist timers are unknown, not 0.
 */
export function timersShown(table: SocketTable): boolean {
  let timed = 0;
  let timers = 0;
  for (const f of FAMILIES) {
    const t = table[f];
    if (t === undefined) continue;
    for (const st of ALWAYS_TIMED) timed += t[st].sockets;
    for (const st of TCP_STATES) for (const k of TIMER_KINDS) timers += t[st].timers[k];
  }
  return timed === 0 || timers > 0;
}

/** The table a report speaks of: with --netns, every namespace read summed; else the one table. */
export function reportTable(s: Snapshot): SocketTable {
  return s.netns === undefined ? s.table : sumTables(s.netns.namespaces.map((n) => n.table));
}

/** One row per namespace with its own figures (and "other"), most FIN-WAIT-1 bytes first. */
export interface NetnsRow {
  netns: string;
  name: string;
  pid: string;
  comm: string;
  podUid: string;
  containerId: string;
  finWait1Sockets: number;
  finWait1SendQueueBytes: number;
  sockets: number;
}

export function netnsRows(n: NetnsSnapshot): NetnsRow[] {
  return n.namespaces
    .map((ns) => {
      const [bytes, fw1, all] = rankKeys(ns.table);
      const i = ns.info;
      return {
        netns: ns.netns,
        name: i?.name ?? '',
        pid: i?.pid ?? '',
        comm: i?.comm ?? '',
        podUid: i?.podUid ?? '',
        containerId: i?.containerId ?? '',
        finWait1Sockets: fw1,
        finWait1SendQueueBytes: bytes,
        sockets: all,
      };
    })
    .sort((a, b) => b.finWait1SendQueueBytes - a.finWait1SendQueueBytes || b.finWait1Sockets - a.finWait1Sockets || b.sockets - a.sockets);
}
