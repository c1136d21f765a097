// The exposition: every tcpstate_ family is computed at scrape time from the latest snapshot.
// Only metrics/ imports prom-client.

import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { FamilyTable, StateFigures } from '../aggregate/table.ts';
import { FAMILIES, ORPHAN_STATES, TCP_STATES, TIMER_KINDS, type TcpState } from '../model.ts';
import type { Snapshot, SnapshotView } from '../snapshot.ts';
import { registerForensicsMetrics } from './forensics.ts';
import { registerKernelMetrics } from './kernel.ts';
import { partGauges, snapshotCounter } from './snapshot-metric.ts';

export interface MetricsOptions {
  view: SnapshotView;
  version: string;
  /** prom-client's process_* and nodejs_* metrics (on unless turned off). */
  defaultMetrics?: boolean;
}

function tablesOf(s: Snapshot): FamilyTable[] {
  const out: FamilyTable[] = [];
  for (const f of FAMILIES) {
    const t = s.table[f];
    if (t !== undefined) out.push(t);
  }
  return out;
}

const NOT_LISTEN = TCP_STATES.filter((s) => s !== 'listen');

export function createRegistry(options: MetricsOptions): Registry {
  const { view } = options;
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  /** A family computed from the snapshot; absent while there is none. */
  const fromSnapshot = partGauges<Snapshot>(registry, () => view.snapshot());

  new Gauge({
    name: 'tcpstate_build_info',
    help: 'A metric with a constant 1 labelled with the version of tcpstate-exporter and of Node.js.',
    labelNames: ['version', 'nodejs'] as const,
    registers: [registry],
  }).set({ version: options.version, nodejs: process.version }, 1);

  // --- the socket table --------------------------------------------------------------------
  /** A {state, family} gauge over the families present. */
  const perFamily = (name: string, help: string, pick: (f: StateFigures) => number, states: readonly TcpState[]) =>
    fromSnapshot(name, help, ['state', 'family'], (emit, s) => {
      for (const family of FAMILIES) {
        const t = s.table[family];
        if (t !== undefined) for (const state of states) emit(pick(t[state]), { state, family });
      }
    });
  /** A {state} gauge combining the families present (sum, or max for maxima). */
  const perState = (
    name: string,
    help: string,
    states: Iterable<TcpState>,
    pick: (f: StateFigures) => number,
    combine: (a: number, b: number) => number = (a, b) => a + b,
  ) =>
    fromSnapshot(name, help, ['state'], (emit, s) => {
      const tables = tablesOf(s);
      if (tables.length === 0) return;
      for (const state of states) emit(tables.map((t) => pick(t[state])).reduce(combine, 0), { state });
    });

  perFamily('tcpstate_sockets', 'TCP sockets per state and address family in the latest poll.', (f) => f.sockets, TCP_STATES);
  perFamily(
    'tcpstate_send_queue_bytes',
    'Sum of Send-Q (bytes written but not yet acknowledged by the peer, +1 per queued FIN) per state and family. LISTEN excluded.',
    (f) => f.sendQueueBytes,
    NOT_LISTEN,
  );
  perFamily(
    'tcpstate_recv_queue_bytes',
    'Sum of Recv-Q (bytes received but not yet read by the application) per state and family. LISTEN excluded.',
    (f) => f.recvQueueBytes,
    NOT_LISTEN,
  );
  fromSnapshot(
    'tcpstate_timer_sockets',
    'Sockets with a pending timer per state and timer kind (retransmit, keepalive, timewait, persist = zero-window probe).',
    ['state', 'timer'],
    (emit, s) => {
      const tables = tablesOf(s);
      if (tables.length === 0) return;
      for (const state of TCP_STATES) {
        for (const timer of TIMER_KINDS) emit(tables.reduce((a, t) => a + t[state].timers[timer], 0), { state, timer });
      }
    },
  );
  perState(
    'tcpstate_orphan_sockets',
    'Sockets no process owns any more (inode 0 in a state only reached after close()) per state.',
    ORPHAN_STATES,
    (f) => f.orphanSockets,
  );
  perState(
    'tcpstate_orphan_send_queue_bytes',
    'Send-Q bytes held by orphan sockets per state: data the application handed over and will never see acknowledged or lost.',
    ORPHAN_STATES,
    (f) => f.orphanSendQueueBytes,
  );
  perState(
    'tcpstate_persist_timer_max_seconds',
    'Longest pending persist (zero-window probe) timer per state, in seconds; the kernel caps the backoff at 120 s. 0 when none is pending.',
    TCP_STATES,
    (f) => f.persistMaxSeconds,
    (a, b) => Math.max(a, b),
  );

  registerForensicsMetrics(registry, view);
  registerKernelMetrics(registry, view);

  // --- self-health -------------------------------------------------------------------------
  fromSnapshot('tcpstate_source_up', 'Whether the source was read successfully in the latest poll (1) or failed (0).', ['source'], (emit, s) => {
    for (const src of s.sources) emit(src.up ? 1 : 0, { source: src.source });
  });
  fromSnapshot('tcpstate_source_duration_seconds', 'Time the latest poll spent reading and parsing the source.', ['source'], (emit, s) => {
    for (const src of s.sources) emit(src.durationSeconds, { source: src.source });
  });
  fromSnapshot('tcpstate_last_poll_timestamp_seconds', 'When the latest poll finished, in seconds since the epoch.', [], (emit, s) =>
    emit(s.takenAtMs / 1000),
  );
  fromSnapshot('tcpstate_snapshot_age_seconds', 'Age of the snapshot this scrape is served from.', [], (emit, s) =>
    emit(Math.max(0, (Date.now() - s.takenAtMs) / 1000)),
  );
  fromSnapshot('tcpstate_poll_duration_seconds', 'Wall time of the latest poll, all sources included.', [], (emit, s) => emit(s.pollDurationSeconds));

  snapshotCounter(registry, {
    name: 'tcpstate_parse_errors_total',
    help: 'Source lines that could not be parsed and were skipped.',
    labelNames: ['source'],
    fill: (emit) => {
      for (const [source, n] of view.stats().parseErrorsTotal) emit(n, { source });
    },
  });
  snapshotCounter(registry, {
    name: 'tcpstate_polls_total',
    help: 'Polls completed since start.',
    fill: (emit) => emit(view.stats().pollsTotal),
  });
  snapshotCounter(registry, {
    name: 'tcpstate_polls_skipped_total',
    help: 'Scheduled polls skipped because the previous poll was still running.',
    fill: (emit) => emit(view.stats().pollsSkippedTotal),
  });
  return registry;
}
