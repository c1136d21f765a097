// --netns other than own: which namespaces a poll reads, how each is read, and what is published.
//
// Each poll discovers the host's namespaces again (pods come and go), keeps those --netns
// selects, and reads every one but the exporter's own (which the usual source chain reads) into
// a table aggregate of its own and into the poll's forensics, through one of three read paths:
//   - netlink: the poll's one tcpstate-diag helper enters the namespace (setns) for one round;
//   - ss:      `ss -N NAME`, for a namespace bound under /run/netns;
//   - proc:    <procfs>/<pid>/net/tcp{,6} of a process in the namespace (no privilege needed).
// --source picks the path; auto tries netlink, then /proc when setns is refused (docs/netns.md).
// A namespace that cannot be read is counted with its reason; one gone mid-poll is a debug line
// and is simply absent from this snapshot, as it is from the next discovery.

import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ForensicsCollector } from '../aggregate/forensics.ts';
import type { PeerCounter } from '../aggregate/peers.ts';
import { TableAggregator, type SocketTable } from '../aggregate/table.ts';
import { FAMILIES, type Family, type ParseSink, type SourceMode } from '../model.ts';
import { NetnsUnavailable, type NetlinkHelper } from '../sources/netlink.ts';
import { procReaders } from '../sources/proc.ts';
import { Absent, asError, type TableReader } from '../sources/source.ts';
import { ssReader, type SsSourceOptions } from '../sources/ss.ts';
import { describeProcess, discoverNamespaces, selectNamespaces, unmatchedItems, type Discovery, type NetnsEntry, type NetnsIdentity, type NetnsSelection } from './discover.ts';
import { fold, noUnreadable, type NamespaceRead, type NetnsInfo, type NetnsSnapshot, type UnreadableReason } from './figures.ts';

/** Where `ip netns add` binds named namespaces (iproute2's NETNS_RUN_DIR; ss -N looks there too). */
export const RUN_NETNS = '/run/netns';

export interface NetnsPollOptions {
  selection: Exclude<NetnsSelection, { mode: 'own' }>;
  /** --netns.max: namespaces besides the host's with their own series. */
  max: number;
  procfs: string;
  /** /run/netns (a fixture directory in tests). */
  runNetns?: string;
  /** --source: decides the read path of the other namespaces. */
  source: SourceMode;
  /** The poll's netlink helper (the own namespace's source shares it), when netlink may be used. */
  netlink?: NetlinkHelper;
  ss: SsSourceOptions;
  logger: Logger;
  /** Test seams: discovery and identity (default: the real /proc and /run/netns). */
  discover?: () => Promise<Discovery>;
  describe?: (pid: number) => Promise<NetnsIdentity>;
}

/** What a poll reads: the host's inode and the other namespaces selected. */
export interface NetnsPlan {
  readonly own: number | undefined;
  /** The exporter's own namespace as discovered (its `ip netns` names, if any). */
  readonly ownEntry?: NetnsEntry;
  readonly others: readonly NetnsEntry[];
  readonly unreadableProcesses: number;
}

/** Where the other namespaces' records go besides their own table: the poll's forensics. */
export interface NetnsInto {
  forensics: ForensicsCollector;
  peers?: PeerCounter;
  /** Lines a source could not parse, counted under its source label. */
  parseErrors(source: string, n: number): void;
}

interface ReadPath {
  readonly via: string;
  readonly readers: readonly TableReader[];
}

/** A namespace that could not be read, and why. */
class Unreadable extends Error {
  constructor(
    readonly reason: UnreadableReason,
    message: string,
  ) {
    super(message);
  }
}

export class NetnsPoller {
  private readonly log: Logger;
  private readonly failuresTotal = noUnreadable();
  /** Last reason logged per namespace (a persistent failure logs once). */
  private readonly lastFailure = new Map<number, string>();
  private lastUnmatched = '';
  /** Whether this poll may use the netlink helper (auto: only when it is built). */
  private netlinkUsable = false;
  private discoveryError = '';

  constructor(private readonly o: NetnsPollOptions) {
    this.log = o.logger;
  }

  /** Failures since start, by reason (tcpstate_netns_read_failures_total). */
  failures(): Readonly<Record<UnreadableReason, number>> {
    return this.failuresTotal;
  }

