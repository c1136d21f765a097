import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Buckets, PERSIST_BOUNDS } from '../../src/aggregate/buckets.ts';
import { DEFAULT_FORENSICS, FinWait1ExitTally, ForensicsCollector, MAX_LISTENING_PORTS, NO_PREVIOUS_POLL, addExitStats, cappedSockets, type CrossPoll, type Forensics, type ForensicsOptions } from '../../src/aggregate/forensics.ts';
import { TopN } from '../../src/aggregate/topn.ts';
import type { SocketRecord } from '../../src/model.ts';
import { rec } from '../helpers/readers.ts';

describe('Buckets', () => {
  it('counts cumulatively, +Inf last, with sum and count', () => {
    const b = new Buckets([1, 10]);
    for (const v of [0.5, 1, 5, 10, 11]) b.observe(v);
    // Quantiles 0, 0.5, 0.9, 0.99, 1 of 5 values: ranks 1, 3, 5, 5, 5 (nearest rank).
    assert.deepEqual(b.result(), { bounds: [1, 10], cumulative: [2, 4, 5], sum: 27.5, count: 5, quantiles: [0.5, 5, 11, 11, 11] });
  });
  it('matches a naive count for any values', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 200, noNaN: true })), (vs) => {
        const b = new Buckets(PERSIST_BOUNDS);
        for (const v of vs) b.observe(v);
        const r = b.result();
        PERSIST_BOUNDS.forEach((bound, i) => assert.equal(r.cumulative[i], vs.filter((v) => v <= bound).length));
        assert.equal(r.cumulative.at(-1), vs.length);
      }),
    );
  });
});

describe('TopN', () => {
  it('keeps the N largest, largest first, and builds only kept items', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 })), fc.integer({ min: 0, max: 10 }), (xs, n) => {
        const t = new TopN<number>(n);
        let built = 0;
        // A naive top-n beside it: an item is built exactly when it enters the top n seen so far.
        let kept: number[] = [];
        let entered = 0;
        for (const x of xs) {
          t.offer(x, () => (built++, x));
          if (kept.length < n || (n > 0 && x > kept[kept.length - 1]!)) {
            entered++;
            kept = [...kept, x].sort((a, b) => b - a).slice(0, n);
          }
        }
        assert.deepEqual(t.sorted(), [...xs].sort((a, b) => b - a).slice(0, n));
        assert.equal(built, entered);
      }),
    );
  });
});

const fw1 = (port: number, sendQueue: number, identity: number | string = 'a', extra: Partial<SocketRecord> = {}) =>
  rec({ state: 'fin_wait1', localPort: 443, remotePort: port, sendQueue, inode: 0, identity, ...extra });

type Polled = Forensics & CrossPoll;

function poll(records: SocketRecord[], nowMs: number, prev?: Polled, options: Partial<ForensicsOptions> = {}): Polled {
  const c = new ForensicsCollector({ nowMs, previous: prev ?? NO_PREVIOUS_POLL, options: { ...DEFAULT_FORENSICS, ...options } });
  for (const r of records) c.add(r);
  return { ...c.result(), ...c.carry() };
}

