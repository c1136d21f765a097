import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { clearRecord, emptyRecord, type SocketRecord } from '../../src/model.ts';
import { isIP } from 'node:net';
import { SsParser, isDottedQuad, parseSsEndpoint, stateFromName } from '../../src/parsers/ss.ts';
import { tokenize } from '../../src/parsers/tokens.ts';
import { CollectingSink, feed } from '../helpers/collect.ts';

function parse(text: string, state?: Parameters<typeof stateFromName>[0]): CollectingSink {
  const sink = new CollectingSink();
  const s = state === undefined ? undefined : stateFromName(state);
  feed(new SsParser(sink, s === undefined ? {} : { state: s }), text);
  return sink;
}

function one(text: string, state?: string): SocketRecord {
  const sink = parse(text, state);
  assert.deepEqual(sink.errors, []);
  assert.equal(sink.records.length, 1, `records of ${JSON.stringify(text)}`);
  return sink.records[0]!;
}

// Lines captured from iproute2 2.6.33 … 7.1 (test/fixtures/captures/SOURCE.md); formats: docs/kernel-and-ss.md#ss.
describe('SsParser: captured lines of every iproute2 generation', () => {
  it('(1) v2.6.33 -tanoem: old mem:, continuation line, empty persist value', () => {
    const r = one(
      'FIN-WAIT-1 0      96257             127.0.0.1:59836            127.0.0.1:7001   timer:(persist,,0) ino:0 sk:000000c0\n\t mem:(r0,w131200,f3968,t0)',
    );
    assert.deepEqual(r, {
      family: 'ipv4',
      state: 'fin_wait1',
      localAddress: '127.0.0.1',
      localPort: 59836,
      remoteAddress: '127.0.0.1',
      remotePort: 7001,
      recvQueue: 0,
      sendQueue: 96257,
      timer: 'persist',
      timerSeconds: 0,
      timerCount: 0,
      inode: 0,
      wmemQueued: 131200,
      backoff: undefined,
      rtoSeconds: undefined,
      lastDataSentSeconds: undefined,
      identity: 0xc0,
    });
  });
  it('(2) v2.6.33 -tanoep: timer before users, old users format, unbracketed v4-mapped', () => {
    const sink = parse(
      'ESTAB      0      0                 127.0.0.1:48920            127.0.0.1:7002   timer:(keepalive,113min,0) users:(("python3",9602,11)) ino:11818 sk:000000c6\n' +
        'ESTAB      0      0          ::ffff:127.0.0.1:7002      ::ffff:127.0.0.1:48920  users:(("python3",9602,13)) ino:11819 sk:000000c8',
    );
    assert.deepEqual(sink.errors, []);
    const [a, b] = sink.records;
    assert.equal(a!.timer, 'keepalive');
    assert.equal(a!.timerSeconds, 113 * 60);
    assert.equal(a!.inode, 11818);
    assert.equal(b!.family, 'ipv6');
    assert.equal(b!.localAddress, '::ffff:127.0.0.1');
    assert.equal(b!.localPort, 7002);
    assert.equal(b!.inode, 11819);
  });
  it('(3) v3.10: skmem without d, shutdown marker', () => {
    const r = one(
      'FIN-WAIT-1 0      96257             127.0.0.1:59836            127.0.0.1:7001   timer:(persist,,0) ino:0 sk:000000c0 ---\n\t skmem:(r0,rb131072,t0,tb131072,f3968,w131200,o0,bl0)',
    );
    assert.equal(r.wmemQueued, 131200);
    assert.equal(r.sendQueue, 96257);
  });
  it('(4) v4.12: * for 0.0.0.0, ::: for IPv6 any, %ifname, pid=/fd=', () => {
    const sink = parse(
      'LISTEN     0      8      127.0.0.53%lo:7006                     *:*                   ino:11811 sk:ba <->\n' +
        'LISTEN     0      8           :::7002                    :::*                   users:(("python3",pid=9602,fd=4)) ino:11808 sk:bb v6only:0 <->',
    );
    assert.deepEqual(sink.errors, []);
    const [a, b] = sink.records;
    assert.deepEqual([a!.family, a!.localAddress, a!.localPort, a!.remoteAddress, a!.remotePort], ['ipv4', '127.0.0.53', 7006, '*', 0]);
    assert.deepEqual([b!.family, b!.localAddress, b!.localPort, b!.state, b!.sendQueue], ['ipv6', '::', 7002, 'listen', 8]);
  });
  it('(5) 6.1 (pre-6.11): "1.384ms" is 1.384 SECONDS', () => {
    const r = one(
      'FIN-WAIT-1 0      2985985     127.0.0.1:34758    127.0.0.1:7021  timer:(persist,1.384ms,0) ino:0 sk:70cd cgroup:/ ---\n\t skmem:(r0,rb131072,t0,tb4194304,f3520,w4194880,o0,bl0,d0)',
    );
    assert.equal(r.timerSeconds, 1.384);
    assert.equal(r.sendQueue, 2985985);
    assert.equal(r.wmemQueued, 4194880);
  });
  it('(6) 7.1 -tanoemO: one line, skmem on the socket line', () => {
    const r = one(
      'FIN-WAIT-1 0      2985985     127.0.0.1:34758    127.0.0.1:7021 timer:(persist,1.672sec,0) ino:0 sk:70cd cgroup:/ --- skmem:(r0,rb131072,t0,tb4194304,f3520,w4194880,o0,bl0,d0)',
    );
    assert.equal(r.timerSeconds, 1.672);
    assert.equal(r.wmemQueued, 4194880);
    assert.equal(r.inode, 0);
  });
  it('(7) 7.1 -HtnoO state fin-wait-1: no header, no State column → needs the state', () => {
    const line = '0      2985985 127.0.0.1:34758 127.0.0.1:7021 timer:(persist,1.552sec,0)';
    const r = one(line, 'fin-wait-1');
    assert.equal(r.state, 'fin_wait1');
    assert.equal(r.inode, undefined);
    const sink = parse(line);
    assert.equal(sink.records.length, 0);
    assert.equal(sink.errors.length, 1);
    assert.match(sink.errors[0]!.reason, /State column/);
  });
  it('(8) 7.1: orphaned FIN-WAIT-2 is a timewait minisock', () => {
    const r = one('FIN-WAIT-2  0       0                 127.0.0.1:59862              127.0.0.1:7001    timer:(timewait,55sec,0) ino:0 sk:c2');
    assert.deepEqual([r.state, r.timer, r.timerSeconds, r.inode], ['fin_wait2', 'timewait', 55, 0]);
  });
  it('(9) 6.1/7.1: bracketed mapped address, dual-stack * with v6only:0, [::] v6only', () => {
    const sink = parse(
      'ESTAB  0      0      [::ffff:127.0.0.1]:7002  [::ffff:127.0.0.1]:48920 users:(("python3",pid=9602,fd=13)) ino:11819 sk:c8 cgroup:/ <->\n' +
        'LISTEN 0      8                       *:7002                   *:*     users:(("python3",pid=9602,fd=4)) ino:11808 sk:bb cgroup:/ v6only:0 <->\n' +
        'LISTEN 0      8                    [::]:7004                [::]:*     users:(("python3",pid=9602,fd=5)) ino:11809 sk:bd cgroup:/ v6only:1 <->',
    );
    assert.deepEqual(sink.errors, []);
    assert.deepEqual(
      sink.records.map((r) => [r.family, r.localAddress, r.localPort]),
      [
        ['ipv6', '::ffff:127.0.0.1', 7002],
        ['ipv6', '*', 7002],
        ['ipv6', '::', 7004],
      ],
    );
  });
  it('(10) 7.1 persist interval at the 120 s cap, filtered capture', () => {
    const r = one('0      96257      127.0.0.1:59836    127.0.0.1:7001 timer:(persist,1min59sec,0)', 'fin-wait-1');
    assert.equal(r.timerSeconds, 119);
  });
  it('(11) SYN-RECV via state filter: 7.1 sec and 6.1 ms spellings agree', () => {
    const a = one('0      0          127.0.0.1:7010    127.0.0.1:51834 timer:(on,3.200sec,0) ino:0 sk:c9', 'syn-recv');
    const b = one('0      0          127.0.0.1:7010    127.0.0.1:51834 timer:(on,3.188ms,0) ino:0 sk:c9', 'syn-recv');
    assert.deepEqual([a.state, a.timer, a.timerSeconds], ['syn_recv', 'retransmit', 3.2]);
    assert.deepEqual([b.timer, b.timerSeconds], ['retransmit', 3.188]);
  });
  it('(12) LISTEN: Recv-Q = accept queue, Send-Q = backlog', () => {
    const r = one('LISTEN     0      16                127.0.0.1:7001                     *:*      ino:11807 sk:000000b9');
    assert.deepEqual([r.state, r.recvQueue, r.sendQueue, r.family], ['listen', 0, 16, 'ipv4']);
  });
});

