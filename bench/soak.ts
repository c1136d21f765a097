// `npm run soak`: the compiled daemon polls every second, SOAK_POLLS times (default 1 000, ~17 min),
// in a network namespace of its own, while bench/biglab.py --role churn creates and closes sockets
// continuously (FIN-WAIT-1 orphans behind zero-window peers, ESTABLISHED pairs, TIME-WAIT) and a
// scraper asks for /metrics and /sockets (--web.sockets). Every 100 polls it prints the daemon's
// RSS, V8 heap, descriptors and child processes; at the end a verdict against the tolerance below,
// then it stops the lab and checks that no FIN-WAIT-1 socket is still followed once they are gone.
// Not a test: it asserts nothing, it prints figures (docs/performance.md#soak).
//
//   SOAK_POLLS=100 npm run soak        a shorter run, to try it
//   SOAK_SOURCE=ss npm run soak        another source (default auto: the netlink helper when built)

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sample, startDaemon, waitReady, type Daemon } from '../test/helpers/daemon.ts';
import { parseExposition, sumOf } from '../test/helpers/exposition.ts';
import { rerunInPrivateNetns } from './private-netns.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const POLLS = Number(process.env.SOAK_POLLS ?? 1000);
const SOURCE = process.env.SOAK_SOURCE ?? 'auto';
const EVERY = Math.min(100, POLLS);
/** The churn: per 2 s cycle, this many ESTABLISHED pairs and a quarter as many FIN-WAIT-1 orphans, each batch living 5 cycles. */
const CHURN = Number(process.env.SOAK_CHURN ?? 200);
const PORT = 21000;

/**
 * What "flat" means, against the figures at the first report (100 polls: after warm-up, when
 * the churn has reached its steady state): RSS may grow by 10 % or 16 MiB, whichever is larger
 * (V8 sizes its young generation and code space lazily; a leak of one poll's table at this size is
 * ~0.3 MiB a poll, 300 MiB over the run); the heap in use after the last report may not exceed the
 * largest one seen before by 8 MiB; descriptors other than sockets (files, pipes, the helper's) may
 * differ by 2, sockets (the scraper's keep-alive connections come and go) by 8; children: at most
 * the netlink helper and an ss pass, never a zombie. A leak of one descriptor a poll would be +1 000.
 */
const TOLERANCE = { rssFraction: 0.1, rssBytes: 16 * 2 ** 20, heapBytes: 8 * 2 ** 20, files: 2, sockets: 8 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

interface Figures {
  polls: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  fds: number;
  /** Of which sockets (connections come and go with the scraper's keep-alive pool). */
  sockets: number;
  children: number;
  zombies: number;
  fw1Sockets: number;
  tracked: number;
  scrapes: number;
  scrapeErrors: number;
}

/** Re-runs this script in a network namespace of its own (deleted at the end, with any socket left). */
function inPrivateNetns(): void {
  rerunInPrivateNetns('soak', 'SOAK_NETNS');
}

/** Children of a process (ppid), and how many are zombies, from /proc. */
function children(pid: number): { all: number; zombies: number } {
  let all = 0;
  let zombies = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // After the command (in parentheses, may contain spaces): state, ppid.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) !== pid) continue;
    all++;
    if (state === 'Z') zombies++;
  }
  return { all, zombies };
}

