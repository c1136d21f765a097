// Real kernel: tcpstate-diag --serve answers a network namespace that shares the host's
// established-socket hash (the kernel's default) and holds few sockets with ONE walk for both dump
// specs: one dump of the union of their states and extensions, each socket's message routed to the
// output of the spec whose states hold it and stripped of the attributes only the other spec asked
// for (docs/netns.md "One walk per namespace"). Every dump of such a namespace walks every socket of
// the host, so two specs walked it twice. What must hold:
//   - the merged round asks the kernel for one dump (TCPSTATE_DIAG_TRACE prints each request, and
//     the round's decision with the counts it was made on);
//   - each output reads exactly as a walk per spec (TCPSTATE_DIAG_PER_SPEC) gives it: the same
//     sockets, counts and Send-Q, the same attributes on each message, the same sequence numbers and
//     framing (two NLMSG_DONE per output), for IPv4 and IPv6, with orphaned zero-window FIN-WAIT-1,
//     ESTABLISHED, TIME-WAIT and LISTEN sockets; and so on the per-family path
//     (TCPSTATE_DIAG_PER_FAMILY: one dump per family, each for both specs), and after a refused
//     both-families request (TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES: the same sequence numbers);
//   - the same for other spec pairs given to the helper directly (`400:1c 1bfe:63`, `400:63 1bfe:1d`,
//     `1fee:ff 10:00`), in a namespace whose sockets carry CONG (one with another congestion
//     control), the congestion control's INFO, TOS, TCLASS, MEMINFO and SKMEMINFO: each attribute
//     that only the other spec asked for must be stripped (attr_needs), no more, no less;
//   - a walk per spec where merging does not pay or does not apply: a namespace above the threshold
//     (TCPSTATE_DIAG_MERGE_MAX_SOCKETS puts it there whatever else the host holds), the helper's own
//     namespace, a namespace with a hash of its own (net.ipv4.tcp_child_ehash_entries).
// Needs root.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { SocketRecord } from '../../src/model.ts';
import { NETLINK_DUMPS } from '../../src/sources/netlink.ts';
import { roundRecords } from '../helpers/collect.ts';
import { ROOT } from '../helpers/daemon.ts';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';

const run = promisify(execFile);
const HELPER = join(ROOT, 'build', 'tcpstate-diag');
const SHARED = `tcpstate-merge-${process.pid}`;
const OWN_HASH = `tcpstate-merge-${process.pid}-hash`;
const ATTRS = `tcpstate-merge-${process.pid}-attrs`;

// The two ways of making a socket both lab scripts below use, in Python (the lab's language).
const PY_SOCKETS = `
import socket, sys, time
def time_wait(l):
    c = socket.create_connection(l.getsockname()[:2]); s, _ = l.accept()
    c.close(); time.sleep(0.05); s.close()   # the active closer ends in TIME-WAIT
def fw1_orphan(family, l, cc=None):
    # unsent data behind a zero window: a FIN-WAIT-1 orphan; returns the client, to keep
    c = socket.socket(family); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(l.getsockname()[:2]); s, _ = l.accept()
    if cc: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc)
    s.setblocking(False)
    try:
        while True: s.send(b'x' * 65536)
    except BlockingIOError:
        pass
    s.close(); return c
`;

// IPv4: the FIN-WAIT-1 lab. IPv6 (the lab is IPv4 only): a listener, ESTABLISHED pairs, TIME-WAIT
// sockets and orphaned FIN-WAIT-1 sockets behind zero-window clients, held until stdin closes.
const LAB = { finWait1: 5, established: 4, timeWait: 3, basePort: 27101 };
const V6 = { established: 2, timeWait: 2, finWait1: 3 };
const IPV6_SOCKETS = `${PY_SOCKETS}
est, tw, fw1 = (int(a) for a in sys.argv[1:4])
keep = []
l = socket.socket(socket.AF_INET6); l.bind(('::1', 0)); l.listen(64); keep.append(l)
addr = l.getsockname()[:2]
for _ in range(est):
    c = socket.create_connection(addr); keep += [c, l.accept()[0]]
for _ in range(tw):
    time_wait(l)
for _ in range(fw1):
    keep.append(fw1_orphan(socket.AF_INET6, l))
time.sleep(0.3)
print('ready', flush=True)
sys.stdin.read()
`;

