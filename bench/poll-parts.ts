// `tsx bench/poll-parts.ts` (root; run it inside a network namespace holding a lab, e.g. with
// bench/biglab.py workers under `ip netns exec`): the poll thread's own CPU per poll, part by
// part, with no HTTP thread, no idle time and no thread hop: polls back to back in this thread,
// process.cpuUsage() over N polls (this process's threads, V8's GC helpers and libuv's pool
// included; the netlink helper, a child, is not). Run it with the entry point's V8 flags
// (`node --max-semi-space-size=1 --heap-growing-percent=30 --import tsx bench/poll-parts.ts`).
//
//   MODE=full        a whole poll (netlink source, kernel files, aggregation, snapshot)
//   MODE=nokernel    the same without the kernel files (sockstat, sysctls, netstat)
//   MODE=kernelonly  the kernel files alone
//   MODE=parseonly   the helper's round and the parsing of its dumps, records counted only
// N (default 40) polls are measured after 10 unmeasured ones.
import { DEFAULT_NETLINK_HELPER } from '../src/build-paths.ts';
import { parseConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { Poller } from '../src/poller/poller.ts';
import { liveSources } from '../src/sources/live.ts';
import { NetlinkHelper } from '../src/sources/netlink.ts';

const N = Number(process.env.N ?? 40);
const MODE = process.env.MODE ?? 'full';
const config = parseConfig(['--source', 'netlink', '--log.level', 'warn'], {}, 'poll-parts');
const logger = createLogger(config);

async function run(poll: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 10; i++) await poll();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await poll();
  const c = process.cpuUsage(c0);
  const ms = (us: number) => (us / 1000 / N).toFixed(2);
  process.stdout.write(`${MODE}: ${ms(c.user + c.system)} ms CPU per poll (user ${ms(c.user)}, system ${ms(c.system)}), wall ${((performance.now() - t0) / N).toFixed(2)} ms, ${N} polls\n`);
}

const live = () => liveSources({ mode: 'netlink', netlink: { path: DEFAULT_NETLINK_HELPER, timeoutMs: 10_000 }, ss: { path: 'ss', timeoutMs: 10_000 }, procfs: '/proc' });
if (MODE === 'full' || MODE === 'nokernel') {
  const sources = live();
  const poller = new Poller({
    sources: MODE === 'nokernel' ? { ...sources, kernel: [] } : sources,
    intervalMs: 86_400_000,
    forensics: config.forensics,
    peerNetworks: config.peers,
    logger,
  });
  await run(() => poller.poll());
  await poller.stop();
} else if (MODE === 'kernelonly') {
  const readers = live().kernel;
  const errors = { error: () => undefined };
  await run(() => Promise.all(readers.map((r) => r.read(errors))));
} else if (MODE === 'parseonly') {
  const helper = new NetlinkHelper({ path: DEFAULT_NETLINK_HELPER, timeoutMs: 10_000 });
  let records = 0;
  await run(() => helper.read({ record: () => void records++, error: () => undefined }));
  await helper.stop();
  process.stdout.write(`${records / (N + 10)} records a poll\n`);
} else {
  throw new Error(`MODE=${MODE}: full, nokernel, kernelonly or parseonly`);
}
