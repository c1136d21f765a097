// Real kernel: several network namespaces seen from the host namespace. A named one (`ip netns
// add`) and an anonymous one (`unshare -n`, its process in a cgroup shaped like a Kubernetes pod's)
// each run the FIN-WAIT-1 lab with a different number of orphans. From the host:
//   - discovery finds both, by name and by process, with the inodes the kernel shows;
//   - the process's cgroup gives the pod UID and container ID;
//   - ONE tcpstate-diag --serve helper dumps each namespace on request (setns), exact counts and
//     Send-Q, and the host's own table untouched; a namespace that vanished or cannot be entered
//     fails its round only;
//   - /proc/<pid>/net/tcp of a process in each namespace gives the same sockets;
//   - the privileges setns needs, exactly (setpriv as an unprivileged user, with and without caps).
// Needs root.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, readdir, readlink, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { TCP_STATES, type SocketRecord } from '../../src/model.ts';
import { describeProcess, discoverNamespaces, parseNsLink } from '../../src/netns/discover.ts';
import { EXT_BIT, InetDiagParser, stateMask } from '../../src/parsers/inet-diag.ts';
import { ProcNetTcpParser } from '../../src/parsers/proc-net-tcp.ts';
import { NetlinkHelper, NetnsUnavailable } from '../../src/sources/netlink.ts';
import { podCgroup } from '../helpers/cgroup.ts';
import { CollectingSink, feed } from '../helpers/collect.ts';
import { ROOT, sample, startDaemon, waitForPoll } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';

const run = promisify(execFile);
const HELPER = join(ROOT, 'build', 'tcpstate-diag');
const NAMED = `tcpstate-nsa-${process.pid}`;
const DOOMED = `tcpstate-nsd-${process.pid}`;
const N_A = 7; // orphaned FIN-WAIT-1 in the named namespace
const N_B = 13; // … in the unshare'd one
const POD_UID = `0b7632a2-a56e-4278-987a-${process.pid.toString(16).padStart(12, '0')}`;
const CONTAINER_ID = `${process.pid.toString(16).padStart(8, '0')}${'c0ffee'.repeat(10)}`.slice(0, 64);
// Every state, with tcp_info and skmeminfo: one dump per family per round.
const SPEC = `${stateMask(TCP_STATES).toString(16)}:${(EXT_BIT.info | EXT_BIT.skmeminfo).toString(16)}`;

/** tcpstate-diag --serve, driven one request line at a time, as the exporter will. */
class Helper {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private parser: InetDiagParser | undefined;
  private waiting: (() => void) | undefined;
  stderr = '';

