// Runs the sources on a node-cron schedule and publishes each result as an immutable snapshot.
// Scrapes only read the latest snapshot, so a scrape costs the same at 100 or 100 000 sockets.

import cron, { type Logger as CronLogger, type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { DEFAULT_FORENSICS, ForensicsCollector, type Forensics, type ForensicsOptions } from '../aggregate/forensics.ts';
import { mergeTables, type SocketTable } from '../aggregate/table.ts';
import type { SocketRecord } from '../model.ts';
import { PageSize, readKernel, type KernelFigures, type KernelReport } from '../sources/kernel.ts';
import { readProc } from '../sources/proc.ts';
import type { SourceReport } from '../sources/report.ts';
import { netlinkHelperUsable, readNetlink, type NetlinkSourceOptions } from '../sources/netlink.ts';
import { readSs, type SsSourceOptions } from '../sources/ss.ts';
import type { PollerStats, Snapshot, SnapshotView, SourceMode, TableSource } from '../snapshot.ts';

/** What --source=auto tries, in order, until one works (netlink only when its helper is built). */
const AUTO_CHAIN: readonly TableSource[] = ['netlink', 'ss', 'proc'];

export interface Readers {
  netlink(options: NetlinkSourceOptions, signal: AbortSignal, forensics?: ForensicsCollector): Promise<SourceReport>;
  /** Whether the netlink helper can be run at all (else --source=auto skips it quietly). */
  netlinkUsable(path: string): Promise<boolean>;
  ss(options: SsSourceOptions, signal: AbortSignal, forensics?: ForensicsCollector): Promise<SourceReport>;
  proc(procfs: string, signal: AbortSignal, forensics?: ForensicsCollector): Promise<SourceReport[]>;
  kernel(procfs: string, pageSize: PageSize): Promise<KernelReport[]>;
}

/** What the poller needs to know of any source's outcome. */
type Outcome = Pick<SourceReport, 'source' | 'up' | 'durationSeconds' | 'parseErrors' | 'firstParseError' | 'error'> & {
  absent?: boolean;
};

export interface PollerOptions {
  mode: SourceMode;
  netlink: NetlinkSourceOptions;
  ss: SsSourceOptions;
  procfs: string;
  /** node-cron expression (with seconds field), derived from --poll.interval. */
  cronExpression: string;
  logger: Logger;
  forensics?: ForensicsOptions;
  /** An extra consumer of every socket record (used by the one-shot report). */
  observe?: (r: SocketRecord) => void;
  readers?: Readers;
}

const DEFAULT_READERS: Readers = { netlink: readNetlink, netlinkUsable: netlinkHelperUsable, ss: readSs, proc: readProc, kernel: readKernel };

export class Poller implements SnapshotView {
  private latest: Snapshot | undefined;
  private running: Promise<void> | undefined;
  private task: ScheduledTask | undefined;
  private readonly abort = new AbortController();
  private readonly readers: Readers;
  private readonly log: Logger;
  private pollsTotal = 0;
  private pollsSkippedTotal = 0;
  private untrackedTotal = 0;
  private readonly parseErrorsTotal = new Map<string, number>();
  /** Last error logged per source, so a persistent failure logs once, not every poll. */
  private readonly lastError = new Map<string, string>();
  /** The source --source=auto last read the table with (a change is logged). */
  private autoSource: TableSource | undefined;
  private netlinkMissingLogged = false;
  private readonly pageSize: PageSize;
  /** Carried from poll to poll: first-seen times of FIN-WAIT-1 sockets, listening ports. */
  private firstSeen: ReadonlyMap<number | string, number> = new Map();
  private listening: ReadonlySet<number> = new Set();

  constructor(private readonly options: PollerOptions) {
    this.readers = options.readers ?? DEFAULT_READERS;
    this.log = options.logger;
    this.pageSize = new PageSize(options.procfs);
  }

  snapshot(): Snapshot | undefined {
    return this.latest;
  }

  stats(): PollerStats {
    return {
      pollsTotal: this.pollsTotal,
      pollsSkippedTotal: this.pollsSkippedTotal,
      parseErrorsTotal: this.parseErrorsTotal,
      untrackedTotal: this.untrackedTotal,
    };
  }

  /** Polls once now, then on the schedule. */
  start(): Promise<void> {
    const first = this.poll();
    this.task = cron.schedule(this.options.cronExpression, () => this.poll(), {
      name: 'poll',
      logger: cronLogger(this.log),
    });
    return first;
  }

  /** Runs one poll unless one is still running (then the tick is skipped and counted). */
  poll(): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    if (this.running !== undefined) {
      this.pollsSkippedTotal++;
      this.log.warn({ pollsSkippedTotal: this.pollsSkippedTotal }, 'previous poll still running: tick skipped');
      return this.running;
    }
    this.running = this.runPoll()
      // Sources report their own failures; anything else is a bug: log it, keep polling.
      .catch((err: unknown) => this.log.error({ err }, 'poll failed'))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** Stops the schedule, kills a running ss and waits for the poll to wind down. */
  async stop(): Promise<void> {
    await this.task?.destroy();
    this.task = undefined;
    this.abort.abort();
    await this.running;
  }

  private async runPoll(): Promise<void> {
    const started = process.hrtime.bigint();
    const [{ reports, forensics }, kernelReports] = await Promise.all([
      this.readSources(),
      this.readers.kernel(this.options.procfs, this.pageSize),
    ]);
    if (this.abort.signal.aborted) return;
    for (const r of [...reports, ...kernelReports]) this.account(r);
    if (forensics !== undefined) {
      this.firstSeen = forensics.firstSeen;
      this.listening = forensics.listening;
      this.untrackedTotal += forensics.untracked;
    }
    const tables: SocketTable[] = [];
    for (const r of reports) if (r.table !== undefined) tables.push(r.table);
    const kernel: KernelFigures = {};
    for (const r of kernelReports) {
      if (!r.up) continue;
      const { inuse, ...rest } = r.figures;
      Object.assign(kernel, rest);
      if (inuse !== undefined) kernel.inuse = { ...kernel.inuse, ...inuse };
    }
    this.pollsTotal++;
    const snapshot: Snapshot = Object.freeze({
      takenAtMs: Date.now(),
      pollDurationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      table: mergeTables(tables),
      forensics,
      kernel: Object.freeze(kernel),
      sources: Object.freeze(
        [...reports, ...kernelReports].map((r) => Object.freeze({ source: r.source, up: r.up, durationSeconds: r.durationSeconds })),
      ),
    });
    this.latest = snapshot;
    this.log.debug({ poll: this.pollsTotal, durationSeconds: snapshot.pollDurationSeconds, sources: snapshot.sources }, 'poll complete');
  }

  /** The socket-table sources of this poll, and the forensics of the attempt that worked. */
  private async readSources(): Promise<{ reports: SourceReport[]; forensics: Forensics | undefined }> {
    const chain = this.options.mode === 'auto' ? await this.autoChain() : [this.options.mode];
    const signal = this.abort.signal;
    const reports: SourceReport[] = [];
    for (let i = 0; i < chain.length; i++) {
      const source = chain[i]!;
      const collector = new ForensicsCollector({
        nowMs: Date.now(),
        firstSeen: this.firstSeen,
        listening: this.listening,
        options: this.options.forensics ?? DEFAULT_FORENSICS,
        observe: this.options.observe,
      });
      const got = await this.readTable(source, collector);
      reports.push(...got);
      const up = got.some((r) => r.up);
      if (up || i === chain.length - 1 || signal.aborted) {
        if (this.options.mode === 'auto' && up) this.noteAutoSource(source, chain, reports);
        return { reports, forensics: up ? collector.result() : undefined };
      }
    }
    return { reports, forensics: undefined }; // unreachable: the chain is never empty
  }

  private readTable(source: TableSource, collector: ForensicsCollector): Promise<SourceReport[]> {
    const signal = this.abort.signal;
    if (source === 'proc') return this.readers.proc(this.options.procfs, signal, collector);
    const read = source === 'netlink' ? this.readers.netlink(this.options.netlink, signal, collector) : this.readers.ss(this.options.ss, signal, collector);
    return read.then((r) => [r]);
  }

  private async autoChain(): Promise<readonly TableSource[]> {
    if (await this.readers.netlinkUsable(this.options.netlink.path)) return AUTO_CHAIN;
    if (!this.netlinkMissingLogged) {
      this.netlinkMissingLogged = true;
      this.log.info(
        { helper: this.options.netlink.path },
        '--source=auto: netlink helper not built (npm run build:native needs gcc): reading the table with ss',
      );
    }
    return AUTO_CHAIN.filter((s) => s !== 'netlink');
  }

  /** Logs when --source=auto moves down its chain, or back up. */
  private noteAutoSource(source: TableSource, chain: readonly TableSource[], reports: readonly SourceReport[]): void {
    const previous = this.autoSource;
    this.autoSource = source;
    if (previous === undefined ? source === chain[0] : previous === source) return;
    if (source === chain[0]) {
      this.log.info(`--source=auto: ${source} works again: reading the socket table with it`);
      return;
    }
    const failed = reports.filter((r) => !r.up);
    this.log.warn(
      { errors: failed.map((r) => ({ source: r.source, err: r.error?.message })) },
      `--source=auto: ${failed.map((r) => r.source).join(', ')} failed: reading the socket table with ${source} until ${chain[0]} works again`,
    );
  }

  private account(r: Outcome): void {
    const log = this.log.child({ source: r.source });
    if (r.parseErrors > 0) {
      this.parseErrorsTotal.set(r.source, (this.parseErrorsTotal.get(r.source) ?? 0) + r.parseErrors);
      log.warn({ parseErrors: r.parseErrors, first: r.firstParseError }, 'unparsable lines skipped');
    } else if (!this.parseErrorsTotal.has(r.source)) {
      this.parseErrorsTotal.set(r.source, 0);
    }
    if (r.error !== undefined) {
      const message = r.error.message;
      if (this.lastError.get(r.source) !== message) {
        log.error({ err: r.error }, 'source failed');
        this.lastError.set(r.source, message);
      }
    } else {
      if (this.lastError.has(r.source)) log.info('source recovered');
      this.lastError.delete(r.source);
      if (r.absent === true) log.debug('not present on this host: reported as empty');
    }
  }
}

function cronLogger(log: Logger): CronLogger {
  const l = log.child({ component: 'node-cron' });
  return {
    info: (m: string) => l.info(m),
    warn: (m: string) => l.warn(m),
    error: (m: string | Error, err?: Error) => l.error({ err: err ?? m }, typeof m === 'string' ? m : m.message),
    debug: (m: string | Error) => l.debug(typeof m === 'string' ? m : m.message),
  };
}
