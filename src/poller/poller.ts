// Runs the sources on a wall-clock schedule (schedule.ts) and publishes each result as an immutable snapshot.
// Scrapes only read the latest snapshot, so a scrape costs the same at 100 or 100 000 sockets.
//
// A poll owns its aggregation: for each attempt at the socket table it makes one table
// aggregate, one forensics collector (and a peer counter when asked), and hands every reader of
// the attempt a sink feeding them. Sources only parse; the poll aggregates, times and publishes.
// What one poll hands the next (FIN-WAIT-1 first-seen times, listening ports) stays here.

import type { Logger } from 'pino';
import { DEFAULT_FORENSICS, FinWait1ExitTally, ForensicsCollector, NO_PREVIOUS_POLL, type CrossPoll, type Forensics, type ForensicsOptions } from '../aggregate/forensics.ts';
import { DEFAULT_PEER_NETWORKS, PeerCounter, type PeerNetworkOptions, type Peers } from '../aggregate/peers.ts';
import { TableAggregator, type SocketTable } from '../aggregate/table.ts';
import { FAMILIES, type Family, type KernelFigures, type ParseSink, type SocketRecord } from '../model.ts';
import type { PollerStats, Snapshot, SnapshotView } from '../snapshot.ts';
import type { NetnsSnapshot } from '../netns/figures.ts';
import type { NetnsPoller } from '../netns/poll.ts';
import type { PollSources, TableAttempt, TableReader } from '../sources/source.ts';
import { SourceRunner, type SourceOutcome, type Tally } from './execute.ts';
import { WallClockSchedule, type ScheduleClock } from './schedule.ts';

export interface PollerOptions {
  /** What to read: live (sources/live.ts) or capture files (sources/files.ts). */
  sources: PollSources;
  /** --poll.interval: polls fire at the wall clock's multiples of it (schedule.ts). */
  intervalMs: number;
  /** The wall clock and timers of the schedule (tests); the system's by default. */
  clock?: ScheduleClock;
  logger: Logger;
  forensics?: ForensicsOptions;
  /** Count the peers of FIN-WAIT-1 sockets per address into snapshot.peers (the one-shot report does). */
  countPeers?: boolean;
  /** Peer networks (counted every poll): prefix lengths, how many listed and labelled. */
  peerNetworks?: PeerNetworkOptions;
  /**
   * Deadline of one poll (--poll.timeout): a source still running then is down, and the poll is
   * published without waiting for it. Without it a poll waits for its slowest source.
   */
  timeoutMs?: number;
  /** --netns other than own: the other namespaces, read after the own one in the same poll. */
  netns?: NetnsPoller;
  /**
   * Called whenever what the poller shows changes: a poll published its snapshot, or a tick was
   * skipped (the stats changed). The poll thread forwards both to the HTTP thread.
   */
  onPublish?: (snapshot: Snapshot | undefined, stats: PollerStats) => void;
}

/** The aggregation of one attempt at the socket table. */
class Attempt {
  readonly table = new TableAggregator(FAMILIES);
  readonly forensics: ForensicsCollector;
  readonly peers: PeerCounter;

  constructor(nowMs: number, previous: CrossPoll, options: ForensicsOptions, countPeers: boolean, networks: PeerNetworkOptions) {
    this.forensics = new ForensicsCollector({ nowMs, previous, options });
    this.peers = new PeerCounter(networks, countPeers);
  }

  /** The sink one reader of this attempt pushes its records into. */
  sink(tally: Tally): ParseSink {
    const { table, forensics, peers } = this;
    return {
      record(r: SocketRecord) {
        tally.records++;
        table.add(r);
        forensics.add(r);
        peers.add(r);
      },
      error: (reason, line) => tally.error(reason, line),
    };
  }
}

interface TableResult {
  outcomes: SourceOutcome[];
  table: SocketTable;
  forensics: Forensics | undefined;
  peers: Peers | undefined;
  netns?: NetnsSnapshot;
}

export class Poller implements SnapshotView {
  private latest: Snapshot | undefined;
  private latestOutcomes: readonly SourceOutcome[] = [];
  private running: Promise<void> | undefined;
  private schedule: WallClockSchedule | undefined;
  private readonly abort = new AbortController();
  private readonly runner: SourceRunner;
  private readonly log: Logger;
  private pollsTotal = 0;
  private pollsSkippedTotal = 0;
  /** Ticks skipped while the poll now running runs (logged when it starts and when it ends). */
  private skippedThisPoll = 0;
  private untrackedTotal = 0;
  private readonly finWait1Exits = new FinWait1ExitTally();
  /** The attempt a chain of several last read the table with (a change is logged). */
  private chainAttempt: string | undefined;
  private readonly notInstalledLogged = new Set<string>();
  /** Carried from poll to poll, never published. */
  private previous: CrossPoll = NO_PREVIOUS_POLL;

