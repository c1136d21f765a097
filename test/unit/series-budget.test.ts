// The series budget (README "Series budget"): the tcpstate_ series a host can produce, counted from
// the catalogue on a worst-case snapshot, must match the figures the README promises.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_FORENSICS, PERSIST_STATES } from '../../src/aggregate/forensics.ts';
import { MAX_PORTS } from '../../src/config.ts';
import { CATALOGUE, type ScrapeContext } from '../../src/metrics/catalogue.ts';
import { FAMILIES, TCP_STATES, type SocketRecord } from '../../src/model.ts';
import { Poller } from '../../src/poller/poller.ts';
import { kernelReaders } from '../../src/sources/kernel.ts';
import { silent } from '../helpers/poller.ts';
import { failedReader, okReader, rec } from '../helpers/readers.ts';

const FIRST_PORT = 10_000;

/** Every state on every listening port (and on a client port), both families, every optional figure. */
function everything(listeners: number): SocketRecord[] {
  const out: SocketRecord[] = [];
  for (const family of FAMILIES) {
    const localAddress = family === 'ipv4' ? '127.0.0.1' : '::1';
    for (let p = 0; p <= listeners; p++) {
      const localPort = p === listeners ? 55_555 : FIRST_PORT + p; // the last one: nothing listens there
      for (const state of TCP_STATES) {
        if (state === 'listen' && p === listeners) continue;
        const persist = PERSIST_STATES.includes(state);
        out.push(
          rec({
            family, state, localAddress, localPort, remoteAddress: localAddress, remotePort: 40_000 + p,
            sendQueue: state === 'listen' ? 128 : 1000, recvQueue: 10, inode: 0,
            ...(persist ? { timer: 'persist' as const, timerSeconds: 3.2, backoff: 4, rtoSeconds: 0.2, lastDataSentSeconds: 30 } : { timer: 'retransmit' as const, timerSeconds: 0.2 }),
            wmemQueued: 4096,
          }),
        );
      }
    }
  }
  return out;
}

async function seriesCount(ports: readonly number[] | undefined, listeners: number, fallback: boolean): Promise<{ total: number; perPort: number }> {
  const records = everything(listeners);
  const readers = [okReader('proc_tcp', ['ipv4'], records.filter((r) => r.family === 'ipv4')), okReader('proc_tcp6', ['ipv6'], records.filter((r) => r.family === 'ipv6'))];
  const table = fallback
    ? [{ name: 'netlink', readers: [failedReader('netlink', 'no tcp_diag')] }, { name: 'ss', readers: [failedReader('ss', 'EACCES')] }, { name: 'proc', readers }]
    : [{ name: 'proc', readers }];
  const poller = new Poller({
    sources: { table, kernel: kernelReaders('test/fixtures/lab-proc') },
    intervalMs: 1000,
    logger: silent,
    forensics: { ...DEFAULT_FORENSICS, ports, topPorts: ports === undefined && listeners > MAX_PORTS ? MAX_PORTS : 10 },
  });
  await poller.poll();
  const ctx: ScrapeContext = { snapshot: poller.snapshot(), stats: poller.stats(), version: '0', nowMs: Date.now() };
  let total = 0;
  let perPort = 0;
  for (const m of CATALOGUE) {
    const n = [...m.samples(ctx)].length;
    total += n;
    if (m.labels.includes('port')) perPort += n;
  }
  return { total, perPort };
}

/** A figure the README states in its "Series budget" paragraph, e.g. "typical host: **123** series". */
function readmeFigure(what: string): number {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const m = new RegExp(`${what}: \\*\\*([\\d ]+)\\*\\* series`).exec(readme);
  assert.ok(m, `README states "${what}: **N** series"`);
  return Number(m[1]!.replace(/ /g, ''));
}

describe('series budget', () => {
  it('a typical host (--ports.top 10, one source, both families) produces the README figure', async () => {
    const { total, perPort } = await seriesCount(undefined, 40, false);
    console.log(`# typical host: ${total} tcpstate_ series, ${perPort} of them per port`);
    assert.equal(total, readmeFigure('typical host'));
  });

  it(`any host: --ports with ${MAX_PORTS} ports, every state and figure, auto fallback: at most the README bound`, async () => {
    const ports = Array.from({ length: MAX_PORTS }, (_, i) => FIRST_PORT + i);
    const { total, perPort } = await seriesCount(ports, MAX_PORTS + 20, true);
    console.log(`# worst case: ${total} tcpstate_ series, ${perPort} of them per port`);
    assert.equal(total, readmeFigure('any host'));
    // --ports.top at its maximum gives the same per-port count.
    const top = await seriesCount(undefined, MAX_PORTS + 20, true);
    assert.ok(top.total <= total, `--ports.top ${MAX_PORTS}: ${top.total}`);
  });
});

describe('per-port rows', () => {
  it('a listening port has its server-side states only; "other" has every state; sums equal the table', async () => {
    const poller = new Poller({
      sources: { table: [{ name: 'proc', readers: [okReader('proc_tcp', ['ipv4'], everything(3).filter((r) => r.family === 'ipv4'))] }], kernel: [] },
      intervalMs: 1000,
      logger: silent,
    });
    await poller.poll();
    const ctx: ScrapeContext = { snapshot: poller.snapshot(), stats: poller.stats(), version: '0', nowMs: Date.now() };
    const rows = (name: string) => [...CATALOGUE.find((m) => m.name === name)!.samples(ctx)];
    const states = (name: string, port: string) => rows(name).filter((x) => x.labels[0] === port).map((x) => x.labels[1]);
    assert.deepEqual(states('tcpstate_port_sockets', String(FIRST_PORT)), ['established', 'syn_recv', 'fin_wait1', 'fin_wait2', 'time_wait', 'close_wait', 'last_ack', 'listen', 'closing']);
    assert.deepEqual(states('tcpstate_port_send_queue_bytes', String(FIRST_PORT)), ['established', 'syn_recv', 'fin_wait1', 'close_wait', 'last_ack', 'closing']);
    assert.deepEqual(states('tcpstate_port_sockets', 'other'), [...TCP_STATES]);
    assert.deepEqual(states('tcpstate_port_send_queue_bytes', 'other'), TCP_STATES.filter((st) => st !== 'listen'));
    const sum = (name: string, state: string) => rows(name).filter((x) => x.labels.includes(state)).reduce((a, x) => a + x.value, 0);
    for (const state of TCP_STATES) assert.equal(sum('tcpstate_port_sockets', state), sum('tcpstate_sockets', state), state);
  });
});
