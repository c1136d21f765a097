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
    return pino(options, pino.transport({ target: 'pino-logfmt', options: { flattenNested: true } }));
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
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
