// prometheus-operator objects made from the same RulesConfig as the rule file: a PrometheusRule
// carrying exactly renderRules()' groups, and a ServiceMonitor that gives the targets the job label
// the rules select on. Written to deploy/kubernetes/base/ by `npm run rules`.

import { stringify } from 'yaml';
import type { RulesConfig } from './config.ts';
import { renderRules, type RuleFile } from './rules.ts';
import { jobOf } from './settings.ts';

export const APP = 'tcpstate-exporter';
const LABELS = { 'app.kubernetes.io/name': APP } as const;

export interface PrometheusRuleObject {
  apiVersion: 'monitoring.coreos.com/v1';
  kind: 'PrometheusRule';
  metadata: { name: string; labels: Record<string, string> };
  spec: RuleFile;
}

export function renderPrometheusRule(c: RulesConfig): PrometheusRuleObject {
  return { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: APP, labels: { ...LABELS } }, spec: renderRules(c) };
}

export interface ServiceMonitorOptions {
  /** Scrape interval: keep it equal to the exporter's --poll.interval (a faster scrape sees the same snapshot). */
  interval: string;
}

export function renderServiceMonitor(c: RulesConfig, o: ServiceMonitorOptions = { interval: '15s' }) {
  const job = jobOf(c.selector);
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: APP, labels: { ...LABELS } },
    spec: {
      selector: { matchLabels: { ...LABELS } },
      endpoints: [
        {
          port: 'metrics',
          path: '/metrics',
          interval: o.interval,
          scrapeTimeout: '10s',
          relabelings: [
            // The operator names the job after the Service; the rules select on the configured job.
            ...(job === undefined ? [] : [{ action: 'replace', targetLabel: 'job', replacement: job }]),
            // With hostNetwork the instance is already node-IP:port; the node name helps humans.
            { action: 'replace', sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' },
          ],
        },
      ],
    },
  };
}

const HEADER = '# Rendered from prometheus/config.ts by `npm run rules`; edit the config or your settings file, not this file.\n';

export function renderPrometheusRuleYaml(c: RulesConfig): string {
  return HEADER + stringify(renderPrometheusRule(c), { lineWidth: 0 });
}
export function renderServiceMonitorYaml(c: RulesConfig, o?: ServiceMonitorOptions): string {
  return HEADER + stringify(renderServiceMonitor(c, o), { lineWidth: 0 });
}
