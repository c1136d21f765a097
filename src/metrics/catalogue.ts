// Every tcpstate_ family in one declarative list: name, type, help, label names, and the samples
// computed at scrape time from the published snapshot (src/snapshot.ts). A value we do not know
// (no poll yet, or its source failed this poll) has no sample: absent, never 0.
//
// Label sets (README "Metrics" says the same to users):
// - socket-table families (the `table` group): `state`, then any kind label (`timer`), then
//   `family`, one series per family the table source read; with --netns other than own, then
//   `netns` (the namespace's inode, or "other"): see labelsOf();
// - forensics: `state` (the distributions and stuck counts), `port` + `state` per port;
// - kernel-wide: none, or `level` / `family` / `reason`;
// - self-health: none, or `source`.

import { QUANTILES, type Distribution } from '../aggregate/buckets.ts';
import {
  FIN_WAIT1_EXITS,
  LIFETIME_ENDS,
  PERSIST_STATES,
  PORT_BYTE_STATES,
  PORT_STATES,
  TCP_RTO_MAX_SECONDS,
  TRACKED_STATE,
  cappedSockets,
  type Forensics,
  type ListenerFigures,
} from '../aggregate/forensics.ts';
import type { FamilyTable, StateFigures } from '../aggregate/table.ts';
import { FAMILIES, ORPHAN_STATES, TCP_STATES, TIMER_KINDS, type Family, type TcpState } from '../model.ts';
import type { PollerStats, PollThreadHeap, Snapshot } from '../snapshot.ts';
import { UNREADABLE_REASONS } from '../netns/figures.ts';
import { checkFamily, type MetricType, type Sample } from './exposition.ts';

/** What one scrape reads. */
export interface ScrapeContext {
  readonly snapshot: Snapshot | undefined;
  readonly stats: PollerStats;
  readonly version: string;
  /** The git commit of the build; "unknown" when absent. */
  readonly revision?: string;
  readonly nowMs: number;
}

/** Where a family's figures come from (the README's metric tables follow these groups). */
export type MetricGroup = 'table' | 'forensics' | 'kernel' | 'self';

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly group: MetricGroup;
  readonly help: string;
  readonly labels: readonly string[];
  /** A socket-table family: gains a last label `netns` when the snapshot has several namespaces. */
  readonly perNetns?: true;
  /** Only exposed when --netns is not own (with own, not even its HELP: the exposition stays as before). */
  readonly netnsOnly?: true;
  /**
   * Its samples change from scrape to scrape (they read ctx.nowMs). Every other family is a
   * function of the snapshot and the poller's stats alone, and is rendered once per snapshot.
   */
  readonly perScrape?: true;
  /** Only exposed with --peers.metrics-top > 0 (by default not even its HELP: peer networks are no labels unless asked). */
  readonly peersOptIn?: true;
  readonly samples: (ctx: ScrapeContext) => Iterable<Sample>;
}

/** Whether a family is part of this scrape's exposition. */
export function exposed(m: MetricSpec, ctx: Pick<ScrapeContext, 'stats' | 'snapshot'>): boolean {
  if (m.peersOptIn === true && (ctx.snapshot?.peers?.networks.metricsTop ?? 0) === 0) return false;
  return m.netnsOnly !== true || ctx.stats.netnsFailuresTotal !== undefined;
}

/** The label names of a family in this scrape (`netns` appended to socket-table families with --netns other than own). */
export function labelsOf(m: MetricSpec, ctx: Pick<ScrapeContext, 'snapshot'>): readonly string[] {
  return m.perNetns === true && ctx.snapshot?.netns !== undefined ? [...m.labels, 'netns'] : m.labels;
}

type Kernel = Snapshot['kernel'];

const s = (labels: readonly string[], value: number): Sample => ({ labels, value });

/** Samples from one part of the snapshot; none while that part is missing. */
function from<P>(pick: (snap: Snapshot) => P | undefined, gen: (p: P, ctx: ScrapeContext) => Iterable<Sample>) {
  return function* (ctx: ScrapeContext): Iterable<Sample> {
    const p = ctx.snapshot === undefined ? undefined : pick(ctx.snapshot);
    if (p !== undefined) yield* gen(p, ctx);
  };
}

// --- the socket table: {state[, kind], family} ----------------------------------------------

/**
 * Each family table of the snapshot, with the label values to append: none with --netns=own (the
 * one table), else [netns] for every namespace the snapshot publishes (host, kept, "other").
 */
