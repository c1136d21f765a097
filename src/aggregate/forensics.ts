// Stuck-socket forensics, computed while records stream by, in bounded memory:
// - point-in-time distributions (persist timer waits, backoff, Send-Q and write memory per
//   FIN-WAIT-1 socket, time spent in FIN-WAIT-1);
// - FIN-WAIT-1 sockets recognised across polls (4-tuple + socket identity), with first-seen times
//   carried from the previous poll; vanished sockets are dropped by not being carried over;
// - per listening port figures (bounded: top K ports or --ports, the rest folded into "other");
// - the worst N sockets per state, by Send-Q and by age.

import { TCP_STATES, isOrphan, type Family, type SocketRecord, type TcpState, type TimerKind } from '../model.ts';
import { AGE_BOUNDS, BACKOFF_BOUNDS, BYTES_BOUNDS, Buckets, CumulativeHistogram, PERSIST_BOUNDS, type Distribution, type HistogramView } from './buckets.ts';
import { TopN } from './topn.ts';

/** States whose sockets can have a persist timer (they still send data). */
export const PERSIST_STATES: readonly TcpState[] = ['established', 'fin_wait1', 'close_wait', 'last_ack', 'closing'];
/** States whose time-in-state is tracked across polls. */
export const TRACKED_STATE: TcpState = 'fin_wait1';
/**
 * The series budget of the per-port families (README "Per-port attribution, bounded"). A listening
 * port's own series cover the states a server-side socket can be in: SYN-SENT is a client's state
 * and CLOSE a socket bound but neither listening nor connected, so those count under "other".
 */
export const PORT_STATES: readonly TcpState[] = ['established', 'syn_recv', 'fin_wait1', 'fin_wait2', 'time_wait', 'close_wait', 'last_ack', 'listen', 'closing'];
/**
 * The states whose Send-Q can hold bytes on a server-side socket: data not yet acknowledged (a
 * TCP Fast Open child in SYN-RECV may already have sent some), +1 for a queued FIN. FIN-WAIT-2 and
 * TIME-WAIT have everything acknowledged; LISTEN's Send-Q is its backlog.
 */
export const PORT_BYTE_STATES: readonly TcpState[] = ['established', 'syn_recv', 'fin_wait1', 'close_wait', 'last_ack', 'closing'];
const SERVER_STATES: ReadonlySet<TcpState> = new Set(PORT_STATES);

/** Listening ports followed individually before folding into "other" (bounds memory on hosts with many listeners). */
export const MAX_LISTENING_PORTS = 4096;

export interface ForensicsOptions {
  /** A FIN-WAIT-1 socket older than this is stuck. */
  stuckAfterSeconds: number;
  /** Most FIN-WAIT-1 sockets followed across polls; the rest are counted as untracked. Sockets followed in the previous poll keep their place first. */
  maxTracked: number;
  /** Ports to attribute explicitly (--ports); undefined: the top `topPorts` by FIN-WAIT-1 bytes. */
  ports: readonly number[] | undefined;
  topPorts: number;
  /** Sockets kept per state for /sockets. */
  topSockets: number;
}

export const DEFAULT_FORENSICS: ForensicsOptions = {
  stuckAfterSeconds: 60,
  maxTracked: 100_000,
  ports: undefined,
  topPorts: 10,
  topSockets: 100,
};

/** What one poll hands the next: kept by the poller, never published in a snapshot. */
export interface CrossPoll {
  /** When that poll read the table (ms since the epoch): every socket in firstSeen was seen then. */
  readonly seenAtMs: number;
  /**
   * Start times (ms since the epoch) of the FIN-WAIT-1 sockets tracked, by identity key: when
   * first seen, or earlier when the kernel said at first sight how long it had already been stuck.
   */
  readonly firstSeen: ReadonlyMap<number | string, number>;
  /** 4-tuple → key of the tracked sockets whose key is not a socket cookie (their next state is found by 4-tuple). */
  readonly byTuple: ReadonlyMap<string, string>;
  /** Ports something listened on. */
  readonly listening: ReadonlySet<number>;
}

export const NO_PREVIOUS_POLL: CrossPoll = { seenAtMs: 0, firstSeen: new Map(), byTuple: new Map(), listening: new Set() };