// Sockets whose messages carry the attributes the exporter's specs do not ask for: TCLASS (IPv6,
// set on a listener and on clients), TOS (set on an IPv4 listener and client), CONG and the
// congestion control's INFO attribute (one client with TCP_CONGESTION set to argv[1], the others
// with the namespace's default), MEMINFO/SKMEMINFO/INFO on every full socket, and minisockets
// (TIME-WAIT, an orphan's FIN-WAIT-2) and FIN-WAIT-1 orphans, which carry none of them.
const ATTR_SOCKETS = `${PY_SOCKETS}
cc = sys.argv[1].encode()
keep = []
l6 = socket.socket(socket.AF_INET6); l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28)
l6.bind(('::1', 0)); l6.listen(64); keep.append(l6)
for _ in range(2):
    c = socket.socket(socket.AF_INET6); c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x48)
    c.connect(l6.getsockname()[:2]); keep += [c, l6.accept()[0]]
l4 = socket.socket(); l4.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
l4.bind(('127.0.0.1', 0)); l4.listen(64); keep.append(l4)
addr = l4.getsockname()
c = socket.socket(); c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x08)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc); c.connect(addr); keep += [c, l4.accept()[0]]
time_wait(l4)
c = socket.create_connection(addr); s, _ = l4.accept(); c.close(); keep.append(s)  # FIN-WAIT-2 orphan
for _ in range(2):
    keep.append(fw1_orphan(socket.AF_INET, l4, cc))
time.sleep(0.3)
print('ready', flush=True)
sys.stdin.read()
`;

const NLMSG_DONE = 3;
const SOCK_DIAG_BY_FAMILY = 20;

interface Round {
  /** Each output's bytes (spec i's on output i). */
  outputs: Buffer[];
  /** The helper's TCPSTATE_DIAG_TRACE lines. */
  trace: string[];
}

/**
 * One --serve round (the helper in the test's own namespace, as the exporter's): `request` is the
 * request line; `specs` two dump specs, the exporter's unless given.
 */
async function round(request: string, env: NodeJS.ProcessEnv = {}, specs: readonly string[] = NETLINK_DUMPS): Promise<Round> {
  assert.equal(specs.length, 2);
  const child = spawn(HELPER, ['--serve', ...specs], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, TCPSTATE_DIAG_TRACE: '1', ...env },
  });
  const outputs = [child.stdout, child.stdio[3] as Readable];
  const chunks: Buffer[][] = outputs.map(() => []);
  outputs.forEach((s, i) => s.on('data', (c: Buffer) => chunks[i]!.push(c)));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.stdin.end(`${request}\n`); // one round, then end of input: the helper exits after it
  assert.equal(await exited, 0, stderr);
  const trace = stderr.split('\n').filter((l) => l.startsWith('tcpstate-diag: trace: '));
  assert.equal(trace.length, stderr.split('\n').filter((l) => l !== '').length, `only trace lines on stderr: ${stderr}`);
  return { outputs: chunks.map((c) => Buffer.concat(c)), trace };
}

const dumpLines = (r: Round) => r.trace.filter((l) => l.includes(': dump '));

/** Every message of an output: type, family (sockets), sequence number, port ID, attribute types. */
function messages(bytes: Buffer): Array<{ type: number; family: number; seq: number; port: number; key: string; attrs: number[] }> {
  const out = [];
  for (let off = 0; off + 16 <= bytes.length; ) {
    const len = bytes.readUInt32LE(off);
    const type = bytes.readUInt16LE(off + 4);
    const attrs: number[] = [];
    let key = '';
    if (type === SOCK_DIAG_BY_FAMILY) {
      const m = off + 16;
      key = `${bytes[m]} ${bytes[m + 1]} ${bytes.readUInt16BE(m + 4)} ${bytes.readUInt16BE(m + 6)} ${bytes.readBigUInt64LE(m + 44)}`;
      for (let a = m + 72; a + 4 <= off + len; a += (bytes.readUInt16LE(a) + 3) & ~3) attrs.push(bytes.readUInt16LE(a + 2));
    }
    out.push({ type, family: type === SOCK_DIAG_BY_FAMILY ? bytes[off + 16]! : 0, seq: bytes.readUInt32LE(off + 8), port: bytes.readUInt32LE(off + 12), key, attrs });
    off += (len + 3) & ~3;
  }
  return out;
}

