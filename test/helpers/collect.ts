import assert from 'node:assert/strict';
import type { ParseSink, SocketRecord } from '../../src/model.ts';
import { InetDiagParser } from '../../src/parsers/inet-diag.ts';

/** A sink that keeps everything, for parser tests (the product never keeps records). */
export class CollectingSink implements ParseSink {
  readonly records: SocketRecord[] = [];
  readonly errors: Array<{ reason: string; line: string }> = [];
  record(r: SocketRecord): void {
    this.records.push({ ...r }); // parsers may reuse the object
  }
  error(reason: string, line: string): void {
    this.errors.push({ reason, line });
  }
}

export function feed(parser: { line(l: string): void; end(): void }, text: string): void {
  for (const l of text.split('\n')) parser.line(l);
  parser.end();
}

/** The records of one output of a netlink round (raw inet_diag messages); it must parse without an error and end both of its dumps. */
export function roundRecords(bytes: Buffer): SocketRecord[] {
  const sink = new CollectingSink();
  const parser = new InetDiagParser(sink);
  parser.push(bytes);
  parser.end();
  assert.deepEqual(sink.errors, []);
  assert.equal(parser.dumpsCompleted, 2);
  return sink.records;
}
