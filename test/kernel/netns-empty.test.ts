// Real kernel: a --serve round in a network namespace that holds no TCP socket is answered from the
// namespace's own counters (sockstat: TCP and TCP6 `inuse`, `tw`), without a dump: with the kernel's
// default one established-socket hash for the whole host, a dump of even an empty namespace walks
// every socket of the host (docs/performance.md "Many network namespaces"). What the counters must
// not hide: a namespace holding only a TIME-WAIT socket (inuse 0, tw 1), or only an IPv6 listener
// (TCP inuse 0, TCP6 inuse 1), is dumped as before, with exact figures. The helper's two NLMSG_DONE
// per output carry the dumping netlink socket's port ID when the kernel wrote them, 0 when the
// helper answered without a dump: that is how this test tells the two apart. Needs root.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { NETLINK_DUMPS } from '../../src/sources/netlink.ts';
import { roundRecords } from '../helpers/collect.ts';
import { ROOT } from '../helpers/daemon.ts';
import { createNetns, deleteNetns } from '../lab/lab.ts';

const HELPER = join(ROOT, 'build', 'tcpstate-diag');
const NS = {
  empty: `tcpstate-empty-${process.pid}-e`,
  timeWait: `tcpstate-empty-${process.pid}-tw`,
  ipv6: `tcpstate-empty-${process.pid}-v6`,
  full: `tcpstate-empty-${process.pid}-full`,
};

// Run inside a namespace: MODE tw leaves one TIME-WAIT socket and exits; v6 keeps an IPv6 listener,
// full an IPv4 listener and one ESTABLISHED pair, until stdin closes.
const SOCKETS = `
import socket, sys, time
mode = sys.argv[1]
if mode == 'tw':
    l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(4)
    c = socket.create_connection(l.getsockname()); s, _ = l.accept()
    c.close()            # the active closer ends in TIME-WAIT
    time.sleep(0.2); s.close(); l.close(); time.sleep(0.2)
    print('ready', flush=True)
    sys.exit(0)
keep = []
if mode == 'v6':
    l = socket.socket(socket.AF_INET6); l.bind(('::1', 0)); l.listen(4); keep.append(l)
else:
    l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(4)
    c = socket.create_connection(l.getsockname()); keep += [l, c, l.accept()[0]]
print('ready', flush=True)
sys.stdin.read()
`;

const NLMSG_DONE = 3;

