// The phase0 captures (test/fixtures/captures/SOURCE.md) describe one socket set seen at one moment
// through /proc and five iproute2 builds. Every file must give the same per-state figures, modulo
// what each command can show.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { TableAggregator, type SocketTable } from '../../src/aggregate/table.ts';
import { FAMILIES, TCP_STATES, type Family, type TcpState } from '../../src/model.ts';
import { ProcNetTcpParser } from '../../src/parsers/proc-net-tcp.ts';
import { SsParser } from '../../src/parsers/ss.ts';
import { feed } from '../helpers/collect.ts';

const DIR = new URL('../fixtures/captures/', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, DIR), 'utf8');

function aggregate(feedAll: (sink: { record: TableAggregator['add']; error: (r: string, l: string) => void }) => void) {
  const agg = new TableAggregator();
  const errors: string[] = [];
  feedAll({ record: (r) => agg.add(r), error: (r, l) => errors.push(`${r}: ${l}`) });
  return { table: agg.result(), errors };
}

function fromProc(): SocketTable {
  const { table, errors } = aggregate((sink) => {
    feed(new ProcNetTcpParser(sink, 'ipv4'), read('proc_tcp'));
    feed(new ProcNetTcpParser(sink, 'ipv6'), read('proc_tcp6'));
  });
  assert.deepEqual(errors, []);
  return table;
}

function fromSs(file: string): SocketTable {
  const { table, errors } = aggregate((sink) => feed(new SsParser(sink), read(file)));
  assert.deepEqual(errors, []);
  return table;
}

type Row = [Family, TcpState, number, number, number, string];
function rows(t: SocketTable, states: readonly TcpState[], withOrphans: boolean): Row[] {
  const out: Row[] = [];
  for (const f of FAMILIES) {
    for (const s of states) {
      const x = t[f]![s];
      const timers = Object.entries(x.timers).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(',');
      out.push([f, s, x.sockets, x.sendQueueBytes, x.recvQueueBytes, `${timers} orphans=${withOrphans ? x.orphanSockets : '-'}`]);
    }
  }
  return out;
}

const VERSIONS = ['v2633', 'v310', 'v412', 'v61', 'head'];
/** Without -a, ss omits LISTEN, CLOSE, TIME-WAIT and SYN-RECV (docs/kernel-and-ss.md#ss). */
const DEFAULT_STATES = TCP_STATES.filter((s) => !['listen', 'close', 'time_wait', 'syn_recv'].includes(s));

describe('phase0 captures: same figures through /proc and every ss version', () => {
  const proc = fromProc();

  it('/proc shows the documented socket set', () => {
    const v4 = proc.ipv4!;
    const v6 = proc.ipv6!;
    assert.equal(v4.listen.sockets + v6.listen.sockets, 6);
    assert.equal(v4.established.timers.persist, 1);
    assert.equal(v4.established.sendQueueBytes, 96256);
    assert.equal(v4.fin_wait2.orphanSockets, 1);
    assert.equal(v4.time_wait.sockets, 1);
    assert.equal(v4.close_wait.recvQueueBytes, 1);
    assert.equal(v4.established.timers.keepalive, 1);
  });

  for (const v of VERSIONS) {
    it(`ss -tanoem (${v}): all states, timers, orphans`, () => {
      assert.deepEqual(rows(fromSs(`ss_tanoem.${v}`), TCP_STATES, true), rows(proc, TCP_STATES, true));
    });
    it(`ss -tanp (${v}): all states, no timers/inodes shown`, () => {
      const t = fromSs(`ss_tanp.${v}`);
      const strip = (r: Row[]) => r.map((x) => x.slice(0, 5));
      assert.deepEqual(strip(rows(t, TCP_STATES, false)), strip(rows(proc, TCP_STATES, false)));
    });
    it(`ss -tnoi (${v}): default states only, timers`, () => {
      assert.deepEqual(rows(fromSs(`ss_tnoi.${v}`), DEFAULT_STATES, false), rows(proc, DEFAULT_STATES, false));
    });
    it(`ss -tno state fin-wait-1 (${v}): header only, no sockets, no errors`, () => {
      const { table, errors } = aggregate((sink) => feed(new SsParser(sink, { state: 'fin_wait1' }), read(`ss_fw1.${v}`)));
      assert.deepEqual(errors, []);
      assert.equal(table.ipv4!.fin_wait1.sockets + table.ipv6!.fin_wait1.sockets, 0);
    });
  }

  it('persist timer: old "N.NNNms" and new "N.NNNsec" both read as ~1.4 s, like /proc', () => {
    const procMax = proc.ipv4!.established.persistMaxSeconds;
    for (const v of VERSIONS) {
      const ss = fromSs(`ss_tanoem.${v}`).ipv4!.established.persistMaxSeconds;
      // The captures were taken a few hundred ms apart, while the timer ran down.
      assert.ok(Math.abs(ss - procMax) < 0.3, `${v}: ${ss} vs /proc ${procMax}`);
    }
  });
});
