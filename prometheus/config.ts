// The one place where the alert and recording rules' selectors and thresholds live, each with the
// reason for its value. `npm run rules` renders prometheus/tcpstate.rules.yml from it; tests render
// it with overrides (shorter `for`, lower thresholds) instead of copying the rules.

export interface RulesConfig {
  /** Label matchers selecting the exporter's targets, e.g. `job="tcpstate"`. */
  selector: string;
  /** Labels identifying one exporter (one host). */
  groupBy: readonly string[];
  /**
   * Absolute URL of your copy of docs/runbook.md; alerts link to `<runbookUrl>#<alert anchor>`.
   * Absolute because Alertmanager, its receivers and Grafana show it outside this repository.
   */
  runbookUrl: string;

  /**
   * Orphans against tcp_max_orphans. The kernel counts an orphan double when its peer kept the
   * window closed (or sent nothing) for more than 2 × TCP_RTO_MAX = 240 s, and double again after
   * a soft ICMP error (tcp_out_of_resources() → tcp_too_many_orphans(shift)). So orphans stuck on
   * zero-window peers are killed at half the limit, and at a quarter with ICMP errors: warn at a
   * quarter, page at a half.
   */
  orphansWarningRatio: number;
  orphansCriticalRatio: number;
  orphansFor: string;

  /**
   * Trend alerts, in the style of node-mixin's filesystem fill-up alerts: a straight line
   * (`predict_linear`) through the last `trendWindow` of a gauge, looking `trendHorizon` ahead.
   * The window is short because TCP memory and orphans move in minutes, not days: the incident this
   * was made for grew 40 MB a minute. The alert must hold for `trendFor` (a burst is not a trend).
   */
  trendWindow: string;
  trendHorizon: string;
  trendFor: string;
  /** Below this fraction of the tcp_mem pressure level, a trend is noise and stays silent. */
  memoryTrendMinRatio: number;
  /** Below this fraction of tcp_max_orphans, a trend is noise and stays silent. */
  orphansTrendMinRatio: number;

  /** TCP memory above tcp_mem[1] (pressure): the kernel starts shrinking buffers of every socket. */
  memoryPressureFor: string;
  /** Fraction of tcp_mem[2] (max) at which to page: at max, allocations fail and orphans die. */
  memoryMaxRatio: number;
  memoryMaxFor: string;

  /** Send-Q bytes held in FIN-WAIT-1 on one host: data closed applications will never see delivered. */
  finWait1Bytes: number;
  /**
   * The same alert relative to the host: FIN-WAIT-1 Send-Q above this fraction of the tcp_mem
   * pressure level (which the kernel sizes from RAM). A fixed byte count means nothing across
   * machine sizes; the alert fires at whichever of the two is lower.
   */
  finWait1PressureRatio: number;
  finWait1For: string;

  /**
   * Only for the `proc` source, which has no tcp_info: elsewhere TcpOrphansStuckOnZeroWindow counts
   * the sockets at the cap exactly (tcpstate_persist_backoff_capped_sockets). A pending persist
   * timer longer than 102.4 s (= 200 ms × 2^9) is at or next to the 120 s cap: with an RTO above
   * 200 ms, backoff 9 already waits longer (106.5 s at 208 ms) without being capped. Over a 5 m
   * window, a 15 s poll samples every 120 s cycle at least once while more than 102.4 s remain
   * (17.6 s per cycle), so the maximum over the window sees it.
   */
  persistCapSeconds: number;
  persistCapWindow: string;
  persistCapFor: string;

  /** Connections aborted on timeout per second (zero-window orphans given up, RTO, keepalive). */
  abortTimeoutRate: number;
  abortWindow: string;
  abortTimeoutFor: string;

