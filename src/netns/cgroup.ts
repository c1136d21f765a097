// Who a process belongs to, read from its /proc/<pid>/cgroup file: the container ID and the
// Kubernetes pod UID that the container runtime and the kubelet wrote into its cgroup path.
// Pure: no I/O. The path shapes it knows, and where each comes from, are in docs/netns.md and in
// the table of test/unit/netns-cgroup.test.ts.
//
// The file has one line per hierarchy, `ID:CONTROLLERS:PATH`:
//   cgroup v2 (unified):  `0::/kubepods.slice/.../cri-containerd-<id>.scope`
//   cgroup v1:            `4:memory:/kubepods/burstable/pod<uid>/<id>`, `1:name=systemd:/...`
// A hybrid host has both; the v2 line comes first here, then the v1 lines in file order.

/** What a cgroup path tells about a process. Absent fields: the path did not say. */
export interface CgroupIdentity {
  /** The container runtime's ID of the container (hex, as `crictl ps`/`docker ps --no-trunc` show it). */
  readonly containerId?: string;
  /** The Kubernetes pod's metadata.uid, with dashes (the systemd driver's underscores undone). */
  readonly podUid?: string;
  /** The cgroup path the identity was read from (the v2 path when there is one). */
  readonly path?: string;
}

/** A cgroup-file line: `ID:CONTROLLERS:PATH` (the path may itself contain ':' only in theory). */
interface CgroupLine {
  readonly hierarchy: string;
  readonly controllers: string;
  readonly path: string;
}

function lines(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const path = line.slice(b + 1);
    if (!path.startsWith('/')) continue;
    out.push({ hierarchy: line.slice(0, a), controllers: line.slice(a + 1, b), path });
  }
  return out;
}

// A pod's cgroup, as the kubelet names it (pkg/kubelet/cm: "pod" + UID; the systemd driver joins
// the parents with '-', escapes '-' in each part as '_' and adds ".slice"):
//   cgroupfs: `pod<uid>`                                (…/kubepods/burstable/pod<uid>)
//   systemd:  `<parents>-pod<uid with _>.slice`         (kubepods-burstable-pod<uid>.slice)
// A UID is a UUID (8-4-4-4-12 hex) for API pods; a static pod's is 32 hex digits (a hash).
const POD_CGROUPFS = /^pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/;
const POD_SYSTEMD = /(?:^|-)pod([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}|[0-9a-f]{32})\.slice$/;

// A container's cgroup, as the runtime names it:
//   systemd driver (runc/crun): `<prefix>-<id>.scope`, prefix `cri-containerd` (containerd's CRI),
//     `crio` (CRI-O), `docker` (Docker, cri-dockerd), `libpod` (Podman);
//   cgroupfs driver: the bare ID (containerd, Docker's `/docker/<id>`), or `crio-<id>` (CRI-O),
//     `libpod-<id>` (Podman, under /libpod_parent).
// CRI-O's monitor lives beside the container as `crio-conmon-<id>.scope`: it is not the container.
const CONTAINER_SCOPE = /^(?:cri-containerd|crio|docker|libpod)-([0-9a-f]{64})(?:\.scope)?$/;
const BARE_ID = /^([0-9a-f]{64})$/;
// runc's systemd cgroupsPath `slice:prefix:name`, left unexpanded (containerd's CRI plugin asking
// for the systemd driver from a runc that did not apply it): `…pod<uid>.slice:cri-containerd:<id>`.
const COLON_FORM = /^([^:]*):cri-containerd:([0-9a-f]{64})$/;

function fromPath(path: string): { containerId?: string; podUid?: string } {
  let containerId: string | undefined;
  let podUid: string | undefined;
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .flatMap((p) => {
      const c = COLON_FORM.exec(p);
      return c ? [c[1]!, `${c[2]!}`] : [p];
    });
  // The innermost container wins (a Podman container running systemd sits in `libpod-<id>.scope/container`).
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    if (containerId === undefined) {
      const m = CONTAINER_SCOPE.exec(part) ?? BARE_ID.exec(part);
      if (m) containerId = m[1];
    }
    if (podUid === undefined) {
      const c = POD_CGROUPFS.exec(part);
      if (c) podUid = c[1];
      const s = c ? null : POD_SYSTEMD.exec(part);
      if (s) podUid = s[1]!.replaceAll('_', '-');
    }
  }
  return { ...(containerId !== undefined && { containerId }), ...(podUid !== undefined && { podUid }) };
}

/**
 * The identity in a /proc/<pid>/cgroup file's text. The cgroup v2 line is read first; on a v1 or
 * hybrid host, the first v1 line that names a container or pod. A host process gives `{}` plus
 * its path.
 */
export function parseCgroupFile(text: string): CgroupIdentity {
  const all = lines(text);
  const ordered = [...all.filter((l) => l.hierarchy === '0' && l.controllers === ''), ...all.filter((l) => !(l.hierarchy === '0' && l.controllers === ''))];
  for (const l of ordered) {
    const id = fromPath(l.path);
    if (id.containerId !== undefined || id.podUid !== undefined) return { ...id, path: l.path };
  }
  const first = ordered[0];
  return first === undefined ? {} : { path: first.path };
}
