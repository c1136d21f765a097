// `npm run rules`: settings without editing TypeScript, --help that writes nothing, --check, clear
// errors; and the prometheus-operator objects it commits stay equal to the rule file.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_CONFIG } from '../../prometheus/config.ts';
import { renderPrometheusRuleYaml, renderServiceMonitorYaml } from '../../prometheus/operator.ts';
import { SettingsError, applySettings, jobOf } from '../../prometheus/settings.ts';
import { ROOT } from '../helpers/daemon.ts';

const RULES = `${ROOT}prometheus/tcpstate.rules.yml`;
const dir = mkdtempSync(join(tmpdir(), `tcpstate-rules-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

function rules(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'prometheus/render.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('npm run rules', () => {
  it('--help prints the options and writes nothing', () => {
    const before = statSync(RULES).mtimeMs;
    const r = rules('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--config <file>/);
    assert.match(r.stdout, /--runbook-url <url>/);
    assert.equal(statSync(RULES).mtimeMs, before, 'the rule file was rewritten');
  });

  it('an unknown flag is an error that writes nothing', () => {
    const before = statSync(RULES).mtimeMs;
    const r = rules('--selecter', 'job="x"');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option '--selecter'/);
    assert.equal(statSync(RULES).mtimeMs, before);
  });

  it('a YAML settings file sets the selector, runbook URL and a threshold; flags override it', () => {
    const file = join(dir, 'mine.yaml');
    writeFileSync(file, 'selector: job="node-tcp", env="prod"\nrunbookUrl: https://wiki.example.org/tcp.md\nfinWait1Bytes: 1000\n');
    const r = rules('--config', file, '--format', 'rules', '--out', '-');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /tcpstate_orphans\{job="node-tcp", env="prod"\}/);
    assert.match(r.stdout, /runbook_url: https:\/\/wiki\.example\.org\/tcp\.md#tcpfinwait1sendqueuehigh/);
    assert.match(r.stdout, /tcpstate:fin_wait1_send_queue_bytes:sum > 1000 or /);
    const f = rules('--config', file, '--selector', 'job="other"', '--format', 'servicemonitor', '--out', '-');
    assert.equal(f.status, 0, f.stderr);
    assert.match(f.stdout, /replacement: other\n/);
  });

  it('the demo\'s settings file (demo/demo-rules.yaml) is valid and renders', () => {
    const r = rules('--config', `${ROOT}demo/demo-rules.yaml`, '--format', 'rules', '--out', '-');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /tcpstate:fin_wait1_send_queue_bytes:sum > 65536 .*\n\s+for: 30s\n/);
  });

  it('a JSON settings file works too', () => {
    const file = join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify({ groupBy: ['cluster', 'instance'] }));
    const r = rules('--config', file, '--format', 'rules', '--out', '-');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sum by \(cluster, instance\)/);
  });

  it('bad settings exit 2 naming each field, and write nothing', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'finWait1For: 5\nbogus: 1\nrunbookUrl: docs/runbook.md\n');
    const before = statSync(RULES).mtimeMs;
    const r = rules('--config', file);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.yaml: finWait1For: .*expected string/);
    assert.match(r.stderr, /bad\.yaml: bogus: Unrecognized key/);
    assert.match(r.stderr, /bad\.yaml: runbookUrl: an absolute http\(s\) URL/);
    assert.equal(statSync(RULES).mtimeMs, before);
    assert.equal(rules('--config', join(dir, 'missing.yaml')).status, 2);
    writeFileSync(file, 'selector: [');
    assert.match(rules('--config', file).stderr, /not valid YAML or JSON/);
  });

  it('trend and stuck-state settings: durations become seconds for predict_linear; a floor that forbids firing is refused', () => {
    const file = join(dir, 'trend.yaml');
    writeFileSync(file, 'trendWindow: 30m\ntrendHorizon: 2h30m\ncloseWaitSockets: 5\nlistenOverflowRate: 0.5\n');
    const r = rules('--config', file, '--format', 'rules', '--out', '-');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /predict_linear\(tcpstate_orphans\{job="tcpstate"\}\[30m\], 9000\)/);
    assert.match(r.stdout, /predict_linear\(tcpstate_memory_bytes\{job="tcpstate"\}\[30m\], 9000\)/);
    assert.match(r.stdout, /\(tcpstate_port_sockets\{state="close_wait", job="tcpstate"\}\) > 5\n/);
    assert.match(r.stdout, /\[5m\]\) > 0\.5\n/);
    writeFileSync(file, 'orphansTrendMinRatio: 0.6\ncloseWaitSockets: -1\n');
    const bad = rules('--config', file, '--format', 'rules', '--out', '-');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /closeWaitSockets/);
    writeFileSync(file, 'orphansTrendMinRatio: 0.6\n');
    const never = rules('--config', file, '--format', 'rules', '--out', '-');
    assert.equal(never.status, 2);
    assert.match(never.stderr, /orphansTrendMinRatio \(0\.6\) is not below orphansCriticalRatio \(0\.5\)/);
  });

  it('--check passes on the committed files and fails on a stale one', () => {
    assert.equal(rules('--check').status, 0);
    const stale = join(dir, 'stale.yml');
    writeFileSync(stale, readFileSync(RULES, 'utf8').replace('> 0.25', '> 0.3'));
    const r = rules('--check', '--format', 'rules', '--out', stale);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /differs/);
  });
});

describe('settings', () => {
  it('are validated and merged over the defaults', () => {
    assert.equal(applySettings(undefined), DEFAULT_CONFIG);
    assert.equal(applySettings({ staleSeconds: 60 }).staleSeconds, 60);
    assert.throws(() => applySettings({ orphansWarningRatio: 0.6 }), SettingsError); // above critical 0.5
    assert.throws(() => applySettings({ selector: 'job=tcpstate' }), /selector: label matchers/);
    assert.throws(() => applySettings({ memoryMaxRatio: 1.5 }), /memoryMaxRatio/);
    assert.throws(() => applySettings([1]), SettingsError);
  });

  it('jobOf reads an exact job matcher only', () => {
    assert.equal(jobOf('job="tcpstate"'), 'tcpstate');
    assert.equal(jobOf('env="x", job = "a"'), 'a');
    assert.equal(jobOf('job=~"tcp.*"'), undefined);
    assert.equal(jobOf('myjob="x"'), undefined);
  });
});

describe('prometheus-operator objects', () => {
  it('the committed PrometheusRule and ServiceMonitor are rendered from prometheus/config.ts', () => {
    assert.equal(readFileSync(`${ROOT}deploy/kubernetes/base/prometheusrule.yaml`, 'utf8'), renderPrometheusRuleYaml(DEFAULT_CONFIG));
    assert.equal(readFileSync(`${ROOT}deploy/kubernetes/base/servicemonitor.yaml`, 'utf8'), renderServiceMonitorYaml(DEFAULT_CONFIG));
  });

  it('the PrometheusRule carries exactly the rule file\'s groups', () => {
    const pr = parse(readFileSync(`${ROOT}deploy/kubernetes/base/prometheusrule.yaml`, 'utf8')) as { spec: unknown };
    assert.deepEqual(pr.spec, parse(readFileSync(RULES, 'utf8')));
  });

  it('the ServiceMonitor gives targets the job the rules select on', () => {
    const sm = parse(readFileSync(`${ROOT}deploy/kubernetes/base/servicemonitor.yaml`, 'utf8')) as {
      spec: { endpoints: Array<{ relabelings: Array<{ targetLabel: string; replacement?: string }> }> };
    };
    const job = sm.spec.endpoints[0]!.relabelings.find((r) => r.targetLabel === 'job');
    assert.equal(`job="${job?.replacement}"`, DEFAULT_CONFIG.selector);
  });
});
