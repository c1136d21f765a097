// Real kernel, issue 13 items 2 and 3, in network namespaces of our own:
// - item 2: FIN-WAIT-1 orphans behind zero-window peers are tracked; then some peers read
//   everything (their orphans send the rest and the FIN: FIN-WAIT-2) and some orphans are killed
//   with ss -K. tcpstate_fin_wait1_exits_total and tcpstate_fin_wait1_lifetime_seconds must count
//   each in its bucket, from every source.
// - item 3: an exporter started over orphans 20+ s old reports ages of at least that (the kernel's
//   tcpi_last_data_sent at first sight), with the sources that read tcp_info; /proc has no such
//   figure and still starts at first sight. Needs root.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sample, startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';

const run = promisify(execFile);
const N = 12; // orphans
const D = 4; // drained: move on to FIN-WAIT-2
const K = 3; // killed with ss -K

const made: string[] = [];
async function labIn(tag: string): Promise<{ ns: string; lab: Lab }> {
  const ns = `tcpstate-life-${tag}-${process.pid}`;
  await createNetns(ns);
  made.push(ns);
  const lab = await Lab.start({ finWait1: N, established: 0, timeWait: 0, netns: ns });
  return { ns, lab };
}

async function polls(d: Daemon, n: number): Promise<string> {
  for (let i = 0; i < n; i++) await waitForPoll(d);
  return (await d.get('/metrics')).body;
}

const daemonArgs = (source: string) => ['--source', source, '--poll.interval', '1s', '--log.level', 'debug'];

describe('real kernel: FIN-WAIT-1 lifetimes and exits; ages across an exporter restart', { timeout: 300_000 }, () => {
  const labs: Lab[] = [];
  after(async () => {
    for (const lab of labs) await lab.stop();
    for (const ns of made) await deleteNetns(ns);
  });

  for (const source of ['netlink', 'ss', 'proc'] as const) {
    it(`--source ${source}: ${D} orphans whose peers read everything leave for FIN-WAIT-2, ${K} killed with ss -K vanish`, async () => {
      const { ns, lab } = await labIn(source);
      labs.push(lab);
      const d = await startDaemon(daemonArgs(source), { netns: ns, get: (port, path) => lab.get(port, path) });
      try {
        let body = await polls(d, 3);
        const v = (series: string) => sample(body, series);
        assert.equal(v('tcpstate_state_age_seconds_count{state="fin_wait1"}'), N, 'every orphan tracked');
        for (const to of ['fin_wait2', 'closing', 'time_wait', 'vanished']) assert.equal(v(`tcpstate_fin_wait1_exits_total{to="${to}"}`), 0, to);
        const oldestBefore = v('tcpstate_state_age_quantile_seconds{state="fin_wait1",quantile="1"}')!;
        const youngestBefore = v('tcpstate_state_age_quantile_seconds{state="fin_wait1",quantile="0"}')!;

        const sockets = (await lab.measure()).fin_wait1_sockets;
        const drained = await lab.drain(D);
        assert.equal(drained.eof, D, 'the drained peers received the FIN');
        for (const s of sockets.slice(D, D + K)) {
          await run('ip', ['netns', 'exec', ns, 'ss', '-K', '-tn', 'state', 'fin-wait-1', `( dport = :${s.remote_port} )`]);
        }
        const since = Date.now();
        body = await polls(d, 3);
        const seconds = (Date.now() - since) / 1000;
        console.log(
          `# ${source}: exits ${['fin_wait2', 'closing', 'time_wait', 'vanished'].map((to) => `${to}=${v(`tcpstate_fin_wait1_exits_total{to="${to}"}`)}`).join(' ')}; ` +
            `lifetime sum moved_on ${v('tcpstate_fin_wait1_lifetime_seconds_sum{ended="moved_on"}')} vanished ${v('tcpstate_fin_wait1_lifetime_seconds_sum{ended="vanished"}')}`,
        );
        assert.equal(v('tcpstate_fin_wait1_exits_total{to="fin_wait2"}'), D);
        assert.equal(v('tcpstate_fin_wait1_exits_total{to="vanished"}'), K);
        assert.equal(v('tcpstate_fin_wait1_exits_total{to="time_wait"}'), 0);
        assert.equal(v('tcpstate_fin_wait1_exits_total{to="closing"}'), 0);
        assert.equal(v('tcpstate_fin_wait1_lifetime_seconds_count{ended="moved_on"}'), D);
        assert.equal(v('tcpstate_fin_wait1_lifetime_seconds_count{ended="vanished"}'), K);
        assert.equal(v('tcpstate_fin_wait1_lifetime_seconds_bucket{ended="vanished",le="+Inf"}'), K);
        // Each lifetime runs to the last poll that saw the socket: no shorter than the youngest age
        // seen before the exits, no longer than the oldest plus the time since.
        for (const [ended, n] of [['moved_on', D], ['vanished', K]] as const) {
          const sum = v(`tcpstate_fin_wait1_lifetime_seconds_sum{ended="${ended}"}`)!;
          assert.ok(sum >= n * youngestBefore && sum <= n * (oldestBefore + seconds + 1), `${ended}: ${sum} within [${n} × ${youngestBefore}, ${n} × ${oldestBefore + seconds + 1}]`);
        }
        // The rest are still in FIN-WAIT-1, still tracked.
        assert.equal(v('tcpstate_state_age_seconds_count{state="fin_wait1"}'), N - D - K);
      } finally {
        assert.equal(await d.stop(), 0);
      }
    });
  }

  it('item 3: after an exporter restart, orphans 20+ s old are at least that old (netlink, ss: tcpi_last_data_sent); proc starts again', async () => {
    const { ns, lab } = await labIn('restart');
    labs.push(lab);
    // A first exporter ran and stopped (the restart), while the orphans age.
    const first = await startDaemon(daemonArgs('netlink'), { netns: ns, get: (port, path) => lab.get(port, path) });
    await polls(first, 1);
    assert.equal(await first.stop(), 0);
    while ((await lab.measure()).age_seconds < 20) await sleep(1000);
    for (const source of ['netlink', 'ss', 'proc'] as const) {
      const d = await startDaemon(daemonArgs(source), { netns: ns, get: (port, path) => lab.get(port, path) });
      try {
        await waitForPoll(d);
        const labAge = (await lab.measure()).age_seconds;
        // The next poll starts after this measure: every orphan is at least labAge old then.
        const body = await polls(d, 2);
        const youngest = sample(body, 'tcpstate_state_age_quantile_seconds{state="fin_wait1",quantile="0"}')!;
        const count = sample(body, 'tcpstate_state_age_seconds_count{state="fin_wait1"}');
        console.log(`# restart, ${source}: lab age ${labAge} s, youngest orphan age ${youngest} s`);
        assert.equal(count, N);
        if (source === 'proc') assert.ok(youngest < labAge, `proc: no kernel clock, ages start at first sight (${youngest} < ${labAge})`);
        else assert.ok(youngest >= labAge, `${source}: youngest age ${youngest} s ≥ lab age ${labAge} s`);
      } finally {
        assert.equal(await d.stop(), 0);
      }
    }
  });
});
