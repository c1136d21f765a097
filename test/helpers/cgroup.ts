// A cgroup shaped like a Kubernetes pod's container, for the real-kernel namespace tests: a
// process written into its cgroup.procs has the /proc/PID/cgroup path a kubelet-managed container has.

import { mkdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface PodCgroup {
  /** Every directory made, outermost first (remove them in reverse). */
  dirs: string[];
  /** The innermost cgroup.procs: write a pid here to move that process in. */
  procs: string;
}

/** Makes the cgroup on the first hierarchy that lets this process (root) make one; undefined when none does. */
export async function podCgroup(podUid: string, containerId: string): Promise<PodCgroup | undefined> {
  const uid_ = podUid.replaceAll('-', '_');
  const candidates: Array<{ root: string; parts: string[] }> = [
    // cgroup v2 (alone at /sys/fs/cgroup, or the hybrid's unified tree): the systemd driver's shape.
    ...['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].map((root) => ({
      root,
      parts: ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid_}.slice`, `cri-containerd-${containerId}.scope`],
    })),
    // cgroup v1: the cgroupfs driver's shape.
    { root: '/sys/fs/cgroup/pids', parts: ['kubepods', 'besteffort', `pod${podUid}`, containerId] },
  ];
  for (const c of candidates) {
    try {
      await stat(join(c.root, 'cgroup.procs'));
    } catch {
      continue;
    }
    const dirs: string[] = [];
    try {
      let dir = c.root;
      for (const p of c.parts) {
        dir = join(dir, p);
        await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        dirs.push(dir);
      }
      return { dirs, procs: join(dir, 'cgroup.procs') };
    } catch {
      for (const d of dirs.reverse()) await rmdir(d).catch(() => undefined);
    }
  }
  return undefined;
}

/** Removes what podCgroup made (the processes must have left or exited). Shared parents still in use stay. */
export async function removePodCgroup(c: PodCgroup | undefined): Promise<void> {
  for (const d of [...(c?.dirs ?? [])].reverse()) await rmdir(d).catch(() => undefined);
}
