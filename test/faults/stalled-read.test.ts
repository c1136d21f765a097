// A stalled read under --path.procfs (issue 10): a FUSE mount (test/fixtures/stall-fs.py, Debian's
// python3-fusepy) mirrors test/fixtures/proc, and a read() of a file it is told to stall does not
// return until told otherwise — as on a hung FUSE or network mount, and not even SIGTERM ends it.
// Such a read holds one of libuv's 4 threads, which zlib (the gzip of /metrics) shares: before the
// fix, one stalled file took another thread every poll, and after four polls every source was down
// and every gzip scrape hung. Now a file whose read has not returned is not read again (one thread
// at most), and the procfs reads hold at most 2 threads even when the whole mount stalls.
// Needs root and /dev/fuse.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parseExposition, sumOf } from '../helpers/exposition.ts';
import { ROOT, startDaemon, type Daemon } from '../helpers/daemon.ts';

const SOURCE = `${ROOT}test/fixtures/proc`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gzip scrape, as Prometheus asks: status and body, or a timeout after `ms`. */
function gzipScrape(port: number, ms: number): Promise<{ status: number; body: string } | 'timeout'> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const raw = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, body: res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString('utf8') : raw.toString('utf8') });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve('timeout');
    }, ms);
    req.on('error', () => undefined);
  });
}

/** Every file of the mirrored tree, relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile());
}

describe('a read stalled under --path.procfs (FUSE) cannot take the process\'s threads', { timeout: 120_000 }, () => {
  let dir: string;
  let mnt: string;
  let control: string;
  let fs: ChildProcess;
  let daemon: Daemon;
  const stall = (paths: string[]) => writeFileSync(control, paths.map((p) => `${p}\n`).join(''));

  before(async () => {
    assert.ok(existsSync('/dev/fuse'), '/dev/fuse is missing');
    dir = mkdtempSync(join(tmpdir(), 'tcpstate-stall-'));
    mnt = join(dir, 'mnt');
    control = join(dir, 'control');
    mkdirSync(mnt);
    stall([]);
    // Debian's python (python3-fusepy, installed by scripts/debian-setup.sh --test), not one on PATH.
    fs = spawn('/usr/bin/python3', [`${ROOT}test/fixtures/stall-fs.py`, SOURCE, mnt, control], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    fs.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    for (let i = 0; !existsSync(join(mnt, 'net', 'tcp')); i++) {
      if (fs.exitCode !== null || i > 100) throw new Error(`stall-fs.py did not mount (apt-get install python3-fusepy):\n${err}`);
      await sleep(50);
    }
    daemon = await startDaemon(['--source', 'proc', '--path.procfs', mnt, '--poll.interval', '1s', '--poll.timeout', '2s', '--log.level', 'debug']);
  });

  after(async () => {
    // Every step runs, whatever the one before did: a mount left behind keeps this process alive.
    if (control !== undefined) stall([]);
    try {
      if (daemon !== undefined && daemon.child.exitCode === null && daemon.child.signalCode === null) {
        const code = await Promise.race([daemon.stop(), sleep(5000).then(() => 'still running')]);
        if (code !== 0) daemon.child.kill('SIGKILL');
      }
    } finally {
      // Lazily: a daemon killed while its read was blocked may still hold the mount for a moment.
      if (mnt !== undefined) execFileSync('umount', ['-l', mnt]);
      if (fs !== undefined && fs.exitCode === null) {
        const gone = new Promise((r) => fs.once('exit', r));
        fs.kill('SIGTERM');
        await Promise.race([gone, sleep(3000).then(() => fs.kill('SIGKILL'))]);
      }
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Waits for `n` more polls, scraping with gzip meanwhile: every scrape must answer within 2 s. */
  async function pollsWhileScraping(n: number): Promise<string> {
    let body = '';
    const polls = () => sumOf(parseExposition(body), 'tcpstate_polls_total') ?? 0;
    const first = await gzipScrape(daemon.port, 2000);
    assert.notEqual(first, 'timeout', 'a gzip scrape hung: the thread pool is taken');
    body = first === 'timeout' ? '' : first.body;
    const until = polls() + n;
    const deadline = Date.now() + 30_000;
    while (polls() < until) {
      assert.ok(Date.now() < deadline, `no ${n} polls within 30 s:\n${daemon.logs().slice(-2000)}`);
      await sleep(200);
      const r = await gzipScrape(daemon.port, 2000);
      assert.notEqual(r, 'timeout', 'a gzip scrape hung: the thread pool is taken');
      if (r !== 'timeout') {
        assert.equal(r.status, 200);
        body = r.body;
      }
    }
    return body;
  }

  const up = (body: string): Record<string, number> =>
    Object.fromEntries(parseExposition(body).samples.filter((s) => s.name === 'tcpstate_source_up').map((s) => [s.labels.source ?? '', s.value]));

  it('one stalled file: only its source is down, saying why; the others and gzip scrapes go on (6 polls); it recovers', async () => {
    await pollsWhileScraping(1);
    const from = daemon.logs().length;
    stall(['net/sockstat']);
    const body = await pollsWhileScraping(6);
    assert.deepEqual(up(body), { proc_tcp: 1, proc_tcp6: 1, sockstat: 0, sockstat6: 1, sysctl: 1, netstat: 1 });
    const lines = daemon.logs().slice(from).split('\n').filter((l) => l.includes('"source down'));
    assert.ok(lines.every((l) => l.includes('"source":"sockstat"')), lines.join('\n'));
    assert.match(lines[lines.length - 1]!, /net\/sockstat: its previous read, started .*, has not returned \(a stalled mount\?\): not read again until it does/);
    stall([]);
    const later = await pollsWhileScraping(2);
    assert.equal(up(later).sockstat, 1);
  });

  it('the whole mount stalled: every source down, gzip scrapes still answered (6 polls); all recover', async () => {
    stall(files(SOURCE).map((f) => relative('.', f)));
    const body = await pollsWhileScraping(6);
    assert.deepEqual(Object.values(up(body)), [0, 0, 0, 0, 0, 0]);
    stall([]);
    const later = await pollsWhileScraping(3);
    assert.deepEqual(Object.values(up(later)), [1, 1, 1, 1, 1, 1]);
  });

  it('SIGTERM while a read is stalled: the stop does not wait on it; the process is gone as soon as the kernel lets its thread go', async () => {
    stall(['net/sockstat']);
    await pollsWhileScraping(2);
    const stopped = daemon.stop();
    await sleep(2000);
    // Until the mount answers, the kernel keeps a thread blocked in a FUSE read the daemon already
    // took (not even SIGKILL ends the process), and Node.js's exit joins its threads: the process
    // is still there. The moment the read returns it exits, 0: nothing else held the stop.
    assert.equal(daemon.child.exitCode, null);
    assert.match(daemon.logs(), /"msg":"shutting down"/);
    stall([]);
    const t0 = Date.now();
    const code = await Promise.race([stopped, sleep(3000).then(() => 'still running 3 s after the read returned')]);
    assert.equal(code, 0, `${String(code)} (${Date.now() - t0} ms)\n${daemon.logs().slice(-1500)}`);
  });
});
