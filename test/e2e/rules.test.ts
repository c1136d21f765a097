// Alert and recording rules: up to date with prometheus/config.ts, valid for promtool, every alert
// unit-tested (silent, pending, firing) and documented in docs/runbook.md.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { DEFAULT_CONFIG, DEFAULT_RUNBOOK_URL } from '../../prometheus/config.ts';
import { ALERTS, renderRules, renderRulesYaml } from '../../prometheus/rules.ts';
import { ROOT } from '../helpers/daemon.ts';

const run = promisify(execFile);
const RULES = `${ROOT}prometheus/tcpstate.rules.yml`;

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: ROOT });
    return stdout + stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  }
}

describe('prometheus rules', () => {
  it('the committed rule file is rendered from prometheus/config.ts (npm run rules)', () => {
    assert.equal(readFileSync(RULES, 'utf8'), renderRulesYaml(DEFAULT_CONFIG));
  });

  it('promtool check rules', async () => {
    assert.match(await promtool('check', 'rules', RULES), /SUCCESS: 25 rules found/);
  });

  it('promtool test rules', async () => {
    assert.match(await promtool('test', 'rules', 'prometheus/tests/alerts.test.yml'), /SUCCESS/);
  });

  it('promtool test rules: the README\'s namespace-to-pod join, and the rules summing over netns', async () => {
    assert.match(await promtool('test', 'rules', 'prometheus/tests/netns-join.test.yml'), /SUCCESS/);
  });

  it('every alert has for, severity, summary, description with a number, runbook_url', () => {
    const alerts = renderRules(DEFAULT_CONFIG).groups.flatMap((g) => g.rules).filter((r) => 'alert' in r);
    assert.deepEqual(alerts.map((a) => a.alert), [...ALERTS]);
    for (const a of alerts) {
      assert.match(a.for, /^\d+[smh]$/, a.alert);
      assert.ok(['warning', 'critical'].includes(a.labels.severity), a.alert);
      assert.ok(a.annotations.summary.length > 10, a.alert);
      assert.match(a.annotations.description, /\{\{ \$labels\.instance \}\}/, a.alert);
      assert.equal(a.annotations.runbook_url, `${DEFAULT_RUNBOOK_URL}#${a.alert.toLowerCase()}`);
      assert.ok(URL.canParse(a.annotations.runbook_url), `${a.alert}: runbook_url is absolute`);
    }
  });

  it('every alert is unit-tested silent and firing', () => {
    const t = parse(readFileSync(`${ROOT}prometheus/tests/alerts.test.yml`, 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const cases = t.tests.flatMap((x) => x.alert_rule_test);
    for (const name of ALERTS) {
      const mine = cases.filter((c) => c.alertname === name);
      assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${name}: no silent case`);
      assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${name}: no firing case`);
    }
  });

  it('every alert has a runbook section', () => {
    const runbook = readFileSync(`${ROOT}docs/runbook.md`, 'utf8');
    for (const name of ALERTS) assert.match(runbook, new RegExp(`^## ${name}$`, 'm'), name);
  });
});
