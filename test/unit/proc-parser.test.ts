import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Family } from '../../src/model.ts';
import { ProcNetTcpParser, decodeProcAddress } from '../../src/parsers/proc-net-tcp.ts';
import { CollectingSink, feed } from '../helpers/collect.ts';

function parse(text: string, family: Family = 'ipv4'): CollectingSink {
  const sink = new CollectingSink();
  feed(new ProcNetTcpParser(sink, family), text);
  return sink;
}

const HEADER4 = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode' + ' '.repeat(53);

// Real lines from the lab (kernel 6.18, USER_HZ 100); fields: docs/kernel-and-ss.md#proc-net-tcp.
const LISTEN = '   0: 0100007F:1B59 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11807 1 0000000017a7ff87 100 0 0 10 0                     ';
const KEEPALIVE = '  10: 0100007F:BF18 0100007F:1B5A 01 00000000:00000000 02:000AFB00 00000000     0        0 11818 2 00000000f4fbcc6f 20 0 0 10 -1';
const ORPHAN_FW1 = '   5: 0100007F:E9BC 0100007F:1B59 04 00017801:00000000 04:000009F4 00000000     0        0 0 2 000000009268df2d 20 0 0 12 -1';
const TIME_WAIT = '   7: 0100007F:E9CA 0100007F:1B59 06 00000000:00000000 03:000015F0 00000000     0        0 0 3 00000000bfff74cd';
const FW2_MINISOCK = '   8: 0100007F:E9D6 0100007F:1B59 05 00000000:00000000 03:000015F1 00000000     0        0 0 3 0000000011b129f4';
const MAPPED6 = '   4: 0000000000000000FFFF00000100007F:1B5A 0000000000000000FFFF00000100007F:BF18 01 00000000:00000000 00:00000000 00000000     0        0 11819 1 0000000083ab4df6 20 0 0 10 -1';
const SYN_RECV = '  10: 0100007F:1B62 0100007F:CA7A 03 00000000:00000000 01:00000141 00000002     0        0 0 0 00000000db6394c2';

describe('ProcNetTcpParser: real lines of every shape', () => {
  it('LISTEN, with the header and IPv4 padding to 149 columns', () => {
    const sink = parse(`${HEADER4}\n${LISTEN}`);
    assert.deepEqual(sink.errors, []);
    assert.deepEqual(sink.records, [
      {
        family: 'ipv4', state: 'listen', localAddress: '127.0.0.1', localPort: 7001, remoteAddress: '0.0.0.0', remotePort: 0,
        recvQueue: 0, sendQueue: 0, timer: undefined, timerSeconds: 0, timerCount: 0, inode: 11807, wmemQueued: undefined, backoff: undefined, rtoSeconds: undefined, lastDataSentSeconds: undefined, identity: '0000000017a7ff87',
      },
    ]);
  });
  it('keepalive timer: tm->when is USER_HZ ticks (0xAFB00 = 7196.16 s)', () => {
    const [r] = parse(KEEPALIVE).records;
    assert.deepEqual([r!.state, r!.timer, r!.timerSeconds, r!.localPort, r!.remotePort], ['established', 'keepalive', 7196.16, 48920, 7002]);
  });
  it('orphaned FIN-WAIT-1 in persist: tx 0x17801 = 96256 data + 1 FIN, 25.48 s, inode 0', () => {
    const [r] = parse(ORPHAN_FW1).records;
    assert.deepEqual(
      [r!.state, r!.sendQueue, r!.recvQueue, r!.timer, r!.timerSeconds, r!.timerCount, r!.inode],
      ['fin_wait1', 96257, 0, 'persist', 25.48, 0, 0],
    );
  });
  it('TIME-WAIT short line (11 tokens)', () => {
    const [r] = parse(TIME_WAIT).records;
    assert.deepEqual([r!.state, r!.timer, r!.timerSeconds, r!.inode], ['time_wait', 'timewait', 56.16, 0]);
  });
  it('orphaned FIN-WAIT-2 minisock: state 05 on a TIME-WAIT-style line', () => {
    const [r] = parse(FW2_MINISOCK).records;
    assert.deepEqual([r!.state, r!.timer, r!.timerSeconds, r!.inode], ['fin_wait2', 'timewait', 56.17, 0]);
  });
  it('SYN-RECV short line: retransmit count from retrnsmt', () => {
    const [r] = parse(SYN_RECV).records;
    assert.deepEqual([r!.state, r!.timer, r!.timerSeconds, r!.timerCount], ['syn_recv', 'retransmit', 3.21, 2]);
  });
  it('IPv4-mapped peer in tcp6', () => {
    const [r] = parse(MAPPED6, 'ipv6').records;
    assert.deepEqual([r!.family, r!.localAddress, r!.localPort, r!.remotePort], ['ipv6', '::ffff:127.0.0.1', 7002, 48920]);
  });
});

