// The daemon's poller over the live host, built from the configuration: the sources (--source),
// the other network namespaces (--netns) and the schedule. The poll thread (thread.ts) builds it.

import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { NetnsPoller } from '../netns/poll.ts';
import { liveSources } from '../sources/live.ts';
import { Poller, type PollerOptions } from './poller.ts';

export function livePoller(config: Config, logger: Logger, onPublish?: PollerOptions['onPublish']): Poller {
  const ss = { path: config.ssPath, timeoutMs: config.ssTimeoutMs };
  const sources = liveSources({
    mode: config.source,
    netlink: { path: config.netlinkHelper, timeoutMs: config.netlinkTimeoutMs },
    ss,
    procfs: config.procfs,
  });
  const selection = config.netns;
  const netns =
    selection.mode === 'own'
      ? undefined
      : new NetnsPoller({
          selection,
          max: config.netnsMax,
          procfs: config.procfs,
          source: config.source,
          ...(sources.netlink !== undefined && { netlink: sources.netlink }),
          ss,
          logger: logger.child({ component: 'netns' }),
        });
  return new Poller({
    sources,
    ...(netns !== undefined && { netns }),
    intervalMs: config.pollIntervalMs,
    timeoutMs: config.pollTimeoutMs,
    forensics: config.forensics,
    peerNetworks: config.peers,
    logger: logger.child({ component: 'poller' }),
    ...(onPublish !== undefined && { onPublish }),
  });
}