/** Open descriptors of a process, and how many of them are sockets. */
function descriptors(pid: number): { fds: number; sockets: number } {
  const links = readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
  return { fds: links.length, sockets: links.filter((l) => l.startsWith('socket:')).length };
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

/** Scrapes /metrics and /sockets in turn until stopped; keeps the latest /metrics body. */
class Scraper {
  latest = '';
  scrapes = 0;
  errors = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly d: Daemon) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let i = 0;
    while (!this.stopped) {
      const path = i++ % 2 === 0 ? '/metrics' : '/sockets?limit=1000';
      try {
        const res = await this.d.get(path);
        this.scrapes++;
        if (res.status !== 200) this.errors++;
        else if (path === '/metrics') this.latest = res.body;
      } catch {
        this.errors++;
      }
      await sleep(150);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

function figures(d: Daemon, s: Scraper): Figures {
  const pid = d.child.pid!;
  const body = s.latest;
  const parsed = parseExposition(body);
  const kids = children(pid);
  return {
    polls: sample(body, 'tcpstate_polls_total') ?? 0,
    rssBytes: rssBytes(pid),
    heapUsedBytes: sample(body, 'nodejs_heap_size_used_bytes') ?? NaN,
    heapTotalBytes: sample(body, 'nodejs_heap_size_total_bytes') ?? NaN,
    ...descriptors(pid),
    children: kids.all,
    zombies: kids.zombies,
    fw1Sockets: sumOf(parsed, 'tcpstate_sockets', { state: 'fin_wait1' }) ?? 0,
    // Every FIN-WAIT-1 socket followed across polls has its age observed once per poll.
    tracked: sumOf(parsed, 'tcpstate_state_age_seconds_count', { state: 'fin_wait1' }) ?? 0,
    scrapes: s.scrapes,
    scrapeErrors: s.errors,
  };
}

function row(f: Figures): string {
  return [
    String(f.polls).padStart(5),
    mib(f.rssBytes).padStart(10),
    `${mib(f.heapUsedBytes)} / ${mib(f.heapTotalBytes)}`.padStart(20),
    `${f.fds} (${f.sockets})`.padStart(13),
    `${f.children} (${f.zombies} Z)`.padStart(9),
    String(f.fw1Sockets).padStart(8),
    String(f.tracked).padStart(8),
    `${f.scrapes} (${f.scrapeErrors} failed)`.padStart(16),
  ].join('  ');
}

/** Waits until the daemon has completed `polls` polls (from the latest scrape). */
async function untilPolls(d: Daemon, s: Scraper, polls: number): Promise<void> {
  while ((sample(s.latest, 'tcpstate_polls_total') ?? 0) < polls) {
    if (d.child.exitCode !== null) throw new Error(`the daemon exited (${d.child.exitCode}):\n${d.logs().slice(-3000)}`);
    await sleep(250);
  }
}

/**
 * The churn lab, restarted when something outside kills it (seen here: a SIGTERM from another
 * process on a shared machine, twice in a run): the churn goes on, and each restart is said.
 */
class ChurnLab {
  private child: ChildProcess | undefined;
  private stopping = false;
  readonly restarts: string[] = [];

  constructor(private readonly polls: () => number) {}

  async start(): Promise<void> {
    const child = spawn('python3', [`${ROOT}bench/biglab.py`, '--role', 'churn', '--count', String(CHURN), '--port', String(PORT)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', () => resolve());
      child.once('exit', (code) => reject(new Error(`the churn lab exited ${code}`)));
    });
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      const why = `the churn lab was ended (${signal ?? `status ${code}`}) after poll ${this.polls()}: restarted`;
      this.restarts.push(why);
      process.stdout.write(`${why}\n`);
      // Its sockets were reset with it (RST from the closing clients); a new lab takes over.
      void this.start();
    });
  }

  /** Ends the lab: its zero-window clients close (RST), so every orphan goes with it. */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child!;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin!.end();
    await exited;
  }
}

