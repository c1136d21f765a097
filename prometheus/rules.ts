// Renders the recording and alert rules from a RulesConfig (prometheus/config.ts).
// `npm run rules` writes prometheus/tcpstate.rules.yml; a test checks that file is up to date.

import { stringify } from 'yaml';
import type { RulesConfig } from './config.ts';

interface RecordingRule {
  record: string;
  expr: string;
}
interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'warning' | 'critical' };
  annotations: { summary: string; description: string; runbook_url: string };
}
export interface RuleFile {
  groups: Array<{ name: string; rules: Array<RecordingRule | AlertRule> }>;
}

/** Alert names, in the order of docs/runbook.md. */
export const ALERTS = [
  'TcpOrphansNearLimit',
  'TcpOrphansAtKillThreshold',
  'TcpOrphansFillingUp',
  'TcpMemoryPressure',
  'TcpMemoryNearMax',
  'TcpMemoryFillingUp',
  'TcpFinWait1SendQueueHigh',
  'TcpOrphansStuckOnZeroWindow',
  'TcpOrphansKilledOutOfMemory',
  'TcpConnectionsAbortedOnTimeout',
  'TcpCloseWaitLeak',
  'TcpOrphanedFinWait2PilingUp',
  'TcpOrphanedLastAckPilingUp',
  'TcpSynRecvFlood',
  'TcpListenQueueOverflow',
  'TcpListenQueueFull',
  'TcpOrphansUnaccounted',
  'TcpstateExporterDown',
  'TcpstateSourceDown',
  'TcpstateSnapshotStale',
] as const;
export type AlertName = (typeof ALERTS)[number];

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

/** Seconds in a Prometheus duration (30s, 1h30m), for functions that take a number (predict_linear). */
export function durationSeconds(d: string): number {
  const parts = [...d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== d) throw new Error(`not a Prometheus duration: ${d}`);
  return parts.reduce((a, p) => a + Number(p[1]) * UNIT_SECONDS[p[2]!]!, 0);
}

