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
