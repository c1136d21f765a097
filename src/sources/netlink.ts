// The `netlink` source: the kernel's inet_diag dump (the interface ss and node_exporter use),
// fetched by build/tcpstate-diag and parsed from its raw bytes, with no text in between.
//
// The helper runs in --serve mode for the exporter's lifetime: a poll writes one byte to it and
// reads the dumps back, so polling creates no process in the exporter (forking a process the
// size of the exporter stalled its event loop for 2-8 ms per child, measured at 150 000 sockets).
// After a failure or a timeout it is killed, and the next poll starts a new one. The helper is a
// NetlinkHelper object: the poller that reads with it stops it when it stops.

import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { FAMILIES, TCP_STATES, type ParseSink } from '../model.ts';
import { EXT_BIT, InetDiagParser, stateMask } from '../parsers/inet-diag.ts';
import { startServer, type Server } from './child.ts';
import { asError, type TableReader } from './source.ts';

const hex = (n: number) => n.toString(16);

/**
 * Two dumps, as with ss: every state but FIN-WAIT-1 with the bare inet_diag_msg (~100 bytes a
 * socket), and FIN-WAIT-1 alone (kernel-side filter) with tcp_info (backoff) and skmeminfo (the
 * memory the socket pins). Each covers IPv4 and IPv6 in one walk of the kernel's tables, and
 * reads as two dumps, IPv4's and IPv6's (docs/kernel-and-ss.md#inet-diag). The helper runs them at
 * the same time in two threads: the kernel's work is most of a poll's cost, and two dumps share it
 * over two CPUs (measured at 150 000 sockets: 80-90 ms instead of 140-150 ms one after the other).
 */
export const NETLINK_DUMPS: readonly string[] = [
  hex(stateMask(TCP_STATES.filter((s) => s !== 'fin_wait1'))),
  `${hex(stateMask(['fin_wait1']))}:${hex(EXT_BIT.info | EXT_BIT.skmeminfo)}`,
];

export interface NetlinkSourceOptions {
  /** The tcpstate-diag helper (--netlink.helper). */
  path: string;
  /** Kill it when a poll's dumps take longer than this (--netlink.timeout). */
  timeoutMs: number;
}

