// --netns other than own, without a kernel: the fold (pure), and a poller reading several
// namespaces through /proc/<pid>/net copies in a fixture procfs, with discovery and identity
// injected. The real-kernel side is test/kernel/netns-exporter.test.ts.

import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TableAggregator, type SocketTable } from '../../src/aggregate/table.ts';
import { buildApp } from '../../src/http/app.ts';
import { parseConfig } from '../../src/config.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { FAMILIES, type SocketRecord } from '../../src/model.ts';
import { parseNetnsFlag, type Discovery, type NetnsEntry } from '../../src/netns/discover.ts';
import { chooseKept, fold, sumTables, type NamespaceRead } from '../../src/netns/figures.ts';
import { NetnsPoller } from '../../src/netns/poll.ts';
import { Poller } from '../../src/poller/poller.ts';
import { procReaders } from '../../src/sources/proc.ts';
import { parseExposition } from '../helpers/exposition.ts';
import { silent } from '../helpers/poller.ts';
import { okReader, rec } from '../helpers/readers.ts';

function tableOf(records: SocketRecord[]): SocketTable {
  const t = new TableAggregator(FAMILIES);
  for (const r of records) t.add(r);
  return t.result();
}

const fw1 = (n: number, bytes: number) => Array.from({ length: n }, () => rec({ state: 'fin_wait1', sendQueue: bytes, inode: 0 }));
const estab = (n: number) => Array.from({ length: n }, () => rec({ state: 'established' }));

describe('netns fold (pure)', () => {
  const reads: NamespaceRead[] = [
    { inode: 1, own: true, table: tableOf(estab(1)), via: 'proc' },
    { inode: 10, own: false, table: tableOf(fw1(1, 500)), via: 'proc' }, // most bytes
    { inode: 11, own: false, table: tableOf(fw1(2, 100)), via: 'proc' }, // 200 bytes, 2 FIN-WAIT-1
    { inode: 12, own: false, table: tableOf([...fw1(1, 200), ...estab(5)]), via: 'proc' }, // 200 bytes, 1 FIN-WAIT-1
    { inode: 13, own: false, table: tableOf(estab(9)), via: 'proc' }, // no bytes, most sockets
    { inode: 14, own: false, table: tableOf(estab(3)), via: 'proc' },
  ];

  it('ranks by FIN-WAIT-1 bytes, then FIN-WAIT-1 sockets, then sockets, then inode; the host is never ranked', () => {
    assert.deepEqual([...chooseKept(reads, 3)], [10, 11, 12]);
    assert.deepEqual([...chooseKept(reads, 4)], [10, 11, 12, 13]);
    assert.deepEqual([...chooseKept(reads, 0)], []);
    // Equal on every figure: the lower inode, whatever the order read.
    const tie = [14, 15, 13].map((inode) => ({ inode, own: false, table: tableOf(estab(1)), via: 'proc' }));
    assert.deepEqual([...chooseKept(tie, 2)], [13, 14]);
  });

  it('the host first, the kept by inode, the rest summed into "other" (always there, zeros when nothing is folded)', () => {
    const { namespaces, folded } = fold(reads, 2, new Map());
    assert.deepEqual(namespaces.map((n) => n.netns), ['1', '10', '11', 'other']);
    assert.equal(folded, 3);
    const other = namespaces.at(-1)!.table.ipv4!;
    assert.equal(other.established.sockets, 5 + 9 + 3);
    assert.equal(other.fin_wait1.sockets, 1);
    assert.equal(other.fin_wait1.orphanSendQueueBytes, 200);
    const none = fold(reads, 10, new Map());
    assert.equal(none.folded, 0);
    const zero = none.namespaces.at(-1)!;
    assert.equal(zero.netns, 'other');
    assert.deepEqual(Object.keys(zero.table), ['ipv4', 'ipv6']);
    assert.equal(zero.table.ipv4!.established.sockets, 0);
  });

  it('sumTables: counts add, the longest persist timer wins, a family present anywhere is present', () => {
    const a = tableOf([rec({ state: 'established', timer: 'persist', timerSeconds: 3 })]);
    const b = tableOf([rec({ state: 'established', timer: 'persist', timerSeconds: 7 }), rec({ family: 'ipv6', state: 'listen' })]);
    const only4 = new TableAggregator(['ipv4']);
    only4.add(rec({ state: 'established' }));
    const sum = sumTables([a, b, only4.result()]);
    assert.equal(sum.ipv4!.established.sockets, 3);
    assert.equal(sum.ipv4!.established.timers.persist, 2);
    assert.equal(sum.ipv4!.established.persistMaxSeconds, 7);
    assert.equal(sum.ipv6!.listen.sockets, 1);
  });
});

