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

const ROWS: Row[] = [
  {
    name: 'v2, systemd driver, containerd (kubeadm default), burstable pod',
    source: 'kubernetes/kubernetes pkg/kubelet/cm/cgroup_manager_linux.go ToSystemd ("-" → "_", parents joined by "-"); prefix "cri-containerd" from test/e2e_node containerCgroupPathPrefixFromDriver',
    file: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope\n`,
    want: { containerId: ID, podUid: UID, path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope` },
  },
  {
    name: 'v2, systemd driver, CRI-O, besteffort pod',
    source: 'falcosecurity/libs libsinsp CRI_CGROUP_LAYOUT {"/crio-", ".scope"} (systemd cri-o); kubelet QoS slice kubepods-besteffort',
    file: `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope\n`,
    want: { containerId: ID, podUid: UID, path: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope` },
  },
  {
    name: 'v2, systemd driver, guaranteed pod (no QoS level)',
    source: 'kubernetes/kubernetes pkg/kubelet/cm qos_container_manager: Guaranteed pods sit directly under kubepods',
    file: `0::/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope\n`,
    want: { containerId: ID, podUid: UID, path: `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope` },
  },
  {
    name: "CRI-O's conmon beside the container is not the container",
    source: 'kubernetes/kubernetes test/e2e_node cpu manager test, example path ".../kubepods-burstable-pod0b7632a2_….slice/crio-conmon-0bc5….scope"',
    file: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope\n`,
    want: { podUid: UID, path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope` },
  },
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
  {
    name: 'v2, Docker, systemd driver: system.slice/docker-<id>.scope',
    source: 'moby: default parent "system.slice" with the systemd driver; runc libcontainer systemd unit name "<prefix>-<name>.scope"',
    file: `0::/system.slice/docker-${ID}.scope\n`,
    want: { containerId: ID, path: `/system.slice/docker-${ID}.scope` },
  },
  {
    name: 'v2, cri-dockerd under the kubelet: docker-<id>.scope in a pod slice',
    source: 'falcosecurity/libs CRI_CGROUP_LAYOUT {"/docker-", ".scope"} (systemd docker in cri-dockerd scenario)',
    file: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${ID}.scope\n`,
    want: { containerId: ID, podUid: UID, path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${ID}.scope` },
  },
  {
    name: 'v2, Podman, systemd driver: machine.slice/libpod-<id>.scope',
    source: 'containers/podman libpod: SystemdDefaultCgroupParent "machine.slice", container scope "libpod-<id>.scope"',
    file: `0::/machine.slice/libpod-${ID}.scope\n`,
    want: { containerId: ID, path: `/machine.slice/libpod-${ID}.scope` },
  },
  {
    name: 'v2, Podman container running systemd: libpod-<id>.scope/container',
    source: 'containers/podman: a systemd-mode container gets a delegated sub-cgroup "container"',
    file: `0::/machine.slice/libpod-${ID}.scope/container\n`,
    want: { containerId: ID, path: `/machine.slice/libpod-${ID}.scope/container` },
  },
  {
    name: 'v1, Podman, cgroupfs driver: /libpod_parent/libpod-<id>',
    source: 'containers/podman libpod: CgroupfsDefaultCgroupParent "/libpod_parent"',
    file: `7:pids:/libpod_parent/libpod-${ID}\n`,
    want: { containerId: ID, path: `/libpod_parent/libpod-${ID}` },
  },
  {
    name: 'kind node (kubelet in a container): kubelet.slice prefix, nested QoS slices',
    source: 'kubernetes-sigs/kind: kubelet --cgroup-root=/kubelet, expanded by the systemd driver',
    file: `0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope\n`,
    want: {
      containerId: ID,
      podUid: UID,
      path: `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`,
    },
  },
  {
    name: "static pod: the UID is a 32-hex hash (kubelet's config source), no dashes to restore",
    source: 'kubernetes/kubernetes pkg/kubelet/config: static pod UID = hex of an MD5 hash',
    file: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC_UID}.slice/cri-containerd-${ID}.scope\n`,
    want: { containerId: ID, podUid: STATIC_UID, path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC_UID}.slice/cri-containerd-${ID}.scope` },
  },
  {
    name: 'pod cgroup itself (pause process under cgroupfs v2): pod UID, no container',
    source: 'kubelet ToCgroupfs on cgroup v2: 0::/kubepods/burstable/pod<uid>',
    file: `0::/kubepods/burstable/pod${UID}\n`,
    want: { podUid: UID, path: `/kubepods/burstable/pod${UID}` },
  },
  {
    name: 'host process on cgroup v2: no identity, path kept',
    source: 'systemd: a service in system.slice',
    file: '0::/system.slice/ssh.service\n',
    want: { path: '/system.slice/ssh.service' },
  },
  {
    name: 'host process on a hybrid host: v2 line first',
    source: 'systemd hybrid mode: v1 controllers plus 0:: unified line',
    file: '12:memory:/user.slice\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n0::/user.slice/user-0.slice/session-1.scope\n',
    want: { path: '/user.slice/user-0.slice/session-1.scope' },
  },
  {
    name: 'a systemd slice named like a pod but with a non-UID: not a pod',
    source: 'negative: kubepods-burstable.slice is a QoS slice, "podman.slice" a user slice',
    file: '0::/kubepods.slice/kubepods-burstable.slice\n',
    want: { path: '/kubepods.slice/kubepods-burstable.slice' },
  },
  {
    name: 'a short hex segment is not a container ID (only full 64-hex IDs count)',
    source: 'negative: /docker/abc (a user cgroup), machine IDs are 32 hex',
    file: '0::/docker/0123456789abcdef0123456789abcdef\n',
    want: { path: '/docker/0123456789abcdef0123456789abcdef' },
  },
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
