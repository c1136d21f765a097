import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_FORENSICS } from '../../src/aggregate/forensics.ts';
import { Poller, type PollerOptions, type Readers } from '../../src/poller/poller.ts';
import type { SourceMode } from '../../src/snapshot.ts';
import type { SourceReport } from '../../src/sources/report.ts';
import { failedReport, okReport, rec } from '../helpers/reports.ts';

const silent = pino({ level: 'silent' });

const unused = () => Promise.reject(new Error('unused'));
/** Readers not given: netlink helper absent, others unused. */
const NO_READERS: Readers = { kernel: async () => [], netlink: unused, netlinkUsable: async () => false, ss: unused, proc: unused };

function poller(mode: SourceMode, readers: Partial<Readers>, options: Partial<PollerOptions> = {}): Poller {
  return new Poller({
    mode,
    netlink: { path: '/nonexistent/tcpstate-diag', timeoutMs: 1000 },
    ss: { path: 'ss', timeoutMs: 1000 },
    procfs: '/proc',
    cronExpression: '*/1 * * * * *',
    logger: silent,
    readers: { ...NO_READERS, ...readers },
    ...options,
  });
}

const procOk = async (): Promise<SourceReport[]> => [
  okReport('proc_tcp', ['ipv4'], [rec({ state: 'fin_wait1', sendQueue: 100, inode: 0 })]),
  okReport('proc_tcp6', ['ipv6'], [rec({ family: 'ipv6' })]),
];

