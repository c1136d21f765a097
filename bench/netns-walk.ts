// `tsx bench/netns-walk.ts [--sizes 0,30000,60000] [--reps N]` (root): what one network namespace's
// socket table costs the kernel when every namespace shares the host's established-socket hash (the
// default, net.ipv4.tcp_child_ehash_entries=0), measured as the system CPU time of the reader:
//   - an EMPTY namespace read while the host holds N sockets elsewhere: the netlink helper's round
//     (its two dumps, as the exporter asks), `cat /proc/PID/net/tcp{,6}` of a process in it, and
//     `ss -N NAME -tan`;
//   - the same readers on a namespace that holds those N sockets itself (the floor: what reading
//     them costs when they are the reader's own);
//   - the empty namespace again, made with tcp_child_ehash_entries=1024 (a hash table of its own);
//   - the empty namespace through `--serve` rounds, as the exporter reads it (this build's helper
//     answers a namespace whose sockstat counters are all 0 without a dump).
// A second table gives what the helper's choice between one walk for both dump specs and a walk
// per spec weighs (native/tcpstate-diag.c, merge_pays): per socket, what asking tcp_info and
// skmeminfo costs (one dump of every state of the N sockets' own namespace with and without them);
// per hash bucket, a walk of an empty namespace given a hash of its own as big as the host's; per
// host socket, a walk of the empty shared-hash namespace less its buckets; and a `--serve` round of
// a namespace holding 99 sockets (bench/netnslab.py: 25 of them orphaned FIN-WAIT-1) merged
// against TCPSTATE_DIAG_PER_SPEC.
// N: ESTABLISHED pairs built by bench/biglab.py in this script's private namespace; the host's other
// sockets (other work on the machine) are walked too, and printed (/proc/net/sockstat `alloc`, a
// host-wide count of TCP sockets). Median of --reps runs (default 5) each; system time from `perf stat`
// (Debian: apt-get install linux-perf; not needed by the tests).

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NETLINK_DUMPS } from '../src/sources/netlink.ts';
import { rerunInPrivateNetns } from './private-netns.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const argOf = (name: string) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const SIZES = (argOf('--sizes') ?? '0,30000,60000').split(',').map(Number);
const REPS = Number(argOf('--reps') ?? 5);
const HELPER = `${ROOT}build/tcpstate-diag`;
/** Every TCP state (bits 1-12 of include/net/tcp_states.h). */
const ALL_STATES = (0x1ffe).toString(16);

