// What the sources produce, the contract between the raw and parse stages and aggregation: one
// record per socket (pushed into a ParseSink), and the kernel-wide figures. Units are converted
// once, by the parser that reads the raw text: queue sizes in bytes, timers in seconds.

/** Where the socket table is read from. */
export type TableSource = 'netlink' | 'ss' | 'proc';
/** `--source`: one table source, or `auto` (the first of netlink, ss, proc that works). */
export type SourceMode = 'auto' | TableSource;

/** `state` label values, spelled as node_exporter's tcpstat collector spells them. */
export const TCP_STATES = [
  'established',
  'syn_sent',
  'syn_recv',
  'fin_wait1',
  'fin_wait2',
  'time_wait',
  'close',
  'close_wait',
  'last_ack',
  'listen',
  'closing',
] as const;
export type TcpState = (typeof TCP_STATES)[number];

export const FAMILIES = ['ipv4', 'ipv6'] as const;
export type Family = (typeof FAMILIES)[number];

/** Timer kinds exported as `timer` label values. */
export const TIMER_KINDS = ['retransmit', 'keepalive', 'timewait', 'persist'] as const;
export type TimerKind = (typeof TIMER_KINDS)[number];

/**
 * States a socket only reaches after the application called close(): with inode 0 in one of
 * these, nobody owns the socket any more (docs/kernel-and-ss.md#orphans). TIME-WAIT, SYN-RECV and
 * not-yet-accepted children also have inode 0 but are not orphans.
 */
export const ORPHAN_STATES: ReadonlySet<TcpState> = new Set<TcpState>([
  'fin_wait1',
  'fin_wait2',
  'closing',
  'last_ack',
]);

export interface SocketRecord {
  family: Family;
  state: TcpState;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Bytes not yet read by the application (LISTEN: accept-queue length). */
  recvQueue: number;
  /** Bytes written but not yet acknowledged, +1 for a queued FIN (LISTEN via ss: the backlog). */
  sendQueue: number;
  /** Pending timer, or undefined when none (or one we do not export, e.g. delack). */
  timer: TimerKind | undefined;
  /** Seconds until that timer fires; 0 when due or overdue. */
  timerSeconds: number;
  /** Retransmits (retransmit timer) or unanswered probes (persist/keepalive). */
  timerCount: number;
  /** Socket inode; 0 when no file refers to it; undefined when the source did not show it. */
  inode: number | undefined;
  /** skmem `w` (sk_wmem_queued): memory the write queue really pins, when the source shows it. */
  wmemQueued: number | undefined;
  /** Zero-window probe backoff exponent (`ss -i` backoff:N), when the source shows it. */
  backoff: number | undefined;
  /** Retransmission timeout in seconds (tcp_info tcpi_rto, `ss -i` rto:), when the source shows tcp_info. */
  rtoSeconds: number | undefined;
  /**
   * Seconds since the socket last sent a data segment (tcp_info tcpi_last_data_sent, `ss -i`
   * lastsnd:), by the kernel's clock, when the source shows tcp_info. Zero-window probes carry no
   * data and do not reset it.
   */
  lastDataSentSeconds: number | undefined;
  /**
   * What tells this socket from others. A number is a generated socket cookie (Linux >= 4.1,
   * `ss -e` sk:, inet_diag): never reused, so it alone identifies the socket. A string is a
   * (hashed) kernel address (/proc/net/tcp, or the cookie of older kernels, which was the address):
   * a later socket may get it again, so it tells sockets apart only together with the 4-tuple.
   * Undefined when the source hides it.
   */
  identity: number | string | undefined;
}

/** Where a parser reports a line it could not parse: counted and skipped, never thrown. */
export interface ErrorSink {
  error(reason: string, line: string): void;
}

/**
 * Where a streaming parser delivers its records. A parser may reuse the record object for its
 * next line: a sink that keeps a record must copy it.
 */
export interface ParseSink extends ErrorSink {
  record(record: SocketRecord): void;
}

/** Kernel-wide figures (sockstat, sysctls, netstat), read once per poll. */
export interface KernelFigures {
  /** sockstat `orphan`: orphaned full sockets, host-wide (what tcp_max_orphans limits). */
  orphans?: number;
  /** sockstat `mem` × page size: memory of all TCP sockets, host-wide (what tcp_mem limits). */
  memoryBytes?: number;
  /** sockstat/sockstat6 `inuse`: hashed full sockets of this netns, LISTEN and orphans included. */
  inuse?: Partial<Record<Family, number>>;
  /** sockstat `tw`: TIME-WAIT (and FIN-WAIT-2) minisockets of this netns. */
  timewait?: number;
  /** sockstat `alloc`: TCP sockets allocated, host-wide, both families, closed ones included. */
  allocated?: number;
  orphansLimit?: number;
  memoryLimitBytes?: { min: number; pressure: number; max: number };
  orphanRetries?: number;
  finTimeoutSeconds?: number;
  retries2?: number;
  /** net.ipv4.tcp_rto_max_ms in seconds (recent kernels, probably since 6.15; without it the constant TCP_RTO_MAX, 120 s). */
  rtoMaxSeconds?: number;
  maxTimewaitBuckets?: number;
  wmemBytes?: { min: number; default: number; max: number };
  /** TcpExt counters of /proc/net/netstat by kernel name. */
  tcpExt?: ReadonlyMap<string, number>;
}

/** A record with every optional field unknown, for parsers to fill. */
export function emptyRecord(family: Family, state: TcpState): SocketRecord {
  return {
    family,
    state,
    localAddress: '',
    localPort: 0,
    remoteAddress: '',
    remotePort: 0,
    recvQueue: 0,
    sendQueue: 0,
    timer: undefined,
    timerSeconds: 0,
    timerCount: 0,
    inode: undefined,
    wmemQueued: undefined,
    backoff: undefined,
    rtoSeconds: undefined,
    lastDataSentSeconds: undefined,
    identity: undefined,
  };
}

/** Makes `r` what emptyRecord() returns, for a parser that reuses one record object. */
export function clearRecord(r: SocketRecord, family: Family, state: TcpState): SocketRecord {
  r.family = family;
  r.state = state;
  r.localAddress = '';
  r.localPort = 0;
  r.remoteAddress = '';
  r.remotePort = 0;
  r.recvQueue = 0;
  r.sendQueue = 0;
  r.timer = undefined;
  r.timerSeconds = 0;
  r.timerCount = 0;
  r.inode = undefined;
  r.wmemQueued = undefined;
  r.backoff = undefined;
  r.rtoSeconds = undefined;
  r.lastDataSentSeconds = undefined;
  r.identity = undefined;
  return r;
}

/**
 * A cookie as an identity: a number when it is a generated cookie (a counter, far below 2^53),
 * else its hex text (a kernel address, used as the cookie before Linux 4.1).
 */
export function cookieIdentity(high: number, low: number): number | string {
  return high < 0x20_0000 ? high * 0x1_0000_0000 + low : high.toString(16) + low.toString(16).padStart(8, '0');
}

export function isOrphan(r: Pick<SocketRecord, 'state' | 'inode'>): boolean {
  return r.inode === 0 && ORPHAN_STATES.has(r.state);
}

/**
 * A timer further away than this is a wrapped negative value: kernels < 3.7 (/proc) and
 * < 5.5 (inet_diag) print overdue timers as huge numbers (docs/kernel-and-ss.md#proc-net-tcp,
 * #inet-diag). The longest real timer is keepalive, capped at 32767 s by TCP_KEEPIDLE.
 */
export const TIMER_WRAP_SECONDS = 86_400;