async function main(): Promise<void> {
  inPrivateNetns();
  const latest = { body: () => '' };
  const lab = new ChurnLab(() => sample(latest.body(), 'tcpstate_polls_total') ?? 0);
  await lab.start();
  const d = await startDaemon(['--source', SOURCE, '--poll.interval', '1s', '--web.sockets']);
  // Scrapes count from the first poll on (before it, /readyz and /sockets say 503 by design).
  await waitReady(d);
  const scraper = new Scraper(d);
  latest.body = () => scraper.latest;
  process.stdout.write(
    `soak: ${POLLS} polls at 1 s, --source ${SOURCE}, churn of ${CHURN} ESTABLISHED pairs and ${Math.max(1, CHURN >> 2)} FIN-WAIT-1 orphans per cycle of at least 2 s (each batch lives 5 cycles), /metrics and /sockets scraped in turn every ~150 ms\n`,
  );
  process.stdout.write(`${'polls'.padStart(5)}  ${'RSS'.padStart(10)}  ${'heap used / total'.padStart(20)}  ${'fds (sockets)'.padStart(13)}  ${'children'.padStart(9)}  ${'FIN-WAIT-1'.padStart(8)}  ${'tracked'.padStart(8)}  ${'scrapes'.padStart(16)}\n`);
  const seen: Figures[] = [];
  for (let p = EVERY; p <= POLLS; p += EVERY) {
    await untilPolls(d, scraper, p);
    const f = figures(d, scraper);
    seen.push(f);
    process.stdout.write(`${row(f)}\n`);
  }

  // The lab stops; nothing may still be followed.
  await lab.stop();
  const stoppedAt = figures(d, scraper).polls;
  await untilPolls(d, scraper, stoppedAt + 3);
  const after = figures(d, scraper);
  process.stdout.write(`after the lab stopped (3 polls later): ${after.fw1Sockets} FIN-WAIT-1 sockets, ${after.tracked} followed\n`);

  await scraper.stop();
  const t0 = Date.now();
  const code = await d.stop();
  const stopMs = Date.now() - t0;

  const base = seen[0]!;
  const last = seen[seen.length - 1]!;
  const rssAllowed = Math.max(base.rssBytes * TOLERANCE.rssFraction, TOLERANCE.rssBytes);
  const rssGrowth = Math.max(...seen.map((f) => f.rssBytes)) - base.rssBytes;
  const heapBefore = Math.max(...seen.slice(0, Math.max(1, seen.length - 1)).map((f) => f.heapUsedBytes));
  const fileSpread = Math.max(...seen.map((f) => Math.abs(f.fds - f.sockets - (base.fds - base.sockets))));
  const socketGrowth = Math.max(...seen.map((f) => f.sockets - base.sockets));
  const maxChildren = Math.max(...seen.map((f) => f.children));
  const zombies = Math.max(...seen.map((f) => f.zombies));
  const failures = last.scrapeErrors;
  const checks: Array<[boolean, string]> = [
    [rssGrowth <= rssAllowed, `RSS grew ${mib(rssGrowth)} over the first report's ${mib(base.rssBytes)} (allowed ${mib(rssAllowed)})`],
    [
      last.heapUsedBytes <= heapBefore + TOLERANCE.heapBytes,
      `heap in use at the end ${mib(last.heapUsedBytes)}, largest before ${mib(heapBefore)} (allowed +${mib(TOLERANCE.heapBytes)})`,
    ],
    [
      fileSpread <= TOLERANCE.files && socketGrowth <= TOLERANCE.sockets,
      `descriptors other than sockets ${base.fds - base.sockets} at first, at most ${fileSpread} away since (allowed ${TOLERANCE.files}); sockets ${base.sockets} at first, at most ${socketGrowth} more since (allowed ${TOLERANCE.sockets})`,
    ],
    [maxChildren <= 2 && zombies === 0, `children at most ${maxChildren}, zombies at most ${zombies} (allowed 2 and 0)`],
    [failures === 0, `${failures} failed scrapes of ${last.scrapes}`],
    [after.fw1Sockets === 0 && after.tracked === 0, `after the lab stopped: ${after.fw1Sockets} FIN-WAIT-1 sockets and ${after.tracked} followed (want 0 and 0)`],
    [code === 0 && stopMs < 5000, `SIGTERM: exit ${code} after ${stopMs} ms`],
  ];
  for (const [ok, text] of checks) process.stdout.write(`${ok ? 'ok  ' : 'FAIL'}  ${text}\n`);
  if (lab.restarts.length > 0) process.stdout.write(`note  the churn lab was restarted ${lab.restarts.length} time(s) (see above)\n`);
  process.stdout.write(`verdict: ${checks.every(([ok]) => ok) ? 'flat' : 'NOT flat (see FAIL lines)'}\n`);
}

await main();
