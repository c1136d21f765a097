// Real kernel: the lab builds FIN-WAIT-1 orphans behind zero-window peers, ESTABLISHED pairs and
// TIME-WAIT sockets in a network namespace of our own, and the real daemon, run in the same
// namespace, must report exactly those numbers from both sources. Needs root (ip netns).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TCP_STATES } from '../../src/model.ts';
import { sample, startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns, steadyKey, type LabFigures } from '../lab/lab.ts';

const NETNS = `tcpstate-test-${process.pid}`;
const N = 40; // orphaned FIN-WAIT-1
const M = 15; // established pairs
const K = 12; // TIME-WAIT

interface Observed {
  body: string;
  lab: LabFigures;
}

/**
 * Scrapes right after a poll completes (the scrape's own connection, closed with an RST, exists
 * only between two polls), and until the scrape lies between two identical lab measurements.
 */
async function observe(d: Daemon, lab: Lab): Promise<Observed> {
  let last: Observed | undefined;
  for (let i = 0; i < 20; i++) {
    const before = await lab.measure();
    await waitForPoll(d);
    const body = (await d.get('/metrics')).body;
    const afterM = await lab.measure();
    last = { body, lab: afterM };
    const fw1 = sample(body, 'tcpstate_timer_sockets{state="fin_wait1",timer="persist",family="ipv4"}');
    if (steadyKey(before) === steadyKey(afterM) && fw1 === N) return last;
  }
  return last!;
}

function socketFigures(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => /^tcpstate_(sockets|send_queue_bytes|recv_queue_bytes|orphan_sockets|orphan_send_queue_bytes)\{/.test(l));
}

