import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_FORENSICS } from '../../src/aggregate/forensics.ts';
import { Poller, type PollerOptions } from '../../src/poller/poller.ts';
import type { KernelReader, TableAttempt, TableReader } from '../../src/sources/source.ts';
import { failedReader, okReader, rec } from '../helpers/readers.ts';

const silent = pino({ level: 'silent' });

function poller(table: TableAttempt[], options: Partial<PollerOptions> = {}, kernel: KernelReader[] = []): Poller {
  return new Poller({ sources: { table, kernel }, intervalMs: 1000, logger: silent, ...options });
}

const procReaders = (): TableReader[] => [
  okReader('proc_tcp', ['ipv4'], [rec({ state: 'fin_wait1', sendQueue: 100, inode: 0 })]),
  okReader('proc_tcp6', ['ipv6'], [rec({ family: 'ipv6' })]),
];
const proc = (): TableAttempt => ({ name: 'proc', readers: procReaders() });
const attempt = (name: string, reader: TableReader, installed?: () => Promise<boolean>): TableAttempt => ({ name, readers: [reader], installed });
/** A reader that counts its calls and delivers what `make` says. */
function counted(source: string, read: TableReader['read']): TableReader & { calls: number } {
  const r = { source, families: ['ipv4', 'ipv6'] as const, calls: 0, read: (sink: Parameters<TableReader['read']>[0], signal: AbortSignal) => (r.calls++, read(sink, signal)) };
  return r;
}

