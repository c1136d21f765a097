// The sources of a live host: the socket table from netlink, ss or /proc (--source), and the
// kernel-wide files of the procfs mount.

import { DEFAULT_NETLINK_HELPER } from '../build-paths.ts';
import type { SourceMode, TableSource } from '../model.ts';
import { kernelReaders } from './kernel.ts';
import { NetlinkHelper, netlinkReader, type NetlinkSourceOptions } from './netlink.ts';
import { procReaders } from './proc.ts';
import type { PollSources, TableAttempt } from './source.ts';
import { ssReader, type SsSourceOptions } from './ss.ts';

/** What --source=auto tries, in order, until one works (netlink only when its helper is built). */
export const AUTO_CHAIN: readonly TableSource[] = ['netlink', 'ss', 'proc'];

export interface LiveOptions {
  mode: SourceMode;
  netlink: NetlinkSourceOptions;
  ss: SsSourceOptions;
  procfs: string;
}

/** The live sources, and the netlink helper (when --source may use it) that --netns shares. */
export interface LiveSources extends PollSources {
  readonly netlink?: NetlinkHelper;
}

/** The live sources; the netlink helper among them is stopped by the poller that reads them. */
export function liveSources(options: LiveOptions): LiveSources {
  const names = options.mode === 'auto' ? AUTO_CHAIN : [options.mode];
  const netlink = names.includes('netlink') ? new NetlinkHelper(options.netlink) : undefined;
  const attempt = (name: TableSource): TableAttempt => {
    if (name === 'netlink') {
      const path = options.netlink.path;
      // Only the default path means "never built"; a path someone set is a mistake to name.
      const notInstalled =
        path === DEFAULT_NETLINK_HELPER ? 'the netlink helper is not built (npm run build:native needs gcc)' : `--netlink.helper=${path} is missing or not executable`;
      return { name, readers: [netlinkReader(netlink!)], installed: () => netlink!.installed(), notInstalled };
    }
    if (name === 'ss') return { name, readers: [ssReader(options.ss)] };
    return { name, readers: procReaders(options.procfs) };
  };
  return { table: names.map(attempt), kernel: kernelReaders(options.procfs), netlink };
}
