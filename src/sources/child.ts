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
