// The benches build big socket tables: each re-runs itself in a network namespace of its own, so
// the host's loopback, ports and socket tables are left alone, and deletes it at the end (with any
// socket left in it). Orphans still count against the host-wide tcp_max_orphans while they live.
import { execFileSync, spawnSync } from 'node:child_process';

/**
 * Re-runs this script under `ip netns exec` in a new namespace `tcpstate-NAME-PID`, with `envVar`
 * set to its name, and exits with its status; returns at once when `envVar` is set (we are the
 * re-run). `ip netns exec` mounts a fresh /sys without the cgroup2 hierarchy, which makes `ss -e`
 * warn "Failed to find cgroup2 mount" once per socket and run several times slower than on a host:
 * it is mounted in the private mount namespace ip gives the command, as a host has it.
 */
export function rerunInPrivateNetns(name: string, envVar: string): void {
  if (process.env[envVar] !== undefined) return;
  const netns = `tcpstate-${name}-${process.pid}`;
  process.stdout.write(`${name}: in network namespace ${netns}\n`);
  execFileSync('ip', ['netns', 'add', netns]);
  let status = 1;
  try {
    execFileSync('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
    const withCgroup = ['sh', '-c', 'mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; exec "$@"', 'sh'];
    const r = spawnSync('ip', ['netns', 'exec', netns, ...withCgroup, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [envVar]: netns },
    });
    status = r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'del', netns]);
  }
  process.exit(status);
}
