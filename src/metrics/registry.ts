// The exposition: prom-client gauges whose collect() callbacks read the latest snapshot.
// Only this module imports prom-client. Every collect() resets its family first, so a label set
// that vanished from the snapshot never lingers (prom-client keeps old series until reset()).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { FamilyTable, StateFigures } from '../aggregate/table.ts';
import { FAMILIES, ORPHAN_STATES, TCP_STATES, TIMER_KINDS, type TcpState } from '../model.ts';
import type { Snapshot, SnapshotView } from '../poller/poller.ts';

export interface MetricsOptions {
  view: SnapshotView;
  version: string;
  /** prom-client's process_* and nodejs_* metrics (off in golden tests: they vary by run). */
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

/** Sum of a figure over the families present. */
function sumOver(tables: readonly FamilyTable[], state: TcpState, pick: (f: StateFigures) => number): number {
  let v = 0;
  for (const t of tables) v += pick(t[state]);
  return v;
}

export function createRegistry(options: MetricsOptions): Registry {
  const { view } = options;
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  /** A gauge set from the snapshot at scrape time; absent while there is no snapshot. */
  const fromSnapshot = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (g: Gauge<L>, s: Snapshot) => void,
  ): void => {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const s = view.snapshot();
        if (s !== undefined) fill(this, s);
      },
    });
  };

  new Gauge({
    name: 'tcpstate_build_info',
    help: 'A metric with a constant 1 labelled with the version of tcpstate-exporter and of Node.js.',
    labelNames: ['version', 'nodejs'] as const,
    registers: [registry],
  }).set({ version: options.version, nodejs: process.version }, 1);

  // --- the socket table --------------------------------------------------------------------
  /** A {state, family} gauge over the families present. */
  const perFamily = (name: string, help: string, pick: (f: StateFigures) => number, states: readonly TcpState[]): void =>
    fromSnapshot(name, help, ['state', 'family'], (g, s) => {
      for (const f of FAMILIES) {
        const t = s.table[f];
        if (t !== undefined) for (const st of states) g.set({ state: st, family: f }, pick(t[st]));
      }
    });
  /** A {state} gauge combining the families present (sum, or max for maxima). */
  const perState = (
    name: string,
    help: string,
    states: Iterable<TcpState>,
    pick: (f: StateFigures) => number,
    combine: (a: number, b: number) => number = (a, b) => a + b,
  ): void =>
    fromSnapshot(name, help, ['state'], (g, s) => {
      const tables = tablesOf(s);
      if (tables.length === 0) return;
      for (const st of states) g.set({ state: st }, tables.map((t) => pick(t[st])).reduce(combine, 0));
    });
  const NOT_LISTEN = TCP_STATES.filter((s) => s !== 'listen');

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
    (g, s) => {
      const tables = tablesOf(s);
      if (tables.length === 0) return;
      for (const st of TCP_STATES) {
        for (const k of TIMER_KINDS) g.set({ state: st, timer: k }, sumOver(tables, st, (f) => f.timers[k]));
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

  // --- self-health -------------------------------------------------------------------------
  fromSnapshot(
    'tcpstate_source_up',
    'Whether the source was read successfully in the latest poll (1) or failed (0).',
    ['source'],
    (g, s) => {
      for (const src of s.sources) g.set({ source: src.source }, src.up ? 1 : 0);
    },
  );
  fromSnapshot(
    'tcpstate_source_duration_seconds',
    'Time the latest poll spent reading and parsing the source.',
    ['source'],
    (g, s) => {
      for (const src of s.sources) g.set({ source: src.source }, src.durationSeconds);
    },
  );
  fromSnapshot('tcpstate_last_poll_timestamp_seconds', 'When the latest poll finished, in seconds since the epoch.', [], (g, s) =>
    g.set(s.takenAtMs / 1000),
  );
  fromSnapshot('tcpstate_snapshot_age_seconds', 'Age of the snapshot this scrape is served from.', [], (g, s) =>
    g.set(Math.max(0, (Date.now() - s.takenAtMs) / 1000)),
  );
  fromSnapshot('tcpstate_poll_duration_seconds', 'Wall time of the latest poll, all sources included.', [], (g, s) =>
    g.set(s.pollDurationSeconds),
  );

  new Counter({
    name: 'tcpstate_parse_errors_total',
    help: 'Source lines that could not be parsed and were skipped.',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [source, n] of view.stats().parseErrorsTotal) this.inc({ source }, n);
    },
  });
  new Counter({
    name: 'tcpstate_polls_total',
    help: 'Polls completed since start.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(view.stats().pollsTotal);
    },
  });
  new Counter({
    name: 'tcpstate_polls_skipped_total',
    help: 'Scheduled polls skipped because the previous poll was still running.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(view.stats().pollsSkippedTotal);
    },
  });
  return registry;
}
