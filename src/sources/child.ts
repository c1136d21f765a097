// Runs a program whose stdout is a socket table (ss, tcpstate-diag) and hands its output to a
// parser as it arrives. The only module that imports execa.

import { setPriority } from 'node:os';
import { execa, ExecaError } from 'execa';
import { asError } from './report.ts';

/** Niceness of the children (a background job: the scrapes of the exporter come first). */
const CHILD_NICE = 10;

export interface ChildRun {
  path: string;
  args: readonly string[];
  /** Kill the child at this time (ms since the epoch). */
  deadline: number;
  signal: AbortSignal;
  /** Where the failure message points the operator: the flag that sets the path, the one that sets the timeout. */
  pathFlag: string;
  timeoutFlag: string;
  timeoutMs: number;
  /** What to install when the program is missing. */
  missingHint: string;
}

/**
 * Runs the child and awaits `consume` on every stdout chunk (text when `encoding` is given,
 * else bytes). Resolves to the error, if the child or the consumer failed; never rejects.
 */
export async function runChild(run: ChildRun, encoding: 'utf8', consume: (chunk: string) => Promise<void> | void): Promise<Error | undefined>;
export async function runChild(run: ChildRun, encoding: undefined, consume: (chunk: Buffer) => Promise<void> | void): Promise<Error | undefined>;
export async function runChild(
  run: ChildRun,
  encoding: 'utf8' | undefined,
  consume: ((chunk: string) => Promise<void> | void) | ((chunk: Buffer) => Promise<void> | void),
): Promise<Error | undefined> {
  const subprocess = execa(run.path, run.args, {
    stdin: 'ignore',
    buffer: { stdout: false, stderr: true },
    maxBuffer: { stderr: 16_384 },
    timeout: Math.max(1, run.deadline - Date.now()),
    cancelSignal: run.signal,
    forceKillAfterDelay: 1000,
    // Output is not localised, but keep the environment predictable.
    env: { LC_ALL: 'C', COLUMNS: '200' },
    extendEnv: true,
  });
  // The child competes for the CPU with the exporter's event loop; let the loop (scrapes) win.
  if (subprocess.pid !== undefined) {
    try {
      setPriority(subprocess.pid, CHILD_NICE);
    } catch {
      // Not allowed (e.g. a seccomp profile): the child keeps our priority.
    }
  }
  let error: Error | undefined;
  try {
    if (encoding !== undefined) subprocess.stdout.setEncoding(encoding);
    for await (const chunk of subprocess.stdout) await (consume as (c: unknown) => Promise<void> | void)(chunk);
  } catch (e) {
    error = asError(e);
  }
  try {
    await subprocess;
  } catch (e) {
    error = describeFailure(e, run);
  }
  return error;
}

function describeFailure(e: unknown, run: ChildRun): Error {
  if (!(e instanceof ExecaError)) return asError(e);
  const name = run.path.split('/').pop() ?? run.path;
  if (e.timedOut) return new Error(`${name} killed after ${run.timeoutFlag}=${run.timeoutMs}ms`, { cause: e });
  if (e.isCanceled) return new Error(`${name} cancelled (shutting down)`, { cause: e });
  if (e.code === 'ENOENT') return new Error(`${name} not found at ${run.pathFlag}=${run.path} (${run.missingHint})`, { cause: e });
  const raw: unknown = e.stderr;
  const stderr = typeof raw === 'string' ? raw.trim().slice(0, 500) : '';
  return new Error(`${e.shortMessage}${stderr === '' ? '' : `: ${stderr}`}`, { cause: e });
}

export interface ServerRun {
  path: string;
  args: readonly string[];
  /** Output pipes besides stdout: fd 3, 4, ... */
  extraOutputs: number;
  /** Ends the server (shutdown). */
  signal: AbortSignal;
  pathFlag: string;
  missingHint: string;
}

/** A long-lived child fed through stdin, with its output pipes. */
export interface Server {
  readonly stdin: NodeJS.WritableStream;
  /** stdout, then fd 3, 4, ... */
  readonly outputs: readonly NodeJS.ReadableStream[];
  /** Settles once, when the child has gone, with why. */
  readonly exited: Promise<Error>;
  kill(): void;
}

/** Starts a long-lived child (e.g. `tcpstate-diag --serve`) at our niceness + CHILD_NICE. */
export function startServer(run: ServerRun): Server {
  const pipes = Array.from({ length: run.extraOutputs }, () => 'pipe' as const);
  const subprocess = execa(run.path, run.args, {
    stdio: ['pipe', 'pipe', 'pipe', ...pipes],
    buffer: false,
    cancelSignal: run.signal,
    forceKillAfterDelay: 1000,
    env: { LC_ALL: 'C' },
    extendEnv: true,
  });
  if (subprocess.pid !== undefined) {
    try {
      setPriority(subprocess.pid, CHILD_NICE);
    } catch {
      // Not allowed: the child keeps our priority.
    }
  }
  // The last words on stderr, for the error when it exits.
  let stderr = '';
  subprocess.stderr.setEncoding('utf8');
  subprocess.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-500);
  });
  const name = run.path.split('/').pop() ?? run.path;
  const exited = subprocess.then(
    () => new Error(`${name} exited`),
    (e: unknown) => {
      if (e instanceof ExecaError) {
        if (e.isCanceled) return new Error(`${name} cancelled (shutting down)`, { cause: e });
        if (e.code === 'ENOENT') return new Error(`${name} not found at ${run.pathFlag}=${run.path} (${run.missingHint})`, { cause: e });
        const why = stderr.trim();
        return new Error(`${e.shortMessage}${why === '' ? '' : `: ${why}`}`, { cause: e });
      }
      return asError(e);
    },
  );
  // A write to a child that has just died fails with EPIPE: `exited` reports it.
  subprocess.stdin.on('error', () => undefined);
  const outputs = [subprocess.stdout, ...pipes.map((_, i) => subprocess.stdio[3 + i] as NodeJS.ReadableStream)];
  return { stdin: subprocess.stdin, outputs, exited, kill: () => subprocess.kill('SIGKILL') };
}
