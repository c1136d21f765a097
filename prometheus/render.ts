// `npm run rules`: renders the Prometheus rule file and the prometheus-operator objects from
// prometheus/config.ts, with the user's settings (a JSON/YAML file and flags) laid over it.
// Without options it rewrites the three committed files; `--check` compares instead of writing.

import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_CONFIG, type RulesConfig } from './config.ts';
import { renderPrometheusRuleYaml, renderServiceMonitorYaml } from './operator.ts';
import { renderRulesYaml } from './rules.ts';
import { SettingsError, applySettings, parseSettingsText } from './settings.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FORMATS = {
  rules: { out: 'prometheus/tcpstate.rules.yml', render: (c: RulesConfig) => renderRulesYaml(c) },
  prometheusrule: { out: 'deploy/kubernetes/base/prometheusrule.yaml', render: (c: RulesConfig) => renderPrometheusRuleYaml(c) },
  servicemonitor: { out: 'deploy/kubernetes/base/servicemonitor.yaml', render: (c: RulesConfig) => renderServiceMonitorYaml(c) },
} as const;
type Format = keyof typeof FORMATS;

interface Options {
  config?: string;
  selector?: string;
  runbookUrl?: string;
  format?: Format;
  out?: string;
  check?: boolean;
}

function program(): Command {
  return new Command('npm run rules --')
    .description(
      'Render tcpstate-exporter\'s alert and recording rules, the prometheus-operator PrometheusRule and ' +
        'ServiceMonitor from prometheus/config.ts, with your settings laid over the defaults. ' +
        'Without options, rewrites prometheus/tcpstate.rules.yml and deploy/kubernetes/base/{prometheusrule,servicemonitor}.yaml.',
    )
    .option('--config <file>', 'JSON or YAML settings: any field of RulesConfig (prometheus/config.ts), e.g. selector, runbookUrl, finWait1Bytes')
    .option('--selector <matchers>', 'label matchers selecting the exporter\'s targets (overrides the file), e.g. \'job="tcpstate"\'')
    .option('--runbook-url <url>', 'absolute URL of your copy of docs/runbook.md (overrides the file)')
    .addOption(new Option('--format <format>', 'render only this one').choices(Object.keys(FORMATS)))
    .option('--out <file>', 'where to write the one --format (- for stdout); default: its committed path')
    .option('--check', 'write nothing; exit 1 when a target file differs from what would be written')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

function main(argv: string[]): number {
  const cmd = program();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = cmd.opts<Options>();
  if (o.out !== undefined && o.format === undefined) {
    process.stderr.write('--out needs --format: it names where the one rendered format goes\n');
    return 2;
  }
  let config: RulesConfig;
  try {
    config = DEFAULT_CONFIG;
    if (o.config !== undefined) {
      let text: string;
      try {
        text = readFileSync(o.config, 'utf8');
      } catch (e) {
        throw new SettingsError(`--config ${o.config}: ${(e as Error).message}`);
      }
      config = applySettings(parseSettingsText(text, o.config), config, o.config);
    }
    const flags: Record<string, string> = {};
    if (o.selector !== undefined) flags['selector'] = o.selector;
    if (o.runbookUrl !== undefined) flags['runbookUrl'] = o.runbookUrl;
    config = applySettings(flags, config, 'flags');
  } catch (e) {
    if (e instanceof SettingsError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }

  const formats: Format[] = o.format === undefined ? (Object.keys(FORMATS) as Format[]) : [o.format];
  let differs = 0;
  for (const f of formats) {
    const text = FORMATS[f].render(config);
    const out = o.out ?? `${ROOT}${FORMATS[f].out}`;
    if (out === '-') {
      process.stdout.write(text);
      continue;
    }
    const shown = relative(process.cwd(), out) || out;
    if (o.check === true) {
      let old = '';
      try {
        old = readFileSync(out, 'utf8');
      } catch {
        // missing: differs
      }
      if (old !== text) {
        differs++;
        process.stderr.write(`${shown}: differs from the rendering (run npm run rules)\n`);
      }
      continue;
    }
    writeFileSync(out, text);
    process.stdout.write(`wrote ${shown}\n`);
  }
  return differs > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
