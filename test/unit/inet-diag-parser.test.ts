import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TCP_STATES } from '../../src/model.ts';
import { InetDiagParser, stateMask } from '../../src/parsers/inet-diag.ts';
import { CollectingSink } from '../helpers/collect.ts';

// Messages built byte by byte after the kernel's structs (include/uapi/linux/inet_diag.h), so the
// parser is checked against the layout, not against itself.

interface Msg {
  family?: number;
  state?: number;
  timer?: number;
  retrans?: number;
  sport?: number;
  dport?: number;
  src?: number[];
  dst?: number[];
  cookie?: [number, number];
  expires?: number;
  rqueue?: number;
  wqueue?: number;
  uid?: number;
  inode?: number;
  attrs?: Array<{ type: number; payload: Buffer }>;
}

function u32(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
}

function u16(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}

function nlmsg(type: number, payload: Buffer, le = true): Buffer {
  return Buffer.concat([u32(16 + payload.length, le), u16(type, le), u16(2, le), u32(1, le), u32(0, le), payload]);
}

function diagMsg(m: Msg, le = true): Buffer {
  const addr = (a: number[] | undefined) => {
    const b = Buffer.alloc(16);
    Buffer.from(a ?? [127, 0, 0, 1]).copy(b);
    return b;
  };
  const port = (p: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(p);
    return b;
  };
  const body = Buffer.concat([
    Buffer.from([m.family ?? 2, m.state ?? 1, m.timer ?? 0, m.retrans ?? 0]),
    port(m.sport ?? 17001),
    port(m.dport ?? 49134),
    addr(m.src),
    addr(m.dst),
    u32(0, le),
    u32(m.cookie?.[0] ?? 0x15b42c, le),
    u32(m.cookie?.[1] ?? 0, le),
    u32(m.expires ?? 0, le),
    u32(m.rqueue ?? 0, le),
    u32(m.wqueue ?? 0, le),
    u32(m.uid ?? 0, le),
    u32(m.inode ?? 0, le),
  ]);
  assert.equal(body.length, 72);
  const attrs = (m.attrs ?? []).map((a) => {
    const pad = Buffer.alloc((4 - (a.payload.length % 4)) % 4);
    return Buffer.concat([u16(4 + a.payload.length, le), u16(a.type, le), a.payload, pad]);
  });
  return nlmsg(20, Buffer.concat([body, ...attrs]), le);
}

const DONE = nlmsg(3, u32(0, true));

function skmeminfo(wmemQueued: number): { type: number; payload: Buffer } {
  // r, rb, t, tb, f, w, o, bl, d
  return { type: 7, payload: Buffer.concat([0, 131072, 0, 32768, 3584, wmemQueued, 0, 0, 0].map((v) => u32(v, true))) };
}

function tcpInfo(backoff: number, rtoMicros = 208_000, lastDataSentMs = 41_024): { type: number; payload: Buffer } {
  const b = Buffer.alloc(232);
  b[0] = 4; // tcpi_state
  b[4] = backoff;
  b.writeUInt32LE(rtoMicros, 8); // tcpi_rto
  b.writeUInt32LE(lastDataSentMs, 44); // tcpi_last_data_sent
  return { type: 2, payload: b };
}

function parse(...parts: Buffer[]): { sink: CollectingSink; parser: InetDiagParser } {
  const sink = new CollectingSink();
  const parser = new InetDiagParser(sink, { littleEndian: true });
  for (const p of parts) parser.push(p);
  parser.end();
  return { sink, parser };
}

