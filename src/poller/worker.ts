// Entry point of the poll thread (a worker_threads Worker started by thread.ts). Everything a poll
// does runs here: the sources' children, parsing, aggregation, cross-poll tracking and the
// garbage they make. The HTTP thread only receives each published snapshot (a structured clone),
// so neither a poll's parsing nor its heap's garbage collections ever hold up a scrape.

import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, installLastResort } from '../log.ts';
import { closeKernelFiles } from '../sources/open.ts';
import { livePoller } from './live-poller.ts';
import { lowerThreadPriority } from './priority.ts';
import type { ToPollThread, FromPollThread, PollThreadData } from './thread.ts';

const port = parentPort;
if (port === null) throw new Error('src/poller/worker.ts runs as a worker thread (see thread.ts)');
const { config } = workerData as PollThreadData;
const logger = createLogger(config);
// An exception nobody caught ends this thread (exit 1) after one log line; the HTTP thread keeps
// serving the last snapshot and starts a new poll thread.
installLastResort(logger);
try {
  lowerThreadPriority();
} catch (err) {
  // A seccomp filter or an odd /proc may refuse it: polls then compete with scrapes as before.
  logger.info({ err }, 'the poll thread keeps normal CPU priority (lowering it failed)');
}
const send = (m: FromPollThread) => port.postMessage(m);
const heap = () => {
  const h = getHeapStatistics();
  return { totalBytes: h.total_heap_size, usedBytes: h.used_heap_size, externalBytes: h.external_memory };
};
const poller = livePoller(config, logger, (snapshot, stats) => send({ type: 'publish', snapshot, stats, heap: heap() }));

port.on('message', (m: ToPollThread) => {
  if (m.type !== 'stop') return;
  void poller
    .stop()
    .then(closeKernelFiles)
    .catch((err: unknown) => logger.error({ err }, 'stopping the poller failed'))
    .finally(() => {
      logger.flush();
      send({ type: 'stopped' });
      port.close();
    });
});

poller.start().catch((err: unknown) => logger.error({ err }, 'first poll failed'));
