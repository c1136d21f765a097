// Real kernel: peer networks and owners. In a network namespace of our own, a listener process
// (test/kernel/peers_lab.py) has FIN-WAIT-1 orphans behind zero-window peers bound to 127.1.2.x and
// 127.3.4.x (two /24s of lo's 127.0.0.0/8), and one ESTABLISHED connection it keeps. The daemon's
// /sockets and a live `report`, run in that namespace, must give each network's exact socket count
// and Send-Q bytes (the process's own writes minus what each peer holds, + 1 FIN), the listener's
// process (pid, comm) for its port, that process as the owner of the socket it keeps, and none for
// the orphans. Needs root (ip netns). The owner lookup gets a 60 s budget: other tests and tools on
// a shared machine may hold 100 000 descriptors, which the default 1 s does not get through.

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BIN, ROOT, startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { createNetns, deleteNetns } from '../lab/lab.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./peers_lab.py', import.meta.url));
const NETNS = `tcpstate-peers-${process.pid}`;
const PORT = 17301;
const PEERS = ['127.1.2.10', '127.1.2.11', '127.1.2.12', '127.3.4.20', '127.3.4.21'];

interface Owner {
  pid: number;
  comm: string;
}
interface Network {
  network: string;
  sockets: number;
  bytes: number;
}
interface SocketsAnswer {
  sockets: Array<{ state: string; local: string; peer: string; sendQueue: number; orphan: boolean; owners: Owner[] | null }>;
  peerNetworks: { ipv4Prefix: number; networks: number; sockets: number; bytes: number; uncounted: number; top: Network[] };
  listeners: Array<{ port: string; owners: Owner[] | null }>;
  ownerScan: { scannedProcesses: number; denied: number; stoppedBy: string | null };
}

class PeersLab {
  private readonly lines: AsyncIterator<string>;
  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly pid: number,
    readonly comm: string,
    lines: AsyncIterator<string>,
  ) {
    this.lines = lines;
  }

  static async start(): Promise<PeersLab> {
    const args = ['netns', 'exec', NETNS, 'python3', SCRIPT, '--port', String(PORT), '--keep', ...PEERS.flatMap((p) => ['--peer', p])];
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done === true) throw new Error(`peers lab ended:\n${err}`);
    const hello = JSON.parse(first.value) as { pid: number; comm: string };
    return new PeersLab(child, hello.pid, hello.comm, lines);
  }

  async ask<T>(cmd: string): Promise<T> {
    this.child.stdin.write(`${cmd}\n`);
    const next = await this.lines.next();
    if (next.done === true) throw new Error('peers lab ended');
    return JSON.parse(next.value) as T;
  }

  /** Per /24, the orphans' count and exact Send-Q, from the process's own figures. */
  async truth(): Promise<Network[]> {
    const m = await this.ask<{ orphans: Array<{ peer: string; send_queue: number }> }>('measure');
    const by = new Map<string, Network>();
    for (const o of m.orphans) {
      const network = `${o.peer.split('.').slice(0, 3).join('.')}.0/24`;
      const n = by.get(network) ?? { network, sockets: 0, bytes: 0 };
      n.sockets++;
      n.bytes += o.send_queue;
      by.set(network, n);
    }
    return [...by.values()].sort((a, b) => b.bytes - a.bytes);
  }

  async stop(): Promise<void> {
    this.child.stdin.end();
    this.child.kill('SIGTERM');
    await new Promise((r) => this.child.once('close', r));
  }
}

