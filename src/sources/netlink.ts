// The `netlink` source: the kernel's inet_diag dump (the interface ss and node_exporter use),
// fetched by build/tcpstate-diag and parsed from its raw bytes, with no text in between.

import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ForensicsCollector } from '../aggregate/forensics.ts';
import { FAMILIES, TCP_STATES } from '../model.ts';
import { EXT_BIT, InetDiagParser, STATE_BIT } from '../parsers/inet-diag.ts';
import { runChild } from './child.ts';
import { feedYielding } from './lines.ts';
import { AggregatingSink, type SourceReport } from './report.ts';

/** Where `npm ci` (scripts/build-native.sh) puts the helper, relative to this package. */
export const DEFAULT_NETLINK_HELPER = fileURLToPath(new URL('../../build/tcpstate-diag', import.meta.url));

const hex = (n: number) => n.toString(16);
const ALL_STATES = TCP_STATES.reduce((mask, s) => mask | STATE_BIT[s], 0);

/**
 * Two dumps, as with ss: every state but FIN-WAIT-1 with the bare inet_diag_msg (~100 bytes a
 * socket), and FIN-WAIT-1 alone (kernel-side filter) with tcp_info (backoff) and skmeminfo (the
 * memory the socket pins). Each covers IPv4 then IPv6. They run as two helpers at once: the
 * kernel's work is most of a poll's cost, and two dumps share it over two CPUs (measured at
 * 150 000 sockets: 80-90 ms instead of 140-150 ms one after the other).
 */
export const NETLINK_DUMPS: readonly string[] = [
  hex(ALL_STATES & ~STATE_BIT.fin_wait1),
  `${hex(STATE_BIT.fin_wait1)}:${hex(EXT_BIT.info | EXT_BIT.skmeminfo)}`,
];

export interface NetlinkSourceOptions {
  /** The tcpstate-diag helper. */
  path: string;
  /** Kill it when a poll's dump takes longer than this. */
  timeoutMs: number;
}

/** Whether the helper exists and may be run (decides what --source=auto tries first). */
export async function netlinkHelperUsable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function readNetlink(
  options: NetlinkSourceOptions,
  signal: AbortSignal,
  forensics?: ForensicsCollector,
): Promise<SourceReport> {
  const started = process.hrtime.bigint();
  const sink = new AggregatingSink(FAMILIES, forensics);
  const deadline = Date.now() + options.timeoutMs;
  // Disjoint states: the records of both dumps simply add up.
  const errors = await Promise.all(NETLINK_DUMPS.map((dump) => runDump(dump, sink, options, deadline, signal)));
  return sink.report('netlink', started, errors.find((e) => e !== undefined));
}

/** One helper run of one dump, parsed as its bytes arrive; the error, if it failed. */
async function runDump(
  dump: string,
  sink: AggregatingSink,
  options: NetlinkSourceOptions,
  deadline: number,
  signal: AbortSignal,
): Promise<Error | undefined> {
  const parser = new InetDiagParser(sink);
  const run = {
    path: options.path,
    args: [dump],
    deadline,
    signal,
    pathFlag: '--netlink.helper',
    timeoutFlag: '--ss.timeout',
    timeoutMs: options.timeoutMs,
    missingHint: 'build it with `npm run build:native`, which needs gcc and libc6-dev',
  };
  const error = await runChild(run, undefined, (chunk) => feedYielding((b) => parser.push(b), chunk));
  parser.end();
  if (error !== undefined) return error;
  // Every dump ends with NLMSG_DONE, one per family: fewer means the table was cut short.
  if (parser.dumpsCompleted !== FAMILIES.length) {
    return new Error(`netlink dump ${dump} incomplete: ${parser.dumpsCompleted} of ${FAMILIES.length} families ended`);
  }
  return undefined;
}
