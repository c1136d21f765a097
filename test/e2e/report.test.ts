// `tcpstate-exporter report` through the real command line.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BIN, ROOT, startDaemon, waitReady } from '../helpers/daemon.ts';

const run = promisify(execFile);
const CAP = 'test/fixtures/captures/';

async function report(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'report', ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** The report with `input` on its standard input. */
function reportStdin(input: Buffer, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'report', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

interface JsonReport {
  states: Record<string, { sockets: number; sendQueueBytes: number | null; recvQueueBytes: number | null; orphanSockets: number }>;
  finWait1?: { ports: Record<string, { sockets: number; sendQueueBytes: number }> };
}

async function json(...args: string[]): Promise<JsonReport> {
  const r = await report(...args, '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as JsonReport;
}

const counts = (j: JsonReport) => Object.entries(j.states).map(([s, v]) => [s, v.sockets, v.sendQueueBytes, v.recvQueueBytes]);

describe('report', () => {
  it('captures of the same sockets from five iproute2 versions and /proc give the same numbers', async () => {
    const proc = await json('--input', `proc:${CAP}proc_tcp`, '--input', `proc:${CAP}proc_tcp6`);
    assert.equal(proc.states.listen!.sockets, 6);
    for (const v of ['v2633', 'v310', 'v412', 'v61', 'head']) {
      assert.deepEqual(counts(await json('--input', `ss:${CAP}ss_tanoem.${v}`)), counts(proc), v);
    }
  });

  it('the lab capture: FIN-WAIT-1 bytes and the listening port, from ss (with and without -i, filtered), /proc and netlink dumps', async () => {
    for (const args of [
      ['--input', `ss:${CAP}lab_ss_tanoemi.v61`],
      ['--input', `ss:${CAP}lab_ss_tanoem.v61`],
      ['--input', `ss:${CAP}lab_ss_fw1.v61`, '--state', 'fin-wait-1'],
      ['--input', 'proc:test/fixtures/lab-proc/net/tcp'],
      ['--input', 'netlink:test/fixtures/netlink/lab-1fee.bin', '--input', 'netlink:test/fixtures/netlink/lab-10-42.bin'],
    ]) {
      const j = await json(...args);
      assert.equal(j.states.fin_wait1!.sockets, 5, args.join(' '));
      assert.equal(j.states.fin_wait1!.sendQueueBytes, 133125, args.join(' '));
      // A capture filtered to one state has no LISTEN lines: its sockets cannot be attributed to a port.
      const port = args.includes('--state') ? 'other' : '17001';
      assert.deepEqual(j.finWait1!.ports[port], { sockets: 5, sendQueueBytes: 133125 }, args.join(' '));
    }
  });

  it('text explains the failure and gives a tcpdump command for the worst peer', async () => {
    const r = await report('--input', `ss:${CAP}lab_ss_tanoemi.v61`);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^tcpstate-exporter report: /);
    assert.match(r.stdout, /FIN-WAIT-1: 5 sockets hold 130\.0 KiB \(133,125 bytes\)/);
    assert.match(r.stdout, /5 of them are orphans/);
    assert.match(r.stdout, /tcp_fin_timeout does not apply/);
    assert.match(r.stdout, /17001 +5 sockets/);
    assert.match(r.stdout, /tcpdump -ni any 'host 127\.0\.0\.1 and tcp port 17001'/);
  });

  it('a capture without timers (ss without -o, the runbook\'s hand check) says the zero-window waits are unknown, not 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpstate-report-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    // What `ss -tn state fin-wait-1` and `ss -tane` print: the lab's real captures without the -o field.
    const noTimers = (name: string) => {
      const path = join(dir, name);
      writeFileSync(path, readFileSync(`${ROOT}${CAP}${name}`, 'utf8').replace(/ timer:\([^)]*\)/g, ''));
      return path;
    };
    for (const args of [['--input', `ss:${noTimers('lab_ss_fw1.v61')}`, '--state', 'fin-wait-1'], ['--input', `ss:${noTimers('lab_ss_tanoem.v61')}`]]) {
      const text = await report(...args);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /FIN-WAIT-1: 5 sockets/);
      assert.doesNotMatch(text.stdout, /wait on a zero receive window/, args.join(' '));
      assert.match(text.stdout, /Zero-window waits: unknown \(the capture shows no timers; take it with ss -o\)/, args.join(' '));
      const j = (await json(...args)) as JsonReport & { states: Record<string, { persistTimers: number | null; persistMaxSeconds: number | null }> };
      assert.deepEqual([j.states.fin_wait1!.persistTimers, j.states.fin_wait1!.persistMaxSeconds], [null, null]);
    }
    // With the timers: counted.
    const withTimers = await report('--input', `ss:${CAP}lab_ss_fw1.v61`, '--state', 'fin-wait-1');
    assert.match(withTimers.stdout, /5 wait on a zero receive window/);
  });

  it('says how many sockets are at the probe-interval cap from each one\'s RTO and backoff (backoff 9 at RTO 208 ms waits 106.5 s: not capped)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpstate-report-cap-'));
    try {
      const info = (rto: number, backoff: number) => `\t cubic wscale:7,7 rto:${rto} backoff:${backoff} rtt:0.03/0.01 ato:40 mss:32768 cwnd:10 lastsnd:250000`;
      const file = join(dir, 'fw1.ss');
      writeFileSync(
        file,
        [
          '0 96257 127.0.0.1:17001 127.0.0.1:49134 timer:(persist,1min40sec,0) ino:0 sk:1', info(208, 9),
          '0 96257 127.0.0.1:17001 127.0.0.1:49136 timer:(persist,13sec,0) ino:0 sk:2', info(208, 10),
          '0 96257 127.0.0.1:17001 127.0.0.1:49138 timer:(persist,50sec,0) ino:0 sk:3', info(240, 9),
          '',
        ].join('\n'),
      );
      const r = await report('--input', `ss:${file}`, '--state', 'fin-wait-1');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Probe backoff: .*; 2 at the 120 s probe-interval cap/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--format prometheus is what /metrics serves for the same input', async () => {
    // The two real ss passes test/fixtures/bin/ss-lab replays to the daemon, as files.
    const r = await report('--input', `ss:${CAP}lab_ss_main.v61`, '--input', `ss:${CAP}lab_ss_detail.v61`, '--state', 'fin-wait-1', '--format', 'prometheus');
    assert.equal(r.code, 0, r.stderr);
    const d = await startDaemon(['--source', 'ss', '--ss.path', 'test/fixtures/bin/ss-lab', '--path.procfs', 'test/fixtures/lab-proc']);
    try {
      await waitReady(d);
      const served = (await d.get('/metrics')).body;
      const pick = (body: string) =>
        body.split('\n').filter((l) => /^tcpstate_(sockets|send_queue_bytes|recv_queue_bytes|timer_sockets|orphan_|persist_|socket_|port_)/.test(l));
      assert.ok(pick(served).length > 200);
      assert.deepEqual(pick(r.stdout), pick(served));
    } finally {
      await d.stop();
    }
  });

  it('fails with a clear message and nothing on stdout for unreadable or unrecognisable input', async () => {
    for (const [args, msg] of [
      [['--input', 'ss:/nonexistent'], /cannot read \/nonexistent/],
      [['--input', 'proc:/etc/hostname'], /does not look like \/proc\/net\/tcp/],
      [['--input', `ss:${CAP}lab_ss_fw1.v61`], /no socket recognised.*needs --state/],
      [['--input', 'bogus'], /expected ss:FILE, proc:FILE or netlink:FILE/],
      [['--input', 'netlink:/etc/hostname'], /no socket recognised.*output of tcpstate-diag/],
      [['--input', `ss:${CAP}lab_ss_fw1.v61`, '--state', 'fin-wait-9'], /unknown state/],
    ] as const) {
      const r = await report(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, msg);
    }
  });

  it('reads standard input: ss … | report --input ss:- gives what the file gives; takenAt says it is the run time', async () => {
    const file = await json('--input', `ss:${CAP}lab_ss_tanoemi.v61`);
    const r = await reportStdin(readFileSync(`${ROOT}${CAP}lab_ss_tanoemi.v61`), '--input', 'ss:-', '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as JsonReport & { source: string; takenAtIs: string };
    assert.deepEqual(counts(j), counts(file));
    assert.deepEqual(j.finWait1!.ports['17001'], { sockets: 5, sendQueueBytes: 133125 });
    assert.equal(j.source, 'ss:-');
    assert.equal(j.takenAtIs, 'when this report ran: standard input has no capture time');
    // A filtered capture from a pipe, with --state; and text says the capture time is unknown.
    const fw1 = await reportStdin(readFileSync(`${ROOT}${CAP}lab_ss_fw1.v61`), '--input', 'ss:-', '--state', 'fin-wait-1');
    assert.equal(fw1.code, 0, fw1.stderr);
    assert.match(fw1.stdout, /FIN-WAIT-1: 5 sockets hold 130\.0 KiB \(133,125 bytes\)/);
    assert.match(fw1.stdout, /Taken: unknown \(standard input\); read at /);
    // An empty pipe is refused as an empty file is, naming standard input.
    const empty = await reportStdin(Buffer.alloc(0), '--input', 'ss:-');
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /standard input is empty/);
  });

  it('--state without --input is a usage error naming --input (exit 2), not silently ignored', async () => {
    const r = await report('--state', 'fin-wait-1');
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /--state describes an ss capture filtered to one state and needs --input ss:FILE/);
  });

  it("takenAt is the capture file's modification time and says so; a one-shot report's ages are null, not 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpstate-report-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'capture.txt');
    copyFileSync(`${ROOT}${CAP}lab_ss_tanoemi.v61`, path);
    const captured = new Date('2026-01-02T03:04:05.000Z');
    utimesSync(path, captured, captured);
    const j = (await json('--input', `ss:${path}`)) as JsonReport & { takenAt: string; takenAtIs: string; finWait1: { worstSockets: Array<{ ageSeconds: number | null; sendQueue: number }> } };
    assert.equal(j.takenAt, '2026-01-02T03:04:05.000Z');
    assert.match(j.takenAtIs, /modification time/);
    assert.equal(j.finWait1.worstSockets.length, 5);
    assert.deepEqual(j.finWait1.worstSockets.map((x) => x.ageSeconds), [null, null, null, null, null]);
    const text = await report('--input', `ss:${path}`);
    assert.match(text.stdout, /^Taken: 2026-01-02T03:04:05\.000Z \(the input file's modification time/m);
  });

  it('peer networks of the FIN-WAIT-1 sockets, in json and text; --peers.ipv4-prefix regroups them', async () => {
    type Nets = { finWait1: { peerNetworks: { ipv4Prefix: number; networks: number; sockets: number; bytes: number; top: Array<{ network: string; sockets: number; bytes: number }> } } };
    const j = (await json('--input', `ss:${CAP}lab_ss_tanoemi.v61`)) as JsonReport & Nets;
    assert.deepEqual(j.finWait1.peerNetworks.top, [{ network: '127.0.0.0/24', sockets: 5, bytes: 133125 }]);
    assert.deepEqual([j.finWait1.peerNetworks.networks, j.finWait1.peerNetworks.sockets, j.finWait1.peerNetworks.bytes], [1, 5, 133125]);
    const wide = (await json('--input', `ss:${CAP}lab_ss_tanoemi.v61`, '--peers.ipv4-prefix', '8')) as JsonReport & Nets;
    assert.deepEqual(wide.finWait1.peerNetworks.top, [{ network: '127.0.0.0/8', sockets: 5, bytes: 133125 }]);
    const text = await report('--input', `ss:${CAP}lab_ss_tanoemi.v61`);
    assert.match(text.stdout, /Peer networks \(IPv4 \/24, IPv6 \/64; 1 in all\) holding the most:\n +127\.0\.0\.0\/24 +5 sockets +130\.0 KiB \(133,125 bytes\)/);
    const bad = await report('--input', `ss:${CAP}lab_ss_tanoemi.v61`, '--peers.ipv4-prefix', '40');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--peers\.ipv4-prefix must be a prefix length from 0 to 32/);
  });

  it('Send-Q per socket: the exact median and 99th percentile of the sockets, not a bucket bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpstate-report-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    // The lab capture with its five FIN-WAIT-1 Send-Q values changed to 1000, 2000, 3000, 40000, 50000.
    const values = [50000, 1000, 40000, 3000, 2000];
    let k = 0;
    const path = join(dir, 'varied.txt');
    writeFileSync(path, readFileSync(`${ROOT}${CAP}lab_ss_tanoemi.v61`, 'utf8').replace(/^(FIN-WAIT-1\s+\d+\s+)\d+/gm, (_m, head: string) => `${head}${values[k++]}`));
    assert.equal(k, 5);
    const r = await report('--input', `ss:${path}`);
    assert.equal(r.code, 0, r.stderr);
    // Nearest rank: the 3rd of 5 sorted values, and the 5th.
    assert.match(r.stdout, /Send-Q per socket: median 3,000 bytes, 99th percentile 50,000 bytes/);
    assert.doesNotMatch(r.stdout, /≤ \d+ bytes/);
  });

  it('live: reads this host', async () => {
    const r = await report('--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as JsonReport & { source: string };
    assert.match(j.source, /^live \(/);
    assert.ok(j.states.listen!.sockets >= 1);
  });
});