describe('ForensicsCollector: time in FIN-WAIT-1', () => {
  it('ages grow across polls; vanished sockets are dropped; a new socket on the same 4-tuple starts again', () => {
    const p1 = poll([fw1(1000, 10), fw1(1001, 10)], 0);
    assert.deepEqual([p1.age.sum, p1.tracked], [0, 2]);
    const p2 = poll([fw1(1000, 10), fw1(1001, 10)], 30_000, p1);
    assert.equal(p2.age.sum, 60);
    // 1001 vanished; 1000 was replaced by a new socket (other cookie) on the same 4-tuple.
    const p3 = poll([fw1(1000, 10, 'b')], 90_000, p2);
    assert.deepEqual([p3.age.sum, p3.tracked, [...p3.firstSeen.values()]], [0, 1, [90_000]]);
  });
  it('a generated cookie (a number) identifies the socket alone; a new cookie starts again', () => {
    const p1 = poll([fw1(1000, 10, 7), fw1(1001, 10, 8)], 0);
    // The same sockets: cookies 7 and 8 still there (the tuple is not part of the key).
    const p2 = poll([fw1(1000, 10, 7), fw1(1001, 10, 8)], 30_000, p1);
    assert.deepEqual([p2.age.sum, [...p2.firstSeen.keys()]], [60, [7, 8]]);
    const p3 = poll([fw1(1000, 10, 9)], 40_000, p2);
    assert.deepEqual([p3.age.sum, [...p3.firstSeen.entries()]], [0, [[9, 40_000]]]);
  });
  it('counts stuck sockets older than --stuck-after', () => {
    const p1 = poll([fw1(1, 1), fw1(2, 1)], 0);
    const p2 = poll([fw1(1, 1), fw1(2, 1), fw1(3, 1)], 61_000, p1, { stuckAfterSeconds: 60 });
    assert.equal(p2.stuck, 2);
  });
  it('tracks at most --stuck.max-tracked sockets and counts the rest', () => {
    const p = poll([fw1(1, 1), fw1(2, 1), fw1(3, 1)], 0, undefined, { maxTracked: 2 });
    assert.deepEqual([p.tracked, p.untracked, p.age.count], [2, 1, 2]);
  });
  it('--stuck.max-tracked full: sockets tracked in the previous poll keep their place (and age) over new ones, poll after poll', () => {
    const opts = { maxTracked: 3, stuckAfterSeconds: 60 };
    // Poll 1: three sockets fill the cap.
    const p1 = poll([fw1(1, 1, 1), fw1(2, 1, 2), fw1(3, 1, 3)], 0, undefined, opts);
    assert.deepEqual([p1.tracked, p1.untracked], [3, 0]);
    // Polls 2-4: a burst of new sockets, listed before the old ones (as a dump lists them), every poll.
    let prev = p1;
    for (const [i, now] of [40_000, 80_000, 120_000].entries()) {
      const fresh = Array.from({ length: 5 }, (_, k) => fw1(100 + 10 * i + k, 1, 100 + 10 * i + k));
      prev = poll([...fresh, fw1(1, 1, 1), fw1(2, 1, 2), fw1(3, 1, 3)], now, prev, opts);
      assert.deepEqual([...prev.firstSeen.keys()].sort((a, b) => Number(a) - Number(b)), [1, 2, 3], `poll ${i + 2}`);
      assert.equal(prev.age.sum, (3 * now) / 1000, `poll ${i + 2}: the old sockets keep their age`);
      assert.equal(prev.untracked, 5);
    }
    // 120 s old: all three are stuck; none was reset to 0 by the newcomers.
    assert.equal(prev.stuck, 3);
    // A tracked socket that leaves (1) holds its place for the poll that finds it gone, then frees it.
    const gone = poll([fw1(200, 1, 200), fw1(2, 1, 2), fw1(3, 1, 3)], 160_000, prev, opts);
    assert.deepEqual([[...gone.firstSeen.keys()].sort((a, b) => Number(a) - Number(b)), gone.untracked], [[2, 3], 1]);
    const freed = poll([fw1(200, 1, 200), fw1(2, 1, 2), fw1(3, 1, 3)], 200_000, gone, opts);
    assert.deepEqual([[...freed.firstSeen.keys()].sort((a, b) => Number(a) - Number(b)), freed.untracked], [[2, 3, 200], 0]);
  });
  it('only FIN-WAIT-1 feeds the per-socket distributions; backoff and memory only when shown', () => {
    const p = poll([fw1(1, 5000), rec({ state: 'established', sendQueue: 99 })], 0);
    assert.deepEqual([p.sendQueue.count, p.sendQueue.sum, p.backoff, p.wmemQueued], [1, 5000, undefined, undefined]);
    const q = poll([fw1(1, 5000, 'a', { backoff: 9, wmemQueued: 8192, timer: 'persist', timerSeconds: 100 })], 0);
    assert.deepEqual([q.backoff?.sum, q.wmemQueued?.sum], [9, 8192]);
  });
  it('the probe backoff counts persist-timer sockets only (a retransmitting socket backs off its RTO)', () => {
    const p = poll(
      [
        fw1(1, 5000, 'a', { backoff: 3, timer: 'persist', timerSeconds: 1.6 }),
        fw1(2, 5000, 'b', { backoff: 7, timer: 'retransmit', timerSeconds: 25 }),
        fw1(3, 5000, 'c', { backoff: 0 }),
      ],
      0,
    );
    assert.deepEqual([p.backoff?.count, p.backoff?.sum], [1, 3]);
    // Shown by the source but no persist-timer socket now: zeros, not absent.
    assert.deepEqual([poll([fw1(2, 5000, 'b', { backoff: 7, timer: 'retransmit' })], 0).backoff?.count], [0]);
  });
  it('persist timers land in their backoff buckets per state', () => {
    const p = poll([fw1(1, 1, 'a', { timer: 'persist', timerSeconds: 119 }), rec({ state: 'established', timer: 'persist', timerSeconds: 0.3 })], 0);
    assert.deepEqual(p.persistTimer.fin_wait1?.cumulative, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    assert.deepEqual(p.persistTimer.established?.cumulative.slice(0, 2), [0, 1]);
  });
});

describe('ForensicsCollector: ports', () => {
  const listener = (port: number) => rec({ state: 'listen', localPort: port, remotePort: 0 });
  it('attributes server-side sockets to their listening port, client sockets to "other"', () => {
    const p = poll([listener(443), fw1(1, 100), rec({ state: 'established', localPort: 50000, remotePort: 443 })], 0);
    assert.equal(p.ports.get('443')!.fin_wait1.sendQueueBytes, 100);
    assert.equal(p.ports.get('443')!.listen.sockets, 1);
    assert.equal(p.ports.get('other')!.established.sockets, 1);
  });
  it('SYN-SENT and CLOSE on a listening port are not server sockets: they count under "other"', () => {
    const p = poll(
      [listener(443), rec({ state: 'syn_sent', localPort: 443, remotePort: 80, sendQueue: 1 }), rec({ state: 'close', localPort: 443, remotePort: 0 })],
      0,
    );
    assert.deepEqual([p.ports.get('443')!.syn_sent.sockets, p.ports.get('443')!.close.sockets], [0, 0]);
    assert.deepEqual([p.ports.get('other')!.syn_sent.sockets, p.ports.get('other')!.syn_sent.sendQueueBytes, p.ports.get('other')!.close.sockets], [1, 1, 1]);
  });
  it('uses the previous poll\'s listeners for sockets seen before their listener', () => {
    const p1 = poll([listener(443)], 0);
    const p2 = poll([fw1(1, 100)], 1000, p1);
    assert.equal(p2.ports.get('443')!.fin_wait1.sockets, 1);
  });
  it('attributes sockets seen before their listener in the same poll (two dumps or ss passes read at once, first poll)', () => {
    const p = poll([fw1(1, 100), fw1(2, 50), rec({ state: 'established', localPort: 50000, remotePort: 443 }), listener(443)], 0);
    assert.deepEqual([p.ports.get('443')!.fin_wait1.sockets, p.ports.get('443')!.fin_wait1.sendQueueBytes, p.ports.get('other')!.fin_wait1.sockets], [2, 150, 0]);
    assert.equal(p.ports.get('other')!.established.sockets, 1);
    assert.deepEqual(p.top.fin_wait1!.bySendQueue.map((s) => s.port), ['443', '443']);
  });
  it('holds the first MAX_LISTENING_PORTS local ports for a listener seen later; sockets on further new ports count under "other"', () => {
    const records: SocketRecord[] = [];
    // 4 096 client-side sockets, each on an ephemeral port of its own (no listener there, yet).
    for (let port = 10_000; port < 10_000 + MAX_LISTENING_PORTS; port++) records.push(rec({ state: 'established', localPort: port, remotePort: 443, sendQueue: 2 }));
    records.push(fw1(1, 100, 'a', { localPort: 20_000 }), rec({ state: 'established', localPort: 10_005, remotePort: 80, sendQueue: 7 }));
    records.push(listener(20_000), listener(10_005));
    const p = poll(records, 0);
    assert.deepEqual([...p.ports.keys()], ['10005', '20000', 'other']);
    assert.deepEqual(p.ports.get('10005')!.established, { sockets: 2, sendQueueBytes: 9 });
    assert.deepEqual([p.ports.get('20000')!.fin_wait1.sockets, p.ports.get('20000')!.listen.sockets], [0, 1]);
    assert.deepEqual(p.ports.get('other')!.established, { sockets: MAX_LISTENING_PORTS - 1, sendQueueBytes: 2 * (MAX_LISTENING_PORTS - 1) });
    assert.deepEqual(p.ports.get('other')!.fin_wait1, { sockets: 1, sendQueueBytes: 100 });
  });
  it('keeps the top K ports by FIN-WAIT-1 bytes and folds the rest into "other"', () => {
    const records: SocketRecord[] = [];
    for (let port = 1; port <= 5; port++) {
      records.push(listener(port));
      records.push(rec({ state: 'fin_wait1', localPort: port, remotePort: 9999, sendQueue: port * 100, inode: 0 }));
    }
    const p = poll(records, 0, undefined, { topPorts: 2 });
    assert.deepEqual([...p.ports.keys()], ['4', '5', 'other']);
    assert.equal(p.ports.get('other')!.fin_wait1.sendQueueBytes, 600);
    assert.equal(p.ports.get('other')!.listen.sockets, 3);
  });
  it('--ports wins, zeros included', () => {
    const p = poll([listener(443), fw1(1, 100)], 0, undefined, { ports: [80, 443] });
    assert.deepEqual([...p.ports.keys()], ['80', '443', 'other']);
    assert.equal(p.ports.get('80')!.fin_wait1.sockets, 0);
  });
});

describe('ForensicsCollector: worst sockets', () => {
  it('keeps the N largest Send-Q per state and the oldest FIN-WAIT-1', () => {
    const records = Array.from({ length: 50 }, (_, i) => fw1(i, i * 10, String(i)));
    const p1 = poll(records.slice(0, 10), 0, undefined, { topSockets: 3 });
    const p2 = poll(records, 5000, p1, { topSockets: 3 });
    assert.deepEqual(p2.top.fin_wait1!.bySendQueue.map((s) => s.sendQueue), [490, 480, 470]);
    assert.deepEqual(p2.top.fin_wait1!.byAge.map((s) => s.ageSeconds), [5, 5, 5]);
    assert.equal(p2.top.fin_wait1!.bySendQueue[0]!.peer, '127.0.0.1:49');
    assert.equal(p2.top.fin_wait1!.bySendQueue[0]!.orphan, true);
  });
});

describe('ForensicsCollector: issue 13 items 2, 3 and the backoff cap', () => {
  const persist = (port: number, identity: number | string, extra: Partial<SocketRecord> = {}) =>
    fw1(port, 1000, identity, { timer: 'persist', timerSeconds: 10, ...extra });

  it('item 3: at first sight, a socket on the persist timer starts when it last sent data (kernel clock), so a restart does not make it new', () => {
    // A fresh exporter (no previous poll) sees sockets the kernel says sent nothing for 25 s and 400 s.
    const p = poll([persist(1, 1, { lastDataSentSeconds: 25 }), persist(2, 2, { lastDataSentSeconds: 400 }), persist(3, 3)], 1_000_000, undefined, { stuckAfterSeconds: 60 });
    assert.deepEqual([...p.firstSeen.entries()], [[1, 975_000], [2, 600_000], [3, 1_000_000]]);
    assert.deepEqual([p.age.sum, p.stuck], [425, 1]);
    // Later polls keep that start: the kernel figure is only read at first sight.
    const p2 = poll([persist(1, 1, { lastDataSentSeconds: 35 }), persist(2, 2, { lastDataSentSeconds: 0.2 })], 1_010_000, p);
    assert.deepEqual([...p2.firstSeen.values()], [975_000, 600_000]);
    // A retransmitting socket's last send is recent by nature and says nothing: first sight it is.
    const p3 = poll([fw1(4, 1000, 4, { timer: 'retransmit', lastDataSentSeconds: 90 })], 5_000);
    assert.deepEqual([...p3.firstSeen.values()], [5_000]);
  });

  it('item 2: exits by next state (cookie, or 4-tuple for address identities) or vanished, with lifetimes up to the last poll that saw them', () => {
    const p1 = poll([persist(1, 11), persist(2, 12), persist(3, 13), persist(4, 'ptr-a')], 0);
    const p2 = poll([persist(1, 11), persist(2, 12), persist(3, 13), persist(4, 'ptr-a')], 30_000, p1);
    assert.deepEqual(p2.exits.lifetimes, { fin_wait2: [], closing: [], time_wait: [], vanished: [] });
    // 11 went on to FIN-WAIT-2 (same cookie), 12 to TIME-WAIT (a minisocket keeps the cookie),
    // 13 vanished, 'ptr-a' became a TIME-WAIT minisocket: another kernel address, same 4-tuple.
    const p3 = poll(
      [
        rec({ state: 'fin_wait2', localPort: 443, remotePort: 1, identity: 11 }),
        rec({ state: 'time_wait', localPort: 443, remotePort: 2, identity: 12 }),
        rec({ state: 'time_wait', localPort: 443, remotePort: 4, identity: 'ptr-b' }),
        rec({ state: 'time_wait', localPort: 443, remotePort: 9, identity: 99 }), // not ours
      ],
      60_000,
      p2,
    );
    assert.deepEqual(p3.exits.lifetimes, { fin_wait2: [30], closing: [], time_wait: [30, 30], vanished: [30] });
    assert.equal(p3.tracked, 0);
  });

  it('item 2: a socket killed between polls, seen once, lived 0 s by this measure', () => {
    const p1 = poll([persist(1, 11, { lastDataSentSeconds: 300 })], 0);
    const p2 = poll([], 15_000, p1);
    assert.deepEqual(p2.exits.lifetimes.vanished, [300]);
  });

  it('backoff cap: the interval max(RTO, 200 ms) × 2^backoff against the cap, per socket, exactly', () => {
    // RTO 208 ms (loopback): backoff 9 waits 106.5 s (not capped, though above 102.4 s), 10 is capped.
    // RTO 1 s: backoff 7 waits 128 s → capped. RTO 150 ms counts as 200 ms: backoff 9 → 102.4 s.
    const p = poll(
      [
        persist(1, 1, { rtoSeconds: 0.208, backoff: 9 }),
        persist(2, 2, { rtoSeconds: 0.208, backoff: 10 }),
        persist(3, 3, { rtoSeconds: 1, backoff: 7 }),
        persist(4, 4, { rtoSeconds: 0.15, backoff: 9 }),
        persist(5, 5, { rtoSeconds: 3.75, backoff: 5 }), // exactly 120 s: at the cap
        persist(6, 6, { backoff: 15 }), // no RTO shown: not counted
        fw1(7, 10, 7, { timer: 'retransmit', rtoSeconds: 0.2, backoff: 12 }), // RTO backoff, not the probe's
      ],
      0,
    );
    const m = p.probeIntervals.fin_wait1!;
    assert.equal(cappedSockets(m, 120), 3);
    assert.equal(cappedSockets(m, 105), 4); // tcp_rto_max_ms=105000: 106.5 s is capped too, 102.4 s not
    assert.equal(cappedSockets(m, 100), 5);
    assert.equal(p.probeIntervals.established, undefined, 'no socket of that state showed tcp_info: unknown, absent');
  });
});

describe('FinWait1ExitTally', () => {
  it('adds up across polls, and two tallies add up (a restarted poll thread keeps the counts)', () => {
    const a = new FinWait1ExitTally();
    a.add({ lifetimes: { fin_wait2: [2], closing: [], time_wait: [400], vanished: [325, 330] } });
    const b = new FinWait1ExitTally();
    b.add({ lifetimes: { fin_wait2: [], closing: [1], time_wait: [], vanished: [328] } });
    const t = addExitStats(a.view(), b.view());
    assert.deepEqual(t.exits, { fin_wait2: 1, closing: 1, time_wait: 1, vanished: 3 });
    assert.deepEqual([t.lifetime.vanished.count, t.lifetime.vanished.sum], [3, 983]);
    assert.deepEqual([t.lifetime.moved_on.count, t.lifetime.moved_on.sum], [3, 403]);
    // le=324.6 holds none of the vanished ones, le=444.6 all three; moved_on: 1 s and 2 s under 3, 400 s under 444.6.
    const at = (v: { bounds: readonly number[]; cumulative: readonly number[] }, le: number) => v.cumulative[v.bounds.indexOf(le)];
    assert.deepEqual([at(t.lifetime.vanished, 324.6), at(t.lifetime.vanished, 444.6), at(t.lifetime.moved_on, 3), at(t.lifetime.moved_on, 444.6)], [0, 3, 2, 3]);
  });
});
