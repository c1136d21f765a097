import { pino } from 'pino';
import type { SocketRecord } from '../../src/model.ts';
import { Poller } from '../../src/poller/poller.ts';
import type { TableReader } from '../../src/sources/source.ts';
import { okReader } from './readers.ts';

export const silent = pino({ level: 'silent' });

/** A poller whose proc attempt yields these IPv4 records (and the extra readers), no kernel files. */
export function fakeProcPoller(records: SocketRecord[], extra: TableReader[] = []): Poller {
  return new Poller({
    sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], records), ...extra] }], kernel: [] },
    intervalMs: 1000,
    logger: silent,
  });
}