/**
 * Where a tracked FIN-WAIT-1 socket went, told by the next table: a state it can move on to, found
 * by its socket cookie (a TIME-WAIT minisocket keeps its socket's cookie) or its 4-tuple; or
 * `vanished`: in no state any more (aborted on timeout or memory, reset, killed with ss -K, or moved
 * on and gone between two polls).
 */
export const FIN_WAIT1_EXITS = ['fin_wait2', 'closing', 'time_wait', 'vanished'] as const;
export type FinWait1Exit = (typeof FIN_WAIT1_EXITS)[number];
const NEXT_STATES: ReadonlySet<TcpState> = new Set<TcpState>(['fin_wait2', 'closing', 'time_wait']);

/** The probe interval cannot exceed this (TCP_RTO_MAX; also the most tcp_rto_max_ms allows). */
export const TCP_RTO_MAX_SECONDS = 120;
/** TCP_RTO_MIN: the persist timer never waits less than this times 2^backoff (tcp_probe0_base()). */
const TCP_RTO_MIN_SECONDS = 0.2;

/**
 * The zero-window probe interval the kernel would use without the cap: max(RTO, TCP_RTO_MIN) ×
 * 2^backoff (tcp_probe0_when(), net/ipv4/tcp_output.c; docs/kernel-and-ss.md#backoff), clamped at
 * TCP_RTO_MAX. Multiplying by a power of two is exact in floating point, so comparing it with the
 * cap is exact.
 */
export function uncappedProbeInterval(rtoSeconds: number, backoff: number): number {
  return Math.min(TCP_RTO_MAX_SECONDS, Math.max(rtoSeconds, TCP_RTO_MIN_SECONDS) * 2 ** Math.min(backoff, 16));
}

/** Sockets whose probe interval has reached the cap `rtoMaxSeconds` (tcp_rto_max_ms; 120 s on kernels without it). */
export function cappedSockets(intervals: ReadonlyMap<number, number>, rtoMaxSeconds: number): number {
  let n = 0;
  for (const [interval, count] of intervals) if (interval >= rtoMaxSeconds) n += count;
  return n;
}

export interface PollContext {
  nowMs: number;
  previous: CrossPoll;
  options: ForensicsOptions;
}

export interface SocketSample {
  family: Family;
  state: TcpState;
  local: string;
  peer: string;
  /** Attributed listening port, or "other". */
  port: string;
  recvQueue: number;
  sendQueue: number;
  timer: TimerKind | null;
  timerSeconds: number | null;
  backoff: number | null;
  wmemQueued: number | null;
  /** Seconds since first seen in this state (tracked states only). */
  ageSeconds: number | null;
  orphan: boolean;
  /** Socket inode (0: orphan, no file refers to it); null when the source does not show it. For owners (/sockets, report). */
  inode: number | null;
  /** The network namespace (inode) the socket was read in; absent with --netns=own. */
  netns?: string;
}

export interface PortFigures {
  sockets: number;
  sendQueueBytes: number;
}

/** The LISTEN sockets of one port label: their accept queues against their backlogs. */
export interface ListenerFigures {
  listeners: number;
  /** Connections waiting for accept() (Σ LISTEN Recv-Q). */
  queued: number;
  /** Σ backlog (LISTEN Send-Q in ss and netlink); null when the source does not show it (/proc). */
  backlog: number | null;
  /** Listeners whose accept queue is full (queue > backlog: the kernel drops new handshakes); null as backlog. */
  full: number | null;
  /** Inodes of the listening sockets (at most MAX_LISTENER_INODES), for their owners on demand; empty when the source shows none. */
  inodes: readonly number[];
}

/** What became of the FIN-WAIT-1 sockets the previous poll tracked and this one no longer sees in FIN-WAIT-1. */
export interface FinWait1Exits {
  /** Per exit: lifetimes in seconds (from the start time tracked to the last poll that saw it). */
  readonly lifetimes: Readonly<Record<FinWait1Exit, readonly number[]>>;
}

/** How a tracked FIN-WAIT-1 socket's life ended, for the lifetime histogram: it moved on to a next state, or vanished. */
export const LIFETIME_ENDS = ['moved_on', 'vanished'] as const;
export type LifetimeEnd = (typeof LIFETIME_ENDS)[number];

