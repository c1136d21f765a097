// `tsx bench/poll-cpu.ts [--fw1 N] [--est N] [--polls N] [--rounds N] [--interval S] [DIR...]` (root): CPU per poll of
// one or more builds of the exporter on the same big lab, side by side, and node_exporter's CPU
// per scrape on the same sockets: what issue 14's "CPU per poll ≤ node_exporter's" compares.
//
// DIR is a checkout with dist/ and build/tcpstate-diag built (default: this one); give two to
// compare a change with its parent. Each round builds the lab afresh in a private network
// namespace (orphaned FIN-WAIT-1 sockets die after ~5 minutes), then runs each build in turn with
// --poll.interval S seconds (--interval, default 1; `npm run bench` polls every 5): after 3 polls,
// user + system clock ticks of the exporter, of its threads, and of its children (the netlink
// helper's dump threads count in its own times), from /proc, over --polls polls (default 15).
// Builds alternate within a round, so a change in the machine's load hits them alike. CPU time is
// what is compared: on a shared machine wall time is not.
//
// Each build runs as it ships: its entry point's first line (environment and V8 flags), as the
// bench and the tests start it. DIR::FLAGS runs DIR's build with the node flags FLAGS instead
// (space-separated, may be empty: `.::` is this build with V8's defaults), to measure a flag alone.
// The exporter's threads are split into the HTTP thread (the main one), the poll thread (the one at
// nice 10) and the others (V8's platform workers, libuv's pool).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { entryPoint, shippedCommand } from '../test/helpers/daemon.ts';
import { rerunInPrivateNetns } from './private-netns.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLK_TCK = 100;
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? def : Number(process.argv[i + 1]);
};
const FW1 = arg('--fw1', 30_000);
const EST = arg('--est', 90_000);
const POLLS = arg('--polls', 15);
const ROUNDS = arg('--rounds', 2);
const INTERVAL = arg('--interval', 1);
const DIRS = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
if (DIRS.length === 0) DIRS.push(ROOT);

/** The command line of a build: DIR as it ships, or DIR::FLAGS with those node flags instead. */
function command(build: string): string[] {
  const [dir = '.', flags] = build.split('::');
  const root = dir.endsWith('/') ? dir : `${dir}/`;
  if (flags === undefined) return shippedCommand(root);
  const e = entryPoint(root);
  return ['/usr/bin/env', ...e.env, process.execPath, ...flags.split(' ').filter((f) => f !== ''), e.bin];
}

/** Re-runs this script in a network namespace of its own (the lab's sockets stay out of the host's). */
function inPrivateNetns(): void {
  rerunInPrivateNetns('pollcpu', 'POLL_CPU_NETNS');
}

function stat(pid: number | string, task?: string): string[] {
  const text = readFileSync(task === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${task}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

interface Ticks {
  total: number;
  threads: number;
  /** The HTTP thread (the main one), the poll thread (nice 10), the other threads. */
  http: number;
  poll: number;
  other: number;
  children: Map<string, number>;
}

/** Ticks of the exporter (its threads, waited-for children) and of its live children, by name. */
function ticks(pid: number): Ticks {
  const f = stat(pid);
  const threads = Number(f[11]) + Number(f[12]);
  let http = 0;
  let poll = 0;
  let other = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = stat(pid, task);
      const n = Number(t[11]) + Number(t[12]);
      if (task === String(pid)) http += n;
      else if (Number(t[16]) === 10) poll += n;
      else other += n;
    } catch {
      // ended meanwhile
    }
  }
  let total = threads + Number(f[13]) + Number(f[14]);
  const children = new Map<string, number>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const c = stat(p);
      if (Number(c[1]) !== pid) continue;
      const t = Number(c[11]) + Number(c[12]) + Number(c[13]) + Number(c[14]);
      const name = /\(([^)]*)\)/.exec(readFileSync(`/proc/${p}/stat`, 'utf8'))?.[1] ?? p;
      children.set(name, (children.get(name) ?? 0) + t);
      total += t;
    } catch {
      // gone meanwhile
    }
  }
  return { total, threads, http, poll, other, children };
}

async function buildLab(): Promise<ChildProcess[]> {
  const plan: Array<[string, number]> = [];
  for (let left = FW1; left > 0; left -= 14_000) plan.push(['fw1', Math.min(14_000, left)]);
  for (let left = EST; left > 0; left -= 14_000) plan.push(['est', Math.min(14_000, left)]);
  const workers = plan.map(([role, count], i) => spawn('python3', [`${ROOT}bench/biglab.py`, '--role', role, '--count', String(count), '--port', String(32_000 + i)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          createInterface({ input: w.stdout }).once('line', () => resolve());
          w.once('exit', (code) => reject(new Error(`biglab.py exited ${code}`)));
        }),
    ),
  );
  return workers;
}

