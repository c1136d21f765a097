// The `proc` source: streams <procfs>/net/tcp and <procfs>/net/tcp6, each its own source.

import { join } from 'node:path';
import type { Family, ParseSink } from '../model.ts';
import { ProcNetTcpParser } from '../parsers/proc-net-tcp.ts';
import { streamRegularFile } from './open.ts';
import { LineSplitter, TOO_LONG_REASON, feedYielding } from './lines.ts';
import { Absent, asError, type TableReader } from './source.ts';

const FILES: ReadonlyArray<{ file: string; family: Family; source: string }> = [
  { file: 'tcp', family: 'ipv4', source: 'proc_tcp' },
  { file: 'tcp6', family: 'ipv6', source: 'proc_tcp6' },
];

/**
 * Streams one /proc/net/tcp-format file (a live table or a copy of one) into the sink.
 * With `absentIsQuiet`, a missing file throws {@link Absent} (no tcp6: IPv6 is disabled, so
 * this host has no IPv6 sockets).
 */
export async function readProcNetTcpFile(path: string, family: Family, sink: ParseSink, signal: AbortSignal, absentIsQuiet = false): Promise<void> {
  const parser = new ProcNetTcpParser(sink, family);
  const splitter = new LineSplitter((line) => parser.line(line), (start) => sink.error(TOO_LONG_REASON, start));
  try {
    await streamRegularFile(path, (text) => feedYielding((s) => splitter.push(s), text), signal);
  } catch (e) {
    const err = asError(e);
    if (absentIsQuiet && (err as NodeJS.ErrnoException).code === 'ENOENT') throw new Absent(`${path} absent`);
    throw new Error(`reading ${path}: ${err.message}`, { cause: err });
  }
  splitter.end();
  parser.end();
}

/** Both tables of a procfs mount, each its own source (a failed family is dropped alone). */
export function procReaders(procfs: string): TableReader[] {
  return FILES.map((f) => ({
    source: f.source,
    families: [f.family],
    read: (sink, signal) => readProcNetTcpFile(join(procfs, 'net', f.file), f.family, sink, signal, f.family === 'ipv6'),
  }));
}
