// The exposition, parsed back with an independent reader (test/helpers/exposition.ts) and linted by
// promtool: what the catalogue says is what a scraper reads, whatever prom-client release renders
// the default metrics beside it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FORENSICS, ForensicsCollector, NO_PREVIOUS_POLL } from '../../src/aggregate/forensics.ts';
import { TableAggregator } from '../../src/aggregate/table.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import type { SocketRecord } from '../../src/model.ts';
import type { Snapshot, SnapshotView } from '../../src/snapshot.ts';
import { promtoolCheckMetrics } from '../helpers/daemon.ts';
import { familyOf, parseExposition, type Parsed } from '../helpers/exposition.ts';
import { rec } from '../helpers/readers.ts';
import { FinWait1ExitTally } from '../../src/aggregate/forensics.ts';

function snapshotOf(records: SocketRecord[]): Snapshot {
  const table = new TableAggregator(['ipv4', 'ipv6']);
  const forensics = new ForensicsCollector({ nowMs: 0, previous: NO_PREVIOUS_POLL, options: DEFAULT_FORENSICS });
  for (const r of records) {
    table.add(r);
    forensics.add(r);
  }
  return {
    takenAtMs: 1_700_000_000_000,
    pollDurationSeconds: 0.25,
    table: table.result(),
    forensics: forensics.result(),
    peers: undefined,
    kernel: { orphans: 3, memoryLimitBytes: { min: 1, pressure: 2, max: 3 }, tcpExt: new Map([['TCPAbortOnTimeout', 7]]) },
    sources: [{ source: 'proc_tcp', up: true, durationSeconds: 0.01 }],
  };
}

function viewOf(get: () => Snapshot | undefined): SnapshotView {
  return { snapshot: get, stats: () => ({ pollsTotal: 4, pollsSkippedTotal: 1, parseErrorsTotal: new Map([['ss', 2]]), untrackedTotal: 0, finWait1Exits: new FinWait1ExitTally().view() }) };
}

const persist = (sendQueue: number, timerSeconds: number, backoff: number, extra: Partial<SocketRecord> = {}) =>
  rec({ state: 'fin_wait1', sendQueue, inode: 0, timer: 'persist', timerSeconds, backoff, remotePort: sendQueue, ...extra });

/** Five orphaned FIN-WAIT-1 sockets on zero-window peers, one retransmitting, one listener, one IPv6 ESTABLISHED. */
const INCIDENT: SocketRecord[] = [
  persist(1000, 0.4, 1),
  persist(2000, 12.8, 6),
  persist(3000, 120, 9),
  persist(4000, 120, 9),
  rec({ state: 'fin_wait1', sendQueue: 5000, inode: 0, timer: 'retransmit', timerSeconds: 3, backoff: 4, remotePort: 5000 }),
  rec({ state: 'listen', localPort: 443 }),
  rec({ family: 'ipv6', state: 'established', localAddress: '::1', remoteAddress: '::1', sendQueue: 10, recvQueue: 20 }),
];

async function scrape(records: SocketRecord[], defaultMetrics = false): Promise<{ text: string; parsed: Parsed }> {
  const snap = snapshotOf(records);
  const text = await createRegistry({ view: viewOf(() => snap), version: '1.2.3', defaultMetrics }).metrics();
  return { text, parsed: parseExposition(text) };
}

const SOCKET_TABLE = [
  'tcpstate_sockets',
  'tcpstate_send_queue_bytes',
  'tcpstate_recv_queue_bytes',
  'tcpstate_timer_sockets',
  'tcpstate_orphan_sockets',
  'tcpstate_orphan_send_queue_bytes',
  'tcpstate_persist_timer_max_seconds',
];