describe('Poller', () => {
  it('has no snapshot before the first poll, then an immutable one', async () => {
    const p = poller('proc', { ss: () => Promise.reject(new Error('unused')), proc: procOk });
    assert.equal(p.snapshot(), undefined);
    await p.poll();
    const s = p.snapshot()!;
    assert.ok(Object.isFrozen(s) && Object.isFrozen(s.table) && Object.isFrozen(s.table.ipv4));
    assert.equal(s.table.ipv4!.fin_wait1.orphanSendQueueBytes, 100);
    assert.equal(s.table.ipv6!.established.sockets, 1);
    assert.deepEqual(s.sources.map((x) => [x.source, x.up]), [['proc_tcp', true], ['proc_tcp6', true]]);
    assert.equal(p.stats().pollsTotal, 1);
  });

  it('skips and counts a tick that arrives while a poll runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = poller('ss', {
      ss: async () => {
        await gate;
        return okReport('ss', ['ipv4', 'ipv6'], []);
      },
      proc: procOk,
    });
    const first = p.poll();
    void p.poll();
    void p.poll();
    assert.equal(p.stats().pollsSkippedTotal, 2);
    release();
    await first;
    assert.equal(p.stats().pollsTotal, 1);
  });

  it('auto: falls back to /proc when ss fails, and reports ss down', async () => {
    let ssCalls = 0;
    const p = poller('auto', {
      ss: async () => {
        ssCalls++;
        return failedReport('ss', 'ss not found');
      },
      proc: procOk,
    });
    await p.poll();
    const s = p.snapshot()!;
    assert.equal(ssCalls, 1);
    assert.deepEqual(s.sources.map((x) => [x.source, x.up]), [['ss', false], ['proc_tcp', true], ['proc_tcp6', true]]);
    assert.equal(s.table.ipv4!.fin_wait1.sockets, 1);
  });

  it('auto: reads with netlink alone when its helper is built and works', async () => {
    const calls: string[] = [];
    const p = poller('auto', {
      netlinkUsable: async () => true,
      netlink: async () => {
        calls.push('netlink');
        return okReport('netlink', ['ipv4', 'ipv6'], [rec({ state: 'fin_wait1', inode: 0 })]);
      },
      ss: async () => {
        calls.push('ss');
        return okReport('ss', ['ipv4', 'ipv6'], []);
      },
    });
    await p.poll();
    assert.deepEqual(calls, ['netlink']);
    assert.deepEqual(p.snapshot()!.sources.map((x) => x.source), ['netlink']);
    assert.equal(p.snapshot()!.table.ipv4!.fin_wait1.orphanSockets, 1);
  });

  it('auto: netlink, then ss, then /proc, each failure reported', async () => {
    let netlinkUp = false;
    const p = poller('auto', {
      netlinkUsable: async () => true,
      netlink: async () => (netlinkUp ? okReport('netlink', ['ipv4', 'ipv6'], []) : failedReport('netlink', 'no tcp_diag')),
      ss: async () => failedReport('ss', 'ss not found'),
      proc: procOk,
    });
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((x) => [x.source, x.up]), [['netlink', false], ['ss', false], ['proc_tcp', true], ['proc_tcp6', true]]);
    assert.equal(p.snapshot()!.table.ipv4!.fin_wait1.sockets, 1);
    netlinkUp = true;
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((x) => [x.source, x.up]), [['netlink', true]]);
  });

  it('auto: skips netlink quietly when its helper is not built', async () => {
    let netlinkCalls = 0;
    const p = poller('auto', {
      netlink: async () => {
        netlinkCalls++;
        return okReport('netlink', ['ipv4', 'ipv6'], []);
      },
      ss: async () => okReport('ss', ['ipv4', 'ipv6'], [rec({})]),
    });
    await p.poll();
    assert.equal(netlinkCalls, 0);
    assert.deepEqual(p.snapshot()!.sources.map((x) => x.source), ['ss']);
  });

  it('netlink: a failure is served as such, with no fallback', async () => {
    const p = poller('netlink', { netlinkUsable: async () => true, netlink: async () => failedReport('netlink', 'x'), ss: async () => okReport('ss', ['ipv4'], []) });
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((x) => [x.source, x.up]), [['netlink', false]]);
    assert.equal(p.snapshot()!.forensics, undefined);
  });

  it('auto: uses ss alone when it works', async () => {
    let procCalls = 0;
    const p = poller('auto', {
      ss: async () => okReport('ss', ['ipv4', 'ipv6'], [rec({})]),
      proc: async () => {
        procCalls++;
        return procOk();
      },
    });
    await p.poll();
    assert.equal(procCalls, 0);
    assert.deepEqual(p.snapshot()!.sources.map((x) => x.source), ['ss']);
  });

  it('a failed family is absent while the other one is still served', async () => {
    const p = poller('proc', {
      proc: async () => [failedReport('proc_tcp', 'EACCES'), okReport('proc_tcp6', ['ipv6'], [rec({ family: 'ipv6' })])],
    });
    await p.poll();
    const s = p.snapshot()!;
    assert.equal(s.table.ipv4, undefined);
    assert.equal(s.table.ipv6!.established.sockets, 1);
  });

  it('accumulates parse errors per source', async () => {
    const p = poller('ss', { ss: async () => okReport('ss', ['ipv4', 'ipv6'], [], 3), proc: procOk });
    await p.poll();
    await p.poll();
    assert.equal(p.stats().parseErrorsTotal.get('ss'), 6);
  });

  it('sums FIN-WAIT-1 sockets left untracked beyond --stuck.max-tracked', async () => {
    const records = [rec({ state: 'fin_wait1', remotePort: 1, inode: 0 }), rec({ state: 'fin_wait1', remotePort: 2, inode: 0 })];
    const p = poller(
      'proc',
      {
        proc: async (_p, _s, f) => {
          for (const r of records) f?.add(r);
          return [okReport('proc_tcp', ['ipv4'], records)];
        },
      },
      { forensics: { ...DEFAULT_FORENSICS, maxTracked: 1 } },
    );
    await p.poll();
    await p.poll();
    assert.equal(p.snapshot()!.forensics!.untracked, 1);
    assert.equal(p.stats().untrackedTotal, 2);
  });

  it('survives a reader that throws, and polls again', async () => {
    let calls = 0;
    const p = poller('proc', {
      proc: async () => {
        if (++calls === 1) throw new Error('bug');
        return procOk();
      },
    });
    await p.poll();
    assert.equal(p.snapshot(), undefined);
    await p.poll();
    assert.equal(p.snapshot()!.table.ipv4!.fin_wait1.sockets, 1);
  });

  it('stop() waits for a running poll and publishes nothing after it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = poller('ss', {
      ss: async (_o, signal) => {
        await gate;
        assert.ok(signal.aborted);
        return failedReport('ss', 'cancelled');
      },
      proc: procOk,
    });
    const running = p.poll();
    const stopped = p.stop();
    release();
    await Promise.all([running, stopped]);
    assert.equal(p.snapshot(), undefined);
  });
});
