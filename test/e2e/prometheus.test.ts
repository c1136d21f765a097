// Proven on a real Prometheus (Debian's `prometheus` package): the FIN-WAIT-1 lab in a network
// namespace of our own; the exporter, reading that namespace's socket table with the real ss (run
// in the namespace by test/fixtures/bin/ss-in-netns) and the host's kernel-wide files (tcp_mem and
// tcp_max_orphans exist only in the initial namespace); a Prometheus on loopback that scrapes it
// every second and loads the shipped rules, rendered from prometheus/config.ts with test
// thresholds. Asserted through Prometheus' HTTP API: the target is up, the FIN-WAIT-1 numbers match
// the lab, the FIN-WAIT-1 alert goes pending → firing, and every query of every Grafana panel
// parses and returns data. The exporter serves TLS with basic auth (--web.config.file, certificates
// made by openssl for the test) and Prometheus scrapes it that way; a second job without the
// password is refused (its target is down with a 401).

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CONFIG, DEFAULT_RUNBOOK_URL, type RulesConfig } from '../../prometheus/config.ts';
import { ROOT, startDaemon, type Daemon } from '../helpers/daemon.ts';
import { parseExposition } from '../helpers/exposition.ts';
import { startPrometheus, type Prometheus } from '../helpers/prometheus.ts';
import { bcryptHash, httpsGet, makeCerts, type Certs } from '../helpers/tls.ts';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';

const NETNS = `tcpstate-prom-${process.pid}`;
const N = 30;
const PROM_PORT = 19090 + (process.pid % 500);

/** The shipped rules with test thresholds: same renderer, same config object, overridden values. */
const TEST_CONFIG: RulesConfig = { ...DEFAULT_CONFIG, finWait1Bytes: 1000, finWait1For: '4s' };

