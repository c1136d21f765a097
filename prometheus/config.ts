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

  /** TCP memory above tcp_mem[1] (pressure): the kernel starts shrinking buffers of every socket. */
  memoryPressureFor: string;
  /** Fraction of tcp_mem[2] (max) at which to page: at max, allocations fail and orphans die. */
  memoryMaxRatio: number;
  memoryMaxFor: string;

  /** Send-Q bytes held in FIN-WAIT-1 on one host: data closed applications will never see delivered. */
  finWait1Bytes: number;
  finWait1For: string;

  /**
   * A pending persist timer longer than 102.4 s (= 200 ms × 2^9, the last doubling below the cap)
   * can only be on the 120 s cap. Over a 5 m window, a 15 s poll samples every 120 s cycle at least
   * once while more than 102.4 s remain (17.6 s per cycle), so the maximum over the window sees it.
   */
  persistCapSeconds: number;
  persistCapWindow: string;
  persistCapFor: string;

  /** Connections aborted on timeout per second (zero-window orphans given up, RTO, keepalive). */
  abortTimeoutRate: number;
  abortWindow: string;
  abortTimeoutFor: string;

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
  memoryPressureFor: '5m',
  memoryMaxRatio: 0.9,
  memoryMaxFor: '2m',
  finWait1Bytes: 256 * 1024 * 1024,
  finWait1For: '15m',
  persistCapSeconds: 102.4,
  persistCapWindow: '5m',
  persistCapFor: '5m',
  abortTimeoutRate: 1,
  abortWindow: '5m',
  abortTimeoutFor: '10m',
  exporterDownFor: '5m',
  sourceDownFor: '10m',
  staleSeconds: 120,
  staleFor: '5m',
};
