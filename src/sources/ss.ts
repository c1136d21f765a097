// The `ss` source: runs iproute2's ss (netlink inet_diag underneath) and parses its stdout as it
// arrives.

import { FAMILIES, type ParseSink } from '../model.ts';
import { SsParser } from '../parsers/ss.ts';
import { runChild } from './child.ts';
import { LineSplitter, TOO_LONG_REASON, feedYielding } from './lines.ts';
import type { TableReader } from './source.ts';

/**
 * Main pass, every state but FIN-WAIT-1: -t TCP, -n numeric, -o timers, -e inode (0 = no file
 * refers to the socket: how orphans are recognised) and the socket cookie (sk:, which tells a
 * socket from a later one on the same 4-tuple). `state all` includes LISTEN, TIME-WAIT, SYN-RECV
 * and CLOSE, which ss omits by default. Argument arrays, never a shell.
 */
export const SS_ARGS: readonly string[] = ['-t', '-n', '-o', '-e', 'state', 'all', 'exclude', 'fin-wait-1'];
/**
 * Detail pass, FIN-WAIT-1 only (kernel-side state filter, so its cost follows the stuck sockets,
 * not the whole table): adds -i (tcp_info: backoff) and -m (skmem: the memory the socket pins).
 * Without -O the details sit on a continuation line, which the parser joins (-O needs iproute2 5.2).
 */
export const SS_DETAIL_ARGS: readonly string[] = ['-t', '-n', '-o', '-e', '-i', '-m', 'state', 'fin-wait-1'];

export interface SsSourceOptions {
  /** The ss binary (looked up in PATH when bare). */
  path: string;
  /** Kill ss when a poll's ss runs take longer than this, together (--ss.timeout). */
  timeoutMs: number;
}

/**
 * The `ss` source: both passes at once; they read disjoint states, so their records simply add up.
 * With `netnsName`, both passes run in that named network namespace (`ss -N NAME`, /run/netns/NAME).
 */
export function ssReader(options: SsSourceOptions, netnsName?: string): TableReader {
  const prefix = netnsName === undefined ? [] : ['-N', netnsName];
  return {
    source: 'ss',
    families: FAMILIES,
    async read(sink, signal) {
      const deadline = Date.now() + options.timeoutMs;
      const errors = await Promise.all([
        runSs([...prefix, ...SS_ARGS], new SsParser(sink), sink, options, deadline, signal),
        runSs([...prefix, ...SS_DETAIL_ARGS], new SsParser(sink, { state: 'fin_wait1' }), sink, options, deadline, signal),
      ]);
      const error = errors[0] ?? errors[1];
      if (error !== undefined) throw error;
    },
  };
}

/** One ss run, its stdout parsed line by line as it arrives; the error, if it failed. */
async function runSs(
  args: readonly string[],
  parser: SsParser,
  sink: ParseSink,
  options: SsSourceOptions,
  deadline: number,
  signal: AbortSignal,
): Promise<Error | undefined> {
  const splitter = new LineSplitter((line) => parser.line(line), (start) => sink.error(TOO_LONG_REASON, start));
  const run = {
    path: options.path,
    args,
    deadline,
    signal,
    pathFlag: '--ss.path',
    timeoutFlag: '--ss.timeout',
    timeoutMs: options.timeoutMs,
    missingHint: 'install iproute2',
  };
  const error = await runChild(run, (chunk) => feedYielding((s) => splitter.push(s), chunk));
  if (error === undefined) {
    splitter.end();
    parser.end();
  }
  return error;
}
