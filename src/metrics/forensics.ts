// Stuck-socket forensics as metrics: point-in-time distributions (histograms rebuilt every poll:
// histogram_quantile() works on them, rate() does not), stuck sockets, per-port figures.

import type { Registry } from 'prom-client';
import { PERSIST_STATES, TRACKED_STATE, type Forensics } from '../aggregate/forensics.ts';
import { TCP_STATES, type TcpState } from '../model.ts';
import type { SnapshotView } from '../snapshot.ts';
import { partGauges, partHistograms, snapshotCounter, type HistogramData, type Labels } from './snapshot-metric.ts';

const SNAPSHOT_NOTE = 'Snapshot of the sockets present at the latest poll, rebuilt every poll: use histogram_quantile() directly, not rate().';

export function registerForensicsMetrics(registry: Registry, view: SnapshotView): void {
  const forensics = () => view.snapshot()?.forensics;
  const snapshotHistograms = partHistograms<Forensics>(registry, forensics);
  const histogram = (name: string, help: string, labelNames: string[], fill: (emit: (l: Labels, h: HistogramData) => void, f: Forensics) => void) =>
    snapshotHistograms(name, `${help} ${SNAPSHOT_NOTE}`, labelNames, fill);
  const gauge = partGauges<Forensics>(registry, forensics);

  histogram(
    'tcpstate_persist_timer_seconds',
    'Time until the next zero-window probe of sockets with a pending persist timer, per state; buckets follow the backoff doublings up to the 120 s cap.',
    ['state'],
    (emit, f) => {
      for (const state of PERSIST_STATES) {
        const d = f.persistTimer[state];
        if (d !== undefined) emit({ state }, d);
      }
    },
  );
  histogram(
    'tcpstate_persist_backoff',
    'Zero-window probe backoff exponent (ss -i backoff:N; the wait is about RTO × 2^N, capped at 120 s) of FIN-WAIT-1 sockets. Absent with --source proc.',
    ['state'],
    (emit, f) => {
      if (f.backoff !== undefined) emit({ state: TRACKED_STATE }, f.backoff);
    },
  );
  histogram('tcpstate_socket_send_queue_bytes', 'Send-Q bytes per FIN-WAIT-1 socket.', ['state'], (emit, f) => emit({ state: TRACKED_STATE }, f.sendQueue));
  histogram(
    'tcpstate_socket_write_memory_bytes',
    'Memory each FIN-WAIT-1 socket pins for its write queue (skmem w = sk_wmem_queued, larger than Send-Q). Absent with --source proc.',
    ['state'],
    (emit, f) => {
      if (f.wmemQueued !== undefined) emit({ state: TRACKED_STATE }, f.wmemQueued);
    },
  );
  histogram(
    'tcpstate_state_age_seconds',
    'Time since each FIN-WAIT-1 socket was first seen in that state (resolution: the poll interval).',
    ['state'],
    (emit, f) => emit({ state: TRACKED_STATE }, f.age),
  );
  gauge('tcpstate_stuck_sockets', 'FIN-WAIT-1 sockets older than --stuck-after.', ['state'], (emit, f) => emit(f.stuck, { state: TRACKED_STATE }));
  gauge(
    'tcpstate_untracked_sockets',
    'FIN-WAIT-1 sockets not followed across polls because --stuck.max-tracked was reached (their age is unknown).',
    ['state'],
    (emit, f) => emit(f.untracked, { state: TRACKED_STATE }),
  );

  snapshotCounter(registry, {
    name: 'tcpstate_untracked_observations_total',
    help: 'FIN-WAIT-1 socket observations left untracked since start, summed over polls (--stuck.max-tracked reached).',
    fill: (emit) => emit(view.stats().untrackedTotal),
  });

  const perPort = (name: string, help: string, pick: (x: { sockets: number; sendQueueBytes: number }) => number, states: readonly TcpState[]) =>
    gauge(name, help, ['port', 'state'], (emit, f) => {
      for (const [port, figures] of f.ports) for (const state of states) emit(pick(figures[state]), { port, state });
    });
  perPort(
    'tcpstate_port_sockets',
    'Sockets per local listening port (server side) and state; port="other" holds client sockets and the ports beyond --ports.top or outside --ports.',
    (x) => x.sockets,
    TCP_STATES,
  );
  perPort(
    'tcpstate_port_send_queue_bytes',
    'Send-Q bytes per local listening port and state (LISTEN excluded); port="other" as for tcpstate_port_sockets.',
    (x) => x.sendQueueBytes,
    TCP_STATES.filter((s) => s !== 'listen'),
  );
}
