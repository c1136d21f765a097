// The poller as the HTTP thread sees it in the daemon: polls run in a worker thread (worker.ts),
// and each published snapshot is posted here. A poll's parsing and its garbage collections stay on
// the poll thread's own event loop and heap, so a scrape during a poll of a million sockets waits
// for nothing but its own rendering (docs/performance.md has the figures).
//
// The poll thread ending unexpectedly (a bug: it logged why) is not the end of the exporter: the
// last snapshot stays served (its age shows in tcpstate_snapshot_age_seconds and /healthz) and a new
// thread starts after one poll interval. Cross-poll tracking starts again in the new thread.

import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { PollerStats, PollThreadHeap, Snapshot, SnapshotView } from '../snapshot.ts';
import { FinWait1ExitTally, addExitStats } from '../aggregate/forensics.ts';

export interface PollThreadData {
  readonly config: Config;
}
export type ToPollThread = { readonly type: 'stop' };
export type FromPollThread =
  | { readonly type: 'publish'; readonly snapshot: Snapshot | undefined; readonly stats: PollerStats; readonly heap?: PollThreadHeap }
  | { readonly type: 'stopped' };

/**
 * The poll thread's young generation (V8's default lets it grow to 3 × 16 MiB semi-spaces): a poll's
 * garbage is short-lived and a small nursery keeps the process's peak RSS down. Measured with 24 000
 * lab sockets, 20 one-second polls: peak RSS 166 MB by default, 137 MB at 6 or 3 MiB, for ~10 % more
 * CPU per poll (docs/performance.md).
 */
const POLL_THREAD_YOUNG_GENERATION_MB = 6;

const NO_STATS: PollerStats = { pollsTotal: 0, pollsSkippedTotal: 0, parseErrorsTotal: new Map(), untrackedTotal: 0, finWait1Exits: new FinWait1ExitTally().view() };

/** The worker's module next to this one: worker.js when compiled, worker.ts when run from source. */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
/**
 * Run from source (tests), the thread needs tsx's loader too: on Node.js 20 a worker does not get
 * the hooks `--import tsx` registered, so a bootstrap registers them before loading worker.ts.
 */
function workerFor(url: URL, options: WorkerOptions): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

export interface PollThreadOptions {
  config: Config;
  logger: Logger;
  /** Delay before a new poll thread replaces one that ended unexpectedly. */
  restartDelayMs: number;
  /** How long stop() waits for the poll thread to stop its children before terminating it. */
  stopTimeoutMs?: number;
  /** The poll thread's module (tests replace it); worker.ts's by default. */
  workerUrl?: URL;
}

export class PollThread implements SnapshotView {
  private latest: Snapshot | undefined;
  private latestStats: PollerStats = NO_STATS;
  /** Counters of poll threads that ended, so the exported counters never go back. */
  private carried: PollerStats = NO_STATS;
  private worker: Worker | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private firstPublish: (() => void) | undefined;
  private threadsStarted = 0;

  constructor(private readonly options: PollThreadOptions) {}

  snapshot(): Snapshot | undefined {
    return this.latest;
  }

  stats(): PollerStats {
    return this.latestStats;
  }

  /** Starts the poll thread; resolves when the first poll is published (or the thread ended). */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.firstPublish = resolve;
      this.spawn();
    });
  }

  /** Asks the poll thread to stop (children ended, helper stopped), then ends it. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'stop' } satisfies ToPollThread);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.options.stopTimeoutMs ?? 5000);
    });
    if ((await Promise.race([exited, late])) === 'late') {
      this.options.logger.warn('the poll thread did not stop in time: terminated');
      await worker.terminate();
    }
    clearTimeout(timer);
  }

  private spawn(): void {
    const { logger } = this.options;
    const worker = workerFor(this.options.workerUrl ?? WORKER_URL, {
      workerData: { config: this.options.config } satisfies PollThreadData,
      resourceLimits: { maxYoungGenerationSizeMb: POLL_THREAD_YOUNG_GENERATION_MB },
    });
    this.worker = worker;
    this.threadsStarted++;
    worker.on('message', (m: FromPollThread) => {
      if (m.type !== 'publish') return;
      if (m.snapshot !== undefined) this.latest = m.snapshot;
      const stats = add(this.carried, m.stats);
      this.latestStats = m.heap === undefined ? stats : { ...stats, pollThreadHeap: m.heap };
      this.firstPublish?.();
      this.firstPublish = undefined;
    });
    // An error the thread could not log itself (e.g. it failed to load): told in the exit line.
    let failure: Error | undefined;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      if (this.stopping) return;
      this.carried = this.latestStats;
      const why = failure === undefined ? `exit ${code}` : `exit ${code}: ${failure.message}`;
      logger.error(
        { code, err: failure, restartInMs: this.options.restartDelayMs },
        `the poll thread ended unexpectedly (${why}): serving the last snapshot, starting a new one`,
      );
      this.firstPublish?.();
      this.firstPublish = undefined;
      this.restartTimer = setTimeout(() => this.spawn(), this.options.restartDelayMs);
    });
  }

  /** Whether a poll thread is running now. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** For tests: how many poll threads were started. */
  get threads(): number {
    return this.threadsStarted;
  }
}

function add(a: PollerStats, b: PollerStats): PollerStats {
  const parseErrorsTotal = new Map(a.parseErrorsTotal);
  for (const [k, v] of b.parseErrorsTotal) parseErrorsTotal.set(k, (parseErrorsTotal.get(k) ?? 0) + v);
  const out: PollerStats = {
    pollsTotal: a.pollsTotal + b.pollsTotal,
    pollsSkippedTotal: a.pollsSkippedTotal + b.pollsSkippedTotal,
    parseErrorsTotal,
    untrackedTotal: a.untrackedTotal + b.untrackedTotal,
    finWait1Exits: addExitStats(a.finWait1Exits, b.finWait1Exits),
  };
  const netns = b.netnsFailuresTotal;
  if (netns === undefined) return out;
  const before = a.netnsFailuresTotal;
  const sum = Object.fromEntries(Object.entries(netns).map(([k, v]) => [k, v + (before?.[k as keyof typeof netns] ?? 0)])) as Required<PollerStats>['netnsFailuresTotal'];
  return { ...out, netnsFailuresTotal: sum };
}
