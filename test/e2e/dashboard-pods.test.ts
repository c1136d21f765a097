// The dashboard's Pod variable and its namespace-to-pod join (kube-state-metrics' kube_pod_info by
// pod UID), evaluated by a real Prometheus (Debian's package) over a TSDB backfilled with
// `promtool tsdb create-blocks-from openmetrics`: series shaped as tcpstate-exporter exports them
// with --netns=all on two Kubernetes nodes (target labels namespace/pod of the exporter's own pod, as
// a ServiceMonitor adds them) and with --netns=own on a third host, and kube_pod_info as
// kube-state-metrics exports it, present only in the second half of the data. Queried through the
// code that renders the dashboard (demo/render-dashboard.ts): with kube-state-metrics the Pod
// variable lists namespace/pod and the table names each pod; without it the variable is empty and
// every panel still shows its namespaces; a chosen pod leaves the other pods' namespaces out, of the
// panels and of the Network namespace variable (evaluated with the Pod variable substituted).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Dashboard } from '../../demo/dashboard-html.ts';
import { allValues, fetchPanels, variableOptions } from '../../demo/render-dashboard.ts';
import { DEFAULT_CONFIG } from '../../prometheus/config.ts';
import { ROOT } from '../helpers/daemon.ts';
import { startPrometheus, type Prometheus } from '../helpers/prometheus.ts';

const PROM_PORT = 19600 + (process.pid % 300);
const DASH = JSON.parse(readFileSync(join(ROOT, 'grafana', 'dashboards', 'tcpstate-overview.json'), 'utf8')) as Dashboard;

const UID = (n: number) => `0b7632a2-a56e-4278-987a-00000000000${n}`;
/** The exporter's own pod, as a ServiceMonitor labels what it scrapes: the join must not take these for the pods read. */
const TARGET = (node: string) => `job="tcpstate",instance="${node}",namespace="monitoring",pod="tcpstate-exporter-${node}"`;

interface Ns {
  target: string;
  netns?: string;
  /** tcpstate_netns_info's labels past netns (absent: no info series, as for "other" and --netns=own). */
  info?: { name: string; pid: string; comm: string; podUid: string };
  bytes: number;
  sockets: number;
}

// n1: the host namespace, two pods, an `ip netns` namespace and "other"; n2: a pod whose namespace
// has the same inode as one on n1 (inodes are per host); n3: --netns=own, no netns label at all.
const NAMESPACES: Ns[] = [
  { target: TARGET('n1'), netns: '1', info: { name: '', pid: '4242', comm: 'tcpstate-export', podUid: '' }, bytes: 0, sockets: 0 },
  { target: TARGET('n1'), netns: '11', info: { name: '', pid: '100', comm: 'pause', podUid: UID(1) }, bytes: 100, sockets: 2 },
  { target: TARGET('n1'), netns: '12', info: { name: '', pid: '200', comm: 'pause', podUid: UID(2) }, bytes: 5007, sockets: 3 },
  { target: TARGET('n1'), netns: '13', info: { name: 'lab', pid: '300', comm: 'python3', podUid: '' }, bytes: 50, sockets: 1 },
  { target: TARGET('n1'), netns: 'other', bytes: 3, sockets: 1 },
  { target: TARGET('n2'), netns: '1', info: { name: '', pid: '17', comm: 'tcpstate-export', podUid: '' }, bytes: 0, sockets: 0 },
  { target: TARGET('n2'), netns: '11', info: { name: '', pid: '400', comm: 'pause', podUid: UID(3) }, bytes: 42, sockets: 4 },
  { target: 'job="tcpstate",instance="n3"', bytes: 900, sockets: 5 },
];
const PODS = [
  { uid: UID(1), namespace: 'shop', pod: 'p-a', node: 'n1' },
  { uid: UID(2), namespace: 'shop', pod: 'p-b', node: 'n1' },
  { uid: UID(3), namespace: 'batch', pod: 'p-c', node: 'n2' },
  // On a node this Prometheus has no exporter for: in no variable, no row.
  { uid: UID(4), namespace: 'shop', pod: 'p-d', node: 'n9' },
];

const STEP = 30;
const SPAN = 40 * 60;
/** Data from T0 for SPAN seconds; kube-state-metrics from T0 + 20 min. */
const T0 = Math.floor(Date.now() / 1000 / 60) * 60 - 3 * 3600;
const KSM_FROM = T0 + 20 * 60;
const WITHOUT_KSM = T0 + 10 * 60;
const WITH_KSM = T0 + 35 * 60;