function* familyTables(snap: Snapshot): Iterable<[Family, FamilyTable, readonly string[]]> {
  if (snap.netns === undefined) {
    for (const family of FAMILIES) {
      const t = snap.table[family];
      if (t !== undefined) yield [family, t, []];
    }
    return;
  }
  for (const ns of snap.netns.namespaces) {
    for (const family of FAMILIES) {
      const t = ns.table[family];
      if (t !== undefined) yield [family, t, [ns.netns]];
    }
  }
}

/** A table gauge: one sample per (state, family) over the families the table source read. */
function table(name: string, help: string, states: Iterable<TcpState>, pick: (f: StateFigures) => number): MetricSpec {
  const list = [...states];
  return {
    name,
    type: 'gauge',
    group: 'table',
    help,
    labels: ['state', 'family'],
    perNetns: true,
    samples: from(
      (snap) => snap,
      function* (snap) {
        for (const [family, t, ns] of familyTables(snap)) for (const state of list) yield s([state, family, ...ns], pick(t[state]));
      },
    ),
  };
}

const NOT_LISTEN = TCP_STATES.filter((st) => st !== 'listen');

// --- distributions: exact summaries, and gauge histograms where a heatmap needs buckets ------

const SNAPSHOT_NOTE =
  'Gauge histogram of the sockets present at the latest poll, rebuilt every poll (untyped: the text format has no gauge histogram type); for heatmaps. For quantiles use the exact summary QUANTILE_NAME, not histogram_quantile(); never rate().';

const QUANTILE_NOTE =
  'Summary of the sockets present at the latest poll, rebuilt every poll: quantile="q" is the exact nearest-rank order statistic of every value (the value of rank ceil(q x n) in ascending order: 0 = smallest, 1 = largest; NaN when there is no socket). Sum and count are the gauges';

/**
 * A distribution of the sockets present now:
 * - `quantileName`: a summary whose quantiles are exact order statistics of every value of the
 *   poll (src/aggregate/order.ts). It has no `_sum`/`_count` of its own: a summary's are
 *   cumulative, and these go down when sockets leave (issue 9 fault 5);
 * - `<base>_sum`, `<base>_count`: untyped gauges, the names they have always had;
 * - with `buckets`, `<base>_bucket{le}` for heatmaps. Buckets of the sockets present now form what
 *   OpenMetrics calls a gauge histogram: the 0.0.4 text format has no type for it, and promtool
 *   reserves `le` and the `_bucket` suffix for cumulative histograms, so it is untyped too.
 */
function snapshotDistribution(
  base: string,
  quantileName: string,
  help: string,
  labels: readonly string[],
  dists: (f: Forensics) => Iterable<[readonly string[], Distribution]>,
  options: { buckets: boolean },
): MetricSpec[] {
  const part = (gen: (l: readonly string[], d: Distribution) => Iterable<Sample>) =>
    from(
      (snap) => snap.forensics,
      function* (f) {
        for (const [l, d] of dists(f)) yield* gen(l, d);
      },
    );
  const untyped = (name: string, h: string, extra: readonly string[], gen: (l: readonly string[], d: Distribution) => Iterable<Sample>): MetricSpec => ({
    name,
    type: 'untyped',
    group: 'forensics',
    help: h,
    labels: [...labels, ...extra],
    samples: part(gen),
  });
  return [
    {
      name: quantileName,
      type: 'summary',
      group: 'forensics',
      help: `${help} ${QUANTILE_NOTE} ${base}_sum and ${base}_count.`,
      labels: [...labels, 'quantile'],
      samples: part(function* (l, d) {
        for (let i = 0; i < QUANTILES.length; i++) yield s([...l, String(QUANTILES[i])], d.quantiles[i] ?? NaN);
      }),
    },
    ...(options.buckets
      ? [
          untyped(`${base}_bucket`, `${help} Sockets whose value is at most le. ${SNAPSHOT_NOTE.replace('QUANTILE_NAME', quantileName)}`, ['le'], function* (l, d) {
            for (let i = 0; i < d.bounds.length; i++) yield s([...l, String(d.bounds[i])], d.cumulative[i]!);
            yield s([...l, '+Inf'], d.count);
          }),
        ]
      : []),
    untyped(`${base}_sum`, `Sum of the values of ${quantileName} (a gauge: the sockets present at the latest poll).`, [], (l, d) => [s(l, d.sum)]),
    untyped(`${base}_count`, `Number of sockets in ${quantileName} (a gauge: the sockets present at the latest poll).`, [], (l, d) => [s(l, d.count)]),
  ];
}

const fw1 = (d: Distribution | undefined): Array<[readonly string[], Distribution]> => (d === undefined ? [] : [[[TRACKED_STATE], d]]);

// --- kernel-wide ---------------------------------------------------------------------------