/** Exits and lifetimes of tracked FIN-WAIT-1 sockets since the exporter started (cumulative). */
export interface FinWait1ExitStats {
  readonly exits: Readonly<Record<FinWait1Exit, number>>;
  readonly lifetime: Readonly<Record<LifetimeEnd, HistogramView>>;
}

/** Two tallies added up (a poll thread that was restarted: what the previous one counted, plus the new one's). */
export function addExitStats(a: FinWait1ExitStats, b: FinWait1ExitStats): FinWait1ExitStats {
  const exits = Object.fromEntries(FIN_WAIT1_EXITS.map((e) => [e, a.exits[e] + b.exits[e]])) as Record<FinWait1Exit, number>;
  const sum = (x: HistogramView, y: HistogramView): HistogramView => ({
    bounds: x.bounds,
    cumulative: x.cumulative.map((c, i) => c + (y.cumulative[i] ?? 0)),
    sum: x.sum + y.sum,
    count: x.count + y.count,
  });
  return { exits, lifetime: { moved_on: sum(a.lifetime.moved_on, b.lifetime.moved_on), vanished: sum(a.lifetime.vanished, b.lifetime.vanished) } };
}

/** Adds up each poll's exits; kept by the poller for its lifetime. */
export class FinWait1ExitTally {
  private readonly counts: Record<FinWait1Exit, number> = { fin_wait2: 0, closing: 0, time_wait: 0, vanished: 0 };
  private readonly histograms: Record<LifetimeEnd, CumulativeHistogram> = { moved_on: new CumulativeHistogram(AGE_BOUNDS), vanished: new CumulativeHistogram(AGE_BOUNDS) };

  add(exits: FinWait1Exits): void {
    for (const exit of FIN_WAIT1_EXITS) {
      const lifetimes = exits.lifetimes[exit];
      this.counts[exit] += lifetimes.length;
      const h = this.histograms[exit === 'vanished' ? 'vanished' : 'moved_on'];
      for (const l of lifetimes) h.observe(l);
    }
  }

  view(): FinWait1ExitStats {
    return Object.freeze({
      exits: Object.freeze({ ...this.counts }),
      lifetime: Object.freeze({ moved_on: this.histograms.moved_on.view(), vanished: this.histograms.vanished.view() }),
    });
  }
}

/** Most listening-socket inodes kept per port label (SO_REUSEPORT groups, IPv4 + IPv6). */
export const MAX_LISTENER_INODES = 8;

export interface Forensics {
  persistTimer: Readonly<Partial<Record<TcpState, Distribution>>>;
  /**
   * Per state, sockets on the persist timer whose backoff and RTO the source showed (tcp_info):
   * uncapped probe interval in seconds (uncappedProbeInterval()) → sockets. A state is absent when
   * no socket of it showed them (the sources read tcp_info for FIN-WAIT-1 only; never with proc).
   */
  probeIntervals: Readonly<Partial<Record<TcpState, ReadonlyMap<number, number>>>>;
  /** FIN-WAIT-1 sockets tracked in the previous poll and gone from FIN-WAIT-1 in this one. */
  exits: FinWait1Exits;

  /** FIN-WAIT-1 sockets with a persist timer only; undefined when the source showed no backoff (ss -i, netlink). */
  backoff: Distribution | undefined;
  sendQueue: Distribution;
  /** FIN-WAIT-1 only; undefined when the source showed no skmem (it needs ss -m). */
  wmemQueued: Distribution | undefined;
  age: Distribution;
  stuck: number;
  tracked: number;
  untracked: number;
  /** Port label → per-state figures; at most topPorts (or --ports) entries plus "other". */
  ports: ReadonlyMap<string, Readonly<Record<TcpState, PortFigures>>>;
  /** The same port labels → their listeners' accept queues. */
  listeners: ReadonlyMap<string, Readonly<ListenerFigures>>;
  /** Worst sockets per state, by Send-Q and (tracked states) by age. */
  top: Readonly<Partial<Record<TcpState, { bySendQueue: readonly SocketSample[]; byAge: readonly SocketSample[] }>>>;
}