describe('Poller', () => {
  it('has no snapshot before the first poll, then an immutable one', async () => {
    const p = poller([proc()]);
    assert.equal(p.snapshot(), undefined);
    await p.poll();
    const s = p.snapshot()!;
    assert.ok(Object.isFrozen(s) && Object.isFrozen(s.table) && Object.isFrozen(s.table.ipv4));
    assert.equal(s.table.ipv4!.fin_wait1.orphanSendQueueBytes, 100);
    assert.equal(s.table.ipv6!.established.sockets, 1);
    assert.deepEqual(s.sources.map((x) => [x.source, x.up]), [['proc_tcp', true], ['proc_tcp6', true]]);
    assert.equal(p.stats().pollsTotal, 1);
  });

  it('publishes no cross-poll state: first-seen times and listening ports stay in the poller', async () => {
    const p = poller([proc()]);
    await p.poll();
    const f = p.snapshot()!.forensics!;
    assert.equal(f.tracked, 1);
    assert.deepEqual(Object.keys(f).filter((k) => ['firstSeen', 'listening'].includes(k)), []);
  });

  it('one wrapper times every source, table and kernel-wide alike, and turns a throw into up=0', async () => {
    const kernel: KernelReader[] = [
      { source: 'sockstat', read: async (errors) => (errors.error('bad', 'line'), { orphans: 3 }) },
      { source: 'netstat', read: async () => Promise.reject(new Error('no TcpExt')) },
    ];
    const p = poller([proc()], {}, kernel);
    await p.poll();
    const byName = Object.fromEntries(p.outcomes().map((o) => [o.source, o]));
    assert.deepEqual(Object.keys(byName), ['proc_tcp', 'proc_tcp6', 'sockstat', 'netstat']);
    for (const o of p.outcomes()) assert.ok(o.durationSeconds > 0 && o.durationSeconds < 5, o.source);
    assert.deepEqual([byName.sockstat!.up, byName.sockstat!.parseErrors, byName.netstat!.up, byName.netstat!.error?.message], [true, 1, false, 'no TcpExt']);
    assert.deepEqual([byName.proc_tcp!.records, byName.proc_tcp6!.records], [1, 1]);
    assert.equal(p.snapshot()!.kernel.orphans, 3);
    assert.equal(p.stats().parseErrorsTotal.get('sockstat'), 1);
  });

  it('skips and counts a tick that arrives while a poll runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = poller([attempt('ss', counted('ss', () => gate))]);
    const first = p.poll();
    void p.poll();
    void p.poll();
    assert.equal(p.stats().pollsSkippedTotal, 2);
    release();
    await first;
    assert.equal(p.stats().pollsTotal, 1);
  });

  it('auto: falls back to /proc when ss fails, and reports ss down', async () => {
    const ss = counted('ss', () => Promise.reject(new Error('ss not found')));
    const p = poller([attempt('ss', ss), proc()]);
    await p.poll();
    const s = p.snapshot()!;
    assert.equal(ss.calls, 1);
    assert.deepEqual(s.sources.map((x) => [x.source, x.up]), [['ss', false], ['proc_tcp', true], ['proc_tcp6', true]]);
    assert.equal(s.table.ipv4!.fin_wait1.sockets, 1);
  });

  it('auto: reads with netlink alone when its helper is installed and works', async () => {
    const netlink = counted('netlink', async (sink) => sink.record(rec({ state: 'fin_wait1', inode: 0 })));
    const ss = counted('ss', async () => undefined);
    const p = poller([attempt('netlink', netlink, async () => true), attempt('ss', ss), proc()]);
    await p.poll();
    assert.deepEqual([netlink.calls, ss.calls], [1, 0]);
    assert.deepEqual(p.snapshot()!.sources.map((x) => x.source), ['netlink']);
    assert.equal(p.snapshot()!.table.ipv4!.fin_wait1.orphanSockets, 1);
  });

  it('auto: netlink, then ss, then /proc, each failure reported', async () => {
    let netlinkUp = false;
    const netlink = counted('netlink', async () => {
      if (!netlinkUp) throw new Error('no tcp_diag');
    });
    const p = poller([attempt('netlink', netlink, async () => true), attempt('ss', failedReader('ss', 'ss not found')), proc()]);
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((x) => [x.source, x.up]), [['netlink', false], ['ss', false], ['proc_tcp', true], ['proc_tcp6', true]]);
    assert.equal(p.snapshot()!.table.ipv4!.fin_wait1.sockets, 1);
    netlinkUp = true;
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((x) => [x.source, x.up]), [['netlink', true]]);
  });

  it('auto: skips netlink quietly when its helper is not installed', async () => {
    const netlink = counted('netlink', async () => undefined);
    const p = poller([attempt('netlink', netlink, async () => false), attempt('ss', okReader('ss', ['ipv4', 'ipv6'], [rec({})]))]);
    await p.poll();
    assert.equal(netlink.calls, 0);
    assert.deepEqual(p.snapshot()!.sources.map((x) => x.source), ['ss']);
  });

  it('netlink alone: a failure is served as such, with no fallback (installed() not consulted)', async () => {
    const p = poller([attempt('netlink', failedReader('netlink', 'x'), async () => false)]);
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((x) => [x.source, x.up]), [['netlink', false]]);
    assert.equal(p.snapshot()!.forensics, undefined);
    assert.deepEqual(p.snapshot()!.table, {});
  });

  it('a failed family is absent while the other one is still served', async () => {
    const p = poller([{ name: 'proc', readers: [failedReader('proc_tcp', 'EACCES', ['ipv4']), okReader('proc_tcp6', ['ipv6'], [rec({ family: 'ipv6' })])] }]);
    await p.poll();
    const s = p.snapshot()!;
    assert.equal(s.table.ipv4, undefined);
    assert.equal(s.table.ipv6!.established.sockets, 1);
  });

  it('the readers of one attempt add up (two dumps of the same families)', async () => {
    const p = poller([{ name: 'files', readers: [okReader('a', ['ipv4', 'ipv6'], [rec({}), rec({})]), okReader('b', ['ipv4', 'ipv6'], [rec({ state: 'fin_wait1' })])] }]);
    await p.poll();
    assert.deepEqual([p.snapshot()!.table.ipv4!.established.sockets, p.snapshot()!.table.ipv4!.fin_wait1.sockets], [2, 1]);
  });

  it('accumulates parse errors per source', async () => {
    const p = poller([attempt('ss', okReader('ss', ['ipv4', 'ipv6'], [], 3))]);
    await p.poll();
    await p.poll();
    assert.equal(p.stats().parseErrorsTotal.get('ss'), 6);
  });

  it('counts FIN-WAIT-1 peers per address only when asked (the report); per network always', async () => {
    const fw1 = [rec({ state: 'fin_wait1', remoteAddress: '10.0.0.1', sendQueue: 5 }), rec({ state: 'fin_wait1', remoteAddress: '10.0.0.1', remotePort: 3, sendQueue: 7 })];
    const networks = { ipv4Prefix: 24, ipv6Prefix: 64, networks: 1, top: [{ network: '10.0.0.0/24', sockets: 2, bytes: 12 }], labelled: [], metricsTop: 0, sockets: 2, bytes: 12, uncounted: 0 };
    const without = poller([attempt('ss', okReader('ss', ['ipv4'], fw1))]);
    await without.poll();
    assert.deepEqual(without.snapshot()!.peers, { top: [], overflow: 0, networks, sendQueues: new Float64Array(0) });
    const withPeers = poller([attempt('ss', okReader('ss', ['ipv4'], fw1))], { countPeers: true });
    await withPeers.poll();
    assert.deepEqual(withPeers.snapshot()!.peers, { top: [{ peer: '10.0.0.1', sockets: 2, bytes: 12, port: 1 }], overflow: 0, networks, sendQueues: Float64Array.from([5, 7]) });
  });

  it('sums FIN-WAIT-1 sockets left untracked beyond --stuck.max-tracked', async () => {
    const records = [rec({ state: 'fin_wait1', remotePort: 1, inode: 0 }), rec({ state: 'fin_wait1', remotePort: 2, inode: 0 })];
    const p = poller([attempt('proc', okReader('proc_tcp', ['ipv4'], records))], { forensics: { ...DEFAULT_FORENSICS, maxTracked: 1 } });
    await p.poll();
    await p.poll();
    assert.equal(p.snapshot()!.forensics!.untracked, 1);
    assert.equal(p.stats().untrackedTotal, 2);
  });

  it('survives a poll that throws outside any source, and polls again', async () => {
    let calls = 0;
    const installed = async () => {
      if (++calls === 1) throw new Error('bug');
      return true;
    };
    const p = poller([attempt('netlink', failedReader('netlink', 'x'), installed), proc()]);
    await p.poll();
    assert.equal(p.snapshot(), undefined);
    await p.poll();
    assert.equal(p.snapshot()!.table.ipv4!.fin_wait1.sockets, 1);
  });

  it('stop() cancels and waits for a running poll, publishes nothing after it, and stops the netlink helper', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let helperStopped = 0;
    const ss = counted('ss', async (_sink, signal) => {
      await gate;
      assert.ok(signal.aborted);
      throw new Error('cancelled');
    });
    const p = new Poller({
      sources: { table: [attempt('ss', ss)], kernel: [], netlink: { stop: async () => void helperStopped++ } },
      intervalMs: 1000,
      logger: silent,
    });
    const running = p.poll();
    const stopped = p.stop();
    release();
    await Promise.all([running, stopped]);
    assert.equal(p.snapshot(), undefined);
    assert.equal(helperStopped, 1);
  });
});