/** One --serve round in namespace `name` (the helper started in the test's own namespace, as the exporter's is): each output's bytes. */
async function round(name: string): Promise<Buffer[]> {
  const child = spawn(HELPER, ['--serve', ...NETLINK_DUMPS], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
  const outputs = [child.stdout!, child.stdio[3] as Readable];
  const chunks: Buffer[][] = outputs.map(() => []);
  outputs.forEach((s, i) => s.on('data', (c: Buffer) => chunks[i]!.push(c)));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.stdin!.end(`/run/netns/${name}\n`);
  assert.equal(await exited, 0);
  return chunks.map((c) => Buffer.concat(c));
}

/**
 * Rounds served one after the other by ONE helper (as the exporter's helper serves every namespace
 * of a poll, going back to its own namespace between them): each round's bytes per output. A round
 * ends when each output has its two NLMSG_DONE.
 */
async function rounds(requests: readonly string[]): Promise<Buffer[][]> {
  const child = spawn(HELPER, ['--serve', ...NETLINK_DUMPS], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
  const outputs = [child.stdout!, child.stdio[3] as Readable];
  const got: Buffer[] = outputs.map(() => Buffer.alloc(0));
  let wake = () => {};
  outputs.forEach((s, i) =>
    s.on('data', (c: Buffer) => {
      got[i] = Buffer.concat([got[i]!, c]);
      wake();
    }),
  );
  const answers: Buffer[][] = [];
  const from = outputs.map(() => 0);
  for (const request of requests) {
    child.stdin!.write(`${request}\n`);
    const ended = () => got.every((b, i) => donePorts(b.subarray(from[i])).length >= 2);
    while (!ended()) await new Promise<void>((r) => (wake = r));
    answers.push(got.map((b, i) => b.subarray(from[i])));
    got.forEach((b, i) => (from[i] = b.length));
  }
  child.stdin!.end();
  assert.equal(await new Promise<number | null>((r) => child.once('exit', r)), 0);
  return answers;
}

/** The nlmsg_pid of every NLMSG_DONE of an answer. */
function donePorts(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 16 <= bytes.length; off += (bytes.readUInt32LE(off) + 3) & ~3) {
    if (bytes.readUInt16LE(off + 4) === NLMSG_DONE) out.push(bytes.readUInt32LE(off + 12));
  }
  return out;
}

/** The sockets of an answer as "family state", sorted; the answer must end both of its dumps. */
function sockets(bytes: Buffer): string[] {
  return roundRecords(bytes)
    .map((r) => `${r.family} ${r.state}`)
    .sort();
}

describe('real kernel: a network namespace with no TCP socket is answered without a dump', { timeout: 60_000 }, () => {
  const labs: ChildProcess[] = [];

  const start = async (ns: string, mode: string) => {
    const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', SOCKETS, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
    labs.push(p);
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: p.stdout }).once('line', () => resolve());
      p.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`socket script (${mode}) exited ${code}`))));
    });
  };

  before(async () => {
    for (const ns of Object.values(NS)) await createNetns(ns);
    await start(NS.timeWait, 'tw');
    await start(NS.ipv6, 'v6');
    await start(NS.full, 'full');
  });
  after(async () => {
    for (const p of labs) {
      p.stdin?.end();
      if (p.exitCode === null) await new Promise((r) => p.once('exit', r));
    }
    for (const ns of Object.values(NS)) await deleteNetns(ns);
  });

  it('an empty namespace: two empty dumps per output, not written by the kernel', async () => {
    const answer = await round(NS.empty);
    for (const [i, bytes] of answer.entries()) {
      assert.deepEqual(sockets(bytes), [], `output ${i}`);
      assert.deepEqual(donePorts(bytes), [0, 0], `output ${i}: answered without a dump (NLMSG_DONE port ID 0)`);
    }
  });

  it('only a TIME-WAIT socket (sockstat inuse 0, tw 1): dumped, exactly', async () => {
    const [main, fw1] = await round(NS.timeWait);
    assert.deepEqual(sockets(main!), ['ipv4 time_wait']);
    assert.deepEqual(sockets(fw1!), []);
    assert.ok(donePorts(main!).every((p) => p !== 0), 'dumped by the kernel');
  });

  it('only an IPv6 listener (TCP inuse 0, TCP6 inuse 1): dumped, exactly', async () => {
    const [main] = await round(NS.ipv6);
    assert.deepEqual(sockets(main!), ['ipv6 listen']);
    assert.ok(donePorts(main!).every((p) => p !== 0), 'dumped by the kernel');
  });

  it('a listener and a connection: dumped, exactly', async () => {
    const [main] = await round(NS.full);
    assert.deepEqual(sockets(main!), ['ipv4 established', 'ipv4 established', 'ipv4 listen']);
    assert.ok(donePorts(main!).every((p) => p !== 0), 'dumped by the kernel');
  });

  it('one helper, rounds in turn (empty, full, empty, its own namespace, TIME-WAIT only): each answered from its own namespace', async () => {
    const [empty1, full, empty2, own, timeWait] = await rounds([`/run/netns/${NS.empty}`, `/run/netns/${NS.full}`, `/run/netns/${NS.empty}`, '', `/run/netns/${NS.timeWait}`]);
    for (const [what, answer] of [['first empty', empty1], ['second empty', empty2]] as const) {
      assert.deepEqual(answer!.map(sockets), [[], []], what);
      assert.deepEqual(answer!.map(donePorts), [[0, 0], [0, 0]], `${what}: without a dump`);
    }
    assert.deepEqual(sockets(full![0]!), ['ipv4 established', 'ipv4 established', 'ipv4 listen']);
    assert.ok(donePorts(full![0]!).every((p) => p !== 0), 'full: dumped by the kernel');
    // The helper's own namespace (this test's) holds sockets of its own: dumped, whatever they are.
    assert.ok(donePorts(own![0]!).every((p) => p !== 0), 'own namespace: dumped by the kernel');
    assert.deepEqual(sockets(timeWait![0]!), ['ipv4 time_wait']);
  });
});
