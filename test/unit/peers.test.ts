// Peer networks of FIN-WAIT-1 sockets: the pure grouping (table-tested), the bounded counter, and
// the opt-in metric (no series unless --peers.metrics-top).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PEER_NETWORKS, MAX_PEER_NETWORKS, PeerCounter, PeerNetworkCounter, nearestRank, peerNetwork } from '../../src/aggregate/peers.ts';
import { parseConfig } from '../../src/config.ts';
import { CATALOGUE, type ScrapeContext } from '../../src/metrics/catalogue.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { Poller } from '../../src/poller/poller.ts';
import { silent } from '../helpers/poller.ts';
import { okReader, rec } from '../helpers/readers.ts';

describe('peerNetwork()', () => {
  // Per address, the network it falls in at each prefix length: for IPv4 peers --peers.ipv4-prefix
  // (the IPv6 prefix at its default, 64), for IPv6 peers --peers.ipv6-prefix (the IPv4 one at 24).
  const ipv4: Array<[string, Record<number, string>]> = [
    ['127.1.2.3', { 24: '127.1.2.0/24' }],
    ['127.1.2.255', { 24: '127.1.2.0/24' }],
    ['10.20.30.40', { 0: '0.0.0.0/0', 16: '10.20.0.0/16', 20: '10.20.16.0/20', 32: '10.20.30.40/32' }],
    ['255.255.255.255', { 1: '128.0.0.0/1', 24: '255.255.255.0/24' }], // the top bit survives the mask (unsigned)
    ['::ffff:192.0.2.77', { 16: '192.0.0.0/16', 24: '192.0.2.0/24' }], // a dual-stack socket's IPv4 peer counts as IPv4
  ];
  const ipv6: Array<[string, Record<number, string>]> = [
    ['2001:db8:1:2:3:4:5:6', { 48: '2001:db8:1::/48', 64: '2001:db8:1:2::/64', 128: '2001:db8:1:2:3:4:5:6/128' }],
    ['2001:db8:1:2ff:3:4:5:6', { 56: '2001:db8:1:200::/56' }],
    ['2001:db8::1', { 0: '::/0' }],
    ['::1', { 64: '::/64' }],
    ['[2001:db8::1]', { 64: '2001:db8::/64' }],
    ['fe80::1%eth0', { 64: 'fe80::/64' }],
  ];
  for (const [table, prefixes] of [[ipv4, (p: number): [number, number] => [p, 64]], [ipv6, (p: number): [number, number] => [24, p]]] as const) {
    for (const [address, byPrefix] of table) {
      for (const [prefix, want] of Object.entries(byPrefix)) {
        const [v4, v6] = prefixes(Number(prefix));
        it(`${JSON.stringify(address)} /${v4} /${v6} → ${want}`, () => assert.equal(peerNetwork(address, v4, v6), want));
      }
    }
  }
  for (const address of ['*', '', '1.2.3', '1.2.3.256', '1.2.3.4.5', '1..3.4', '2001:db8::g']) {
    it(`${JSON.stringify(address)} → not an address`, () => assert.equal(peerNetwork(address, 24, 64), undefined));
  }
});

const fw1 = (remoteAddress: string, sendQueue: number, family: 'ipv4' | 'ipv6' = 'ipv4') => rec({ family, state: 'fin_wait1', remoteAddress, sendQueue, inode: 0 });

describe('nearestRank()', () => {
  const v = [1000, 2000, 3000, 40000, 50000];
  for (const [q, want] of [[0, 1000], [0.5, 3000], [0.9, 50000], [0.99, 50000], [1, 50000], [0.2, 1000], [0.21, 2000]] as const) {
    it(`q=${q} of ${v.join(',')} → ${want}`, () => assert.equal(nearestRank(v, q), want));
  }
  it('none: undefined; one value: that value', () => {
    assert.equal(nearestRank([], 0.5), undefined);
    assert.equal(nearestRank([7], 0.99), 7);
  });
});