  constructor(prefix: string[] = [], binary = HELPER) {
    const cmd = [...prefix, binary, '--serve', SPEC];
    this.child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.parser?.push(chunk);
      if (this.parser !== undefined && this.parser.dumpsCompleted >= 2) this.waiting?.();
    });
  }

  /** One round in the namespace behind nsPath ('' = the helper's own). */
  async round(nsPath: string): Promise<{ records: SocketRecord[]; failedErrno: number | undefined }> {
    const sink = new CollectingSink();
    const parser = new InetDiagParser(sink);
    this.parser = parser;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer for "${nsPath}" in 10 s; stderr: ${this.stderr}`)), 10_000);
      this.waiting = () => {
        clearTimeout(timer);
        resolve();
      };
      this.child.once('exit', (code) => reject(new Error(`helper exited ${code}: ${this.stderr}`)));
    });
    this.child.stdin.write(`${nsPath}\n`);
    await done;
    this.parser = undefined;
    parser.end();
    assert.deepEqual(sink.errors, [], 'no parse errors');
    return { records: sink.records, failedErrno: parser.failedErrno };
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.stdin.end();
    return exited;
  }
}

function finWait1(records: SocketRecord[], port: number): { count: number; sendq: number } {
  const mine = records.filter((r) => r.state === 'fin_wait1' && r.localPort === port);
  return { count: mine.length, sendq: mine.reduce((a, r) => a + r.sendQueue, 0) };
}

/** Sockets as comparable text: what both read paths must agree on. */
function tableOf(records: SocketRecord[]): string[] {
  return records
    .filter((r) => r.state !== 'time_wait' && r.state !== 'syn_recv') // no queues to compare; may expire between reads
    // A listener's Send-Q is its backlog limit from netlink and 0 in /proc: not bytes, not compared.
    .map((r) => `${r.state} ${r.localAddress}:${r.localPort} ${r.remoteAddress}:${r.remotePort} q=${r.state === 'listen' ? '-' : r.sendQueue}/${r.recvQueue}`)
    .sort();
}

async function procTable(pid: number): Promise<SocketRecord[]> {
  const sink = new CollectingSink();
  feed(new ProcNetTcpParser(sink, 'ipv4'), await readFile(`/proc/${pid}/net/tcp`, 'utf8'));
  feed(new ProcNetTcpParser(sink, 'ipv6'), await readFile(`/proc/${pid}/net/tcp6`, 'utf8'));
  assert.deepEqual(sink.errors, []);
  return sink.records;
}

describe('real kernel: network namespaces seen from the host', { timeout: 180_000 }, () => {
  let labA: Lab;
  let labB: Lab;
  let unshared: ChildProcess;
  let pidB: number;
  let cgroup: { dirs: string[]; procs: string } | undefined;
  let tmp: string;

  before(async () => {
    await createNetns(NAMED);
    await createNetns(DOOMED);
    // `unshare -n` execs sleep in a new network namespace: sleep's pid holds it.
    unshared = spawn('unshare', ['-n', 'sleep', '600'], { stdio: 'ignore' });
    pidB = unshared.pid!;
    for (let i = 0; i < 50; i++) {
      const link = await readlink(`/proc/${pidB}/ns/net`).catch(() => '');
      if (link !== '' && link !== (await readlink('/proc/self/ns/net'))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    cgroup = await podCgroup(POD_UID, CONTAINER_ID);
    if (cgroup !== undefined) await writeFile(cgroup.procs, String(pidB));
    await run('nsenter', [`--net=/proc/${pidB}/ns/net`, 'ip', 'link', 'set', 'lo', 'up']);
    labA = await Lab.start({ finWait1: N_A, established: 2, timeWait: 0, netns: NAMED, basePort: 17101 });
    labB = await Lab.start({ finWait1: N_B, established: 3, timeWait: 0, netns: `/proc/${pidB}/ns/net`, basePort: 17201 });
    tmp = await mkdtemp(join(tmpdir(), `tcpstate-netns-${process.pid}-`));
    await chmod(tmp, 0o755);
    await copyFile(HELPER, join(tmp, 'tcpstate-diag'));
    await chmod(join(tmp, 'tcpstate-diag'), 0o755);
  });
  after(async () => {
    await labA?.stop();
    await labB?.stop();
    unshared?.kill();
    if (unshared !== undefined && unshared.exitCode === null) await new Promise((r) => unshared.once('exit', r));
    for (const d of [...(cgroup?.dirs ?? [])].reverse()) await rmdir(d).catch(() => undefined);
    await deleteNetns(NAMED);
    await deleteNetns(DOOMED);
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  });

  it('discovery: own, the named namespace by name, the anonymous one through its process', async () => {
    const d = await discoverNamespaces({ procfs: '/proc', runNetns: '/run/netns' });
    const own = parseNsLink(await readlink('/proc/self/ns/net'))!;
    const inodeA = (await stat(`/run/netns/${NAMED}`)).ino;
    const inodeB = parseNsLink(await readlink(`/proc/${pidB}/ns/net`))!;
    assert.equal(new Set([own, inodeA, inodeB]).size, 3, 'three distinct namespaces');
    assert.equal(d.namespaces[0]!.inode, own);
    assert.equal(d.namespaces[0]!.own, true);
    const a = d.namespaces.find((n) => n.inode === inodeA);
    assert.ok(a, 'named namespace found');
    assert.deepEqual(a.names, [NAMED]);
    assert.equal(a.nsPath, `/run/netns/${NAMED}`);
    assert.equal(a.pid, labA.pid, 'read through the lab process, the only one in it');
    const b = d.namespaces.find((n) => n.inode === inodeB);
    assert.ok(b, 'anonymous namespace found');
    assert.deepEqual(b.names, []);
    assert.equal(b.pid, Math.min(pidB, labB.pid), 'through its lowest pid');
    assert.equal(b.nsPath, `/proc/${b.pid}/ns/net`);
    // Counted, not dropped: the processes whose link even root may not read (here, a sandbox's
    // PID 1 in another user namespace), measured independently.
    const refused: number[] = [];
    for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
      await readlink(`/proc/${pid}/ns/net`).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EACCES') refused.push(Number(pid));
      });
    }
    assert.equal(d.unreadablePids, refused.length, `refused: ${refused.join(' ')}`);
    if (refused.length > 0) assert.equal(d.unreadableReason, 'EACCES');
    // The named namespace with no process is found too.
    const doomed = d.namespaces.find((n) => n.names.includes(DOOMED));
    assert.ok(doomed && doomed.pid === undefined);
  });

  it('discovery while processes come and go: never an error, every namespace still found', async () => {
    const churn = Array.from({ length: 40 }, () => spawn('sh', ['-c', 'exit 0'], { stdio: 'ignore' }));
    const results = await Promise.all(Array.from({ length: 5 }, () => discoverNamespaces({ procfs: '/proc', runNetns: '/run/netns' })));
    await Promise.all(churn.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(undefined)))));
    const inodeA = (await stat(`/run/netns/${NAMED}`)).ino;
    for (const d of results) assert.ok(d.namespaces.some((n) => n.inode === inodeA));
  });

  it('identity: the pod UID and container ID from the cgroup the process sits in', async (t) => {
    if (cgroup === undefined) {
      t.skip('no cgroup hierarchy under /sys/fs/cgroup lets this process make a cgroup');
      return;
    }
    const id = await describeProcess('/proc', pidB);
    assert.equal(id.comm, 'sleep');
    assert.equal(id.podUid, POD_UID);
    assert.equal(id.containerId, CONTAINER_ID);
  });

  it('one helper, one namespace per request: exact counts and Send-Q; the host untouched; failures per round', async () => {
    const helper = new Helper();
    try {
      const [figA, figB] = await Promise.all([labA.measure(), labB.measure()]);
      const host = await helper.round('');
      const a = await helper.round(`/run/netns/${NAMED}`);
      const b = await helper.round(`/proc/${pidB}/ns/net`);
      assert.equal(a.failedErrno, undefined);
      assert.equal(b.failedErrno, undefined);
      const fa = finWait1(a.records, labA.ports.fin_wait1);
      const fb = finWait1(b.records, labB.ports.fin_wait1);
      assert.equal(figA.fin_wait1, N_A);
      assert.equal(figB.fin_wait1, N_B);
      assert.equal(fa.count, N_A);
      assert.equal(fb.count, N_B);
      assert.ok(fa.sendq >= figA.fin_wait1_send_queue_without_fin && fa.sendq <= figA.fin_wait1_send_queue_without_fin + N_A, `A Send-Q ${fa.sendq}`);
      assert.ok(fb.sendq >= figB.fin_wait1_send_queue_without_fin && fb.sendq <= figB.fin_wait1_send_queue_without_fin + N_B, `B Send-Q ${fb.sendq}`);
      // Each namespace holds only its own lab; the host holds neither.
      assert.equal(finWait1(a.records, labB.ports.fin_wait1).count, 0);
      assert.equal(finWait1(b.records, labA.ports.fin_wait1).count, 0);
      const labPorts: number[] = [labA, labB].flatMap((l) => [l.ports.fin_wait1, l.ports.established, l.ports.time_wait]);
      assert.deepEqual(host.records.filter((r) => labPorts.includes(r.localPort) || labPorts.includes(r.remotePort)), []);

      // A namespace gone between discovery and its round: that round fails with ENOENT, and only it.
      const before = await helper.round(`/run/netns/${DOOMED}`);
      assert.equal(before.failedErrno, undefined);
      assert.deepEqual(before.records, [], 'an empty namespace');
      await deleteNetns(DOOMED);
      assert.equal((await helper.round(`/run/netns/${DOOMED}`)).failedErrno, 2, 'ENOENT');
      // Not a network namespace, and an over-long request line.
      assert.equal((await helper.round('/proc/self/ns/mnt')).failedErrno, 22, 'EINVAL');
      assert.equal((await helper.round(`/${'x'.repeat(5000)}`)).failedErrno, 36, 'ENAMETOOLONG');
      // The helper went home after each round: its own table again, and namespace A unchanged.
      const home = await helper.round('');
      assert.deepEqual(home.records.filter((r) => labPorts.includes(r.localPort)), []);
      assert.equal(finWait1((await helper.round(`/run/netns/${NAMED}`)).records, labA.ports.fin_wait1).count, N_A);
    } finally {
      assert.equal(await helper.stop(), 0, `helper ends 0 at end of input (stderr: ${helper.stderr})`);
    }
  });

  it('NetlinkHelper (the exporter\'s helper object): a round per namespace; a vanished one rejects alone, the helper stays', async () => {
    const helper = new NetlinkHelper({ path: HELPER, timeoutMs: 10_000 });
    try {
      const a = new CollectingSink();
      await helper.read(a, undefined, `/run/netns/${NAMED}`);
      const b = new CollectingSink();
      await helper.read(b, undefined, `/proc/${pidB}/ns/net`);
      assert.equal(finWait1(a.records, labA.ports.fin_wait1).count, N_A);
      assert.equal(finWait1(b.records, labB.ports.fin_wait1).count, N_B);
      // FIN-WAIT-1 comes from the dump with tcp_info and skmeminfo: backoff and memory are there.
      assert.ok(b.records.filter((r) => r.state === 'fin_wait1').every((r) => r.backoff !== undefined && r.wmemQueued !== undefined));
      await assert.rejects(
        helper.read(new CollectingSink(), undefined, `/run/netns/${NAMED}-never-made`),
        (e: unknown) => e instanceof NetnsUnavailable && e.reason === 'vanished' && e.code === 'ENOENT' && /the namespace is gone/.test(e.message),
      );
      await assert.rejects(helper.read(new CollectingSink(), undefined, '/proc/self/ns/mnt'), (e: unknown) => e instanceof NetnsUnavailable && e.reason === 'error' && e.code === 'EINVAL');
      assert.equal(helper.running, true, 'a failed namespace does not cost the helper');
      const own = new CollectingSink();
      await helper.read(own);
      assert.equal(finWait1(own.records, labA.ports.fin_wait1).count, 0, 'back in its own namespace');
    } finally {
      await helper.stop();
    }
  });

  it('/proc/<pid>/net/tcp{,6} of a process in each namespace gives the same sockets as setns + netlink', async () => {
    const helper = new Helper();
    try {
      for (const [nsPath, pid] of [
        [`/run/netns/${NAMED}`, labA.pid],
        [`/proc/${pidB}/ns/net`, pidB],
      ] as const) {
        // Read until two netlink rounds agree around the /proc read (the lab's sockets are static;
        // only timers move, and they are not compared).
        const viaNetlink = tableOf((await helper.round(nsPath)).records);
        const viaProc = tableOf(await procTable(pid));
        assert.ok(viaNetlink.length >= N_A, `${nsPath}: ${viaNetlink.length} sockets`);
        assert.deepEqual(viaProc, viaNetlink, nsPath);
      }
    } finally {
      await helper.stop();
    }
  });

  it('the blind spot, measured: an exporter in the host namespace sees the kernel count orphans its table lacks', async () => {
    const d = await startDaemon(['--source', 'netlink', '--poll.interval', '1s', '--log.level', 'debug']);
    try {
      await waitForPoll(d);
      const body = (await d.get('/metrics')).body;
      const kernel = sample(body, 'tcpstate_orphans')!;
      const seen = body
        .split('\n')
        .filter((l) => l.startsWith('tcpstate_orphan_sockets{'))
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      // sockstat's orphan count is host-wide: it includes the labs' orphans in both namespaces,
      // which no table the exporter reads holds (TcpOrphansUnaccounted, tcpstate:orphans_unaccounted:count).
      assert.ok(kernel - seen >= N_A + N_B, `kernel ${kernel} − seen ${seen} < ${N_A + N_B}`);
      assert.equal(sample(body, 'tcpstate_sockets{state="fin_wait1",family="ipv4"}') !== undefined, true);
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });

  it('privileges, exactly: setns needs CAP_SYS_ADMIN; another user\'s /proc/PID/ns/net also CAP_SYS_PTRACE', async () => {
    const as = (caps: string[]) => [
      'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
      `--inh-caps=${caps.length === 0 ? '-all' : caps.map((c) => `+${c}`).join(',')}`,
      ...(caps.length === 0 ? [] : [`--ambient-caps=${caps.map((c) => `+${c}`).join(',')}`]),
    ];
    const named = `/run/netns/${NAMED}`;
    const byPid = `/proc/${pidB}/ns/net`; // a root process's namespace file
    const cases: Array<{ caps: string[]; path: string; errno: number | undefined }> = [
      { caps: [], path: '', errno: undefined }, // its own namespace: no privilege at all
      { caps: [], path: named, errno: 1 }, // EPERM: setns without CAP_SYS_ADMIN
      { caps: [], path: byPid, errno: 13 }, // EACCES: the file of another user's process
      { caps: ['sys_admin'], path: named, errno: undefined },
      { caps: ['sys_admin'], path: byPid, errno: 13 },
      { caps: ['sys_ptrace'], path: byPid, errno: 1 },
      { caps: ['sys_admin', 'sys_ptrace'], path: byPid, errno: undefined },
    ];
    for (const c of cases) {
      // A copy the unprivileged user can reach (the checkout may sit in a directory it cannot).
      const helper = new Helper(as(c.caps), join(tmp, 'tcpstate-diag'));
      try {
        const r = await helper.round(c.path);
        const what = `caps [${c.caps.join(',')}] ${c.path || '(own)'}`;
        assert.equal(r.failedErrno, c.errno, what);
        if (c.errno === undefined && c.path !== '') {
          const port = c.path === named ? labA.ports.fin_wait1 : labB.ports.fin_wait1;
          assert.equal(finWait1(r.records, port).count, c.path === named ? N_A : N_B, what);
        }
      } finally {
        await helper.stop();
      }
    }
  });
});