  /**
   * CLOSE-WAIT sockets of one local port: the peer closed and the application never did. A healthy
   * application closes within milliseconds, so a count that stays above a small number for a
   * quarter of an hour is a leak (each holds a file descriptor; there is no kernel timeout).
   */
  closeWaitSockets: number;
  closeWaitFor: string;
  /**
   * Orphaned FIN-WAIT-2 sockets (this host closed, the peer never does): each lives
   * tcp_fin_timeout (60 s), so the count is the rate of such closes × 60 s; 500 is about 8 per
   * second that the peers leave half-closed.
   */
  finWait2Sockets: number;
  finWait2For: string;
  /** Orphaned LAST-ACK sockets: the FIN after the peer's is not acknowledged (peer gone or not reading). */
  lastAckSockets: number;
  lastAckFor: string;
  /**
   * Half-open handshakes on one local port. A handshake spends one round trip in SYN-RECV, so a
   * standing count is a flood or SYN-ACKs that never reach the clients.
   */
  synRecvSockets: number;
  synRecvFor: string;
  /** Accept-queue overflows per second (TcpExt ListenOverflows) over `listenOverflowWindow`; 0 = any. */
  listenOverflowRate: number;
  listenOverflowWindow: string;
  listenOverflowFor: string;
  /**
   * A listener whose accept queue stays full (tcpstate_listen_full_listeners): the port the
   * ListenOverflows counter cannot name. A queue full for a poll or two is a burst; for two
   * minutes the application is not accepting.
   */
  listenFullFor: string;

  /**
   * Orphans that no socket table the exporter reads accounts for. sockstat's orphan count is
   * host-wide (one counter for every network namespace); tcpstate_orphan_sockets only covers the
   * tables read, so a gap means orphans in a namespace the exporter does not look at (a pod's, a
   * container's), and FIN-WAIT-1 panels that show 0 while the kernel holds them.
   * What "well above" is comes from the kernel's own accounting: the orphan count is a per-CPU
   * counter that the kernel itself only reads approximately when it enforces tcp_max_orphans
   * (tcp_too_many_orphans(): before 5.16 a percpu_counter read without summing, off by up to one
   * batch of at least 32 per CPU; since 5.16 a sum cached for 100 ms). So differences of a few
   * dozen are noise even to the kernel: the floor is two such batches, 64. The ratio covers the
   * orphans born and dying between the sockstat read and the table dump on a busy host.
   */
  unaccountedOrphansMin: number;
  unaccountedOrphansRatio: number;
  unaccountedOrphansFor: string;

  exporterDownFor: string;
  sourceDownFor: string;
  /** Snapshot age beyond which the exporter serves stale data (8 × the default 15 s poll). */
  staleSeconds: number;
  staleFor: string;
}

/**
 * Where alerts link by default: a placeholder on a reserved domain (RFC 2606), so that an unset
 * runbook URL is obvious in a notification instead of silently pointing at someone else's copy.
 * Set `runbookUrl` in your rules config (README "Alert rules") to where you serve docs/runbook.md.
 */
export const DEFAULT_RUNBOOK_URL = 'https://runbooks.example.com/tcpstate-exporter/runbook.md';

export const DEFAULT_CONFIG: RulesConfig = {
  selector: 'job="tcpstate"',
  groupBy: ['job', 'instance'],
  runbookUrl: DEFAULT_RUNBOOK_URL,
  orphansWarningRatio: 0.25,
  orphansCriticalRatio: 0.5,
  orphansFor: '5m',
  trendWindow: '15m',
  trendHorizon: '1h',
  trendFor: '5m',
  memoryTrendMinRatio: 0.1,
  orphansTrendMinRatio: 0.05,
  memoryPressureFor: '5m',
  memoryMaxRatio: 0.9,
  memoryMaxFor: '2m',
  finWait1Bytes: 256 * 1024 * 1024,
  finWait1PressureRatio: 0.25,
  finWait1For: '15m',
  persistCapSeconds: 102.4,
  persistCapWindow: '5m',
  persistCapFor: '5m',
  abortTimeoutRate: 1,
  abortWindow: '5m',
  abortTimeoutFor: '10m',
  closeWaitSockets: 20,
  closeWaitFor: '15m',
  finWait2Sockets: 500,
  finWait2For: '10m',
  lastAckSockets: 100,
  lastAckFor: '10m',
  synRecvSockets: 100,
  synRecvFor: '5m',
  listenOverflowRate: 0,
  listenOverflowWindow: '5m',
  listenOverflowFor: '5m',
  listenFullFor: '2m',
  unaccountedOrphansMin: 64,
  unaccountedOrphansRatio: 0.1,
  unaccountedOrphansFor: '10m',
  exporterDownFor: '5m',
  sourceDownFor: '10m',
  staleSeconds: 120,
  staleFor: '5m',
};