describe('PeerNetworkCounter', () => {
  it('counts FIN-WAIT-1 sockets and Send-Q per network, most bytes first, top K; other states ignored', () => {
    const c = new PeerNetworkCounter({ ...DEFAULT_PEER_NETWORKS, top: 3 });
    for (const r of [
      fw1('127.1.2.10', 1000), fw1('127.1.2.11', 2001), fw1('127.1.2.12', 5),
      fw1('127.3.4.1', 9000),
      fw1('10.0.0.1', 1), fw1('10.0.0.2', 1),
      fw1('10.0.9.1', 2),
      fw1('2001:db8:0:1::5', 700, 'ipv6'), fw1('2001:db8:0:1:ffff::9', 300, 'ipv6'),
      fw1('*', 50),
      rec({ state: 'established', remoteAddress: '127.9.9.9', sendQueue: 1_000_000 }),
      rec({ state: 'time_wait', remoteAddress: '127.9.9.9' }),
    ]) c.add(r);
    const p = c.result();
    assert.deepEqual(p.top, [
      { network: '127.3.4.0/24', sockets: 1, bytes: 9000 },
      { network: '127.1.2.0/24', sockets: 3, bytes: 3006 },
      { network: '2001:db8:0:1::/64', sockets: 2, bytes: 1000 },
    ]);
    assert.equal(p.networks, 5);
    assert.equal(p.sockets, 10);
    assert.equal(p.bytes, 9000 + 3006 + 2 + 2 + 1000 + 50);
    assert.equal(p.uncounted, 1); // "*"
    assert.deepEqual(p.labelled, []);
    assert.equal(p.metricsTop, 0);
  });

  it('equal bytes: more sockets first, then by name, so the answer is stable', () => {
    const c = new PeerNetworkCounter(DEFAULT_PEER_NETWORKS);
    for (const r of [fw1('10.0.2.1', 10), fw1('10.0.1.1', 10), fw1('10.0.3.1', 5), fw1('10.0.3.2', 5)]) c.add(r);
    assert.deepEqual(c.result().top.map((x) => x.network), ['10.0.3.0/24', '10.0.1.0/24', '10.0.2.0/24']);
  });

  it(`stays bounded: at most ${MAX_PEER_NETWORKS} networks, the sockets beyond counted as uncounted`, () => {
    const c = new PeerNetworkCounter({ ...DEFAULT_PEER_NETWORKS, ipv4Prefix: 32 });
    const extra = 7;
    for (let i = 0; i < MAX_PEER_NETWORKS + extra; i++) c.add(fw1(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1));
    const p = c.result();
    assert.equal(p.networks, MAX_PEER_NETWORKS);
    assert.equal(p.uncounted, extra);
    assert.equal(p.sockets, MAX_PEER_NETWORKS + extra);
    assert.equal(p.top.length, DEFAULT_PEER_NETWORKS.top);
  });

  it('the report also counts per address; the daemon only per network', () => {
    const daemon = new PeerCounter(DEFAULT_PEER_NETWORKS, false);
    const report = new PeerCounter(DEFAULT_PEER_NETWORKS, true);
    for (const c of [daemon, report]) for (const r of [fw1('127.1.2.3', 10), fw1('127.1.2.3', 20), fw1('127.1.2.4', 5)]) c.add(r);
    assert.deepEqual(daemon.result().top, []);
    assert.deepEqual(report.result().top.map((x) => [x.peer, x.sockets, x.bytes]), [['127.1.2.3', 2, 30], ['127.1.2.4', 1, 5]]);
    assert.deepEqual(daemon.result().networks, report.result().networks);
  });
});