  /** Discovers the namespaces and selects them; never throws (a failed discovery reads the host alone, and says so). */
  async plan(): Promise<NetnsPlan> {
    let d: Discovery;
    try {
      d = await (this.o.discover ?? (() => discoverNamespaces({ procfs: this.o.procfs, runNetns: this.o.runNetns ?? RUN_NETNS })))();
    } catch (e) {
      const msg = asError(e).message;
      if (msg !== this.discoveryError) this.log.error(`--netns: cannot discover network namespaces, reading the exporter's own only: ${msg}`);
      this.discoveryError = msg;
      return { own: undefined, others: [], unreadableProcesses: 0 };
    }
    if (this.discoveryError !== '') this.log.info('--netns: network namespace discovery works again');
    this.discoveryError = '';
    const unmatched = unmatchedItems(d.namespaces, this.o.selection).join(',');
    if (unmatched !== this.lastUnmatched && unmatched !== '') this.log.warn(`--netns: no network namespace matches ${unmatched} (a typo, or not created yet)`);
    this.lastUnmatched = unmatched;
    const selected = selectNamespaces(d.namespaces, this.o.selection);
    const ownEntry = selected.find((n) => n.own);
    return { own: ownEntry?.inode, ...(ownEntry !== undefined && { ownEntry }), others: selected.filter((n) => !n.own), unreadableProcesses: d.unreadablePids };
  }

  /**
   * Reads every namespace of the plan but the host's, one after the other (the netlink helper
   * serves one round at a time), and publishes them with the host's table (undefined when the
   * host's source failed this poll).
   */
  async read(plan: NetnsPlan, ownTable: SocketTable | undefined, ownVia: string, into: NetnsInto, signal: AbortSignal): Promise<NetnsSnapshot> {
    const reads: NamespaceRead[] = [];
    const unreadable = noUnreadable();
    this.netlinkUsable = this.o.netlink !== undefined && (this.o.source !== 'auto' || (await this.o.netlink.installed()));
    if (plan.own !== undefined && ownTable !== undefined) reads.push({ inode: plan.own, own: true, table: ownTable, via: ownVia });
    const seen = new Set<number>();
    for (const entry of plan.others) {
      seen.add(entry.inode);
      // Stopping: this poll is not published; nothing failed.
      if (shuttingDown(signal)) break;
      if (signal.aborted) {
        this.fail(entry, new Unreadable('timeout', 'the poll deadline passed before it was read'), unreadable);
        continue;
      }
      into.forensics.netns = String(entry.inode);
      try {
        const got = await this.readOne(entry, into, signal);
        reads.push({ inode: entry.inode, own: false, table: got.table, via: got.via });
        if (this.lastFailure.delete(entry.inode)) this.log.info({ netns: entry.inode }, 'network namespace read again');
      } catch (e) {
        if (shuttingDown(signal)) break;
        this.fail(entry, e instanceof Unreadable ? e : new Unreadable('error', asError(e).message), unreadable);
      }
    }
    into.forensics.netns = plan.own === undefined ? undefined : String(plan.own);
    for (const inode of this.lastFailure.keys()) if (!seen.has(inode)) this.lastFailure.delete(inode);

    const { namespaces, folded } = fold(reads, this.o.max, await this.infos(plan, reads));
    return {
      namespaces,
      selected: plan.others.length + (plan.own === undefined ? 0 : 1),
      folded,
      unreadable,
      unreadableProcesses: plan.unreadableProcesses,
    };
  }

  private fail(entry: NetnsEntry, e: Unreadable, unreadable: Record<UnreadableReason, number>): void {
    unreadable[e.reason]++;
    this.failuresTotal[e.reason]++;
    const fields = { netns: entry.inode, names: entry.names, pid: entry.pid, reason: e.reason };
    if (e.reason === 'vanished') {
      // Pods come and go: not a failure of the exporter.
      this.log.debug(fields, `network namespace ${entry.inode} vanished during the poll: not in this snapshot (${e.message})`);
      return;
    }
    const key = `${e.reason} ${e.message}`;
    if (this.lastFailure.get(entry.inode) === key) return;
    this.lastFailure.set(entry.inode, key);
    this.log.warn(fields, `network namespace ${entry.inode} not read (${e.reason}): ${e.message}`);
  }

  /** The read paths of a namespace, in the order to try them; or why there is none. */
  paths(entry: NetnsEntry): ReadPath[] {
    const proc = entry.pid === undefined ? undefined : { via: 'proc', readers: procReaders(join(this.o.procfs, String(entry.pid))) };
    const netlink = this.o.netlink === undefined || !this.netlinkUsable ? undefined : { via: 'netlink', readers: [netnsNetlinkReader(this.o.netlink, entry.nsPath)] };
    const ss = entry.names.length > 0 ? { via: 'ss', readers: [ssReader(this.o.ss, entry.names[0])] } : undefined;
    const list: Array<ReadPath | undefined> =
      this.o.source === 'proc' ? [proc] : this.o.source === 'ss' ? [ss ?? proc] : this.o.source === 'netlink' ? [netlink] : [netlink, proc];
    return list.filter((p): p is ReadPath => p !== undefined);
  }

