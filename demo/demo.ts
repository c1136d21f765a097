// `npm run demo`: the whole story on one machine, without Docker. A socket lab in a private network
// namespace builds FIN-WAIT-1 orphans on zero-window peers (deleting the namespace at the end
// removes every socket it made); the exporter, on this host's loopback, reads that namespace's
// table (ss run inside it) and this host's kernel-wide files; Debian's Prometheus scrapes it every
// 5 s with the shipped rules rendered with short `for:` and low thresholds (demo/demo-rules.yaml),
// so the alerts go pending and fire within minutes. Ctrl-C (or --for) stops and cleans up.
// Needs root (ip netns), python3 (the lab), prometheus (Debian's package).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_CONFIG } from '../prometheus/config.ts';
import { renderRulesYaml } from '../prometheus/rules.ts';
import { applySettings, parseSettingsText } from '../prometheus/settings.ts';
import { Lab, createNetns, deleteNetns } from '../test/lab/lab.ts';
import { renderDashboard, summary } from './render-dashboard.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('a port number');
  return n;
};
const seconds = (v: string) => {
  const m = /^(\d+)(s|m)$/.exec(v);
  if (!m) throw new InvalidArgumentError('a duration such as 90s or 5m');
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

const opts = new Command('npm run demo --')
  .description('Exporter, socket lab and Prometheus with the shipped rules on this machine (root; no Docker).')
  .option('--exporter-port <port>', 'exporter on 127.0.0.1', port, 9812)
  .option('--prometheus-port <port>', 'Prometheus on 127.0.0.1', port, 9090)
  .option('--fin-wait1 <n>', 'orphaned FIN-WAIT-1 sockets the lab makes', (v) => port(v), 200)
  .option('--for <duration>', 'stop by itself after this long (default: until Ctrl-C)', seconds)
  .option('--leaks', 'also the other stuck states: 60 CLOSE-WAIT (an application that never closes), 30 orphaned FIN-WAIT-2, 20 orphaned LAST-ACK, 50 SYN-RECV and a listener overflowing its backlog')
  .option('--snapshot <file.png>', 'when --for runs out (default 4m), render the Grafana dashboard to this picture (and FILE.html) with headless Chromium, then stop')
  .parse(process.argv.slice(2), { from: 'user' })
  .opts<{ exporterPort: number; prometheusPort: number; finWait1: number; for?: number; leaks?: true; snapshot?: string }>();
if (opts.snapshot !== undefined) opts.for ??= 240;

const NETNS = `tcpstate-demo-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'tcpstate-demo-'));
const children: ChildProcess[] = [];
let lab: Lab | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`${s}\n`);

function start(name: string, cmd: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`demo: ${name} exited (${code}):\n${log}\n`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

async function waitFor(url: string, what: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const r = await fetch(url).catch(() => undefined);
    if (r?.ok === true) return;
    await sleep(200);
  }
  throw new Error(`${what} did not come up at ${url}`);
}

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('\ndemo: stopping (the lab\'s sockets go with its network namespace)…');
    for (const c of children) c.kill('SIGTERM');
    await lab?.stop().catch(() => undefined);
    await deleteNetns(NETNS).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the lab lives in a network namespace of its own (ip netns)');
  const E = opts.exporterPort;
  const P = opts.prometheusPort;

  await createNetns(NETNS);
  const leaks = opts.leaks === true ? { closeWait: 60, finWait2: 30, lastAck: 20, synRecv: 50, listenOverflow: 12 } : {};
  lab = await Lab.start({ finWait1: opts.finWait1, established: 20, timeWait: 20, netns: NETNS, ...leaks });
  const fig = await lab.measure();

  start('exporter', [process.execPath, '--import', 'tsx', 'src/main.ts', '--web.listen-address', `127.0.0.1:${E}`, '--source', 'ss', '--ss.path', 'test/fixtures/bin/ss-in-netns', '--poll.interval', '5s', '--web.sockets'], {
    TCPSTATE_TEST_NETNS: NETNS,
  });
  await waitFor(`http://127.0.0.1:${E}/readyz`, 'the exporter');

  // The shipped rules, with the demo's short waits and low thresholds (a settings file like yours).
  const settings = applySettings(parseSettingsText(readFileSync(join(ROOT, 'demo/demo-rules.yaml'), 'utf8'), 'demo/demo-rules.yaml'), DEFAULT_CONFIG, 'demo/demo-rules.yaml');
  writeFileSync(join(dir, 'tcpstate.rules.yml'), renderRulesYaml(settings));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    ['global: { scrape_interval: 5s, evaluation_interval: 5s }', 'rule_files: [tcpstate.rules.yml]', 'scrape_configs:', '  - job_name: tcpstate', `    static_configs: [{ targets: ['127.0.0.1:${E}'] }]`, ''].join('\n'),
  );
  start('prometheus', ['prometheus', `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${P}`]);
  await waitFor(`http://127.0.0.1:${P}/-/ready`, 'Prometheus');

  say(`
tcpstate-exporter demo is running (lab in network namespace ${NETNS}).

  The lab:     ${fig.fin_wait1} orphaned FIN-WAIT-1 sockets on zero-window peers, ${fig.established} ESTABLISHED, ${fig.listen} listening${opts.leaks === true ? `\n               and the other leaks: ${Object.entries(fig.other_states).map(([st, n]) => `${n} ${st}`).join(', ')} (clients included)` : ''}
  Exporter:    http://127.0.0.1:${E}/metrics      curl -s http://127.0.0.1:${E}/metrics | grep 'state="fin_wait1"'
               http://127.0.0.1:${E}/sockets      the worst sockets, as a table in a browser
  Prometheus:  http://127.0.0.1:${P}/alerts       TcpFinWait1SendQueueHigh goes pending, then fires (~1 min);
                                                  TcpOrphansStuckOnZeroWindow once the probes reach the 120 s cap (~3-4 min)
               http://127.0.0.1:${P}/graph?g0.expr=tcpstate%3Afin_wait1_send_queue_bytes%3Asum
  From another machine: ssh -L ${P}:127.0.0.1:${P} -L ${E}:127.0.0.1:${E} <this host>

  The rules: the shipped ones with demo/demo-rules.yaml laid over (npm run rules -- --config demo/demo-rules.yaml --format rules --out -).
  The orphans die ~5 min after they were made (the kernel gives up on peers that never open their window).
  Ctrl-C stops everything and deletes the namespace.
`);
  if (opts.for !== undefined) {
    await sleep(opts.for * 1000);
    const alerts = (await (await fetch(`http://127.0.0.1:${P}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: { alertname: string }; state: string }> } };
    say(`demo: alerts after ${opts.for} s: ${alerts.data.alerts.map((a) => `${a.labels.alertname} ${a.state}`).join(', ') || 'none'}`);
    if (opts.snapshot !== undefined) {
      const html = opts.snapshot.replace(/\.png$/, '') + '.html';
      const data = await renderDashboard({ prometheus: `http://127.0.0.1:${P}`, dashboard: join(ROOT, 'grafana/dashboards/tcpstate-overview.json'), range: opts.for, rateInterval: '1m', html, png: opts.snapshot, chromium: 'chromium' });
      say(`${summary(data)}\ndemo: wrote ${opts.snapshot} and ${html}`);
    }
    await stop(0);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${(e as Error).message}\n`);
  void stop(1);
});