describe('InetDiagParser: fields', () => {
  it('orphaned FIN-WAIT-1 in persist, with tcp_info and skmeminfo', () => {
    const { sink, parser } = parse(
      diagMsg({ state: 4, timer: 4, retrans: 2, expires: 948, wqueue: 26625, cookie: [0x15b42c, 0], attrs: [tcpInfo(3), skmeminfo(33280)] }),
      DONE,
    );
    assert.deepEqual(sink.errors, []);
    assert.equal(parser.dumpsCompleted, 1);
    assert.deepEqual(sink.records, [
      {
        family: 'ipv4', state: 'fin_wait1', localAddress: '127.0.0.1', localPort: 17001, remoteAddress: '127.0.0.1', remotePort: 49134,
        recvQueue: 0, sendQueue: 26625, timer: 'persist', timerSeconds: 0.948, timerCount: 2, inode: 0, wmemQueued: 33280, backoff: 3,
        rtoSeconds: 0.208, lastDataSentSeconds: 41.024, identity: 0x15b42c,
      },
    ]);
  });

  it('a tcp_info shorter than tcpi_last_data_sent (kernels before 2.6.x never sent one): backoff and RTO only', () => {
    const info = tcpInfo(9);
    const { sink } = parse(diagMsg({ state: 4, timer: 4, attrs: [{ type: 2, payload: info.payload.subarray(0, 12) }] }), DONE);
    assert.deepEqual(sink.records.map((r) => [r.backoff, r.rtoSeconds, r.lastDataSentSeconds]), [[9, 0.208, undefined]]);
  });

  it('every state code of tcp_states.h maps to its label', () => {
    const msgs = TCP_STATES.map((_, i) => diagMsg({ state: i + 1 }));
    const { sink } = parse(...msgs);
    assert.deepEqual(sink.records.map((r) => r.state), [...TCP_STATES]);
  });

  const TIMERS: Array<[number, number, string | undefined, number, number]> = [
    // idiag_timer, expires ms, kind, seconds, count (idiag_retrans shown only with a timer)
    [0, 0, undefined, 0, 0],
    [1, 204, 'retransmit', 0.204, 3],
    [2, 7_196_160, 'keepalive', 7196.16, 3],
    [3, 58_000, 'timewait', 58, 3],
    [4, 120_000, 'persist', 120, 3],
    [5, 40, undefined, 0, 0], // delayed ACK (2026 kernels): not exported, as ss's `delack`
    [4, 0xffff_ff00, 'persist', 0, 3], // < 5.5: an overdue timer wrapped to ~2^32 ms
  ];
  for (const [code, ms, kind, seconds, count] of TIMERS) {
    it(`timer ${code}, ${ms} ms → ${String(kind)} ${seconds} s`, () => {
      const [r] = parse(diagMsg({ timer: code, expires: ms, retrans: 3 })).sink.records;
      assert.deepEqual([r!.timer, r!.timerSeconds, r!.timerCount], [kind, seconds, count]);
    });
  }

  it('LISTEN: rqueue is the accept queue, wqueue the backlog (as ss shows it)', () => {
    const [r] = parse(diagMsg({ state: 10, rqueue: 3, wqueue: 4096, inode: 2776734, dport: 0, dst: [0, 0, 0, 0] })).sink.records;
    assert.deepEqual([r!.state, r!.recvQueue, r!.sendQueue, r!.inode, r!.remoteAddress, r!.remotePort], ['listen', 3, 4096, 2776734, '0.0.0.0', 0]);
  });

  it('IPv6 addresses, IPv4-mapped ones as ss prints them', () => {
    const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
    const { sink } = parse(diagMsg({ family: 10, src: v6, dst: mapped }), diagMsg({ family: 10, src: mapped, dst: v6 }));
    assert.deepEqual(
      sink.records.map((r) => [r.family, r.localAddress, r.remoteAddress]),
      [
        ['ipv6', '2001:db8::1', '::ffff:127.0.0.1'],
        ['ipv6', '::ffff:127.0.0.1', '2001:db8::1'],
      ],
    );
  });

  it('a generated cookie is a number; an address-valued one (kernels < 4.1) its hex text, as ss spells it', () => {
    const { sink } = parse(diagMsg({ cookie: [0xab, 0x1] }), diagMsg({ cookie: [0x1f_ffff, 0x1f_ffff] }), diagMsg({ cookie: [0x12c0, 0xffff8800] }));
    assert.deepEqual(sink.records.map((r) => r.identity), [0x1_0000_00ab, 0x1f_ffff_001f_ffff, 'ffff8800000012c0']);
  });

  it('old kernels: INET_DIAG_MEMINFO gives the write memory when SKMEMINFO is absent', () => {
    const meminfo = { type: 1, payload: Buffer.concat([5760, 33280, 3584, 0].map((v) => u32(v, true))) };
    const [r] = parse(diagMsg({ state: 4, attrs: [meminfo] })).sink.records;
    assert.equal(r!.wmemQueued, 33280);
  });

  it('unknown attributes are skipped; fields of the previous socket never leak into the next', () => {
    const { sink } = parse(diagMsg({ state: 4, attrs: [{ type: 13, payload: Buffer.from('cubic\0') }, tcpInfo(5), skmeminfo(9)] }), diagMsg({ state: 1 }));
    assert.deepEqual(sink.records.map((r) => [r.backoff, r.wmemQueued]), [[5, 9], [undefined, undefined]]);
  });

  it('reads a big-endian host dump when told', () => {
    const sink = new CollectingSink();
    const p = new InetDiagParser(sink, { littleEndian: false });
    p.push(diagMsg({ state: 4, timer: 4, expires: 1500, wqueue: 70000, inode: 0 }, false));
    p.end();
    assert.deepEqual(sink.errors, []);
    assert.deepEqual([sink.records[0]!.sendQueue, sink.records[0]!.timerSeconds, sink.records[0]!.localPort], [70000, 1.5, 17001]);
  });
});

