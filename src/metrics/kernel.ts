// Kernel-wide metrics: orphans and TCP memory against their limits, the sysctls beside them, and
// the TcpExt abort / zero-window / memory-pressure counters. A value the kernel does not provide
// (or whose source failed this poll) is absent, never 0.

import type { Registry } from 'prom-client';
import type { KernelFigures } from '../sources/kernel.ts';
import type { SnapshotView } from '../snapshot.ts';
import { partCounters, partGauges } from './snapshot-metric.ts';

/** `reason` label → TcpExt counter (DOMAIN.md §4.4). */
export const ABORT_COUNTERS = {
  memory: 'TCPAbortOnMemory',
  timeout: 'TCPAbortOnTimeout',
  close: 'TCPAbortOnClose',
  data: 'TCPAbortOnData',
  linger: 'TCPAbortOnLinger',
  failed: 'TCPAbortFailed',
} as const;

/** Our counter name → TcpExt counter, help. */
export const TCPEXT_COUNTERS: ReadonlyArray<[string, string, string]> = [
  ['tcpstate_zero_window_probes_total', 'TCPWinProbe', 'Zero-window probes sent (persist timer expiries), this network namespace.'],
  ['tcpstate_zero_window_advertised_total', 'TCPToZeroWindowAdv', 'Times this host advertised a zero receive window (it was the slow reader).'],
  ['tcpstate_zero_window_reopened_total', 'TCPFromZeroWindowAdv', 'Times this host reopened a receive window it had advertised as zero.'],
  ['tcpstate_zero_window_wanted_total', 'TCPWantZeroWindowAdv', 'Times this host wanted to advertise a zero window but could not shrink it.'],
  ['tcpstate_zero_window_drops_total', 'TCPZeroWindowDrop', 'Incoming segments dropped because the receive window was zero.'],
  ['tcpstate_memory_pressures_total', 'TCPMemoryPressures', 'Times TCP entered memory pressure (tcp_mem pressure level crossed).'],
];

type K = Readonly<KernelFigures>;

export function registerKernelMetrics(registry: Registry, view: SnapshotView): void {
  const gauge = partGauges<K>(registry, () => view.snapshot()?.kernel);
  const scalar = (name: string, help: string, pick: (k: K) => number | undefined) =>
    gauge(name, help, [], (emit, k) => {
      const v = pick(k);
      if (v !== undefined) emit(v);
    });
  const levels = (name: string, help: string, pick: (k: K) => Readonly<Record<string, number>> | undefined) =>
    gauge(name, help, ['level'], (emit, k) => {
      for (const [level, v] of Object.entries(pick(k) ?? {})) emit(v, { level });
    });
  const tcpExtCounter = partCounters<ReadonlyMap<string, number>>(registry, () => view.snapshot()?.kernel.tcpExt);

  // Host-wide.
  scalar('tcpstate_orphans', 'Orphaned TCP sockets (sockstat orphan): full sockets closed by their process and still alive. Host-wide.', (k) => k.orphans);
  scalar('tcpstate_orphans_limit', 'net.ipv4.tcp_max_orphans: beyond it the kernel kills orphans with an RST. Host-wide.', (k) => k.orphansLimit);
  scalar('tcpstate_memory_bytes', 'Memory allocated to TCP sockets (sockstat mem pages × page size). Host-wide.', (k) => k.memoryBytes);
  levels(
    'tcpstate_memory_limit_bytes',
    'net.ipv4.tcp_mem levels in bytes: min (no pressure below), pressure (start moderating), max (refuse allocations, kill orphans). Host-wide.',
    (k) => k.memoryLimitBytes,
  );
  scalar('tcpstate_sockstat_allocated_sockets', 'TCP sockets allocated (sockstat alloc), both families, closed ones included. Host-wide.', (k) => k.allocated);

  // This network namespace.
  gauge('tcpstate_sockstat_inuse_sockets', 'Hashed full TCP sockets (sockstat/sockstat6 inuse), LISTEN and orphans included. Per network namespace.', ['family'], (emit, k) => {
    for (const [family, v] of Object.entries(k.inuse ?? {})) emit(v, { family });
  });
  scalar('tcpstate_sockstat_timewait_sockets', 'TIME-WAIT (and orphaned FIN-WAIT-2) minisockets (sockstat tw). Per network namespace.', (k) => k.timewait);

  // The sysctls an engineer needs beside those figures: tcpstate_sysctl_<name>[_<unit>].
  scalar('tcpstate_sysctl_tcp_orphan_retries', 'net.ipv4.tcp_orphan_retries (0 means 8 while the peer is alive).', (k) => k.orphanRetries);
  scalar('tcpstate_sysctl_tcp_fin_timeout_seconds', 'net.ipv4.tcp_fin_timeout: lifetime of orphaned FIN-WAIT-2 only (never FIN-WAIT-1).', (k) => k.finTimeoutSeconds);
  scalar('tcpstate_sysctl_tcp_retries2', 'net.ipv4.tcp_retries2: retransmissions before giving up; also caps the zero-window probe backoff.', (k) => k.retries2);
  scalar('tcpstate_sysctl_tcp_max_tw_buckets', 'net.ipv4.tcp_max_tw_buckets: TIME-WAIT minisockets the namespace may hold.', (k) => k.maxTimewaitBuckets);
  levels('tcpstate_sysctl_tcp_wmem_bytes', 'net.ipv4.tcp_wmem: min, default and max send buffer per socket.', (k) => k.wmemBytes);

  // TcpExt counters (per network namespace).
  tcpExtCounter(
    'tcpstate_aborts_total',
    'Connections the kernel aborted, by reason (TcpExt TCPAbortOn*, TCPAbortFailed). Per network namespace.',
    ['reason'],
    (emit, ext) => {
      for (const [reason, name] of Object.entries(ABORT_COUNTERS)) {
        const v = ext.get(name);
        if (v !== undefined) emit(v, { reason });
      }
    },
  );
  for (const [metric, name, help] of TCPEXT_COUNTERS) {
    tcpExtCounter(metric, `${help} (TcpExt ${name})`, [], (emit, ext) => {
      const v = ext.get(name);
      if (v !== undefined) emit(v);
    });
  }
  tcpExtCounter('tcpstate_memory_pressure_seconds_total', 'Time spent under TCP memory pressure (TcpExt TCPMemoryPressuresChrono, ms).', [], (emit, ext) => {
    const v = ext.get('TCPMemoryPressuresChrono');
    if (v !== undefined) emit(v / 1000);
  });
}
