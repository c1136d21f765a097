import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_FORENSICS } from '../../src/aggregate/forensics.ts';
import { Poller, type Readers } from '../../src/poller/poller.ts';
import type { SourceReport } from '../../src/sources/report.ts';
import { failedReport, okReport, rec } from '../helpers/reports.ts';

const silent = pino({ level: 'silent' });

function poller(mode: 'auto' | 'ss' | 'proc', readers: Omit<Readers, 'kernel'>): Poller {
  return new Poller({
    mode,
    ss: { path: 'ss', timeoutMs: 1000 },
    procfs: '/proc',
    cronExpression: '*/1 * * * * *',
    logger: silent,
    readers: { kernel: async () => [], ...readers },
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
      ss: () => Promise.reject(new Error('unused')),
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
    const p = new Poller({
      mode: 'proc',
      ss: { path: 'ss', timeoutMs: 1000 },
      procfs: '/proc',
      cronExpression: '*/1 * * * * *',
      logger: silent,
      forensics: { ...DEFAULT_FORENSICS, maxTracked: 1 },
      readers: {
        kernel: async () => [],
        ss: () => Promise.reject(new Error('unused')),
        proc: async (_p, _s, f) => {
          for (const r of records) f?.add(r);
          return [okReport('proc_tcp', ['ipv4'], records)];
        },
      },
    });
    await p.poll();
    await p.poll();
    assert.equal(p.snapshot()!.forensics!.untracked, 1);
    assert.equal(p.stats().untrackedTotal, 2);
  });

  it('survives a reader that throws, and polls again', async () => {
    let calls = 0;
    const p = poller('proc', {
      ss: () => Promise.reject(new Error('unused')),
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
