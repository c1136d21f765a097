// What SIGTERM and SIGINT do: the first starts a graceful stop (`stop`, then exit 0, or 1 if it
// failed); a second signal, or a stop still running after `deadlineMs`, exits at once with 1, so a
// hung stop never ends in a SIGKILL after the orchestrator's grace period.

import type { Logger } from 'pino';

export interface ShutdownOptions {
  stop: () => Promise<void>;
  logger: Pick<Logger, 'info' | 'warn' | 'error' | 'flush'>;
  deadlineMs: number;
  exit: (code: number) => void;
}

/** Returns the handler to call with each stop signal. */
export function stopSignalHandler(o: ShutdownOptions): (signal: NodeJS.Signals) => void {
  let stopping = false;
  const exit = (code: number) => {
    o.logger.flush();
    o.exit(code);
  };
  return (signal) => {
    if (stopping) {
      o.logger.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    o.logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      o.logger.error({ deadlineMs: o.deadlineMs }, 'shutdown did not finish in time: exiting now');
      exit(1);
    }, o.deadlineMs).unref();
    o.stop().then(
      () => exit(0),
      (err: unknown) => {
        o.logger.error({ err: err instanceof Error ? { type: err.name, message: err.message } : String(err) }, 'error while shutting down');
        exit(1);
      },
    );
  };
}