function openMetrics(): string {
  const out: string[] = [];
  const family = (name: string, series: Array<[string, number, number]>) => {
    out.push(`# TYPE ${name} gauge`);
    for (const [labels, value, from] of series) for (let t = from; t <= T0 + SPAN; t += STEP) out.push(`${name}{${labels}} ${value} ${t}`);
  };
  const table = (n: Ns, more: string) => `${n.target},state="fin_wait1",family="ipv4"${n.netns !== undefined ? `,netns="${n.netns}"` : ''}${more}`;
  family('tcpstate_send_queue_bytes', NAMESPACES.map((n) => [table(n, ''), n.bytes, T0]));
  family('tcpstate_sockets', NAMESPACES.map((n) => [table(n, ''), n.sockets, T0]));
  family(
    'tcpstate_netns_info',
    NAMESPACES.filter((n) => n.info !== undefined).map((n) => [
      `${n.target},netns="${n.netns}",name="${n.info!.name}",pid="${n.info!.pid}",comm="${n.info!.comm}",container_id="",pod_uid="${n.info!.podUid}"`,
      1,
      T0,
    ]),
  );
  family(
    'kube_pod_info',
    PODS.map((p) => [
      `job="kube-state-metrics",instance="ksm:8080",namespace="${p.namespace}",pod="${p.pod}",uid="${p.uid}",node="${p.node}",host_ip="10.0.0.1",pod_ip="10.1.0.${p.pod.length}",created_by_kind="ReplicaSet",created_by_name="${p.pod}-rs",priority_class="",host_network="false"`,
      1,
      KSM_FROM,
    ]),
  );
  out.push('# EOF', '');
  return out.join('\n');
}

const panel = (title: string) => {
  const p = DASH.panels.find((x) => x.title === title);
  assert.ok(p, title);
  return p;
};
const TABLE = 'Which network namespaces hold FIN-WAIT-1 bytes';
const NOW = 'FIN-WAIT-1 now';

