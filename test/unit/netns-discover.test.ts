// Namespace discovery over a fixture procfs tree (symlinks shaped like /proc/<pid>/ns/net), and
// the --netns flag's selection. Real namespaces: test/kernel/netns.test.ts.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeProcess, discoverNamespaces, parseNetnsFlag, parseNsLink, selectNamespaces, unmatchedItems, type NetnsEntry } from '../../src/netns/discover.ts';

const HOST = 4026531840;
const POD = 4026532001;
const OTHER = 4026532002;
const UID = '6e7520b1-f6e3-45bd-8673-1d64d102fedf';
const CID = 'a'.repeat(64);

describe('parseNsLink', () => {
  const rows: Array<[string, number | undefined]> = [
    ['net:[4026531840]', 4026531840],
    ['net:[1]', 1],
    ['mnt:[4026531840]', undefined],
    ['net:[]', undefined],
    ['net:[12a]', undefined],
    ['net:[4026531840] ', undefined],
    ['net:[99999999999999999999]', undefined], // beyond 2^53: not representable exactly
    ['', undefined],
  ];
  for (const [text, want] of rows) it(JSON.stringify(text), () => assert.equal(parseNsLink(text), want));
});

describe('discoverNamespaces: fixture procfs', () => {
  let root: string;
  let procfs: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), `tcpstate-netns-${process.pid}-`));
    procfs = join(root, 'proc');
    const proc = async (pid: number, link: string | undefined, comm: string, cgroup: string) => {
      const dir = join(procfs, String(pid));
      await mkdir(join(dir, 'ns'), { recursive: true });
      if (link !== undefined) await symlink(link, join(dir, 'ns', 'net'));
      await writeFile(join(dir, 'comm'), `${comm}\n`);
      await writeFile(join(dir, 'cgroup'), cgroup);
    };
    await proc(1, `net:[${HOST}]`, 'init', '0::/init.scope\n');
    await proc(77, `net:[${HOST}]`, 'tcpstate', '0::/system.slice/tcpstate-exporter.service\n');
    // The pod: its pause process (lowest pid) and an app container sharing the namespace.
    await proc(4242, `net:[${POD}]`, 'app', `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${'b'.repeat(64)}.scope\n`);
    await proc(4200, `net:[${POD}]`, 'pause', `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${CID}.scope\n`);
    await proc(5000, `net:[${OTHER}]`, 'sleep', '0::/user.slice\n');
    // A process that exited between readdir and readlink: its ns/net is gone.
    await proc(6000, undefined, 'gone', '');
    // Kernel threads and ordinary entries that are not pids are ignored.
    await mkdir(join(procfs, 'net'), { recursive: true });
    await writeFile(join(procfs, 'uptime'), '1 1\n');
    await symlink('77', join(procfs, 'self'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('one entry per distinct inode, through its lowest pid; own first; vanished pid skipped', async () => {
    const d = await discoverNamespaces({ procfs, runNetns: join(root, 'no-run-netns') });
    assert.deepEqual(d.namespaces, [
      { inode: HOST, own: true, names: [], pid: 1, nsPath: join(procfs, '1', 'ns', 'net') },
      { inode: POD, own: false, names: [], pid: 4200, nsPath: join(procfs, '4200', 'ns', 'net') },
      { inode: OTHER, own: false, names: [], pid: 5000, nsPath: join(procfs, '5000', 'ns', 'net') },
    ]);
    assert.equal(d.unreadablePids, 0);
  });

  it('a link that is not a symlink is counted as unreadable, with its reason', async () => {
    const dir = join(procfs, '7000', 'ns');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'net'), 'not a link');
    try {
      const d = await discoverNamespaces({ procfs, runNetns: join(root, 'no-run-netns') });
      assert.equal(d.namespaces.length, 3);
      assert.equal(d.unreadablePids, 1);
      assert.equal(d.unreadableReason, 'EINVAL');
    } finally {
      await rm(join(procfs, '7000'), { recursive: true });
    }
  });

  it('an unmounted file under the run directory is no namespace', async () => {
    const run = join(root, 'run-netns');
    await mkdir(run, { recursive: true });
    await writeFile(join(run, 'leftover'), '');
    const d = await discoverNamespaces({ procfs, runNetns: run });
    assert.deepEqual(d.namespaces.flatMap((n) => n.names), []);
  });

  it('a procfs without self is an error naming the path', async () => {
    await assert.rejects(discoverNamespaces({ procfs: join(root, 'nowhere'), runNetns: run0(root) }), /nowhere/);
  });

  it('identity of the process a namespace is read through: comm, container ID, pod UID', async () => {
    assert.deepEqual(await describeProcess(procfs, 4200), {
      comm: 'pause',
      containerId: CID,
      podUid: UID,
      path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${CID}.scope`,
    });
    assert.deepEqual(await describeProcess(procfs, 99999), {}, 'a vanished process has no identity, and no error');
  });
});

function run0(root: string): string {
  return join(root, 'no-run-netns');
}

describe('--netns: parse and select', () => {
  const all: NetnsEntry[] = [
    { inode: HOST, own: true, names: [], pid: 1, nsPath: '/proc/1/ns/net' },
    { inode: POD, own: false, names: [], pid: 4200, nsPath: '/proc/4200/ns/net' },
    { inode: OTHER, own: false, names: ['blue', 'blue-alias'], nsPath: '/run/netns/blue' },
  ];
  const inodes = (l: NetnsEntry[]) => l.map((n) => n.inode);

  it('own (the default) reads the exporter namespace only', () => {
    assert.deepEqual(inodes(selectNamespaces(all, parseNetnsFlag('own'))), [HOST]);
  });
  it('all reads every namespace', () => {
    assert.deepEqual(inodes(selectNamespaces(all, parseNetnsFlag('all'))), [HOST, POD, OTHER]);
  });
  it('LIST by name, by inode, and net:[inode]; the own namespace is always read', () => {
    assert.deepEqual(inodes(selectNamespaces(all, parseNetnsFlag('blue-alias'))), [HOST, OTHER]);
    assert.deepEqual(inodes(selectNamespaces(all, parseNetnsFlag(` ${POD} `))), [HOST, POD]);
    assert.deepEqual(inodes(selectNamespaces(all, parseNetnsFlag(`net:[${POD}],blue`))), [HOST, POD, OTHER]);
  });
  it('unmatched LIST items are reported', () => {
    assert.deepEqual(unmatchedItems(all, parseNetnsFlag('blue,red,123')), ['red', '123']);
    assert.deepEqual(unmatchedItems(all, parseNetnsFlag('all')), []);
  });
  it('bad values are errors naming --netns', () => {
    for (const bad of ['', 'blue,,red', 'own,blue', 'all,1', '../etc', 'a/b', '99999999999999999999']) {
      assert.throws(() => parseNetnsFlag(bad), /--netns=/, bad);
    }
  });
});