/** Per port while records stream by: sockets and Send-Q per state index, listeners' accept queues. */
interface PortCounts {
  sockets: Float64Array;
  bytes: Float64Array;
  listen: { queued: number; backlog: number; full: number; inodes: number[] };
}

function newCounts(): PortCounts {
  return { sockets: new Float64Array(TCP_STATES.length), bytes: new Float64Array(TCP_STATES.length), listen: { queued: 0, backlog: 0, full: 0, inodes: [] } };
}

/** Adds one port's counts into another (a port folded into "other", or resolved late). */
function addCounts(to: PortCounts, f: PortCounts): void {
  for (let i = 0; i < TCP_STATES.length; i++) {
    to.sockets[i]! += f.sockets[i]!;
    to.bytes[i]! += f.bytes[i]!;
  }
  to.listen.queued += f.listen.queued;
  to.listen.backlog += f.listen.backlog;
  to.listen.full += f.listen.full;
  for (const i of f.listen.inodes) if (to.listen.inodes.length < MAX_LISTENER_INODES) to.listen.inodes.push(i);
}

const STATE_INDEX = new Map<TcpState, number>(TCP_STATES.map((s, i) => [s, i]));
const STATES = TCP_STATES.length;

/**
 * Sockets and Send-Q per state of the local ports not (yet) known to listen, for the first
 * MAX_LISTENING_PORTS ports seen (in that order), in flat arrays: most sockets of a busy host are
 * the client side of a connection, each on an ephemeral port of its own, and a PortCounts object
 * per port cost more to build and to reach than the counting itself (docs/performance.md "Poll
 * thread CPU"). Their figures are the same as a PortCounts per port would hold.
 */
class UnresolvedPorts {
  /** Port (0-65535) → its slot + 1, 0 for none yet; made at the first port. */
  private slotOfPort: Uint16Array | undefined;
  /** Ports outside 0-65535 (a parser never gives one; counted all the same): port → slot. */
  private readonly slotOfOddPort = new Map<number, number>();
  /** Slot → port, in the order first seen. */
  readonly ports: number[] = [];
  /** Per slot: sockets per state index, then Send-Q per state index. */
  private counts = new Float64Array(64 * 2 * STATES);
  /** A LISTEN socket's figures on a port not counted as listening (beyond MAX_LISTENING_PORTS listeners): rare, per slot. */
  private readonly listen = new Map<number, PortCounts>();

  /** The slot of a port, made on first sight; -1 once MAX_LISTENING_PORTS ports have one. */
  slot(port: number): number {
    let s: number | undefined;
    if ((port & 0xffff) === port) {
      const index = (this.slotOfPort ??= new Uint16Array(65536));
      s = index[port]! - 1;
      if (s >= 0) return s;
      s = this.add(port);
      if (s >= 0) index[port] = s + 1;
      return s;
    }
    s = this.slotOfOddPort.get(port);
    if (s !== undefined) return s;
    s = this.add(port);
    if (s >= 0) this.slotOfOddPort.set(port, s);
    return s;
  }

  count(slot: number, i: number, sendQueue: number): void {
    const base = slot * 2 * STATES;
    this.counts[base + i]!++;
    this.counts[base + STATES + i]! += sendQueue;
  }

  listenFigures(slot: number): PortCounts {
    let f = this.listen.get(slot);
    if (f === undefined) this.listen.set(slot, (f = newCounts()));
    return f;
  }

  /** Adds a slot's figures into `to`. */
  addTo(to: PortCounts, slot: number): void {
    const base = slot * 2 * STATES;
    for (let i = 0; i < STATES; i++) {
      to.sockets[i]! += this.counts[base + i]!;
      to.bytes[i]! += this.counts[base + STATES + i]!;
    }
    const f = this.listen.get(slot);
    if (f !== undefined) addCounts(to, f);
  }

  clear(): void {
    this.slotOfPort = undefined;
    this.slotOfOddPort.clear();
    this.ports.length = 0;
    this.counts = new Float64Array(0);
    this.listen.clear();
  }

