// pino JSON to stdout (or logfmt through the pino-logfmt transport). Components log through
// child loggers: logger.child({ component: 'poller' }).

import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const options = {
    level: config.logLevel,
    base: { service: 'tcpstate-exporter' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // level=info rather than level=30, as other Prometheus exporters log.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (config.logFormat === 'logfmt') {
    // pino-logfmt flattens plain objects but prints an Error or an array as "[object Object]".
    const logfmt = { ...options, formatters: { ...options.formatters, log: logfmtValues } };
    return pino(logfmt, pino.transport({ target: 'pino-logfmt', options: { flattenNested: true } }));
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

/** For logfmt: an Error becomes its message (and its causes'), an array its JSON text. */
export function logfmtValues(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v instanceof Error) out[k] = errorText(v);
    else if (Array.isArray(v)) out[k] = JSON.stringify(v, (_key, x: unknown) => (x instanceof Error ? errorText(x) : x));
    else out[k] = v;
  }
  return out;
}

/** "message: cause's message: ..." without repeating a cause its parent's message already quotes. */
export function errorText(e: Error): string {
  let text = e.message;
  let cause: unknown = e.cause;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    if (!text.includes(cause.message)) text += `: ${cause.message}`;
    cause = cause.cause;
  }
  return text;
}

/**
 * Last resort: a rejection nobody handled or an exception nobody caught is a bug. It is logged
 * as one line. A lost rejection leaves the daemon serving its last snapshot (the poll that lost
 * it logs its own failure); after an uncaught exception the process state is unknown: exit 1.
 */
export function installLastResort(logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const onRejection = (reason: unknown) => {
    logger.error({ err: reason }, `bug: unhandled promise rejection: ${describe(reason)}`);
  };
  const onException = (err: unknown) => {
    logger.fatal({ err }, `bug: uncaught exception, exiting: ${describe(err)}`);
    logger.flush();
    exit(1);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
