import { pino } from 'pino';
import type { SocketRecord } from '../../src/model.ts';
import { Poller } from '../../src/poller/poller.ts';
import type { SourceReport } from '../../src/sources/report.ts';
import { okReport } from './reports.ts';

export const silent = pino({ level: 'silent' });

/** A poller whose proc source yields these IPv4 records (and the extra reports), no kernel files. */
export function fakeProcPoller(records: SocketRecord[], extra: SourceReport[] = []): Poller {
  return new Poller({
    mode: 'proc',
    netlink: { path: '/nonexistent/tcpstate-diag', timeoutMs: 1000 },
    ss: { path: 'ss', timeoutMs: 1000 },
    procfs: '/proc',
    cronExpression: '*/1 * * * * *',
    logger: silent,
    readers: {
      kernel: async () => [],
      netlink: () => Promise.reject(new Error('unused')),
      netlinkUsable: async () => false,
      ss: () => Promise.reject(new Error('unused')),
      proc: async (_procfs, _signal, forensics) => {
        for (const r of records) forensics?.add(r);
        return [okReport('proc_tcp', ['ipv4'], records), ...extra];
      },
    },
  });
}
