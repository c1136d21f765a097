// Aggregates socket records into per-(family, state) figures as they stream in: O(states) memory,
// whatever the number of sockets. Later consumers (distributions, per-port tables) attach here.

import {
  FAMILIES,
  TCP_STATES,
  TIMER_KINDS,
  isOrphan,
  type Family,
  type SocketRecord,
  type TcpState,
  type TimerKind,
} from '../model.ts';

export interface StateFigures {
  sockets: number;
  /** Sum of Send-Q; LISTEN excluded (ss shows the backlog limit there, not bytes). */
  sendQueueBytes: number;
  /** Sum of Recv-Q; LISTEN excluded (it is the accept-queue length there). */
  recvQueueBytes: number;
  /** Sockets with each kind of timer pending. */
  timers: Record<TimerKind, number>;
  orphanSockets: number;
  orphanSendQueueBytes: number;
  /** Sockets whose inode the source did not show (ss without -e): their ownership is unknown. */
  inodeUnknown: number;
  /** Longest pending persist (zero-window probe) timer, seconds; 0 when none. */
  persistMaxSeconds: number;
}

export type FamilyTable = Readonly<Record<TcpState, Readonly<StateFigures>>>;

/** What one poll knows about the socket table: a table per family it could read. */
export type SocketTable = Readonly<Partial<Record<Family, FamilyTable>>>;

function emptyFigures(): StateFigures {
  const timers = {} as Record<TimerKind, number>;
  for (const k of TIMER_KINDS) timers[k] = 0;
  return {
    sockets: 0,
    sendQueueBytes: 0,
    recvQueueBytes: 0,
    timers,
    orphanSockets: 0,
    orphanSendQueueBytes: 0,
    inodeUnknown: 0,
    persistMaxSeconds: 0,
  };
}

function emptyFamily(): Record<TcpState, StateFigures> {
  const t = {} as Record<TcpState, StateFigures>;
  for (const s of TCP_STATES) t[s] = emptyFigures();
  return t;
}

export class TableAggregator {
  private readonly tables: Partial<Record<Family, Record<TcpState, StateFigures>>> = {};

  /** @param families the families this aggregate speaks for (zeros included) */
  constructor(private readonly families: readonly Family[] = FAMILIES) {
    for (const f of families) this.tables[f] = emptyFamily();
  }

  add(r: SocketRecord): void {
    const table = this.tables[r.family];
    if (table === undefined) return;
    const s = table[r.state];
    s.sockets++;
    if (r.state !== 'listen') {
      s.sendQueueBytes += r.sendQueue;
      s.recvQueueBytes += r.recvQueue;
    }
    if (r.timer !== undefined) {
      s.timers[r.timer]++;
      if (r.timer === 'persist' && r.timerSeconds > s.persistMaxSeconds) s.persistMaxSeconds = r.timerSeconds;
    }
    if (r.inode === undefined) s.inodeUnknown++;
    if (isOrphan(r)) {
      s.orphanSockets++;
      s.orphanSendQueueBytes += r.sendQueue;
    }
  }

  /** The aggregate of these families (default: all it speaks for), frozen: safe to publish in a snapshot. */
  result(families: readonly Family[] = this.families): SocketTable {
    const out: Partial<Record<Family, FamilyTable>> = {};
    for (const f of families) {
      if (this.tables[f] === undefined) continue;
      const t = this.tables[f];
      for (const s of TCP_STATES) Object.freeze(t[s].timers);
      out[f] = Object.freeze(t);
    }
    return Object.freeze(out);
  }
}
