// Drives test/lab/sockets.py: builds real FIN-WAIT-1 orphans, ESTABLISHED pairs and TIME-WAIT
// sockets on loopback, and the other stuck-state failure modes (CLOSE-WAIT leak, orphaned
// FIN-WAIT-2 and LAST-ACK, SYN-RECV flood, listen-queue overflow), optionally inside a network
// namespace made for the purpose (the SYN-RECV flood needs one: it adds an iptables rule).

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./sockets.py', import.meta.url));

export interface LabOptions {
  finWait1: number;
  established: number;
  timeWait: number;
  basePort?: number;
  /** CLOSE-WAIT sockets an application never closes (port base+3). */
  closeWait?: number;
  /** Orphaned FIN-WAIT-2 sockets whose peers never close (port base+4). */
  finWait2?: number;
  /** Orphaned LAST-ACK sockets behind zero-window peers (port base+5). */
  lastAck?: number;
  /** Half-open handshakes, SYN-ACKs dropped (port base+6; private network namespace only). */
  synRecv?: number;
  /** Clients of a listener that never accepts (port base+7), with this backlog (default 4). */
  listenOverflow?: number;
  listenBacklog?: number;
  /** FIN-WAIT-1 orphan i gets SO_SNDBUF × (1 + i mod N), so their Send-Q sizes differ (default 1: all alike). */
  sndbufSteps?: number;
  /** SO_SNDBUF of the FIN-WAIT-1 orphans before the steps (default 16384; the kernel doubles it). */
  sndbuf?: number;
  /**
   * Run inside this network namespace (it must exist, with lo up): an `ip netns` name, or the
   * absolute path of a namespace file (/proc/PID/ns/net), entered with nsenter.
   */
  netns?: string;
}

export type LabState =
  | 'established' | 'syn_sent' | 'syn_recv' | 'fin_wait1' | 'fin_wait2' | 'time_wait' | 'close' | 'close_wait' | 'last_ack' | 'listen' | 'closing' | 'unknown';

/** One socket of a scenario as the lab knows it (the server side unless said otherwise). */
export interface LabSocket {
  local_port: number;
  remote_port: number;
  state: LabState;
  /** CLOSE-WAIT: Recv-Q as the socket table shows it: unread bytes + 1 for the peer's FIN. */
  recv_queue?: number;
  /** CLOSE-WAIT: unread bytes (SIOCINQ), equal to what the client sent. */
  unread?: number;
  sent?: number;
  /** LAST-ACK: bytes written minus what the peer received, +1 for the queued FIN. */
  send_queue?: number;
}

/** Per-socket truth of the failure-mode scenarios built (absent: not built). */
export interface LabScenarios {
  close_wait?: { port: number; sockets: LabSocket[]; clients: LabState[] };
  fin_wait2?: {
    port: number;
    fin_timeout_seconds: number;
    age_seconds: number;
    /** null within a second of tcp_fin_timeout after the close (they may or may not be gone). */
    orphans: number | null;
    sockets: LabSocket[];
    clients: LabState[];
    /** Σ Recv-Q of the clients (in CLOSE-WAIT: 1 each for the FIN). */
    clients_recv_queue: number;
  };
  last_ack?: { port: number; sockets: LabSocket[]; peer_recv_queue: number; clients: LabState[] };
  syn_recv?: { port: number; sockets: LabSocket[]; clients: LabState[] };
  listen_overflow?: {
    port: number;
    /** The listener's sk_max_ack_backlog and sk_ack_backlog, from TCP_INFO on the listener. */
    backlog: number;
    accept_queue: number;
    clients: LabState[];
    /** TcpExt counters of the lab's namespace, now and since the lab started. */
    counters: { ListenOverflows: number | null; ListenDrops: number | null };
    counters_since_start: { ListenOverflows: number | null; ListenDrops: number | null };
  };
}

/** What the exporter should show, measured from the sockets themselves. */
export interface LabFigures {
  fin_wait1: number;
  /** The orphans' zero-window clients plus both ends of each idle pair (see established_parts). */
  established: number;
  established_parts: { fin_wait1_clients: number; idle_pairs: number };
  /** null within a second of the 60 s TIME-WAIT expiry; 0 after it. */
  time_wait: number | null;
  time_wait_expires_in: number;
  listen: number;
  /** What the failure-mode scenarios add to each state (clients included). */
  other_states: Partial<Record<LabState, number>>;
  /** Every socket the lab made, per state. */
  states: Partial<Record<LabState, number | null>>;
  scenarios: LabScenarios;
  /** Seconds since the sockets were built. */
  age_seconds: number;
  /** Σ (bytes written − bytes in the peer's receive queue); the kernel adds 1 per socket for the FIN. */
  fin_wait1_send_queue_without_fin: number;
  /** Each FIN-WAIT-1 orphan's Send-Q (FIN included), from the lab's writes and its peer's SIOCINQ. */
  fin_wait1_sockets: Array<{ local_port: number; remote_port: number; send_queue: number }>;
  peer_recv_queue: number;
  written: number;
}

