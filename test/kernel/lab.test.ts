// Real kernel: the lab builds FIN-WAIT-1 orphans behind zero-window peers, ESTABLISHED pairs and
// TIME-WAIT sockets in a network namespace of our own, and the real daemon, run in the same
// namespace, must report exactly those numbers from both sources. Needs root (ip netns).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TCP_STATES } from '../../src/model.ts';
import { sample, startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns, type LabFigures } from '../lab/lab.ts';

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
    const fw1 = sample(body, 'tcpstate_timer_sockets{state="fin_wait1",timer="persist"}');
    if (JSON.stringify(before) === JSON.stringify(afterM) && fw1 === N) return last;
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

  for (const source of ['ss', 'proc'] as const) {
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
        const srcName = source === 'ss' ? 'ss' : 'proc_tcp';
        assert.equal(v(`tcpstate_source_up{source="${srcName}"}`), 1);

        // LISTEN: the lab's three listeners and the daemon's own.
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
        assert.equal(v('tcpstate_orphan_sockets{state="fin_wait1"}'), N);
        assert.equal(v('tcpstate_orphan_send_queue_bytes{state="fin_wait1"}'), sendq);
        assert.equal(v('tcpstate_timer_sockets{state="fin_wait1",timer="persist"}'), N);
        const persistMax = v('tcpstate_persist_timer_max_seconds{state="fin_wait1"}')!;
        assert.ok(persistMax > 0 && persistMax <= 120, `persist max ${persistMax}`);
        // The zero-window peers are ESTABLISHED and hold the rest of the bytes, unread.
        assert.equal(v('tcpstate_recv_queue_bytes{state="established",family="ipv4"}'), x.peer_recv_queue);
        assert.equal(v('tcpstate_send_queue_bytes{state="established",family="ipv4"}'), 0);
        assert.equal(v('tcpstate_orphan_sockets{state="fin_wait2"}'), 0);
        assert.equal(v('tcpstate_timer_sockets{state="time_wait",timer="timewait"}'), K);
      } finally {
        assert.equal(await d.stop(), 0, 'daemon exits 0 on SIGTERM');
      }
    });
  }

  it('ss and proc give the same numbers on the same sockets', () => {
    assert.ok(seen.ss && seen.proc, 'both sources observed');
    assert.equal(seen.ss.lab.peer_recv_queue, seen.proc.lab.peer_recv_queue, 'lab unchanged between the two scrapes');
    assert.deepEqual(socketFigures(seen.ss.body), socketFigures(seen.proc.body));
  });
});
