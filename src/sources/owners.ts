// Owners of sockets: which process (pid, comm) holds a socket inode open, found the way `ss -p`
// does, by reading the /proc/PID/fd links ("socket:[INODE]"). Only on demand (/sockets, report),
// never in a poll, and bounded: at most maxProcesses processes, maxFds descriptors and timeMs of
// wall time per lookup; what was not looked at is said, never guessed.
//
// Privilege: /proc/PID/fd of another user's process needs CAP_SYS_PTRACE (or the same uid); an
// unprivileged exporter sees the owners among its own uid's processes only, and counts the rest
// as denied.

import { readFile, readdir, readlink } from 'node:fs/promises';
import type { Forensics } from '../aggregate/forensics.ts';

export interface Owner {
  pid: number;
  /** /proc/PID/comm: the thread name the kernel keeps (at most 15 bytes), as ss -p shows it. */
  comm: string;
}

export interface OwnerLimits {
  /** Most processes whose fd directory is read. */
  maxProcesses: number;
  /** Most descriptors (fd links) read, over all processes. */
  maxFds: number;
  /** Wall-time budget of one lookup, checked between processes. */
  timeMs: number;
  /** Most owners kept per socket (a listener shared by a master and its workers). */
  maxOwnersPerSocket: number;
}

export const DEFAULT_OWNER_LIMITS: OwnerLimits = Object.freeze({ maxProcesses: 10_000, maxFds: 200_000, timeMs: 1000, maxOwnersPerSocket: 8 });

export interface OwnerLookup {
  /** Socket inode → the processes holding it open (a socket not found has no entry). */
  owners: ReadonlyMap<number, readonly Owner[]>;
  /** Processes in procfs, and those whose fd directory was read. */
  processes: number;
  scannedProcesses: number;
  scannedFds: number;
  /** Processes whose fd directory could not be read (EACCES: another uid without CAP_SYS_PTRACE). */
  denied: number;
  /** Why the scan stopped before the last process, or null when every process was looked at. */
  stoppedBy: 'processes' | 'fds' | 'time' | null;
  elapsedMs: number;
}

/** Descriptors read at once (readlink calls in flight), between two checks of the budget. */
const FD_CHUNK = 512;

/** The inode in an fd link's text ("socket:[12345]"), or undefined for any other file. Pure. */
export function socketInode(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m === null ? undefined : Number(m[1]);
}

/** The inode → owner map for these socket inodes, from procfs/PID/fd, within the limits. */
export async function findOwners(procfs: string, inodes: ReadonlySet<number>, limits: OwnerLimits = DEFAULT_OWNER_LIMITS): Promise<OwnerLookup> {
  const started = performance.now();
  const owners = new Map<number, Owner[]>();
  let scannedProcesses = 0;
  let scannedFds = 0;
  let denied = 0;
  let stoppedBy: OwnerLookup['stoppedBy'] = null;
  let pids: number[] = [];
  if (inodes.size > 0) {
    try {
      pids = (await readdir(procfs)).filter((n) => /^\d+$/.test(n)).map(Number);
    } catch {
      pids = [];
    }
  }
  for (const pid of pids) {
    if (scannedProcesses >= limits.maxProcesses) stoppedBy = 'processes';
    else if (scannedFds >= limits.maxFds) stoppedBy = 'fds';
    else if (performance.now() - started > limits.timeMs) stoppedBy = 'time';
    if (stoppedBy !== null) break;
    scannedProcesses++;
    let fds: string[];
    try {
      fds = await readdir(`${procfs}/${pid}/fd`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES' || (e as NodeJS.ErrnoException).code === 'EPERM') denied++;
      continue; // gone (ENOENT), or not readable
    }
    let comm: string | undefined;
    // In chunks: a process with 100 000 descriptors neither floods the thread pool nor overruns the time budget.
    for (let i = 0; i < fds.length && stoppedBy === null; i += FD_CHUNK) {
      if (scannedFds >= limits.maxFds) stoppedBy = 'fds';
      else if (i > 0 && performance.now() - started > limits.timeMs) stoppedBy = 'time';
      if (stoppedBy !== null) break;
      const chunk = fds.slice(i, Math.min(i + FD_CHUNK, fds.length, i + limits.maxFds - scannedFds));
      scannedFds += chunk.length;
      const links = await Promise.all(chunk.map((fd) => readlink(`${procfs}/${pid}/fd/${fd}`).catch(() => '')));
      for (const link of links) {
        const inode = socketInode(link);
        if (inode === undefined || !inodes.has(inode)) continue;
        let list = owners.get(inode);
        if (list === undefined) owners.set(inode, (list = []));
        if (list.length >= limits.maxOwnersPerSocket || list.some((o) => o.pid === pid)) continue;
        comm ??= await readFile(`${procfs}/${pid}/comm`, 'utf8').then((t) => t.trimEnd(), () => '?');
        list.push({ pid, comm });
      }
      if (i + chunk.length < fds.length && chunk.length < FD_CHUNK) stoppedBy = 'fds';
    }
  }
  return { owners, processes: pids.length, scannedProcesses, scannedFds, denied, stoppedBy, elapsedMs: performance.now() - started };
}

/** What a lookup looked at (everything but the map), as /sockets and the report show it. */
export type OwnerScan = Omit<OwnerLookup, 'owners'>;

/** The processes listening on each attributed port: null when the source showed no listener inode. */
export interface ListenerOwners {
  listeners: Array<{ port: string; owners: readonly Owner[] | null }>;
  scan: OwnerScan;
}

/**
 * The socket inodes whose owners /sockets and the report show: the listeners of every attributed
 * port (not "other") and every socket kept as one of the worst (orphans have inode 0: none). Pure.
 */
export function ownedInodes(f: Forensics | undefined): Set<number> {
  const inodes = new Set<number>();
  if (f === undefined) return inodes;
  for (const [port, l] of f.listeners) if (port !== 'other') for (const i of l.inodes) inodes.add(i);
  for (const t of Object.values(f.top)) {
    if (t === undefined) continue;
    for (const list of [t.bySendQueue, t.byAge]) for (const s of list) if (s.inode !== null && s.inode > 0) inodes.add(s.inode);
  }
  return inodes;
}

/** Per attributed port, the owners of its listeners (each process once). Pure. */
export function ownersOfListeners(f: Forensics | undefined, lookup: OwnerLookup): ListenerOwners {
  const { owners, ...scan } = lookup;
  const listeners: ListenerOwners['listeners'] = [];
  for (const [port, l] of f?.listeners ?? []) {
    if (port === 'other' || l.listeners === 0) continue;
    if (l.inodes.length === 0) {
      listeners.push({ port, owners: null });
      continue;
    }
    const seen = new Map<number, Owner>();
    for (const i of l.inodes) for (const o of owners.get(i) ?? []) seen.set(o.pid, o);
    listeners.push({ port, owners: [...seen.values()].sort((a, b) => a.pid - b.pid) });
  }
  return { listeners, scan };
}
