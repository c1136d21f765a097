// What a poll of several network namespaces publishes (--netns other than own), and the fold that
// bounds it: the host namespace and the --netns.max namespaces holding the most FIN-WAIT-1 bytes
// (then FIN-WAIT-1 sockets, then sockets) get their own `netns` series; the rest are summed into
// netns="other". Pure: no I/O.

import { FAMILIES, TCP_STATES, TIMER_KINDS, type Family, type TcpState } from '../model.ts';
import type { FamilyTable, SocketTable, StateFigures } from '../aggregate/table.ts';

/** Why a selected namespace was not read this poll (the `reason` label). */
export const UNREADABLE_REASONS = ['permission', 'vanished', 'no_process', 'timeout', 'error'] as const;
export type UnreadableReason = (typeof UNREADABLE_REASONS)[number];

/** The `netns` label of the namespaces folded together. */
export const OTHER_NETNS = 'other';

/** What the host knows about a namespace (tcpstate_netns_info); empty strings when unknown. */
export interface NetnsInfo {
  /** `ip netns` names, comma-separated. */
  readonly name: string;
  /** The process it was found through ('' for a named namespace with none). */
  readonly pid: string;
  readonly comm: string;
  readonly containerId: string;
  readonly podUid: string;
}

/** One namespace read in a poll, before the fold. */
export interface NamespaceRead {
  readonly inode: number;
  readonly own: boolean;
  readonly table: SocketTable;
  /** Which read path gave the table: netlink, ss, proc. */
  readonly via: string;
}

/** One `netns` label value's figures in the snapshot. */
export interface NetnsFigures {
  /** The inode as text, or "other". */
  readonly netns: string;
  readonly own: boolean;
  readonly table: SocketTable;
  /** Absent for "other". */
  readonly info?: NetnsInfo;
  /** How the namespace was read (netlink, ss, proc); absent for "other". */
  readonly via?: string;
}

export interface NetnsSnapshot {
  /** Host first, then the kept namespaces by inode, then "other" (always present, zeros when nothing is folded). */
  readonly namespaces: readonly NetnsFigures[];
  /** Namespaces --netns selected this poll (host included). */
  readonly selected: number;
  /** Namespaces read but summed into "other". */
  readonly folded: number;
  /** Selected namespaces not read this poll, by reason. */
  readonly unreadable: Readonly<Record<UnreadableReason, number>>;
  /** Processes whose /proc/PID/ns/net could not be read during discovery (their namespace is unknown). */
  readonly unreadableProcesses: number;
}

export function noUnreadable(): Record<UnreadableReason, number> {
  return Object.fromEntries(UNREADABLE_REASONS.map((r) => [r, 0])) as Record<UnreadableReason, number>;
}

/** FIN-WAIT-1 Send-Q bytes, FIN-WAIT-1 sockets, all sockets of a table: the fold's ranking keys. */
export function rankKeys(t: SocketTable): [number, number, number] {
  let bytes = 0;
  let fw1 = 0;
  let all = 0;
  for (const f of FAMILIES) {
    const ft = t[f];
    if (ft === undefined) continue;
    bytes += ft.fin_wait1.sendQueueBytes;
    fw1 += ft.fin_wait1.sockets;
    for (const s of TCP_STATES) all += ft[s].sockets;
  }
  return [bytes, fw1, all];
}

/**
 * The namespaces (other than the host's) that keep their own series: the `max` first by
 * FIN-WAIT-1 bytes, then FIN-WAIT-1 sockets, then sockets, then the lower inode (a stable order).
 */
export function chooseKept(reads: readonly NamespaceRead[], max: number): Set<number> {
  const ranked = reads
    .filter((r) => !r.own)
    .map((r) => ({ inode: r.inode, k: rankKeys(r.table) }))
    .sort((a, b) => b.k[0] - a.k[0] || b.k[1] - a.k[1] || b.k[2] - a.k[2] || a.inode - b.inode);
  return new Set(ranked.slice(0, max).map((r) => r.inode));
}

function emptyFigures(): StateFigures {
  const timers = {} as StateFigures['timers'];
  for (const k of TIMER_KINDS) timers[k] = 0;
  return { sockets: 0, sendQueueBytes: 0, recvQueueBytes: 0, timers, orphanSockets: 0, orphanSendQueueBytes: 0, inodeUnknown: 0, persistMaxSeconds: 0 };
}

/** The sum of tables (persist max: the largest); a family is in the sum when any table has it. */
export function sumTables(tables: readonly SocketTable[], families: readonly Family[] = []): SocketTable {
  const out: Partial<Record<Family, Record<TcpState, StateFigures>>> = {};
  const family = (f: Family) => {
    let t = out[f];
    if (t === undefined) {
      t = {} as Record<TcpState, StateFigures>;
      for (const s of TCP_STATES) t[s] = emptyFigures();
      out[f] = t;
    }
    return t;
  };
  for (const f of families) family(f);
  for (const table of tables) {
    for (const f of FAMILIES) {
      const src: FamilyTable | undefined = table[f];
      if (src === undefined) continue;
      const dst = family(f);
      for (const s of TCP_STATES) {
        const a = dst[s];
        const b = src[s];
        a.sockets += b.sockets;
        a.sendQueueBytes += b.sendQueueBytes;
        a.recvQueueBytes += b.recvQueueBytes;
        for (const k of TIMER_KINDS) a.timers[k] += b.timers[k];
        a.orphanSockets += b.orphanSockets;
        a.orphanSendQueueBytes += b.orphanSendQueueBytes;
        a.inodeUnknown += b.inodeUnknown;
        a.persistMaxSeconds = Math.max(a.persistMaxSeconds, b.persistMaxSeconds);
      }
    }
  }
  return Object.freeze(out);
}

/**
 * The published per-namespace figures: the host, the kept namespaces (by inode), and "other"
 * (the sum of the rest; zeros in both families when nothing is folded, so the series stays put).
 */
export function fold(reads: readonly NamespaceRead[], max: number, infos: ReadonlyMap<number, NetnsInfo>): { namespaces: NetnsFigures[]; folded: number } {
  const kept = chooseKept(reads, max);
  const namespaces: NetnsFigures[] = [];
  const rest: SocketTable[] = [];
  const info = (inode: number): NetnsInfo => infos.get(inode) ?? { name: '', pid: '', comm: '', containerId: '', podUid: '' };
  for (const r of reads.filter((x) => x.own)) namespaces.push({ netns: String(r.inode), own: true, table: r.table, info: info(r.inode), via: r.via });
  for (const r of reads.filter((x) => !x.own).sort((a, b) => a.inode - b.inode)) {
    if (kept.has(r.inode)) namespaces.push({ netns: String(r.inode), own: false, table: r.table, info: info(r.inode), via: r.via });
    else rest.push(r.table);
  }
  namespaces.push({ netns: OTHER_NETNS, own: false, table: sumTables(rest, FAMILIES) });
  return { namespaces, folded: rest.length };
}