/** Whether the helper is installed: exists and may be run (decides what --source=auto tries first). */
export async function netlinkHelperInstalled(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Bytes of the buffer each dump's output is read into, once per helper: a read takes what the
 * socket holds up to this, about 500 messages, parsed before the next read (~1 ms).
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * The helper in --serve mode, for as long as its owner polls with it. Started by the first round
 * (and again after a failure killed it); stop() ends it for good.
 */
export class NetlinkHelper {
  private server: Server | undefined;
  /** The helper being started (its output sockets are made first). */
  private starting: Promise<Server> | undefined;
  /** The round in progress and its helper (one exit handler per helper, not one per round). */
  private current: { server: Server; end: (error: Error) => void } | undefined;
  private readonly lifetime = new AbortController();

  constructor(readonly options: NetlinkSourceOptions) {}

  /** Whether the helper binary is installed (the --source=auto chain skips it quietly when not). */
  installed(): Promise<boolean> {
    return netlinkHelperInstalled(this.options.path);
  }

  /** Ends the helper (a round in progress fails as cancelled); no round starts it again. Resolves once it has exited. */
  async stop(): Promise<void> {
    this.lifetime.abort();
    const server = this.server ?? (await this.starting?.catch(() => undefined));
    await server?.exited;
  }

  /** Whether a helper process is up (between rounds too). */
  get running(): boolean {
    return this.server !== undefined;
  }

  /**
   * One round: every dump parsed into the sink as its bytes arrive. Rejects when it failed.
   * With `netns` (a namespace file: /run/netns/NAME, <procfs>/PID/ns/net), the round dumps that
   * network namespace; one that cannot be entered rejects with {@link NetnsUnavailable} and
   * leaves the helper running for the next round.
   */
  async read(sink: ParseSink, signal?: AbortSignal, netns?: string): Promise<void> {
    if (netns !== undefined && (netns === '' || netns.includes('\n'))) throw new Error(`not a namespace file: ${JSON.stringify(netns)}`);
    // Disjoint states: the records of both dumps simply add up.
    const parsers = NETLINK_DUMPS.map(() => new InetDiagParser(sink));
    const error = await this.round(parsers, this.options.timeoutMs, signal, netns ?? '');
    if (error !== undefined) throw error;
    for (const p of parsers) p.end();
    const errno = parsers.find((p) => p.failedErrno !== undefined)?.failedErrno;
    if (errno !== undefined) throw new NetnsUnavailable(netns ?? '(own)', errno);
  }

  /** One round of every dump, each parsed as its bytes arrive; the error, if it failed. */
  private async round(parsers: readonly InetDiagParser[], timeoutMs: number, signal: AbortSignal | undefined, request: string): Promise<Error | undefined> {
    const cancelled = () => this.lifetime.signal.aborted || signal?.aborted === true;
    if (cancelled()) return new Error('netlink helper cancelled (shutting down)');
    let server: Server;
    try {
      server = await this.ensure();
    } catch (e) {
      return asError(e);
    }
    if (cancelled()) return new Error('netlink helper cancelled (shutting down)');
    const path = this.options.path;
    const name = path.split('/').pop() ?? path;
    return new Promise<Error | undefined>((resolve) => {
      let settled = false;
      let pending = parsers.length;
      const listeners: Array<() => void> = [];
      const cancel = () => finish(new Error(`${name} cancelled`));
      signal?.addEventListener('abort', cancel);
      listeners.push(() => signal?.removeEventListener('abort', cancel));
      const finish = (error: Error | undefined) => {
        if (settled) return;
        settled = true;
        this.current = undefined;
        clearTimeout(timer);
        for (const off of listeners) off();
        if (error !== undefined) {
          // Whatever it was doing, its output can no longer be trusted to line up with a round.
          server.kill();
          if (this.server === server) this.server = undefined;
        }
        resolve(error);
      };
      const timer = setTimeout(() => finish(new Error(`${name} killed after --netlink.timeout=${timeoutMs}ms`)), timeoutMs);
      this.current = { server, end: finish };
      server.outputs.forEach((output, i) => {
        const parser = parsers[i]!;
        let done = false;
        // Parsed as it is read: the chunk is a view of the output's one read buffer.
        output.read((chunk) => {
          if (settled) return;
          try {
            parser.push(chunk);
          } catch (e) {
            // Called from the socket's read, outside any promise: a throw would end the thread.
            finish(asError(e));
            return;
          }
          // Every dump ends with NLMSG_DONE, one per family.
          if (!done && parser.dumpsCompleted >= FAMILIES.length) {
            done = true;
            if (--pending === 0) finish(undefined);
          }
        });
        listeners.push(() => output.read(undefined));
      });
      // One line per round: empty for the helper's own namespace, else the namespace file.
      server.stdin.write(`${request}\n`);
    });
  }

  /** The helper, started on first use and after it died. */
  private ensure(): Promise<Server> {
    if (this.server !== undefined) return Promise.resolve(this.server);
    this.starting ??= startServer({
      path: this.options.path,
      args: ['--serve', ...NETLINK_DUMPS],
      extraOutputs: NETLINK_DUMPS.length - 1,
      readBufferBytes: READ_BUFFER_BYTES,
      signal: this.lifetime.signal,
      pathFlag: '--netlink.helper',
      missingHint: 'build it with `npm run build:native`, which needs gcc and libc6-dev',
    })
      .then((server) => {
        this.server = server;
        void server.exited.then((e) => {
          if (this.server === server) this.server = undefined;
          // A helper killed after its round failed must not end the next round, run by its successor.
          if (this.current?.server === server) this.current.end(e);
        });
        return server;
      })
      .finally(() => (this.starting = undefined));
    return this.starting;
  }
}

/** Why a network namespace could not be read: it is gone, or the exporter may not enter it. */
export type NetnsFailure = 'vanished' | 'permission' | 'error';

/** A round in another network namespace that the helper could not enter (docs/netns.md). */
export class NetnsUnavailable extends Error {
  readonly code: string;
  readonly reason: NetnsFailure;

  constructor(
    readonly netns: string,
    readonly errno: number,
  ) {
    const code = Object.entries(osConstants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
    const reason: NetnsFailure = code === 'ENOENT' || code === 'ESRCH' ? 'vanished' : code === 'EPERM' || code === 'EACCES' ? 'permission' : 'error';
    const hint =
      reason === 'vanished'
        ? 'the namespace is gone'
        : reason === 'permission'
          ? 'entering it needs CAP_SYS_ADMIN, and CAP_SYS_PTRACE for another user\'s /proc/PID/ns/net'
          : 'not a network namespace file';
    super(`entering network namespace ${netns}: ${code} (${hint})`);
    this.code = code;
    this.reason = reason;
  }
}

/** The `netlink` source: one round of the helper per poll. */
export function netlinkReader(helper: NetlinkHelper): TableReader {
  return { source: 'netlink', families: FAMILIES, read: (sink, signal) => helper.read(sink, signal) };
}