describe('exposition', () => {
  it('parses back to the figures of the snapshot, every sample in a declared family, promtool clean', async () => {
    const { text, parsed } = await scrape(INCIDENT);
    const v = (series: string) => parsed.series.get(series);
    assert.equal(v('tcpstate_build_info{version="1.2.3",revision="unknown",nodejs="' + process.version + '"}'), 1);
    assert.equal(v('tcpstate_sockets{state="fin_wait1",family="ipv4"}'), 5);
    assert.equal(v('tcpstate_sockets{state="established",family="ipv6"}'), 1);
    assert.equal(v('tcpstate_send_queue_bytes{state="fin_wait1",family="ipv4"}'), 15000);
    assert.equal(v('tcpstate_recv_queue_bytes{state="established",family="ipv6"}'), 20);
    assert.equal(v('tcpstate_orphan_send_queue_bytes{state="fin_wait1",family="ipv4"}'), 15000);
    assert.equal(v('tcpstate_timer_sockets{state="fin_wait1",timer="persist",family="ipv4"}'), 4);
    assert.equal(v('tcpstate_timer_sockets{state="fin_wait1",timer="retransmit",family="ipv4"}'), 1);
    assert.equal(v('tcpstate_persist_timer_max_seconds{state="fin_wait1",family="ipv4"}'), 120);
    assert.equal(v('tcpstate_persist_timer_seconds_bucket{state="fin_wait1",le="0.4"}'), 1);
    assert.equal(v('tcpstate_persist_timer_seconds_bucket{state="fin_wait1",le="102.4"}'), 2);
    assert.equal(v('tcpstate_persist_timer_seconds_bucket{state="fin_wait1",le="+Inf"}'), 4);
    assert.equal(v('tcpstate_persist_timer_seconds_sum{state="fin_wait1"}'), 253.2);
    assert.equal(v('tcpstate_socket_send_queue_bytes_count{state="fin_wait1"}'), 5);
    assert.equal(v('tcpstate_orphans'), 3);
    assert.equal(v('tcpstate_memory_limit_bytes{level="pressure"}'), 2);
    assert.equal(v('tcpstate_aborts_total{reason="timeout"}'), 7);
    assert.equal(v('tcpstate_aborts_total{reason="memory"}'), undefined, 'a counter the kernel did not show is absent, not 0');
    assert.equal(v('tcpstate_source_up{source="proc_tcp"}'), 1);
    assert.equal(v('tcpstate_last_poll_timestamp_seconds'), 1_700_000_000);
    assert.equal(v('tcpstate_parse_errors_total{source="ss"}'), 2);
    assert.equal(v('tcpstate_polls_skipped_total'), 1);
    for (const s of parsed.samples) assert.ok(familyOf(parsed, s.name), `${s.name} has a HELP/TYPE of its own`);
    await promtoolCheckMetrics(text);
  });

  it('fault 10: the live exposition, default metrics included, passes promtool with no exception; old nodejs_active_*_total names still served', async () => {
    const { text, parsed } = await scrape(INCIDENT, true);
    await promtoolCheckMetrics(text);
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      assert.equal(parsed.families.get(name)?.type, 'untyped', name);
      assert.ok(parsed.samples.some((s) => s.name === name), `${name} has a sample`);
    }
    // prom-client's default metrics are still there, through its public API.
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_active_handles']) {
      assert.ok(parsed.families.has(name), name);
    }
  });

  it('fault 5: a distribution that shrinks between polls moves only gauge or untyped series (no histogram _count going down)', async () => {
    const before = (await scrape(INCIDENT)).parsed;
    const after = (await scrape(INCIDENT.slice(2))).parsed;
    const wentDown: string[] = [];
    for (const [key, old] of before.series) {
      const now = after.series.get(key);
      if (now === undefined || now >= old) continue;
      const name = key.replace(/\{.*$/, '');
      const type = familyOf(after, name)?.type;
      // A summary's quantiles are gauges by definition; its _sum and _count would be cumulative,
      // which is why the snapshot summaries have none (their sums and counts are untyped).
      const quantile = type === 'summary' && key.includes('quantile=');
      if (type !== 'gauge' && type !== 'untyped' && !quantile) wentDown.push(`${key} (${type}) ${old} → ${now}`);
    }
    assert.ok(after.series.get('tcpstate_persist_timer_seconds_count{state="fin_wait1"}')! < before.series.get('tcpstate_persist_timer_seconds_count{state="fin_wait1"}')!);
    assert.deepEqual(wentDown, []);
    // Heatmaps need `le` on the _bucket series: still there, under the old names, where a heatmap uses them.
    for (const base of ['tcpstate_persist_timer_seconds', 'tcpstate_persist_backoff', 'tcpstate_state_age_seconds']) {
      assert.ok(after.samples.some((s) => s.name === `${base}_bucket` && s.labels.le === '+Inf'), base);
    }
    for (const base of ['tcpstate_persist_timer_seconds', 'tcpstate_persist_backoff', 'tcpstate_socket_send_queue_bytes', 'tcpstate_state_age_seconds']) {
      assert.equal(familyOf(after, `${base}_count`)?.type, 'untyped', base);
      assert.equal(familyOf(after, `${base}_sum`)?.type, 'untyped', base);
    }
  });

  it('issue 13 item 1: exact nearest-rank quantiles of every value (summaries), where buckets would interpolate', async () => {
    // 20 FIN-WAIT-1 sockets: 19 hold 94 209 bytes, one 3 000 000 (the issue saw p50 160 KiB when every socket held 92 KiB).
    const records = [...Array.from({ length: 19 }, (_, i) => persist(94_209, 0.2 * 2 ** (i % 10), i % 10, { remotePort: 1000 + i })), persist(3_000_000, 120, 11)];
    const { text, parsed } = await scrape(records);
    const q = (name: string, quantile: string) => parsed.series.get(`${name}{state="fin_wait1",quantile="${quantile}"}`);
    assert.equal(familyOf(parsed, 'tcpstate_socket_send_queue_quantile_bytes')?.type, 'summary');
    assert.equal(q('tcpstate_socket_send_queue_quantile_bytes', '0'), 94_209);
    assert.equal(q('tcpstate_socket_send_queue_quantile_bytes', '0.5'), 94_209);
    assert.equal(q('tcpstate_socket_send_queue_quantile_bytes', '0.9'), 94_209); // rank ceil(0.9 × 20) = 18
    assert.equal(q('tcpstate_socket_send_queue_quantile_bytes', '0.99'), 3_000_000); // rank 20
    assert.equal(q('tcpstate_socket_send_queue_quantile_bytes', '1'), 3_000_000);
    // Backoff levels 0..9 (twice each but 9), then 11: sorted 0,0,1,1,…,8,8,9,11 → ranks 1, 10, 18, 20, 20.
    assert.deepEqual(['0', '0.5', '0.9', '0.99', '1'].map((x) => q('tcpstate_persist_backoff_quantile', x)), [0, 4, 8, 11, 11]);
    assert.equal(q('tcpstate_persist_timer_quantile_seconds', '1'), 120);
    assert.equal(q('tcpstate_persist_timer_quantile_seconds', '0'), 0.2);
    // No socket: NaN, as a summary without observations says.
    assert.ok(Number.isNaN(parsed.series.get('tcpstate_persist_timer_quantile_seconds{state="close_wait",quantile="0.5"}')!));
    // The summaries carry no _sum/_count of their own (they would be cumulative): the gauges keep their names.
    assert.ok(!parsed.samples.some((s) => /_quantile(_seconds|_bytes)?_(sum|count)$/.test(s.name)));
    assert.equal(parsed.series.get('tcpstate_socket_send_queue_bytes_count{state="fin_wait1"}'), 20);
    await promtoolCheckMetrics(text);
  });

  it('fault 4: persist maxima only for states that can hold a persist timer; every socket-table family has state and family', async () => {
    const { parsed } = await scrape(INCIDENT);
    const persistStates = new Set(parsed.samples.filter((s) => s.name === 'tcpstate_persist_timer_max_seconds').map((s) => s.labels.state));
    assert.deepEqual([...persistStates].sort(), ['close_wait', 'closing', 'established', 'fin_wait1', 'last_ack']);
    for (const name of SOCKET_TABLE) {
      const samples = parsed.samples.filter((s) => s.name === name);
      assert.ok(samples.length > 0, name);
      for (const fam of ['ipv4', 'ipv6']) assert.ok(samples.some((s) => s.labels.family === fam), `${name} family=${fam}`);
      assert.ok(samples.every((s) => s.labels.state !== undefined && s.labels.family !== undefined), `${name}: {state, family} on every sample`);
    }
  });

  it('fault 3: the probe backoff counts persist-timer sockets only, not retransmitting FIN-WAIT-1 sockets', async () => {
    const { parsed } = await scrape(INCIDENT);
    assert.equal(parsed.series.get('tcpstate_persist_backoff_count{state="fin_wait1"}'), 4);
    assert.equal(parsed.series.get('tcpstate_persist_backoff_sum{state="fin_wait1"}'), 1 + 6 + 9 + 9);
    assert.equal(parsed.series.get('tcpstate_persist_backoff_bucket{state="fin_wait1",le="4"}'), 1);
  });

  it('before the first poll: build info and the cumulative counters only', async () => {
    const text = await createRegistry({ view: viewOf(() => undefined), version: '1', defaultMetrics: false }).metrics();
    const parsed = parseExposition(text);
    assert.deepEqual(
      [...new Set(parsed.samples.map((s) => s.name))].sort(),
      [
        'tcpstate_build_info',
        'tcpstate_fin_wait1_exits_total',
        'tcpstate_fin_wait1_lifetime_seconds_bucket',
        'tcpstate_fin_wait1_lifetime_seconds_count',
        'tcpstate_fin_wait1_lifetime_seconds_sum',
        'tcpstate_parse_errors_total', 'tcpstate_polls_skipped_total', 'tcpstate_polls_total', 'tcpstate_untracked_observations_total'],
    );
    await promtoolCheckMetrics(text);
  });
});