export function renderRules(c: RulesConfig): RuleFile {
  const by = c.groupBy.join(', ');
  const sel = (extra = '') => `{${[extra, c.selector].filter((x) => x !== '').join(', ')}}`;
  const alert = (
    name: AlertName,
    severity: 'warning' | 'critical',
    expr: string,
    forDuration: string,
    summary: string,
    description: string,
  ): AlertRule => ({
    alert: name,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description, runbook_url: `${c.runbookUrl}#${name.toLowerCase()}` },
  });
  const pct = (r: number) => `${Math.round(r * 100)}%`;

  return {
    groups: [
      {
        name: 'tcpstate.rules',
        rules: [
          {
            record: 'tcpstate:fin_wait1_send_queue_bytes:sum',
            expr: `sum by (${by}) (tcpstate_send_queue_bytes${sel('state="fin_wait1"')})`,
          },
          { record: 'tcpstate:orphans:ratio_limit', expr: `tcpstate_orphans${sel()} / tcpstate_orphans_limit${sel()}` },
          {
            // Host-wide orphans minus the orphans in the socket tables read (docs/netns.md).
            record: 'tcpstate:orphans_unaccounted:count',
            expr: `tcpstate_orphans${sel()} - on (${by}) sum by (${by}) (tcpstate_orphan_sockets${sel()})`,
          },
          {
            record: 'tcpstate:memory_bytes:ratio_pressure',
            expr: `tcpstate_memory_bytes${sel()} / ignoring (level) tcpstate_memory_limit_bytes${sel('level="pressure"')}`,
          },
          {
            record: 'tcpstate:memory_bytes:ratio_max',
            expr: `tcpstate_memory_bytes${sel()} / ignoring (level) tcpstate_memory_limit_bytes${sel('level="max"')}`,
          },
        ],
      },
      {
        name: 'tcpstate.alerts',
        rules: [
          alert(
            'TcpOrphansNearLimit',
            'warning',
            `tcpstate:orphans:ratio_limit > ${c.orphansWarningRatio}`,
            c.orphansFor,
            'Orphaned TCP sockets approach tcp_max_orphans',
            `{{ $labels.instance }} holds {{ $value | humanizePercentage }} of tcp_max_orphans in orphaned sockets. The kernel counts orphans up to 4× when their peers stall, so it may start killing them (RST) at ${pct(c.orphansWarningRatio)} of the limit.`,
          ),
          alert(
            'TcpOrphansAtKillThreshold',
            'critical',
            `tcpstate:orphans:ratio_limit > ${c.orphansCriticalRatio}`,
            c.orphansFor,
            'Orphaned TCP sockets at the kernel kill threshold',
            `{{ $labels.instance }} holds {{ $value | humanizePercentage }} of tcp_max_orphans in orphaned sockets. Orphans whose peers kept a zero window for over 240 s count double: at ${pct(c.orphansCriticalRatio)} the kernel resets them ("too many orphaned sockets").`,
          ),
          alert(
            'TcpOrphansFillingUp',
            'warning',
            // From the raw series, not the recording rule: the value must be of the same evaluation.
            `tcpstate_orphans${sel()} / tcpstate_orphans_limit${sel()} > ${c.orphansTrendMinRatio} < ${c.orphansCriticalRatio}` +
              ` and on (${by}) (predict_linear(tcpstate_orphans${sel()}[${c.trendWindow}], ${durationSeconds(c.trendHorizon)}) > ${c.orphansCriticalRatio} * tcpstate_orphans_limit${sel()})`,
            c.trendFor,
            'Orphaned TCP sockets are predicted to reach the kernel kill threshold',
            `{{ $labels.instance }} holds {{ $value | humanizePercentage }} of tcp_max_orphans in orphaned sockets and, at the pace of the last ${c.trendWindow}, reaches the kill threshold (${pct(c.orphansCriticalRatio)}) within ${c.trendHorizon}.`,
          ),
          alert(
            'TcpMemoryPressure',
            'warning',
            `tcpstate:memory_bytes:ratio_pressure > 1`,
            c.memoryPressureFor,
            'TCP memory above the tcp_mem pressure level',
            `TCP sockets on {{ $labels.instance }} use {{ $value | humanizePercentage }} of the tcp_mem pressure level: the kernel is shrinking socket buffers on every connection.`,
          ),
          alert(
            'TcpMemoryNearMax',
            'critical',
            `tcpstate:memory_bytes:ratio_max > ${c.memoryMaxRatio}`,
            c.memoryMaxFor,
            'TCP memory close to the tcp_mem maximum',
            `TCP sockets on {{ $labels.instance }} use {{ $value | humanizePercentage }} of tcp_mem max. At the maximum, socket allocations fail and orphans are killed ("out of memory -- consider tuning tcp_mem").`,
          ),
          alert(
            'TcpMemoryFillingUp',
            'warning',
            `tcpstate_memory_bytes${sel()} / ignoring (level) tcpstate_memory_limit_bytes${sel('level="pressure"')} > ${c.memoryTrendMinRatio} < 1` +
              ` and on (${by}) (predict_linear(tcpstate_memory_bytes${sel()}[${c.trendWindow}], ${durationSeconds(c.trendHorizon)})` +
              ` > ignoring (level) tcpstate_memory_limit_bytes${sel('level="pressure"')})`,
            c.trendFor,
            'TCP memory is predicted to reach the tcp_mem pressure level',
            `TCP sockets on {{ $labels.instance }} use {{ $value | humanizePercentage }} of the tcp_mem pressure level and, at the pace of the last ${c.trendWindow}, reach it within ${c.trendHorizon}; then the kernel shrinks the buffers of every connection.`,
          ),
          alert(
            'TcpFinWait1SendQueueHigh',
            'warning',
            `tcpstate:fin_wait1_send_queue_bytes:sum > ${c.finWait1Bytes}` +
              ` or tcpstate:fin_wait1_send_queue_bytes:sum > on (${by}) ${c.finWait1PressureRatio} * sum by (${by}) (tcpstate_memory_limit_bytes${sel('level="pressure"')})`,
            c.finWait1For,
            'Closed connections hold a large send queue in FIN-WAIT-1',
            `{{ $labels.instance }} holds {{ $value | humanize1024 }}B of unacknowledged data in FIN-WAIT-1 sockets: applications closed them, peers are not reading (zero window) or not reachable.`,
          ),
          alert(
            'TcpOrphansStuckOnZeroWindow',
            'warning',
            // Exact where the source reads tcp_info (tcpstate_persist_backoff_capped_sockets: each
            // socket's RTO and backoff); with --source proc, which has no tcp_info, a pending wait
            // above persistCapSeconds (at or next to the cap: backoff 9 with an RTO above 200 ms
            // waits more than 102.4 s without being capped).
            `(max by (${by}) (max_over_time(tcpstate_persist_backoff_capped_sockets${sel('state="fin_wait1"')}[${c.persistCapWindow}])) > 0` +
              ` or (max by (${by}) (max_over_time(tcpstate_persist_timer_max_seconds${sel('state="fin_wait1"')}[${c.persistCapWindow}])) > ${c.persistCapSeconds}` +
              ` unless on (${by}) max by (${by}) (max_over_time(tcpstate_persist_backoff_capped_sockets${sel('state="fin_wait1"')}[${c.persistCapWindow}]))))` +
              ` and on (${by}) sum by (${by}) (tcpstate_orphan_sockets${sel('state="fin_wait1"')}) > 0`,
            c.persistCapFor,
            'Orphaned FIN-WAIT-1 sockets probe zero-window peers at the 120 s cap',
            `{{ $labels.instance }} has orphaned FIN-WAIT-1 sockets whose zero-window probe interval reached the cap (120 s, tcp_rto_max_ms): their peers have kept the window closed for minutes.`,
          ),
          alert(
            'TcpOrphansKilledOutOfMemory',
            'critical',
            `increase(tcpstate_aborts_total${sel('reason="memory"')}[${c.abortWindow}]) > 0`,
            '0m',
            'The kernel is killing TCP connections for lack of memory or orphan slots',
            `{{ $labels.instance }} aborted {{ $value | humanize }} connections in the last ${c.abortWindow} because of too many orphans or tcp_mem exhausted (TCPAbortOnMemory): peers received RSTs.`,
          ),
          alert(
            'TcpConnectionsAbortedOnTimeout',
            'warning',
            `rate(tcpstate_aborts_total${sel('reason="timeout"')}[${c.abortWindow}]) > ${c.abortTimeoutRate}`,
            c.abortTimeoutFor,
            'TCP connections are being given up on timeout',
            `{{ $labels.instance }} gives up {{ $value | humanize }} connections per second on timeout (TCPAbortOnTimeout): zero-window orphans whose probes were never answered, retransmission or keepalive timeouts.`,
          ),
          alert(
            'TcpCloseWaitLeak',
            'warning',
            `sum by (${by}, port) (tcpstate_port_sockets${sel('state="close_wait"')}) > ${c.closeWaitSockets}`,
            c.closeWaitFor,
            'An application does not close connections its peers closed (CLOSE-WAIT leak)',
            `{{ $labels.instance }} has {{ $value }} sockets in CLOSE-WAIT on local port {{ $labels.port }} for ${c.closeWaitFor}: their peers closed and the application owning them never called close(). Each holds a file descriptor until it does or exits.`,
          ),
          alert(
            'TcpOrphanedFinWait2PilingUp',
            'warning',
            `sum by (${by}) (tcpstate_orphan_sockets${sel('state="fin_wait2"')}) > ${c.finWait2Sockets}`,
            c.finWait2For,
            'Orphaned FIN-WAIT-2 sockets pile up: peers never close their side',
            `{{ $labels.instance }} holds {{ $value }} orphaned FIN-WAIT-2 sockets: this host closed connections whose peers acknowledged but never close their end; each lingers tcp_fin_timeout.`,
          ),
          alert(
            'TcpOrphanedLastAckPilingUp',
            'warning',
            `sum by (${by}) (tcpstate_orphan_sockets${sel('state="last_ack"')}) > ${c.lastAckSockets}`,
            c.lastAckFor,
            'Orphaned LAST-ACK sockets pile up: their final FIN is not acknowledged',
            `{{ $labels.instance }} holds {{ $value }} orphaned LAST-ACK sockets: peers closed, this host closed too, and its FIN is not acknowledged (peer gone, or not reading while data is still queued).`,
          ),
          alert(
            'TcpSynRecvFlood',
            'warning',
            `sum by (${by}, port) (tcpstate_port_sockets${sel('state="syn_recv"')}) > ${c.synRecvSockets}`,
            c.synRecvFor,
            'Half-open handshakes pile up on a listener (SYN-RECV)',
            `{{ $labels.instance }} has {{ $value }} half-open handshakes (SYN-RECV) on local port {{ $labels.port }}: SYNs arrive and the SYN-ACKs get no answer (a SYN flood, or SYN-ACKs lost on the way back).`,
          ),
          alert(
            'TcpListenQueueOverflow',
            'warning',
            `rate(tcpstate_listen_overflows_total${sel()}[${c.listenOverflowWindow}]) > ${c.listenOverflowRate}`,
            c.listenOverflowFor,
            "A listener's accept queue overflows: new connections are dropped",
            `{{ $labels.instance }} drops {{ printf "%.2f" $value }} connection attempts per second because a listener's accept queue is full (TcpExt ListenOverflows): the application does not accept() fast enough, or its backlog is too small.`,
          ),
          alert(
            'TcpListenQueueFull',
            'warning',
            `sum by (${by}, port) (tcpstate_listen_full_listeners${sel()}) > 0`,
            c.listenFullFor,
            'A listening port does not accept connections: its accept queue is full',
            `{{ $labels.instance }} has {{ $value }} listening sockets on port {{ $labels.port }} whose accept queue has been full for ${c.listenFullFor}: the application does not accept() and the kernel drops new connections to that port.`,
          ),
          alert(
            'TcpOrphansUnaccounted',
            'warning',
            `tcpstate:orphans_unaccounted:count > ${c.unaccountedOrphansMin} and tcpstate:orphans_unaccounted:count / tcpstate_orphans${sel()} > ${c.unaccountedOrphansRatio}`,
            c.unaccountedOrphansFor,
            'Orphaned sockets exist in network namespaces tcpstate-exporter does not read',
            `The kernel on {{ $labels.instance }} counts {{ $value | humanize }} more orphaned TCP sockets than the socket tables tcpstate-exporter reads hold: they are in other network namespaces (containers, pods). The exporter's FIN-WAIT-1 and per-socket figures do not include them.`,
          ),
          alert(
            'TcpstateExporterDown',
            'warning',
            `up${sel()} == 0`,
            c.exporterDownFor,
            'tcpstate-exporter cannot be scraped',
            `Prometheus has failed to scrape tcpstate-exporter on {{ $labels.instance }} for ${c.exporterDownFor}: TCP socket state of that host is not monitored.`,
          ),
          alert(
            'TcpstateSourceDown',
            'warning',
            `tcpstate_source_up${sel()} == 0`,
            c.sourceDownFor,
            'tcpstate-exporter cannot read one of its sources',
            `tcpstate-exporter on {{ $labels.instance }} has failed to read {{ $labels.source }} for ${c.sourceDownFor}; the metrics from it are absent. Its log says why.`,
          ),
          alert(
            'TcpstateSnapshotStale',
            'warning',
            `tcpstate_snapshot_age_seconds${sel()} > ${c.staleSeconds}`,
            c.staleFor,
            'tcpstate-exporter serves stale data',
            `tcpstate-exporter on {{ $labels.instance }} serves a snapshot {{ $value | humanizeDuration }} old: its polls are not completing.`,
          ),
        ],
      },
    ],
  };
}

export function renderRulesYaml(c: RulesConfig): string {
  return (
    '# Rendered from prometheus/config.ts by `npm run rules`; edit the config, not this file.\n' +
    stringify(renderRules(c), { lineWidth: 0 })
  );
}