describe('real kernel: lab in a network namespace', { timeout: 180_000 }, () => {
  let lab: Lab;
  const seen: Record<string, Observed> = {};

  before(async () => {
    await createNetns(NETNS);
    lab = await Lab.start({ finWait1: N, established: M, timeWait: K, netns: NETNS });
  });
  after(async () => {
    await lab?.stop();
    await deleteNetns(NETNS);
  });

  for (const source of ['netlink', 'ss', 'proc'] as const) {
    it(`--source ${source}: exact counts, Send-Q within one byte per socket, persist timers`, async () => {
      const d = await startDaemon(['--source', source, '--poll.interval', '1s', '--log.level', 'debug'], {
        netns: NETNS,
        get: (port, path) => lab.get(port, path),
      });
      try {
        const o = await observe(d, lab);
        seen[source] = o;
        const { body, lab: x } = o;
        const v = (series: string) => sample(body, series);
        const srcName = source === 'proc' ? 'proc_tcp' : source;
        assert.equal(v(`tcpstate_source_up{source="${srcName}"}`), 1);

        // LISTEN: the lab's three listeners and the daemon's own.
        assert.ok(x.time_wait !== null, `TIME-WAIT sockets at their 60 s expiry (lab age ${x.age_seconds} s)`);
        const expected: Record<string, number> = { fin_wait1: x.fin_wait1, established: x.established, time_wait: x.time_wait, listen: x.listen + 1 };
        for (const st of TCP_STATES) {
          assert.equal(v(`tcpstate_sockets{state="${st}",family="ipv4"}`), expected[st] ?? 0, `sockets ${st}`);
          assert.equal(v(`tcpstate_sockets{state="${st}",family="ipv6"}`), 0, `ipv6 sockets ${st}`);
        }
        // Orphans hold exactly what their peers did not receive, +1 per socket for the queued FIN.
        const sendq = v('tcpstate_send_queue_bytes{state="fin_wait1",family="ipv4"}')!;
        const base = x.fin_wait1_send_queue_without_fin;
        assert.ok(base > N * 1000, `the lab queued real data (${base} bytes)`);
        assert.ok(sendq >= base && sendq <= base + N, `fin_wait1 Send-Q ${sendq} not within [${base}, ${base + N}]`);
        assert.equal(v('tcpstate_orphan_sockets{state="fin_wait1",family="ipv4"}'), N);
        assert.equal(v('tcpstate_orphan_send_queue_bytes{state="fin_wait1",family="ipv4"}'), sendq);
        assert.equal(v('tcpstate_timer_sockets{state="fin_wait1",timer="persist",family="ipv4"}'), N);
        const persistMax = v('tcpstate_persist_timer_max_seconds{state="fin_wait1",family="ipv4"}')!;
        // The lab closed every orphan at once, so their persist timers fire together: read at that
        // instant, every one is due and shows 0 (seen in CI, 1 run in ~10). Never above the 120 s cap.
        assert.ok(persistMax >= 0 && persistMax <= 120, `persist max ${persistMax}`);
        // The zero-window peers are ESTABLISHED and hold the rest of the bytes, unread.
        assert.equal(v('tcpstate_recv_queue_bytes{state="established",family="ipv4"}'), x.peer_recv_queue);
        assert.equal(v('tcpstate_send_queue_bytes{state="established",family="ipv4"}'), 0);
        assert.equal(v('tcpstate_orphan_sockets{state="fin_wait2",family="ipv4"}'), 0);
        assert.equal(v('tcpstate_timer_sockets{state="time_wait",timer="timewait",family="ipv4"}'), x.time_wait, 'every TIME-WAIT socket the lab measured has its timer');
      } finally {
        assert.equal(await d.stop(), 0, 'daemon exits 0 on SIGTERM');
      }
    });
  }

  for (const source of ['netlink', 'ss', 'proc'] as const) {
    it(`--source ${source}: ages grow, persist buckets, the listening port, /sockets`, async () => {
      const d = await startDaemon(['--source', source, '--poll.interval', '1s', '--stuck-after', '2s', '--log.level', 'debug', '--web.sockets'], {
        netns: NETNS,
        get: (port, path) => lab.get(port, path),
      });
      try {
        // Metrics and /sockets of one and the same poll.
        const both = async () => {
          for (;;) {
            await waitForPoll(d);
            const metrics = (await d.get('/metrics')).body;
            const sockets = JSON.parse((await d.get('/sockets?state=fin_wait1&limit=1000')).body) as {
              takenAt: string;
              sockets: Array<{ sendQueue: number; timerSeconds: number; port: string; local: string; backoff: number | null; ageSeconds: number }>;
            };
            if (Date.parse(sockets.takenAt) / 1000 === sample(metrics, 'tcpstate_last_poll_timestamp_seconds')) return { metrics, sockets };
          }
        };
        const first = await both();
        await new Promise((r) => setTimeout(r, 2500));
        const later = await both();
        const v = (series: string) => sample(later.metrics, series);
        const ageSum = (m: string) => sample(m, 'tcpstate_state_age_seconds_sum{state="fin_wait1"}')!;
        assert.equal(sample(later.metrics, 'tcpstate_state_age_seconds_count{state="fin_wait1"}'), N);
        assert.ok(ageSum(later.metrics) >= ageSum(first.metrics) + N * 2, `ages grew: ${ageSum(first.metrics)} → ${ageSum(later.metrics)}`);
        assert.equal(v('tcpstate_stuck_sockets{state="fin_wait1"}'), N);
        // The orphans sit on the server side of the lab's listening port.
        assert.equal(v(`tcpstate_port_sockets{port="${lab.ports.fin_wait1}",state="fin_wait1"}`), N);
        assert.equal(v(`tcpstate_port_send_queue_bytes{port="${lab.ports.fin_wait1}",state="fin_wait1"}`), v('tcpstate_send_queue_bytes{state="fin_wait1",family="ipv4"}'));
        // /sockets lists them all with their own Send-Q; the histogram buckets match their timers.
        const list = later.sockets.sockets;
        assert.equal(list.length, N);
        assert.equal(list.reduce((a, s) => a + s.sendQueue, 0), v('tcpstate_send_queue_bytes{state="fin_wait1",family="ipv4"}'));
        assert.ok(list.every((s) => s.port === String(lab.ports.fin_wait1) && s.local.endsWith(`:${lab.ports.fin_wait1}`) && s.sendQueue > 1000));
        assert.ok(list.every((s) => s.ageSeconds >= 2));
        for (const le of [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 120]) {
          assert.equal(
            v(`tcpstate_persist_timer_seconds_bucket{state="fin_wait1",le="${le}"}`),
            list.filter((s) => s.timerSeconds <= le).length,
            `persist bucket le=${le}`,
          );
        }
        // Backoff and write memory need tcp_info and skmeminfo (ss -i -m, netlink): absent from /proc.
        if (source === 'proc') {
          assert.equal(v('tcpstate_persist_backoff_count{state="fin_wait1"}'), undefined);
          assert.equal(v('tcpstate_socket_write_memory_bytes_count{state="fin_wait1"}'), undefined);
        } else {
          assert.equal(v('tcpstate_persist_backoff_count{state="fin_wait1"}'), N);
          assert.ok(list.every((s) => s.backoff !== null && s.backoff >= 1));
          assert.equal(v('tcpstate_socket_write_memory_bytes_count{state="fin_wait1"}'), N);
          // Memory pinned: at least the unacknowledged bytes (skb overhead comes on top).
          assert.ok(v('tcpstate_socket_write_memory_bytes_sum{state="fin_wait1"}')! >= v('tcpstate_send_queue_bytes{state="fin_wait1",family="ipv4"}')! - N);
        }
      } finally {
        await d.stop();
      }
    });
  }

  it('netlink, ss and proc give the same numbers on the same sockets', () => {
    assert.ok(seen.netlink && seen.ss && seen.proc, 'all three sources observed');
    for (const other of [seen.ss, seen.proc]) {
      assert.equal(seen.netlink.lab.peer_recv_queue, other.lab.peer_recv_queue, 'lab unchanged between the scrapes');
      // The lab's TIME-WAIT sockets expire 60 s after it starts, possibly between two sources' runs
      // on a slow machine: compare them only when the lab measured the same number for both.
      const sameTimeWait: boolean = seen.netlink.lab.time_wait === other.lab.time_wait;
      const figures = (body: string): string[] => socketFigures(body).filter((l) => sameTimeWait || !l.includes('state="time_wait"'));
      assert.deepEqual(figures(seen.netlink.body), figures(other.body));
    }
  });
});