  private async readOne(entry: NetnsEntry, into: NetnsInto, signal: AbortSignal): Promise<{ table: SocketTable; via: string }> {
    const paths = this.paths(entry);
    if (paths.length === 0) {
      throw new Unreadable('no_process', `--source=${this.o.source} reads a namespace through a process in it, and none is (a named namespace with no process: use --source=netlink or ss)`);
    }
    let last: Unreadable | undefined;
    for (const path of paths) {
      const table = new TableAggregator(FAMILIES);
      const failed = new Set<Family>();
      const read = new Set<Family>();
      let error: Unreadable | undefined;
      for (const reader of path.readers) {
        let parseErrors = 0;
        const sink: ParseSink = {
          record(r) {
            table.add(r);
            into.forensics.add(r);
            into.peers?.add(r);
          },
          error: () => void parseErrors++,
        };
        try {
          await reader.read(sink, signal);
          for (const f of reader.families) read.add(f);
        } catch (e) {
          if (e instanceof Absent) for (const f of reader.families) read.add(f);
          else {
            for (const f of reader.families) failed.add(f);
            error ??= classify(e, path.via, signal);
          }
        }
        if (parseErrors > 0) into.parseErrors(reader.source, parseErrors);
      }
      if (error === undefined) return { table: table.result(FAMILIES.filter((f) => read.has(f) && !failed.has(f))), via: path.via };
      last = error;
      // Only a refused setns is worth another path (auto: /proc/<pid>/net needs no privilege).
      if (error.reason !== 'permission') break;
    }
    throw last!;
  }

  /** Identity of the namespaces that keep their own series (the host's included). */
  private async infos(plan: NetnsPlan, reads: readonly NamespaceRead[]): Promise<Map<number, NetnsInfo>> {
    const byInode = new Map<number, NetnsEntry>(plan.others.map((e) => [e.inode, e]));
    if (plan.ownEntry !== undefined) byInode.set(plan.ownEntry.inode, { ...plan.ownEntry, pid: process.pid });
    const out = new Map<number, NetnsInfo>();
    const describe = this.o.describe ?? ((pid: number) => describeProcess(this.o.procfs, pid));
    await Promise.all(
      reads.map(async (r) => {
        const entry = byInode.get(r.inode);
        // The host's namespace is read by the exporter itself.
        const pid = entry?.pid;
        const id: NetnsIdentity = pid === undefined ? {} : await describe(pid).catch(() => ({}));
        out.set(r.inode, {
          name: (entry?.names ?? []).join(','),
          pid: pid === undefined ? '' : String(pid),
          comm: id.comm ?? '',
          containerId: id.containerId ?? '',
          podUid: id.podUid ?? '',
        });
      }),
    );
    return out;
  }
}

/** Whether the poll was cancelled because the exporter stops (not by its deadline). */
function shuttingDown(signal: AbortSignal): boolean {
  if (!signal.aborted) return false;
  const r: unknown = signal.reason;
  return !(r instanceof Error) || r.name === 'AbortError' || /shutting down/.test(r.message);
}

/** The helper's round in another namespace, as a reader. */
function netnsNetlinkReader(helper: NetlinkHelper, nsPath: string): TableReader {
  return { source: 'netlink', families: FAMILIES, read: (sink, signal) => helper.read(sink, signal, nsPath) };
}

/** Why a read path failed, as a `reason`. */
export function classify(e: unknown, via: string, signal: AbortSignal): Unreadable {
  const err = asError(e);
  if (signal.aborted) return new Unreadable('timeout', err.message);
  if (err instanceof NetnsUnavailable) return new Unreadable(err.reason, err.message);
  if (via === 'proc') {
    const code = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return new Unreadable('vanished', err.message);
    if (code === 'EACCES' || code === 'EPERM') return new Unreadable('permission', err.message);
  }
  if (via === 'ss') {
    // ss -N: `Cannot open network namespace "NAME": No such file or directory` (lib/namespace.c).
    if (/Cannot open network namespace[^\n]*No such file/.test(err.message)) return new Unreadable('vanished', err.message);
    if (/network namespace[^\n]*(Operation not permitted|Permission denied)|setting the network namespace[^\n]*(Operation not permitted|Permission denied)/.test(err.message)) {
      return new Unreadable('permission', err.message);
    }
  }
  return new Unreadable('error', err.message);
}
