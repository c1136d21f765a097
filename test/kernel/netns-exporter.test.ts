// Real kernel, the whole exporter (bin/tcpstate-exporter.js) with --netns: it runs in a namespace
// of its own standing for the host ("host", a FIN-WAIT-1 lab of N_H orphans), and sees four more,
// each running the FIN-WAIT-1 lab with a different number of orphans:
//   A: `ip netns add` (N_A)        B: `unshare -n` + sleep, in a Kubernetes-pod-shaped cgroup (N_B)
//   C: `ip netns add` (N_C)        D: `ip netns add` (N_D), deleted while the exporter runs.
// Asserted from /metrics: exact per-namespace FIN-WAIT-1 counts and Send-Q (within one byte per
// socket), the host's figures as --netns=own shows them, identity labels, the fold into
// netns="other" above --netns.max, D disappearing cleanly, and the same figures whichever read path
// (setns netlink, ss -N / /proc/PID/net, /proc/PID/net) is used. Needs root.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readlink, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { discoverNamespaces, parseNsLink } from '../../src/netns/discover.ts';
import { NetnsPoller } from '../../src/netns/poll.ts';
import { Poller } from '../../src/poller/poller.ts';
import { liveSources } from '../../src/sources/live.ts';
import { podCgroup, removePodCgroup, type PodCgroup } from '../helpers/cgroup.ts';
import { BIN, ROOT, startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { parseExposition } from '../helpers/exposition.ts';
import { Lab, createNetns, deleteNetns, type LabFigures } from '../lab/lab.ts';

const run = promisify(execFile);
const tag = (x: string) => `tcpstate-nx${x}-${process.pid}`;
const HOST = tag('h');
const A = tag('a');
const C = tag('c');
const D = tag('d');
const N = { host: 3, a: 5, b: 9, c: 2, d: 4 };
const POD_UID = `5e1f2d3c-4b5a-4978-8a6b-${process.pid.toString(16).padStart(12, '0')}`;
const CONTAINER_ID = `${process.pid.toString(16).padStart(8, '0')}${'beef42'.repeat(10)}`.slice(0, 64);

type Series = Map<string, number>;

async function metrics(d: Daemon): Promise<Series> {
  const res = await d.get('/metrics');
  assert.equal(res.status, 200);
  return parseExposition(res.body).series;
}

const fw1 = (s: Series, netns: string) => ({
  sockets: s.get(`tcpstate_sockets{state="fin_wait1",family="ipv4",netns="${netns}"}`),
  sendq: s.get(`tcpstate_send_queue_bytes{state="fin_wait1",family="ipv4",netns="${netns}"}`),
  orphans: s.get(`tcpstate_orphan_sockets{state="fin_wait1",family="ipv4",netns="${netns}"}`),
});

/** Send-Q within [bytes the peer did not take, + 1 per socket for its FIN]. */
function assertSendQ(got: number | undefined, lab: LabFigures, what: string): void {
  const base = lab.fin_wait1_send_queue_without_fin;
  assert.ok(base > lab.fin_wait1 * 1000, `${what}: the lab queued real data (${base})`);
  assert.ok(got !== undefined && got >= base && got <= base + lab.fin_wait1, `${what}: Send-Q ${got} not within [${base}, ${base + lab.fin_wait1}]`);
}

/** The steady socket-table series of one namespace (no timers, which move between polls). */
function steady(s: Series, netns: string): string[] {
  return [...s]
    .filter(([k]) => /^tcpstate_(sockets|send_queue_bytes|recv_queue_bytes|orphan_sockets|orphan_send_queue_bytes)\{/.test(k) && k.endsWith(`,netns="${netns}"}`))
    .filter(([k]) => !/state="(time_wait|syn_recv)"/.test(k))
    .map(([k, v]) => `${k} ${v}`)
    .sort();
}

/** Error-level lines (pino level 50+) in a daemon's JSON log. */
function errors(d: Daemon): string[] {
  return d
    .logs()
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l));
}

