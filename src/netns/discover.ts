// Finding the host's network namespaces: one process per distinct /proc/<pid>/ns/net (under
// --path.procfs), plus the named namespaces `ip netns add` binds under /run/netns, which may have
// no process at all. A namespace is known by its nsfs inode: the number in `net:[4026532388]`,
// equal to the st_ino of a bind-mounted namespace file, stable for the namespace's life.
//
// Processes come and go during the scan: a pid that vanished (ENOENT, ESRCH) is skipped quietly.
// A pid whose namespace link cannot be read (EACCES: another user's process without
// CAP_SYS_PTRACE) is counted, so that what could not be seen is reported, not silently dropped.

import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCgroupFile, type CgroupIdentity } from './cgroup.ts';

/** `net:[4026532388]` → 4026532388; anything else → undefined. */
export function parseNsLink(link: string): number | undefined {
  const m = /^net:\[(\d{1,20})\]$/.exec(link);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface NetnsEntry {
  /** The namespace's nsfs inode: the `netns` label. */
  readonly inode: number;
  /** The exporter's own namespace (the one --netns=own reads). */
  readonly own: boolean;
  /** `ip netns` names bound to it under /run/netns, sorted. */
  readonly names: readonly string[];
  /** The lowest pid found in it (the process it is read through), if any process is in it. */
  readonly pid?: number;
  /** A file to open for setns: the named file when there is one, else <procfs>/<pid>/ns/net. */
  readonly nsPath: string;
}

export interface Discovery {
  /** Every namespace found, own first, then by inode. */
  readonly namespaces: readonly NetnsEntry[];
  /** Processes whose namespace link could not be read (not vanished: refused, e.g. EACCES). */
  readonly unreadablePids: number;
  /** The first refusal's reason (errno code), for the log and the failure metric. */
  readonly unreadableReason?: string;
}

export interface DiscoverOptions {
  /** --path.procfs. */
  procfs: string;
  /** Where `ip netns` binds named namespaces (/run/netns). */
  runNetns: string;
}

const VANISHED = new Set(['ENOENT', 'ESRCH']);

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
}

/** Scans procfs and the named-namespace directory. Never throws for a vanished pid or file. */
export async function discoverNamespaces(o: DiscoverOptions): Promise<Discovery> {
  const ownLink = await readlink(join(o.procfs, 'self', 'ns', 'net'));
  const own = parseNsLink(ownLink);
  if (own === undefined) throw new Error(`${join(o.procfs, 'self', 'ns', 'net')}: not a network namespace link ("${ownLink}")`);

  const pids = (await readdir(o.procfs)).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  const byInode = new Map<number, number>(); // inode → lowest pid
  let unreadablePids = 0;
  let unreadableReason: string | undefined;
  // In batches: a host has thousands of pids, and a readlink is a few microseconds.
  const BATCH = 256;
  for (let i = 0; i < pids.length; i += BATCH) {
    const batch = pids.slice(i, i + BATCH);
    const links = await Promise.allSettled(batch.map((pid) => readlink(join(o.procfs, String(pid), 'ns', 'net'))));
    links.forEach((r, j) => {
      if (r.status === 'rejected') {
        const c = code(r.reason);
        if (VANISHED.has(c)) return;
        unreadablePids++;
        unreadableReason ??= c;
        return;
      }
      const inode = parseNsLink(r.value);
      if (inode === undefined) return;
      if (!byInode.has(inode)) byInode.set(inode, batch[j]!);
    });
  }

  const names = new Map<number, string[]>(); // inode → names
  let entries: string[] = [];
  try {
    entries = await readdir(o.runNetns);
  } catch (e) {
    if (code(e) !== 'ENOENT') throw new Error(`reading ${o.runNetns}: ${(e as Error).message}`, { cause: e });
  }
  const dirDev = entries.length > 0 ? (await stat(o.runNetns)).dev : 0;
  for (const name of entries.sort()) {
    try {
      const st = await stat(join(o.runNetns, name));
      // `ip netns add` makes an empty file and bind-mounts the namespace (nsfs) on it: a file on
      // the directory's own device is one left unmounted (add interrupted, or deleted meanwhile).
      if (st.dev === dirDev) continue;
      const list = names.get(st.ino) ?? [];
      list.push(name);
      names.set(st.ino, list);
    } catch (e) {
      if (!VANISHED.has(code(e))) throw new Error(`stat ${join(o.runNetns, name)}: ${(e as Error).message}`, { cause: e });
    }
  }

  const inodes = new Set<number>([own, ...byInode.keys(), ...names.keys()]);
  const namespaces: NetnsEntry[] = [];
  for (const inode of inodes) {
    const pid = byInode.get(inode);
    const named = names.get(inode) ?? [];
    const nsPath = named.length > 0 ? join(o.runNetns, named[0]!) : join(o.procfs, pid === undefined ? 'self' : String(pid), 'ns', 'net');
    namespaces.push({ inode, own: inode === own, names: named, ...(pid !== undefined && { pid }), nsPath });
  }
  namespaces.sort((a, b) => (a.own === b.own ? a.inode - b.inode : a.own ? -1 : 1));
  return { namespaces, unreadablePids, ...(unreadableReason !== undefined && { unreadableReason }) };
}

