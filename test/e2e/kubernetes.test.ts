// deploy/kubernetes: the kustomize base and the example overlay are rendered with `kubectl
// kustomize` and every object is validated against its schema: the Kubernetes API's
// (kubernetes-models) and prometheus-operator's CRDs (@kubernetes-models/prometheus-operator),
// then type-checked by tsc against the same models' types with excess-property checks, which
// catches the misspelled and unknown fields the JSON schemas let through (the API server's strict
// field validation would refuse them). Then what the issue asks of the deployment, object by object.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1';
import { Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse, parseAllDocuments, stringify } from 'yaml';
import bcrypt from 'bcryptjs';
import { DEFAULT_CONFIG } from '../../prometheus/config.ts';
import { parseWebConfig } from '../../src/http/web-config.ts';
import { jobOf } from '../../prometheus/settings.ts';
import { ROOT } from '../helpers/daemon.ts';

const BASE = `${ROOT}deploy/kubernetes/base`;
const OVERLAY = `${ROOT}deploy/kubernetes/overlays/example`;
const NETNS_OVERLAY = `${ROOT}deploy/kubernetes/overlays/netns`;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** kind → the model that validates it, and the import tsc checks its fields against. */
const MODELS: Record<string, { validate: (o: K8sObject) => void; type: string; from: string }> = {
  Namespace: { validate: (o) => new Namespace(o).validate(), type: 'INamespace', from: 'kubernetes-models/v1/Namespace' },
  ServiceAccount: { validate: (o) => new ServiceAccount(o).validate(), type: 'IServiceAccount', from: 'kubernetes-models/v1/ServiceAccount' },
  Service: { validate: (o) => new Service(o).validate(), type: 'IService', from: 'kubernetes-models/v1/Service' },
  Secret: { validate: (o) => new Secret(o).validate(), type: 'ISecret', from: 'kubernetes-models/v1/Secret' },
  DaemonSet: { validate: (o) => new DaemonSet(o).validate(), type: 'IDaemonSet', from: 'kubernetes-models/apps/v1/DaemonSet' },
  PriorityClass: { validate: (o) => new PriorityClass(o).validate(), type: 'IPriorityClass', from: 'kubernetes-models/scheduling.k8s.io/v1/PriorityClass' },
  ServiceMonitor: {
    validate: (o) => new ServiceMonitor(o as never).validate(),
    type: 'IServiceMonitor',
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
  },
  PrometheusRule: {
    validate: (o) => new PrometheusRule(o as never).validate(),
    type: 'IPrometheusRule',
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
  },
};
const CLUSTER_SCOPED = new Set(['Namespace', 'PriorityClass']);

function kustomize(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const objs = parseAllDocuments(out).map((d) => d.toJSON() as K8sObject);
  // Newer kustomize wraps a Secret's base64 at 76 columns; the API server's decoder (Go's
  // encoding/base64) skips the line breaks, the schema's "byte" format does not.
  for (const o of objs) {
    const data = o['data'];
    if (o.kind === 'Secret' && data !== null && typeof data === 'object') {
      for (const [k, v] of Object.entries(data as Record<string, string>)) (data as Record<string, string>)[k] = v.replace(/\n/g, '');
    }
  }
  return objs;
}