  private add(port: number): number {
    const s = this.ports.length;
    if (s >= MAX_LISTENING_PORTS) return -1;
    this.ports.push(port);
    if ((s + 1) * 2 * STATES > this.counts.length) {
      const bigger = new Float64Array(Math.max(this.counts.length * 2, 64 * 2 * STATES));
      bigger.set(this.counts);
      this.counts = bigger;
    }
    return s;
  }
}
const LISTEN = STATE_INDEX.get('listen')!;
/** Per state index: what add() asks of every socket's state, looked up once (the state index) instead of in a set each. */
const IS_SERVER_STATE: readonly boolean[] = TCP_STATES.map((s) => SERVER_STATES.has(s));
const IS_NEXT_STATE: readonly boolean[] = TCP_STATES.map((s) => NEXT_STATES.has(s));
const TRACKED = STATE_INDEX.get(TRACKED_STATE)!;

/** The 4-tuple, and the namespace it was read in (with --netns, two namespaces may hold the same 4-tuple). */
function tupleOf(r: SocketRecord, netns: string | undefined): string {
  const t = `${r.localAddress} ${r.localPort} ${r.remoteAddress} ${r.remotePort}`;
  return netns === undefined ? t : `${t} ${netns}`;
}

function endpoint(family: Family, addr: string, port: number): string {
  return family === 'ipv6' && addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export class ForensicsCollector {
  private readonly persist = new Map<TcpState, Buckets>(PERSIST_STATES.map((s) => [s, new Buckets(PERSIST_BOUNDS)]));
  private readonly backoff = new Buckets(BACKOFF_BOUNDS);
  private backoffSeen = false;
  private readonly sendQueue = new Buckets(BYTES_BOUNDS);
  private readonly wmem = new Buckets(BYTES_BOUNDS);
  private wmemSeen = false;
  private readonly age = new Buckets(AGE_BOUNDS);
  private readonly probeIntervals = new Map<TcpState, Map<number, number>>();
  /** Previous poll's tracked sockets seen this poll in a state FIN-WAIT-1 moves on to. */
  private readonly movedOn = new Map<number | string, FinWait1Exit>();
  private readonly byTuple = new Map<string, string>();
  private stuck = 0;
  private untracked = 0;
  /** Sockets tracked in this poll that the previous poll did not track. */
  private newlyTracked = 0;
  private readonly firstSeen = new Map<number | string, number>();
  private readonly listening = new Set<number>();
  /** Per listening port: sockets and Send-Q per state index. */
  private readonly byPort = new Map<number, PortCounts>();
  /** Per local port not (yet) known to listen: sockets and Send-Q per state index. */
  private readonly unresolved = new UnresolvedPorts();
  /** Local port of the samples labelled "other" when taken (relabelled if their listener came later). */
  private readonly sampleLocalPort = new WeakMap<SocketSample, number>();
  private readonly other = newCounts();
  /** Whether any LISTEN socket showed a backlog (ss, netlink: Send-Q; /proc shows 0). */
  private backlogSeen = false;
  private readonly topBySendQueue = new Map<TcpState, TopN<SocketSample>>();
  /** The same TopN and persist-timer Buckets, by state index. */
  private readonly topBySendQueueAt: Array<TopN<SocketSample>> = [];
  private readonly persistAt: Array<Buckets | undefined>;
  private readonly topByAge: TopN<SocketSample>;

  /** The namespace the records now coming are read in (--netns other than own): set between namespaces. */
  netns: string | undefined;

  constructor(private readonly ctx: PollContext) {
    for (const s of TCP_STATES) {
      const top = new TopN<SocketSample>(ctx.options.topSockets);
      this.topBySendQueue.set(s, top);
      this.topBySendQueueAt.push(top);
    }
    this.persistAt = TCP_STATES.map((s) => this.persist.get(s));
    this.topByAge = new TopN(ctx.options.topSockets);
  }

  add(r: SocketRecord): void {
    const { state } = r;
    const i = STATE_INDEX.get(state)!;
    if (r.timer === 'persist') {
      this.persistAt[i]?.observe(r.timerSeconds);
      if (r.backoff !== undefined && r.rtoSeconds !== undefined) {
        let m = this.probeIntervals.get(state);
        if (m === undefined) this.probeIntervals.set(state, (m = new Map<number, number>()));
        const interval = uncappedProbeInterval(r.rtoSeconds, r.backoff);
        m.set(interval, (m.get(interval) ?? 0) + 1);
      }
    }
    if (IS_NEXT_STATE[i]) this.noteMovedOn(r);

    let ageSeconds: number | null = null;
    if (i === TRACKED) {
      this.sendQueue.observe(r.sendQueue);
      // icsk_backoff is shared by the retransmission and the probe timer: only a socket whose
      // pending timer is the persist timer tells the probe backoff (docs/kernel-and-ss.md#backoff).
      if (r.backoff !== undefined) {
        this.backoffSeen = true;
        if (r.timer === 'persist') this.backoff.observe(r.backoff);
      }
      if (r.wmemQueued !== undefined) {
        this.wmem.observe(r.wmemQueued);
        this.wmemSeen = true;
      }
      ageSeconds = this.track(r);
    }

    if (i === LISTEN && this.listening.size < MAX_LISTENING_PORTS) this.listening.add(r.localPort);
    const server = IS_SERVER_STATE[i]!;
    const port = server ? this.attribute(r.localPort) : undefined;
    let fig: PortCounts | undefined;
    if (!server) fig = this.other;
    else if (port !== undefined) fig = this.portFigures(port);
    else {
      // A local port nobody was seen listening on yet: its listener may come later in this poll
      // (the dump or ss pass with LISTEN is read at the same time as the FIN-WAIT-1 one).
      // Resolved to the port or to "other" once the poll's listeners are all known (result()).
      const slot = this.unresolved.slot(r.localPort);
      if (slot < 0) fig = this.other;
      else if (i === LISTEN) fig = this.unresolved.listenFigures(slot);
      else this.unresolved.count(slot, i, r.sendQueue);
    }
    if (fig === undefined) {
      // counted in the unresolved ports' arrays
    } else if (i !== LISTEN) {
      fig.sockets[i]!++;
      fig.bytes[i]! += r.sendQueue;
    } else {
      fig.sockets[i]!++;
      // A listener's Recv-Q is its accept queue, its Send-Q the backlog (docs/runbook.md,
      // TcpListenQueueOverflow); the kernel refuses new handshakes once queue > backlog.
      fig.listen.queued += r.recvQueue;
      fig.listen.backlog += r.sendQueue;
      if (r.sendQueue > 0) this.backlogSeen = true;
      if (r.recvQueue > r.sendQueue) fig.listen.full++;
      if (r.inode !== undefined && r.inode > 0 && fig.listen.inodes.length < MAX_LISTENER_INODES) fig.listen.inodes.push(r.inode);
    }

    // Most sockets are rejected by one comparison, before any allocation.
    const bySendQueue = this.topBySendQueueAt[i]!;
    const keepBySendQueue = bySendQueue.accepts(r.sendQueue);
    const keepByAge = ageSeconds !== null && this.topByAge.accepts(ageSeconds);
    if (keepBySendQueue || keepByAge) this.offer(r, port, ageSeconds, keepBySendQueue ? bySendQueue : undefined, keepByAge);
  }

  /**
   * Offers a socket's sample to the worst-N lists that accept it. A method of its own: a closure
   * made in add() would put add()'s variables in a context object allocated at every call, for
   * every socket (~10 MB of garbage a poll at 150 000 sockets; docs/performance.md "Poll thread CPU").
   */
  private offer(r: SocketRecord, port: number | undefined, ageSeconds: number | null, bySendQueue: TopN<SocketSample> | undefined, byAge: boolean): void {
    const sample = () => this.sample(r, port, ageSeconds);
    bySendQueue?.offer(r.sendQueue, sample);
    if (byAge) this.topByAge.offer(ageSeconds!, sample);
  }

  /** A socket in a state FIN-WAIT-1 moves on to: was it one the previous poll tracked in FIN-WAIT-1? */
  private noteMovedOn(r: SocketRecord): void {
    const { previous } = this.ctx;
    let key: number | string | undefined;
    if (typeof r.identity === 'number') key = previous.firstSeen.has(r.identity) ? r.identity : undefined;
    // A minisocket is another kernel object (another address): only the 4-tuple links it to its socket.
    else if (previous.byTuple.size > 0) key = previous.byTuple.get(tupleOf(r, this.netns));
    if (key !== undefined) this.movedOn.set(key, r.state as FinWait1Exit);
  }

  /** Start time of a FIN-WAIT-1 socket; its age in seconds, or null when not tracked. */
  private track(r: SocketRecord): number | null {
    // A generated cookie is the socket; an address-like identity only together with the 4-tuple.
    const tuple = typeof r.identity === 'number' ? undefined : tupleOf(r, this.netns);
    const key = tuple === undefined ? (r.identity as number) : `${tuple} ${r.identity ?? ''}`;
    const { nowMs, options } = this.ctx;
    const { firstSeen } = this.ctx.previous;
    let first = this.firstSeen.get(key);
    if (first === undefined) {
      first = firstSeen.get(key);
      if (first === undefined) {
        // A new socket takes a place only if none of the previous poll's sockets may still need
        // it: those keep their place (and age) however many new sockets come before them.
        if (this.newlyTracked >= options.maxTracked - firstSeen.size) {
          this.untracked++;
          return null;
        }
        this.newlyTracked++;
        first = nowMs;
        // At first sight, a socket waiting on a zero window has sent no data for
        // tcpi_last_data_sent (probes carry none): by the kernel's clock it has been stuck at
        // least that long, which an exporter restart must not forget (README "Age after an exporter restart").
        if (r.timer === 'persist' && r.lastDataSentSeconds !== undefined && r.lastDataSentSeconds > 0) {
          first = nowMs - Math.round(r.lastDataSentSeconds * 1000);
        }
      }
      this.firstSeen.set(key, first);
      if (tuple !== undefined) this.byTuple.set(tuple, key as string);
    }
    const age = (nowMs - first) / 1000;
    this.age.observe(age);
    if (age > options.stuckAfterSeconds) this.stuck++;
    return age;
  }

  /** The listening port a socket belongs to (its local port, when something listens there). */
  private attribute(localPort: number): number | undefined {
    if (this.listening.has(localPort) || this.ctx.previous.listening.has(localPort)) return localPort;
    return undefined;
  }

  /** Moves what was counted before its listener was seen under that listener's port; the rest under "other". */
  private resolvePorts(): void {
    const { ports } = this.unresolved;
    for (let slot = 0; slot < ports.length; slot++) {
      const port = ports[slot]!;
      this.unresolved.addTo(this.listening.has(port) ? this.portFigures(port) : this.other, slot);
    }
    this.unresolved.clear();
  }

  private portFigures(port: number): PortCounts {
    return this.countsIn(this.byPort, port);
  }

  /** A port's counts in one of the maps; "other" once the map holds MAX_LISTENING_PORTS ports. */
  private countsIn(map: Map<number, PortCounts>, port: number): PortCounts {
    let f = map.get(port);
    if (f === undefined) {
      if (map.size >= MAX_LISTENING_PORTS) return this.other;
      f = newCounts();
      map.set(port, f);
    }
    return f;
  }

  private sample(r: SocketRecord, port: number | undefined, ageSeconds: number | null): SocketSample {
    const s: SocketSample = {
      family: r.family,
      state: r.state,
      local: endpoint(r.family, r.localAddress, r.localPort),
      peer: endpoint(r.family, r.remoteAddress, r.remotePort),
      port: port === undefined ? 'other' : String(port),
      recvQueue: r.recvQueue,
      sendQueue: r.sendQueue,
      timer: r.timer ?? null,
      timerSeconds: r.timer === undefined ? null : r.timerSeconds,
      backoff: r.backoff ?? null,
      wmemQueued: r.wmemQueued ?? null,
      ageSeconds,
      orphan: isOrphan(r),
      inode: r.inode ?? null,
      ...(this.netns !== undefined && { netns: this.netns }),
    };
    if (port === undefined) this.sampleLocalPort.set(s, r.localPort);
    return s;
  }

  result(): Forensics {
    const persistTimer: Partial<Record<TcpState, Distribution>> = {};
    for (const [s, b] of this.persist) persistTimer[s] = b.result();
    this.resolvePorts();
    const label = (sample: SocketSample) => {
      const local = this.sampleLocalPort.get(sample);
      if (local !== undefined && this.listening.has(local)) sample.port = String(local);
    };
    const top: Partial<Record<TcpState, { bySendQueue: SocketSample[]; byAge: SocketSample[] }>> = {};
    const byAge = this.topByAge.sorted();
    byAge.forEach(label);
    for (const [s, t] of this.topBySendQueue) {
      const bySendQueue = t.sorted();
      bySendQueue.forEach(label);
      if (bySendQueue.length > 0) top[s] = { bySendQueue, byAge: s === TRACKED_STATE ? byAge : [] };
    }
    return Object.freeze({
      persistTimer: Object.freeze(persistTimer),
      probeIntervals: Object.freeze(Object.fromEntries(this.probeIntervals)),
      exits: this.exits(),
      backoff: this.backoffSeen ? this.backoff.result() : undefined,
      sendQueue: this.sendQueue.result(),
      wmemQueued: this.wmemSeen ? this.wmem.result() : undefined,
      age: this.age.result(),
      stuck: this.stuck,
      tracked: this.firstSeen.size,
      untracked: this.untracked,
      ...this.selectPorts(),
      top: Object.freeze(top),
    });
  }

  /** The previous poll's tracked sockets not in FIN-WAIT-1 now: where they went, and how long they lived. */
  private exits(): FinWait1Exits {
    const lifetimes: Record<FinWait1Exit, number[]> = { fin_wait2: [], closing: [], time_wait: [], vanished: [] };
    const { firstSeen, seenAtMs } = this.ctx.previous;
    // forEach, not for-of: an [key, value] array per entry is garbage for every socket tracked.
    firstSeen.forEach((first, key) => {
      if (this.firstSeen.has(key)) return;
      lifetimes[this.movedOn.get(key) ?? 'vanished'].push(Math.max(0, (seenAtMs - first) / 1000));
    });
    return Object.freeze({ lifetimes });
  }

  /** What the next poll needs of this one. */
  carry(): CrossPoll {
    return { seenAtMs: this.ctx.nowMs, firstSeen: this.firstSeen, byTuple: this.byTuple, listening: this.listening };
  }

  /** --ports, or the top K listening ports by FIN-WAIT-1 bytes (then by sockets); the rest → "other". */
  private selectPorts(): { ports: Map<string, Record<TcpState, PortFigures>>; listeners: Map<string, ListenerFigures> } {
    const fw1 = STATE_INDEX.get('fin_wait1')!;
    const total = (f: { sockets: Float64Array }) => f.sockets.reduce((a, b) => a + b, 0);
    let chosen: number[];
    const explicit = this.ctx.options.ports;
    if (explicit !== undefined) chosen = [...explicit];
    else {
      chosen = [...this.byPort.entries()]
        .sort(([pa, a], [pb, b]) => b.bytes[fw1]! - a.bytes[fw1]! || total(b) - total(a) || pa - pb)
        .slice(0, this.ctx.options.topPorts)
        .map(([p]) => p);
    }
    const keep = new Set(chosen);
    const other = newCounts();
    addCounts(other, this.other);
    for (const [p, f] of this.byPort) if (!keep.has(p)) addCounts(other, f);
    const zero = newCounts();
    const out = new Map<string, Record<TcpState, PortFigures>>();
    const toRecord = (f: PortCounts) => {
      const rec = {} as Record<TcpState, PortFigures>;
      TCP_STATES.forEach((s, i) => (rec[s] = { sockets: f.sockets[i]!, sendQueueBytes: f.bytes[i]! }));
      return rec;
    };
    const listeners = new Map<string, ListenerFigures>();
    const known = this.backlogSeen;
    const listen = (f: PortCounts): ListenerFigures => ({
      listeners: f.sockets[LISTEN]!,
      queued: f.listen.queued,
      backlog: known ? f.listen.backlog : null,
      full: known ? f.listen.full : null,
      inodes: Object.freeze([...f.listen.inodes]),
    });
    for (const p of chosen.sort((a, b) => a - b)) {
      const f = this.byPort.get(p) ?? zero;
      out.set(String(p), toRecord(f));
      listeners.set(String(p), listen(f));
    }
    out.set('other', toRecord(other));
    listeners.set('other', listen(other));
    return { ports: out, listeners };
  }
}