describe('--netns flags', () => {
  it('default own, all, a list; --netns.max; errors name the flag', () => {
    const c = parseConfig([], {}, 'v');
    assert.deepEqual(c.netns, { mode: 'own' });
    assert.equal(c.netnsMax, 20);
    assert.deepEqual(parseConfig(['--netns', 'all', '--netns.max', '3'], {}, 'v').netns, { mode: 'all' });
    assert.equal(parseConfig(['--netns', 'all', '--netns.max', '3'], {}, 'v').netnsMax, 3);
    const l = parseConfig(['--netns=blue,4026532388'], {}, 'v').netns;
    assert.deepEqual(l, parseNetnsFlag('blue,4026532388'));
    assert.throws(() => parseConfig(['--netns', 'a,,b'], {}, 'v'), /--netns=a,,b: empty item/);
    assert.throws(() => parseConfig(['--netns', 'all,blue'], {}, 'v'), /--netns=all,blue: "all" is not an ip netns name/);
    assert.throws(() => parseConfig(['--netns.max', '-1'], {}, 'v'), /--netns.max must be a whole number from 0 to 1000/);
    assert.throws(() => parseConfig([], { TCPSTATE_NETNS: '../x' }, 'v'), /--netns=\.\.\/x.*\(set by TCPSTATE_NETNS\)/);
  });
});

