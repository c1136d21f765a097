// Runs the programs whose output is a socket table: `ss` once per poll, `tcpstate-diag --serve`
// for the exporter's lifetime. The only module that imports execa.

import { setPriority } from 'node:os';
import { resolve } from 'node:path';
import { execa, ExecaError } from 'execa';
import { asError } from './source.ts';

/** How much of a child's stderr is kept for its error message (the end: where a failure is said). */
const STDERR_KEPT = 2000;

/** Niceness of the children (a background job: the scrapes of the exporter come first). */
const CHILD_NICE = 10;

/** What a failure message names: the program, the flag that sets its path, what to install. */
interface Program {
  path: string;
  args: readonly string[];
  pathFlag: string;
  missingHint: string;
}

export interface ChildRun extends Program {
  /** Kill the child at this time (ms since the epoch). */
  deadline: number;
  signal: AbortSignal;
  /** The flag that sets the timeout, and its value, for the message when it fires. */
  timeoutFlag: string;
  timeoutMs: number;
}

/**
 * Runs the child and awaits `consume` on every chunk of its stdout, as text. Resolves to the
 * error, if the child or the consumer failed; never rejects.
 */
export async function runChild(run: ChildRun, consume: (chunk: string) => Promise<void> | void): Promise<Error | undefined> {
  const subprocess = execa(programPath(run.path), run.args, {
    stdin: 'ignore',
    // stderr is not buffered by execa (its maxBuffer would fail the run): ss under `ip netns exec`
    // prints a warning per socket there while its table is complete. Only a tail is kept, below.
    buffer: false,
    timeout: Math.max(1, run.deadline - Date.now()),
    cancelSignal: run.signal,
    forceKillAfterDelay: 1000,
    // Output is not localised, but keep the environment predictable.
    env: { LC_ALL: 'C', COLUMNS: '200' },
    extendEnv: true,
    // Not the exporter's own working directory: an unprivileged exporter started from one it cannot
    // enter (a root-only checkout, sudo -u) failed every spawn with EACCES. The children need none.
    cwd: '/',
    // A process group of its own, so that the deadline ends whatever it started too: a background
    // process of an ss wrapper holding stdout would otherwise keep the poll waiting for EOF.
    detached: true,
  });
  // The last words on stderr, for the error message if the child fails.
  let stderrTail = '';
  subprocess.stderr.setEncoding('utf8');
  subprocess.stderr.on('data', (s: string) => {
    stderrTail = (stderrTail + s).slice(-STDERR_KEPT);
  });
  let killedAtDeadline = false;
  // When the child itself ended: before the deadline, what held its output open past it was a
  // process it started. Decided by the time of the exit, not by which of two timers (ours, execa's)
  // fired first, so that the message, and the log line, is the same at every poll.
  let exitedAtMs: number | undefined;
  subprocess.once('exit', () => (exitedAtMs = Date.now()));
  const heldOpen = () => (exitedAtMs !== undefined && exitedAtMs < run.deadline ? ' (a process it started held its output open)' : '');
  const killGroup = () => {
    if (subprocess.pid === undefined) return;
    try {
      process.kill(-subprocess.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  };
  const deadline = setTimeout(() => {
    killedAtDeadline = true;
    killGroup();
  }, Math.max(1, run.deadline - Date.now()));
  run.signal.addEventListener('abort', killGroup, { once: true });
  // The outcome is handled from the start: the child can be killed at its timeout while the
  // loop below is still consuming its output, and a rejection nobody handles yet ends the process.
  const outcome = subprocess.then(
    () => undefined,
    (e: unknown): Error => {
      if (e instanceof ExecaError && e.timedOut) {
        return new Error(`${programName(run)} killed after ${run.timeoutFlag}=${run.timeoutMs}ms${heldOpen()}`, { cause: e });
      }
      return describeFailure(e, run, stderrTail);
    },
  );
  lowerPriority(subprocess.pid);
  let consumerError: Error | undefined;
  let streamError: Error | undefined;
  try {
    subprocess.stdout.setEncoding('utf8');
    for await (const chunk of subprocess.stdout) {
      try {
        await consume(chunk as string);
      } catch (e) {
        consumerError = asError(e);
        break;
      }
    }
  } catch (e) {
    streamError = asError(e);
  }
  // A consumer that gave up leaves the child's output without a reader: end the child now.
  if (consumerError !== undefined) killGroup();
  const failure = await outcome;
  clearTimeout(deadline);
  run.signal.removeEventListener('abort', killGroup);
  // What the child left running in its group has no reader any more either.
  killGroup();
  if (killedAtDeadline && consumerError === undefined) {
    // Killed by the deadline, before execa's own timeout could say so; or it exited in time and
    // something it started held its output open past the deadline.
    return new Error(`${programName(run)} killed after ${run.timeoutFlag}=${run.timeoutMs}ms${heldOpen()}`);
  }
  return consumerError ?? failure ?? streamError;
}

export interface ServerRun extends Program {
  /** Output pipes besides stdout: fd 3, 4, ... */
  extraOutputs: number;
  /** Ends the server (shutdown). */
  signal: AbortSignal;
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

/** Starts a long-lived child (e.g. `tcpstate-diag --serve`). */
export function startServer(run: ServerRun): Server {
  const pipes = Array.from({ length: run.extraOutputs }, () => 'pipe' as const);
  const subprocess = execa(programPath(run.path), run.args, {
    stdio: ['pipe', 'pipe', 'pipe', ...pipes],
    buffer: false,
    cancelSignal: run.signal,
    forceKillAfterDelay: 1000,
    env: { LC_ALL: 'C' },
    extendEnv: true,
    cwd: '/',
  });
  lowerPriority(subprocess.pid);
  // The last words on stderr, for the error when it exits.
  let stderr = '';
  subprocess.stderr.setEncoding('utf8');
  subprocess.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-500);
  });
  const exited = subprocess.then(
    () => new Error(`${programName(run)} exited`),
    (e: unknown) => describeFailure(e, run, stderr),
  );
  // A write to a child that has just died fails with EPIPE: `exited` reports it.
  subprocess.stdin.on('error', () => undefined);
  const outputs = [subprocess.stdout, ...pipes.map((_, i) => subprocess.stdio[3 + i] as NodeJS.ReadableStream)];
  return { stdin: subprocess.stdin, outputs, exited, kill: () => subprocess.kill('SIGKILL') };
}

/**
 * The program to run: a path with a slash is taken relative to the exporter's working directory,
 * as the user typed it (--ss.path=./ss), since the child itself starts in `/`; a bare name is
 * looked up in PATH.
 */
function programPath(path: string): string {
  return path.includes('/') ? resolve(path) : path;
}

/** The child competes for the CPU with the exporter's event loop; let the loop (scrapes) win. */
function lowerPriority(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    setPriority(pid, CHILD_NICE);
  } catch {
    // Not allowed (e.g. a seccomp profile): the child keeps our priority.
  }
}

function programName(p: Program): string {
  return p.path.split('/').pop() ?? p.path;
}

function describeFailure(e: unknown, p: Program, stderr: string): Error {
  if (!(e instanceof ExecaError)) return asError(e);
  const name = programName(p);
  if (e.isCanceled) return new Error(`${name} cancelled (shutting down)`, { cause: e });
  if (e.code === 'ENOENT') return new Error(`${name} not found at ${p.pathFlag}=${p.path} (${p.missingHint})`, { cause: e });
  const why = stderr.trim().slice(-500);
  return new Error(`${e.shortMessage}${why === '' ? '' : `: ${why}`}`, { cause: e });
}
