// The published snapshot: the one contract that metrics/, http/ and report/ read. A poll builds
// one and replaces the previous one whole; readers never see a poll half done. Cross-poll state
// (FIN-WAIT-1 first-seen times, listening ports) stays inside the poller.

import type { FinWait1ExitStats, Forensics } from './aggregate/forensics.ts';
import type { Peers } from './aggregate/peers.ts';
import type { SocketTable } from './aggregate/table.ts';
import type { KernelFigures } from './model.ts';
import type { NetnsSnapshot, UnreadableReason } from './netns/figures.ts';

export type { SourceMode, TableSource } from './model.ts';

export interface SourceStatus {
  readonly source: string;
  readonly up: boolean;
  readonly durationSeconds: number;
}

export interface Snapshot {
  /** When the poll finished (ms since the epoch). */
  readonly takenAtMs: number;
  readonly pollDurationSeconds: number;
  /** Tables of the families some source could read; a family whose source failed is absent. */
  readonly table: SocketTable;
  /** Distributions, per-port figures and worst sockets from the socket-table source that worked. */
  readonly forensics: Forensics | undefined;
  /** FIN-WAIT-1 peers: per network every poll; per address (top) when the poller was asked (the report). */
  readonly peers: Peers | undefined;
  /** Kernel-wide figures from the sources that could be read; a failed source's figures are absent. */
  readonly kernel: Readonly<KernelFigures>;
  /** Every source tried in this poll. */
  readonly sources: readonly SourceStatus[];
  /**
   * With --netns other than own: every namespace's table (the host's, the --netns.max kept, and
   * "other"), and what could not be read. Absent with --netns=own (`table` is then the only one).
   */
  readonly netns?: NetnsSnapshot;
}

export interface PollerStats {
  readonly pollsTotal: number;
  readonly pollsSkippedTotal: number;
  /** Cumulative unparsable lines per source since start. */
  readonly parseErrorsTotal: ReadonlyMap<string, number>;
  /** Cumulative FIN-WAIT-1 socket observations left untracked (--stuck.max-tracked reached). */
  readonly untrackedTotal: number;
  /** With --netns other than own: namespaces not read since start, by reason. */
  readonly netnsFailuresTotal?: Readonly<Record<UnreadableReason, number>>;
  /** Tracked FIN-WAIT-1 sockets gone since start: where to, and their lifetimes. */
  readonly finWait1Exits: FinWait1ExitStats;
  /** The poll thread's V8 heap after its latest poll (absent when polls run on the calling thread). */
  readonly pollThreadHeap?: PollThreadHeap;
}

/**
 * The poll thread's own heap: prom-client's nodejs_heap_* figures describe only the thread that
 * serves /metrics, while a poll's buffers and tables live on this one (docs/performance.md#memory).
 */
export interface PollThreadHeap {
  readonly totalBytes: number;
  readonly usedBytes: number;
  readonly externalBytes: number;
}

/** What the metrics, HTTP and report layers see of a poller. */
export interface SnapshotView {
  snapshot(): Snapshot | undefined;
  stats(): PollerStats;
}