describe('SsParser: layout variants', () => {
  it('a bare *:port is classified by the whole capture, not by the lines before it (dual-stack listeners first)', () => {
    const header = 'State      Recv-Q Send-Q      Local Address:Port        Peer Address:Port Process';
    const dual = 'LISTEN     0      8                       *:7002                   *:*     users:(("python3",pid=9602,fd=4))';
    // iproute2 >= 4.14: `*` is a dual-stack IPv6 socket; what follows shows the generation.
    const modern = parse([header, dual, dual.replace(':7002', ':7003'), 'LISTEN     0      16              127.0.0.1:7001             0.0.0.0:*'].join('\n'));
    assert.deepEqual(modern.records.map((r) => [r.localPort, r.family]), [[7002, 'ipv6'], [7003, 'ipv6'], [7001, 'ipv4']]);
    // iproute2 < 4.14: `*` is the IPv4 wildcard (IPv6 prints :::port); a v4 listener's peer is `*:*`.
    const old = parse([header, dual, 'LISTEN     0      16              127.0.0.1:7001                  *:*'].join('\n'));
    assert.deepEqual(old.records.map((r) => [r.localPort, r.family]), [[7002, 'ipv4'], [7001, 'ipv4']]);
    const oldSix = parse([header, dual, 'LISTEN     0      16              :::7004                  :::*'].join('\n'));
    assert.deepEqual(oldSix.records.map((r) => [r.localPort, r.family]), [[7002, 'ipv4'], [7004, 'ipv6']]);
  });
  it('skips headers of every era, with or without State/Netid/Process', () => {
    for (const h of [
      'State      Recv-Q Send-Q        Local Address:Port          Peer Address:Port ',
      'State      Recv-Q Send-Q      Local Address:Port        Peer Address:Port Process',
      'Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
      'Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process',
    ]) {
      const sink = parse(h);
      assert.deepEqual([sink.records.length, sink.errors.length], [0, 0], h);
    }
  });
  it('accepts a Netid column', () => {
    const r = one('tcp   ESTAB 0 5 10.0.0.1:22 10.0.0.2:5000 ino:5 sk:1');
    assert.deepEqual([r.state, r.sendQueue], ['established', 5]);
  });
  it('rejects other protocols under a Netid column', () => {
    const sink = parse('udp   ESTAB 0 0 10.0.0.1:53 10.0.0.2:5000');
    assert.equal(sink.records.length, 0);
    assert.equal(sink.errors.length, 1);
  });
  it('reads -i backoff from a continuation line', () => {
    const r = one(
      'ESTAB      0      96256  127.0.0.1:59836              127.0.0.1:7001                timer:(persist,1.412ms,0)\n\t ts sack bbr wscale:0,10 rto:208 backoff:4 rtt:5.167/10.224 mss:2048',
    );
    assert.equal(r.backoff, 4);
    assert.equal(r.rtoSeconds, 0.208);
  });
  it('reads -i rto and lastsnd, on a continuation line and with -O on the socket line', () => {
    const info = 'cubic wscale:7,7 rto:204 backoff:9 rtt:0.031/0.017 ato:40 mss:32768 pmtu:65535 rcvmss:536 advmss:65483 cwnd:10 lastsnd:41024 lastrcv:40968 lastack:968';
    const line = 'FIN-WAIT-1 0 96257 127.0.0.1:17001 127.0.0.1:49134 timer:(persist,1min59sec,0) ino:0 sk:7';
    for (const text of [`${line}\n\t ${info}`, `${line} ${info}`]) {
      const r = one(text);
      assert.deepEqual([r.backoff, r.rtoSeconds, r.lastDataSentSeconds], [9, 0.204, 41.024], text);
    }
  });
  it('fills in what ss -i leaves out at its default (tcp_show_info()): backoff 0, lastsnd 0, RTO exactly 3 s', () => {
    const r = one('FIN-WAIT-1 0 96257 127.0.0.1:17001 127.0.0.1:49134 ino:0 sk:7\n\t cubic wscale:7,7 rtt:0.031/0.017 ato:40 mss:32768 advmss:65483 cwnd:10 lastrcv:40968');
    assert.deepEqual([r.backoff, r.rtoSeconds, r.lastDataSentSeconds], [0, 3, 0]);
    // Without -i nothing is known.
    const bare = one('FIN-WAIT-1 0 96257 127.0.0.1:17001 127.0.0.1:49134 ino:0 sk:7');
    assert.deepEqual([bare.backoff, bare.rtoSeconds, bare.lastDataSentSeconds], [undefined, undefined, undefined]);
  });
  it('an rto fraction of a millisecond (HZ that does not divide 1000)', () => {
    const rto = one('ESTAB 0 0 127.0.0.1:1 127.0.0.1:2\n\t rto:203.333 mss:536').rtoSeconds!;
    assert.ok(Math.abs(rto - 0.203333) < 1e-12, String(rto));
  });
  it('survives process names with spaces', () => {
    const r = one('ESTAB 0 0 127.0.0.1:1 127.0.0.1:2 users:(("Web Content",pid=1,fd=2),("x ino:9",pid=3,fd=4)) ino:77 sk:1');
    assert.equal(r.inode, 77);
  });
  it('ignores the empty tab line TIME-WAIT sockets get under -m', () => {
    const sink = parse('TIME-WAIT 0 0 127.0.0.1:59850 127.0.0.1:7001 timer:(timewait,56sec,0) ino:0 sk:c1\n\t                 \n');
    assert.deepEqual([sink.records.length, sink.errors.length], [1, 0]);
  });
  it('skips states without a label value (UNDEF, BOUND-INACTIVE)', () => {
    const sink = parse('UNDEF 0 0 127.0.0.1:1 127.0.0.1:2\nBOUND-INACTIVE 0 0 127.0.0.1:1 0.0.0.0:*');
    assert.deepEqual([sink.records.length, sink.errors.length], [0, 0]);
  });
  it('maps every ss state name', () => {
    const names: Record<string, string> = {
      ESTAB: 'established', 'SYN-SENT': 'syn_sent', 'SYN-RECV': 'syn_recv', 'FIN-WAIT-1': 'fin_wait1',
      'FIN-WAIT-2': 'fin_wait2', 'TIME-WAIT': 'time_wait', UNCONN: 'close', 'CLOSE-WAIT': 'close_wait',
      'LAST-ACK': 'last_ack', LISTEN: 'listen', CLOSING: 'closing',
    };
    for (const [ss, label] of Object.entries(names)) {
      assert.equal(one(`${ss} 0 0 10.0.0.1:1 10.0.0.2:2`).state, label);
    }
  });
  it('gives empty input no records and no errors', () => {
    for (const text of ['', '\n\n', '   ']) {
      const sink = parse(text);
      assert.deepEqual([sink.records.length, sink.errors.length], [0, 0]);
    }
  });
});

