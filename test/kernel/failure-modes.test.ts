// Real kernel: the lab's other stuck-state failure modes — a CLOSE-WAIT leak, orphaned FIN-WAIT-2
// and LAST-ACK sockets, a SYN-RECV flood and a listen-queue overflow — each built in a network
// namespace of our own, and the real daemon, run in that namespace, must show exactly what the lab
// measured from the sockets themselves (SIOCINQ, TCP_INFO, its own writes), for every source.
// Needs root (ip netns, iptables inside the namespace).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TCP_STATES } from '../../src/model.ts';
import { startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { expectations } from '../lab/expect.ts';
import { Lab, createNetns, deleteNetns, steadyKey, type LabFigures } from '../lab/lab.ts';

const run = promisify(execFile);

const CLOSE_WAIT = 6;
const FIN_WAIT2 = 5;
const LAST_ACK = 4;
const SYN_RECV = 7;
const OVERFLOW = 9;
const BACKLOG = 3;

/** Σ of every sample of `name` whose labels include all of `labels` (robust to extra labels such as family). */
export function total(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** A scrape taken between two identical lab measurements, right after a poll. */
async function observe(d: Daemon, lab: Lab): Promise<{ body: string; x: LabFigures; before: LabFigures }> {
  let last: { body: string; x: LabFigures; before: LabFigures } | undefined;
  for (let i = 0; i < 20; i++) {
    const before = await lab.measure();
    await waitForPoll(d);
    const body = (await d.get('/metrics')).body;
    const x = await lab.measure();
    last = { body, x, before };
    const same = steadyKey(before) === steadyKey(x);
    if (same) return last;
  }
  return last!;
}

describe('real kernel: the other stuck-state failure modes', { timeout: 240_000 }, () => {
  const namespaces: string[] = [];
  after(async () => {
    for (const ns of namespaces) await deleteNetns(ns);
  });

  for (const source of ['netlink', 'ss', 'proc'] as const) {
    it(`--source ${source}: CLOSE-WAIT leak, orphaned FIN-WAIT-2 and LAST-ACK, SYN-RECV, listen overflow match the lab`, async () => {
      const netns = `tcpstate-fm-${source}-${process.pid}`;
      namespaces.push(netns);
      await createNetns(netns);
      const lab = await Lab.start({
        finWait1: 0,
        established: 0,
        timeWait: 0,
        closeWait: CLOSE_WAIT,
        finWait2: FIN_WAIT2,
        lastAck: LAST_ACK,
        synRecv: SYN_RECV,
        listenOverflow: OVERFLOW,
        listenBacklog: BACKLOG,
        netns,
      });
      // The daemon starts inside try: when it cannot start (dist/ stale, a crash in its first poll),
      // the lab's processes must still be stopped, or they keep this test file running forever.
      let d: Daemon | undefined;
      try {
        d = await startDaemon(['--source', source, '--poll.interval', '1s', '--log.level', 'debug'], {
          netns,
          get: (port, path) => lab.get(port, path),
        });
        const { body, x, before } = await observe(d, lab);
        const v = (name: string, labels: Record<string, string> = {}) => total(body, name, labels);
        const s = x.scenarios;
        assert.ok(s.close_wait && s.fin_wait2 && s.last_ack && s.syn_recv && s.listen_overflow, 'every scenario built');

        // The lab's own truth first: it built what it says.
        assert.equal(s.close_wait.sockets.filter((k) => k.state === 'close_wait').length, CLOSE_WAIT);
        assert.deepEqual(s.close_wait.sockets.map((k) => k.unread), s.close_wait.sockets.map((k) => k.sent));
        assert.equal(s.fin_wait2.orphans, FIN_WAIT2, `FIN-WAIT-2 orphans still alive (age ${s.fin_wait2.age_seconds} s)`);
        assert.ok(s.fin_wait2.clients.every((c) => c === 'close_wait'));
        assert.ok(s.last_ack.sockets.every((k) => (k.send_queue ?? 0) > 1000), 'LAST-ACK orphans hold data');
        assert.ok(s.syn_recv.clients.every((c) => c === 'syn_sent'));
        assert.equal(s.listen_overflow.backlog, BACKLOG);
        assert.equal(s.listen_overflow.accept_queue, BACKLOG + 1, 'the accept queue is full at backlog + 1');
        assert.equal(s.listen_overflow.clients.filter((c) => c === 'established').length, BACKLOG + 1);
        assert.equal(s.listen_overflow.clients.filter((c) => c === 'syn_sent').length, OVERFLOW - BACKLOG - 1);
        assert.ok((s.listen_overflow.counters_since_start.ListenOverflows ?? 0) >= OVERFLOW - BACKLOG - 1, 'ListenOverflows counted the dropped SYNs');

        // Every state's count, exactly (LISTEN: the lab's listeners and the daemon's own).
        assert.ok(body.split('\n').filter((l) => l.startsWith('tcpstate_source_up{')).every((l) => l.endsWith(' 1')), 'every source up');
        for (const st of TCP_STATES) {
          const want = (x.states[st] ?? 0) + (st === 'listen' ? 1 : 0);
          assert.equal(v('tcpstate_sockets', { state: st }) ?? 0, want, `tcpstate_sockets{state="${st}"}`);
        }
        // CLOSE-WAIT leak: on its listening port, owned (no orphan), Recv-Q = unread bytes + FIN.
        assert.equal(v('tcpstate_port_sockets', { port: String(s.close_wait.port), state: 'close_wait' }), CLOSE_WAIT);
        assert.equal(
          v('tcpstate_recv_queue_bytes', { state: 'close_wait' }),
          s.close_wait.sockets.reduce((a, k) => a + (k.recv_queue ?? 0), 0) + s.fin_wait2.clients_recv_queue,
        );
        assert.equal(v('tcpstate_orphan_sockets', { state: 'close_wait' }) ?? 0, 0);
        // Orphaned FIN-WAIT-2: only the server ends are orphans; the half-closed clients are owned.
        assert.equal(v('tcpstate_orphan_sockets', { state: 'fin_wait2' }), FIN_WAIT2);
        assert.equal(v('tcpstate_port_sockets', { port: String(s.fin_wait2.port), state: 'fin_wait2' }), FIN_WAIT2);
        // Orphaned LAST-ACK: their Send-Q to the byte (the lab's writes minus what the peers hold, + FIN).
        assert.equal(v('tcpstate_orphan_sockets', { state: 'last_ack' }), LAST_ACK);
        assert.equal(v('tcpstate_orphan_send_queue_bytes', { state: 'last_ack' }), s.last_ack.sockets.reduce((a, k) => a + (k.send_queue ?? 0), 0));
        assert.equal(v('tcpstate_timer_sockets', { state: 'last_ack', timer: 'persist' }), LAST_ACK);
        // SYN-RECV flood on its listening port; the clients wait in SYN-SENT.
        assert.equal(v('tcpstate_port_sockets', { port: String(s.syn_recv.port), state: 'syn_recv' }), SYN_RECV);
        // Accept queues per listening port: the full listener holds backlog + 1, as TCP_INFO on it
        // says; ss and netlink show the backlog, /proc does not (absent, not 0).
        const lport = { port: String(s.listen_overflow.port) };
        assert.equal(v('tcpstate_listen_queue_sockets', lport), s.listen_overflow.accept_queue);
        assert.equal(v('tcpstate_listen_backlog_sockets', lport), source === 'proc' ? undefined : s.listen_overflow.backlog);
        assert.equal(v('tcpstate_listen_full_listeners', lport), source === 'proc' ? undefined : 1);
        for (const other of [s.close_wait.port, s.fin_wait2.port, s.last_ack.port, s.syn_recv.port]) {
          assert.equal(v('tcpstate_listen_queue_sockets', { port: String(other) }), 0, `port ${other}`);
          if (source !== 'proc') assert.equal(v('tcpstate_listen_full_listeners', { port: String(other) }), 0, `port ${other}`);
        }
        // Listen overflows: the namespace's TcpExt counters, read by the lab just before the poll
        // and just after the scrape (the waiting clients' SYN retransmissions keep adding to them).
        for (const [metric, counter] of [['tcpstate_listen_overflows_total', 'ListenOverflows'], ['tcpstate_listen_drops_total', 'ListenDrops']] as const) {
          const got = v(metric)!;
          const lo = before.scenarios.listen_overflow!.counters[counter]!;
          const hi = s.listen_overflow.counters[counter]!;
          assert.ok(got >= lo && got <= hi && got >= OVERFLOW - BACKLOG - 1, `${metric} ${got} not within the lab's [${lo}, ${hi}]`);
        }
      } finally {
        const code = d === undefined ? 0 : await d.stop();
        await lab.stop();
        await deleteNetns(netns);
        assert.equal(code, 0, 'daemon exits 0 on SIGTERM');
      }
    });
  }
});

describe('real kernel: the lab\'s check-by-hand commands list exactly its sockets', { timeout: 60_000 }, () => {
  it('every printed ss command, run in the lab\'s namespace, lists the sockets the lab says', async () => {
    const netns = `tcpstate-fmcheck-${process.pid}`;
    await createNetns(netns);
    const lab = await Lab.start({ finWait1: 4, established: 2, timeWait: 2, closeWait: 3, finWait2: 2, lastAck: 2, synRecv: 3, listenOverflow: 6, listenBacklog: 2, netns });
    try {
      const x = await lab.measure();
      const text = expectations(x, lab.ports, netns);
      const commands = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(`ip netns exec ${netns} ss `));
      const want = [4, 3, 2, 2, 3, 1]; // FIN-WAIT-1, CLOSE-WAIT, FIN-WAIT-2, LAST-ACK, SYN-RECV orphans/sockets; the listener
      assert.equal(commands.length, want.length, text);
      for (const [i, cmd] of commands.entries()) {
        const { stdout } = await run('sh', ['-c', cmd.replace(/\s+#.*$/, '')]);
        const rows = stdout.split('\n').slice(1).filter((l) => l.trim() !== '');
        assert.equal(rows.length, want[i], `${cmd}\n${stdout}`);
      }
      // The listener's row: Recv-Q = the full accept queue (backlog + 1), Send-Q = the backlog.
      const { stdout } = await run('sh', ['-c', commands[5]!.replace(/\s+#.*$/, '')]);
      assert.match(stdout.split('\n')[1]!, /^LISTEN\s+3\s+2\s/);
    } finally {
      await lab.stop();
      await deleteNetns(netns);
    }
  });
});