async function stopLab(workers: ChildProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => new Promise((resolve) => (w.once('exit', resolve), w.stdin!.end()))));
}

interface Row {
  dir: string;
  cpuMs: number;
  threadsMs: number;
  /** HTTP thread / poll thread / other threads, ms per poll. */
  split: string;
  children: string;
  hwmMB: number;
  wallMs: number;
}

async function measure(dir: string): Promise<Row> {
  const [node, ...args] = command(dir);
  const d = spawn(node!, [...args, '--poll.interval', `${INTERVAL}s`, '--log.level', 'debug', '--web.listen-address', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let polls = 0;
  const walls: number[] = [];
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  createInterface({ input: d.stdout }).on('line', (line) => {
    if (!line.includes('poll complete')) return;
    polls++;
    walls.push(Number(/"durationSeconds":([0-9.e-]+)/.exec(line)?.[1]));
    for (const w of waiting.filter((x) => polls >= x.n)) w.resolve();
  });
  const after = (n: number) => new Promise<void>((resolve) => (polls >= n ? resolve() : waiting.push({ n, resolve })));
  await after(3);
  const t0 = ticks(d.pid!);
  await after(3 + POLLS);
  const t1 = ticks(d.pid!);
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.pid}/status`, 'utf8'))?.[1]);
  d.kill('SIGTERM');
  await new Promise((r) => d.once('exit', r));
  const ms = (t: number) => (t * 1000) / CLK_TCK / POLLS;
  const wall = walls.slice(3, 3 + POLLS).sort((a, b) => a - b);
  return {
    dir,
    cpuMs: ms(t1.total - t0.total),
    threadsMs: ms(t1.threads - t0.threads),
    split: [t1.http - t0.http, t1.poll - t0.poll, t1.other - t0.other].map((t) => ms(t).toFixed(1)).join(' / '),
    children: [...t1.children].map(([k, v]) => `${k} ${ms(v - (t0.children.get(k) ?? 0)).toFixed(0)} ms`).join(', '),
    hwmMB: (hwm * 1024) / 1e6,
    wallMs: wall[wall.length >> 1]! * 1000,
  };
}

/** node_exporter's CPU per scrape (tcpstat and sockstat, as `npm run bench`), over 20 scrapes. */
async function nodeExporter(): Promise<number | undefined> {
  const bin = '/usr/bin/prometheus-node-exporter';
  const port = 19_100 + (process.pid % 500);
  let child: ChildProcess;
  try {
    child = spawn(bin, ['--collector.disable-defaults', '--collector.tcpstat', '--collector.sockstat', `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  child.on('error', () => undefined);
  try {
    for (let i = 0; i < 100; i++) {
      if ((await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.ok === true) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = ticks(child.pid!).total;
    for (let i = 0; i < 20; i++) {
      await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      await new Promise((r) => setTimeout(r, 200));
    }
    return ((ticks(child.pid!).total - t0) * 1000) / CLK_TCK / 20;
  } catch {
    return undefined;
  } finally {
    child.kill('SIGTERM');
  }
}

inPrivateNetns();
process.stdout.write(`lab: ${FW1} orphaned FIN-WAIT-1 (+ as many zero-window clients), ${EST} ESTABLISHED; ${POLLS} polls a build every ${INTERVAL} s, ${ROUNDS} rounds\n\n`);
process.stdout.write(
  '| round | build | sockets (ss -s) | CPU per poll (exporter + children) | exporter threads | HTTP / poll / other threads | children | peak RSS | poll wall (median) | node_exporter CPU per scrape |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
);
for (let round = 1; round <= ROUNDS; round++) {
  const lab = await buildLab();
  try {
    const sockets = /Total: (\d+)/.exec(execFileSync('ss', ['-s'], { encoding: 'utf8' }))?.[1] ?? '?';
    const rows: Row[] = [];
    for (const dir of DIRS) rows.push(await measure(dir));
    const ne = await nodeExporter();
    for (const r of rows) {
      process.stdout.write(
        `| ${round} | ${r.dir} | ${sockets} | ${r.cpuMs.toFixed(1)} ms | ${r.threadsMs.toFixed(1)} ms | ${r.split} ms | ${r.children} | ${r.hwmMB.toFixed(0)} MB | ${r.wallMs.toFixed(1)} ms | ${ne === undefined ? 'n/a' : `${ne.toFixed(1)} ms`} |\n`,
      );
    }
  } finally {
    await stopLab(lab);
  }
}