describe('SsParser: malformed and truncated lines are counted, never thrown', () => {
  const BAD: ReadonlyArray<[string, RegExp]> = [
    ['ESTAB 0 0 127.0.0.1:1', /truncated/],
    ['ESTAB', /truncated/],
    ['ESTAB x 0 127.0.0.1:1 127.0.0.1:2', /Recv-Q/],
    ['ESTAB 0 -5 127.0.0.1:1 127.0.0.1:2', /Recv-Q/],
    ['ESTAB 0 0 127.0.0.1 127.0.0.1:2', /address/],
    ['ESTAB 0 0 127.0.0.1:99999 127.0.0.1:2', /address/],
    ['ESTAB 0 0 [::1:5 127.0.0.1:2', /address/],
    ['ESTAB 0 0 127.0.0.1:1 127.0.0.1:2 timer:(persist,zz,0)', /timer/],
    ['ESTAB 0 0 127.0.0.1:1 127.0.0.1:2 timer:persist', /timer/],
    ['ESTAB 0 0 127.0.0.1:1 127.0.0.1:2 ino:abc', /inode/],
    ['garbage line here', /unrecognised/],
    ['\t skmem:(r0,w5)', /continuation/],
  ];
  for (const [line, reason] of BAD) {
    it(JSON.stringify(line), () => {
      const sink = parse(line);
      assert.equal(sink.records.length, 0);
      assert.equal(sink.errors.length, 1);
      assert.match(sink.errors[0]!.reason, reason);
      assert.equal(sink.errors[0]!.line, line);
    });
  }
  it('keeps going after a bad line', () => {
    const sink = parse('ESTAB 0 0 127.0.0.1:1\nESTAB 0 7 127.0.0.1:1 127.0.0.1:2');
    assert.deepEqual([sink.records.length, sink.errors.length, sink.records[0]!.sendQueue], [1, 1, 7]);
  });
  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom(...'ESTAB0123456789 :.[]*%\t()-,abcdefimnoprstuwkLISTEN'.split('')) })), (lines) => {
        const sink = new CollectingSink();
        const p = new SsParser(sink, { state: 'fin_wait1' });
        for (const l of lines) p.line(l);
        p.end();
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseSsEndpoint', () => {
  const T: ReadonlyArray<[string, [string, number] | undefined]> = [
    ['127.0.0.1:7001', ['127.0.0.1', 7001]],
    ['*:*', ['*', 0]],
    ['0.0.0.0:*', ['0.0.0.0', 0]],
    [':::7002', ['::', 7002]],
    [':::*', ['::', 0]],
    ['[::]:7004', ['::', 7004]],
    ['[::1]:42234', ['::1', 42234]],
    ['::ffff:127.0.0.1:7002', ['::ffff:127.0.0.1', 7002]],
    ['[::ffff:127.0.0.1]:7002', ['::ffff:127.0.0.1', 7002]],
    ['127.0.0.53%lo:7006', ['127.0.0.53', 7006]],
    ['[fe80::1]%eth0:22', ['fe80::1', 22]],
    ['10.0.0.1:ssh', ['10.0.0.1', 0]],
    ['nocolon', undefined],
    [':80', undefined],
    ['1.2.3.4:', undefined],
    ['[::1:80', undefined],
  ];
  for (const [text, want] of T) {
    it(text, () => {
      const e = parseSsEndpoint(text);
      assert.deepEqual(e === undefined ? undefined : [e.host, e.port], want);
    });
  }
});