/** The framing of an output: socket messages by family, NLMSG_DONE, in order, runs of one family collapsed. */
function framing(bytes: Buffer): string[] {
  const out: string[] = [];
  for (const m of messages(bytes)) {
    const what = m.type === NLMSG_DONE ? 'DONE' : m.type === SOCK_DIAG_BY_FAMILY ? (m.family === 2 ? 'v4' : 'v6') : `type ${m.type}`;
    if (what === 'DONE' || out.at(-1) !== what) out.push(what);
  }
  return out;
}

const keyOf = (r: SocketRecord) => `${r.family} ${r.state} ${r.localAddress}:${r.localPort} ${r.remoteAddress}:${r.remotePort}`;

/** An output's records by socket. */
function records(bytes: Buffer): Map<string, SocketRecord> {
  const map = new Map<string, SocketRecord>();
  for (const r of roundRecords(bytes)) {
    assert.ok(!map.has(keyOf(r)), `one record per socket: ${keyOf(r)}`);
    map.set(keyOf(r), r);
  }
  return map;
}

/** "family state" → count, for an output. */
function counts(bytes: Buffer): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of roundRecords(bytes)) c[`${r.family} ${r.state}`] = (c[`${r.family} ${r.state}`] ?? 0) + 1;
  return c;
}

/**
 * Two rounds' outputs hold the same sockets, figure for figure: exactly what does not move between
 * two dumps (queues, memory, inode, cookie, timer kind), within a little what does (a timer's
 * seconds and count, the zero-window probes' backoff, seconds since data was sent); each message the
 * same attributes, and each output the same sequence numbers and framing.
 */
function assertSameOutputs(a: Round, b: Round, specs: readonly string[] = NETLINK_DUMPS): void {
  for (let i = 0; i < specs.length; i++) {
    const what = `output ${i} (spec ${specs[i]})`;
    const [ra, rb] = [records(a.outputs[i]!), records(b.outputs[i]!)];
    assert.deepEqual([...ra.keys()].sort(), [...rb.keys()].sort(), `${what}: the same sockets`);
    for (const [key, x] of ra) {
      const y = rb.get(key)!;
      const exact = (r: SocketRecord) => [r.recvQueue, r.sendQueue, r.inode, r.identity, r.wmemQueued, r.timer, r.rtoSeconds === undefined];
      assert.deepEqual(exact(x), exact(y), `${what} ${key}: queues, memory, inode, cookie, timer kind`);
      const near = (p: number | undefined, q: number | undefined, within: number, field: string) =>
        assert.ok(p === q || (p !== undefined && q !== undefined && Math.abs(p - q) <= within), `${what} ${key} ${field}: ${p} vs ${q}`);
      near(x.timerSeconds, y.timerSeconds, 2, 'timer seconds');
      near(x.timerCount, y.timerCount, 1, 'timer count');
      near(x.backoff, y.backoff, 1, 'backoff');
      near(x.lastDataSentSeconds, y.lastDataSentSeconds, 2, 'last data sent');
    }
    const attrs = (r: Round) =>
      messages(r.outputs[i]!)
        .filter((m) => m.type === SOCK_DIAG_BY_FAMILY)
        .map((m) => `${m.key}: ${m.attrs.join(',')}`)
        .sort();
    assert.deepEqual(attrs(a), attrs(b), `${what}: the same attributes on each message`);
    const seqs = (r: Round) => [...new Set(messages(r.outputs[i]!).map((m) => m.seq))].sort();
    assert.deepEqual(seqs(a), seqs(b), `${what}: the same sequence numbers`);
    assert.deepEqual(framing(a.outputs[i]!), framing(b.outputs[i]!), `${what}: the same framing`);
  }
}

