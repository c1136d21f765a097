// What a source is: something that turns bytes into SocketRecords pushed into the sink it is
// given (or, for kernel-wide files, into KernelFigures), and throws when it cannot. Sources do
// not aggregate, time themselves or log: the poll does that for every source alike.

import type { ErrorSink, Family, KernelFigures, ParseSink } from '../model.ts';

/** One source of socket records (a command's output, a file, a netlink dump). */
export interface TableReader {
  /** `source` label value: netlink, ss, proc_tcp, proc_tcp6, or the file a report reads. */
  readonly source: string;
  /** The families whose whole table this reader sees (its records are only those). */
  readonly families: readonly Family[];
  /**
   * Pushes every socket into `sink` as it is parsed. Resolves when the table was read whole;
   * rejects (with a message naming the flag or file to fix) when it could not be, or throws
   * {@link Absent} when there is nothing to read on this host (an up, empty table).
   */
  read(sink: ParseSink, signal: AbortSignal): Promise<void>;
}

/** One group of kernel-wide files (sockstat, sysctls, netstat). */
export interface KernelReader {
  readonly source: string;
  read(errors: ErrorSink): Promise<KernelFigures>;
}

/** One way of reading the whole socket table: its readers together make the table. */
export interface TableAttempt {
  /** For logs: netlink, ss, proc or files. */
  readonly name: string;
  readonly readers: readonly TableReader[];
  /**
   * Read one after the other, in order (else all at once). Capture files are: the listeners of
   * one file must be seen before the sockets of the next are attributed to their ports.
   */
  readonly inOrder?: boolean;
  /** When present and false, a chain of several attempts skips this one quietly (e.g. the netlink helper is not built). */
  installed?(): Promise<boolean>;
  /** What the log says when it is not installed (naming the flag that sets its path). */
  readonly notInstalled?: string;
}

/** What a poller reads: the socket table (the first attempt that works) and the kernel-wide figures. */
export interface PollSources {
  readonly table: readonly TableAttempt[];
  readonly kernel: readonly KernelReader[];
  /** The long-lived netlink helper (a NetlinkHelper) the table attempts use, if any: the poller stops it when it stops. */
  readonly netlink?: { stop(): Promise<void> };
}

/** Thrown by a reader when its input does not exist on this host (tcp6 with IPv6 disabled): up, and empty. */
export class Absent extends Error {}

export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
