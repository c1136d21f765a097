// Owners of socket inodes from /proc/PID/fd (the ss -p way): the link parser, the lookup on a
// procfs tree made of real symlinks, its caps, and what a process it may not read counts as.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_OWNER_LIMITS, findOwners, socketInode } from '../../src/sources/owners.ts';
import { checkoutForOtherUsers } from '../helpers/daemon.ts';

describe('socketInode()', () => {
  for (const [link, want] of [
    ['socket:[12345]', 12345],
    ['socket:[0]', 0],
    ['pipe:[12345]', undefined],
    ['anon_inode:[eventpoll]', undefined],
    ['/dev/null', undefined],
    ['socket:[12a]', undefined],
    ['socket:[12345] (deleted)', undefined],
    ['', undefined],
  ] as const) {
    it(`${JSON.stringify(link)} → ${want}`, () => assert.equal(socketInode(link), want));
  }
});

/** A procfs tree: pid → [comm, fd links]. */
function procfs(processes: Record<number, [string, string[]]>): string {
  const root = mkdtempSync(join(tmpdir(), 'tcpstate-owners-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  for (const [pid, [comm, links]] of Object.entries(processes)) {
    mkdirSync(join(root, pid, 'fd'), { recursive: true });
    writeFileSync(join(root, pid, 'comm'), `${comm}\n`);
    links.forEach((l, fd) => symlinkSync(l, join(root, pid, 'fd', String(fd))));
  }
  mkdirSync(join(root, 'net')); // not a process
  writeFileSync(join(root, 'self'), '');
  return root;
}

describe('findOwners()', () => {
  it('maps each wanted inode to every process holding it (a master and its workers), others ignored', async () => {
    const root = procfs({
      100: ['nginx', ['/dev/null', 'socket:[501]', 'pipe:[7]']],
      101: ['nginx', ['socket:[501]', 'socket:[502]']],
      200: ['python3', ['socket:[600]', 'socket:[999]']],
      300: ['sshd', ['socket:[700]']],
    });
    const r = await findOwners(root, new Set([501, 502, 600, 404]));
    assert.deepEqual(Object.fromEntries(r.owners), {
      501: [{ pid: 100, comm: 'nginx' }, { pid: 101, comm: 'nginx' }],
      502: [{ pid: 101, comm: 'nginx' }],
      600: [{ pid: 200, comm: 'python3' }],
    });
    assert.deepEqual([r.processes, r.scannedProcesses, r.scannedFds, r.denied, r.stoppedBy], [4, 4, 8, 0, null]);
  });

  it('nothing wanted: nothing read', async () => {
    const root = procfs({ 100: ['a', ['socket:[1]']] });
    const r = await findOwners(root, new Set());
    assert.deepEqual([r.owners.size, r.processes, r.scannedProcesses, r.scannedFds], [0, 0, 0, 0]);
  });

  it('stops at the process and descriptor caps, and says which', async () => {
    const root = procfs({ 1: ['a', ['socket:[1]', 'socket:[2]']], 2: ['b', ['socket:[3]', 'socket:[4]']], 3: ['c', ['socket:[5]']] });
    const want = new Set([1, 2, 3, 4, 5]);
    const byProcesses = await findOwners(root, want, { ...DEFAULT_OWNER_LIMITS, maxProcesses: 2 });
    assert.deepEqual([byProcesses.scannedProcesses, byProcesses.stoppedBy, byProcesses.owners.size], [2, 'processes', 4]);
    const byFds = await findOwners(root, want, { ...DEFAULT_OWNER_LIMITS, maxFds: 3 });
    assert.deepEqual([byFds.scannedFds, byFds.stoppedBy, byFds.owners.size], [3, 'fds', 3]);
    const byTime = await findOwners(root, want, { ...DEFAULT_OWNER_LIMITS, timeMs: -1 });
    assert.deepEqual([byTime.scannedProcesses, byTime.stoppedBy], [0, 'time']);
    const perSocket = await findOwners(procfs({ 1: ['w', ['socket:[9]']], 2: ['w', ['socket:[9]']], 3: ['w', ['socket:[9]']] }), new Set([9]), { ...DEFAULT_OWNER_LIMITS, maxOwnersPerSocket: 2 });
    assert.equal(perSocket.owners.get(9)!.length, 2);
  });

  it('a process whose fd directory cannot be read counts as denied (another user without CAP_SYS_PTRACE); a vanished one does not', { skip: process.getuid?.() === 0 ? false : 'root only' }, async () => {
    const root = procfs({ 1: ['mine', ['socket:[1]']], 2: ['theirs', ['socket:[2]']] });
    chmodSync(root, 0o755); // mkdtemp's 0700 would hide the whole tree from nobody
    chmodSync(join(root, '2', 'fd'), 0o000);
    mkdirSync(join(root, '3')); // exited between readdir and the fd read: no fd directory
    // Root reads through mode 000 (CAP_DAC_OVERRIDE): drop to nobody for the lookup, in a child.
    const { execFileSync } = await import('node:child_process');
    // nobody must reach the code too (a checkout under /root is closed to it).
    const checkout = checkoutForOtherUsers();
    const out = execFileSync(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '--import', 'tsx', '-e',
        `import('${checkout}src/sources/owners.ts').then(async (m) => { const r = await m.findOwners(${JSON.stringify(root)}, new Set([1, 2])); console.log(JSON.stringify({ owners: [...r.owners.keys()], denied: r.denied, scanned: r.scannedProcesses })); })`],
      { encoding: 'utf8', cwd: checkout },
    );
    assert.deepEqual(JSON.parse(out), { owners: [1], denied: 1, scanned: 3 });
  });
});