describe('real kernel: one walk for both dump specs in a namespace that shares the host\'s hash', { timeout: 90_000 }, () => {
  let lab: Lab;
  let v6: ChildProcessByStdio<Writable, Readable, null>;
  let pair: ChildProcessByStdio<Writable, Readable, null>;
  let attrs: ChildProcessByStdio<Writable, Readable, null>;
  // A congestion control other than the namespace's default, for one socket's CONG attribute.
  let otherCc = '';

  const holdSockets = async (ns: string, script: string, args: string[]) => {
    const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: p.stdout }).once('line', () => resolve());
      p.once('exit', (code) => reject(new Error(`socket script in ${ns} exited ${code}`)));
    });
    return p;
  };

  before(async () => {
    await createNetns(SHARED);
    await createNetns(ATTRS);
    // A namespace with a hash of its own: made while the setting asks for one, which is set back at once.
    const { stdout: child } = await run('sysctl', ['-n', 'net.ipv4.tcp_child_ehash_entries']);
    try {
      await run('sysctl', ['-q', '-w', 'net.ipv4.tcp_child_ehash_entries=1024']);
      await createNetns(OWN_HASH);
    } finally {
      await run('sysctl', ['-q', '-w', `net.ipv4.tcp_child_ehash_entries=${child.trim()}`]);
    }
    lab = await Lab.start({ ...LAB, netns: SHARED });
    v6 = await holdSockets(SHARED, IPV6_SOCKETS, [String(V6.established), String(V6.timeWait), String(V6.finWait1)]);
    pair = await holdSockets(OWN_HASH, IPV6_SOCKETS, ['1', '0', '0']);
    const sysctl = async (name: string) => (await run('ip', ['netns', 'exec', ATTRS, 'sysctl', '-n', name])).stdout.trim();
    const own = await sysctl('net.ipv4.tcp_congestion_control');
    otherCc = (await sysctl('net.ipv4.tcp_available_congestion_control')).split(/\s+/).find((c) => c !== own) ?? own;
    attrs = await holdSockets(ATTRS, ATTR_SOCKETS, [otherCc]);
  });
  after(async () => {
    await lab?.stop();
    for (const p of [v6, pair, attrs]) {
      p?.stdin.end();
      if (p !== undefined && p.exitCode === null) await new Promise((r) => p.once('exit', r));
    }
    await deleteNetns(SHARED);
    await deleteNetns(OWN_HASH);
    await deleteNetns(ATTRS);
  });

  it('the test\'s namespaces: one shares the host\'s hash, the other has its own', async () => {
    const entries = async (ns: string) => Number((await run('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/tcp_ehash_entries'])).stdout.trim());
    assert.ok((await entries(SHARED)) < 0, `${SHARED} shares the host's hash (net.ipv4.tcp_child_ehash_entries must be 0 when it is made)`);
    assert.equal(await entries(OWN_HASH), 1024);
  });

  it('few sockets, shared hash: one dump for both specs, each output as a walk per spec gives it, both families', async () => {
    const merged = await round(`/run/netns/${SHARED}`);
    const perSpec = await round(`/run/netns/${SHARED}`, { TCPSTATE_DIAG_PER_SPEC: '1' });
    assert.deepEqual(dumpLines(merged), ['tcpstate-diag: trace: dump both states 0x1ffe ext 0x42 for 2 specs']);
    // The two dumps run in threads of their own: their lines come in either order.
    assert.deepEqual(dumpLines(perSpec).sort(), [
      `tcpstate-diag: trace: dump both states 0x${NETLINK_DUMPS[0]} ext 0 for 1 spec`,
      `tcpstate-diag: trace: dump both states 0x${NETLINK_DUMPS[1]!.replace(':', ' ext 0x')} for 1 spec`,
    ].sort());
    assertSameOutputs(merged, perSpec);
    // Exact figures: the lab's IPv4 sockets (each FIN-WAIT-1 orphan's client, ESTABLISHED pairs
    // and the TIME-WAIT sockets' peers on the server side) and the IPv6 ones built above.
    const [main, fw1] = merged.outputs.map(counts);
    assert.equal(main!['ipv6 established'], 2 * V6.established + V6.finWait1);
    assert.equal(main!['ipv6 time_wait'], V6.timeWait);
    assert.equal(main!['ipv6 listen'], 1);
    assert.equal(main!['ipv4 time_wait'], LAB.timeWait);
    assert.equal(main!['ipv4 fin_wait1'], undefined);
    assert.deepEqual(fw1, { 'ipv4 fin_wait1': LAB.finWait1, 'ipv6 fin_wait1': V6.finWait1 });
    // The FIN-WAIT-1 orphans' extensions are there (memory pinned, backoff), the others' are not.
    const fw1Records = roundRecords(merged.outputs[1]!);
    assert.ok(fw1Records.every((r) => r.sendQueue > 0 && r.wmemQueued !== undefined && r.wmemQueued > 0 && r.backoff !== undefined), 'FIN-WAIT-1: Send-Q, skmeminfo and tcp_info');
    assert.ok(roundRecords(merged.outputs[0]!).every((r) => r.wmemQueued === undefined && r.backoff === undefined), 'other states: no extension');
    // The IPv4 figures as the lab itself measures them: counts, and each orphan's Send-Q.
    const figures = await lab.measure();
    assert.equal(main!['ipv4 established'], figures.established);
    assert.equal(main!['ipv4 listen'], figures.listen);
    if (figures.time_wait !== null) assert.equal(main!['ipv4 time_wait'], figures.time_wait);
    const sendQ = (rs: Array<{ family?: string; sendQueue?: number; send_queue?: number }>) =>
      rs.filter((r) => r.family !== 'ipv6').map((r) => r.sendQueue ?? r.send_queue).sort((a, b) => a! - b!);
    assert.deepEqual(sendQ(fw1Records), sendQ(figures.fin_wait1_sockets));
    assert.deepEqual(sendQ(fw1Records), sendQ(roundRecords(perSpec.outputs[1]!)));
  });

  it('per family (TCPSTATE_DIAG_PER_FAMILY): one dump per family for both specs, as a walk per spec and family gives it', async () => {
    const merged = await round(`/run/netns/${SHARED}`, { TCPSTATE_DIAG_PER_FAMILY: '1' });
    const perSpec = await round(`/run/netns/${SHARED}`, { TCPSTATE_DIAG_PER_FAMILY: '1', TCPSTATE_DIAG_PER_SPEC: '1' });
    assert.deepEqual(dumpLines(merged), [
      'tcpstate-diag: trace: dump ipv4 states 0x1ffe ext 0x42 for 2 specs',
      'tcpstate-diag: trace: dump ipv6 states 0x1ffe ext 0x42 for 2 specs',
    ]);
    assert.equal(dumpLines(perSpec).length, 4);
    assert.deepEqual(framing(merged.outputs[0]!), ['v4', 'DONE', 'v6', 'DONE']);
    assertSameOutputs(merged, perSpec);
    // And the same sockets as the both-families walk.
    const both = await round(`/run/netns/${SHARED}`);
    for (let i = 0; i < NETLINK_DUMPS.length; i++) assert.deepEqual([...records(merged.outputs[i]!).keys()].sort(), [...records(both.outputs[i]!).keys()].sort());
  });

  it('a refused both-families request (TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES): per family, with the sequence numbers of a walk per spec', async () => {
    const env = { TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES: '1' };
    const merged = await round(`/run/netns/${SHARED}`, env);
    const perSpec = await round(`/run/netns/${SHARED}`, { ...env, TCPSTATE_DIAG_PER_SPEC: '1' });
    assert.deepEqual(dumpLines(merged), [
      'tcpstate-diag: trace: dump both states 0x1ffe ext 0x42 for 2 specs',
      'tcpstate-diag: trace: dump ipv4 states 0x1ffe ext 0x42 for 2 specs',
      'tcpstate-diag: trace: dump ipv6 states 0x1ffe ext 0x42 for 2 specs',
    ]);
    // Spec i's refused request used 1 + 3i, its families' dumps the next two.
    const seqs = (r: Round, i: number) => [...new Set(messages(r.outputs[i]!).map((m) => m.seq))].sort((x, y) => x - y);
    assert.deepEqual([seqs(perSpec, 0), seqs(perSpec, 1)], [[2, 3], [5, 6]]);
    assertSameOutputs(merged, perSpec);
  });

  for (const specs of [['400:1c', '1bfe:63'], ['400:63', '1bfe:1d'], ['1fee:ff', '10:00']] as const) {
    it(`specs ${specs.join(' ')}: one walk, each output as a walk per spec gives it, attribute for attribute`, async () => {
      const merged = await round(`/run/netns/${ATTRS}`, {}, specs);
      const perSpec = await round(`/run/netns/${ATTRS}`, { TCPSTATE_DIAG_PER_SPEC: '1' }, specs);
      const union = (part: 0 | 1) => specs.reduce((u, s) => u | parseInt(s.split(':')[part]!, 16), 0).toString(16);
      assert.deepEqual(dumpLines(merged), [`tcpstate-diag: trace: dump both states 0x${union(0)} ext 0x${union(1)} for 2 specs`]);
      assert.equal(dumpLines(perSpec).length, 2);
      assertSameOutputs(merged, perSpec, specs);
      // The sockets are there, and the attributes the other spec asked for were there to strip.
      const all = merged.outputs.flatMap((o) => messages(o)).filter((m) => m.type === SOCK_DIAG_BY_FAMILY);
      assert.equal(all.filter((m) => m.key.startsWith('10 10 ')).length, 1, 'the IPv6 listener');
      assert.equal(all.filter((m) => m.key.startsWith('2 4 ')).length, 2, 'the FIN-WAIT-1 orphans');
      assert.equal(all.filter((m) => m.key.startsWith('2 5 ')).length, 1, 'the orphan\'s FIN-WAIT-2 minisocket');
      assert.equal(all.filter((m) => m.key.startsWith('2 6 ')).length, 1, 'the TIME-WAIT minisocket');
      const carrying = (attr: number) => perSpec.outputs.some((o) => messages(o).some((m) => m.attrs.includes(attr)));
      const INET_DIAG = { MEMINFO: 1, INFO: 2, CONG: 4, TOS: 5, TCLASS: 6, SKMEMINFO: 7 };
      for (const [name, attr] of Object.entries(INET_DIAG)) assert.ok(carrying(attr), `some spec's own walk carries ${name}`);
    });
  }

  it('above the threshold (TCPSTATE_DIAG_MERGE_MAX_SOCKETS): a walk per spec, the same records', async () => {
    const merged = await round(`/run/netns/${SHARED}`);
    const full = Number(/\((\d+) full sockets/.exec(merged.trace.find((l) => l.includes(': round ')) ?? '')?.[1]);
    // The lab's and the IPv6 script's full sockets: every one but the TIME-WAIT ones.
    assert.ok(full >= 2 * LAB.established + 2 * V6.established + V6.finWait1 + 1, `full sockets counted: ${full}`);
    const at = await round(`/run/netns/${SHARED}`, { TCPSTATE_DIAG_MERGE_MAX_SOCKETS: String(full) });
    assert.equal(dumpLines(at).length, 1, 'at the threshold: one walk');
    const above = await round(`/run/netns/${SHARED}`, { TCPSTATE_DIAG_MERGE_MAX_SOCKETS: String(full - 1) });
    assert.equal(dumpLines(above).length, 2, 'above it: a walk per spec');
    assert.ok(above.trace.some((l) => l.includes(': a walk per spec (')));
    assertSameOutputs(above, merged);
  });

  it('the helper\'s own namespace, and a namespace with a hash of its own: a walk per spec', async () => {
    const own = await round('');
    assert.equal(dumpLines(own).length, 2);
    const ownHash = await round(`/run/netns/${OWN_HASH}`);
    assert.equal(dumpLines(ownHash).length, 2);
    assert.ok(ownHash.trace.some((l) => l.endsWith('tcp_ehash_entries 1024)')), ownHash.trace.join('\n'));
    assert.deepEqual(counts(ownHash.outputs[0]!), { 'ipv6 established': 2, 'ipv6 listen': 1 });
  });
});
