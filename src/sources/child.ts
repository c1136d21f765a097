// Runs the programs whose output is a socket table: `ss` once per poll, `tcpstate-diag --serve`
// for the exporter's lifetime. The only module that imports execa.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
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
  /** Output channels besides stdout: fd 3, 4, ... */
  extraOutputs: number;
  /** Bytes of the one buffer each output is read into. */
  readBufferBytes: number;
  /** Ends the server (shutdown). */
  signal: AbortSignal;
}

/**
 * One of a server's outputs, read into a single buffer allocated once: each chunk is a view of
 * that buffer, valid during the call only (the next read overwrites it). No reader: bytes dropped.
 */
export interface OutputReader {
  read(consume: ((chunk: Buffer) => void) | undefined): void;
}

/** A long-lived child fed through stdin, with its outputs. */
export interface Server {
  readonly stdin: NodeJS.WritableStream;
  /** stdout, then fd 3, 4, ... */
  readonly outputs: readonly OutputReader[];
  /** Settles once, when the child has gone, with why. */
  readonly exited: Promise<Error>;
  kill(): void;
}

/**
 * Starts a long-lived child (e.g. `tcpstate-diag --serve`) whose outputs are Unix stream sockets
 * made here and read into one buffer each, allocated once (net.Socket's `onread`). child_process
 * makes a socket pair for each `'pipe'` output too, but its reader gets a new buffer for every
 * read, freed only by a garbage collection: a poll at 150 000 sockets left 9-14 MiB of them behind.
 */
export async function startServer(run: ServerRun): Promise<Server> {
  const readers: Array<((chunk: Buffer) => void) | undefined> = [];
  const pairs: Pair[] = [];
  const name = programName(run);
  try {
    for (let i = 0; i <= run.extraOutputs; i++) {
      const buffer = Buffer.allocUnsafe(run.readBufferBytes);
      const onRead = (n: number) => readers[i]?.(buffer.subarray(0, n));
      // Twice: another process of the network namespace may have filled the listener's backlog.
      pairs.push(await socketPair(onRead, buffer, run.signal).catch(() => socketPair(onRead, buffer, run.signal)));
    }
    if (run.signal.aborted) throw new Error('cancelled (shutting down)');
  } catch (e) {
    for (const p of pairs) destroyPair(p);
    throw new Error(`cannot make the output sockets of ${name}: ${asError(e).message}`, { cause: e });
  }
  let subprocess;
  try {
    subprocess = execa(programPath(run.path), run.args, {
      stdio: ['pipe', pairs[0]!.theirs, 'pipe', ...pairs.slice(1).map((p) => p.theirs)],
      buffer: false,
      cancelSignal: run.signal,
      forceKillAfterDelay: 1000,
      env: { LC_ALL: 'C' },
      extendEnv: true,
      cwd: '/',
    });
  } catch (e) {
    for (const p of pairs) destroyPair(p);
    throw e;
  }
  lowerPriority(subprocess.pid);
  // The last words on stderr, for the error when it exits.
  let stderr = '';
  subprocess.stderr.setEncoding('utf8');
  subprocess.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-500);
  });
  const exited = subprocess.then(
    () => new Error(`${name} exited`),
    (e: unknown) => describeFailure(e, run, stderr),
  );
  // Their ends stay open here, unused, until the child has gone: execa watches a stream given
  // as stdio until the exit and would take its earlier close for the child's failure.
  void exited.then(() => {
    for (const p of pairs) destroyPair(p);
  });
  // A write to a child that has just died fails with EPIPE: `exited` reports it.
  subprocess.stdin.on('error', () => undefined);
  const outputs = pairs.map((_, i): OutputReader => ({
    read: (consume) => {
      readers[i] = consume;
    },
  }));
  return { stdin: subprocess.stdin, outputs, exited, kill: () => subprocess.kill('SIGKILL') };
}

/** Two connected Unix stream sockets: ours is read here, theirs is handed to the child. */
interface Pair {
  ours: Socket;
  theirs: Socket;
}

function destroyPair(p: Pair): void {
  p.ours.destroy();
  p.theirs.destroy();
}

/** How long making a socket pair may take (a local connect: microseconds). */
const PAIR_TIMEOUT_MS = 5000;

/**
 * A connected pair of Unix stream sockets (Node.js has no socketpair()): `ours` reads into
 * `buffer` and hands the byte count to `onRead`. Made through a listener on a random abstract
 * name (nothing on the filesystem: the image's root is read-only) that lives until the pair is
 * connected. Another process of the network namespace can see the name in /proc/net/unix and
 * connect first: the accepted socket that is ours is the one that reads back the random token
 * ours wrote; every other one is closed. Errors of either socket after that are the child's
 * business (`exited` says why it ended).
 */
async function socketPair(onRead: (bytes: number) => void, buffer: Buffer, signal: AbortSignal): Promise<Pair> {
  const token = randomBytes(16);
  const address = `\0tcpstate-exporter-${randomBytes(16).toString('hex')}`;
  const server = createServer();
  const accepted: Socket[] = [];
  let ours: Socket | undefined;
  let pair: Pair | undefined;
  const deadline = AbortSignal.any([AbortSignal.timeout(PAIR_TIMEOUT_MS), signal]);
  try {
    pair = await new Promise<Pair>((resolvePair, reject) => {
      const fail = (e: Error) => reject(e);
      const onAbort = () => fail(new Error(signal.aborted ? 'cancelled (shutting down)' : `not connected within ${PAIR_TIMEOUT_MS} ms`));
      if (deadline.aborted) return onAbort();
      deadline.addEventListener('abort', onAbort, { once: true });
      server.on('error', fail);
      server.on('connection', (s: Socket) => {
        accepted.push(s);
        s.on('error', () => s.destroy());
        let got = Buffer.alloc(0);
        const onData = (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (got.length < token.length) return;
          s.off('data', onData);
          s.pause();
          if (ours !== undefined && got.length === token.length && timingSafeEqual(got, token)) resolvePair({ ours, theirs: s });
          else s.destroy();
        };
        s.on('data', onData);
      });
      server.listen(address, () => {
        ours = connect({
          path: address,
          onread: {
            buffer,
            callback: (n: number) => {
              onRead(n);
              return true;
            },
          },
        });
        ours.on('error', fail);
        ours.once('connect', () => ours?.write(token));
      });
    });
    return pair;
  } finally {
    server.close();
    for (const s of accepted) if (s !== pair?.theirs) s.destroy();
    if (pair === undefined) ours?.destroy();
    ours?.removeAllListeners('error');
    ours?.on('error', () => undefined);
    pair?.theirs.removeAllListeners('error');
    pair?.theirs.on('error', () => undefined);
  }
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
  // Without execa's error as the cause: its text names the arguments of the run that found the
  // program missing, and the log says a failure once by its text (a program removed between two
  // runs of a poll, as ss's two passes, would read as two failures).
  if (e.code === 'ENOENT') return new Error(`${name} not found at ${p.pathFlag}=${p.path} (${p.missingHint})`);
  const why = stderr.trim().slice(-500);
  return new Error(`${e.shortMessage}${why === '' ? '' : `: ${why}`}`, { cause: e });
}
