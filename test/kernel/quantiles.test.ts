// Real kernel: the exact quantiles (issue 13 item 1). The lab builds FIN-WAIT-1 orphans whose
// Send-Q differs from socket to socket (a send buffer size each) in a network namespace of our
// own, and knows each orphan's Send-Q from its own writes and its peer's SIOCINQ, never from ss.
// The summary tcpstate_socket_send_queue_quantile_bytes must equal the nearest-rank order
// statistics of those values, from every source. Needs root (ip netns).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QUANTILES, nearestRank } from '../../src/aggregate/order.ts';
import { sample, startDaemon, waitForPoll } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns, steadyKey } from '../lab/lab.ts';

const NETNS = `tcpstate-quantiles-${process.pid}`;
// 101 orphans, each with a send buffer of its own: p50, p90, p99 and the maximum are the ranks 51, 91,
// 100 and 101, four different sockets with four different Send-Q sizes.
const N = 101;

describe('real kernel: exact Send-Q quantiles against the lab\'s per-socket truth', { timeout: 180_000 }, () => {
  let lab: Lab;

  before(async () => {
    await createNetns(NETNS);
    lab = await Lab.start({ finWait1: N, established: 0, timeWait: 0, sndbuf: 4096, sndbufSteps: N, netns: NETNS });
  });
  after(async () => {
    await lab?.stop();
    await deleteNetns(NETNS);
  });

  for (const source of ['netlink', 'ss', 'proc'] as const) {
    it(`--source ${source}: quantile 0, 0.5, 0.9, 0.99, 1 are the lab's order statistics`, async () => {
      const d = await startDaemon(['--source', source, '--poll.interval', '1s', '--log.level', 'debug'], { netns: NETNS, get: (port, path) => lab.get(port, path) });
      try {
        let got: number[] = [];
        let want: number[] = [];
        for (let i = 0; i < 20; i++) {
          const m0 = await lab.measure();
          await waitForPoll(d);
          const body = (await d.get('/metrics')).body;
          const m1 = await lab.measure();
          if (steadyKey(m0) !== steadyKey(m1)) continue; // something moved during the scrape
          const truth = m1.fin_wait1_sockets.map((s) => s.send_queue).sort((a, b) => a - b);
          assert.equal(truth.length, N);
          want = QUANTILES.map((q) => truth[nearestRank(q, N) - 1]!);
          got = QUANTILES.map((q) => sample(body, `tcpstate_socket_send_queue_quantile_bytes{state="fin_wait1",quantile="${q}"}`)!);
          assert.equal(sample(body, 'tcpstate_socket_send_queue_bytes_count{state="fin_wait1"}'), N);
          assert.equal(sample(body, 'tcpstate_socket_send_queue_bytes_sum{state="fin_wait1"}'), truth.reduce((a, b) => a + b, 0));
          break;
        }
        console.log(`# ${source}: lab order statistics ${want.join(' ')}; exported ${got.join(' ')}`);
        // The lab's buffers differ, so do the quantiles: the comparison can tell them apart.
        assert.equal(new Set(want).size, 5, `Send-Q sizes differ: ${want.join(', ')}`);
        assert.deepEqual(got, want);
      } finally {
        assert.equal(await d.stop(), 0);
      }
    });
  }
});