const one = (objs: K8sObject[], kind: string, name = 'tcpstate-exporter'): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} rendered`);
  return o;
};

describe('Kubernetes manifests', () => {
  let base: K8sObject[];
  let overlay: K8sObject[];
  let netnsOverlay: K8sObject[];
  // Under the checkout (.tmp/ is ignored by git), so that tsc resolves the models from node_modules.
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  const tmp = mkdtempSync(join(ROOT, '.tmp', `k8s-${process.pid}-`));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  before(() => {
    base = kustomize(BASE);
    overlay = kustomize(OVERLAY);
    netnsOverlay = kustomize(NETNS_OVERLAY);
  });

  it('the base lists every manifest in its folder', () => {
    const k = parse(readFileSync(`${BASE}/kustomization.yaml`, 'utf8')) as { resources: string[] };
    const files = readdirSync(BASE).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    assert.deepEqual([...k.resources].sort(), files.sort());
  });

  it('every rendered object is valid against the Kubernetes and prometheus-operator schemas', () => {
    for (const o of [...base, ...overlay, ...netnsOverlay]) {
      const model = MODELS[o.kind];
      assert.ok(model, `no validator for ${o.kind}`);
      assert.doesNotThrow(() => model.validate(o), `${o.kind}/${o.metadata.name}`);
    }
    assert.deepEqual(
      [...new Set(base.map((o) => o.kind))].sort(),
      ['DaemonSet', 'Namespace', 'PriorityClass', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor'],
    );
  });

  it('the validators reject what the API server would: a wrong type, a bad duration', () => {
    const ds = structuredClone(one(base, 'DaemonSet')) as unknown as { spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } };
    ds.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'metrics';
    assert.throws(() => MODELS['DaemonSet']!.validate(ds as unknown as K8sObject), /containerPort must be integer/);
    const sm = structuredClone(one(base, 'ServiceMonitor')) as unknown as { spec: { endpoints: Array<{ interval: string }> } };
    sm.spec.endpoints[0]!.interval = '15 seconds';
    assert.throws(() => MODELS['ServiceMonitor']!.validate(sm as unknown as K8sObject), /interval must match pattern/);
  });

  it('no unknown or misspelled field anywhere (tsc excess-property checks against the models\' types)', () => {
    const objs = [...base, ...overlay, ...netnsOverlay];
    const check = (list: K8sObject[]) => {
      const imports = [...new Set(list.map((o) => o.kind))].map((k) => `import type { ${MODELS[k]!.type} } from '${MODELS[k]!.from}';`);
      const decls = list.map((o, i) => `export const o${i}: ${MODELS[o.kind]!.type} = ${JSON.stringify(o)};`);
      const file = join(tmp, 'manifests.ts');
      writeFileSync(file, [...imports, ...decls, ''].join('\n'));
      try {
        execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', file], {
          cwd: ROOT,
          encoding: 'utf8',
        });
        return '';
      } catch (e) {
        return (e as { stdout?: string }).stdout ?? String(e);
      }
    };
    assert.equal(check(objs), '');
    // The control: a misspelled probe field is caught.
    const bad = structuredClone(one(base, 'DaemonSet')) as unknown as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    bad.spec.template.spec.containers[0]!['readinessProbes'] = {};
    assert.match(check([bad as unknown as K8sObject]), /readinessProbes/);
  });

  it('its own namespace, and every namespaced object in it (the overlay\'s generated Secrets too)', () => {
    for (const objs of [base, overlay, netnsOverlay]) {
      const ns = one(objs, 'Namespace');
      for (const o of objs) {
        if (CLUSTER_SCOPED.has(o.kind)) continue;
        assert.equal(o.metadata.namespace, ns.metadata.name, `${o.kind}/${o.metadata.name}`);
      }
    }
  });

  it('DaemonSet: every node, a priority class, no token, RuntimeDefault seccomp, non-root, read-only, probes, node IP', () => {
    const ds = one(base, 'DaemonSet') as unknown as {
      spec: { template: { spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> } } };
    };
    const pod = ds.spec.template.spec;
    assert.deepEqual(pod['tolerations'], [{ operator: 'Exists' }]);
    assert.equal(pod['priorityClassName'], one(base, 'PriorityClass').metadata.name);
    assert.equal(pod['automountServiceAccountToken'], false);
    assert.equal(one(base, 'ServiceAccount')['automountServiceAccountToken'], false);
    assert.equal(pod['hostNetwork'], true);
    assert.deepEqual((pod['securityContext'] as Record<string, unknown>)['seccompProfile'], { type: 'RuntimeDefault' });
    assert.equal((pod['securityContext'] as Record<string, unknown>)['runAsNonRoot'], true);
    const c = pod.containers[0]!;
    assert.deepEqual(c['securityContext'], { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    assert.equal((c['readinessProbe'] as { httpGet: { path: string } }).httpGet.path, '/readyz');
    assert.equal((c['livenessProbe'] as { httpGet: { path: string } }).httpGet.path, '/healthz');
    const env = c['env'] as Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
    assert.equal(env.find((e) => e.name === 'HOST_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.hostIP');
    assert.equal(env.find((e) => e.name === 'TCPSTATE_WEB_LISTEN_ADDRESS')?.value, '$(HOST_IP):9812');
    const res = c['resources'] as { requests: { memory: string; cpu: string }; limits: { memory: string } };
    assert.ok(res.requests.memory && res.requests.cpu && res.limits.memory);
  });

  it('Service and ServiceMonitor reach the pods\' metrics port; the PrometheusRule is the rule file', () => {
    const ds = one(base, 'DaemonSet') as unknown as { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ ports: Array<{ name: string }> }> } } } };
    const svc = one(base, 'Service') as unknown as { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> } };
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(ds.spec.template.metadata.labels[k], v);
    assert.equal(svc.spec.ports[0]!.targetPort, ds.spec.template.spec.containers[0]!.ports[0]!.name);
    const sm = one(base, 'ServiceMonitor') as unknown as { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> } };
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(one(base, 'Service').metadata.labels?.[k], v);
    assert.equal(sm.spec.endpoints[0]!.port, svc.spec.ports[0]!.name);
    const pr = one(base, 'PrometheusRule') as unknown as { spec: unknown };
    assert.deepEqual(pr.spec, parse(readFileSync(`${ROOT}prometheus/tcpstate.rules.yml`, 'utf8')));
  });

  it('overlay: the web config comes from a Secret, mounted read-only; Prometheus scrapes with the password', () => {
    const ds = one(overlay, 'DaemonSet') as unknown as {
      spec: { template: { spec: { volumes: Array<{ name: string; secret?: { secretName: string } }>; containers: Array<{ env: Array<{ name: string; value?: string }>; volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }> } } };
    };
    const pod = ds.spec.template.spec;
    const vol = pod.volumes.find((v) => v.secret !== undefined)!;
    const secret = one(overlay, 'Secret', vol.secret!.secretName) as unknown as { data: Record<string, string> };
    const mount = pod.containers[0]!.volumeMounts.find((m) => m.name === vol.name)!;
    assert.equal(mount.readOnly, true);
    const file = pod.containers[0]!.env.find((e) => e.name === 'TCPSTATE_WEB_CONFIG_FILE')!.value!;
    assert.ok(file.startsWith(`${mount.mountPath}/`));
    const webConfigText = Buffer.from(secret.data[file.slice(mount.mountPath.length + 1)]!, 'base64').toString();
    const webConfig = parse(webConfigText) as { basic_auth_users: Record<string, string> };
    // The exporter's own --web.config.file parser accepts it.
    assert.doesNotThrow(() => parseWebConfig(webConfigText, mount.mountPath));
    const sm = one(overlay, 'ServiceMonitor') as unknown as { spec: { endpoints: Array<{ basicAuth: { username: { name: string; key: string }; password: { name: string; key: string } } }> } };
    const auth = sm.spec.endpoints[0]!.basicAuth;
    const creds = one(overlay, 'Secret', auth.username.name) as unknown as { data: Record<string, string> };
    const user = Buffer.from(creds.data[auth.username.key]!, 'base64').toString();
    assert.match(webConfig.basic_auth_users[user] ?? '', /^\$2[aby]\$\d\d\$/, 'the scrape user has a bcrypt hash in the web config');
    const password = Buffer.from(creds.data[auth.password.key]!, 'base64').toString();
    assert.ok(bcrypt.compareSync(password, webConfig.basic_auth_users[user]!), 'the example password matches the example hash');
    // The deprecated base path is gone from the overlay's image: it names a registry.
    assert.match(JSON.stringify(ds), /registry\.example\.com\/observability\/tcpstate-exporter:0\.1\.0/);
  });

  it('the kubernetes_sd_configs snippet finds the Service\'s endpoints and names the job the rules select', () => {
    const file = `${ROOT}deploy/kubernetes/prometheus-scrape-config.yml`;
    const cfg = parse(readFileSync(file, 'utf8')) as {
      scrape_configs: Array<{ job_name: string; kubernetes_sd_configs?: Array<{ role: string; namespaces: { names: string[] } }>; relabel_configs: Array<{ regex?: string; action?: string }> } & Record<string, unknown>>;
    };
    const sc = cfg.scrape_configs[0]!;
    assert.equal(sc.job_name, jobOf(DEFAULT_CONFIG.selector));
    const sd = sc.kubernetes_sd_configs![0]!;
    assert.equal(sd.role, 'endpoints');
    const svc = one(base, 'Service') as unknown as { metadata: { name: string; namespace: string }; spec: { ports: Array<{ name: string }> } };
    assert.deepEqual(sd.namespaces.names, [svc.metadata.namespace]);
    assert.equal(sc.relabel_configs.find((r) => r.action === 'keep')?.regex, `${svc.metadata.name};${svc.spec.ports[0]!.name}`);
    // The rest through promtool, with a static target in place of the discovery block.
    delete sc.kubernetes_sd_configs;
    sc['static_configs'] = [{ targets: ['127.0.0.1:9812'] }];
    const copy = join(tmp, 'prometheus.yml');
    writeFileSync(copy, stringify(cfg));
    const out = execFileSync('promtool', ['check', 'config', copy], { encoding: 'utf8' });
    assert.match(out, /SUCCESS/);
  });
  it('netns overlay (opt-in --netns=all): hostPID, the node\'s /run/netns read-only, root with exactly SYS_ADMIN and SYS_PTRACE; nothing else differs from the base', () => {
    type Pod = Record<string, unknown> & { containers: Array<Record<string, unknown>>; volumes?: Array<Record<string, unknown>>; securityContext: Record<string, unknown> };
    const podOf = (objs: K8sObject[]) => (one(objs, 'DaemonSet') as unknown as { spec: { template: { metadata: { annotations?: Record<string, string> }; spec: Pod } } }).spec.template;
    const b = podOf(base);
    const n = podOf(netnsOverlay);
    // The base stays unprivileged.
    assert.equal(b.spec['hostPID'], undefined);
    assert.equal(b.spec.securityContext['runAsNonRoot'], true);
    // What --netns=all needs.
    assert.equal(n.spec['hostPID'], true);
    assert.equal(n.spec['hostNetwork'], true);
    assert.equal(n.spec.securityContext['runAsUser'], 0);
    assert.equal(n.spec.securityContext['runAsNonRoot'], false);
    assert.deepEqual(n.spec.securityContext['seccompProfile'], { type: 'RuntimeDefault' });
    const c = n.spec.containers[0]!;
    assert.deepEqual(c['securityContext'], {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      appArmorProfile: { type: 'Unconfined' },
      capabilities: { drop: ['ALL'], add: ['SYS_ADMIN', 'SYS_PTRACE'] },
    });
    assert.equal(n.metadata.annotations?.['container.apparmor.security.beta.kubernetes.io/tcpstate-exporter'], 'unconfined');
    const env = c['env'] as Array<{ name: string; value?: string }>;
    assert.equal(env.find((e) => e.name === 'TCPSTATE_NETNS')?.value, 'all');
    const mounts = c['volumeMounts'] as Array<{ name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }>;
    assert.deepEqual(mounts, [{ name: 'run-netns', mountPath: '/run/netns', readOnly: true, mountPropagation: 'HostToContainer' }]);
    assert.deepEqual(n.spec.volumes, [{ name: 'run-netns', hostPath: { path: '/run/netns', type: 'DirectoryOrCreate' } }]);
    // Nothing else: the pod spec without those fields is the base's.
    type Template = { metadata: { annotations?: Record<string, string> }; spec: Pod };
    const strip = (t: Template, netns: boolean) => {
      const x: Template = structuredClone(t);
      if (netns) {
        delete x.metadata.annotations;
        delete x.spec['hostPID'];
        delete x.spec.volumes;
        x.spec.securityContext = { ...x.spec.securityContext, runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 };
        const ct = x.spec.containers[0]!;
        ct['env'] = (ct['env'] as Array<{ name: string }>).filter((e) => !e.name.startsWith('TCPSTATE_NETNS'));
        delete ct['volumeMounts'];
        ct['securityContext'] = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
      }
      return x;
    };
    assert.deepEqual(strip(n, true), strip(b, false));
    // The privileges match what docs/netns.md measured.
    const doc = readFileSync(`${ROOT}docs/netns.md`, 'utf8');
    assert.match(doc, /`CAP_SYS_ADMIN` \*\*and\*\* `CAP_SYS_PTRACE`/);
  });
});