describe('peer networks as metric labels (opt-in)', () => {
  const records = [fw1('127.1.2.10', 1000), fw1('127.1.2.11', 2000), fw1('127.3.4.1', 9000), fw1('10.0.0.1', 7), rec({ state: 'listen', localPort: 1 })];
  /** A poller over `records`, polled once; --peers.metrics-top as given (undefined: the default). */
  async function polled(metricsTop: number | undefined): Promise<Poller> {
    const poller = new Poller({
      sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], records)] }], kernel: [] },
      intervalMs: 1000,
      logger: silent,
      ...(metricsTop !== undefined && { peerNetworks: { ...DEFAULT_PEER_NETWORKS, metricsTop } }),
    });
    await poller.poll();
    return poller;
  }
  async function series(metricsTop: number | undefined): Promise<string[]> {
    const poller = await polled(metricsTop);
    const ctx: ScrapeContext = { snapshot: poller.snapshot(), stats: poller.stats(), version: '0', nowMs: Date.now() };
    const out: string[] = [];
    for (const m of CATALOGUE) {
      if (!m.name.startsWith('tcpstate_peer_network_')) continue;
      for (const s of m.samples(ctx)) out.push(`${m.name}{${m.labels.map((l, i) => `${l}="${s.labels[i]}"`).join(',')}} ${s.value}`);
    }
    return out;
  }

  it('no series by default', async () => {
    assert.deepEqual(await series(undefined), []);
    assert.deepEqual(await series(0), []);
  });

  it('--peers.metrics-top 2: the two networks holding the most bytes and "other" (the sums are the state\'s totals)', async () => {
    assert.deepEqual(await series(2), [
      'tcpstate_peer_network_sockets{network="127.3.4.0/24",state="fin_wait1"} 1',
      'tcpstate_peer_network_sockets{network="127.1.2.0/24",state="fin_wait1"} 2',
      'tcpstate_peer_network_sockets{network="other",state="fin_wait1"} 1',
      'tcpstate_peer_network_send_queue_bytes{network="127.3.4.0/24",state="fin_wait1"} 9000',
      'tcpstate_peer_network_send_queue_bytes{network="127.1.2.0/24",state="fin_wait1"} 3000',
      'tcpstate_peer_network_send_queue_bytes{network="other",state="fin_wait1"} 7',
    ]);
  });

  it('/metrics: not even a HELP line by default (the exposition is as before); the families with --peers.metrics-top', async () => {
    for (const [metricsTop, present] of [[0, false], [2, true]] as const) {
      const poller = await polled(metricsTop);
      const body = await createRegistry({ view: poller, version: '0', defaultMetrics: false }).metrics();
      assert.equal(body.includes('tcpstate_peer_network_'), present, `metrics-top ${metricsTop}`);
      if (present) assert.match(body, /# TYPE tcpstate_peer_network_send_queue_bytes gauge\ntcpstate_peer_network_send_queue_bytes\{network="127\.3\.4\.0\/24",state="fin_wait1"\} 9000\n/);
    }
  });

  it('flags: prefixes, top, metrics-top parsed and bounded, named when wrong', () => {
    const c = parseConfig(['--peers.ipv4-prefix', '16', '--peers.ipv6-prefix', '48', '--peers.top', '5', '--peers.metrics-top', '3'], {}, '0');
    assert.deepEqual(c.peers, { ipv4Prefix: 16, ipv6Prefix: 48, top: 5, metricsTop: 3 });
    assert.deepEqual(parseConfig([], {}, '0').peers, DEFAULT_PEER_NETWORKS);
    // The owner lookup's budget (same place: what /sockets adds beside the sockets); 0 turns it off.
    assert.equal(parseConfig(['--owners.timeout', '0'], {}, '0').ownersTimeoutMs, 0);
    assert.equal(parseConfig(['--owners.timeout', '250ms'], {}, '0').ownersTimeoutMs, 250);
    assert.throws(() => parseConfig(['--owners.timeout', 'soon'], {}, '0'), /--owners\.timeout: "soon" is not a duration/);
    for (const [args, re] of [
      [['--peers.ipv4-prefix', '33'], /--peers\.ipv4-prefix/],
      [['--peers.ipv6-prefix', '129'], /--peers\.ipv6-prefix/],
      [['--peers.metrics-top', '21'], /--peers\.metrics-top must be a whole number from 0 to 20/],
    ] as const) {
      assert.throws(() => parseConfig([...args], {}, '0'), re);
    }
  });
});