describe('stateMask: the helper\'s STATES argument', () => {
  const CASES: Array<[Parameters<typeof stateMask>[0], number]> = [
    [['established'], 0x2],
    [['fin_wait1'], 0x10],
    [['listen'], 0x400],
    [['syn_recv'], 0x1008], // SYN-RECV and NEW_SYN_RECV (request sockets)
    [[...TCP_STATES], 0x1ffe],
  ];
  for (const [states, mask] of CASES) it(`${states.join(',')} → ${mask.toString(16)}`, () => assert.equal(stateMask(states), mask));
});

describe('InetDiagParser: what is not a socket', () => {
  const CASES: Array<[string, Buffer, string | undefined]> = [
    ['NEW_SYN_RECV (0x0C) is not labelled: skipped', diagMsg({ state: 12 }), undefined],
    ['BOUND_INACTIVE (0x0D) is not labelled: skipped', diagMsg({ state: 13 }), undefined],
    ['an unknown state code', diagMsg({ state: 14 }), 'unknown state code 14'],
    ['an unknown family', diagMsg({ family: 1 }), 'unknown address family 1'],
    ['a message shorter than inet_diag_msg', nlmsg(20, Buffer.alloc(40)), 'inet_diag message too short (56 bytes)'],
    ['an acknowledgement (NLMSG_ERROR with error 0) where a dump was asked for', nlmsg(2, u32(0, true)), 'netlink error 0'],
    ['an unexpected message type', nlmsg(99, Buffer.alloc(4)), 'unexpected netlink message type 99'],
    [
      'an attribute that overruns its message',
      (() => {
        const m = diagMsg({ attrs: [skmeminfo(1)] });
        m.writeUInt16LE(200, 16 + 72); // rta_len beyond the message
        return m;
      })(),
      'malformed inet_diag attribute',
    ],
  ];
  for (const [name, bytes, error] of CASES) {
    it(name, () => {
      const { sink } = parse(bytes, diagMsg({ state: 1 }));
      assert.deepEqual(sink.errors.map((e) => e.reason), error === undefined ? [] : [error]);
      assert.deepEqual(sink.records.map((r) => r.state), ['established'], 'the next message still parses');
      if (error !== undefined) assert.match(sink.errors[0]!.line, /^[0-9a-f]+…?$/);
    });
  }

  it('an impossible length loses the boundaries: one error, the rest skipped', () => {
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(8); // shorter than its own header
    const { sink } = parse(diagMsg({}), bad, diagMsg({}));
    assert.equal(sink.records.length, 1);
    assert.deepEqual(sink.errors.map((e) => e.reason), ['impossible netlink message length 8: rest of the stream skipped']);
  });

  it('a stream cut inside a message is reported at end()', () => {
    const m = diagMsg({});
    const { sink } = parse(m, m.subarray(0, 50));
    assert.equal(sink.records.length, 1);
    assert.deepEqual(sink.errors.map((e) => e.reason), ['stream ends inside a message (50 bytes)']);
  });

  it('no input: no records, no errors', () => {
    const { sink, parser } = parse();
    assert.deepEqual([sink.records.length, sink.errors.length, parser.dumpsCompleted], [0, 0, 0]);
  });
});

