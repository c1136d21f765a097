// Capture files copied off a host, read as sources (`report --input`): the same parsers as the
// live sources, fed from a file instead of a command or /proc.

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { addAbortSignal, type Readable } from 'node:stream';
import { FAMILIES, type Family, type ParseSink, type TcpState } from '../model.ts';
import { InetDiagParser } from '../parsers/inet-diag.ts';
import { SsParser } from '../parsers/ss.ts';
import { LineSplitter, TOO_LONG_REASON, feedYielding } from './lines.ts';
import { readProcNetTcpFile } from './proc.ts';
import { asError, type PollSources, type TableReader } from './source.ts';

export type InputKind = 'ss' | 'proc' | 'netlink';

export interface Input {
  kind: InputKind;
  /** A file, or STDIN ("-"): standard input (ss and netlink only: a /proc copy is read twice). */
  path: string;
}

/** The path that means standard input (`report --input ss:-`). */
export const STDIN = '-';

/**
 * When the capture was taken, as far as the files tell: the newest modification time among them
 * (a copy made with cp -p or scp -p keeps the capture's). Undefined when an input is stdin.
 */
export async function captureTimeMs(inputs: readonly Input[]): Promise<number | undefined> {
  if (inputs.some((i) => i.path === STDIN)) return undefined;
  const times = await Promise.all(inputs.map((i) => stat(i.path).then((s) => s.mtimeMs, () => undefined)));
  return times.some((t) => t === undefined) ? undefined : Math.max(...(times as number[]));
}

/** Is this /proc/net/tcp text IPv6 (tcp6)? Decided by the header or the first address's width. */
export function procFamily(head: string): Family | undefined {
  for (const line of head.split('\n', 5)) {
    if (line.includes('remote_address')) return 'ipv6';
    if (line.includes('rem_address')) return 'ipv4';
    const m = /^\s*\d+:\s+([0-9A-Fa-f]+):/.exec(line);
    if (m) return m[1]!.length === 32 ? 'ipv6' : m[1]!.length === 8 ? 'ipv4' : undefined;
  }
  return undefined;
}

async function readHead(path: string): Promise<string> {
  let file;
  try {
    file = await open(path, 'r');
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await file.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${asError(e).message}`, { cause: e });
  } finally {
    await file?.close();
  }
}

/** Streams a file into a consumer, as text or as bytes. */
async function stream<T extends string | Buffer>(path: string, encoding: 'utf8' | undefined, push: (chunk: T) => void, signal: AbortSignal): Promise<void> {
  try {
    let input: Readable;
    if (path === STDIN) {
      input = addAbortSignal(signal, process.stdin);
      if (encoding !== undefined) input.setEncoding(encoding);
    } else input = createReadStream(path, { encoding, highWaterMark: 65_536, signal });
    for await (const chunk of input) await feedYielding(push, chunk as T);
  } catch (e) {
    throw new Error(`cannot read ${shown(path)}: ${asError(e).message}`, { cause: e });
  }
}

/** A path as messages name it. */
const shown = (path: string) => (path === STDIN ? 'standard input' : path);

/**
 * What a capture ends with, to tell a whole file from one cut short: a file copied off a host can
 * be empty (the copy failed) or end mid-line (the copy was interrupted), and its figures are then
 * not the host's. Text captures end with a newline (ss and the kernel both end every line).
 */
class Ending {
  bytes = 0;
  private last = '';
  push(chunk: string): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    this.last = chunk[chunk.length - 1]!;
  }
  /** Throws, naming the file, when it is empty or does not end at a line's end. */
  check(path: string): void {
    if (this.bytes === 0) throw new Error(`${path} is empty`);
    if (this.last !== '\n') throw new Error(`${path} ends in the middle of a line: the copy was cut short (its last line is not counted)`);
  }
}

function ssFile(path: string, state: TcpState | undefined): TableReader {
  return {
    source: `ss:${path}`,
    families: FAMILIES,
    async read(sink: ParseSink, signal: AbortSignal) {
      const parser = new SsParser(sink, state === undefined ? {} : { state });
      const splitter = new LineSplitter((l) => parser.line(l), (start) => sink.error(TOO_LONG_REASON, start));
      const ending = new Ending();
      await stream(path, 'utf8', (s: string) => (ending.push(s), splitter.push(s)), signal);
      ending.check(shown(path));
      splitter.end();
      parser.end();
    },
  };
}

function netlinkFile(path: string): TableReader {
  return {
    source: `netlink:${path}`,
    families: FAMILIES,
    async read(sink: ParseSink, signal: AbortSignal) {
      const parser = new InetDiagParser(sink);
      let bytes = 0;
      await stream(path, undefined, (b: Buffer) => ((bytes += b.length), parser.push(b)), signal);
      parser.end();
      if (bytes === 0) throw new Error(`${shown(path)} is empty`);
      // Every dump ends with NLMSG_DONE: sockets after the last one (or none at all) mean the
      // file stops inside a dump, and the sockets after the cut are missing.
      if (parser.dumpsCompleted === 0 || parser.socketsSinceDumpEnd > 0) {
        throw new Error(`${path}: the dump has no end marker (NLMSG_DONE) after its last ${parser.socketsSinceDumpEnd} sockets: the file was cut short`);
      }
    },
  };
}

async function procFile(path: string): Promise<TableReader> {
  const head = await readHead(path);
  if (head === '') throw new Error(`${path} is empty`);
  const family = procFamily(head);
  if (family === undefined) throw new Error(`${path} does not look like /proc/net/tcp or tcp6`);
  return {
    source: `proc:${path}`,
    families: [family],
    read: async (sink, signal) => {
      await readProcNetTcpFile(path, family, sink, signal);
      const tail = await readTail(path);
      if (tail !== '\n') throw new Error(`${path} ends in the middle of a line: the copy was cut short (its last line is not counted)`);
    },
  };
}

/** The last byte of a file, as text ('' when empty). */
async function readTail(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    if (size === 0) return '';
    const buf = Buffer.alloc(1);
    await file.read(buf, 0, 1, size - 1);
    return buf.toString('latin1');
  } finally {
    await file.close();
  }
}

/**
 * The files as one attempt at the socket table (read in order; their records add up), with no kernel-wide
 * sources. Rejects, naming the file, when a /proc copy cannot be read or is not one.
 * @param state the state of every socket of an ss capture filtered to one state
 */
export async function fileSources(inputs: readonly Input[], state: TcpState | undefined): Promise<PollSources> {
  if (inputs.filter((i) => i.path === STDIN).length > 1) throw new Error('standard input (-) can be read once: give at most one --input KIND:-');
  const proc = inputs.find((i) => i.kind === 'proc' && i.path === STDIN);
  if (proc !== undefined) throw new Error('proc:- is not supported (a /proc copy is read twice: its family from the header, then its rows): give a file');
  const readers = await Promise.all(
    inputs.map((i) => (i.kind === 'proc' ? procFile(i.path) : Promise.resolve(i.kind === 'ss' ? ssFile(i.path, state) : netlinkFile(i.path)))),
  );
  return { table: [{ name: 'files', readers, inOrder: true }], kernel: [] };
}