/** System CPU ms of one run of argv (perf stat's system_time, from the kernel's per-task accounting), its output thrown away. */
function sysOnce(argv: readonly string[]): number {
  const r = spawnSync('perf', ['stat', '-x,', '-e', 'system_time', '--', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30 });
  const line = r.stderr.split('\n').find((l) => l.includes(',system_time,')) ?? '';
  // perf says "<not counted>" for a time below its resolution.
  const field = line.split(',')[0]!;
  const ns = field === '<not counted>' ? 0 : Number(field);
  if (r.status !== 0 || !Number.isFinite(ns) || line === '') throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return ns / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** System ms per round of `rounds` --serve rounds in namespace `ns` (the exporter's way: an empty namespace is answered from its counters). */
function serveRoundMs(ns: string, rounds: number, env: NodeJS.ProcessEnv = {}): number {
  const devNull = openSync('/dev/null', 'w');
  try {
    const r = spawnSync('perf', ['stat', '-x,', '-e', 'system_time', '--', HELPER, '--serve', ...NETLINK_DUMPS], {
      input: `/run/netns/${ns}\n`.repeat(rounds),
      env: { ...process.env, ...env },
      encoding: 'utf8',
      stdio: ['pipe', devNull, 'pipe', devNull],
      maxBuffer: 1 << 30,
    });
    const field = (r.stderr.split('\n').find((l) => l.includes(',system_time,')) ?? '').split(',')[0]!;
    if (r.status !== 0) throw new Error(`--serve: ${r.stderr}`);
    return (field === '<not counted>' ? 0 : Number(field)) / 1e6 / rounds;
  } finally {
    closeSync(devNull);
  }
}

/** Median system ms of REPS runs. */
function sysMs(argv: readonly string[]): number {
  return median(Array.from({ length: REPS }, () => sysOnce(argv)));
}

async function ballast(n: number): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  for (let left = n, i = 0; left > 0; left -= 14_000, i++) {
    workers.push(spawn('python3', [`${ROOT}bench/biglab.py`, '--role', 'est', '--count', String(Math.min(14_000, left)), '--port', String(24_000 + i)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          createInterface({ input: w.stdout! }).once('line', () => resolve());
          w.once('exit', (code) => reject(new Error(`biglab.py exited ${code}`)));
        }),
    ),
  );
  return workers;
}

const hostSockets = () => /TCP: inuse \d+ orphan \d+ tw \d+ alloc (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? '?';

rerunInPrivateNetns('nswalk', 'NETNS_WALK_NETNS');
const own = process.env.NETNS_WALK_NETNS!;
const empty = `tcpstate-walk-${process.pid}-empty`;
const emptyOwnHash = `tcpstate-walk-${process.pid}-ownhash`;
const emptyBigHash = `tcpstate-walk-${process.pid}-bighash`;
const small = `tcpstate-walk-${process.pid}-small`;
const hostBuckets = Number(readFileSync('/proc/sys/net/ipv4/tcp_ehash_entries', 'utf8').trim());
const holders: ChildProcess[] = [];
/** A process sleeping in namespace `ns`, for its /proc/PID/net. */
const holder = (ns: string) => {
  const p = spawn('ip', ['netns', 'exec', ns, 'sleep', '3600'], { stdio: 'ignore' });
  holders.push(p);
  return p;
};
try {
  execFileSync('ip', ['netns', 'add', empty]);
  execFileSync('ip', ['netns', 'add', small]);
  execFileSync('ip', ['netns', 'exec', small, 'ip', 'link', 'set', 'lo', 'up']);
  try {
    execFileSync('sysctl', ['-q', '-w', 'net.ipv4.tcp_child_ehash_entries=1024']);
    execFileSync('ip', ['netns', 'add', emptyOwnHash]);
    execFileSync('sysctl', ['-q', '-w', `net.ipv4.tcp_child_ehash_entries=${Math.abs(hostBuckets)}`]);
    execFileSync('ip', ['netns', 'add', emptyBigHash]);
  } finally {
    execFileSync('sysctl', ['-q', '-w', 'net.ipv4.tcp_child_ehash_entries=0']);
  }
  const smallLab = spawn('python3', [`${ROOT}bench/netnslab.py`, '--port', '25000', '--groups', '1', '--pairs', '24', '--fw1', '25', small], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: smallLab.stdout }).once('line', () => resolve());
    smallLab.once('exit', (code) => reject(new Error(`netnslab.py exited ${code}`)));
  });
  holders.push(smallLab);
  const pe = holder(empty);
  const po = holder(own);
  await new Promise((r) => setTimeout(r, 300));
  process.stdout.write(
    `reader's system CPU time, median of ${REPS}; Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length} CPUs\n\n` +
      '| N sockets in the bench namespace | TCP sockets on the host (sockstat alloc) | empty namespace: helper round (2 dumps) | empty: /proc/PID/net/tcp{,6} | empty: ss -N -tan | the N sockets\' own namespace: helper round | own: /proc/PID/net/tcp{,6} | own: ss -tan | empty namespace with a hash of its own: helper round | empty namespace: --serve round (this build) |\n' +
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  const mergeRows: string[] = [];
  for (const n of SIZES) {
    const lab = await ballast(n);
    try {
      const host = hostSockets();
      const round = (ns: string) => sysMs([HELPER, '--netns', `/run/netns/${ns}`, ...NETLINK_DUMPS]);
      const ownRound = sysMs([HELPER, ...NETLINK_DUMPS]);
      const cols = [
        round(empty),
        sysMs(['cat', `/proc/${pe.pid}/net/tcp`, `/proc/${pe.pid}/net/tcp6`]),
        sysMs(['ss', '-N', empty, '-tan']),
        ownRound,
        sysMs(['cat', `/proc/${po.pid}/net/tcp`, `/proc/${po.pid}/net/tcp6`]),
        sysMs(['ss', '-tan']),
        round(emptyOwnHash),
        serveRoundMs(empty, 20),
      ];
      process.stdout.write(`| ${n} | ${host} | ${cols.map((c) => `${c.toFixed(1)} ms`).join(' | ')} |\n`);
      // One dump spec of every state (one walk), with and without the FIN-WAIT-1 spec's extensions.
      const plain = ALL_STATES;
      const withExt = `${ALL_STATES}:${NETLINK_DUMPS[1]!.split(':')[1]}`;
      // K dumps per run (one spec repeated), so that each figure is well above the accounting's tick.
      const perDump = (prefix: readonly string[], spec: string, k: number) => sysMs([...prefix, ...Array<string>(k).fill(spec)]) / k;
      const ownPlain = perDump([HELPER], plain, 10);
      const ownExt = perDump([HELPER], withExt, 10);
      const walkEmpty = perDump([HELPER, '--netns', `/run/netns/${empty}`], plain, 40);
      const walkBig = perDump([HELPER, '--netns', `/run/netns/${emptyBigHash}`], plain, 40);
      const alloc = Number(hostSockets());
      const merged = serveRoundMs(small, 40);
      const perSpec = serveRoundMs(small, 40, { TCPSTATE_DIAG_PER_SPEC: '1' });
      const perSocket = (ms: number, count: number) => (count > 0 ? `${((ms * 1e6) / count).toFixed(1)} ns` : '-');
      mergeRows.push(
        `| ${n} | ${alloc} | ${ownPlain.toFixed(1)} / ${ownExt.toFixed(1)} ms | ${perSocket(ownExt - ownPlain, n)} | ${walkBig.toFixed(2)} ms | ${perSocket(walkBig, Math.abs(hostBuckets))} | ${walkEmpty.toFixed(1)} ms | ${perSocket(walkEmpty - walkBig, alloc)} | ${merged.toFixed(1)} / ${perSpec.toFixed(1)} ms |\n`,
      );
    } finally {
      await Promise.all(lab.map((w) => new Promise((r) => (w.once('exit', r), w.stdin!.end()))));
    }
  }
  process.stdout.write(
    `\none walk for both specs or a walk per spec (the helper's merge_pays); hash of ${Math.abs(hostBuckets)} buckets\n\n` +
      '| N sockets in the bench namespace | TCP sockets on the host (sockstat alloc) | own namespace: one dump of every state, without / with tcp_info and skmeminfo | extensions per socket | empty namespace, own hash as big as the host\'s: one walk | per bucket | empty shared-hash namespace: one walk | per host socket (less the buckets) | 99-socket namespace: --serve round, one walk / a walk per spec |\n' +
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n' +
      mergeRows.join(''),
  );
} finally {
  for (const p of holders) {
    p.stdin?.end();
    p.kill();
  }
  for (const ns of [empty, emptyOwnHash, emptyBigHash, small]) spawnSync('ip', ['netns', 'del', ns]);
}
