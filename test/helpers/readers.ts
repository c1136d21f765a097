import { pino } from 'pino';
import { TableAggregator, type SocketTable } from '../../src/aggregate/table.ts';
import { FAMILIES, type Family, type SocketRecord } from '../../src/model.ts';
import { SourceRunner, type SourceOutcome } from '../../src/poller/execute.ts';
import type { TableReader } from '../../src/sources/source.ts';

export function rec(over: Partial<SocketRecord>): SocketRecord {
  return {
    family: 'ipv4', state: 'established', localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 2,
    recvQueue: 0, sendQueue: 0, timer: undefined, timerSeconds: 0, timerCount: 0, inode: 1, wmemQueued: undefined, backoff: undefined, rtoSeconds: undefined, lastDataSentSeconds: undefined, identity: undefined,
    ...over,
  };
}

/** A reader that delivers these records and `parseErrors` unparsable lines. */
export function okReader(source: string, families: readonly Family[], records: readonly SocketRecord[], parseErrors = 0): TableReader {
  return {
    source,
    families,
    read: async (sink) => {
      for (const r of records) sink.record(r);
      for (let i = 0; i < parseErrors; i++) sink.error('x', 'y');
    },
  };
}

/** A reader that fails with this message. */
export function failedReader(source: string, message: string, families: readonly Family[] = FAMILIES): TableReader {
  return {
    source,
    families,
    read: async () => {
      throw new Error(message);
    },
  };
}

/** Runs one reader alone as a poll would (the execute wrapper, a table aggregate): its outcome and table. */
export async function runReader(reader: TableReader, signal: AbortSignal = new AbortController().signal): Promise<SourceOutcome & { table: SocketTable | undefined }> {
  const table = new TableAggregator(reader.families);
  const { outcome } = await new SourceRunner(pino({ level: 'silent' })).execute(reader.source, (tally) =>
    reader.read({ record: (r) => (tally.records++, table.add(r)), error: (reason, line) => tally.error(reason, line) }, signal),
  );
  return { ...outcome, table: outcome.up ? table.result() : undefined };
}
