// End to end, node_exporter style: the real daemon against a fixture /proc and captured ss
// outputs; its /metrics is linted by promtool and diffed with a golden file.
// UPDATE_GOLDEN=1 rewrites the golden files (review the diff before committing).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { SS_ARGS, SS_DETAIL_ARGS } from '../../src/sources/ss.ts';
import { ROOT, promtoolCheckMetrics, sample, startDaemon, waitReady, type Daemon } from '../helpers/daemon.ts';

const VOLATILE = /^(tcpstate_poll_thread_heap_size_total_bytes|tcpstate_poll_thread_heap_size_used_bytes|tcpstate_poll_thread_external_memory_bytes|tcpstate_source_duration_seconds|tcpstate_last_poll_timestamp_seconds|tcpstate_snapshot_age_seconds|tcpstate_poll_duration_seconds)(\{[^}]*\})? .*/;

/** Drops process/nodejs metrics and masks values that change from run to run. */
function normalise(body: string): string {
  return body
    .split('\n')
    .filter((l) => !/^(# (HELP|TYPE) )?(process_|nodejs_)/.test(l))
    .map((l) => l.replace(VOLATILE, (_m, name: string, labels: string | undefined) => `${name}${labels ?? ''} <volatile>`))
    .map((l) => l.replace(/nodejs="v[^"]+"/, 'nodejs="<version>"').replace(/revision="[^"]+"/, 'revision="<revision>"'))
    .join('\n')
    .replace(/^\n+/, '')
    .replace(/\n{3,}/g, '\n\n');
}

const CASES: ReadonlyArray<{ name: string; args: string[] }> = [
  { name: 'proc', args: ['--source', 'proc', '--path.procfs', 'test/fixtures/proc'] },
  // Kernel-wide files always come from --path.procfs, so ss cases point it at the same fixture tree.
  { name: 'ss-v61', args: ['--source', 'ss', '--ss.path', 'test/fixtures/bin/ss-v61', '--path.procfs', 'test/fixtures/proc'] },
  { name: 'ss-v2633', args: ['--source', 'ss', '--ss.path', 'test/fixtures/bin/ss-v2633', '--path.procfs', 'test/fixtures/proc'] },
  { name: 'lab-proc', args: ['--source', 'proc', '--path.procfs', 'test/fixtures/lab-proc'] },
  { name: 'lab-ss', args: ['--source', 'ss', '--ss.path', 'test/fixtures/bin/ss-lab', '--path.procfs', 'test/fixtures/lab-proc'] },
  { name: 'lab-netlink', args: ['--source', 'netlink', '--netlink.helper', 'test/fixtures/bin/netlink-lab', '--path.procfs', 'test/fixtures/lab-proc'] },
  { name: 'old-kernel', args: ['--source', 'proc', '--path.procfs', 'test/fixtures/proc-old-kernel'] },
  { name: 'broken', args: ['--source', 'proc', '--path.procfs', 'test/fixtures/proc-broken'] },
  // netlink (kernel without tcp_diag) and ss (no permission) fail: /proc serves.
  {
    name: 'auto-fallback',
    args: ['--source', 'auto', '--netlink.helper', 'test/fixtures/bin/netlink-broken', '--ss.path', 'test/fixtures/bin/ss-broken', '--path.procfs', 'test/fixtures/proc'],
  },
];

/** The socket-table lines of a golden file: what every source must agree on. */
function socketFigures(name: string): string[] {
  return readFileSync(`${ROOT}test/golden/${name}.metrics`, 'utf8')
    .split('\n')
    .filter((l) => /^tcpstate_(sockets|send_queue_bytes|recv_queue_bytes|timer_sockets|orphan_sockets|orphan_send_queue_bytes)\{/.test(l));
}

describe('golden /metrics from fixtures', () => {
  const daemons: Daemon[] = [];
  after(async () => {
    for (const d of daemons) await d.stop();
  });

  for (const c of CASES) {
    it(c.name, async () => {
      // One poll only: the schedule (24h: daily at midnight) must not add a second poll before the
      // scrape, which would age the FIN-WAIT-1 sockets (a 30s schedule did, at :00 and :30).
      const d = await startDaemon([...c.args, '--poll.interval', '24h']);
      daemons.push(d);
      await waitReady(d);
      const res = await d.get('/metrics');
      assert.equal(res.status, 200);
      await promtoolCheckMetrics(res.body);
      const got = normalise(res.body);
      const file = `${ROOT}test/golden/${c.name}.metrics`;
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, got);
      assert.equal(got, readFileSync(file, 'utf8'));
    });
  }

  it('every source gives the same socket figures for the same sockets', () => {
    const proc = socketFigures('proc');
    assert.ok(proc.length > 100);
    for (const other of ['ss-v61', 'ss-v2633', 'auto-fallback']) assert.deepEqual(socketFigures(other), proc, other);
  });

  it('the real lab captures show the lab orphans, from every source', () => {
    const captures = { 'lab-proc': 'lab-proc/figures.json', 'lab-ss': 'captures/lab_ss_figures.json', 'lab-netlink': 'netlink/figures.json' };
    for (const [name, figuresFile] of Object.entries(captures)) {
      const fig = JSON.parse(readFileSync(`${ROOT}test/fixtures/${figuresFile}`, 'utf8')) as {
        fin_wait1: number;
        fin_wait1_send_queue_without_fin: number;
        peer_recv_queue: number;
      };
      const body = readFileSync(`${ROOT}test/golden/${name}.metrics`, 'utf8');
      assert.equal(sample(body, 'tcpstate_sockets{state="fin_wait1",family="ipv4"}'), fig.fin_wait1, name);
      // +1 per socket: the FIN queued behind the data.
      assert.equal(sample(body, 'tcpstate_orphan_send_queue_bytes{state="fin_wait1",family="ipv4"}'), fig.fin_wait1_send_queue_without_fin + fig.fin_wait1, name);
      assert.equal(sample(body, 'tcpstate_timer_sockets{state="fin_wait1",timer="persist",family="ipv4"}'), fig.fin_wait1, name);
      assert.equal(sample(body, 'tcpstate_recv_queue_bytes{state="established",family="ipv4"}'), fig.peer_recv_queue, name);
    }
    // The same lab, taken three times (proc, ss and netlink on different days).
    assert.deepEqual(socketFigures('lab-ss'), socketFigures('lab-proc'));
    assert.deepEqual(socketFigures('lab-netlink'), socketFigures('lab-proc'));
  });

  it('the fake ss answers each pass as the real ss does: `state fin-wait-1` without a State column, `exclude fin-wait-1` without FIN-WAIT-1', () => {
    const lines = (bin: string, args: readonly string[]) => execFileSync(`${ROOT}test/fixtures/bin/${bin}`, args, { encoding: 'utf8' }).split('\n').filter((l) => l.trim() !== '');
    const tokens = (header: string) => header.trim().split(/\s+/);
    // This host's ss is iproute2 6.1, the generation of ss-v61 and ss-lab: its header for the detail
    // pass (compared without blanks: the column width, and so `Port Process` vs `PortProcess`, follows COLUMNS).
    const bare = (header: string) => header.replace(/\s+/g, '');
    // Only the header is wanted, but the host may hold many FIN-WAIT-1 sockets: no 1 MiB output cap.
    const realHeader = bare(execFileSync('ss', SS_DETAIL_ARGS, { encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n')[0]!);
    for (const bin of ['ss-v61', 'ss-v2633', 'ss-lab']) {
      const [header, ...rest] = lines(bin, SS_DETAIL_ARGS);
      assert.equal(tokens(header!)[0], 'Recv-Q', `${bin}: header ${header}`);
      if (bin !== 'ss-v2633') assert.equal(bare(header!), realHeader, bin);
      for (const l of rest) if (!l.startsWith('\t')) assert.match(l, /^\d+\s+\d+\s/, `${bin}: ${l}`);
      const [mainHeader, ...main] = lines(bin, SS_ARGS);
      assert.equal(tokens(mainHeader!)[0], 'State', bin);
      assert.ok(main.length > 0 && main.every((l) => !l.startsWith('FIN-WAIT-1')), bin);
    }
    // The lab's FIN-WAIT-1 pass is real and not empty.
    assert.equal(lines('ss-lab', SS_DETAIL_ARGS).filter((l) => /^\d/.test(l)).length, 5);
  });

  it('SIGTERM exits 0', async () => {
    const d = await startDaemon(['--source', 'proc', '--path.procfs', 'test/fixtures/proc']);
    await waitReady(d);
    assert.equal(await d.stop(), 0);
  });

  it('a bad flag exits non-zero naming the setting', async () => {
    await assert.rejects(startDaemon(['--poll.interval', '7s']), /exited with 2[\s\S]*--poll\.interval/);
  });
});
