// parseCgroupFile: the container ID and pod UID in real /proc/<pid>/cgroup shapes. Each row says
// where its shape comes from (the runtime's or the kubelet's own source, or a file read on a node).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCgroupFile, type CgroupIdentity } from '../../src/netns/cgroup.ts';

const ID = '0bc5eac79e3ae7a0c2651f14722aa10fa333eb2325c2ca97da33aa284cda81b0';
const UID = '0b7632a2-a56e-4278-987a-22de18008dbe';
const UID_ = UID.replaceAll('-', '_');
const STATIC_UID = '9d1b3b5e5f0c2a6f7d3c1e0b4a2f8c7d'; // a static pod's UID: a 32-hex hash, no dashes

interface Row {
  name: string;
  /** Where the shape is documented or produced. */
  source: string;
  file: string;
  want: CgroupIdentity;
}

/** A cgroup v2 row: the file is the one unified line `0::<path>`, and the path is expected back as written. */
function v2(name: string, source: string, path: string, identity: Omit<CgroupIdentity, 'path'> = {}): Row {
  return { name, source, file: `0::${path}\n`, want: { ...identity, path } };
}

const ROWS: Row[] = [
  v2('v2, systemd driver, containerd (kubeadm default), burstable pod', 'kubernetes/kubernetes pkg/kubelet/cm/cgroup_manager_linux.go ToSystemd ("-" → "_", parents joined by "-"); prefix "cri-containerd" from test/e2e_node containerCgroupPathPrefixFromDriver',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`, { containerId: ID, podUid: UID }),
  v2('v2, systemd driver, CRI-O, besteffort pod', 'falcosecurity/libs libsinsp CRI_CGROUP_LAYOUT {"/crio-", ".scope"} (systemd cri-o); kubelet QoS slice kubepods-besteffort',
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`, { containerId: ID, podUid: UID }),
  v2('v2, systemd driver, guaranteed pod (no QoS level)', 'kubernetes/kubernetes pkg/kubelet/cm qos_container_manager: Guaranteed pods sit directly under kubepods',
    `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`, { containerId: ID, podUid: UID }),
  v2("CRI-O's conmon beside the container is not the container", 'kubernetes/kubernetes test/e2e_node cpu manager test, example path ".../kubepods-burstable-pod0b7632a2_….slice/crio-conmon-0bc5….scope"',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope`, { podUid: UID }),
  {
    name: 'v1, cgroupfs driver, containerd: /kubepods/<qos>/pod<uid>/<id>',
    source: 'kubelet ToCgroupfs ("/" + path.Join); falcosecurity/libs CRI_CGROUP_LAYOUT {"/", ""} (non-systemd containerd)',
    file: [
      `12:pids:/kubepods/besteffort/pod${UID}/${ID}`,
      `11:memory:/kubepods/besteffort/pod${UID}/${ID}`,
      `1:name=systemd:/kubepods/besteffort/pod${UID}/${ID}`,
      '0::/',
    ].join('\n'),
    want: { containerId: ID, podUid: UID, path: `/kubepods/besteffort/pod${UID}/${ID}` },
  },
  {
    name: 'v1, cgroupfs driver, CRI-O: crio-<id> without .scope',
    source: 'falcosecurity/libs CRI_CGROUP_LAYOUT {"/crio-", ""} (non-systemd cri-o)',
    file: `4:cpu,cpuacct:/kubepods/burstable/pod${UID}/crio-${ID}\n`,
    want: { containerId: ID, podUid: UID, path: `/kubepods/burstable/pod${UID}/crio-${ID}` },
  },
  {
    name: 'v1, containerd CRI with SystemdCgroup on an old runc: slice:cri-containerd:<id>',
    source: 'falcosecurity/libs CRI_CGROUP_LAYOUT {":cri-containerd:", ""} (containerd without "SystemdCgroup = true" honoured by runc)',
    file: `5:devices:/kubepods-burstable-pod${UID_}.slice:cri-containerd:${ID}\n`,
    want: { containerId: ID, podUid: UID, path: `/kubepods-burstable-pod${UID_}.slice:cri-containerd:${ID}` },
  },
  {
    name: 'v1, Docker, cgroupfs driver: /docker/<id>',
    source: 'moby: default cgroup parent "/docker" with the cgroupfs driver',
    file: `9:memory:/docker/${ID}\n1:name=systemd:/docker/${ID}\n`,
    want: { containerId: ID, path: `/docker/${ID}` },
  },
  v2('v2, Docker, systemd driver: system.slice/docker-<id>.scope', 'moby: default parent "system.slice" with the systemd driver; runc libcontainer systemd unit name "<prefix>-<name>.scope"',
    `/system.slice/docker-${ID}.scope`, { containerId: ID }),
  v2('v2, cri-dockerd under the kubelet: docker-<id>.scope in a pod slice', 'falcosecurity/libs CRI_CGROUP_LAYOUT {"/docker-", ".scope"} (systemd docker in cri-dockerd scenario)',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${ID}.scope`, { containerId: ID, podUid: UID }),
  v2('v2, Podman, systemd driver: machine.slice/libpod-<id>.scope', 'containers/podman libpod: SystemdDefaultCgroupParent "machine.slice", container scope "libpod-<id>.scope"',
    `/machine.slice/libpod-${ID}.scope`, { containerId: ID }),
  v2('v2, Podman container running systemd: libpod-<id>.scope/container', 'containers/podman: a systemd-mode container gets a delegated sub-cgroup "container"',
    `/machine.slice/libpod-${ID}.scope/container`, { containerId: ID }),
  {
    name: 'v1, Podman, cgroupfs driver: /libpod_parent/libpod-<id>',
    source: 'containers/podman libpod: CgroupfsDefaultCgroupParent "/libpod_parent"',
    file: `7:pids:/libpod_parent/libpod-${ID}\n`,
    want: { containerId: ID, path: `/libpod_parent/libpod-${ID}` },
  },
  v2('kind node (kubelet in a container): kubelet.slice prefix, nested QoS slices', 'kubernetes-sigs/kind: kubelet --cgroup-root=/kubelet, expanded by the systemd driver',
    `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`, { containerId: ID, podUid: UID }),
  v2("static pod: the UID is a 32-hex hash (kubelet's config source), no dashes to restore", 'kubernetes/kubernetes pkg/kubelet/config: static pod UID = hex of an MD5 hash',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC_UID}.slice/cri-containerd-${ID}.scope`, { containerId: ID, podUid: STATIC_UID }),
  v2('pod cgroup itself (pause process under cgroupfs v2): pod UID, no container', 'kubelet ToCgroupfs on cgroup v2: 0::/kubepods/burstable/pod<uid>',
    `/kubepods/burstable/pod${UID}`, { podUid: UID }),
  v2('host process on cgroup v2: no identity, path kept', 'systemd: a service in system.slice',
    '/system.slice/ssh.service'),
  {
    name: 'host process on a hybrid host: v2 line first',
    source: 'systemd hybrid mode: v1 controllers plus 0:: unified line',
    file: '12:memory:/user.slice\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n0::/user.slice/user-0.slice/session-1.scope\n',
    want: { path: '/user.slice/user-0.slice/session-1.scope' },
  },
  v2('a systemd slice named like a pod but with a non-UID: not a pod', 'negative: kubepods-burstable.slice is a QoS slice, "podman.slice" a user slice',
    '/kubepods.slice/kubepods-burstable.slice'),
  v2('a short hex segment is not a container ID (only full 64-hex IDs count)', 'negative: /docker/abc (a user cgroup), machine IDs are 32 hex',
    '/docker/0123456789abcdef0123456789abcdef'),
  { name: 'empty file (process exited while read)', source: 'procfs: a zombie has an empty cgroup file', file: '', want: {} },
  { name: 'garbage lines are ignored', source: 'negative', file: 'nonsense\n3:x\n', want: {} },
];

describe('parseCgroupFile: real cgroup path shapes', () => {
  for (const row of ROWS) {
    it(`${row.name} [${row.source}]`, () => {
      assert.deepEqual(parseCgroupFile(row.file), row.want);
    });
  }
  it('never throws on arbitrary text', () => {
    for (const s of ['::', '0::', '0::relative/path', ':::::/x', '\n\n\n', '0::/' + 'a/'.repeat(10_000)]) parseCgroupFile(s);
  });
});