/** `reason` label → TcpExt counter (docs/kernel-and-ss.md#tcpext-counters). */
export const ABORT_COUNTERS = {
  memory: 'TCPAbortOnMemory',
  timeout: 'TCPAbortOnTimeout',
  close: 'TCPAbortOnClose',
  data: 'TCPAbortOnData',
  linger: 'TCPAbortOnLinger',
  failed: 'TCPAbortFailed',
} as const;

function kernelScalar(name: string, help: string, pick: (k: Kernel) => number | undefined): MetricSpec {
  return {
    name,
    type: 'gauge',
    group: 'kernel',
    help,
    labels: [],
    samples: from(
      (snap) => pick(snap.kernel),
      (v) => [s([], v)],
    ),
  };
}

function kernelLevels(name: string, help: string, pick: (k: Kernel) => Readonly<Record<string, number>> | undefined): MetricSpec {
  return {
    name,
    type: 'gauge',
    group: 'kernel',
    help,
    labels: ['level'],
    samples: from(
      (snap) => pick(snap.kernel),
      (levels) => Object.entries(levels).map(([level, v]) => s([level], v)),
    ),
  };
}

function tcpExt(name: string, counter: string, help: string, scale = 1): MetricSpec {
  return {
    name,
    type: 'counter',
    group: 'kernel',
    help,
    labels: [],
    samples: from(
      (snap) => snap.kernel.tcpExt?.get(counter),
      (v) => [s([], v / scale)],
    ),
  };
}

function selfGauge(name: string, help: string, labels: readonly string[], gen: (snap: Snapshot, ctx: ScrapeContext) => Iterable<Sample>): MetricSpec {
  return { name, type: 'gauge', group: 'self', help, labels, samples: from((snap) => snap, gen) };
}

/** A figure of the poll thread's heap (none when polls run on the calling thread, as `report`'s do). */
function selfGaugeOfStats(name: string, help: string, pick: (h: PollThreadHeap) => number): MetricSpec {
  return { name, type: 'gauge', group: 'self', help, labels: [], samples: (ctx) => (ctx.stats.pollThreadHeap === undefined ? [] : [s([], pick(ctx.stats.pollThreadHeap))]) };
}

function selfCounter(name: string, help: string, labels: readonly string[], gen: (stats: PollerStats) => Iterable<Sample>): MetricSpec {
  return { name, type: 'counter', group: 'self', help, labels, samples: (ctx) => gen(ctx.stats) };
}

// --- the catalogue ------------------------------------------------------------------------

