// Proven on a real Prometheus (Debian's `prometheus` package): the lab's other stuck-state failure
// modes — a CLOSE-WAIT leak, orphaned FIN-WAIT-2 and LAST-ACK sockets, a SYN-RECV flood, a
// listen-queue overflow — in a network namespace of our own, with the exporter and a Prometheus
// both running inside it (TcpExt ListenOverflows is a per-namespace counter), Prometheus loading
// the shipped rules rendered from prometheus/config.ts with test thresholds and short `for`.
// Prometheus is queried through the lab (its HTTP client lives in the namespace). For each
// failure mode, the matching alert goes pending → firing, and its runbook section names the cause
// the lab built.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CONFIG, DEFAULT_RUNBOOK_URL, type RulesConfig } from '../../prometheus/config.ts';
import type { AlertName } from '../../prometheus/rules.ts';
import { ROOT, startDaemon, type Daemon } from '../helpers/daemon.ts';
import { startPrometheus, type Prometheus } from '../helpers/prometheus.ts';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';

const NETNS = `tcpstate-fmprom-${process.pid}`;
const PROM_PORT = 19600 + (process.pid % 300);
const N = { closeWait: 8, finWait2: 6, lastAck: 5, synRecv: 7, listenOverflow: 8, listenBacklog: 2 };

/** The shipped rules with thresholds just below the lab's counts and `for: 3s`. */
const TEST_CONFIG: RulesConfig = {
  ...DEFAULT_CONFIG,
  closeWaitSockets: N.closeWait - 1,
  closeWaitFor: '3s',
  finWait2Sockets: N.finWait2 - 1,
  finWait2For: '3s',
  lastAckSockets: N.lastAck - 1,
  lastAckFor: '3s',
  synRecvSockets: N.synRecv - 1,
  synRecvFor: '3s',
  listenOverflowRate: 0,
  listenOverflowWindow: '30s',
  listenOverflowFor: '3s',
  listenFullFor: '3s',
};

/** Each failure mode the lab builds, its alert, the labels it must carry, and the cause its runbook section must name. */
const CASES: Array<{ alert: AlertName; labels: (lab: Lab) => Record<string, string>; cause: string }> = [
  { alert: 'TcpCloseWaitLeak', labels: (lab) => ({ port: String(lab.ports.close_wait) }), cause: 'the application that owns them has not' },
  { alert: 'TcpOrphanedFinWait2PilingUp', labels: () => ({}), cause: 'the peers acknowledged the FIN but never close their end' },
  { alert: 'TcpOrphanedLastAckPilingUp', labels: () => ({}), cause: 'stopped reading while data was still queued' },
  { alert: 'TcpSynRecvFlood', labels: (lab) => ({ port: String(lab.ports.syn_recv) }), cause: 'SYN-ACKs that do not reach real clients' },
  { alert: 'TcpListenQueueOverflow', labels: () => ({}), cause: "a listener's accept queue was full" },
  { alert: 'TcpListenQueueFull', labels: (lab) => ({ port: String(lab.ports.listen_overflow) }), cause: 'Its application is not accepting' },
];

/** The phrase, whatever the line breaks of the Markdown. */
const phrase = (p: string) => new RegExp(p.split(' ').join('\\s+'));

interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runbookSection(name: string): string {
  const text = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');
  const start = text.indexOf(`\n## ${name}\n`);
  assert.ok(start >= 0, `runbook has no section ${name}`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

describe('real Prometheus: each stuck-state failure mode fires its alert', { timeout: 240_000 }, () => {
  let lab: Lab;
  let daemon: Daemon;
  let prom: Prometheus;

  const api = async <T>(path: string): Promise<T> => {
    const r = await prom.get(path);
    assert.equal(r.status, 200, `${path}: ${r.status} ${r.body}\n${prom.logs().slice(-2000)}`);
    return JSON.parse(r.body) as T;
  };

  before(async () => {
    await createNetns(NETNS);
    lab = await Lab.start({ finWait1: 0, established: 0, timeWait: 0, ...N, netns: NETNS });
    daemon = await startDaemon(['--source', 'netlink', '--poll.interval', '1s'], { netns: NETNS, get: (port, path) => lab.get(port, path) });
    prom = await startPrometheus({
      port: PROM_PORT,
      rules: TEST_CONFIG,
      scrapeConfigs: ['  - job_name: tcpstate', `    static_configs: [{ targets: ['127.0.0.1:${daemon.port}'] }]`],
      netns: NETNS,
      get: (port, path) => lab.get(port, path),
      tmpPrefix: 'tcpstate-fmprom-',
    });
  });

  after(async () => {
    await prom?.stop();
    await daemon?.stop();
    await lab?.stop();
    await deleteNetns(NETNS);
  });

  it('every failure-mode alert goes pending, then firing, with its labels and runbook link; its runbook section names the cause', async () => {
    const seen = new Map<AlertName, Set<string>>(CASES.map((c) => [c.alert, new Set<string>()]));
    const firing = new Map<AlertName, Alert>();
    for (let i = 0; i < 160 && firing.size < CASES.length; i++) {
      const r = await api<{ data: { alerts: Alert[] } }>('/api/v1/alerts');
      for (const a of r.data.alerts) {
        const name = a.labels.alertname as AlertName;
        seen.get(name)?.add(a.state);
        if (a.state === 'firing' && seen.has(name)) firing.set(name, a);
      }
      if (firing.size < CASES.length) await sleep(250);
    }
    const x = await lab.measure();
    for (const c of CASES) {
      const states = [...(seen.get(c.alert) ?? [])];
      assert.ok(states.includes('pending'), `${c.alert}: never pending; seen ${states.join(', ')}`);
      const a = firing.get(c.alert);
      assert.ok(a, `${c.alert}: never fired; seen ${states.join(', ')}; lab ${JSON.stringify(x.states)}`);
      assert.equal(a.labels.severity, 'warning');
      for (const [k, v] of Object.entries(c.labels(lab))) assert.equal(a.labels[k], v, `${c.alert}: label ${k}`);
      assert.equal(a.annotations.runbook_url, `${DEFAULT_RUNBOOK_URL}#${c.alert.toLowerCase()}`);
      assert.match(runbookSection(c.alert), phrase(c.cause), `${c.alert}: the runbook section names the cause`);
    }
    // The figures in the descriptions are the lab's.
    assert.match(firing.get('TcpCloseWaitLeak')!.annotations.description!, new RegExp(`has ${N.closeWait} sockets in CLOSE-WAIT on local port ${lab.ports.close_wait} `));
    assert.match(firing.get('TcpOrphanedFinWait2PilingUp')!.annotations.description!, new RegExp(`holds ${N.finWait2} orphaned FIN-WAIT-2 sockets`));
    assert.match(firing.get('TcpOrphanedLastAckPilingUp')!.annotations.description!, new RegExp(`holds ${N.lastAck} orphaned LAST-ACK sockets`));
    assert.match(firing.get('TcpSynRecvFlood')!.annotations.description!, new RegExp(`has ${N.synRecv} half-open handshakes`));
  });
});