describe('Poller with --netns: several namespaces through /proc/<pid>/net', () => {
  let procfs: string;
  // pid 100: the lab capture (5 FIN-WAIT-1); pid 200: the hand-made fixture; pid 300: vanished.
  before(async () => {
    procfs = await mkdtemp(join(tmpdir(), `tcpstate-netns-unit-${process.pid}-`));
    for (const [pid, from] of [
      ['100', 'test/fixtures/lab-proc/net'],
      ['200', 'test/fixtures/proc/net'],
    ] as const) {
      await mkdir(join(procfs, pid), { recursive: true });
      await cp(from, join(procfs, pid, 'net'), { recursive: true });
    }
  });
  after(async () => {
    await rm(procfs, { recursive: true, force: true });
  });

  const entry = (inode: number, pid: number | undefined, names: string[] = []): NetnsEntry => ({
    inode,
    own: false,
    names,
    ...(pid !== undefined && { pid }),
    nsPath: `/proc/${pid ?? 'self'}/ns/net`,
  });
  const own: NetnsEntry = { inode: 1, own: true, names: [], pid: 1, nsPath: '/proc/1/ns/net' };

  function netnsPoller(discovered: () => NetnsEntry[], max: number): NetnsPoller {
    return new NetnsPoller({
      selection: { mode: 'all' },
      max,
      procfs,
      source: 'proc',
      ss: { path: 'ss', timeoutMs: 1000 },
      logger: silent,
      discover: async (): Promise<Discovery> => ({ namespaces: [own, ...discovered()], unreadablePids: 2, unreadableReason: 'EACCES' }),
      describe: async (pid) => (pid === 100 ? { comm: 'python3', podUid: 'u-100', containerId: 'c'.repeat(64) } : { comm: `p${pid}` }),
    });
  }

  /** The figures one namespace's /proc files give read alone (as --netns=own would). */
  async function alone(pid: string): Promise<Map<string, number>> {
    const p = new Poller({ sources: { table: [{ name: 'proc', readers: procReaders(join(procfs, pid)) }], kernel: [] }, intervalMs: 1000, logger: silent });
    await p.poll();
    const body = await createRegistry({ view: p, version: '0', defaultMetrics: false }).metrics();
    return parseExposition(body).series;
  }

  it('every namespace its own netns series, identical to reading it alone; the host its own; unreadable counted with reasons', async () => {
    const hostRecords = [rec({ state: 'listen', localPort: 22 }), ...estab(2)];
    let list = [entry(10, 100), entry(20, 200), entry(30, 300), entry(40, undefined, ['blue'])];
    const poller = new Poller({
      sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], hostRecords), okReader('proc_tcp6', ['ipv6'], [])] }], kernel: [] },
      intervalMs: 1000,
      logger: silent,
      netns: netnsPoller(() => list, 5),
    });
    await poller.poll();
    const exposition = createRegistry({ view: poller, version: '0', defaultMetrics: false });
    const got = parseExposition(await exposition.metrics()).series;
    const [lab, fixture] = [await alone('100'), await alone('200')];
    const socketFamilies = /^tcpstate_(sockets|send_queue_bytes|recv_queue_bytes|timer_sockets|orphan_sockets|orphan_send_queue_bytes|persist_timer_max_seconds)\{/;
    let compared = 0;
    for (const [inode, fig] of [['10', lab], ['20', fixture]] as const) {
      for (const [series, v] of fig) {
        if (!socketFamilies.test(series)) continue;
        const labelled = series.replace(/\}$/, `,netns="${inode}"}`);
        assert.equal(got.get(labelled), v, labelled);
        compared++;
      }
    }
    assert.ok(compared > 300, `${compared} series compared`);
    // The lab capture's 5 FIN-WAIT-1 orphans, as its figures.json says.
    assert.equal(got.get('tcpstate_sockets{state="fin_wait1",family="ipv4",netns="10"}'), 5);
    assert.equal(got.get('tcpstate_orphan_send_queue_bytes{state="fin_wait1",family="ipv4",netns="10"}'), 133120 + 5);
    // The host: the chain's table under its own inode.
    assert.equal(got.get('tcpstate_sockets{state="established",family="ipv4",netns="1"}'), 2);
    assert.equal(got.get('tcpstate_sockets{state="listen",family="ipv4",netns="1"}'), 1);
    assert.equal(got.get('tcpstate_sockets{state="established",family="ipv4",netns="other"}'), 0);
    // Identity.
    assert.equal(got.get(`tcpstate_netns_info{netns="10",name="",pid="100",comm="python3",container_id="${'c'.repeat(64)}",pod_uid="u-100"}`), 1);
    assert.equal(got.get(`tcpstate_netns_info{netns="1",name="",pid="${process.pid}",comm="p${process.pid}",container_id="",pod_uid=""}`), 1);
    // pid 300 is gone (vanished); "blue" has no process (no_process with --source=proc).
    assert.equal(got.get('tcpstate_netns_unreadable_namespaces{reason="vanished"}'), 1);
    assert.equal(got.get('tcpstate_netns_unreadable_namespaces{reason="no_process"}'), 1);
    assert.equal(got.get('tcpstate_netns_unreadable_namespaces{reason="permission"}'), 0);
    assert.equal(got.get('tcpstate_netns_read_failures_total{reason="vanished"}'), 1);
    assert.equal(got.get('tcpstate_netns_selected_namespaces'), 5);
    assert.equal(got.get('tcpstate_netns_folded_namespaces'), 0);
    assert.equal(got.get('tcpstate_netns_unreadable_processes'), 2);
    assert.ok(![...got.keys()].some((k) => k.includes('netns="30"') || k.includes('netns="40"')), 'no series for what was not read');
    // Forensics samples say where each socket is.
    const top = poller.snapshot()!.forensics!.top.fin_wait1!.bySendQueue;
    assert.ok(top.length > 0 && top.every((s) => s.netns === '10'));

    // Next poll: 20 is gone from discovery, 300 too: their series go with them, nothing stale, no error.
    list = [entry(10, 100)];
    await poller.poll();
    const next = parseExposition(await exposition.metrics()).series;
    assert.ok(![...next.keys()].some((k) => k.includes('netns="20"')));
    assert.equal(next.get('tcpstate_netns_unreadable_namespaces{reason="vanished"}'), 0);
    assert.equal(next.get('tcpstate_netns_read_failures_total{reason="vanished"}'), 1);
    assert.equal(next.get('tcpstate_sockets{state="fin_wait1",family="ipv4",netns="10"}'), 5);
  });

  it('above --netns.max the rest fold into netns="other"; the host keeps its own', async () => {
    const poller = new Poller({
      sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], estab(1))] }], kernel: [] },
      intervalMs: 1000,
      logger: silent,
      netns: netnsPoller(() => [entry(10, 100), entry(20, 200)], 1),
    });
    await poller.poll();
    const got = parseExposition(await createRegistry({ view: poller, version: '0', defaultMetrics: false }).metrics()).series;
    const fixture = await alone('200');
    // The lab (5 FIN-WAIT-1 orphans, 133 KB) ranks first; the fixture is folded.
    assert.equal(got.get('tcpstate_sockets{state="fin_wait1",family="ipv4",netns="10"}'), 5);
    assert.ok(![...got.keys()].some((k) => k.includes('netns="20"')));
    for (const [series, v] of fixture) {
      if (!/^tcpstate_(sockets|send_queue_bytes)\{/.test(series)) continue;
      assert.equal(got.get(series.replace(/\}$/, ',netns="other"}')), v, series);
    }
    assert.equal(got.get('tcpstate_sockets{state="established",family="ipv4",netns="1"}'), 1);
    assert.equal(got.get('tcpstate_netns_folded_namespaces'), 1);
    assert.ok(![...got.keys()].some((k) => k.startsWith('tcpstate_netns_info{netns="other"')));
  });

  it('/sockets: each socket says its namespace; ?netns= filters; the HTML table gains a netns column (not with own)', async () => {
    const poller = new Poller({
      sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], [rec({ state: 'fin_wait1', sendQueue: 3, inode: 0 })])] }], kernel: [] },
      intervalMs: 1000,
      logger: silent,
      netns: netnsPoller(() => [entry(10, 100), entry(20, 200)], 5),
    });
    await poller.poll();
    const app = buildApp({ registry: createRegistry({ view: poller, version: 't' }), view: poller, telemetryPath: '/metrics', version: 't', logger: silent, sockets: true });
    type Body = { netns?: string; sockets: Array<{ netns?: string; state: string }> };
    const all = (await app.inject('/sockets?limit=1000')).json<Body>();
    assert.deepEqual([...new Set(all.sockets.map((x) => x.netns))].sort(), ['1', '10', '20']);
    const only = (await app.inject('/sockets?netns=10&limit=1000')).json<Body>();
    assert.equal(only.netns, '10');
    assert.ok(only.sockets.length > 5 && only.sockets.every((x) => x.netns === '10'));
    assert.equal((await app.inject('/sockets?netns=999')).json<Body>().sockets.length, 0);
    assert.equal((await app.inject('/sockets?netns=../1')).statusCode, 400);
    const html = (await app.inject({ url: '/sockets?netns=20', headers: { accept: 'text/html' } })).body;
    assert.match(html, /<th>netns<\/th>/);
    assert.match(html, /<td>20<\/td>/);
    assert.match(html, /network namespace 20/);
    assert.match(html, /Network namespace: <a href="\/sockets">all<\/a> · <b>20<\/b>/);

    const ownPoller = new Poller({ sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], [rec({ state: 'fin_wait1', sendQueue: 3, inode: 0 })])] }], kernel: [] }, intervalMs: 1000, logger: silent });
    await ownPoller.poll();
    const ownApp = buildApp({ registry: createRegistry({ view: ownPoller, version: 't' }), view: ownPoller, telemetryPath: '/metrics', version: 't', logger: silent, sockets: true });
    assert.doesNotMatch((await ownApp.inject({ url: '/sockets', headers: { accept: 'text/html' } })).body, /<th>netns/);
    assert.ok(!('netns' in (await ownApp.inject('/sockets')).json<{ sockets: object[] }>().sockets[0]!));
  });

  it('--netns=own (no NetnsPoller): no netns label, no netns families', async () => {
    const poller = new Poller({ sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], estab(1))] }], kernel: [] }, intervalMs: 1000, logger: silent });
    await poller.poll();
    const body = await createRegistry({ view: poller, version: '0', defaultMetrics: false }).metrics();
    assert.ok(!body.includes('netns'));
  });
});