describe('InetDiagParser: a dump that failed (NLMSG_ERROR in place of NLMSG_DONE)', () => {
  // What the kernel sends for a refused request, and tcpstate-diag for a namespace it could not
  // enter: one per family, in place of that family's dump.
  const EPERM = nlmsg(2, Buffer.concat([u32(-1, true), Buffer.alloc(16)]));
  const ENOENT = nlmsg(2, Buffer.concat([u32(-2, true), Buffer.alloc(16)]));
  it('ends the dump, keeps the first errno, is no parse error', () => {
    const { sink, parser } = parse(EPERM, ENOENT);
    assert.deepEqual([parser.dumpsCompleted, parser.failedErrno, sink.errors.length, sink.records.length], [2, 1, 0, 0]);
  });
  it('a completed dump then a failed one: the records stay, the failure is kept', () => {
    const { sink, parser } = parse(diagMsg({ state: 1 }), DONE, ENOENT);
    assert.deepEqual([parser.dumpsCompleted, parser.failedErrno, sink.records.length], [2, 2, 1]);
  });
  it('a completed dump has no failure', () => {
    const { parser } = parse(diagMsg({ state: 1 }), DONE);
    assert.equal(parser.failedErrno, undefined);
  });
});

describe('InetDiagParser: the real lab dump (test/fixtures/netlink)', () => {
  // Both dumps the exporter asks for, back to back.
  const bytes = Buffer.concat(['lab-1fee.bin', 'lab-10-42.bin'].map((f) => readFileSync(new URL(`../fixtures/netlink/${f}`, import.meta.url))));
  const fig = JSON.parse(readFileSync(new URL('../fixtures/netlink/figures.json', import.meta.url), 'utf8')) as Record<string, number>;

  it('holds the lab as it measured itself, four completed dumps, no errors', () => {
    const { sink, parser } = parse(bytes);
    assert.deepEqual(sink.errors, []);
    assert.equal(parser.dumpsCompleted, 4);
    const count = (st: string) => sink.records.filter((r) => r.state === st).length;
    assert.deepEqual(
      [count('fin_wait1'), count('established'), count('time_wait'), count('listen')],
      [fig.fin_wait1, fig.established, fig.time_wait, fig.listen],
    );
    const fw1 = sink.records.filter((r) => r.state === 'fin_wait1');
    assert.equal(fw1.reduce((a, r) => a + r.sendQueue, 0), fig.fin_wait1_send_queue_without_fin! + fig.fin_wait1!);
    assert.ok(fw1.every((r) => r.inode === 0 && r.timer === 'persist' && r.backoff === 3 && r.wmemQueued === 33280 && r.localPort === 17001));
    const peers = sink.records.filter((r) => r.state === 'established' && r.remotePort === 17001);
    assert.equal(peers.reduce((a, r) => a + r.recvQueue, 0), fig.peer_recv_queue);
    // Only the detail dump carries attributes.
    assert.ok(sink.records.filter((r) => r.state !== 'fin_wait1').every((r) => r.backoff === undefined && r.wmemQueued === undefined));
  });

  it('gives the same records however the stream is cut into chunks', () => {
    const whole = parse(bytes).sink.records;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: bytes.length }), { maxLength: 30 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const parts: Buffer[] = [];
        let prev = 0;
        for (const p of points) {
          parts.push(bytes.subarray(prev, p));
          prev = p;
        }
        parts.push(bytes.subarray(prev));
        const { sink } = parse(...parts);
        assert.deepEqual(sink.errors, []);
        assert.deepEqual(sink.records, whole);
      }),
    );
  });

  it('keeps nothing of a chunk after push(): the same records when every chunk comes in one reused buffer', () => {
    const whole = parse(bytes).sink.records;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 700 }), (size) => {
        // As the netlink source reads: one buffer, overwritten by each read, a view of it pushed.
        const reused = Buffer.alloc(size);
        const sink = new CollectingSink();
        const parser = new InetDiagParser(sink, { littleEndian: true });
        for (let at = 0; at < bytes.length; at += size) {
          const n = bytes.copy(reused, 0, at, at + size);
          parser.push(reused.subarray(0, n));
          reused.fill(0xa5);
        }
        parser.end();
        assert.deepEqual(sink.errors, []);
        assert.deepEqual(sink.records, whole);
      }),
    );
  });

  it('never throws on arbitrary or damaged bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), (junk, at, value) => {
        parse(Buffer.from(junk));
        const damaged = Buffer.from(bytes);
        damaged[at] = value;
        parse(damaged);
      }),
    );
  });
});
