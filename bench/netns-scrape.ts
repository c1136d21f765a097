// `tsx bench/netns-scrape.ts [--ns K] [--ballast N] [--polls P] [--rounds R] [DIR...]` (root):
// /metrics latency while an all-namespace poll runs with the kernel's default shared
// established-socket hash, for one or more builds side by side (issue 12's "/metrics p99 ≤ 10 ms
// during it"). A focused probe, not the bench: smaller, so that it can run on a busy machine, and
// alternating builds within each round, so that a change in the machine's load hits them alike.
//
// In a private network namespace: N ESTABLISHED sockets (bench/biglab.py, default 60 000) that every
// dump walks past, as on a host whose sockets are shared by one hash, and K named namespaces
// (default 40) with 99 sockets each (bench/netnslab.py: 24 idle pairs, 25 orphaned zero-window
// FIN-WAIT-1 sockets and their clients, a listener). Each build (DIR: a checkout with dist/ and
// build/tcpstate-diag; default this one) runs with --netns=LIST --source netlink --poll.interval
// 1s while a keep-alive gzip client (as Prometheus scrapes) asks for /metrics every 20 ms for P polls
// (default 20). Printed per build: poll wall, the scrapes that overlapped a poll (p50 / p99 / max)
// and the others, the nice value of every thread of the exporter's netlink helper, and CPU per poll
// by thread (the helper's as a whole too: its dump threads end with each round).

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { shippedCommand } from '../test/helpers/daemon.ts';
import { rerunInPrivateNetns } from './private-netns.ts';
import { scraperLikePrometheus } from './scraper.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? def : Number(process.argv[i + 1]);
};
const NS = arg('--ns', 40);
const BALLAST = arg('--ballast', 60_000);
const POLLS = arg('--polls', 20);
const ROUNDS = arg('--rounds', 2);
const DIRS = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
if (DIRS.length === 0) DIRS.push(ROOT);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ready(w: ChildProcess, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    createInterface({ input: w.stdout! }).once('line', () => resolve());
    w.once('exit', (code) => reject(new Error(`${what} exited ${code}`)));
  });
}

