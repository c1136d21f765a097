import type { ForensicsCollector } from '../aggregate/forensics.ts';
import { TableAggregator, type SocketTable } from '../aggregate/table.ts';
import type { Family, SocketRecord } from '../model.ts';
import type { ParseSink } from '../parsers/sink.ts';

/** Longest piece of an unparsable line kept for the log (it is untrusted input). */
const MAX_LOGGED_LINE = 200;

/** The outcome of reading one source once. */
export interface SourceReport {
  /** `source` label value: ss, proc_tcp, proc_tcp6. */
  source: string;
  /** Whether the source produced a complete table; false when it failed (error says why). */
  up: boolean;
  durationSeconds: number;
  /** Lines that could not be parsed (skipped; the rest of the table is still used). */
  parseErrors: number;
  firstParseError: { reason: string; line: string } | undefined;
  error: Error | undefined;
  /** The families this source read; present only when up. */
  table: SocketTable | undefined;
  /** A quiet "no data here" (e.g. tcp6 absent because IPv6 is disabled): up, with an empty table. */
  absent: boolean;
}

/** Feeds parsed records into an aggregator and counts parse errors. */
export class AggregatingSink implements ParseSink {
  readonly aggregator: TableAggregator;
  parseErrors = 0;
  firstParseError: { reason: string; line: string } | undefined;

  constructor(
    families: readonly Family[],
    private readonly forensics?: ForensicsCollector,
  ) {
    this.aggregator = new TableAggregator(families);
  }

  record(r: SocketRecord): void {
    this.aggregator.add(r);
    this.forensics?.add(r);
  }

  error(reason: string, line: string): void {
    this.parseErrors++;
    this.firstParseError ??= { reason, line: line.slice(0, MAX_LOGGED_LINE) };
  }

  report(source: string, startedAt: bigint, error: Error | undefined, absent = false): SourceReport {
    return {
      source,
      up: error === undefined,
      durationSeconds: Number(process.hrtime.bigint() - startedAt) / 1e9,
      parseErrors: this.parseErrors,
      firstParseError: this.firstParseError,
      error,
      table: error === undefined ? this.aggregator.result() : undefined,
      absent,
    };
  }
}

export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