describe('dashboard: Pod variable and the namespace-to-pod join on a real Prometheus', { timeout: 120_000 }, () => {
  let prom: Prometheus;
  const base = () => `http://127.0.0.1:${prom.port}`;
  const vars = (chosen: Record<string, string> = {}) => ({ ...allValues(DASH, '1m'), ...chosen });
  /** Rows of the table panel at time t: "instance/netns" → its labels and value. */
  const rows = async (t: number, chosen?: Record<string, string>) => {
    const [data] = await fetchPanels({ ...DASH, panels: [panel(TABLE)] }, { prometheus: base(), range: 600, rateInterval: '1m' }, t, vars(chosen));
    assert.deepEqual(data!.errors, []);
    const out = new Map<string, Record<string, string | number>>();
    for (const s of data!.series) {
      const key = `${s.labels.instance}/${s.labels.netns ?? '-'}`;
      assert.ok(!out.has(key), `${key} twice`);
      const rest: Record<string, string | number> = Object.fromEntries(Object.entries(s.labels).filter(([k]) => k !== 'instance' && k !== 'netns'));
      out.set(key, { ...rest, value: s.points[0]![1] });
    }
    return out;
  };
  /** "FIN-WAIT-1 now": sockets and bytes per instance (refIds A, B). */
  const now = async (t: number, chosen?: Record<string, string>) => {
    const [data] = await fetchPanels({ ...DASH, panels: [panel(NOW)] }, { prometheus: base(), range: 600, rateInterval: '1m' }, t, vars(chosen));
    assert.deepEqual(data!.errors, []);
    return Object.fromEntries(data!.series.map((s) => [`${s.refId} ${s.labels.instance}`, s.points[0]![1]]));
  };
  const podVariable = (t: number) => {
    const v = DASH.templating?.list.find((x) => x.name === 'pod');
    assert.ok(v, 'the dashboard has a pod variable');
    return variableOptions(base(), v, vars(), t);
  };

  const netnsVariable = (t: number, chosen?: Record<string, string>) => {
    const v = DASH.templating?.list.find((x) => x.name === 'netns');
    assert.ok(v, 'the dashboard has a netns variable');
    return variableOptions(base(), v, vars(chosen), t).then((o) => o.map((x) => x.value).sort());
  };

  before(async () => {
    prom = await startPrometheus({ port: PROM_PORT, rules: DEFAULT_CONFIG, scrapeConfigs: [], openMetrics: openMetrics(), tmpPrefix: 'tcpstate-pods-' });
  });
  after(async () => {
    await prom?.stop();
  });

  it('with kube-state-metrics: the Pod variable lists namespace/pod (value: the pod UID) of the pods read, sorted', async () => {
    assert.deepEqual(await podVariable(WITH_KSM), [
      { text: 'batch/p-c', value: UID(3) },
      { text: 'shop/p-a', value: UID(1) },
      { text: 'shop/p-b', value: UID(2) },
    ]);
    // Narrowed by the Instance variable as every panel is.
    const v = DASH.templating!.list.find((x) => x.name === 'pod')!;
    assert.deepEqual(await variableOptions(base(), v, vars({ instance: 'n2' }), WITH_KSM), [{ text: 'batch/p-c', value: UID(3) }]);
  });

  it('with kube-state-metrics: the table names each pod\'s namespace and pod; the other rows as before', async () => {
    const r = await rows(WITH_KSM);
    assert.deepEqual(Object.fromEntries(r), {
      // Prometheus drops empty labels (name="", pod_uid="") from results.
      'n1/12': { comm: 'pause', pid: '200', pod_uid: UID(2), namespace: 'shop', pod: 'p-b', value: 5007 },
      'n1/11': { comm: 'pause', pid: '100', pod_uid: UID(1), namespace: 'shop', pod: 'p-a', value: 100 },
      'n2/11': { comm: 'pause', pid: '400', pod_uid: UID(3), namespace: 'batch', pod: 'p-c', value: 42 },
      'n1/13': { name: 'lab', comm: 'python3', pid: '300', value: 50 },
      'n1/1': { comm: 'tcpstate-export', pid: '4242', value: 0 },
      'n2/1': { comm: 'tcpstate-export', pid: '17', value: 0 },
      'n1/other': { value: 3 },
      'n3/-': { value: 900 },
    });
  });

  it('without kube-state-metrics: the Pod variable is empty, the table shows every namespace with its pod UID, the panels their sums', async () => {
    assert.deepEqual(await podVariable(WITHOUT_KSM), []);
    const r = await rows(WITHOUT_KSM);
    assert.equal(r.size, 8);
    assert.deepEqual(r.get('n1/12'), { comm: 'pause', pid: '200', pod_uid: UID(2), value: 5007 });
    assert.deepEqual(r.get('n3/-'), { value: 900 });
    assert.deepEqual(await now(WITHOUT_KSM), { 'A n1': 7, 'A n2': 4, 'A n3': 5, 'B n1': 5160, 'B n2': 42, 'B n3': 900 });
    assert.deepEqual(await now(WITH_KSM), await now(WITHOUT_KSM));
  });

  it('a chosen pod leaves out the namespaces of every other pod and the host\'s; "other" and --netns=own hosts stay', async () => {
    const r = await rows(WITH_KSM, { pod: UID(2) });
    assert.deepEqual([...r.keys()].sort(), ['n1/12', 'n1/other', 'n3/-']);
    assert.equal(r.get('n1/12')!.pod, 'p-b');
    assert.deepEqual(await now(WITH_KSM, { pod: UID(2) }), { 'A n1': 4, 'A n3': 5, 'B n1': 5010, 'B n3': 900 });
    // Two pods (Grafana's multi-value regex), on two nodes whose namespaces share inode 11.
    assert.deepEqual(await now(WITH_KSM, { pod: `(${UID(1)}|${UID(3)})` }), { 'A n1': 3, 'A n2': 4, 'A n3': 5, 'B n1': 103, 'B n2': 42, 'B n3': 900 });
  });

  it('the Network namespace variable follows the Pod variable: a chosen pod leaves only its namespaces; All keeps every one', async () => {
    // All pods (and without kube-state-metrics, where the Pod variable has no options and All is its
    // only value): every namespace with series of its own, on every node read.
    assert.deepEqual(await netnsVariable(WITH_KSM), ['1', '11', '12', '13']);
    assert.deepEqual(await netnsVariable(WITHOUT_KSM), ['1', '11', '12', '13']);
    assert.deepEqual(await netnsVariable(WITH_KSM, { instance: 'n2' }), ['1', '11']);
    // --netns=own only: no namespace to offer; All still matches its unlabelled series.
    assert.deepEqual(await netnsVariable(WITH_KSM, { instance: 'n3' }), []);
    assert.deepEqual(await now(WITH_KSM, { instance: 'n3' }), { 'A n3': 5, 'B n3': 900 });
    // One pod: its namespace only (not the host's, the other pods', the ip netns one).
    assert.deepEqual(await netnsVariable(WITH_KSM, { pod: UID(2) }), ['12']);
    assert.deepEqual(await netnsVariable(WITH_KSM, { pod: UID(3) }), ['11']);
    // Two pods on two nodes whose namespaces share inode 11, and a pod with one on n1 and the other on n2.
    assert.deepEqual(await netnsVariable(WITH_KSM, { pod: `(${UID(1)}|${UID(3)})` }), ['11']);
    assert.deepEqual(await netnsVariable(WITH_KSM, { pod: `(${UID(2)}|${UID(3)})` }), ['11', '12']);
    // The pod and one of the namespaces it offers, as Grafana then substitutes both, in the panels.
    const r = await rows(WITH_KSM, { pod: UID(2), netns: '12' });
    assert.deepEqual([...r.keys()], ['n1/12']);
    assert.equal(r.get('n1/12')!.value, 5007);
  });

  it('the Pod variable comes before the Network namespace variable, which it narrows (Grafana resolves chained variables in order)', () => {
    const names = DASH.templating!.list.map((v) => v.name);
    for (const v of DASH.templating!.list) {
      const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
      for (const m of q.matchAll(/\$(\w+)/g)) {
        if (!names.includes(m[1]!)) continue;
        assert.ok(names.indexOf(m[1]!) < names.indexOf(v.name), `${v.name} uses $${m[1]}, defined after it`);
      }
    }
    const netns = DASH.templating!.list.find((x) => x.name === 'netns')!;
    assert.match(typeof netns.query === 'string' ? netns.query : (netns.query?.query ?? ''), /\$pod/);
  });
});