describe('parseSsEndpoint: one line after another', () => {
  // The streaming parser reuses its endpoints and takes a host equal to the one before without
  // slicing it again: hosts that share a beginning, change form or fail must come out as they do alone.
  // (A local `*` is held until the capture shows its generation, which reorders records: not here.)
  const HOSTS = ['10.0.0.1', '10.0.0.10', '10.0.0.1%lo', '[10.0.0.1]', '::1', '[::1]', '::1%eth0', '::ffff:10.0.0.1', 'db-1', '01.2.3.4', '[::1', ''];
  const PORTS = ['80', '8', '*', 'ssh', '70000'];
  it('gives every line what parseSsEndpoint() gives it alone', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom(...PORTS), fc.constantFrom('*', ...HOSTS), fc.constantFrom(...PORTS)), { maxLength: 12 }), (sockets) => {
        const lines = sockets.map(([lh, lp, rh, rp]) => `ESTAB 0 0 ${lh}:${lp} ${rh}:${rp}`);
        const sink = parse(lines.join('\n'));
        const want = sockets.flatMap(([lh, lp, rh, rp]) => {
          const l = parseSsEndpoint(`${lh}:${lp}`);
          const r = parseSsEndpoint(`${rh}:${rp}`);
          return l === undefined || r === undefined ? [] : [[l.host, l.port, r.host, r.port]];
        });
        assert.deepEqual(
          sink.records.map((x) => [x.localAddress, x.localPort, x.remoteAddress, x.remotePort]),
          want,
        );
        assert.equal(sink.errors.length, sockets.length - want.length);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isDottedQuad', () => {
  it("accepts exactly what node's isIP() calls IPv4", () => {
    const near = fc.string({ unit: fc.constantFrom(...'0123456789.'.split('')), maxLength: 17 });
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV4Extended(), near, fc.string()), (s) => {
        assert.equal(isDottedQuad(s), isIP(s) === 4, s);
      }),
      { numRuns: 5000 },
    );
    for (const s of ['0.0.0.0', '255.255.255.255', '256.1.1.1', '1.2.3', '1.2.3.4.', '01.2.3.4', '1..2.3', '']) assert.equal(isDottedQuad(s), isIP(s) === 4, s);
  });
});

