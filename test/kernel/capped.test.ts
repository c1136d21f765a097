// Real kernel: "how many sockets are at the probe-backoff cap, per state" (issue 13), answered from
// the backoff level and RTO the kernel reports for each socket. Two namespaces of our own hold the
// same lab of FIN-WAIT-1 orphans behind zero-window peers:
// - "capped": net.ipv4.tcp_rto_max_ms=1000, so the probe interval max(RTO, 200 ms) × 2^backoff
//   reaches the cap after about 1.4 s (backoff 3 with loopback's ~208 ms RTO). tcp_orphan_retries
//   and tcp_retries2 are raised to 100 so a capped orphan is not aborted at its next expiry (with
//   the default 0 it would be: docs/kernel-and-ss.md#backoff) and lives ~100 s at the cap;
// - "default": the 120 s cap, which these young orphans are far from (backoff ≤ 8 for ~100 s).
// The truth is computed by this test from `ss -tin` (rto:, backoff:) read before and after the
// scrape; the exporter's tcpstate_persist_backoff_capped_sockets must equal it. Needs root.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sample, startDaemon, waitForPoll } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';

const run = promisify(execFile);
const N = 9;

interface Ns {
  name: string;
  capMs: number;
  sysctls: string[];
  lab?: Lab;
}

const SPACES: Ns[] = [
  { name: `tcpstate-capped-${process.pid}`, capMs: 1000, sysctls: ['net.ipv4.tcp_rto_max_ms=1000', 'net.ipv4.tcp_orphan_retries=100', 'net.ipv4.tcp_retries2=100'] },
  { name: `tcpstate-uncapped-${process.pid}`, capMs: 120_000, sysctls: [] },
];

/** Per FIN-WAIT-1 socket on the persist timer: [rto ms, backoff], as `ss -tino` prints them (omitted backoff = 0). */
async function kernelTruth(ns: string): Promise<Array<[number, number]>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'ss', '-HtinoO', 'state', 'fin-wait-1']);
  return stdout
    .split('\n')
    .filter((l) => l.includes('timer:(persist'))
    .map((l) => [Number(/ rto:([\d.]+)/.exec(l)?.[1] ?? 3000), Number(/ backoff:(\d+)/.exec(l)?.[1] ?? 0)]);
}

/** Sockets whose interval min(max(rto, 200 ms) << backoff, cap) is the cap. */
const atCap = (sockets: Array<[number, number]>, capMs: number) => sockets.filter(([rto, b]) => Math.max(rto, 200) * 2 ** b >= capMs).length;

describe('real kernel: sockets at the probe-backoff cap', { timeout: 180_000 }, () => {
  before(async () => {
    for (const ns of SPACES) {
      await createNetns(ns.name);
      if (ns.sysctls.length > 0) await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', ...ns.sysctls]);
      ns.lab = await Lab.start({ finWait1: N, established: 0, timeWait: 0, netns: ns.name });
    }
  });
  after(async () => {
    for (const ns of SPACES) {
      await ns.lab?.stop();
      await deleteNetns(ns.name);
    }
  });

  for (const ns of SPACES) {
    for (const source of ['netlink', 'ss'] as const) {
      it(`--source ${source}, cap ${ns.capMs} ms: tcpstate_persist_backoff_capped_sockets equals the sockets whose backoff and RTO reach the cap`, async () => {
        const lab = ns.lab!;
        const d = await startDaemon(['--source', source, '--poll.interval', '1s', '--log.level', 'debug'], { netns: ns.name, get: (port, path) => lab.get(port, path) });
        try {
          let want = -1;
          let got: number | undefined;
          let body = '';
          for (let i = 0; i < 30; i++) {
            const t0 = await kernelTruth(ns.name);
            await waitForPoll(d);
            body = (await d.get('/metrics')).body;
            const t1 = await kernelTruth(ns.name);
            const [w0, w1] = [atCap(t0, ns.capMs), atCap(t1, ns.capMs)];
            got = sample(body, 'tcpstate_persist_backoff_capped_sockets{state="fin_wait1"}');
            // Wait for every orphan to be on the persist timer and the truth to hold still around the scrape.
            if (t0.length === N && t1.length === N && w0 === w1 && (ns.capMs > 1000 || w1 === N)) {
              want = w1;
              console.log(`# ${ns.name} ${source}: kernel says ${want} of ${N} at the cap (rto/backoff ${t1.map(([r, b]) => `${r}/${b}`).join(' ')}); exported ${got}`);
              break;
            }
          }
          assert.equal(want, ns.capMs === 1000 ? N : 0, 'the lab reached the expected state');
          assert.equal(got, want);
          if (ns.capMs === 1000) assert.equal(sample(body, 'tcpstate_sysctl_tcp_rto_max_seconds'), 1);
          // Only the states whose tcp_info the source reads have a series.
          assert.equal(sample(body, 'tcpstate_persist_backoff_capped_sockets{state="established"}'), undefined);
        } finally {
          assert.equal(await d.stop(), 0);
        }
      });
    }
  }
});
