// Drives test/lab/sockets.py: builds real FIN-WAIT-1 orphans, ESTABLISHED pairs and TIME-WAIT
// sockets on loopback, optionally inside a network namespace made for the purpose.

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
  /** Run inside this network namespace (it must exist, with lo up). */
  netns?: string;
}

/** What the exporter should show, measured from the sockets themselves. */
export interface LabFigures {
  fin_wait1: number;
  established: number;
  time_wait: number;
  listen: number;
  /** Σ (bytes written − bytes in the peer's receive queue); the kernel adds 1 per socket for the FIN. */
  fin_wait1_send_queue_without_fin: number;
  peer_recv_queue: number;
  written: number;
}

export interface LabPorts {
  fin_wait1: number;
  established: number;
  time_wait: number;
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
    ];
    const cmd = o.netns === undefined ? ['python3', ...args] : ['ip', 'netns', 'exec', o.netns, 'python3', ...args];
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

  /** Measures the sockets now. */
  measure(): Promise<LabFigures> {
    return this.ask('measure');
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
    await killPorts(Object.values(this.ports), this.netns);
  }
}

/** `ss -K` on every socket with one of these local or peer ports. */
export async function killPorts(ports: readonly number[], netns?: string): Promise<void> {
  const filter = ports.flatMap((p, i) => [...(i > 0 ? ['or'] : []), 'sport', '=', `:${p}`, 'or', 'dport', '=', `:${p}`]);
  const cmd = ['ss', '-K', '-t', '-a', '-n', '(', ...filter, ')'];
  const full = netns === undefined ? cmd : ['ip', 'netns', 'exec', netns, ...cmd];
  await run(full[0]!, full.slice(1)).catch(() => undefined);
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