describe('tokenize', () => {
  it('splits like /[ \\t]+/ without empty tokens', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(' ', '\t', 'a', 'b', ':') }), (s) => {
        assert.deepEqual(tokenize(s, []), s.split(/[ \t]+/).filter((x) => x !== ''));
      }),
    );
  });
  it('gives the same tokens when the parsers reuse one array line after line', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom(' ', '\t', 'a', 'b', ':') })), fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }), (lines, max) => {
        const out: string[] = [];
        for (const s of lines) {
          const want = s.split(/[ \t]+/).filter((x) => x !== '').slice(0, max ?? Infinity);
          assert.deepEqual([...tokenize(s, out, max)], want);
        }
      }),
    );
  });
});

describe('stateFromName', () => {
  it('accepts ss filter names and label values', () => {
    assert.equal(stateFromName('fin-wait-1'), 'fin_wait1');
    assert.equal(stateFromName('fin_wait1'), 'fin_wait1');
    assert.equal(stateFromName('syn-rcv'), 'syn_recv');
    assert.equal(stateFromName('listening'), 'listen');
    assert.equal(stateFromName('bogus'), undefined);
    assert.equal(stateFromName('toString'), undefined);
  });
});

describe('SsParser: sk: cookies', () => {
  const CASES: Array<[string, number | string]> = [
    ['sk:70cd', 0x70cd], // iproute2 >= 4.x: %llx of a generated cookie
    ['sk:000000c0', 0xc0], // old ss: %08x%08x
    ['sk:00000001000000ab', 0x1_0000_00ab],
    ['sk:ffff880036d0c000', 'ffff880036d0c000'], // kernels < 4.1: the cookie was the socket's address
    ['sk:zz', 'zz'],
  ];
  for (const [tok, want] of CASES) {
    it(`${tok} → ${String(want)}`, () => {
      const sink = new CollectingSink();
      feed(new SsParser(sink), `ESTAB 0 0 127.0.0.1:1 127.0.0.1:2 ino:5 ${tok}`);
      assert.deepEqual(sink.errors, []);
      assert.equal(sink.records[0]!.identity, want);
    });
  }
});

describe('clearRecord(): a reused record starts each socket as a new one', () => {
  it('leaves no field of the socket before (every field of SocketRecord, set)', () => {
    const dirty: SocketRecord = { ...emptyRecord('ipv6', 'fin_wait1') };
    // Every field a parser may set, set to something emptyRecord() does not give.
    for (const k of Object.keys(dirty) as Array<keyof SocketRecord>) (dirty as unknown as Record<string, unknown>)[k] = `set-${k}`;
    assert.deepEqual(clearRecord(dirty, 'ipv4', 'established'), emptyRecord('ipv4', 'established'));
  });
});