/**
 * The socket figures of a measurement without what moves by itself (ages, time left, kernel
 * counters that retransmissions keep raising): two measurements around a scrape with the same
 * key saw the same sockets.
 */
export function steadyKey(m: LabFigures): string {
  const s = m.scenarios;
  return JSON.stringify({
    ...m,
    age_seconds: 0,
    time_wait_expires_in: 0,
    scenarios: {
      ...s,
      fin_wait2: s.fin_wait2 && { ...s.fin_wait2, age_seconds: 0 },
      listen_overflow: s.listen_overflow && { ...s.listen_overflow, counters: 0, counters_since_start: 0 },
    },
  });
}

export interface LabPorts {
  fin_wait1: number;
  established: number;
  time_wait: number;
  close_wait?: number;
  fin_wait2?: number;
  last_ack?: number;
  syn_recv?: number;
  listen_overflow?: number;
}

export class Lab {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
    private readonly iterator: AsyncIterator<string>,
    readonly ports: LabPorts,
    private readonly netns: string | undefined,
    private readonly stderr: () => string,
  ) {}

  static async start(o: LabOptions): Promise<Lab> {
    const args = [
      SCRIPT,
      '--fin-wait1', String(o.finWait1),
      '--established', String(o.established),
      '--time-wait', String(o.timeWait),
      '--base-port', String(o.basePort ?? 17001),
      '--close-wait', String(o.closeWait ?? 0),
      '--fin-wait2', String(o.finWait2 ?? 0),
      '--last-ack', String(o.lastAck ?? 0),
      '--syn-recv', String(o.synRecv ?? 0),
      '--listen-overflow', String(o.listenOverflow ?? 0),
      '--listen-backlog', String(o.listenBacklog ?? 4),
      '--sndbuf-steps', String(o.sndbufSteps ?? 1),
      ...(o.sndbuf === undefined ? [] : ['--sndbuf', String(o.sndbuf)]),
    ];
    const cmd = inNetns(o.netns, ['python3', ...args]);
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const lines = createInterface({ input: child.stdout });
    const iterator = lines[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done === true) throw new Error(`lab failed to start:\n${err}`);
    const ready = JSON.parse(first.value) as { ports: LabPorts };
    return new Lab(child, lines, iterator, ready.ports, o.netns, () => err);
  }

  /** The lab process (in the lab's namespace: `ip netns exec` and nsenter exec it). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Measures the sockets now. */
  measure(): Promise<LabFigures> {
    return this.ask('measure');
  }

  /**
   * The first `k` zero-window peers read everything they were sent, up to the FIN: their orphans
   * move on to FIN-WAIT-2. Resolves with how many saw the FIN.
   */
  drain(k: number): Promise<{ drained: number; eof: number }> {
    return this.ask(`drain ${k}`);
  }

  /** HTTP GET from inside the lab's namespace; the connection ends with an RST (no TIME-WAIT). */
  async get(port: number, path: string): Promise<{ status: number; body: string; contentType: string }> {
    return this.ask(`get ${port} ${path}`);
  }

  private async ask<T>(command: string): Promise<T> {
    this.child.stdin.write(`${command}\n`);
    const next = await this.iterator.next();
    if (next.done === true) throw new Error(`lab ended:\n${this.stderr()}`);
    return JSON.parse(next.value) as T;
  }

  /**
   * Ends the lab: the peers close with unread data, which resets every orphan; then `ss -K` on the
   * lab's ports kills whatever is left, so nothing leaks into the next test.
   */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.stdin.end('quit\n');
      await new Promise((resolve) => this.child.once('exit', resolve));
    }
    this.lines.close();
    await killPorts(Object.values(this.ports).filter((p): p is number => p !== undefined), this.netns);
  }
}

/** `ss -K` on every socket with one of these local or peer ports. */
export async function killPorts(ports: readonly number[], netns?: string): Promise<void> {
  const filter = ports.flatMap((p, i) => [...(i > 0 ? ['or'] : []), 'sport', '=', `:${p}`, 'or', 'dport', '=', `:${p}`]);
  const cmd = ['ss', '-K', '-t', '-a', '-n', '(', ...filter, ')'];
  const full = inNetns(netns, cmd);
  await run(full[0]!, full.slice(1)).catch(() => undefined);
}

/** A command line run in a namespace given by `ip netns` name or namespace file path. */
export function inNetns(netns: string | undefined, cmd: string[]): string[] {
  if (netns === undefined) return cmd;
  return netns.startsWith('/') ? ['nsenter', `--net=${netns}`, ...cmd] : ['ip', 'netns', 'exec', netns, ...cmd];
}

/** A network namespace of our own, loopback up. */
export async function createNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
}

export async function deleteNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
}