interface PromResult {
  status: string;
  error?: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('real Prometheus: scrape, rules, alert, dashboard queries', { timeout: 240_000 }, () => {
  let lab: Lab;
  let daemon: Daemon;
  let prom: Prometheus;
  let certs: Certs;
  const PASSWORD = 'scrape-secret';

  const api = async (path: string): Promise<PromResult> => {
    return JSON.parse((await prom.get(path)).body) as PromResult;
  };
  const query = async (q: string) => api(`/api/v1/query?query=${encodeURIComponent(q)}`);
  const scalar = async (q: string): Promise<number | undefined> => {
    const r = await query(q);
    const v = r.data.result[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  };

  before(async () => {
    await createNetns(NETNS);
    lab = await Lab.start({ finWait1: N, established: 5, timeWait: 5, netns: NETNS });
    certs = makeCerts();
    writeFileSync(
      join(certs.dir, 'web.yml'),
      `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: ${bcryptHash(PASSWORD, 10)}\n`,
    );
    daemon = await startDaemon(
      ['--source', 'ss', '--ss.path', 'test/fixtures/bin/ss-in-netns', '--poll.interval', '1s', '--web.config.file', join(certs.dir, 'web.yml')],
      {
        env: { TCPSTATE_TEST_NETNS: NETNS },
        get: async (port, path) => {
          const r = await httpsGet(port, path, { ca: certs.caCert, auth: { user: 'prometheus', password: PASSWORD } });
          return { status: r.status, body: r.body, contentType: String(r.headers['content-type'] ?? '') };
        },
      },
    );
    assert.match(daemon.url, /^https:/);
    prom = await startPrometheus({
      port: PROM_PORT,
      rules: TEST_CONFIG,
      scrapeConfigs: [
        '  - job_name: tcpstate',
        '    scheme: https',
        `    tls_config: { ca_file: ${join(certs.dir, 'ca.crt')} }`,
        `    basic_auth: { username: prometheus, password: ${PASSWORD} }`,
        `    static_configs: [{ targets: ['127.0.0.1:${daemon.port}'] }]`,
        '  - job_name: tcpstate-noauth',
        '    scheme: https',
        `    tls_config: { ca_file: ${join(certs.dir, 'ca.crt')} }`,
        `    static_configs: [{ targets: ['127.0.0.1:${daemon.port}'] }]`,
      ],
    });
  });

  after(async () => {
    await prom?.stop();
    await daemon?.stop();
    await lab?.stop();
    await deleteNetns(NETNS);
    if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('scrapes through TLS with basic auth; without the password the target is down with a 401', async () => {
    let targets: Array<{ labels: { job: string }; health: string; lastError: string; scrapeUrl: string }> = [];
    for (let i = 0; i < 60; i++) {
      const r = (await api('/api/v1/targets')) as unknown as { data: { activeTargets: typeof targets } };
      targets = r.data.activeTargets;
      if (targets.length === 2 && targets.every((t) => t.health !== 'unknown')) break;
      await sleep(500);
    }
    const auth = targets.find((t) => t.labels.job === 'tcpstate');
    const noauth = targets.find((t) => t.labels.job === 'tcpstate-noauth');
    assert.equal(auth?.health, 'up', JSON.stringify(targets));
    assert.match(auth.scrapeUrl, /^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.equal(noauth?.health, 'down', JSON.stringify(targets));
    assert.match(noauth.lastError, /401/);
    assert.equal(await scalar('up{job="tcpstate-noauth"}'), 0);
  });

  it('scrapes the exporter: target up, FIN-WAIT-1 numbers match the lab', async () => {
    let up: number | undefined;
    for (let i = 0; i < 60 && up !== 1; i++) {
      up = await scalar('up{job="tcpstate"}');
      if (up !== 1) await sleep(500);
    }
    assert.equal(up, 1, prom.logs());
    const m = await lab.measure();
    let sockets: number | undefined;
    let bytes: number | undefined;
    for (let i = 0; i < 20; i++) {
      sockets = await scalar('sum(tcpstate_sockets{job="tcpstate",state="fin_wait1"})');
      bytes = await scalar('tcpstate:fin_wait1_send_queue_bytes:sum{job="tcpstate"}');
      if (sockets === N && bytes !== undefined) break;
      await sleep(500);
    }
    assert.equal(sockets, N);
    const base = m.fin_wait1_send_queue_without_fin;
    assert.ok(bytes! >= base && bytes! <= base + N, `FIN-WAIT-1 bytes ${bytes} not within [${base}, ${base + N}]`);
    assert.equal(await scalar('sum(tcpstate_orphan_sockets{job="tcpstate",state="fin_wait1"})'), N);
  });

  it('TcpFinWait1SendQueueHigh goes pending, then firing, with its annotations', async () => {
    const states = new Set<string>();
    let firing: { labels: Record<string, string>; annotations: Record<string, string> } | undefined;
    for (let i = 0; i < 60 && firing === undefined; i++) {
      const r = (await api('/api/v1/alerts')) as unknown as {
        data: { alerts: Array<{ labels: Record<string, string>; annotations: Record<string, string>; state: string }> };
      };
      for (const a of r.data.alerts.filter((x) => x.labels.alertname === 'TcpFinWait1SendQueueHigh')) {
        states.add(a.state);
        if (a.state === 'firing') firing = a;
      }
      if (firing === undefined) await sleep(250);
    }
    assert.ok(states.has('pending'), `seen states: ${[...states].join(', ')}`);
    assert.ok(firing, `never fired; seen states: ${[...states].join(', ')}`);
    assert.equal(firing.labels.severity, 'warning');
    assert.match(firing.annotations.description!, /^127\.0\.0\.1:\d+ holds \d+(\.\d+)?[kMG]iB of unacknowledged data in FIN-WAIT-1 sockets/);
    assert.equal(firing.annotations.runbook_url, `${DEFAULT_RUNBOOK_URL}#tcpfinwait1sendqueuehigh`);
  });

  it('Prometheus ingests every series of /metrics with the declared types; histogram_quantile() on the gauge histograms', async () => {
    const body = (await daemon.get('/metrics')).body;
    const exposed = parseExposition(body);
    const names = new Set(exposed.samples.map((s) => s.name).filter((n) => n.startsWith('tcpstate_') || n.startsWith('nodejs_active_')));
    const stored = await query('count by (__name__) ({job="tcpstate"})');
    const inProm = new Set(stored.data.result.map((r) => r.metric.__name__));
    for (const n of names) assert.ok(inProm.has(n), `${n} exposed but not in Prometheus`);
    const meta = JSON.parse((await prom.get('/api/v1/metadata')).body) as { data: Record<string, Array<{ type: string }>> };
    // The text format's untyped is Prometheus' "unknown": never taken for a cumulative histogram.
    for (const n of ['tcpstate_state_age_seconds_bucket', 'tcpstate_state_age_seconds_count', 'tcpstate_persist_timer_seconds_bucket', 'nodejs_active_handles_total']) {
      assert.equal(meta.data[n]?.[0]?.type, 'unknown', n);
    }
    assert.equal(meta.data.tcpstate_sockets?.[0]?.type, 'gauge');
    assert.equal(meta.data.tcpstate_aborts_total?.[0]?.type, 'counter');
    // The one histogram is cumulative (lifetimes observed once each); point-in-time distributions never are.
    const CUMULATIVE = new Set(['tcpstate_fin_wait1_lifetime_seconds']);
    for (const [name, type] of Object.entries(meta.data)) {
      if (name.startsWith('tcpstate_') && !CUMULATIVE.has(name)) assert.notEqual(type[0]?.type, 'histogram', `${name}: no point-in-time distribution typed histogram`);
    }
    assert.equal(meta.data.tcpstate_fin_wait1_lifetime_seconds?.[0]?.type, 'histogram');
    // Exact quantiles: summaries with quantile samples only (their _sum/_count would be cumulative).
    assert.equal(meta.data.tcpstate_state_age_quantile_seconds?.[0]?.type, 'summary');
    assert.equal(meta.data.tcpstate_socket_send_queue_quantile_bytes?.[0]?.type, 'summary');
    const p99 = await scalar('histogram_quantile(0.99, sum by (le) (tcpstate_persist_timer_seconds_bucket{job="tcpstate",state="fin_wait1"}))');
    assert.ok(p99 !== undefined && p99 > 0 && p99 <= 120, `persist p99 ${p99}`);
  });

  it('every query of every Grafana panel parses and returns data', async () => {
    // A few rate() windows must hold two samples.
    await sleep(3000);
    for (const file of readdirSync(join(ROOT, 'grafana', 'dashboards'))) {
      const dash = JSON.parse(readFileSync(join(ROOT, 'grafana', 'dashboards', file), 'utf8')) as {
        panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
      };
      for (const p of dash.panels) {
        for (const t of p.targets ?? []) {
          const q = t.expr.replaceAll('$job', 'tcpstate').replaceAll('$instance', '.+').replaceAll('$netns', '.*').replaceAll('$pod', '.*').replaceAll('$__rate_interval', '15s');
          let r: PromResult | undefined;
          for (let i = 0; i < 10; i++) {
            r = await query(q);
            assert.equal(r.status, 'success', `${p.title}: ${q}: ${r.error ?? ''}`);
            if (r.data.result.length > 0) break;
            await sleep(500);
          }
          assert.ok(r!.data.result.length > 0, `${file} "${p.title}": no data for ${q}`);
        }
      }
    }
  });
});