export const CATALOGUE: readonly MetricSpec[] = [
  {
    name: 'tcpstate_build_info',
    type: 'gauge',
    group: 'self',
    help: 'A metric with a constant 1 labelled with the version and git revision of tcpstate-exporter and the version of Node.js.',
    labels: ['version', 'revision', 'nodejs'],
    samples: (ctx) => [s([ctx.version, ctx.revision ?? 'unknown', process.version], 1)],
  },

  // The socket table.
  table('tcpstate_sockets', 'TCP sockets per state and address family in the latest poll.', TCP_STATES, (f) => f.sockets),
  table(
    'tcpstate_send_queue_bytes',
    'Sum of Send-Q (bytes written but not yet acknowledged by the peer, +1 per queued FIN) per state and family. LISTEN excluded.',
    NOT_LISTEN,
    (f) => f.sendQueueBytes,
  ),
  table(
    'tcpstate_recv_queue_bytes',
    'Sum of Recv-Q (bytes received but not yet read by the application) per state and family. LISTEN excluded.',
    NOT_LISTEN,
    (f) => f.recvQueueBytes,
  ),
  {
    name: 'tcpstate_timer_sockets',
    type: 'gauge',
    group: 'table',
    help: 'Sockets with a pending timer per state, timer kind (retransmit, keepalive, timewait, persist = zero-window probe) and family.',
    labels: ['state', 'timer', 'family'],
    perNetns: true,
    samples: from(
      (snap) => snap,
      function* (snap) {
        for (const [family, t, ns] of familyTables(snap)) {
          for (const state of TCP_STATES) for (const timer of TIMER_KINDS) yield s([state, timer, family, ...ns], t[state].timers[timer]);
        }
      },
    ),
  },
  table(
    'tcpstate_orphan_sockets',
    'Sockets no process owns any more (inode 0 in a state only reached after close()) per state and family.',
    ORPHAN_STATES,
    (f) => f.orphanSockets,
  ),
  table(
    'tcpstate_orphan_send_queue_bytes',
    'Send-Q bytes held by orphan sockets per state and family: data the application handed over and will never see acknowledged or lost.',
    ORPHAN_STATES,
    (f) => f.orphanSendQueueBytes,
  ),
  table(
    'tcpstate_persist_timer_max_seconds',
    'Longest pending persist (zero-window probe) timer per state and family, in seconds, for the states that can still send data; the kernel caps the wait at 120 s. 0 when none is pending.',
    PERSIST_STATES,
    (f) => f.persistMaxSeconds,
  ),

  // Network namespaces (--netns other than own; absent with own).
  {
    name: 'tcpstate_netns_info',
    netnsOnly: true,
    type: 'gauge',
    group: 'table',
    help: 'A constant 1 per network namespace with its own netns series (the host\'s first): its ip netns name(s), the process it was found through (pid, comm), and the container ID and Kubernetes pod UID of that process\'s cgroup; empty when unknown. Join on pod_uid with kube_pod_info{uid}.',
    labels: ['netns', 'name', 'pid', 'comm', 'container_id', 'pod_uid'],
    samples: from(
      (snap) => snap.netns,
      function* (n) {
        for (const ns of n.namespaces) if (ns.info !== undefined) yield s([ns.netns, ns.info.name, ns.info.pid, ns.info.comm, ns.info.containerId, ns.info.podUid], 1);
      },
    ),
  },
  {
    name: 'tcpstate_netns_selected_namespaces',
    netnsOnly: true,
    type: 'gauge',
    group: 'table',
    help: 'Network namespaces --netns selected in the latest poll, the exporter\'s own included.',
    labels: [],
    samples: from(
      (snap) => snap.netns,
      (n) => [s([], n.selected)],
    ),
  },
  {
    name: 'tcpstate_netns_folded_namespaces',
    netnsOnly: true,
    type: 'gauge',
    group: 'table',
    help: 'Network namespaces read in the latest poll but summed into netns="other" (beyond --netns.max).',
    labels: [],
    samples: from(
      (snap) => snap.netns,
      (n) => [s([], n.folded)],
    ),
  },
  {
    name: 'tcpstate_netns_unreadable_namespaces',
    netnsOnly: true,
    type: 'gauge',
    group: 'table',
    help: 'Selected network namespaces the latest poll could not read, by reason: permission (setns or ptrace refused), vanished (gone during the poll), no_process (--source=proc and no process in it), timeout (--poll.timeout), error. Their sockets are in no table.',
    labels: ['reason'],
    samples: from(
      (snap) => snap.netns,
      (n) => UNREADABLE_REASONS.map((r) => s([r], n.unreadable[r])),
    ),
  },
  {
    name: 'tcpstate_netns_unreadable_processes',
    netnsOnly: true,
    type: 'gauge',
    group: 'table',
    help: 'Processes whose /proc/PID/ns/net the latest discovery could not read (EACCES: CAP_SYS_PTRACE missing): the namespaces only they are in are not known.',
    labels: [],
    samples: from(
      (snap) => snap.netns,
      (n) => [s([], n.unreadableProcesses)],
    ),
  },
  {
    name: 'tcpstate_netns_read_failures_total',
    netnsOnly: true,
    type: 'counter',
    group: 'table',
    help: 'Selected network namespaces not read, summed over polls since start, by reason (as tcpstate_netns_unreadable_namespaces).',
    labels: ['reason'],
    samples: (ctx) => {
      const f = ctx.stats.netnsFailuresTotal;
      return f === undefined ? [] : UNREADABLE_REASONS.map((r) => s([r], f[r]));
    },
  },

  // Forensics: distributions, time in FIN-WAIT-1, per-port figures.
  ...snapshotDistribution(
    'tcpstate_persist_timer_seconds',
    'tcpstate_persist_timer_quantile_seconds',
    'Time until the next zero-window probe of sockets with a pending persist timer, per state; buckets follow the kernel\'s doublings of the wait from the RTO (200 ms at least) up to the 120 s cap.',
    ['state'],
    (f) => PERSIST_STATES.flatMap((state) => stateDist(state, f.persistTimer[state])),
    { buckets: true },
  ),
  ...snapshotDistribution(
    'tcpstate_persist_backoff',
    'tcpstate_persist_backoff_quantile',
    'Zero-window probe backoff exponent of FIN-WAIT-1 sockets with a pending persist timer (the wait is max(RTO, 200 ms) × 2^N, capped at 120 s); retransmitting sockets are not counted; one bucket per level. Absent with --source proc.',
    ['state'],
    (f) => fw1(f.backoff),
    { buckets: true },
  ),
  ...snapshotDistribution('tcpstate_socket_send_queue_bytes', 'tcpstate_socket_send_queue_quantile_bytes', 'Send-Q bytes per FIN-WAIT-1 socket (+1 for a queued FIN).', ['state'], (f) => fw1(f.sendQueue), { buckets: false }),
  ...snapshotDistribution(
    'tcpstate_socket_write_memory_bytes',
    'tcpstate_socket_write_memory_quantile_bytes',
    'Memory each FIN-WAIT-1 socket pins for its write queue (sk_wmem_queued, larger than Send-Q). Absent with --source proc.',
    ['state'],
    (f) => fw1(f.wmemQueued),
    { buckets: false },
  ),
  ...snapshotDistribution(
    'tcpstate_state_age_seconds',
    'tcpstate_state_age_quantile_seconds',
    'Time each FIN-WAIT-1 socket has been stuck: since the exporter first saw it in FIN-WAIT-1 (resolution: the poll interval) or, when at first sight it waited on a zero window (persist timer), since it last sent data by the kernel\'s clock (tcp_info tcpi_last_data_sent, ss -i lastsnd; netlink and ss sources), which is earlier: a lower bound that an exporter restart does not reset. Buckets on the kernel\'s zero-window probe schedule (0.2 x (2^k - 1) s, then every 120 s).',
    ['state'],
    (f) => fw1(f.age),
    { buckets: true },
  ),
  {
    name: 'tcpstate_persist_backoff_capped_sockets',
    type: 'gauge',
    group: 'forensics',
    help:
      'Sockets on the persist timer whose zero-window probe interval has reached the cap, per state: max(RTO, 200 ms) x 2^backoff >= tcp_rto_max (120 s, TCP_RTO_MAX, unless net.ipv4.tcp_rto_max_ms says otherwise), from the backoff and RTO tcp_info reports for each socket (tcpi_backoff, tcpi_rto). Exact, unlike the time to the next probe. For the states whose tcp_info the source reads (FIN-WAIT-1); absent with --source proc.',
    labels: ['state'],
    samples: from(
      (snap) => snap,
      function* (snap) {
        const f = snap.forensics;
        if (f === undefined) return;
        const cap = snap.kernel.rtoMaxSeconds ?? TCP_RTO_MAX_SECONDS;
        for (const state of PERSIST_STATES) {
          const intervals = f.probeIntervals[state];
          if (intervals !== undefined) yield s([state], cappedSockets(intervals, cap));
        }
      },
    ),
  },
  {
    name: 'tcpstate_fin_wait1_lifetime_seconds',
    type: 'histogram',
    group: 'forensics',
    help:
      'Lifetimes of tracked FIN-WAIT-1 sockets, observed when one leaves FIN-WAIT-1: from its start (first seen, or earlier by the kernel clock: see tcpstate_state_age_seconds) to the last poll that saw it (resolution: the poll interval), by how it ended: moved_on (seen next in FIN-WAIT-2, CLOSING or TIME-WAIT) or vanished (in no state: aborted, reset, killed; see tcpstate_aborts_total). Cumulative since start: rate() works. Buckets on the kernel zero-window probe schedule.',
    labels: ['ended'],
    samples: (ctx) => {
      const out: Sample[] = [];
      for (const ended of LIFETIME_ENDS) {
        const h = ctx.stats.finWait1Exits.lifetime[ended];
        for (let i = 0; i < h.bounds.length; i++) out.push({ labels: [ended, String(h.bounds[i])], value: h.cumulative[i]!, suffix: '_bucket' });
        out.push({ labels: [ended, '+Inf'], value: h.count, suffix: '_bucket' });
        out.push({ labels: [ended], value: h.sum, suffix: '_sum' });
        out.push({ labels: [ended], value: h.count, suffix: '_count' });
      }
      return out;
    },
  },
  {
    name: 'tcpstate_fin_wait1_exits_total',
    type: 'counter',
    group: 'forensics',
    help:
      'Tracked FIN-WAIT-1 sockets that left FIN-WAIT-1 since start, by where the next socket table shows them: fin_wait2, closing, time_wait (found by socket cookie or 4-tuple), or vanished (in no state any more: aborted on timeout or memory, reset, killed with ss -K, or moved on and gone between two polls).',
    labels: ['to'],
    samples: (ctx) => FIN_WAIT1_EXITS.map((to) => s([to], ctx.stats.finWait1Exits.exits[to])),
  },
  {
    name: 'tcpstate_stuck_sockets',
    type: 'gauge',
    group: 'forensics',
    help: 'FIN-WAIT-1 sockets older than --stuck-after (age as in tcpstate_state_age_seconds).',
    labels: ['state'],
    samples: from(
      (snap) => snap.forensics,
      (f) => [s([TRACKED_STATE], f.stuck)],
    ),
  },
  {
    name: 'tcpstate_untracked_sockets',
    type: 'gauge',
    group: 'forensics',
    help: 'FIN-WAIT-1 sockets not followed across polls because --stuck.max-tracked was reached (their age is unknown).',
    labels: ['state'],
    samples: from(
      (snap) => snap.forensics,
      (f) => [s([TRACKED_STATE], f.untracked)],
    ),
  },
  {
    name: 'tcpstate_untracked_observations_total',
    type: 'counter',
    group: 'forensics',
    help: 'FIN-WAIT-1 socket observations left untracked since start, summed over polls (--stuck.max-tracked reached).',
    labels: [],
    samples: (ctx) => [s([], ctx.stats.untrackedTotal)],
  },
  perPort(
    'tcpstate_port_sockets',
    'Sockets per local listening port (server side) and state; port="other" holds client sockets (every state) and the ports beyond --ports.top or outside --ports.',
    PORT_STATES,
    TCP_STATES,
    (x) => x.sockets,
  ),
  perPort(
    'tcpstate_port_send_queue_bytes',
    'Send-Q bytes per local listening port for the states that can hold bytes; port="other" as for tcpstate_port_sockets (every state but LISTEN).',
    PORT_BYTE_STATES,
    NOT_LISTEN,
    (x) => x.sendQueueBytes,
  ),

  perListenPort(
    'tcpstate_listen_queue_sockets',
    'Connections waiting for accept() on the listening sockets of each port (LISTEN Recv-Q); port="other" as for tcpstate_port_sockets.',
    (x) => x.queued,
  ),
  perListenPort(
    'tcpstate_listen_backlog_sockets',
    'Backlog of the listening sockets of each port (LISTEN Send-Q: connections the accept queue may hold); absent with --source proc, whose table has no backlog.',
    (x) => x.backlog,
  ),
  perListenPort(
    'tcpstate_listen_full_listeners',
    'Listening sockets of each port whose accept queue is full (more waiting than the backlog): the kernel drops new handshakes (TcpExt ListenOverflows). Absent with --source proc.',
    (x) => x.full,
  ),

  // Opt-in (--peers.metrics-top k > 0): the k peer networks holding the most FIN-WAIT-1 bytes and
  // network="other" for the rest; no series at all by default (peer networks are unbounded data).
  peerNetworkMetric(
    'tcpstate_peer_network_sockets',
    'FIN-WAIT-1 sockets per remote network (--peers.ipv4-prefix, --peers.ipv6-prefix) for the --peers.metrics-top networks holding the most bytes; network="other": the rest. Only with --peers.metrics-top > 0.',
    (x) => x.sockets,
  ),
  peerNetworkMetric(
    'tcpstate_peer_network_send_queue_bytes',
    'Send-Q bytes of FIN-WAIT-1 sockets per remote network, as tcpstate_peer_network_sockets. Only with --peers.metrics-top > 0.',
    (x) => x.bytes,
  ),

  // Kernel-wide, host.
  kernelScalar('tcpstate_orphans', 'Orphaned TCP sockets (sockstat orphan): full sockets closed by their process and still alive. Host-wide.', (k) => k.orphans),
  kernelScalar('tcpstate_orphans_limit', 'net.ipv4.tcp_max_orphans: beyond it the kernel kills orphans with an RST. Host-wide.', (k) => k.orphansLimit),
  kernelScalar('tcpstate_memory_bytes', 'Memory allocated to TCP sockets (sockstat mem pages × page size). Host-wide.', (k) => k.memoryBytes),
  kernelLevels(
    'tcpstate_memory_limit_bytes',
    'net.ipv4.tcp_mem levels in bytes: min (no pressure below), pressure (start moderating), max (refuse allocations, kill orphans). Host-wide.',
    (k) => k.memoryLimitBytes,
  ),
  kernelScalar('tcpstate_sockstat_allocated_sockets', 'TCP sockets allocated (sockstat alloc), both families, closed ones included. Host-wide.', (k) => k.allocated),
  // Kernel-wide, this network namespace.
  {
    name: 'tcpstate_sockstat_inuse_sockets',
    type: 'gauge',
    group: 'kernel',
    help: 'Hashed full TCP sockets (sockstat/sockstat6 inuse), LISTEN and orphans included. Per network namespace.',
    labels: ['family'],
    samples: from(
      (snap) => snap.kernel.inuse,
      (inuse) => FAMILIES.flatMap((family) => (inuse[family] === undefined ? [] : [s([family], inuse[family])])),
    ),
  },
  kernelScalar('tcpstate_sockstat_timewait_sockets', 'TIME-WAIT (and orphaned FIN-WAIT-2) minisockets (sockstat tw). Per network namespace.', (k) => k.timewait),
  kernelScalar('tcpstate_sysctl_tcp_orphan_retries', 'net.ipv4.tcp_orphan_retries (0 means 8 while the peer is alive).', (k) => k.orphanRetries),
  kernelScalar('tcpstate_sysctl_tcp_fin_timeout_seconds', 'net.ipv4.tcp_fin_timeout: lifetime of orphaned FIN-WAIT-2 only (never FIN-WAIT-1).', (k) => k.finTimeoutSeconds),
  kernelScalar('tcpstate_sysctl_tcp_retries2', 'net.ipv4.tcp_retries2: retransmissions before giving up; also caps the zero-window probe backoff.', (k) => k.retries2),
  kernelScalar(
    'tcpstate_sysctl_tcp_rto_max_seconds',
    'net.ipv4.tcp_rto_max_ms in seconds: the most a retransmission or zero-window probe waits (recent kernels, probably since 6.15; absent on older ones, where it is the constant 120 s).',
    (k) => k.rtoMaxSeconds,
  ),
  kernelScalar('tcpstate_sysctl_tcp_max_tw_buckets', 'net.ipv4.tcp_max_tw_buckets: TIME-WAIT minisockets the namespace may hold.', (k) => k.maxTimewaitBuckets),
  kernelLevels('tcpstate_sysctl_tcp_wmem_bytes', 'net.ipv4.tcp_wmem: min, default and max send buffer per socket.', (k) => k.wmemBytes),
  {
    name: 'tcpstate_aborts_total',
    type: 'counter',
    group: 'kernel',
    help: 'Connections the kernel aborted, by reason (TcpExt TCPAbortOn*, TCPAbortFailed). Per network namespace.',
    labels: ['reason'],
    samples: from(
      (snap) => snap.kernel.tcpExt,
      (ext) =>
        Object.entries(ABORT_COUNTERS).flatMap(([reason, counter]) => {
          const v = ext.get(counter);
          return v === undefined ? [] : [s([reason], v)];
        }),
    ),
  },
  tcpExt('tcpstate_zero_window_probes_total', 'TCPWinProbe', 'Zero-window probes sent (persist timer expiries), this network namespace. (TcpExt TCPWinProbe)'),
  tcpExt('tcpstate_zero_window_advertised_total', 'TCPToZeroWindowAdv', 'Times this host advertised a zero receive window (it was the slow reader). (TcpExt TCPToZeroWindowAdv)'),
  tcpExt('tcpstate_zero_window_reopened_total', 'TCPFromZeroWindowAdv', 'Times this host reopened a receive window it had advertised as zero. (TcpExt TCPFromZeroWindowAdv)'),
  tcpExt('tcpstate_zero_window_wanted_total', 'TCPWantZeroWindowAdv', 'Times this host wanted to advertise a zero window but could not shrink it. (TcpExt TCPWantZeroWindowAdv)'),
  tcpExt('tcpstate_zero_window_drops_total', 'TCPZeroWindowDrop', 'Incoming segments dropped because the receive window was zero. (TcpExt TCPZeroWindowDrop)'),
  tcpExt(
    'tcpstate_listen_overflows_total',
    'ListenOverflows',
    "Times a listener's accept queue was full (more than its backlog waiting for accept()): the SYN or the handshake's last ACK was dropped. (TcpExt ListenOverflows)",
  ),
  tcpExt(
    'tcpstate_listen_drops_total',
    'ListenDrops',
    'SYNs and handshake ACKs dropped on the way to a listener: the overflows above plus other drops (no memory, no route, SYN queue full). (TcpExt ListenDrops)',
  ),
  tcpExt('tcpstate_memory_pressures_total', 'TCPMemoryPressures', 'Times TCP entered memory pressure (tcp_mem pressure level crossed). (TcpExt TCPMemoryPressures)'),
  tcpExt(
    'tcpstate_memory_pressure_seconds_total',
    'TCPMemoryPressuresChrono',
    'Time spent under TCP memory pressure (TcpExt TCPMemoryPressuresChrono, ms).',
    1000,
  ),

  // Self-health.
  selfGauge('tcpstate_source_up', 'Whether the source was read successfully in the latest poll (1) or failed (0).', ['source'], (snap) =>
    snap.sources.map((src) => s([src.source], src.up ? 1 : 0)),
  ),
  selfGauge('tcpstate_source_duration_seconds', 'Time the latest poll spent reading and parsing the source.', ['source'], (snap) =>
    snap.sources.map((src) => s([src.source], src.durationSeconds)),
  ),
  selfGauge('tcpstate_last_poll_timestamp_seconds', 'When the latest poll finished, in seconds since the epoch.', [], (snap) => [s([], snap.takenAtMs / 1000)]),
  {
    ...selfGauge('tcpstate_snapshot_age_seconds', 'Age of the snapshot this scrape is served from.', [], (snap, ctx) => [
      s([], Math.max(0, (ctx.nowMs - snap.takenAtMs) / 1000)),
    ]),
    perScrape: true,
  },
  selfGauge('tcpstate_poll_duration_seconds', 'Wall time of the latest poll, all sources included.', [], (snap) => [s([], snap.pollDurationSeconds)]),
  selfCounter('tcpstate_parse_errors_total', 'Source lines that could not be parsed and were skipped.', ['source'], (stats) =>
    [...stats.parseErrorsTotal].map(([source, n]) => s([source], n)),
  ),
  selfCounter('tcpstate_polls_total', 'Polls completed since start.', [], (stats) => [s([], stats.pollsTotal)]),
  selfGaugeOfStats('tcpstate_poll_thread_heap_size_total_bytes', "The poll thread's V8 heap size after its latest poll (nodejs_heap_size_total_bytes is the HTTP thread's).", (h) => h.totalBytes),
  selfGaugeOfStats('tcpstate_poll_thread_heap_size_used_bytes', "The poll thread's used V8 heap after its latest poll (nodejs_heap_size_used_bytes is the HTTP thread's).", (h) => h.usedBytes),
  selfGaugeOfStats(
    'tcpstate_poll_thread_external_memory_bytes',
    "Memory held outside the poll thread's V8 heap by its objects (read buffers) after its latest poll (nodejs_external_memory_bytes is the HTTP thread's).",
    (h) => h.externalBytes,
  ),
  selfCounter('tcpstate_polls_skipped_total', 'Scheduled polls skipped because the previous poll was still running.', [], (stats) => [
    s([], stats.pollsSkippedTotal),
  ]),
];

