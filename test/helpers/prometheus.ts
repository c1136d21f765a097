// Starts the real Prometheus (Debian's `prometheus` package) for the end-to-end tests: the shipped
// rules rendered from prometheus/config.ts with the test's thresholds, a one-second scrape and
// evaluation interval, the test's scrape jobs, and a data directory of its own, optionally filled
// beforehand with series from an OpenMetrics text (`promtool tsdb create-blocks-from openmetrics`);
// optionally inside a network namespace (then it is reached through the caller's `get`, e.g. the lab's).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RulesConfig } from '../../prometheus/config.ts';
import { renderRulesYaml } from '../../prometheus/rules.ts';

type Get = (port: number, path: string) => Promise<{ status: number; body: string }>;

export interface PrometheusOptions {
  /** Listens on 127.0.0.1:port (inside the namespace, if any). */
  port: number;
  /** Rendered into tcpstate.rules.yml. */
  rules: RulesConfig;
  /** The entries of scrape_configs, as YAML lines. */
  scrapeConfigs: string[];
  /** Run Prometheus inside this network namespace. */
  netns?: string;
  /** How to make requests (inside a netns the test process cannot reach Prometheus itself). */
  get?: Get;
  /** Prefix of its temporary directory. */
  tmpPrefix?: string;
  /** Series to backfill before it starts: OpenMetrics text with timestamps (ending in `# EOF`). */
  openMetrics?: string;
}

export interface Prometheus {
  port: number;
  get(path: string): Promise<{ status: number; body: string }>;
  logs(): string;
  /** SIGTERM; asserts that it exited with 0 (unless it had already exited); removes its directory. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Prometheus and waits until /-/ready answers 200 (30 s at the most). */
export async function startPrometheus(opts: PrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), opts.tmpPrefix ?? 'tcpstate-prom-'));
  writeFileSync(join(dir, 'tcpstate.rules.yml'), renderRulesYaml(opts.rules));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'rule_files: [tcpstate.rules.yml]',
      'scrape_configs:',
      ...opts.scrapeConfigs,
      '',
    ].join('\n'),
  );
  if (opts.openMetrics !== undefined) {
    writeFileSync(join(dir, 'backfill.om'), opts.openMetrics);
    execFileSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'backfill.om'), join(dir, 'data')], { stdio: 'pipe' });
  }
  const cmd = [
    'prometheus',
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${opts.port}`,
  ];
  const full = opts.netns === undefined ? cmd : ['ip', 'netns', 'exec', opts.netns, ...cmd];
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

  const get = async (path: string): Promise<{ status: number; body: string }> => {
    if (opts.get !== undefined) return opts.get(opts.port, path);
    const res = await fetch(`http://127.0.0.1:${opts.port}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const code = await exited;
      assert.equal(code, 0, `Prometheus exit code\n${log.slice(-2000)}`);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  for (let i = 0; ; i++) {
    const ready = await get('/-/ready').catch(() => undefined);
    if (ready?.status === 200) break;
    if (i > 150) {
      await stop().catch(() => undefined);
      throw new Error(`Prometheus not ready:\n${log}`);
    }
    await sleep(200);
  }
  return { port: opts.port, get, logs: () => log, stop };
}