/** `--netns`: own, all, or a comma-separated list of `ip netns` names and inodes. */
export type NetnsSelection =
  | { readonly mode: 'own' }
  | { readonly mode: 'all' }
  | { readonly mode: 'list'; readonly names: ReadonlySet<string>; readonly inodes: ReadonlySet<number> };

/** Parses --netns; the error names the flag. */
export function parseNetnsFlag(value: string): NetnsSelection {
  const v = value.trim();
  if (v === 'own') return { mode: 'own' };
  if (v === 'all') return { mode: 'all' };
  const names = new Set<string>();
  const inodes = new Set<number>();
  for (const raw of v.split(',')) {
    const t = raw.trim();
    if (t === '') throw new Error(`--netns=${value}: empty item (want own, all, or a comma-separated list of ip netns names and namespace inodes)`);
    if (/^\d+$/.test(t)) {
      const n = Number(t);
      if (!Number.isSafeInteger(n)) throw new Error(`--netns=${value}: inode ${t} out of range`);
      inodes.add(n);
    } else if (/^net:\[\d+\]$/.test(t)) {
      inodes.add(parseNsLink(t)!);
    } else if (t === 'own' || t === 'all' || t.includes('/') || t === '.' || t === '..') {
      throw new Error(`--netns=${value}: "${t}" is not an ip netns name (own and all stand alone)`);
    } else {
      names.add(t);
    }
  }
  return { mode: 'list', names, inodes };
}

/** The namespaces a selection reads. `own` and LIST keep the exporter's own namespace. */
export function selectNamespaces(all: readonly NetnsEntry[], sel: NetnsSelection): NetnsEntry[] {
  switch (sel.mode) {
    case 'own':
      return all.filter((n) => n.own);
    case 'all':
      return [...all];
    case 'list':
      return all.filter((n) => n.own || sel.inodes.has(n.inode) || n.names.some((name) => sel.names.has(name)));
  }
}

/** LIST items that matched nothing (for a warning: a typo, or a namespace gone). */
export function unmatchedItems(all: readonly NetnsEntry[], sel: NetnsSelection): string[] {
  if (sel.mode !== 'list') return [];
  const out: string[] = [];
  for (const name of sel.names) if (!all.some((n) => n.names.includes(name))) out.push(name);
  for (const inode of sel.inodes) if (!all.some((n) => n.inode === inode)) out.push(String(inode));
  return out;
}

export interface NetnsIdentity extends CgroupIdentity {
  /** The process's command name (/proc/<pid>/comm). */
  readonly comm?: string;
}

/** What the host knows about the process a namespace is read through; {} when it vanished. */
export async function describeProcess(procfs: string, pid: number): Promise<NetnsIdentity> {
  const dir = join(procfs, String(pid));
  const [comm, cgroup] = await Promise.allSettled([readFile(join(dir, 'comm'), 'utf8'), readFile(join(dir, 'cgroup'), 'utf8')]);
  const id = cgroup.status === 'fulfilled' ? parseCgroupFile(cgroup.value) : {};
  return { ...id, ...(comm.status === 'fulfilled' && { comm: comm.value.trimEnd() }) };
}
