// The `proc` source: streams <procfs>/net/tcp and <procfs>/net/tcp6.

import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ForensicsCollector } from '../aggregate/forensics.ts';
import type { Family } from '../model.ts';
import { ProcNetTcpParser } from '../parsers/proc-net-tcp.ts';
import { LineSplitter, feedYielding } from './lines.ts';
import { AggregatingSink, asError, type SourceReport } from './report.ts';

const FILES: ReadonlyArray<{ file: string; family: Family; source: string }> = [
  { file: 'tcp', family: 'ipv4', source: 'proc_tcp' },
  { file: 'tcp6', family: 'ipv6', source: 'proc_tcp6' },
];

/** Reads one /proc/net/tcp-format file (a live table or a copy of one). */
export async function readProcNetTcpFile(
  path: string,
  family: Family,
  source: string,
  signal: AbortSignal,
  absentIsQuiet = false,
  forensics?: ForensicsCollector,
): Promise<SourceReport> {
  const started = process.hrtime.bigint();
  const sink = new AggregatingSink([family], forensics);
  const parser = new ProcNetTcpParser(sink, family);
  const splitter = new LineSplitter((line) => parser.line(line));
  try {
    // 64 KiB reads: the kernel fills each read() from its seq_file iterator.
    const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 65_536, signal });
    for await (const chunk of stream) await feedYielding((s) => splitter.push(s), chunk as string);
    splitter.end();
    parser.end();
  } catch (e) {
    const err = asError(e);
    // No tcp6 file: IPv6 is disabled on this host, so it has no IPv6 sockets.
    if (absentIsQuiet && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      return sink.report(source, started, undefined, true);
    }
    return sink.report(source, started, new Error(`reading ${path}: ${err.message}`, { cause: err }));
  }
  return sink.report(source, started, undefined);
}

/** Both tables of a procfs mount, read concurrently. */
export function readProc(procfs: string, signal: AbortSignal, forensics?: ForensicsCollector): Promise<SourceReport[]> {
  return Promise.all(
    FILES.map((f) =>
      readProcNetTcpFile(join(procfs, 'net', f.file), f.family, f.source, signal, f.family === 'ipv6', forensics),
    ),
  );
}
