// Real kernel: FIN-WAIT-1 orphans of two kinds side by side in a network namespace of our own —
// the lab's, probing zero-window peers on the persist timer, and orphans whose data and FIN are
// never acknowledged (an iptables rule in the namespace drops what they send), retransmitting.
// Both kinds report a backoff (icsk_backoff is shared by the two timers); only the first is a
// zero-window probe backoff, and only it may reach tcpstate_persist_backoff. Needs root.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { sample, startDaemon, waitForPoll } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns, killPorts } from '../lab/lab.ts';

const NETNS = `tcpstate-backoff-${process.pid}`;
const N = 8; // persist-timer orphans (the lab)
const R = 6; // retransmitting orphans
const R_PORT = 17050;

// Runs in the namespace: R connections to a local listener, then a rule dropping every packet the
// server side sends (source port R_PORT) before it writes and closes: its data and FIN are never
// acknowledged. The clients stay open (a close would reset the orphans) until stdin ends.
const RETRANSMIT_LAB = `
import socket, subprocess, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(n + 8)
pairs = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port)); s, _ = l.accept(); pairs.append((c, s))
subprocess.run(["iptables", "-A", "INPUT", "-p", "tcp", "--sport", str(port), "-j", "DROP"], check=True)
for _, s in pairs:
    s.send(b"x" * 1000); s.close()
print("ready", flush=True)
sys.stdin.read()
`;

interface Listed {
  takenAt: string;
  sockets: Array<{ timer: string | null; backoff: number | null; port: string }>;
}

describe('real kernel: retransmitting and persist-timer FIN-WAIT-1 orphans', { timeout: 120_000 }, () => {
  let lab: Lab;
  let rlab: ChildProcessWithoutNullStreams;

  before(async () => {
    await createNetns(NETNS);
    lab = await Lab.start({ finWait1: N, established: 1, timeWait: 0, netns: NETNS });
    rlab = spawn('ip', ['netns', 'exec', NETNS, 'python3', '-c', RETRANSMIT_LAB, String(R_PORT), String(R)]);
    let err = '';
    rlab.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const [line] = (await Promise.race([once(rlab.stdout, 'data'), once(rlab, 'exit').then(() => [`exited: ${err}`])])) as [Buffer | string];
    assert.match(String(line), /^ready/, err);
  });
  after(async () => {
    rlab?.stdin.end();
    await lab?.stop();
    await killPorts([R_PORT], NETNS);
    await deleteNetns(NETNS);
  });

  for (const source of ['netlink', 'ss'] as const) {
    it(`--source ${source}: tcpstate_persist_backoff counts the ${N} persist-timer orphans, not the ${R} retransmitting ones`, async () => {
      const d = await startDaemon(['--source', source, '--poll.interval', '1s', '--log.level', 'debug', '--web.sockets'], {
        netns: NETNS,
        get: (port, path) => lab.get(port, path),
      });
      try {
        // Wait until every retransmitting orphan has backed off at least once (RTO 200 ms, doubling).
        let body = '';
        let listed: Listed = { takenAt: '', sockets: [] };
        for (let i = 0; i < 30; i++) {
          await waitForPoll(d);
          body = (await d.get('/metrics')).body;
          listed = JSON.parse((await d.get('/sockets?state=fin_wait1&limit=1000')).body) as Listed;
          // Metrics and /sockets of one and the same poll.
          if (Date.parse(listed.takenAt) / 1000 !== sample(body, 'tcpstate_last_poll_timestamp_seconds')) continue;
          const retransmitting = listed.sockets.filter((s) => s.timer === 'retransmit');
          if (retransmitting.length === R && retransmitting.every((s) => (s.backoff ?? 0) >= 1)) break;
        }
        const retransmitting = listed.sockets.filter((s) => s.timer === 'retransmit');
        const probing = listed.sockets.filter((s) => s.timer === 'persist');
        assert.equal(retransmitting.length, R, JSON.stringify(listed.sockets));
        assert.ok(retransmitting.every((s) => (s.backoff ?? 0) >= 1), 'the retransmitting orphans report a backoff too');
        assert.equal(probing.length, N);
        assert.equal(sample(body, 'tcpstate_persist_backoff_count{state="fin_wait1"}'), N);
        assert.equal(sample(body, 'tcpstate_persist_backoff_sum{state="fin_wait1"}'), probing.reduce((a, s) => a + (s.backoff ?? 0), 0));
        assert.equal(sample(body, 'tcpstate_timer_sockets{state="fin_wait1",timer="retransmit",family="ipv4"}'), R);
        assert.equal(sample(body, 'tcpstate_timer_sockets{state="fin_wait1",timer="persist",family="ipv4"}'), N);
      } finally {
        assert.equal(await d.stop(), 0);
      }
    });
  }
});
