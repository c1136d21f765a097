import { TableAggregator } from '../../src/aggregate/table.ts';
import type { Family, SocketRecord } from '../../src/model.ts';
import type { SourceReport } from '../../src/sources/report.ts';

export function rec(over: Partial<SocketRecord>): SocketRecord {
  return {
    family: 'ipv4', state: 'established', localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 2,
    recvQueue: 0, sendQueue: 0, timer: undefined, timerSeconds: 0, timerCount: 0, inode: 1, wmemQueued: undefined, backoff: undefined, identity: undefined,
    ...over,
  };
}

export function okReport(source: string, families: Family[], records: SocketRecord[], parseErrors = 0): SourceReport {
  const agg = new TableAggregator(families);
  for (const r of records) agg.add(r);
  return {
    source, up: true, durationSeconds: 0.01, parseErrors, firstParseError: parseErrors ? { reason: 'x', line: 'y' } : undefined,
    error: undefined, table: agg.result(), absent: false,
  };
}

export function failedReport(source: string, message: string): SourceReport {
  return {
    source, up: false, durationSeconds: 0.02, parseErrors: 0, firstParseError: undefined, error: new Error(message),
    table: undefined, absent: false,
  };
}
