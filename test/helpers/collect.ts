import type { ParseSink, SocketRecord } from '../../src/model.ts';

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
