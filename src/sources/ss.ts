// The `ss` source: runs iproute2's ss (netlink inet_diag underneath) and parses its stdout as it
// arrives. Only this module imports execa.

import { execa, ExecaError } from 'execa';
import { FAMILIES } from '../model.ts';
import { SsParser } from '../parsers/ss.ts';
import { LineSplitter } from './lines.ts';
import { AggregatingSink, asError, type SourceReport } from './report.ts';

/**
 * -t TCP, -a all states (the default omits LISTEN, TIME-WAIT, SYN-RECV, CLOSE), -n numeric,
 * -o timers, -e inode (0 = no file refers to the socket: how orphans are recognised).
 * Argument array, never a shell.
 */
export const SS_ARGS: readonly string[] = ['-t', '-a', '-n', '-o', '-e'];

export interface SsSourceOptions {
  /** The ss binary (looked up in PATH when bare). */
  path: string;
  /** Kill ss when it runs longer than this. */
  timeoutMs: number;
}

export async function readSs(
  options: SsSourceOptions,
  signal: AbortSignal,
): Promise<SourceReport> {
  const started = process.hrtime.bigint();
  const sink = new AggregatingSink(FAMILIES);
  const parser = new SsParser(sink);
  const splitter = new LineSplitter((line) => parser.line(line));
  const subprocess = execa(options.path, SS_ARGS, {
    stdin: 'ignore',
    buffer: { stdout: false, stderr: true },
    maxBuffer: { stderr: 16_384 },
    timeout: options.timeoutMs,
    cancelSignal: signal,
    forceKillAfterDelay: 1000,
    // ss output is not localised, but keep its environment predictable.
    env: { LC_ALL: 'C', COLUMNS: '200' },
    extendEnv: true,
  });
  let error: Error | undefined;
  try {
    subprocess.stdout.setEncoding('utf8');
    for await (const chunk of subprocess.stdout) splitter.push(chunk as string);
    splitter.end();
    parser.end();
  } catch (e) {
    error = asError(e);
  }
  try {
    await subprocess;
  } catch (e) {
    error = describeSsFailure(e, options);
  }
  return sink.report('ss', started, error);
}

function describeSsFailure(e: unknown, options: SsSourceOptions): Error {
  if (!(e instanceof ExecaError)) return asError(e);
  if (e.timedOut) return new Error(`ss killed after --ss.timeout=${options.timeoutMs}ms`, { cause: e });
  if (e.isCanceled) return new Error('ss cancelled (shutting down)', { cause: e });
  if (e.code === 'ENOENT') return new Error(`ss not found at --ss.path=${options.path} (install iproute2)`, { cause: e });
  const raw: unknown = e.stderr;
  const stderr = typeof raw === 'string' ? raw.trim().slice(0, 500) : '';
  return new Error(`${e.shortMessage}${stderr === '' ? '' : `: ${stderr}`}`, { cause: e });
}