function stateDist(state: TcpState, d: Distribution | undefined): Array<[readonly string[], Distribution]> {
  return d === undefined ? [] : [[[state], d]];
}

/** A {network, state="fin_wait1"} gauge over the labelled peer networks and "other" (the rest, so the sum is the state's total). */
function peerNetworkMetric(name: string, help: string, pick: (x: { sockets: number; bytes: number }) => number): MetricSpec {
  return {
    name,
    type: 'gauge',
    group: 'forensics',
    help,
    labels: ['network', 'state'],
    peersOptIn: true,
    samples: from(
      (snap) => snap.peers?.networks,
      function* (p) {
        if (p.metricsTop === 0) return;
        let sockets = p.sockets;
        let bytes = p.bytes;
        for (const n of p.labelled) {
          yield s([n.network, TRACKED_STATE], pick(n));
          sockets -= n.sockets;
          bytes -= n.bytes;
        }
        yield s(['other', TRACKED_STATE], pick({ sockets, bytes }));
      },
    ),
  };
}

/** A {port} gauge over the listeners of each port label; no sample where the figure is unknown. */
function perListenPort(name: string, help: string, pick: (x: ListenerFigures) => number | null): MetricSpec {
  return {
    name,
    type: 'gauge',
    group: 'forensics',
    help,
    labels: ['port'],
    samples: from(
      (snap) => snap.forensics,
      function* (f) {
        for (const [port, x] of f.listeners) {
          const v = pick(x);
          if (v !== null) yield s([port], v);
        }
      },
    ),
  };
}

/** Per-port figures: `states` for each listening port, `otherStates` for port="other" (clients included). */
function perPort(
  name: string,
  help: string,
  states: readonly TcpState[],
  otherStates: readonly TcpState[],
  pick: (x: { sockets: number; sendQueueBytes: number }) => number,
): MetricSpec {
  return {
    name,
    type: 'gauge',
    group: 'forensics',
    help,
    labels: ['port', 'state'],
    samples: from(
      (snap) => snap.forensics,
      function* (f) {
        for (const [port, figures] of f.ports) for (const state of port === 'other' ? otherStates : states) yield s([port, state], pick(figures[state]));
      },
    ),
  };
}

{
  const names = new Set<string>();
  for (const m of CATALOGUE) {
    checkFamily(m);
    if (m.perNetns === true) checkFamily({ ...m, labels: [...m.labels, 'netns'] });
    if (names.has(m.name)) throw new Error(`${m.name} twice in the catalogue`);
    names.add(m.name);
  }
}
