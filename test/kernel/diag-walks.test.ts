// Real kernel: how many times build/tcpstate-diag walks the kernel's socket tables per spec. The
// TCP hash tables hold the host's every socket (all namespaces, both families), and a dump walks
// them all whatever it selects: one walk per spec for both families (TCPDIAG_GETSOCK), not one
// per family, halves the kernel's share of a poll's CPU (docs/performance.md "The helper's
// kernel walks"). The answer still reads as two dumps, one per family (two NLMSG_DONE), and holds
// exactly the sockets the per-family dumps hold. In a private network namespace with IPv4 and
// IPv6 listeners and connections. Needs root.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { NETLINK_DUMPS } from '../../src/sources/netlink.ts';
import { roundRecords } from '../helpers/collect.ts';
import { ROOT } from '../helpers/daemon.ts';
import { createNetns, deleteNetns } from '../lab/lab.ts';

const run = promisify(execFile);
const HELPER = join(ROOT, 'build', 'tcpstate-diag');
const NETNS = `tcpstate-walk-${process.pid}`;

// Three IPv4 and two IPv6 connections (each a pair of ESTABLISHED sockets), their listeners.
const SOCKETS = `
import socket, sys
keep = []
for family, host, n in ((socket.AF_INET, '127.0.0.1', 3), (socket.AF_INET6, '::1', 2)):
    l = socket.socket(family, socket.SOCK_STREAM)
    l.bind((host, 0))
    l.listen(16)
    keep.append(l)
    for _ in range(n):
        c = socket.create_connection(l.getsockname()[:2])
        keep += [c, l.accept()[0]]
print('ready', flush=True)
sys.stdin.read()
`;

const SOCK_DIAG_BY_FAMILY = 20;
const NLMSG_DONE = 3;

/** The message types of a tcpstate-diag answer, in order (socket messages as their family). */
function shape(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off + 16 <= bytes.length; ) {
    const len = bytes.readUInt32LE(off);
    const type = bytes.readUInt16LE(off + 4);
    out.push(type === SOCK_DIAG_BY_FAMILY ? (bytes[off + 16] === 2 ? 'v4' : 'v6') : type === NLMSG_DONE ? 'DONE' : `type ${type}`);
    off += (len + 3) & ~3;
  }
  return out;
}

/** The sockets of an answer, as sortable text. */
function sockets(bytes: Buffer): string[] {
  return roundRecords(bytes)
    .map((r) => `${r.family} ${r.state} ${r.localAddress}:${r.localPort} ${r.remoteAddress}:${r.remotePort} ${r.identity}`)
    .sort();
}

async function dump(spec: string, env: NodeJS.ProcessEnv = {}): Promise<Buffer> {
  const { stdout } = await run('ip', ['netns', 'exec', NETNS, HELPER, spec], { encoding: 'buffer', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  return stdout;
}

/** A --serve round: both specs at once, the answer of each on its own pipe. */
async function serveRound(env: NodeJS.ProcessEnv = {}): Promise<Buffer[]> {
  const child = spawn('ip', ['netns', 'exec', NETNS, HELPER, '--serve', ...NETLINK_DUMPS], {
    stdio: ['pipe', 'pipe', 'inherit', 'pipe'],
    env: { ...process.env, ...env },
  });
  const outputs = [child.stdout!, child.stdio[3] as Readable];
  const chunks: Buffer[][] = outputs.map(() => []);
  outputs.forEach((s, i) => s.on('data', (c: Buffer) => chunks[i]!.push(c)));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.stdin!.end('\n'); // one round, then end of input: the helper exits after it
  assert.equal(await exited, 0);
  return chunks.map((c) => Buffer.concat(c));
}

describe('real kernel: tcpstate-diag walks the socket tables once per spec', { timeout: 60_000 }, () => {
  let lab: ChildProcessByStdio<Writable, Readable, null>;

  before(async () => {
    await createNetns(NETNS);
    lab = spawn('ip', ['netns', 'exec', NETNS, 'python3', '-c', SOCKETS], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: lab.stdout }).once('line', () => resolve());
      lab.once('exit', (code) => reject(new Error(`socket script exited ${code}`)));
    });
  });
  after(async () => {
    lab?.stdin.end();
    await new Promise((r) => (lab?.exitCode === null ? lab.once('exit', r) : r(undefined)));
    await deleteNetns(NETNS);
  });

  it('one walk for both families: every socket before the two NLMSG_DONE, both families in it', async () => {
    const seen = shape(await dump(NETLINK_DUMPS[0]!));
    const firstDone = seen.indexOf('DONE');
    assert.deepEqual(seen.slice(firstDone), ['DONE', 'DONE'], `no socket after the first NLMSG_DONE (got ${seen.join(' ')})`);
    // 2 listeners + 3 × 2 IPv4, 2 × 2 IPv6 sockets.
    assert.deepEqual([seen.filter((t) => t === 'v4').length, seen.filter((t) => t === 'v6').length], [7, 5]);
  });

  it('the same sockets as one dump per family (TCPSTATE_DIAG_PER_FAMILY), in one-shot and --serve', async () => {
    const perFamily = await dump(NETLINK_DUMPS[0]!, { TCPSTATE_DIAG_PER_FAMILY: '1' });
    const times = (what: string, n: number): string[] => Array.from({ length: n }, () => what);
    assert.deepEqual(shape(perFamily), [...times('v4', 7), 'DONE', ...times('v6', 5), 'DONE']);
    assert.deepEqual(sockets(await dump(NETLINK_DUMPS[0]!)), sockets(perFamily));
    const [both, old] = [await serveRound(), await serveRound({ TCPSTATE_DIAG_PER_FAMILY: '1' })];
    for (let i = 0; i < NETLINK_DUMPS.length; i++) assert.deepEqual(sockets(both[i]!), sockets(old[i]!), `spec ${NETLINK_DUMPS[i]}`);
    assert.equal(sockets(both[0]!).length, 12);
    assert.deepEqual(shape(both[0]!).slice(-2), ['DONE', 'DONE']);
  });
});
