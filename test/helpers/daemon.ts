// Starts the real daemon as a child process, exactly as it ships: node on bin/tcpstate-exporter.js
// (the compiled dist/, which `npm test` builds first), optionally inside a network namespace.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The installed entry point (runs dist/main.js). */
export const BIN = `${ROOT}bin/tcpstate-exporter.js`;

/** Whether a process of another user may enter `dir` (every directory down to it has the x bit for others). */
function othersCanEnter(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

let readableCopy: string | undefined;

/**
 * The checkout as a daemon running under another uid can reach it: ROOT, or, when ROOT lies under a
 * directory only root may enter (a clone under /root, as on a fresh machine), a copy of it (built
 * dist/ and node_modules included, .git left out) in a directory anyone may enter, made once per test
 * process and removed at its exit. Ends with a slash, as ROOT does.
 */
export function checkoutForOtherUsers(): string {
  if (othersCanEnter(ROOT)) return ROOT;
  if (readableCopy === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tcpstate-checkout-'));
    chmodSync(dir, 0o755);
    const git = join(ROOT, '.git');
    cpSync(ROOT, dir, { recursive: true, filter: (src) => src !== git && !src.startsWith(`${git}/`) });
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    readableCopy = `${dir}/`;
  }
  return readableCopy;
}

export interface Daemon {
  url: string;
  port: number;
  get(path: string): Promise<{ status: number; body: string; contentType: string }>;
  /** Polls completed so far, counted from the log (needs --log.level debug). */
  pollsCompleted(): number;
  logs(): string;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
  child: ChildProcess;
}

type Get = (port: number, path: string) => Promise<{ status: number; body: string; contentType: string }>;

export interface DaemonOptions {
  /** Run the daemon inside this network namespace. */
  netns?: string;
  /** How to make requests (inside a netns the test process cannot reach the daemon itself). */
  get?: Get;
  env?: NodeJS.ProcessEnv;
  /** Run the daemon as this user and group (e.g. 65534, nobody) instead of root. */
  uid?: number;
  /** The checkout to run (checkoutForOtherUsers() for a uid that cannot enter ROOT); ROOT by default. */
  root?: string;
  gid?: number;
}

/** Refuses to test a dist/ older than src/ (`npm test` builds first; a single test file may not). */
function assertBuilt(): void {
  const built = statSync(`${ROOT}dist/main.js`, { throwIfNoEntry: false })?.mtimeMs;
  const newest = readdirSync(`${ROOT}src`, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .reduce((m, f) => Math.max(m, statSync(`${ROOT}src/${f}`).mtimeMs), 0);
  if (built === undefined || built < newest) throw new Error('dist/ is missing or older than src/: run `npm run build` (npm test does)');
}

/** What the shipped entry point's first line (`#!/usr/bin/env -S [NAME=VALUE...] node [FLAGS...]`) sets. */
export interface EntryPoint {
  bin: string;
  /** Environment assignments made by env(1) before node starts (malloc settings). */
  env: string[];
  /** node's own flags (V8 heap settings). */
  flags: string[];
}

export function entryPoint(root = ROOT): EntryPoint {
  const bin = `${root}bin/tcpstate-exporter.js`;
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env (?:-S )?((?:[A-Z_]+=\S+ )*)node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`${bin}: unexpected first line ${JSON.stringify(first)}`);
  const words = (s: string) => s.split(' ').filter((w) => w !== '');
  return { bin, env: words(m[1]!), flags: words(m[2]!) };
}

/**
 * The command line the shipped entry point runs as (the Dockerfile and the systemd unit execute
 * the file itself), with this test's node instead of the one on PATH: env(1) with the same
 * assignments and node with the same flags. env execs node, so the pid is node's.
 */
export function shippedCommand(root = ROOT): string[] {
  const e = entryPoint(root);
  return ['/usr/bin/env', ...e.env, process.execPath, ...e.flags, e.bin];
}

export async function startDaemon(args: string[], opts: DaemonOptions = {}): Promise<Daemon> {
  assertBuilt();
  const root = opts.root ?? ROOT;
  const cmd = [...shippedCommand(root), '--web.listen-address', '127.0.0.1:0', ...args];
  const full = opts.netns === undefined ? cmd : ['ip', 'netns', 'exec', opts.netns, ...cmd];
  const child = spawn(full[0]!, full.slice(1), {
    cwd: root,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid ?? opts.uid }),
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${out}`)), 20_000);
    const check = () => {
      const m = /Server listening at (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}:\n${out}`));
    });
  });
  const port = Number(new URL(url).port);
  const get = async (path: string) => {
    if (opts.get !== undefined) return opts.get(port, path);
    const res = await fetch(url + path);
    return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') ?? '' };
  };
  return {
    url,
    port,
    get,
    pollsCompleted: () => (out.match(/"msg":"poll complete"/g) ?? []).length,
    logs: () => out,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Waits for the next poll to complete, without touching the network (needs --log.level debug). */
export async function waitForPoll(d: Daemon, timeoutMs = 20_000): Promise<void> {
  const start = d.pollsCompleted();
  const until = Date.now() + timeoutMs;
  while (d.pollsCompleted() === start) {
    if (Date.now() > until) throw new Error(`no poll completed in ${timeoutMs} ms:\n${d.logs()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until /readyz answers 200 (the first poll has completed). */
export async function waitReady(d: Daemon, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await d.get('/readyz')).status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`daemon not ready after ${timeoutMs} ms:\n${d.logs()}`);
}

/** Value of one sample in an exposition, or undefined. */
export function sample(body: string, series: string): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** `promtool check metrics` on an exposition; throws with its complaints. */
export async function promtoolCheckMetrics(body: string): Promise<void> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`promtool not runnable (apt-get install prometheus): ${e.message}`)));
    child.once('exit', resolve);
    child.stdin.end(body);
  });
  // No allow-list: any complaint (lint problems exit 3) fails the check.
  if (code !== 0 || out.trim() !== '') {
    throw new Error(`promtool check metrics failed (${code}):\n${out}`);
  }
}
