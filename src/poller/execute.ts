// The one wrapper every source runs in (as node_exporter's execute() is for every collector):
// it times the source, turns a throw into `up = false` with the error, counts the lines the
// source could not parse, and logs a failure once (not every poll) and a recovery.

import type { Logger } from 'pino';
import { errorText } from '../log.ts';
import type { ErrorSink } from '../model.ts';
import { Absent, asError } from '../sources/source.ts';

/** Longest piece of an unparsable line kept for the log (it is untrusted input). */
const MAX_LOGGED_LINE = 200;

/** The outcome of reading one source once. */

/** Nothing recognised in a table's output but unparsable lines: not a socket table at all. */
class NoTable extends Error {
  override name = 'NoTable';
}

export interface SourceOutcome {
  /** `source` label value. */
  readonly source: string;
  /** Whether the source was read whole; false when it failed (error says why). */
  readonly up: boolean;
  readonly durationSeconds: number;
  /** Lines that could not be parsed (skipped; the rest of the source is still used). */
  readonly parseErrors: number;
  readonly firstParseError: { reason: string; line: string } | undefined;
  readonly error: Error | undefined;
  /** A quiet "no data here" (tcp6 absent because IPv6 is disabled): up, and empty. */
  readonly absent: boolean;
  /** Socket records the source delivered (0 for kernel-wide sources). */
  readonly records: number;
}

/** What a source's sink counts while it reads: records delivered, lines skipped. */
export class Tally implements ErrorSink {
  records = 0;
  parseErrors = 0;
  firstParseError: { reason: string; line: string } | undefined;
  error(reason: string, line: string): void {
    this.parseErrors++;
    this.firstParseError ??= { reason, line: line.slice(0, MAX_LOGGED_LINE) };
  }
}

/** Runs sources and keeps what their outcomes add up to across polls. */
export class SourceRunner {
  /** Cumulative unparsable lines per source since start. */
  readonly parseErrorsTotal = new Map<string, number>();
  /** Last error logged per source, so a persistent failure logs once, not every poll. */
  private readonly lastError = new Map<string, string>();
  /** First parse-error reason of each source's latest run ('' = none), so a change logs once. */
  private readonly lastParseReason = new Map<string, string>();

  /** @param sources every source this runner will run, in the order their counters are listed */
  constructor(
    private readonly log: Logger,
    sources: readonly string[] = [],
  ) {
    for (const s of sources) this.parseErrorsTotal.set(s, 0);
  }

  /**
   * Runs `read`, which counts what it reads in the tally it is given; its value, and the outcome.
   * When `deadline` aborts first, the source is down with the deadline's reason, whatever `read`
   * is still waiting for (a FIFO, a stalled mount): the poll does not wait for it. With
   * `records`, a socket-table source that delivered none but unparsable lines is down.
   */
  async execute<T>(
    source: string,
    read: (tally: Tally) => Promise<T>,
    deadline?: AbortSignal,
    options: { records?: boolean } = {},
  ): Promise<{ outcome: SourceOutcome; value: T | undefined }> {
    const started = process.hrtime.bigint();
    const tally = new Tally();
    let value: T | undefined;
    let error: Error | undefined;
    let absent = false;
    let stop: (() => void) | undefined;
    try {
      const reading = read(tally);
      if (deadline === undefined) value = await reading;
      else {
        // A late settlement of the abandoned read must not go unhandled.
        reading.catch(() => undefined);
        const expired = new Promise<never>((_, reject) => {
          const onAbort = () => reject(asError(deadline.reason));
          if (deadline.aborted) onAbort();
          deadline.addEventListener('abort', onAbort, { once: true });
          stop = () => deadline.removeEventListener('abort', onAbort);
        });
        value = await Promise.race([reading, expired]);
      }
    } catch (e) {
      if (e instanceof Absent) absent = true;
      else error = asError(e);
    } finally {
      stop?.();
    }
    // Nothing recognised but lines that failed to parse: not a table (random bytes, another
    // program's output), whatever the exit status said. Kernel-wide sources deliver no records.
    if (error === undefined && !absent && options.records === true && tally.records === 0 && tally.parseErrors > 0) {
      error = new NoTable(`no socket recognised: ${tally.parseErrors} unparsable lines (first: ${tally.firstParseError?.reason ?? '?'})`);
    }
    const outcome: SourceOutcome = {
      source,
      up: error === undefined,
      durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      parseErrors: tally.parseErrors,
      firstParseError: tally.firstParseError,
      error,
      absent,
      records: tally.records,
    };
    this.account(outcome);
    return { outcome, value: error === undefined ? value : undefined };
  }

  /** Counts unparsable lines read outside execute() (another network namespace's table, under its source label). */
  addParseErrors(source: string, n: number): void {
    this.parseErrorsTotal.set(source, (this.parseErrorsTotal.get(source) ?? 0) + n);
  }

  private account(r: SourceOutcome): void {
    const log = this.log.child({ source: r.source });
    this.parseErrorsTotal.set(r.source, (this.parseErrorsTotal.get(r.source) ?? 0) + r.parseErrors);
    const reason = r.parseErrors > 0 ? (r.firstParseError?.reason ?? '?') : '';
    const previousReason = this.lastParseReason.get(r.source) ?? '';
    // A table of nothing but unparsable lines is a failure (below), whose one line says so: no
    // warning besides it, and lines skipped after it recovers are told afresh.
    const noTable = r.error instanceof NoTable;
    this.lastParseReason.set(r.source, noTable ? '' : reason);
    // Every poll counts them (tcpstate_parse_errors_total); the log says when they start or change.
    if (r.parseErrors > 0 && !noTable) {
      if (reason !== previousReason) log.warn({ parseErrors: r.parseErrors, first: r.firstParseError }, `unparsable lines skipped: ${reason}`);
      else log.debug({ parseErrors: r.parseErrors }, 'unparsable lines skipped');
    } else if (previousReason !== '' && r.error === undefined) log.info('every line parses again');
    if (r.error !== undefined) {
      // An operational failure, not a bug: one line with the cause (it names the flag), no stack.
      // The same failure with other figures (random bytes give another count of unparsable lines
      // every poll) is the same state: logged once.
      const message = errorText(r.error);
      // Random bytes give another first bad line every poll too: still the same failure.
      const key = noTable ? NoTable.name : message.replace(/\d+/g, '#');
      if (this.lastError.get(r.source) !== key) {
        log.error(`source down: ${message}`);
        this.lastError.set(r.source, key);
      }
    } else {
      if (this.lastError.has(r.source)) log.info('source recovered');
      this.lastError.delete(r.source);
      if (r.absent) log.debug('not present on this host: reported as empty');
    }
  }
}