describe('ProcNetTcpParser: variants and traps', () => {
  it('sl wider than 4 digits, without a leading space', () => {
    const sink = parse(LISTEN.replace('   0:', '10301:'));
    assert.equal(sink.records.length, 1);
  });
  it('deduplicates a socket returned twice in one read (seq_file under churn)', () => {
    const sink = parse([ORPHAN_FW1, TIME_WAIT, ORPHAN_FW1.replace('   5:', '10324:')].join('\n'));
    assert.equal(sink.records.length, 2);
    assert.equal(sink.errors.length, 0);
  });
  it('kernel pointers hidden (kptr_restrict, unprivileged reader): SO_REUSEPORT listeners on one address stay distinct', () => {
    const hidden = (line: string) => line.replace(/ [0-9a-f]{16}( |$)/, ' 0000000000000000$1');
    const second = hidden(LISTEN).replace(' 11807 ', ' 11809 ').replace('   0:', '   1:');
    const sink = parse([hidden(LISTEN), second, hidden(ORPHAN_FW1), hidden(TIME_WAIT)].join('\n'));
    assert.deepEqual(sink.records.map((r) => [r.state, r.inode]), [['listen', 11807], ['listen', 11809], ['fin_wait1', 0], ['time_wait', 0]]);
    // The same socket handed out twice is still counted once.
    const again = parse([hidden(LISTEN), second, hidden(LISTEN).replace('   0:', '   2:')].join('\n'));
    assert.equal(again.records.length, 2);
  });
  it('treats an overdue timer printed wider than 8 digits (kernel <= 3.6) as due', () => {
    const [r] = parse(ORPHAN_FW1.replace('04:000009F4', '04:FFFFFFFFFFFFFF9C')).records;
    assert.deepEqual([r!.timer, r!.timerSeconds], ['persist', 0]);
  });
  it('skips NEW_SYN_RECV (0C) and BOUND_INACTIVE (0D) quietly', () => {
    const sink = parse([LISTEN.replace(' 0A ', ' 0C '), LISTEN.replace(' 0A ', ' 0D ')].join('\n'));
    assert.deepEqual([sink.records.length, sink.errors.length], [0, 0]);
  });
  it('empty input, header only', () => {
    for (const t of ['', HEADER4, '\n\n']) assert.deepEqual([parse(t).records.length, parse(t).errors.length], [0, 0]);
  });
});

describe('ProcNetTcpParser: malformed lines are counted, never thrown', () => {
  const BAD: ReadonlyArray<[string, RegExp]> = [
    [LISTEN.slice(0, 60), /truncated/],
    [TIME_WAIT.split(' ').slice(0, -1).join(' '), /truncated/],
    [LISTEN.replace('0100007F:1B59', '0100007:1B59'), /8 hex digits/],
    [LISTEN.replace('0100007F:1B59', '0100007G:1B59'), /malformed/],
    [LISTEN.replace(' 0A ', ' ZZ '), /malformed/],
    [LISTEN.replace(' 0A ', ' 2A '), /unknown state/],
    [LISTEN.replace('00000000:00000000 00:', '0000000000000000 00:'), /malformed/],
    [LISTEN.replace('11807', '-5'), /malformed/],
    [LISTEN.replace('   0:', '   0 '), /unrecognised/],
  ];
  for (const [line, reason] of BAD) {
    it(reason.source, () => {
      const sink = parse(line);
      assert.equal(sink.records.length, 0);
      assert.equal(sink.errors.length, 1, JSON.stringify(sink.errors));
      assert.match(sink.errors[0]!.reason, reason);
    });
  }
  it('an IPv4 line in tcp6 is rejected', () => {
    assert.equal(parse(LISTEN, 'ipv6').errors.length, 1);
  });
  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom(...'0123456789ABCDEFabcdef :\t-'.split('')) })), (lines) => {
        const sink = new CollectingSink();
        const p = new ProcNetTcpParser(sink, 'ipv4');
        for (const l of lines) p.line(l);
        p.end();
      }),
      { numRuns: 3000 },
    );
  });
});

describe('decodeProcAddress', () => {
  const T: ReadonlyArray<[string, Family, string | undefined]> = [
    ['0100007F', 'ipv4', '127.0.0.1'],
    ['3500007F', 'ipv4', '127.0.0.53'],
    ['00000000', 'ipv4', '0.0.0.0'],
    ['00000000000000000000000001000000', 'ipv6', '::1'],
    ['00000000000000000000000000000000', 'ipv6', '::'],
    ['0000000000000000FFFF00000100007F', 'ipv6', '::ffff:127.0.0.1'],
    ['000080FE000000000000000001000000', 'ipv6', 'fe80::1'],
    ['000080FE00000000FF000000FE000000', 'ipv6', 'fe80::ff:0:fe'],
    ['B80D0120000000000000000001000000', 'ipv6', '2001:db8::1'],
    ['0100007', 'ipv4', undefined],
    ['XX00007F', 'ipv4', undefined],
  ];
  for (const [hex, fam, want] of T) it(`${hex} → ${String(want)}`, () => assert.equal(decodeProcAddress(hex, fam), want));
});