  constructor(private readonly options: PollerOptions) {
    this.log = options.logger;
    const { table, kernel } = options.sources;
    this.runner = new SourceRunner(options.logger, [...table.flatMap((a) => a.readers), ...kernel].map((r) => r.source));
  }

  snapshot(): Snapshot | undefined {
    return this.latest;
  }

  /** Every source's outcome in the latest poll (parse errors and errors included). */
  outcomes(): readonly SourceOutcome[] {
    return this.latestOutcomes;
  }

  stats(): PollerStats {
    return {
      pollsTotal: this.pollsTotal,
      pollsSkippedTotal: this.pollsSkippedTotal,
      parseErrorsTotal: this.runner.parseErrorsTotal,
      untrackedTotal: this.untrackedTotal,
      ...(this.options.netns !== undefined && { netnsFailuresTotal: this.options.netns.failures() }),
      finWait1Exits: this.finWait1Exits.view(),
    };
  }

  /** Polls once now, then on the schedule. */
  start(): Promise<void> {
    const first = this.poll();
    this.schedule = new WallClockSchedule(this.options.intervalMs, () => void this.poll(), this.options.clock);
    this.schedule.start();
    return first;
  }

  /** Runs one poll unless one is still running (then the tick is skipped and counted). */
  poll(): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    if (this.running !== undefined) {
      this.pollsSkippedTotal++;
      this.options.onPublish?.(this.latest, this.stats());
      // One line when polls start falling behind and one when they catch up, not one per tick.
      if (this.skippedThisPoll++ === 0) {
        this.log.warn(
          { pollsSkippedTotal: this.pollsSkippedTotal },
          'a poll is still running at the next tick: ticks are skipped until it ends (a poll takes longer than --poll.interval; it is bounded by --ss.timeout)',
        );
      }
      return this.running;
    }
    this.running = this.runPoll()
      // Sources report their own failures; anything else is a bug: log it, keep polling.
      .catch((err: unknown) => this.log.error({ err }, 'poll failed'))
      .finally(() => {
        this.running = undefined;
        if (this.skippedThisPoll > 0) {
          this.log.info({ pollsSkippedTotal: this.pollsSkippedTotal }, `the slow poll ended after ${this.skippedThisPoll} skipped ticks`);
          this.skippedThisPoll = 0;
        }
      });
    return this.running;
  }

  /** Stops the schedule, cancels a running poll, waits for it, and ends the netlink helper. */
  async stop(): Promise<void> {
    this.schedule?.stop();
    this.schedule = undefined;
    this.abort.abort();
    await this.running;
    await this.options.sources.netlink?.stop();
  }

  private async runPoll(): Promise<void> {
    const started = process.hrtime.bigint();
    const deadline = this.pollDeadline();
    let table: TableResult;
    let kernel: { outcomes: SourceOutcome[]; figures: KernelFigures };
    try {
      [table, kernel] = await Promise.all([this.readTable(deadline.signal), this.readKernel(deadline.signal)]);
    } finally {
      deadline.clear();
    }
    if (this.abort.signal.aborted) return;
    const outcomes = [...table.outcomes, ...kernel.outcomes];
    this.pollsTotal++;
    const snapshot: Snapshot = Object.freeze({
      takenAtMs: Date.now(),
      pollDurationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      table: table.table,
      forensics: table.forensics,
      peers: table.peers,
      kernel: Object.freeze(kernel.figures),
      sources: Object.freeze(outcomes.map((r) => Object.freeze({ source: r.source, up: r.up, durationSeconds: r.durationSeconds }))),
      ...(table.netns !== undefined && { netns: table.netns }),
    });
    this.latest = snapshot;
    this.latestOutcomes = outcomes;
    this.options.onPublish?.(snapshot, this.stats());
    this.log.debug({ poll: this.pollsTotal, durationSeconds: snapshot.pollDurationSeconds, sources: snapshot.sources }, 'poll complete');
  }

  /** This poll's signal: aborted at --poll.timeout (with a reason naming it) or at shutdown. */
  private pollDeadline(): { signal: AbortSignal; clear: () => void } {
    const timeoutMs = this.options.timeoutMs;
    if (timeoutMs === undefined) return { signal: this.abort.signal, clear: () => undefined };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`did not finish within --poll.timeout=${timeoutMs}ms: abandoned`)), timeoutMs);
    const onStop = () => controller.abort(new Error('cancelled (shutting down)'));
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    return {
      signal: controller.signal,
      clear: () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onStop);
      },
    };
  }

  /** The socket table: the attempts in order until one works; the aggregation of that one (and, with --netns, the other namespaces'). */
  private async readTable(signal: AbortSignal): Promise<TableResult> {
    const chain = await this.installedChain();
    const netns = this.options.netns;
    const plan = await netns?.plan();
    const outcomes: SourceOutcome[] = [];
    for (let i = 0; i < chain.length; i++) {
      const attempt = chain[i]!;
      const agg = new Attempt(Date.now(), this.previous, this.options.forensics ?? DEFAULT_FORENSICS, this.options.countPeers === true, this.options.peerNetworks ?? DEFAULT_PEER_NETWORKS);
      if (plan?.own !== undefined) agg.forensics.netns = String(plan.own);
      const run = (reader: TableReader) => this.runner.execute(reader.source, (tally) => reader.read(agg.sink(tally), signal), this.deadlineOf(signal), { records: true });
      const got = [];
      if (attempt.inOrder === true) for (const reader of attempt.readers) got.push(await run(reader));
      else got.push(...(await Promise.all(attempt.readers.map(run))));
      const attemptOutcomes = got.map((g) => g.outcome);
      outcomes.push(...attemptOutcomes);
      const up = attemptOutcomes.some((o) => o.up);
      if (up || i === chain.length - 1 || signal.aborted) {
        if (chain.length > 1 && up) this.noteChainAttempt(attempt, chain, outcomes);
        const table = up ? agg.table.result(completeFamilies(attempt.readers, attemptOutcomes)) : Object.freeze({});
        const others =
          plan === undefined
            ? undefined
            : await netns!.read(plan, up ? table : undefined, attempt.name, { forensics: agg.forensics, peers: agg.peers, parseErrors: (source, n) => this.runner.addParseErrors(source, n) }, signal);
        if (!up) return { outcomes, table, forensics: undefined, peers: undefined, ...(others !== undefined && { netns: others }) };
        const forensics = agg.forensics.result();
        this.previous = agg.forensics.carry();
        this.untrackedTotal += forensics.untracked;
        this.finWait1Exits.add(forensics.exits);
        return { outcomes, table, forensics, peers: agg.peers.result(), ...(others !== undefined && { netns: others }) };
      }
    }
    return { outcomes, table: Object.freeze({}), forensics: undefined, peers: undefined }; // an empty chain
  }

  /** The signal the execute wrapper races a source against: only a poll deadline, never the bare shutdown signal. */
  private deadlineOf(signal: AbortSignal): AbortSignal | undefined {
    return this.options.timeoutMs === undefined ? undefined : signal;
  }

  /** The kernel-wide sources, concurrently; the figures of those that could be read. */
  private async readKernel(signal: AbortSignal): Promise<{ outcomes: SourceOutcome[]; figures: KernelFigures }> {
    const got = await Promise.all(this.options.sources.kernel.map((k) => this.runner.execute(k.source, (tally) => k.read(tally), this.deadlineOf(signal))));
    const figures: KernelFigures = {};
    for (const { value } of got) {
      if (value === undefined) continue;
      const { inuse, ...rest } = value;
      Object.assign(figures, rest);
      if (inuse !== undefined) figures.inuse = { ...figures.inuse, ...inuse };
    }
    return { outcomes: got.map((g) => g.outcome), figures };
  }

  /** The table attempts, without those whose program is not installed when there are others to try. */
  private async installedChain(): Promise<readonly TableAttempt[]> {
    const chain = this.options.sources.table;
    if (chain.length < 2) return chain;
    const installed = await Promise.all(chain.map((a) => a.installed?.() ?? Promise.resolve(true)));
    for (const [i, a] of chain.entries()) {
      if (installed[i] || this.notInstalledLogged.has(a.name)) continue;
      this.notInstalledLogged.add(a.name);
      const why = a.notInstalled ?? `${a.name} not installed`;
      // A path someone set that is wrong is a mistake (warn); a helper never built is a choice (info).
      if (why.startsWith('--')) this.log.warn(`--source=auto: ${why}: skipped`);
      else this.log.info(`--source=auto: ${why}: skipped`);
    }
    return chain.filter((_, i) => installed[i]);
  }

  /** Logs when a chain of attempts (--source=auto) moves down, or back up. */
  private noteChainAttempt(attempt: TableAttempt, chain: readonly TableAttempt[], outcomes: readonly SourceOutcome[]): void {
    const previous = this.chainAttempt;
    this.chainAttempt = attempt.name;
    const first = chain[0]!.name;
    if (previous === undefined ? attempt.name === first : previous === attempt.name) return;
    if (attempt.name === first) {
      this.log.info(`--source=auto: ${attempt.name} works again: reading the socket table with it`);
      return;
    }
    const failed = outcomes.filter((r) => !r.up);
    this.log.warn(
      { errors: failed.map((r) => ({ source: r.source, err: r.error?.message })) },
      `--source=auto: ${failed.map((r) => r.source).join(', ')} failed: reading the socket table with ${attempt.name} until ${first} works again`,
    );
  }
}

/** Families some reader read whole and no reader failed on. */
function completeFamilies(readers: readonly TableReader[], outcomes: readonly SourceOutcome[]): Family[] {
  const read = new Set<Family>();
  const failed = new Set<Family>();
  readers.forEach((r, i) => {
    for (const f of r.families) (outcomes[i]!.up ? read : failed).add(f);
  });
  return FAMILIES.filter((f) => read.has(f) && !failed.has(f));
}