async function buildLab(names: readonly string[]): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  for (let left = BALLAST, i = 0; left > 0; left -= 14_000, i++) {
    workers.push(spawn('python3', [`${ROOT}bench/biglab.py`, '--role', 'est', '--count', String(Math.min(14_000, left)), '--port', String(23_000 + i)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  for (let i = 0; i < names.length; i += 24) {
    workers.push(spawn('python3', [`${ROOT}bench/netnslab.py`, '--port', '22000', '--groups', '1', '--pairs', '24', '--fw1', '25', ...names.slice(i, i + 24)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  await Promise.all(workers.map((w, i) => ready(w, `lab worker ${i}`)));
  return workers;
}

function stopLab(workers: ChildProcess[]): Promise<unknown> {
  return Promise.all(workers.map((w) => new Promise((resolve) => (w.once('exit', resolve), w.stdin!.end()))));
}

/** The nice value of each thread of each child of `pid` named `comm`. */
function childThreadNice(pid: number, comm: string): string {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== pid || !s.includes(`(${comm})`)) continue;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const ts = readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8');
        const tf = ts.slice(ts.lastIndexOf(')') + 2).split(' ');
        const policy = Number(tf[38]);
        out.push(`${tf[16]}${policy === 5 ? ' idle' : policy === 3 ? ' batch' : ''}`);
      }
    } catch {
      // gone meanwhile
    }
  }
  return out.join(',');
}

/** CPU ticks (user + system) of each thread of pid and of its children's threads, by "comm nice" (threads of one name summed). */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const add = (p: string, prefix: string) => {
    for (const t of readdirSync(`/proc/${p}/task`)) {
      try {
        const ts = readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8');
        const comm = ts.slice(ts.indexOf('(') + 1, ts.lastIndexOf(')'));
        const tf = ts.slice(ts.lastIndexOf(')') + 2).split(' ');
        const key = `${prefix}${t === p ? 'main' : comm} (nice ${tf[16]})`;
        out.set(key, (out.get(key) ?? 0) + Number(tf[11]) + Number(tf[12]));
      } catch {
        // gone meanwhile
      }
    }
  };
  add(String(pid), '');
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== pid) continue;
      add(p, 'child ');
      // The process's own figure also counts its threads that have exited (the helper's dumpers).
      const key = 'child, all threads (exited too)';
      out.set(key, (out.get(key) ?? 0) + Number(f[11]) + Number(f[12]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

interface Row {
  dir: string;
  wallMs: number;
  during: number[];
  outside: number[];
  helperNice: string;
  slowest: string;
  /** CPU ms per poll by thread. */
  threads: string;
}

async function measure(dir: string, names: readonly string[]): Promise<Row> {
  // At nice 0 whatever this probe runs at (nice -n 5 on a shared machine): the exporter's own
  // priorities (its poll thread and helper at 10) are what is measured.
  const d = spawn('nice', ['-n', String(-getPriority()), ...shippedCommand(dir.endsWith('/') ? dir : `${dir}/`), '--poll.interval', '1s', '--source', 'netlink', '--netns', names.join(','), '--netns.max', '20', '--log.level', 'debug', '--web.listen-address', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let url = '';
  const windows: Array<[number, number]> = [];
  const walls: number[] = [];
  createInterface({ input: d.stdout }).on('line', (line) => {
    const m = /Server listening at (\S+?)"/.exec(line);
    if (m) url = m[1]!;
    if (!line.includes('poll complete')) return;
    const s = Number(/"durationSeconds":([0-9.e-]+)/.exec(line)?.[1]);
    const end = performance.now() / 1000;
    walls.push(s);
    windows.push([end - s, end]);
  });
  while (walls.length < 2 || url === '') await sleep(20);
  const client = scraperLikePrometheus(url, 'text/plain;version=0.0.4');
  const scrape = () => client.scrape();
  await scrape();
  await scrape();
  const scrapes: Array<[number, number]> = [];
  /** The HTTP (main) thread's time on a CPU and waiting for one (ms), over each scrape: /proc/PID/task/PID/schedstat. */
  const sched = () => readFileSync(`/proc/${d.pid}/task/${d.pid}/schedstat`, 'utf8').split(' ').slice(0, 2).map((x) => Number(x) / 1e6);
  const spent: Array<[number, number]> = [];
  const from = walls.length;
  const ticks0 = threadTicks(d.pid!);
  let helperNice = '';
  while (walls.length < from + POLLS) {
    const t = performance.now() / 1000;
    const [run0, wait0] = sched();
    await scrape();
    scrapes.push([t, performance.now() / 1000]);
    const [run1, wait1] = sched();
    spent.push([run1! - run0!, wait1! - wait0!]);
    if (helperNice === '' && walls.length > from) helperNice = childThreadNice(d.pid!, 'tcpstate-diag');
    await sleep(20);
  }
  const ticks1 = threadTicks(d.pid!);
  const threads = [...ticks1]
    .map(([k, v]) => [k, ((v - (ticks0.get(k) ?? 0)) * 10) / POLLS] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
  client.close();
  d.kill('SIGTERM');
  await new Promise((r) => d.once('exit', r));
  const during: number[] = [];
  const outside: number[] = [];
  /** Of the slowest 2 % of scrapes during polls: the HTTP thread's run and run-queue wait time. */
  const slow: Array<[number, number, number]> = [];
  scrapes.forEach(([a, b], i) => {
    const inPoll = windows.some(([s, e]) => a < e && b > s);
    (inPoll ? during : outside).push((b - a) * 1000);
    if (inPoll) slow.push([(b - a) * 1000, spent[i]![0], spent[i]![1]]);
  });
  slow.sort((x, y) => y[0] - x[0]);
  const worst = slow.slice(0, Math.max(1, Math.ceil(slow.length / 50)));
  const avg = (k: 0 | 1 | 2) => worst.reduce((acc, w) => acc + w[k], 0) / worst.length;
  return { dir, wallMs: quantile(walls.slice(from), 0.5) * 1000, during, outside, helperNice, threads, slowest: `${worst.length}: ${avg(0).toFixed(1)} ms, HTTP thread ran ${avg(1).toFixed(1)}, waited for a CPU ${avg(2).toFixed(1)}` };
}

rerunInPrivateNetns('nsscrape', 'NETNS_SCRAPE_NETNS');
const names = Array.from({ length: NS }, (_, i) => `tcpstate-nsp-${process.pid}-${i}`);
process.stdout.write(
  `probe: ${NS} namespaces × 99 sockets, ${BALLAST} ESTABLISHED in the probe's own namespace (one shared hash: net.ipv4.tcp_child_ehash_entries=${readFileSync('/proc/sys/net/ipv4/tcp_child_ehash_entries', 'utf8').trim()}), ${POLLS} polls a build, ${ROUNDS} rounds\n\n` +
    '| round | build | poll wall (median) | scrapes during a poll: n, p50 / p99 / max | other scrapes: n, p50 / p99 / max | helper threads\' nice | slowest 2 % during polls (mean) |\n| --- | --- | --- | --- | --- | --- | --- |\n',
);
const f = (x: number) => x.toFixed(1);
try {
  for (const n of names) {
    execFileSync('ip', ['netns', 'add', n]);
    execFileSync('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const lab = await buildLab(names);
    try {
      // Alternate the order from round to round too.
      const order = round % 2 === 1 ? DIRS : [...DIRS].reverse();
      for (const dir of order) {
        const r = await measure(dir, names);
        process.stdout.write(
          `| ${round} | ${r.dir} | ${f(r.wallMs)} ms | ${r.during.length}, ${f(quantile(r.during, 0.5))} / ${f(quantile(r.during, 0.99))} / ${f(Math.max(...r.during))} ms | ` +
            `${r.outside.length}, ${f(quantile(r.outside, 0.5))} / ${f(quantile(r.outside, 0.99))} / ${f(Math.max(...r.outside))} ms | ${r.helperNice} | ${r.slowest} |\n`,
        );
        process.stdout.write(`  CPU ms per poll by thread: ${r.threads}\n`
        );
      }
    } finally {
      await stopLab(lab);
    }
  }
} finally {
  for (const n of names) spawnSync('ip', ['netns', 'del', n]);
}