describe('real kernel: one exporter, every network namespace (--netns)', { timeout: 300_000 }, () => {
  const labs: Record<string, Lab> = {};
  const figs: Record<string, LabFigures> = {};
  const inode: Record<string, string> = {};
  let unshared: ChildProcess;
  let pidB: number;
  let cgroup: PodCgroup | undefined;

  before(async () => {
    for (const n of [HOST, A, C, D]) await createNetns(n);
    unshared = spawn('unshare', ['-n', 'sleep', '900'], { stdio: 'ignore' });
    pidB = unshared.pid!;
    const own = await readlink('/proc/self/ns/net');
    for (let i = 0; i < 100; i++) {
      const link = await readlink(`/proc/${pidB}/ns/net`).catch(() => '');
      if (link !== '' && link !== own) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    cgroup = await podCgroup(POD_UID, CONTAINER_ID);
    assert.ok(cgroup, 'this machine lets root make a cgroup (the identity part needs one)');
    await writeFile(cgroup.procs, String(pidB));
    await run('nsenter', [`--net=/proc/${pidB}/ns/net`, 'ip', 'link', 'set', 'lo', 'up']);
    const where = { host: HOST, a: A, b: `/proc/${pidB}/ns/net`, c: C, d: D } as const;
    let port = 17400;
    for (const k of ['host', 'a', 'b', 'c', 'd'] as const) {
      labs[k] = await Lab.start({ finWait1: N[k], established: 2, timeWait: 0, netns: where[k], basePort: (port += 20) });
      // A pod's processes all sit in its cgroup: whichever is found first (the lowest pid) names it.
      if (k === 'b') await writeFile(cgroup.procs, String(labs[k].pid));
      figs[k] = await labs[k].measure();
      assert.equal(figs[k].fin_wait1, N[k], `lab ${k}`);
    }
    for (const k of ['host', 'a', 'c', 'd'] as const) inode[k] = String((await stat(`/run/netns/${where[k]}`)).ino);
    inode.b = String(parseNsLink(await readlink(`/proc/${pidB}/ns/net`)));
    assert.equal(new Set(Object.values(inode)).size, 5, 'five distinct namespaces');
  });

  after(async () => {
    for (const l of Object.values(labs)) await l.stop().catch(() => undefined);
    unshared?.kill();
    if (unshared !== undefined && unshared.exitCode === null) await new Promise((r) => unshared.once('exit', r));
    await removePodCgroup(cgroup);
    for (const n of [HOST, A, C, D]) await deleteNetns(n);
  });

  const daemon = (args: string[]) =>
    startDaemon(['--poll.interval', '1s', '--log.level', 'debug', ...args], { netns: HOST, get: (port, path) => labs.host!.get(port, path) });

  it('--netns=all: each namespace its exact FIN-WAIT-1 count and Send-Q, the host as --netns=own shows it, identity labels', async () => {
    const own = await daemon(['--source', 'netlink']);
    const all = await daemon(['--source', 'netlink', '--netns', 'all']);
    try {
      await Promise.all([waitForPoll(own), waitForPoll(all)]);
      await Promise.all([waitForPoll(own), waitForPoll(all)]);
      const [o, s] = [await metrics(own), await metrics(all)];
      for (const k of ['host', 'a', 'b', 'c', 'd'] as const) {
        const f = fw1(s, inode[k]!);
        assert.equal(f.sockets, N[k], `${k}: FIN-WAIT-1 sockets`);
        assert.equal(f.orphans, N[k], `${k}: orphans`);
        assertSendQ(f.sendq, figs[k]!, k);
      }
      // The host namespace's figures are what --netns=own shows, under its inode.
      assert.equal(o.get('tcpstate_sockets{state="fin_wait1",family="ipv4"}'), N.host);
      for (const name of ['tcpstate_sockets', 'tcpstate_send_queue_bytes', 'tcpstate_orphan_sockets', 'tcpstate_orphan_send_queue_bytes']) {
        assert.equal(s.get(`${name}{state="fin_wait1",family="ipv4",netns="${inode.host}"}`), o.get(`${name}{state="fin_wait1",family="ipv4"}`), name);
      }
      assert.ok(![...o.keys()].some((k) => k.includes('netns')), '--netns=own: no netns label, no netns family');
      // Identity.
      const info = (netns: string) => [...s.keys()].filter((k) => k.startsWith(`tcpstate_netns_info{netns="${netns}",`));
      assert.deepEqual(info(inode.a!), [`tcpstate_netns_info{netns="${inode.a}",name="${A}",pid="${labs.a!.pid}",comm="python3",container_id="",pod_uid=""}`]);
      // The lowest pid in it (pids wrap: the lab's python may be lower than sleep's).
      const pidInB = Math.min(pidB, labs.b!.pid);
      assert.deepEqual(info(inode.b!), [
        `tcpstate_netns_info{netns="${inode.b}",name="",pid="${pidInB}",comm="${pidInB === pidB ? 'sleep' : 'python3'}",container_id="${CONTAINER_ID}",pod_uid="${POD_UID}"}`,
      ]);
      assert.equal(info(inode.host!).length, 1);
      // The host's namespace is read by the exporter itself (ip netns exec execs it: same pid).
      // Its comm is what the kernel says of it: "node" on Node.js 20, "MainThread" on 24 (which names its main thread).
      const comm = readFileSync(`/proc/${all.child.pid}/comm`, 'utf8').trim();
      assert.deepEqual(info(inode.host!), [`tcpstate_netns_info{netns="${inode.host}",name="${HOST}",pid="${all.child.pid}",comm="${comm}",container_id="",pod_uid=""}`]);
      assert.equal(s.get('tcpstate_netns_unreadable_namespaces{reason="permission"}'), 0);
      assert.equal(s.get('tcpstate_netns_unreadable_namespaces{reason="error"}'), 0);
      assert.deepEqual(errors(all), []);
    } finally {
      assert.equal(await own.stop(), 0);
      assert.equal(await all.stop(), 0);
    }
  });

  it('--netns=A,B,C,D --netns.max=2: the two holding most FIN-WAIT-1 bytes keep their series, the rest sum into "other"; D deleted mid-run disappears cleanly', async () => {
    const d = await daemon(['--source', 'netlink', '--netns', `${A},${inode.b},${C},${D}`, '--netns.max', '2']);
    try {
      await waitForPoll(d);
      await waitForPoll(d);
      const s = await metrics(d);
      // Kept: the two whose orphans hold the most bytes, as the labs measured them (B: 9, A: 5).
      const expected = (['a', 'b', 'c', 'd'] as const)
        .map((k) => ({ k, bytes: figs[k]!.fin_wait1_send_queue_without_fin }))
        .sort((x, y) => y.bytes - x.bytes)
        .slice(0, 2)
        .map((x) => x.k)
        .sort();
      assert.deepEqual(expected, ['a', 'b'], 'the labs queue about the same per socket');
      const kept = (['a', 'b', 'c', 'd'] as const).filter((k) => fw1(s, inode[k]!).sockets !== undefined);
      assert.deepEqual(kept, expected);
      const other = fw1(s, 'other');
      assert.equal(other.sockets, N.c + N.d);
      assert.equal(other.orphans, N.c + N.d);
      assert.ok(other.sendq! >= figs.c!.fin_wait1_send_queue_without_fin + figs.d!.fin_wait1_send_queue_without_fin && other.sendq! <= figs.c!.fin_wait1_send_queue_without_fin + figs.d!.fin_wait1_send_queue_without_fin + N.c + N.d);
      assert.equal(fw1(s, inode.host!).sockets, N.host, 'the host keeps its own whatever --netns.max');
      assert.equal(s.get('tcpstate_netns_folded_namespaces'), 2);
      assert.equal(s.get('tcpstate_netns_selected_namespaces'), 5);

      // D goes away: its lab stops (its orphans stay in the kernel, unreachable) and its name is deleted.
      await labs.d!.stop();
      delete labs.d;
      await deleteNetns(D);
      await waitForPoll(d);
      await waitForPoll(d);
      const t = await metrics(d);
      assert.ok(![...t.keys()].some((k) => k.includes(`netns="${inode.d}"`)), 'no series of D');
      assert.equal(fw1(t, 'other').sockets, N.c, 'other = C alone now');
      assert.equal(t.get('tcpstate_netns_selected_namespaces'), 4);
      assert.equal(t.get('tcpstate_netns_unreadable_namespaces{reason="error"}'), 0);
      assert.equal(t.get('tcpstate_netns_read_failures_total{reason="error"}'), 0);
      assert.equal(t.get('tcpstate_netns_read_failures_total{reason="permission"}'), 0);
      assert.deepEqual(errors(d), []);
      assert.match(d.logs(), new RegExp(`no network namespace matches ${D}`), 'the listed name that matches nothing any more is named');
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });

  it('the read paths give identical figures: setns netlink, ss -N NAME (and /proc/PID/net for B), /proc/PID/net', async () => {
    const list = ['--netns', `${A},${inode.b},${C}`];
    const ds = [await daemon(['--source', 'netlink', ...list]), await daemon(['--source', 'ss', ...list]), await daemon(['--source', 'proc', ...list])];
    try {
      for (const d of ds) await waitForPoll(d);
      for (const d of ds) await waitForPoll(d);
      const [nl, ss, proc] = await Promise.all(ds.map(metrics));
      for (const k of ['a', 'b', 'c'] as const) {
        const ref = steady(nl!, inode[k]!);
        assert.ok(ref.length > 20, `${k}: ${ref.length} series`);
        assert.deepEqual(steady(ss!, inode[k]!), ref, `${k}: ss vs netlink`);
        assert.deepEqual(steady(proc!, inode[k]!), ref, `${k}: proc vs netlink`);
        assert.equal(fw1(proc!, inode[k]!).sockets, N[k]);
      }
      for (const d of ds) assert.deepEqual(errors(d), []);
    } finally {
      for (const d of ds) assert.equal(await d.stop(), 0);
    }
  });

  it('report --netns: the namespaces summed, a row per namespace with its identity, the worst socket\'s namespace', async () => {
    const report = async (format: string) =>
      (await run('ip', ['netns', 'exec', HOST, process.execPath, BIN, 'report', '--source', 'netlink', '--netns', `${A},${inode.b}`, '--format', format], { cwd: ROOT })).stdout;
    const j = JSON.parse(await report('json')) as {
      states: Record<string, { sockets: number }>;
      netns: Array<{ netns: string; name: string; podUid: string; finWait1Sockets: number; finWait1SendQueueBytes: number }>;
      finWait1: { worstSockets: Array<{ netns?: string }> };
    };
    assert.equal(j.states.fin_wait1!.sockets, N.host + N.a + N.b, 'host + A + B');
    const row = (netns: string) => j.netns.find((r) => r.netns === netns)!;
    assert.equal(row(inode.a!).finWait1Sockets, N.a);
    assert.equal(row(inode.a!).name, A);
    assert.equal(row(inode.b!).finWait1Sockets, N.b);
    assert.equal(row(inode.b!).podUid, POD_UID);
    assert.equal(row(inode.host!).finWait1Sockets, N.host);
    assert.equal(j.netns[0]!.netns, inode.b, 'most FIN-WAIT-1 bytes first');
    assert.ok(j.finWait1.worstSockets.length > 0 && j.finWait1.worstSockets.every((w) => [inode.host, inode.a, inode.b].includes(w.netns)));
    const text = await report('text');
    assert.match(text, new RegExp(`${N.host + N.a + N.b} sockets hold`));
    assert.match(text, /By network namespace/);
    assert.match(text, new RegExp(`${inode.b}\\s+\\d+\\s+${N.b}\\s.*pod ${POD_UID}`));
  });

  it('a namespace deleted between discovery and its round (mid-poll): reason vanished, one debug line, no warning or error, absent from the snapshot', async () => {
    const GONE = tag('g');
    await createNetns(GONE);
    const inodeGone = String((await stat(`/run/netns/${GONE}`)).ino);
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const l of chunk.toString().split('\n').filter((x) => x !== '')) lines.push(JSON.parse(l) as { level: number; msg: string });
          done();
        },
      }),
    );
    const sources = liveSources({ mode: 'netlink', netlink: { path: `${ROOT}build/tcpstate-diag`, timeoutMs: 10_000 }, ss: { path: 'ss', timeoutMs: 10_000 }, procfs: '/proc' });
    const netns = new NetnsPoller({
      selection: { mode: 'list', names: new Set([A, GONE]), inodes: new Set() },
      max: 20,
      procfs: '/proc',
      source: 'netlink',
      netlink: sources.netlink!,
      ss: { path: 'ss', timeoutMs: 10_000 },
      logger,
      // Discovery sees it; then it is deleted before its round.
      discover: async () => {
        const d = await discoverNamespaces({ procfs: '/proc', runNetns: '/run/netns' });
        await deleteNetns(GONE);
        return d;
      },
    });
    const poller = new Poller({ sources, intervalMs: 86_400_000, logger, netns });
    try {
      await poller.poll();
      const snap = poller.snapshot()!;
      assert.equal(snap.netns!.unreadable.vanished, 1);
      assert.equal(snap.netns!.unreadable.error + snap.netns!.unreadable.permission, 0);
      assert.ok(!snap.netns!.namespaces.some((n) => n.netns === inodeGone), 'not in the snapshot');
      assert.equal(snap.netns!.namespaces.find((n) => n.netns === inode.a)?.table.ipv4?.fin_wait1.sockets, N.a, 'the others are read');
      const vanished = lines.filter((l) => l.msg.includes(`network namespace ${inodeGone} vanished during the poll`));
      assert.equal(vanished.length, 1);
      assert.equal(vanished[0]!.level, 20, 'debug');
      assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.msg), [], 'no warning, no error');
    } finally {
      await poller.stop();
      await deleteNetns(GONE);
    }
  });
});