describe('real kernel: peer networks and owners on /sockets and in report', { timeout: 120_000 }, () => {
  let lab: PeersLab | undefined;
  before(async () => {
    await createNetns(NETNS);
    lab = await PeersLab.start();
  });
  after(async () => {
    await lab?.stop();
    // Resets the orphans with the namespace (they would outlive the lab by minutes).
    await deleteNetns(NETNS);
  });

  for (const source of ['netlink', 'ss'] as const) {
    it(`--source ${source}: /sockets groups the orphans by /24 with exact counts and bytes; the listener's and the kept socket's owner is the lab process`, async () => {
      let d: Daemon | undefined;
      try {
        d = await startDaemon(['--source', source, '--poll.interval', '1s', '--log.level', 'debug', '--web.sockets', '--owners.timeout', '60s'], { netns: NETNS, get: (port, path) => lab!.ask(`get ${port} ${path}`) });
        // A scrape between two identical measurements, right after a poll (the persist probes do not move bytes).
        let body: SocketsAnswer | undefined;
        let want: Network[] = [];
        for (let i = 0; i < 20; i++) {
          const before = JSON.stringify(await lab!.truth());
          await waitForPoll(d);
          body = JSON.parse((await d.get('/sockets?state=fin-wait-1&limit=1000')).body) as SocketsAnswer;
          want = await lab!.truth();
          if (JSON.stringify(want) === before) break;
        }
        assert.ok(body !== undefined);
        console.log(`# ${source}: lab ${JSON.stringify(want)}; /sockets ${JSON.stringify(body.peerNetworks.top)}; owner scan ${JSON.stringify(body.ownerScan)}`);
        assert.equal(want.length, 2);
        assert.deepEqual(want.map((n) => n.sockets).sort(), [2, 3]);
        assert.deepEqual(body.peerNetworks.top, want);
        assert.deepEqual(
          [body.peerNetworks.ipv4Prefix, body.peerNetworks.networks, body.peerNetworks.sockets, body.peerNetworks.bytes, body.peerNetworks.uncounted],
          [24, 2, PEERS.length, want.reduce((a, n) => a + n.bytes, 0), 0],
        );
        // Every FIN-WAIT-1 socket listed is an orphan: no owner.
        assert.equal(body.sockets.length, PEERS.length);
        assert.ok(body.sockets.every((s) => s.orphan && s.owners === null));
        // The lab's port: its listener's process.
        const self = { pid: lab!.pid, comm: lab!.comm };
        assert.deepEqual(body.listeners.find((l) => l.port === String(PORT))?.owners, [self]);
        // The daemon's own port: the daemon (its listener runs in the same namespace).
        assert.deepEqual(body.listeners.find((l) => l.port === String(d!.port))?.owners?.map((o) => o.pid), [d.child.pid]);
        assert.equal(body.ownerScan.denied, 0);
        assert.equal(body.ownerScan.stoppedBy, null);
        // The ESTABLISHED connection the lab keeps: its server end is owned by the lab process.
        const est = JSON.parse((await d.get('/sockets?state=established&limit=1000')).body) as SocketsAnswer;
        const kept = est.sockets.find((s) => s.local === `127.0.0.1:${PORT}` && s.peer.startsWith('127.5.6.7:'));
        assert.ok(kept, JSON.stringify(est.sockets));
        assert.deepEqual(kept.owners, [self]);
      } finally {
        const code = d === undefined ? 0 : await d.stop();
        assert.equal(code, 0);
      }
    });
  }

  it('report (live, in the namespace): the same networks and the listener\'s process', async () => {
    const want = await lab!.truth();
    const { stdout } = await run('ip', ['netns', 'exec', NETNS, process.execPath, BIN, 'report', '--format', 'json', '--owners.timeout', '60s'], { cwd: ROOT });
    const j = JSON.parse(stdout) as { finWait1: { peerNetworks: SocketsAnswer['peerNetworks'] }; listeners: SocketsAnswer['listeners'] };
    assert.deepEqual(j.finWait1.peerNetworks.top, want);
    assert.deepEqual(j.listeners.find((l) => l.port === String(PORT))?.owners, [{ pid: lab!.pid, comm: lab!.comm }]);
    const text = await run('ip', ['netns', 'exec', NETNS, process.execPath, BIN, 'report', '--owners.timeout', '60s'], { cwd: ROOT });
    assert.match(text.stdout, new RegExp(`${PORT} +5 sockets .*listener: ${lab!.comm} \\(pid ${lab!.pid}\\)`));
    assert.match(text.stdout, /127\.1\.2\.0\/24 +3 sockets/);
    assert.match(text.stdout, /127\.3\.4\.0\/24 +2 sockets/);
  });
});
